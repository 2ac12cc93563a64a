package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/secret"
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
}

// load reads the policy (if given), the inventory, the defaults file and
// the extra vars. Every error is an invalid-invocation error (exit 3).
func load(ctx context.Context, c *cli.Context, env Env, needPolicy bool) (*session, error) {
	s := &session{env: env, reg: providers.Registry(), curUser: currentUser()}
	defs, _, err := defaults.LoadFrom(defaults.HomeFile(env.Home), etcDefaults(env))
	if err != nil {
		return nil, invalid(err)
	}
	s.defs = defs
	invPath := c.String("inventory")
	switch {
	case c.Args().Len() > 0 && (needPolicy || isPolicyFile(c.Args().First())):
		p, err := policy.Load(c.Args().First(), s.reg)
		if err != nil {
			return nil, invalid(err)
		}
		s.pol = p
		if invPath == "" {
			invPath = p.Inventory
		}
	case needPolicy:
		return nil, invalid(fmt.Errorf("missing POLICY argument: opsmop %s POLICY (a .toml or .yaml policy file)", c.Command.Name))
	}
	if s.pol == nil {
		s.pol = &policy.Policy{Dir: "."}
	}
	s.local = c.Bool("local")
	switch {
	case invPath != "":
		inv, err := loadInventory(ctx, invPath, c.String("inventory") == "", c.Args().First())
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
	if c.Bool("retry-failed") {
		names, err := readLastFailed(env.Home, c.Args().First())
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
	if l := c.String("limit"); l != "" {
		lim, err := inventory.ParseLimit(l)
		if err != nil {
			return nil, invalid(err) // the error names the --limit value
		}
		if _, err := lim.Filter(s.inv, s.inv.Hosts()); err != nil {
			return nil, invalid(err)
		}
		s.limits = append(s.limits, lim)
	}
	if c.IsSet("extra-vars") || len(c.StringSlice("extra-vars")) > 0 {
		s.extra, err = parseExtraVars(c.StringSlice("extra-vars"))
		if err != nil {
			return nil, invalid(err)
		}
	}
	return s, nil
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
// reported against the policy file, with what to do.
func loadInventory(ctx context.Context, path string, fromPolicy bool, policyFile string) (*inventory.Inventory, error) {
	if _, err := os.Stat(path); fromPolicy && errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: inventory %s (set by the policy's inventory key) does not exist: fix the path (relative to the policy file) or give -i FILE", policyFile, path)
	}
	return inventory.Load(ctx, path)
}

func etcDefaults(env Env) string {
	if env.EtcDefaults != "" {
		return env.EtcDefaults
	}
	return defaults.EtcFile
}

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
	return sel, nil
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
// the inventory's own view, used for jump hosts and `inventory --host`).
func (s *session) settings(role *policy.Role, host string) (defaults.Settings, error) {
	h, ok := s.inv.Host(host)
	if !ok {
		return defaults.Settings{}, fmt.Errorf("host %s is not in the inventory", host)
	}
	in := defaults.Inputs{
		Host: host, Vars: h.Vars, Role: roleOverrides(role), Defaults: s.defs,
		CurrentUser: s.curUser, Home: s.env.Home, Getenv: s.env.Getenv,
	}
	if role != nil {
		in.AskedSSHPassword, in.AskedSudoPassword = s.askSSH, s.askSudo
	}
	return defaults.Resolve(in)
}

// viaChain lists host's jump hosts (nearest last) and refuses cycles.
func (s *session) viaChain(host string) ([]string, error) {
	return defaults.ViaChain(host, func(h string) (string, error) {
		st, err := s.settings(nil, h)
		if err != nil {
			return "", err
		}
		return st.Via, nil
	})
}

// target builds the connection target of host, its Via chain included.
func (s *session) target(role *policy.Role, host string) (connection.Target, defaults.Settings, error) {
	st, err := s.settings(role, host)
	if err != nil {
		return connection.Target{}, st, err
	}
	t := toTarget(st)
	if st.Via != "" {
		chain, err := s.viaChain(host)
		if err != nil {
			return t, st, err
		}
		// chain is in dialling order: chain[0] is the far end (first hop).
		var parent *connection.Target
		for _, hop := range chain {
			hs, err := s.settings(nil, hop)
			if err != nil {
				return t, st, fmt.Errorf("jump host %s of %s: %w", hop, host, err)
			}
			ht := toTarget(hs)
			ht.Sudo = false
			ht.Via = parent
			parent = &ht
		}
		t.Via = parent
	}
	return t, st, nil
}

func toTarget(st defaults.Settings) connection.Target {
	return connection.Target{
		Name: st.Host, Address: st.Address, Port: st.Port,
		User: st.User, Password: st.Password, PrivateKey: st.PrivateKey,
		CheckHostKeys: st.CheckHostKeys,
		Sudo:          st.Sudo, SudoUser: st.SudoUser, SudoPassword: st.SudoPassword,
		ConnectTimeout: st.ConnectTimeout, CommandTimeout: st.CommandTimeout,
	}
}

// connector connects hosts for the engine: SSH through one pool, or the
// local machine.
type connector struct {
	s    *session
	pool *connection.Pool
	mu   sync.Mutex
	locs map[string]*connection.Local
}

// Connect implements engine.Connector.
func (c *connector) Connect(ctx context.Context, role *policy.Role, h *engine.HostInfo) (providers.Host, error) {
	t, st, err := c.s.target(role, h.Name)
	if err != nil {
		return nil, err
	}
	if c.s.local || st.Connection == defaults.ConnectionLocal {
		c.mu.Lock()
		defer c.mu.Unlock()
		key := fmt.Sprintf("%s/%v/%s", h.Name, st.Sudo, st.SudoUser)
		if l, ok := c.locs[key]; ok {
			return l, nil
		}
		l := &connection.Local{Sudo: st.Sudo && st.SudoUser != "" && st.SudoUser != c.s.curUser, SudoUser: st.SudoUser, CommandTimeout: st.CommandTimeout}
		c.locs[key] = l
		return l, nil
	}
	return c.pool.Host(ctx, t)
}

func (s *session) newConnector(c *cli.Context) *connector {
	return &connector{
		s:    s,
		locs: map[string]*connection.Local{},
		pool: connection.NewPool(connection.PoolConfig{
			KnownHostsFiles:   []string{filepath.Join(s.env.Home, ".ssh", "known_hosts"), "/etc/ssh/ssh_known_hosts"},
			AcceptNewHostKeys: c.Bool("accept-new-host-keys"),
			UseAgent:          true,
			Passphrase:        s.passphrasePrompt,
			Warn:              s.env.Stderr,
			Keepalive:         keepaliveInterval(s.defs),
		}),
	}
}

// keepaliveInterval is connect_timeout (at most 15 s, the pool's
// default): the pool declares a peer dead after three unanswered
// keepalives, so a host that stops answering in the middle of a run
// (network cut, frozen machine) is reported unreachable after 3-4 times
// connect_timeout. Not less: a keepalive reply queues behind the upload
// data in flight (up to a 2 MiB window), and a shorter interval would
// declare hosts on slow links dead in the middle of large uploads.
func keepaliveInterval(defs *defaults.File) time.Duration {
	ct := defaults.DefaultConnectTimeout
	if defs != nil && defs.Tuning.ConnectTimeout > 0 {
		ct = defs.Tuning.ConnectTimeout
	}
	return min(ct, 15*time.Second)
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

func (s *session) passphrasePrompt(path string) (secret.Secret, error) {
	return s.prompt("passphrase for " + path)
}

// plans turns the policy's roles into engine plans.
func (s *session) plans() ([]engine.Plan, int, error) {
	var plans []engine.Plan
	forks := 0
	for _, r := range s.pol.Roles {
		hosts, err := s.selectHosts(r.Groups, r.Hosts)
		if err != nil {
			return nil, 0, err
		}
		p := engine.Plan{Role: r}
		for _, h := range hosts {
			st, err := s.settings(r, h.Name)
			if err != nil {
				return nil, 0, err
			}
			if st.Via != "" {
				if _, err := s.viaChain(h.Name); err != nil {
					return nil, 0, err
				}
			}
			if forks == 0 {
				forks = st.Forks
			}
			p.Hosts = append(p.Hosts, &engine.HostInfo{Name: h.Name, Address: st.Address, Groups: h.Groups, Vars: h.Vars, CommandTimeout: st.CommandTimeout})
		}
		plans = append(plans, p)
	}
	return plans, forks, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// termWidth is the width of standard output's terminal in columns, 0
// when it is not a terminal or unknown.
func (e Env) termWidth() int {
	if f, ok := e.Stdout.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			return w
		}
	}
	return 0
}

func (e Env) isTerminal(w io.Writer) bool {
	if e.IsTerminal != nil {
		return e.IsTerminal(w)
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// onlyPolicyArg refuses positional arguments after the POLICY of a
// command that takes one policy and nothing else, and a POLICY that is not
// a policy file.
func onlyPolicyArg(c *cli.Context) error {
	name := c.Command.Name
	if c.Args().Len() > 1 {
		return invalid(fmt.Errorf("%s: unexpected arguments %q after the policy %s: opsmop %s takes one POLICY (see opsmop %s --help)", name, c.Args().Tail(), c.Args().First(), name, name))
	}
	if a := c.Args().First(); a != "" && !isPolicyFile(a) {
		return invalid(fmt.Errorf("%s: %s is not a policy file (name it .toml, .yaml, .yml or .json; an inventory goes after -i)", name, a))
	}
	return nil
}

// cmdRun is check and apply.
func cmdRun(c *cli.Context, env Env, check bool) error {
	ctx := c.Context
	if err := onlyPolicyArg(c); err != nil {
		return err
	}
	s, err := load(ctx, c, env, true)
	if err != nil {
		return err
	}
	if errs := validateSession(s); len(errs) > 0 {
		return invalid(joinErrors(errs))
	}
	if c.Bool("ask-pass") {
		p, err := s.prompt("SSH password")
		if err != nil {
			return invalid(err)
		}
		s.askSSH = &p
	}
	if c.Bool("ask-sudo-pass") {
		p, err := s.prompt("sudo password")
		if err != nil {
			return invalid(err)
		}
		s.askSudo = &p
	}
	plans, forks, err := s.plans()
	if err != nil {
		return invalid(err)
	}
	if f := c.Int("forks"); f > 0 {
		forks = f
	}
	var rep interface {
		engine.Reporter
		Err() error
	}
	if c.Bool("json") {
		rep = engine.NewJSONReporter(env.Stdout)
	} else {
		tty := env.isTerminal(env.Stdout)
		rep = &engine.HumanReporter{W: env.Stdout, Color: tty && env.Getenv("NO_COLOR") == "", Verbose: c.Bool("verbose"), Status: tty, Width: env.termWidth}
	}
	conn := s.newConnector(c)
	defer conn.pool.Close()
	sum := engine.Run(ctx, engine.Options{
		Policy: s.pol, Registry: s.reg, Lookup: providers.Lookup, Plans: plans,
		Check: check, Forks: forks, ExtraVars: s.extra,
		Tags: splitList(c.String("tags")), SkipTags: splitList(c.String("skip-tags")),
		Connector: conn, Reporter: rep, Verbose: c.Bool("verbose"),
	})
	if err := writeLastFailed(env.Home, c.Args().First(), sum); err != nil {
		fmt.Fprintf(env.Stderr, "warning: %v\n", err)
	}
	switch {
	case rep.Err() != nil:
		// The report is incomplete: whatever happened on the hosts, the
		// caller reading it cannot know, so this is not a success.
		return &exitError{code: exitFailed, err: fmt.Errorf("%w: the run's report is incomplete, although the run went on (run check to see where the hosts stand)", rep.Err())}
	case sum.Interrupted:
		return &exitError{code: exitInterrupted}
	case sum.Failed():
		return &exitError{code: exitFailed}
	case check && c.Bool("detailed-exitcode") && sum.Changed():
		return &exitError{code: exitPending}
	}
	return nil
}

func joinErrors(errs []error) error {
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return errors.New(strings.Join(msgs, "\n"))
}

// cmdValidate loads and checks everything without contacting hosts.
func cmdValidate(c *cli.Context, env Env) error {
	if c.Args().Len() == 0 {
		return invalid(errors.New("missing POLICY argument: opsmop validate POLICY"))
	}
	if err := onlyPolicyArg(c); err != nil {
		return err
	}
	reg := providers.Registry()
	p, err := policy.Load(c.Args().First(), reg)
	if err != nil {
		return invalid(err)
	}
	s := &session{env: env, pol: p, reg: reg, curUser: currentUser()}
	var errs []error
	if s.defs, _, err = defaults.LoadFrom(defaults.HomeFile(env.Home), etcDefaults(env)); err != nil {
		errs = append(errs, err)
	}
	if s.extra, err = parseExtraVars(c.StringSlice("extra-vars")); err != nil {
		errs = append(errs, err)
	}
	invPath := c.String("inventory")
	if invPath == "" {
		invPath = p.Inventory
	}
	if invPath != "" {
		if s.inv, err = loadInventory(c.Context, invPath, c.String("inventory") == "", c.Args().First()); err != nil {
			errs = append(errs, err)
		}
	}
	var refs []string
	if len(errs) == 0 {
		errs, refs = validateSessionRefs(s, true)
	}
	if len(errs) > 0 {
		return invalid(joinErrors(errs))
	}
	for _, r := range slices.Compact(slices.Sorted(slices.Values(refs))) {
		fmt.Fprintf(env.Stderr, "note: not resolvable here, needed by check and apply: %s\n", r)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d roles)\n", c.Args().First(), len(p.Roles))
	return nil
}

// validateSession runs every check that needs no host, for validate and
// before check or apply contacts any: the policy's expressions,
// templates, patterns and resource rules (engine.Validate), the names
// they read (engine.ValidateNames: top-level names only when the
// inventory is known), and, with an inventory, every host's connection
// settings as the inventory gives them and under every role that selects
// the host (opsmop_port=abc, a missing key file, a jump host cycle).
func validateSession(s *session) []error {
	errs, _ := validateSessionRefs(s, false)
	return errs
}

// validateSessionRefs is validateSession. With deferRefs, a password
// reference that cannot be resolved here (an env:NAME not set, a file:PATH
// not readable, as on a machine that only validates) is not an error but
// returned in refs, for a note: check and apply resolve it, and fail then.
func validateSessionRefs(s *session, deferRefs bool) (errs []error, refs []string) {
	ref := func(err error) bool {
		var re *secret.RefError
		if deferRefs && errors.As(err, &re) {
			refs = append(refs, err.Error())
			return true
		}
		return false
	}
	ev := engine.NewEvaluator(s.pol.Dir)
	errs = engine.Validate(s.pol, s.reg, ev, inventory.CheckPatterns)
	var outside map[string]bool
	if s.inv != nil {
		outside = map[string]bool{}
		for _, h := range s.inv.Hosts() {
			for k := range h.Vars {
				outside[k] = true
			}
		}
		for k := range s.extra {
			outside[k] = true
		}
	}
	errs = append(errs, engine.ValidateNames(s.pol, s.reg, ev, outside)...)
	if s.inv == nil {
		return errs, nil
	}
	bad := map[string]bool{} // reported once, not again per role
	for _, h := range s.inv.Hosts() {
		_, err := s.settings(nil, h.Name)
		if err == nil {
			_, err = s.viaChain(h.Name)
		}
		if err != nil && !ref(err) {
			bad[h.Name] = true
			errs = append(errs, fmt.Errorf("inventory %s: %w", s.inv.Source(), err))
		}
	}
	for _, r := range s.pol.Roles {
		for _, h := range s.inv.Select(r.Groups, r.Hosts) {
			if bad[h.Name] {
				continue
			}
			if _, err := s.settings(r, h.Name); err != nil && !ref(err) {
				errs = append(errs, fmt.Errorf("%s: role %s: %w", r.Pos, r.Name, err))
			}
		}
	}
	return errs, refs
}

// cmdInventory lists hosts, one host, the graph or Ansible JSON.
func cmdInventory(c *cli.Context, env Env) error {
	if err := onlyPolicyArg(c); err != nil {
		return err
	}
	s, err := load(c.Context, c, env, false)
	if err != nil {
		return err
	}
	redact := func(k string) bool { return inventory.SecretKey(k) }
	asJSON := c.Bool("json") || c.Bool("list")
	if c.Bool("graph") && (asJSON || c.IsSet("host")) {
		return invalid(errors.New("inventory: --graph cannot be combined with --json, --list or --host: give one of them"))
	}
	if c.IsSet("host") && c.IsSet("limit") {
		return invalid(errors.New("inventory: --host shows one host; --limit does not apply to it: give one of them"))
	}
	switch {
	case c.IsSet("host") && asJSON:
		return s.showHostJSON(c.String("host"))
	case asJSON:
		inv, err := s.limitedInventory()
		if err != nil {
			return invalid(err)
		}
		b, err := inv.MarshalAnsibleJSON(redact)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return nil
	case c.Bool("graph"):
		inv, err := s.limitedInventory()
		if err != nil {
			return invalid(err)
		}
		return inv.Graph(env.Stdout)
	case c.IsSet("host"):
		return s.showHost(c.String("host"))
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return invalid(err)
	}
	width := 4
	for _, h := range hosts {
		width = max(width, len(h.Name))
	}
	for _, h := range hosts {
		fmt.Fprintf(env.Stdout, "%-*s  %s\n", width, h.Name, strings.Join(h.Groups, ","))
	}
	return nil
}

// showHostJSON prints name's merged variables as a JSON object, secrets
// redacted, as ansible-inventory --host does.
// limitedInventory is the inventory with only the hosts --limit selects
// (all of it without --limit).
func (s *session) limitedInventory() (*inventory.Inventory, error) {
	if len(s.limits) == 0 {
		return s.inv, nil
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return nil, err
	}
	keep := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		keep[h.Name] = true
	}
	return s.inv.Only(func(n string) bool { return keep[n] }), nil
}

func (s *session) showHostJSON(name string) error {
	h, ok := s.inv.Host(name)
	if !ok {
		return invalid(fmt.Errorf("host %q is not in the inventory %s", name, s.inv.Source()))
	}
	vars := make(map[string]any, len(h.Vars))
	for k, v := range h.Vars {
		if inventory.SecretKey(k) {
			v = secret.Redacted
		}
		vars[k] = v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(vars); err != nil {
		return fmt.Errorf("host %s: encode JSON: %w", name, err)
	}
	_, err := s.env.Stdout.Write(b.Bytes())
	return err
}

func (s *session) showHost(name string) error {
	h, ok := s.inv.Host(name)
	if !ok {
		return invalid(fmt.Errorf("host %q is not in the inventory %s", name, s.inv.Source()))
	}
	w := s.env.Stdout
	fmt.Fprintf(w, "host: %s\ngroups: %s\nvars:\n", h.Name, strings.Join(h.Groups, ", "))
	keys := make([]string, 0, len(h.Vars))
	for k := range h.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := h.Vars[k]
		if inventory.SecretKey(k) {
			v = secret.Redacted
		}
		// No HTML escaping: "<redacted>" must not print as "\u003credacted\u003e".
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		fmt.Fprintf(w, "  %s = %s\n", k, bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	}
	st, err := s.settings(nil, name)
	if err != nil {
		return invalid(err)
	}
	chain, err := s.viaChain(name)
	if err != nil {
		return invalid(err)
	}
	fmt.Fprintf(w, "connection:\n")
	for _, kv := range st.Describe(chain...) {
		src := ""
		if kv.Source != "" {
			src = "  (" + kv.Source + ")"
		}
		fmt.Fprintf(w, "  %-16s %s%s\n", kv.Key, kv.Value, src)
	}
	return nil
}

// cmdFacts gathers and prints facts.
func cmdFacts(c *cli.Context, env Env) error {
	s, err := load(c.Context, c, env, false)
	if err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 0 && isPolicyFile(args[0]) {
		args = args[1:]
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return invalid(err)
	}
	if len(args) > 0 {
		want := map[string]bool{}
		for _, a := range args {
			if _, ok := s.inv.Host(a); !ok {
				return invalid(fmt.Errorf("host %q is not in the inventory", a))
			}
			want[a] = true
		}
		var sel []*inventory.Host
		for _, h := range hosts {
			if want[h.Name] {
				sel = append(sel, h)
			}
		}
		hosts = sel
	}
	if c.Bool("ask-pass") {
		p, err := s.prompt("SSH password")
		if err != nil {
			return invalid(err)
		}
		s.askSSH = &p
	}
	conn := s.newConnector(c)
	defer conn.pool.Close()
	type res struct {
		facts engine.Facts
		err   error
	}
	out := make([]res, len(hosts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 20)
	role := &policy.Role{}
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			host, err := conn.Connect(c.Context, role, &engine.HostInfo{Name: h.Name})
			if err != nil {
				out[i].err = err
				return
			}
			out[i].facts, out[i].err = engine.GatherFacts(c.Context, host)
		}()
	}
	wg.Wait()
	failed := false
	if c.Bool("json") {
		m := map[string]any{}
		for i, h := range hosts {
			if out[i].err != nil {
				m[h.Name] = map[string]string{"error": out[i].err.Error()}
				failed = true
				continue
			}
			m[h.Name] = out[i].facts
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(env.Stdout, "%s\n", b)
	} else {
		for i, h := range hosts {
			if out[i].err != nil {
				fmt.Fprintf(env.Stdout, "%s: UNREACHABLE: %s\n", h.Name, out[i].err)
				failed = true
				continue
			}
			keys := make([]string, 0, len(out[i].facts))
			for k := range out[i].facts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(env.Stdout, "%s:\n", h.Name)
			for _, k := range keys {
				fmt.Fprintf(env.Stdout, "  %-15s %v\n", k, out[i].facts[k])
			}
		}
	}
	if failed {
		return &exitError{code: exitFailed}
	}
	return nil
}
