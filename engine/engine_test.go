package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// countingHost wraps a host and counts round trips (Run and RunProbes
// calls) and uploads.
type countingHost struct {
	h       *connection.Local
	mu      sync.Mutex
	trips   int
	scripts int                // scripts sent, over all round trips
	facts   int                // facts gathered (the facts script run)
	probes  []connection.Probe // every probe sent with RunProbes
	uploads int
}

func (c *countingHost) Run(ctx context.Context, s string, in io.Reader) (connection.Result, error) {
	c.mu.Lock()
	c.trips++
	c.scripts++
	if strings.Contains(s, "printf 'cpus=%s\\n'") {
		c.facts++
	}
	c.mu.Unlock()
	return c.h.Run(ctx, s, in)
}

func (c *countingHost) RunProbes(ctx context.Context, p []connection.Probe) ([]connection.Result, error) {
	c.mu.Lock()
	c.trips++
	c.scripts += len(p)
	c.probes = append(c.probes, p...)
	c.mu.Unlock()
	return c.h.RunProbes(ctx, p)
}

func (c *countingHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, o connection.UploadOptions) error {
	c.mu.Lock()
	c.uploads++
	c.mu.Unlock()
	return c.h.Upload(ctx, dst, r, size, o)
}

// fakeConnector hands every host its own counting local host.
type fakeConnector struct {
	mu     sync.Mutex
	hosts  map[string]*countingHost
	refuse map[string]bool
}

func (f *fakeConnector) Connect(_ context.Context, _ *policy.Role, h *engine.HostInfo) (providers.Host, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuse[h.Name] {
		return nil, fmt.Errorf("host %s: connection refused", h.Name)
	}
	if f.hosts == nil {
		f.hosts = map[string]*countingHost{}
	}
	if c, ok := f.hosts[h.Name]; ok {
		return c, nil
	}
	c := &countingHost{h: &connection.Local{CommandTimeout: h.CommandTimeout}}
	f.hosts[h.Name] = c
	return c, nil
}

// fakeSpec and fakeProvider let tests script checks and applies.
type fakeSpec struct {
	ID string `opsmop:"id" required:"true"`
}

type fakeProvider struct {
	check func(id string) (*providers.Change, error)
	apply func(id string) error
}

func (f fakeProvider) Probe(*providers.Request) (string, error) { return "true", nil }
func (f fakeProvider) Check(req *providers.Request, _ connection.Result) (*providers.Change, error) {
	return f.check(req.Spec.(*fakeSpec).ID)
}
func (f fakeProvider) Apply(_ context.Context, _ providers.Host, req *providers.Request, _ *providers.Change) (*providers.Outcome, error) {
	return &providers.Outcome{}, f.apply(req.Spec.(*fakeSpec).ID)
}

type harness struct {
	t    *testing.T
	dir  string // the target's scratch root
	pdir string // the policy's directory
	reg  policy.Registry
	fake *fakeProvider
	conn *fakeConnector
	// timeout is every host's command_timeout: generous, since -race and
	// a loaded CI machine make local commands slow.
	timeout time.Duration
	// ctx is the run's context (nil: context.Background()); opts, when
	// set, adjusts the run's options (e.g. ForceHandlers).
	ctx  context.Context
	opts func(*engine.Options)
	// connector, when set, replaces conn as the run's Connector;
	// lookupHook, when set, is asked for a type before the registry.
	connector  engine.Connector
	lookupHook func(string) (providers.Provider, bool)
}

func newHarness(t *testing.T) *harness {
	reg := providers.Registry()
	reg["fake"] = policy.ResourceType{Name: "fake", New: func() any { return &fakeSpec{} }, Identity: "id", Handler: true}
	return &harness{t: t, dir: t.TempDir(), pdir: t.TempDir(), reg: reg, conn: &fakeConnector{}, timeout: 60 * time.Second}
}

func (h *harness) lookup(name string) (providers.Provider, bool) {
	if name == "fake" && h.fake != nil {
		return *h.fake, true
	}
	if h.lookupHook != nil {
		if p, ok := h.lookupHook(name); ok {
			return p, true
		}
	}
	return providers.Lookup(name)
}

