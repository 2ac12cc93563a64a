package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/term"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/homedir"
	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/sshconfig"
	"github.com/opsmop/opsmop/inventory"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// session is everything loaded before a host is contacted.
type session struct {
	env     Env
	pol     *policy.Policy
	reg     policy.Registry
	inv     *inventory.Inventory
	defs    *defaults.File
	extra   map[string]any
	limits  []*inventory.Limit // --limit
	retry   map[string]bool    // --retry-failed: the recorded hosts; nil: all
	local   bool
	askSSH  *secret.Secret
	askSudo *secret.Secret
	curUser string
	// login is the command line's login overrides (-u, --private-key, -T,
	// -b, --sudo-user): the first level of every host's settings but jump
	// hosts'.
	login defaults.CommandLine
	// loginEnv names, by Settings.Source key, the login overrides that
	// came from environment variables ("user": "$OPSMOP_USER").
	loginEnv map[string]string
	// sshcfg is the OpenSSH client configuration (nil: none is read).
	sshcfg *sshconfig.Config
	// localHost and uid are %l and %i in ssh config values.
	localHost, uid string
	// slice is --slice (nil: none); sliceHosts the names of its hosts.
	slice      *sliceSpec
	sliceHosts map[string]bool
}

// loadOptions say what load reads: the parts of a command's options that
// choose the policy, the inventory and the hosts.
type loadOptions struct {
	// Command names the command in messages.
	Command string
	// Policy is the POLICY argument ("" when none was given). Unless
	// NeedPolicy, it is loaded only when it is named like a policy file.
	Policy     string
	NeedPolicy bool
	// Inventory is -i ("": the policy's inventory key).
	Inventory   string
	Local       bool
	RetryFailed bool
	// Limit is --limit ("": every host).
	Limit string
	// Slice is --slice K/N ("": the whole selection). The slice is taken
	// of every host the command selects: the union of the policy's roles'
	// hosts with NeedPolicy, else the inventory's (after --limit).
	Slice string
	// ExtraVars are the -e values; none leaves the session's extra vars
	// nil.
	ExtraVars []string
	// Login is the command line's login overrides.
	Login LoginOptions
}

// load reads the policy (if given), the inventory, the defaults file and
// the extra vars. Every error is an invalid-invocation error (exit 3).
func load(ctx context.Context, env Env, o loadOptions) (*session, error) {
	s := &session{env: env, reg: providers.Registry(), curUser: currentUser(), login: o.Login.commandLine(), loginEnv: o.Login.envSources()}
	defs, _, err := defaults.LoadFrom(defaults.HomeFile(env.Home), etcDefaults(env))
	if err != nil {
		return nil, invalid(err)
	}
	s.defs = defs
	invPath := o.Inventory
	switch {
	case o.Policy != "" && (o.NeedPolicy || isPolicyFile(o.Policy)):
		p, err := policy.Load(o.Policy, s.reg)
		if err != nil {
			return nil, invalid(err)
		}
		s.pol = p
		if invPath == "" {
			invPath = p.Inventory
		}
	case o.NeedPolicy:
		return nil, invalid(fmt.Errorf("missing POLICY argument: opsmop %s POLICY (a .toml or .yaml policy file)", o.Command))
	}
	if s.pol == nil {
		s.pol = &policy.Policy{Dir: "."}
	}
	s.local = o.Local
	if !s.local {
		if err := s.loadSSHConfig(o.Login.SSHConfig); err != nil {
			return nil, invalid(err)
		}
	}
	switch {
	case invPath != "":
		inv, err := loadInventory(ctx, invPath, o.Inventory == "", o.Policy)
		if err != nil {
			return nil, invalid(err)
		}
		s.inv = inv
	case s.local:
		inv, err := inventory.New(nil, map[string]map[string]any{"localhost": {"opsmop_connection": "local"}})
		if err != nil {
			return nil, invalid(err)
		}
		s.inv = inv
	default:
		return nil, invalid(errors.New("no inventory: give one with -i FILE or set inventory in the policy (or use --local)"))
	}
	if o.RetryFailed {
		names, err := readLastFailed(env.Home, o.Policy)
		if err != nil {
			return nil, invalid(err)
		}
		var known []string
		for _, n := range names {
			if _, ok := s.inv.Host(n); ok {
				known = append(known, n)
			}
		}
		if len(known) == 0 {
			return nil, invalid(fmt.Errorf("--retry-failed: none of the recorded hosts (%s) is in the inventory", strings.Join(names, ", ")))
		}
		s.retry = map[string]bool{}
		for _, n := range known {
			s.retry[n] = true // by name: a host name is no pattern
		}
	}
	if o.Limit != "" {
		lim, err := inventory.ParseLimit(o.Limit)
		if err != nil {
			return nil, invalid(err) // the error names the --limit value
		}
		if _, err := lim.Filter(s.inv, s.inv.Hosts()); err != nil {
			return nil, invalid(err)
		}
		s.limits = append(s.limits, lim)
	}
	if o.Slice != "" {
		if err := s.setSlice(o.Slice, o.NeedPolicy); err != nil {
			return nil, invalid(err)
		}
	}
	if len(o.ExtraVars) > 0 {
		s.extra, err = parseExtraVars(o.ExtraVars)
		if err != nil {
			return nil, invalid(err)
		}
	}
	return s, nil
}

