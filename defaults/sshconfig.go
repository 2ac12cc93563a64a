package defaults

import (
	"errors"
	"fmt"

	"github.com/opsmop/opsmop/internal/sshconfig"
)

// Jump is one hop of an OpenSSH ProxyJump chain: a host name (looked up in
// the inventory and the ssh config like any host), with the user and port
// the ProxyJump value gives (""/0: not given).
type Jump struct {
	Host string
	User string
	Port int
}

// JumpSpec says that the host Resolve works on is a ProxyJump hop: User
// and Port from the ProxyJump value beat every other level, and At (the
// ProxyJump line, as a Settings.Source) is their source. Before are the
// hops before this one in the ProxyJump value: when there are any, the
// host is reached through them, and its own ProxyJump (or ProxyCommand)
// in the ssh config is not consulted, as with ssh -J.
type JumpSpec struct {
	User   string
	Port   int
	At     string
	Before []Jump
}

// Settings.Source keys the ssh config can set, besides address, port,
// user, identities_only, via and connect_timeout.
const (
	keyIdentityFiles    = "identity_files"
	keyCertificateFiles = "certificate_files"
	keyIdentityAgent    = "identity_agent"
	keyKnownHosts       = "known_hosts"
	keyGlobalKnownHosts = "global_known_hosts"
	keyHashKnownHosts   = "hash_known_hosts"
	keyAcceptNew        = "accept_new_host_keys"
	keyKeepalive        = "keepalive"
	keyKeepaliveMax     = "keepalive_max"
	keyAddressFamily    = "address_family"
	keyAuthMethods      = "auth_methods"
)

// SSHConfigSource names the ssh config line a setting came from in
// Settings.Source: "ssh config FILE:LINE".
func SSHConfigSource(at sshconfig.Pos) string {
	return "ssh config " + at.String()
}

// applySSHConfig looks the host up in in.SSHConfig, as `ssh ADDRESS` would
// with the user and port opsmop already decided given explicitly, and lets
// what it says replace every setting that only the built-in level set. An
// ssh connection only; a local one reads no ssh config.
func (s *Settings) applySSHConfig(in Inputs, home string, getenv func(string) string) error {
	if in.SSHConfig == nil || s.Connection != ConnectionSSH {
		return nil
	}
	q := sshconfig.Query{Host: s.Address, LocalUser: in.CurrentUser, Home: home,
		UID: in.UID, LocalHost: in.LocalHost, Getenv: getenv}
	if s.Source["user"] != SourceBuiltin {
		q.User = s.User
	}
	if s.Source["port"] != SourceBuiltin {
		q.Port = s.Port
	}
	switch {
	case s.Via != "":
		// opsmop_via decides the jump host: the config's ProxyJump or
		// ProxyCommand is not consulted (as when ssh is given -J).
		q.JumpChain = []sshconfig.Hop{{Host: s.Via}}
	case in.Jump != nil && len(in.Jump.Before) > 0:
		for _, j := range in.Jump.Before {
			q.JumpChain = append(q.JumpChain, sshconfig.Hop{Host: j.Host, User: j.User, Port: j.Port})
		}
	}
	r, err := in.SSHConfig.Lookup(q)
	if err != nil {
		var ce *sshconfig.Error
		if errors.As(err, &ce) {
			ce.Host = "" // named below, by its inventory name
			return fmt.Errorf("host %s: ssh config %w", in.Host, err)
		}
		return fmt.Errorf("host %s: ssh config: %w", in.Host, err)
	}
	builtin := func(key string) bool { return s.Source[key] == SourceBuiltin || s.Source[key] == "" }
	src := SSHConfigSource
	if r.HostName.Set {
		s.Address, s.Source["address"] = r.HostName.Value, src(r.HostName.At)
	}
	if r.Port.Set && builtin("port") {
		s.Port, s.Source["port"] = r.Port.Value, src(r.Port.At)
	}
	if r.User.Set && builtin("user") {
		s.User, s.Source["user"] = r.User.Value, src(r.User.At)
	}
	if r.IdentitiesOnly.Set && builtin("identities_only") {
		s.IdentitiesOnly, s.Source["identities_only"] = r.IdentitiesOnly.Value, src(r.IdentitiesOnly.At)
	}
	if r.ConnectTimeout.Set && r.ConnectTimeout.Value > 0 && builtin("connect_timeout") {
		s.ConnectTimeout, s.Source["connect_timeout"] = r.ConnectTimeout.Value, src(r.ConnectTimeout.At)
	}
	for _, f := range r.IdentityFiles {
		s.IdentityFiles = append(s.IdentityFiles, f.Value)
		s.Source[keyIdentityFiles] = src(f.At) // the last line adds the last file
	}
	for _, f := range r.CertificateFiles {
		s.CertificateFiles = append(s.CertificateFiles, f.Value)
		s.Source[keyCertificateFiles] = src(f.At)
	}
	if r.IdentityAgent.Set {
		s.IdentityAgent, s.Source[keyIdentityAgent] = r.IdentityAgent.Value, src(r.IdentityAgent.At)
		if s.IdentityAgent == "SSH_AUTH_SOCK" {
			s.IdentityAgent = "" // the agent of $SSH_AUTH_SOCK, as without the line
		}
	}
	if r.AddressFamily.Set {
		s.AddressFamily, s.Source[keyAddressFamily] = r.AddressFamily.Value, src(r.AddressFamily.At)
	}
	s.applyHostKeySettings(r)
	s.applyLiveness(r)
	s.applyAuthMethods(r)
	if len(q.JumpChain) == 0 && r.ProxyJump.Set {
		s.Source["via"] = src(r.ProxyJump.At)
		for _, h := range r.ProxyJump.Value {
			s.ProxyJump = append(s.ProxyJump, Jump{Host: h.Host, User: h.User, Port: h.Port})
		}
		s.ProxyJumpAt = src(r.ProxyJump.At)
	}
	return nil
}