// run loads src (TOML) and runs it on hosts.
func (h *harness) run(src string, check bool, extra map[string]any, hosts ...string) (*engine.Summary, *recorder) {
	h.t.Helper()
	p := filepath.Join(h.pdir, "site.toml")
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		h.t.Fatal(err)
	}
	pol, err := policy.Load(p, h.reg)
	if err != nil {
		h.t.Fatalf("load policy: %v", err)
	}
	if errs := engine.Validate(pol, h.reg, engine.NewEvaluator(pol.Dir), nil); len(errs) > 0 {
		h.t.Fatalf("validate: %v", errs)
	}
	if len(hosts) == 0 {
		hosts = []string{"h1"}
	}
	var plans []engine.RoleHosts
	for _, r := range pol.Roles {
		pl := engine.RoleHosts{Role: r}
		for _, n := range hosts {
			pl.Hosts = append(pl.Hosts, &engine.HostInfo{Name: n, Address: n, Groups: []string{"all"}, Vars: map[string]any{"root": h.dir}, CommandTimeout: h.timeout})
		}
		plans = append(plans, pl)
	}
	rec := &recorder{}
	var conn engine.Connector = h.conn
	if h.connector != nil {
		conn = h.connector
	}
	o := engine.Options{Policy: pol, Registry: h.reg, Lookup: h.lookup, Plans: plans, Check: check, Forks: 4, ExtraVars: extra, Connector: conn, Hooks: rec}
	if h.opts != nil {
		h.opts(&o)
	}
	ctx := h.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	sum := engine.Run(ctx, o)
	return sum, rec
}

const sitePolicy = `
[vars]
motd = "managed by opsmop"
[[roles]]
name = "web"
vars = { http_port = 8080 }
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/srv/app"
  mode = "0755"
  [[roles.resources]]
  type = "file"
  path = "{{ .root }}/srv/app/motd"
  content = "{{ .motd }}\n"
  [[roles.resources]]
  type = "template"
  src = "app.conf.tmpl"
  path = "{{ .root }}/srv/app/app.conf"
  notify = ["restart app"]
  [[roles.resources]]
  type = "line"
  path = "{{ .root }}/srv/app/hosts"
  line = "127.0.0.1 app"
  create = true
  notify = ["restart app"]
  [[roles.handlers]]
  name = "never notified"
  type = "shell"
  cmd = "echo x >> {{ .root }}/never"
  [[roles.handlers]]
  name = "restart app"
  type = "shell"
  cmd = "echo restarted >> {{ .root }}/restarts"
`

func listTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %v\n", strings.TrimPrefix(p, dir), fi.Mode())
		}
		return nil
	})
	return b.String()
}

func TestCheckApplyCheck(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.pdir, "app.conf.tmpl"), []byte("port = {{ .http_port }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, h.dir)

	sum, rec := h.run(sitePolicy, true, nil)
	if got := listTree(t, h.dir); got != before {
		t.Fatalf("check changed the target:\ngot %s\nwant %s", got, before)
	}
	if sum.Total.Changed != 5 || sum.Failed() {
		t.Fatalf("first check: got changed=%d failed=%v; want 5 pending (4 resources + 1 handler), no failure; events %+v", sum.Total.Changed, sum.Failed(), rec.events)
	}
	var handlers []string
	for _, e := range rec.resources("h1") {
		if e.Type == "handler" {
			handlers = append(handlers, e.Resource)
		}
	}
	if len(handlers) != 1 || !strings.Contains(handlers[0], "restarts") {
		t.Errorf("check handlers: got %v; want only the notified one, once", handlers)
	}

	sum, rec = h.run(sitePolicy, false, nil)
	if sum.Failed() || sum.Total.Changed != 5 {
		t.Fatalf("apply: got %+v; want 5 changed, no failure; events %+v", sum.Total, rec.events)
	}
	b, err := os.ReadFile(filepath.Join(h.dir, "srv/app/app.conf"))
	if err != nil || string(b) != "port = 8080\n" {
		t.Errorf("app.conf: got %q, %v; want %q", b, err, "port = 8080\n")
	}
	b, _ = os.ReadFile(filepath.Join(h.dir, "restarts"))
	if string(b) != "restarted\n" {
		t.Errorf("handler runs: got %q; want exactly one run", b)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "never")); err == nil {
		t.Errorf("a handler nobody notified ran")
	}

	host := h.conn.hosts["h1"]
	host.trips, host.uploads = 0, 0
	sum, rec = h.run(sitePolicy, true, nil)
	if sum.Total.Changed != 0 || sum.Failed() {
		t.Fatalf("check after apply: got %+v; want nothing pending; events %+v", sum.Total, rec.events)
	}
	// The policy reads no facts: one batch probes all resources.
	if host.trips != 1 || host.uploads != 0 {
		t.Errorf("no-op check: got %d round trips and %d uploads; want 1 (one probe batch, no facts) and 0", host.trips, host.uploads)
	}
}