// loadSSHConfig reads the OpenSSH client configuration: the file -F names
// ("none": none), else ~/.ssh/config and the system's ssh_config, each
// only if it exists.
func (s *session) loadSSHConfig(file string) error {
	var srcs []sshconfig.Source
	switch file {
	case "none":
		return nil
	case "":
		srcs = []sshconfig.Source{
			{Path: filepath.Join(s.env.Home, ".ssh", "config")},
			{Path: etcSSHConfig(s.env), System: true},
		}
	default:
		srcs = []sshconfig.Source{{Path: homedir.Expand(file, s.env.Home), Required: true}}
	}
	cfg, err := sshconfig.Load(srcs, s.env.Home)
	if err != nil {
		return fmt.Errorf("ssh config: %w (-F FILE reads another file, -F none none)", err)
	}
	s.sshcfg = cfg
	s.localHost, _ = os.Hostname()
	s.uid = strconv.Itoa(os.Getuid())
	return nil
}

// etcSSHConfig is the system's OpenSSH client configuration:
// env.EtcSSHConfig, else /etc/ssh/ssh_config.
func etcSSHConfig(env Env) string {
	if env.EtcSSHConfig != "" {
		return env.EtcSSHConfig
	}
	return "/etc/ssh/ssh_config"
}

// currentUser is the name of the user running opsmop ("" if unknown):
// the default SSH user.
func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// loadInventory loads the inventory at path. When the path came from the
// policy's inventory key rather than -i, a file that does not exist is
// reported against the policy file, with what to do. A -i value that is
// an inline host list (isInlineHosts) is that list.
func loadInventory(ctx context.Context, path string, fromPolicy bool, policyFile string) (*inventory.Inventory, error) {
	if !fromPolicy && isInlineHosts(path) {
		return inlineInventory(path)
	}
	if _, err := os.Stat(path); fromPolicy && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: inventory %s (set by the policy's inventory key) does not exist: fix the path (relative to the policy file) or give -i FILE", policyFile, path)
	} else if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("inventory %s: no such file or directory (give an existing inventory file with -i; for a list of hosts, end it with a comma: -i '%s,')", path, path)
	}
	return inventory.Load(ctx, path)
}

// isInlineHosts reports whether v, a -i value, is an inline host list:
// it holds a comma and no file or directory of that name exists (as
// Ansible's -i 'h1,h2,'). Without a comma a value is always a file.
func isInlineHosts(v string) bool {
	if !strings.Contains(v, ",") {
		return false
	}
	_, err := os.Stat(v)
	return errors.Is(err, os.ErrNotExist)
}

// inlineInventory is the inventory of an inline host list: the
// comma-separated names (blanks around them and empty items ignored, so
// a trailing comma is allowed), each an ungrouped host without variables,
// in the order given.
func inlineInventory(v string) (*inventory.Inventory, error) {
	var hosts []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			hosts = append(hosts, n)
		}
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("-i %q: an inline host list names no host: give -i 'host1,host2,' or an inventory file", v)
	}
	inv, err := inventory.NewList(hosts)
	if err != nil {
		return nil, fmt.Errorf("-i %q (an inline host list, as no such file exists): %w", v, err)
	}
	return inv, nil
}

// etcDefaults is the machine-wide defaults file: env.EtcDefaults, else
// /etc/opsmop/defaults.toml.
func etcDefaults(env Env) string {
	if env.EtcDefaults != "" {
		return env.EtcDefaults
	}
	return defaults.EtcFile
}

