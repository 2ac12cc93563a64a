package defaults

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/internal/secret"
)

// KV is one effective setting as shown by `opsmop inventory --host`.
type KV struct {
	Key    string
	Value  string
	Source string // as in Settings.Source; "" when nothing set it
}

// none is shown for a setting no level sets.
const none = "(none)"

// Describe lists the effective settings with the level that set each, in
// a fixed order: address, port, user, password, private_key,
// identity_files, certificate_files, identity_agent, identities_only,
// auth_methods, sudo, sudo_user, sudo_password, via, check_host_keys,
// accept_new_host_keys, known_hosts, global_known_hosts, hash_known_hosts,
// connection, address_family, connect_timeout, keepalive, keepalive_max,
// command_timeout, forks. Passwords show as <redacted> when set. viaChain,
// if given (see ViaChain), is shown as the via value ("jump1 -> jump2");
// otherwise the direct jump host, or the ssh config's ProxyJump hops.
func (s Settings) Describe(viaChain ...string) []KV {
	str := func(v string) string {
		if v == "" {
			return none
		}
		return v
	}
	pw := func(p secret.Secret) string {
		if p.IsZero() {
			return none
		}
		return secret.Redacted
	}
	via := str(s.Via)
	if s.Via == "" && len(s.ProxyJump) > 0 {
		hops := make([]string, len(s.ProxyJump))
		for i, j := range s.ProxyJump {
			hops[i] = j.Host
		}
		via = strings.Join(hops, " -> ")
	}
	if len(viaChain) > 0 {
		via = strings.Join(viaChain, " -> ")
	}
	rows := []KV{
		{"address", str(s.Address), ""},
		{"port", strconv.Itoa(s.Port), ""},
		{"user", str(s.User), ""},
		{"password", pw(s.Password), ""},
		{"private_key", str(s.PrivateKey), ""},
		{keyIdentityFiles, list(s.IdentityFiles), ""},
		{keyCertificateFiles, list(s.CertificateFiles), ""},
		{keyIdentityAgent, agent(s.IdentityAgent), ""},
		{"identities_only", strconv.FormatBool(s.IdentitiesOnly), ""},
		{keyAuthMethods, s.authMethods(), ""},
		{"sudo", strconv.FormatBool(s.Sudo), ""},
		{"sudo_user", str(s.SudoUser), ""},
		{"sudo_password", pw(s.SudoPassword), ""},
		{"via", via, ""},
		{"check_host_keys", strconv.FormatBool(s.CheckHostKeys), ""},
		{keyAcceptNew, strconv.FormatBool(s.AcceptNewHostKeys), ""},
		{keyKnownHosts, knownHosts(s.KnownHostsFilesSet, s.KnownHostsFiles, "~/.ssh/known_hosts"), ""},
		{keyGlobalKnownHosts, knownHosts(s.GlobalKnownHostsFilesSet, s.GlobalKnownHostsFiles, "/etc/ssh/ssh_known_hosts"), ""},
		{keyHashKnownHosts, strconv.FormatBool(s.HashKnownHosts), ""},
		{"connection", str(s.Connection), ""},
		{keyAddressFamily, family(s.AddressFamily), ""},
		{"connect_timeout", s.ConnectTimeout.String(), ""},
		{keyKeepalive, keepalive(s.Keepalive), ""},
		{keyKeepaliveMax, keepaliveMax(s.KeepaliveMax), ""},
		{"command_timeout", s.CommandTimeout.String(), ""},
		{"forks", strconv.Itoa(s.Forks), ""},
	}
	for i := range rows {
		rows[i].Source = s.Source[rows[i].Key]
	}
	return rows
}

// authMethods lists the login methods tried, in order.
func (s Settings) authMethods() string {
	var m []string
	if !s.NoPubkey {
		m = append(m, "publickey")
	}
	if !s.NoPassword {
		m = append(m, "password")
	}
	if !s.NoKeyboardInteractive {
		m = append(m, "keyboard-interactive")
	}
	out := none
	if len(m) > 0 {
		out = strings.Join(m, ", ")
	}
	if s.BatchMode {
		out += " (batch mode: no passphrase asked)"
	}
	return out
}

// list shows file names, comma-separated.
func list(files []string) string {
	if len(files) == 0 {
		return none
	}
	return strings.Join(files, ", ")
}

// agent shows the identity agent setting.
func agent(a string) string {
	if a == "" {
		return "$SSH_AUTH_SOCK"
	}
	return a
}

// knownHosts shows a known_hosts setting: the files, or def when the ssh
// config does not set them.
func knownHosts(set bool, files []string, def string) string {
	if !set {
		return def
	}
	return list(files)
}

// family shows AddressFamily.
func family(f string) string {
	if f == "" {
		return "any"
	}
	return f
}

// keepalive shows the keepalive interval (0: opsmop's own).
func keepalive(d time.Duration) string {
	if d <= 0 {
		return "connect_timeout, at most 15s"
	}
	return d.String()
}

// keepaliveMax shows how many unanswered keepalives end a connection.
func keepaliveMax(n int) string {
	if n <= 0 {
		return "3"
	}
	return strconv.Itoa(n)
}

// ViaChainError is a cycle in opsmop_via.
type ViaChainError struct {
	// Cycle lists the hosts from the first repeated one back to itself.
	Cycle []string
}

// Error names the hosts in the cycle.
func (e *ViaChainError) Error() string {
	return fmt.Sprintf("%s jump hosts form a cycle: %s (fix one of these hosts' %s)", VarVia, strings.Join(e.Cycle, " -> "), VarVia)
}

// ViaChain returns the jump hosts to go through to reach host, in dialling
// order (the first to connect to first), by following via from host: via
// returns a host's opsmop_via ("" for a direct connection), e.g. the Via of
// its resolved Settings. A cycle is a *ViaChainError; an error from via is
// returned as is. A direct host gives an empty chain.
func ViaChain(host string, via func(host string) (string, error)) ([]string, error) {
	seen := map[string]int{host: 0}
	path := []string{host}
	cur := host
	for {
		next, err := via(cur)
		if err != nil {
			return nil, err
		}
		if next == "" {
			break
		}
		if i, ok := seen[next]; ok {
			return nil, &ViaChainError{Cycle: append(append([]string{}, path[i:]...), next)}
		}
		seen[next] = len(path)
		path = append(path, next)
		cur = next
	}
	// path is host, jump1 (nearest), ...; dial from the far end.
	chain := make([]string, 0, len(path)-1)
	for i := len(path) - 1; i >= 1; i-- {
		chain = append(chain, path[i])
	}
	return chain, nil
}