// TestIdenticalProbesRunOnce: three line resources on one file probe it
// with the same script, which runs once per batch; each resource still
// gets its own verdict.
func TestIdenticalProbesRunOnce(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.dir, "hosts"), []byte("a\nb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "line"
  path = "{{ .root }}/hosts"
  line = "a"
  [[roles.resources]]
  type = "line"
  path = "{{ .root }}/hosts"
  line = "b"
  [[roles.resources]]
  type = "line"
  path = "{{ .root }}/hosts"
  line = "c"
`
	host := func() *countingHost { return h.conn.hosts["h1"] }
	sum, rec := h.run(src, true, nil)
	if sum.Total.Changed != 1 || sum.Failed() {
		t.Fatalf("check: got %+v; want 1 pending (line c); events %+v", sum.Total, rec.events)
	}
	if got := host().scripts; got != 1 {
		t.Errorf("check: %d scripts sent; want 1 (the three identical probes once, no facts)", got)
	}
}

// TestInlineProbes: the probes of providers that keep the inline contract
// (ProbeVars) are sent to run in the persistent shell itself, with their
// variables; a shell resource's guard is user code and is not. With two
// paths or more in the batch, a prelude stats (and hashes) them all first
// and a last probe unsets what it set.
func TestInlineProbes(t *testing.T) {
	h := newHarness(t)
	src := `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "file"
  path = "{{ .root }}/f"
  content = "x"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d"
  [[roles.resources]]
  type = "shell"
  cmd = "echo run"
  unless = "GUARD=1; true"
`
	if sum, rec := h.run(src, true, nil); sum.Failed() {
		t.Fatalf("check failed: events %+v", rec.events)
	}
	var got []string
	for _, p := range h.conn.hosts["h1"].probes {
		kind := "subshell"
		if p.Inline {
			kind = "inline"
		}
		what := "directory"
		switch {
		case strings.Contains(p.Script, "GUARD=1"):
			what = "shell"
		case strings.Contains(p.Script, "opsmop_pre()"):
			what = "prelude"
		case p.Script == ":":
			what = "unset " + strconv.Itoa(len(p.Vars)) + " prelude variables"
		case strings.Contains(p.Script, "sha256"):
			what = "file"
		}
		if len(p.Vars) > 0 && p.Script != ":" {
			kind += " " + strings.Join(p.Vars, ",")
		}
		got = append(got, what+": "+kind)
	}
	// the prelude's variables: 5 of its own, 2 per path, 2 per hashed file;
	// file and directory also name se, the SELinux context their probe
	// reads when an se* key is set
	want := []string{"prelude: inline", "file: inline p,t,st,size,s,se", "directory: inline p,t,st,size,s,se", "shell: subshell", "unset 11 prelude variables: inline"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q; want %q", got, want)
	}
}

// TestFactsGatheredOnlyWhenUsed: facts cost a round trip per host, so
// they are gathered only before a role that may read them, once per host.
func TestFactsGatheredOnlyWhenUsed(t *testing.T) {
	role := func(name, body string) string {
		return "[[roles]]\nname = \"" + name + "\"\n" + body
	}
	echo := "  [[roles.resources]]\n  type = \"echo\"\n  msg = \"hi\"\n"
	for _, tc := range []struct {
		name   string
		policy string
		want   int // facts gathered (scripts beyond the probes)
	}{
		{"no role reads facts", role("a", echo) + role("b", "  [[roles.resources]]\n  type = \"template\"\n  src = \"plain.tmpl\"\n  path = \"{{ .root }}/p\"\n"), 0},
		{"a when reads facts", role("a", "when = \"facts.os_family != ''\"\n"+echo), 1},
		{"a template file reads facts", role("a", "  [[roles.resources]]\n  type = \"template\"\n  src = \"facts.tmpl\"\n  path = \"{{ .root }}/f\"\n"), 1},
		{"a templated template name", role("a", "  [[roles.resources]]\n  type = \"file\"\n  template = \"{{ .n }}.tmpl\"\n  path = \"{{ .root }}/f\"\n  vars = { n = \"plain\" }\n"), 1},
		{"a service (its provider reads facts)", role("a", echo) + role("b", "  [[roles.resources]]\n  type = \"service\"\n  service = \"nosuch\"\n  when = \"false\"\n"), 1},
		{"two roles reading facts: once", role("a", "when = \"facts.os_family != ''\"\n"+echo) + role("b", "when = \"facts.os_family != ''\"\n"+echo), 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			if err := os.WriteFile(filepath.Join(h.pdir, "plain.tmpl"), []byte("plain {{ .host.name }}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(h.pdir, "facts.tmpl"), []byte("on {{ .facts.hostname }}\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			sum, rec := h.run(tc.policy, true, nil)
			if sum.Failed() {
				t.Fatalf("check failed: %+v", rec.events)
			}
			host := h.conn.hosts["h1"]
			if got := host.facts; got != tc.want {
				t.Errorf("facts gathered %d times; want %d", got, tc.want)
			}
		})
	}
}

func TestHandlersRunOnceInDeclarationOrder(t *testing.T) {
	h := newHarness(t)
	src := `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "shell"
  cmd = "true"
  notify = ["second", "first"]
  [[roles.resources]]
  type = "shell"
  cmd = "true "
  notify = ["first"]
  [[roles.handlers]]
  name = "first"
  type = "shell"
  cmd = "echo first >> {{ .root }}/order"
  [[roles.handlers]]
  name = "second"
  type = "shell"
  cmd = "echo second >> {{ .root }}/order"
`
	sum, rec := h.run(src, false, nil)
	if sum.Failed() {
		t.Fatalf("run failed: %+v", rec.events)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "order"))
	if got, want := string(b), "first\nsecond\n"; got != want {
		t.Errorf("handler order: got %q; want %q", got, want)
	}
}

func TestDidNotConverge(t *testing.T) {
	h := newHarness(t)
	h.fake = &fakeProvider{
		check: func(string) (*providers.Change, error) {
			return &providers.Change{Action: providers.Update, Fields: []providers.Field{{Name: "x", Before: "1", After: "2"}}}, nil
		},
		apply: func(string) error { return nil },
	}
	sum, rec := h.run("[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"fake\"\nid = \"a\"\n", false, nil)
	if !sum.Failed() {
		t.Fatalf("got no failure; want did not converge")
	}
	evs := rec.resources("h1")
	last := evs[len(evs)-1]
	if last.Status != engine.StatusFailed || !strings.Contains(last.Error, "did not converge") || !strings.Contains(last.Error, "x: 1 -> 2") {
		t.Errorf("got %+v; want a failure saying did not converge with the before/after", last)
	}
}

func TestPanicInProviderFailsOnlyThatHost(t *testing.T) {
	h := newHarness(t)
	h.fake = &fakeProvider{
		check: func(id string) (*providers.Change, error) {
			panic("boom")
		},
		apply: func(string) error { return nil },
	}
	h.conn.refuse = map[string]bool{"h3": true}
	sum, rec := h.run("[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"fake\"\nid = \"a\"\n", true, nil, "h1", "h2", "h3")
	if sum.Hosts["h1"].Failed != 1 || sum.Hosts["h2"].Failed != 1 {
		t.Fatalf("got %+v; want h1 and h2 failed once each", sum.Hosts)
	}
	if sum.Hosts["h3"].Unreachable != 1 || sum.Hosts["h3"].Failed != 0 {
		t.Errorf("h3: got %+v; want unreachable, not failed", sum.Hosts["h3"])
	}
	if e := rec.resources("h1")[0]; !strings.Contains(e.Error, "internal error") || !strings.Contains(e.Error, "boom") {
		t.Errorf("got error %q; want the recovered panic", e.Error)
	}
}

func TestRegisterWhenLoopAndIgnoreErrors(t *testing.T) {
	h := newHarness(t)
	src := `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "shell"
  cmd = "printf hello; exit 3"
  register = "out"
  ignore_errors = true
  [[roles.resources]]
  type = "shell"
  cmd = "echo {{ .out.stdout }}-{{ .out.rc }} > {{ .root }}/registered"
  when = "out.rc == 3 && out.failed"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d-{{ .item }}"
  loop = ["a", "b"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/e-{{ .item }}"
  loop = "dirs"
  [[roles.resources]]
  type = "shell"
  cmd = "touch {{ .root }}/skipped"
  when = "out.rc == 0"
`
	sum, rec := h.run(src, false, map[string]any{"dirs": []any{"x"}})
	if sum.Hosts["h1"].Ignored != 1 || sum.Hosts["h1"].Failed != 0 || sum.Hosts["h1"].Skipped != 1 || sum.Failed() {
		t.Fatalf("got %+v; want one ignored failure (not failing the run) and one skip; events %+v", sum.Hosts["h1"], rec.events)
	}
	b, _ := os.ReadFile(filepath.Join(h.dir, "registered"))
	if string(b) != "hello-3\n" {
		t.Errorf("registered: got %q; want %q", b, "hello-3\n")
	}
	for _, d := range []string{"d-a", "d-b", "e-x"} {
		if _, err := os.Stat(filepath.Join(h.dir, d)); err != nil {
			t.Errorf("loop item %s: %v", d, err)
		}
	}
	if _, err := os.Stat(filepath.Join(h.dir, "skipped")); err == nil {
		t.Errorf("a resource whose when was false ran")
	}
}

func TestCommandTimeoutFailsTheHost(t *testing.T) {
	h := newHarness(t)
	// Facts are gathered under the same timeout: leave them time on a
	// loaded machine, but far less than the command sleeps.
	h.timeout = 8 * time.Second
	start := time.Now()
	sum, rec := h.run("[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"shell\"\ncmd = \"sleep 120\"\n", false, nil)
	if d := time.Since(start); d > 60*time.Second {
		t.Errorf("took %v; want the 8s command timeout to stop it", d)
	}
	if sum.Hosts["h1"].Failed != 1 {
		t.Fatalf("got %+v; want failed", rec.events)
	}
}

func TestUndefinedVariableNamesIt(t *testing.T) {
	h := newHarness(t)
	sum, rec := h.run("[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"shell\"\ncmd = \"echo {{ .nope }}\"\n[[roles.resources]]\ntype = \"shell\"\ncmd = \"true\"\nwhen = \"missing_var > 1\"\n", true, nil)
	if !sum.Failed() {
		t.Fatal("got success; want failure")
	}
	if e := rec.resources("h1")[0]; !strings.Contains(e.Error, `"nope"`) {
		t.Errorf("got %q; want the undefined variable named", e.Error)
	}
}

func TestJSONReporterLinesDecode(t *testing.T) {
	h := newHarness(t)
	var buf bytes.Buffer
	rep := view.New(view.KindJSON, &buf, view.Options{})
	p := filepath.Join(h.pdir, "site.toml")
	src := "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"file\"\npath = \"{{ .root }}/f\"\ncontent = \"x\"\n[[roles.resources]]\ntype = \"shell\"\ncmd = \"false\"\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p, h.reg)
	if err != nil {
		t.Fatal(err)
	}
	plans := []engine.RoleHosts{{Role: pol.Roles[0], Hosts: []*engine.HostInfo{{Name: "h1", Vars: map[string]any{"root": h.dir}}}}}
	engine.Run(context.Background(), engine.Options{Policy: pol, Registry: h.reg, Lookup: h.lookup, Plans: plans, Connector: h.conn, Hooks: rep})
	types := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e map[string]any
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types[e["type"].(string)]++
	}
	for _, want := range []string{"run_start", "host_start", "resource", "host_end", "summary"} {
		if types[want] == 0 {
			t.Errorf("no %s event in %v", want, types)
		}
	}
}

func TestBatches(t *testing.T) {
	cases := []struct {
		n      int
		serial []policy.BatchSize
		want   string
	}{
		{10, nil, "[10]"},
		{10, []policy.BatchSize{{Hosts: 3}}, "[3 3 3 1]"},
		{10, []policy.BatchSize{{Hosts: 1}, {Hosts: 5}, {Percent: 25}}, "[1 5 2 2]"},
		{10, []policy.BatchSize{{Percent: 50}}, "[5 5]"},
		{3, []policy.BatchSize{{Percent: 10}}, "[1 1 1]"},
		{2, []policy.BatchSize{{Hosts: 5}}, "[2]"},
		{0, []policy.BatchSize{{Hosts: 1}}, "[]"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.n, c.serial), func(t *testing.T) {
			if got := fmt.Sprint(engine.Batches(c.n, c.serial)); got != c.want {
				t.Errorf("Batches(%d, %v) = %s; want %s", c.n, c.serial, got, c.want)
			}
		})
	}
}

func TestSerialAndMaxFailPercentage(t *testing.T) {
	h := newHarness(t)
	src := `
[[roles]]
name = "r"
serial = 3
max_fail_percentage = 20
  [[roles.resources]]
  type = "assert"
  that = "host.name != 'h5'"
`
	hosts := []string{"h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9", "h10"}
	sum, rec := h.run(src, true, nil, hosts...)
	var starts []string
	for _, e := range rec.events {
		if e.Type == "host_start" {
			starts = append(starts, e.Host)
		}
	}
	// Batches of 3; h5 fails in batch 2 (1 of 3 = 33% > 20%): the role stops.
	if len(starts) != 6 {
		t.Fatalf("hosts started: got %v; want the 6 hosts of batches 1 and 2 only", starts)
	}
	first := map[string]bool{}
	for _, n := range starts[:3] {
		first[n] = true
	}
	if !first["h1"] || !first["h2"] || !first["h3"] {
		t.Errorf("batch 1: got %v; want h1 h2 h3", starts[:3])
	}
	if sum.Hosts["h5"].Failed != 1 || sum.Hosts["h7"].OK != 0 {
		t.Errorf("got h5 %+v, h7 %+v; want h5 failed and h7 not run", sum.Hosts["h5"], sum.Hosts["h7"])
	}
	if len(sum.Notes) != 1 || !strings.Contains(sum.Notes[0], "max_fail_percentage") || !strings.Contains(sum.Notes[0], "not run: h7, h8, h9, h10") {
		t.Errorf("notes: got %q; want the reason the role stopped and the hosts not run", sum.Notes)
	}
}

func TestRetriesAndUntil(t *testing.T) {
	h := newHarness(t)
	src := `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "shell"
  cmd = "echo x >> {{ .root }}/count; test $(wc -l < {{ .root }}/count) -ge 3"
  retries = 4
  delay = "10ms"
  [[roles.resources]]
  type = "shell"
  cmd = "echo y >> {{ .root }}/count2; wc -l < {{ .root }}/count2"
  register = "c"
  until = "int(trim(c.stdout)) >= 2"
  delay = "10ms"
  [[roles.resources]]
  type = "shell"
  cmd = "false"
  retries = 2
  delay = "10ms"
`
	sum, rec := h.run(src, false, nil)
	b, _ := os.ReadFile(filepath.Join(h.dir, "count"))
	if got := strings.Count(string(b), "x"); got != 3 {
		t.Errorf("retries on failure: ran %d times; want 3 (succeeds on the third)", got)
	}
	b, _ = os.ReadFile(filepath.Join(h.dir, "count2"))
	if got := strings.Count(string(b), "y"); got != 2 {
		t.Errorf("until: ran %d times; want 2", got)
	}
	if sum.Hosts["h1"].Failed != 1 || sum.Hosts["h1"].Changed != 2 {
		t.Errorf("got %+v; want 2 changed and the always-false command failed after its retries; events %+v", sum.Hosts["h1"], rec.events)
	}
}

func TestTags(t *testing.T) {
	const src = `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/a"
  tags = ["web"]
  notify = ["h"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/b"
  tags = ["db"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/c"
  [[roles.handlers]]
  name = "h"
  type = "shell"
  cmd = "touch {{ .root }}/handler"
  tags = ["other"]
[[roles]]
name = "tagged"
tags = ["web"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d"
[[roles]]
name = "roll"
tags = ["roll"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/e"
  tags = ["b"]
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/f"
`
	for _, tc := range []struct {
		name       string
		only, skip []string
		want       []string // the paths that must exist afterwards; every other must not
	}{
		{"only web, skip db", []string{"web"}, []string{"db"}, []string{"a", "d", "handler"}},
		// A role's tags never hide a resource whose own tag matches.
		{"resource tag under a tagged role", []string{"b"}, nil, []string{"e"}},
		{"role tag selects all its resources", []string{"roll"}, nil, []string{"e", "f"}},
		{"all selects untagged resources too", []string{"all"}, nil, []string{"a", "b", "c", "d", "e", "f", "handler"}},
		{"all with skip", []string{"all"}, []string{"web", "b"}, []string{"b", "c", "f"}},
		{"skipping a role tag skips its resources", nil, []string{"roll"}, []string{"a", "b", "c", "d", "handler"}},
		{"no tag matches", []string{"nothing"}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := filepath.Join(h.pdir, "site.toml")
			if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			pol, err := policy.Load(p, h.reg)
			if err != nil {
				t.Fatal(err)
			}
			var plans []engine.RoleHosts
			for _, r := range pol.Roles {
				plans = append(plans, engine.RoleHosts{Role: r, Hosts: []*engine.HostInfo{{Name: "h1", Vars: map[string]any{"root": h.dir}}}})
			}
			engine.Run(context.Background(), engine.Options{Policy: pol, Registry: h.reg, Lookup: h.lookup, Plans: plans, Connector: h.conn, Tags: tc.only, SkipTags: tc.skip})
			for _, name := range []string{"a", "b", "c", "d", "e", "f", "handler"} {
				_, err := os.Stat(filepath.Join(h.dir, name))
				if got, want := err == nil, slices.Contains(tc.want, name); got != want {
					t.Errorf("%s exists: got %v; want %v (--tags %v --skip-tags %v; handlers run when a selected resource notifies them; role tags are inherited)", name, got, want, tc.only, tc.skip)
				}
			}
		})
	}
}

// TestUndefinedNamesFail: reading a variable or map key that does not
// exist is an error naming it (with the key's file:line) in every
// expression — role and resource when, loop, until — and in templates;
// never a silent false or nil. The lenient forms are how a policy asks.
func TestUndefinedNamesFail(t *testing.T) {
	const echo = "[[roles.resources]]\ntype = \"echo\"\nmsg = \"ran\"\n"
	for _, tc := range []struct {
		name, src string
		want      []string // substrings of the failure; none: must succeed
	}{
		{"role when, misspelt fact", "[[roles]]\nname = \"r\"\nwhen = \"facts.os_famly == 'debian'\"\n" + echo,
			[]string{`site.toml:`, `undefined variable "facts.os_famly"`, `did you mean "facts.os_family"`}},
		{"resource when, unknown variable", "[[roles]]\nname = \"r\"\n" + echo + "when = \"nope == 1\"\n",
			[]string{`site.toml:6: when:`, `undefined variable "nope"`}},
		{"resource when, unknown key of a var", "[vars]\ncfg = { port = 1 }\n[[roles]]\nname = \"r\"\n" + echo + "when = \"cfg.prot == 1\"\n",
			[]string{`undefined variable "cfg.prot"`, `did you mean "cfg.port"`}},
		{"loop expression", "[[roles]]\nname = \"r\"\n" + echo + "loop = \"missing_list\"\n",
			[]string{`loop:`, `undefined variable "missing_list"`}},
		{"until", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"shell\"\ncmd = \"true\"\nuntil = \"rc == 0 && nothing\"\nretries = 1\n",
			[]string{`until:`, `undefined variable "nothing"`}},
		{"template", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"echo\"\nmsg = \"{{ .facts.os_famly }}\"\n",
			[]string{`os_famly`}},
		{"template, lenient form", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"echo\"\nmsg = '{{ index . \"nope\" | default \"x\" }}'\n", nil},
		{"lenient forms", "[vars]\ncfg = { port = 1 }\n[[roles]]\nname = \"r\"\n" + echo +
			"when = \"facts?.nokey == nil && (facts.nokey ?? 'd') == 'd' && (cfg?.a?.b ?? 2) == 2 && (cfg.a ?? 3) == 3 && !('nokey' in facts) && get(facts, 'nokey') == nil && (let x = 1; x == 1) && all([1, 2], # > 0) && (undefined_var ?? 5) == 5 && undefined_var?.x == nil && facts.os_family != 'x'\"\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			sum, rec := h.run(tc.src, false, nil)
			var errs []string
			for _, e := range rec.events {
				if e.Error != "" {
					errs = append(errs, e.Error)
				}
			}
			all := strings.Join(errs, "\n")
			if len(tc.want) == 0 {
				if sum.Failed() {
					t.Fatalf("got failure %q; want success", all)
				}
				return
			}
			if !sum.Failed() {
				t.Fatalf("got success (events %+v); want a failure naming the undefined name", rec.events)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("got %q; want it to contain %q", all, w)
				}
			}
		})
	}
}