// isPolicyFile reports whether p is named like a policy file.
func isPolicyFile(p string) bool {
	switch strings.ToLower(filepath.Ext(p)) {
	case ".toml", ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// parseExtraVars reads -e values, each whole (commas are not separators):
// a JSON object ({"port": 8080}), @file.(toml|yaml|yml|json), or k=v
// strings split and typed like inventory host variables. Later values
// replace earlier ones.
func parseExtraVars(vals []string) (map[string]any, error) {
	out := map[string]any{}
	for _, v := range vals {
		var m map[string]any
		switch {
		case strings.HasPrefix(v, "@"):
			p := v[1:]
			data, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("--extra-vars %s: %w", v, err)
			}
			n, err := policy.Parse(p, data)
			if err != nil {
				return nil, fmt.Errorf("--extra-vars %s: %w", v, err)
			}
			var ok bool
			if m, ok = n.Interface().(map[string]any); !ok {
				return nil, fmt.Errorf("--extra-vars %s: the file must hold a map of variables", v)
			}
		case strings.HasPrefix(strings.TrimSpace(v), "{"):
			if err := json.Unmarshal([]byte(v), new(map[string]any)); err != nil {
				return nil, fmt.Errorf("--extra-vars %q: not a JSON object: %v (give a JSON object, k=v or @file)", v, err)
			}
			// Decoded through the policy parser so that numbers and
			// nested values have the types policy variables have.
			n, err := policy.ParseYAML("--extra-vars", []byte(v))
			if err != nil {
				return nil, fmt.Errorf("--extra-vars %q: %w", v, err)
			}
			m, _ = n.Interface().(map[string]any)
		default:
			var err error
			if m, err = inventory.ParseHostVars(v); err != nil {
				return nil, fmt.Errorf("--extra-vars %q: %w (want k=v, a JSON object or @file)", v, err)
			}
			if len(m) == 0 {
				return nil, fmt.Errorf("--extra-vars %q: want k=v, a JSON object or @file", v)
			}
		}
		for k, val := range m {
			out[k] = val
		}
	}
	return out, nil
}

// selectHosts returns a role's hosts after --limit and --retry-failed, in
// inventory order.
func (s *session) selectHosts(groups, hosts string) ([]*inventory.Host, error) {
	sel := s.inv.Select(groups, hosts)
	if s.retry != nil {
		var kept []*inventory.Host
		for _, h := range sel {
			if s.retry[h.Name] {
				kept = append(kept, h)
			}
		}
		sel = kept
	}
	for _, l := range s.limits {
		var err error
		if sel, err = l.Filter(s.inv, sel); err != nil {
			return nil, err
		}
	}
	if s.sliceHosts != nil {
		var kept []*inventory.Host
		for _, h := range sel {
			if s.sliceHosts[h.Name] {
				kept = append(kept, h)
			}
		}
		sel = kept
	}
	return sel, nil
}

// setSlice parses --slice and computes its hosts from the selection:
// the union of the roles' hosts (roles), else every host.
func (s *session) setSlice(v string, roles bool) error {
	sl, err := parseSlice(v)
	if err != nil {
		return err
	}
	var base []*inventory.Host
	if roles {
		for _, r := range s.pol.Roles {
			hosts, err := s.selectHosts(r.Groups, r.Hosts)
			if err != nil {
				return err
			}
			base = append(base, hosts...)
		}
	} else if base, err = s.selectHosts("", ""); err != nil {
		return err
	}
	s.slice, s.sliceHosts = &sl, sl.members(base)
	return nil
}

// askPasswords prompts on the terminal for the SSH password (sshPass, -k)
// and then the sudo password (sudoPass, -K); every role's settings use
// them. A prompt that cannot be answered is an invalid-invocation error.
func (s *session) askPasswords(sshPass, sudoPass bool) error {
	for _, ask := range []struct {
		want  bool
		label string
		dst   **secret.Secret
	}{
		{sshPass, "SSH password", &s.askSSH},
		{sudoPass, "sudo password", &s.askSudo},
	} {
		if !ask.want {
			continue
		}
		p, err := s.prompt(ask.label)
		if err != nil {
			return invalid(err)
		}
		*ask.dst = &p
	}
	return nil
}

// prompt reads a secret from the terminal without echo.
func (s *session) prompt(label string) (secret.Secret, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("%s: no terminal to ask on (set the password with env:NAME or file:PATH instead): %w", label, err)
	}
	defer f.Close()
	fmt.Fprintf(f, "%s: ", label)
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(f)
	if err != nil {
		return secret.Secret{}, fmt.Errorf("%s: %w", label, err)
	}
	return secret.New(string(b)), nil
}

// passphrasePrompt asks for the passphrase of the encrypted key file at
// path.
func (s *session) passphrasePrompt(path string) (secret.Secret, error) {
	return s.prompt("passphrase for " + path)
}