// applyHostKeySettings takes the known_hosts files, HashKnownHosts and
// StrictHostKeyChecking of r. StrictHostKeyChecking accept-new or no
// records the keys of new hosts (as --accept-new-host-keys does); it never
// lets a changed key through, and yes or ask change nothing (opsmop never
// asks).
func (s *Settings) applyHostKeySettings(r *sshconfig.Result) {
	src := SSHConfigSource
	if r.UserKnownHostsFiles.Set {
		s.KnownHostsFiles = append([]string{}, r.UserKnownHostsFiles.Value...)
		s.KnownHostsFilesSet, s.Source[keyKnownHosts] = true, src(r.UserKnownHostsFiles.At)
	}
	if r.GlobalKnownHostsFiles.Set {
		s.GlobalKnownHostsFiles = append([]string{}, r.GlobalKnownHostsFiles.Value...)
		s.GlobalKnownHostsFilesSet, s.Source[keyGlobalKnownHosts] = true, src(r.GlobalKnownHostsFiles.At)
	}
	if r.HashKnownHosts.Set {
		s.HashKnownHosts, s.Source[keyHashKnownHosts] = r.HashKnownHosts.Value, src(r.HashKnownHosts.At)
	}
	if r.StrictHostKeyChecking.Set {
		v := r.StrictHostKeyChecking.Value
		s.AcceptNewHostKeys = v == "accept-new" || v == "no"
		s.Source[keyAcceptNew] = src(r.StrictHostKeyChecking.At)
	}
}

// applyLiveness takes ServerAliveInterval and ServerAliveCountMax: a
// positive interval replaces opsmop's keepalive interval; 0 (OpenSSH's
// "off") keeps opsmop's, which the run needs to notice a dead host.
func (s *Settings) applyLiveness(r *sshconfig.Result) {
	src := SSHConfigSource
	if r.ServerAliveInterval.Set && r.ServerAliveInterval.Value > 0 {
		s.Keepalive, s.Source[keyKeepalive] = r.ServerAliveInterval.Value, src(r.ServerAliveInterval.At)
	}
	if r.ServerAliveCountMax.Set && r.ServerAliveCountMax.Value > 0 {
		s.KeepaliveMax, s.Source[keyKeepaliveMax] = r.ServerAliveCountMax.Value, src(r.ServerAliveCountMax.At)
	}
}

// applyAuthMethods takes PubkeyAuthentication, PasswordAuthentication and
// KbdInteractiveAuthentication no, and BatchMode yes.
func (s *Settings) applyAuthMethods(r *sshconfig.Result) {
	off := func(st sshconfig.Setting[bool], flag *bool) {
		if st.Set && !st.Value {
			*flag = true
			s.Source[keyAuthMethods] = SSHConfigSource(st.At)
		}
	}
	off(r.PubkeyAuthentication, &s.NoPubkey)
	off(r.PasswordAuthentication, &s.NoPassword)
	off(r.KbdInteractiveAuthentication, &s.NoKeyboardInteractive)
	if r.BatchMode.Set && r.BatchMode.Value {
		s.BatchMode = true
		s.Source[keyAuthMethods] = SSHConfigSource(r.BatchMode.At)
	}
}