// roleOverrides turns a role's login keys into defaults.Role.
func roleOverrides(r *policy.Role) defaults.Role {
	var o defaults.Role
	if r == nil {
		return o
	}
	if r.SSHAs != nil {
		o.SSHUser, o.SSHPassword, o.SSHPrivateKey = r.SSHAs.Username, r.SSHAs.Password, r.SSHAs.PrivateKey
	}
	o.Sudo = r.Sudo
	if r.SudoAs != nil {
		o.SudoUser, o.SudoPassword = r.SudoAs.Username, r.SudoAs.Password
	}
	o.CheckHostKeys = r.CheckHostKeys
	return o
}

// settings resolves the connection settings of host under role (nil role:
// the inventory's own view, used for `inventory --host`), the command
// line's login overrides first.
func (s *session) settings(role *policy.Role, host string) (defaults.Settings, error) {
	st, err := s.resolveSettings(role, host, s.login)
	if err != nil {
		return st, err
	}
	for k, src := range s.loginEnv {
		if st.Source[k] == defaults.SourceCommandLine {
			st.Source[k] = src
		}
	}
	return st, nil
}

// jumpSettings resolves the settings of a jump host: under no role, and
// without the command line's login overrides, which are for the hosts the
// command works on. A ProxyJump hop (spec non-nil) may be a host the
// inventory does not know, and the user and port it gives win.
func (s *session) jumpSettings(host string, spec *defaults.JumpSpec) (defaults.Settings, error) {
	if spec == nil {
		return s.resolveSettings(nil, host, defaults.CommandLine{})
	}
	in := s.inputs(nil, host, defaults.CommandLine{})
	if h, ok := s.inv.Host(host); ok {
		in.Vars = h.Vars // else a hop only the ssh config names: no vars
	}
	in.Jump = spec
	return defaults.Resolve(in)
}

// resolveSettings resolves host's settings under role with cl as the
// command-line level.
func (s *session) resolveSettings(role *policy.Role, host string, cl defaults.CommandLine) (defaults.Settings, error) {
	h, ok := s.inv.Host(host)
	if !ok {
		return defaults.Settings{}, fmt.Errorf("host %s is not in the inventory", host)
	}
	in := s.inputs(role, host, cl)
	in.Vars = h.Vars
	return defaults.Resolve(in)
}

// inputs is what Resolve needs for host under role, but its variables.
func (s *session) inputs(role *policy.Role, host string, cl defaults.CommandLine) defaults.Inputs {
	in := defaults.Inputs{
		CommandLine: cl,
		Host:        host, Role: roleOverrides(role), Defaults: s.defs,
		CurrentUser: s.curUser, Home: s.env.Home, Getenv: s.env.Getenv,
		SSHConfig: s.sshcfg, LocalHost: s.localHost, UID: s.uid,
	}
	if role != nil {
		in.AskedSSHPassword, in.AskedSudoPassword = s.askSSH, s.askSudo
	}
	return in
}

// hop is one resolved jump host.
type hop struct {
	name     string
	settings defaults.Settings
}

// jumpChain resolves the jump hosts of a host with settings st, in
// dialling order (chain[0] is dialled first): its opsmop_via host and that
// host's own jumps, else its ssh config ProxyJump hops (the first hop with
// its own jumps; the later ones reached through the hop before them, their
// own jump settings unused, as ssh -J does). A host met twice is a
// *defaults.ViaChainError.
func (s *session) jumpChain(name string, st defaults.Settings, path []string) ([]hop, error) {
	path = append(path, name)
	next := func(n string, spec *defaults.JumpSpec) (hop, error) {
		if slices.Contains(path, n) {
			i := slices.Index(path, n)
			return hop{}, &defaults.ViaChainError{Cycle: append(append([]string{}, path[i:]...), n)}
		}
		hs, err := s.jumpSettings(n, spec)
		return hop{name: n, settings: hs}, err
	}
	if st.Via != "" {
		h, err := next(st.Via, nil)
		if err != nil {
			return nil, err
		}
		chain, err := s.jumpChain(h.name, h.settings, path)
		return append(chain, h), err
	}
	var chain []hop
	for i, j := range st.ProxyJump {
		h, err := next(j.Host, &defaults.JumpSpec{User: j.User, Port: j.Port, At: st.ProxyJumpAt + " (ProxyJump)", Before: st.ProxyJump[:i]})
		if err != nil {
			return nil, err
		}
		if i == 0 {
			if chain, err = s.jumpChain(h.name, h.settings, path); err != nil {
				return nil, err
			}
		}
		chain = append(chain, h)
		path = append(path, h.name)
	}
	return chain, nil
}

// viaChain lists the names of host's jump hosts in dialling order (as
// `inventory --host` shows them).
func (s *session) viaChain(host string, st defaults.Settings) ([]string, error) {
	chain, err := s.jumpChain(host, st, nil)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(chain))
	for i, h := range chain {
		names[i] = h.name
	}
	return names, nil
}

// resolve resolves, once, everything connecting to host under role needs:
// its settings and its connection target, jump hosts included (each
// resolved under no role).
func (s *session) resolve(role *policy.Role, host string) (hostConn, error) {
	st, err := s.settings(role, host)
	if err != nil {
		return hostConn{}, err
	}
	hc := hostConn{settings: st, target: s.toTarget(st)}
	chain, err := s.jumpChain(host, st, nil)
	if err != nil {
		return hostConn{}, err
	}
	var parent *connection.Target
	for _, h := range chain {
		ht := s.toTarget(h.settings)
		ht.Sudo = false
		ht.Via = parent
		parent = &ht
	}
	hc.target.Via = parent
	return hc, nil
}

// toTarget is the connection target of resolved settings, without Via.
func (s *session) toTarget(st defaults.Settings) connection.Target {
	t := connection.Target{
		Name: st.Host, Address: st.Address, Port: st.Port,
		User: st.User, Password: st.Password, PrivateKey: st.PrivateKey,
		IdentityFiles: st.IdentityFiles, CertificateFiles: st.CertificateFiles, IdentityAgent: st.IdentityAgent,
		NoPubkey: st.NoPubkey, NoPassword: st.NoPassword, NoKeyboardInteractive: st.NoKeyboardInteractive, BatchMode: st.BatchMode,
		CheckHostKeys: st.CheckHostKeys, IdentitiesOnly: st.IdentitiesOnly, AcceptNewHostKeys: st.AcceptNewHostKeys,
		Sudo: st.Sudo, SudoUser: st.SudoUser, SudoPassword: st.SudoPassword,
		ConnectTimeout: st.ConnectTimeout, CommandTimeout: st.CommandTimeout,
		Keepalive: st.Keepalive, KeepaliveMax: st.KeepaliveMax,
	}
	switch st.AddressFamily {
	case "inet":
		t.Network = "tcp4"
	case "inet6":
		t.Network = "tcp6"
	}
	if st.KnownHostsFilesSet || st.GlobalKnownHostsFilesSet || st.HashKnownHosts {
		user, global := s.knownHostsFiles()
		if st.KnownHostsFilesSet {
			user = st.KnownHostsFiles
		}
		if st.GlobalKnownHostsFilesSet {
			global = st.GlobalKnownHostsFiles
		}
		kh := &connection.KnownHosts{Files: append(append([]string{}, user...), global...), Hash: st.HashKnownHosts}
		if len(user) > 0 {
			kh.Record = user[0]
		}
		t.KnownHosts = kh
	}
	return t
}

// knownHostsFiles are OpenSSH's default known_hosts files: the user's
// (~/.ssh/known_hosts, where new keys are recorded) and the system's.
func (s *session) knownHostsFiles() (user, global []string) {
	return []string{filepath.Join(s.env.Home, ".ssh", "known_hosts")}, []string{"/etc/ssh/ssh_known_hosts"}
}

// runPlan is a policy turned into engine plans, with each (role, host)'s
// connection resolved.
type runPlan struct {
	plans []engine.RoleHosts
	// forks is the first selected host's forks setting (0: no host).
	forks int
	hosts hostConns
}

// plans turns the policy's roles into engine plans, resolving each
// selected host's settings once per role.
func (s *session) plans() (runPlan, error) {
	rp := runPlan{hosts: hostConns{}}
	for _, r := range s.pol.Roles {
		hosts, err := s.selectHosts(r.Groups, r.Hosts)
		if err != nil {
			return runPlan{}, err
		}
		p := engine.RoleHosts{Role: r}
		for _, h := range hosts {
			hc, err := s.resolve(r, h.Name)
			if err != nil {
				return runPlan{}, err
			}
			st := hc.settings
			if rp.forks == 0 {
				rp.forks = st.Forks
			}
			rp.hosts[hostKey{role: r, host: h.Name}] = hc
			p.Hosts = append(p.Hosts, &engine.HostInfo{Name: h.Name, Address: st.Address, Groups: h.Groups, Vars: h.Vars, CommandTimeout: st.CommandTimeout})
		}
		rp.plans = append(rp.plans, p)
	}
	return rp, nil
}

// joinErrors joins errs into one error, one message a line.
func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n"))
}
