package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

const pipelinePolicy = `
[[roles]]
name = "web"
  [[roles.resources]]
  type = "directory"
  path = "/srv/pipe"
  mode = "0750"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe/a"
  content = "a on {{ .host.name }}\n"
  [[roles.resources]]
  type = "template"
  src = "app.conf.tmpl"
  path = "/srv/pipe/app.conf"
  notify = ["restart"]
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe/b"
  content = "b\n"
  mode = "0600"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe/bin"
  content = "{{ .bin }}"
  [[roles.resources]]
  type = "link"
  path = "/srv/pipe/current"
  target = "/srv/pipe/a"
  [[roles.handlers]]
  name = "restart"
  type = "file"
  path = "/srv/pipe/restarted"
  content = "yes\n"
`

// pipelineLab runs policies on two lab hosts over real SSH, recording the
// phases of each host.
type pipelineLab struct {
	t    *testing.T
	l    *lab.Lab
	pdir string
	reg  policy.Registry
	// onProbe, when set, runs once per host after its first probe batch.
	onProbe func(host string)
}

func (p *pipelineLab) run(src string, check, sequential bool) (*engine.Summary, *recorder, map[string][]engine.Phase) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.pdir, "site.toml"), []byte(src), 0o644); err != nil {
		p.t.Fatal(err)
	}
	pol, err := policy.Load(filepath.Join(p.pdir, "site.toml"), p.reg)
	if err != nil {
		p.t.Fatal(err)
	}
	if errs := engine.Validate(pol, p.reg, engine.NewEvaluator(pol.Dir), nil); len(errs) > 0 {
		p.t.Fatalf("validate: %v", errs)
	}
	var plans []engine.RoleHosts
	for _, r := range pol.Roles {
		rh := engine.RoleHosts{Role: r}
		for _, h := range p.l.Hosts {
			rh.Hosts = append(rh.Hosts, &engine.HostInfo{Name: h.Name, Address: h.Addr, Groups: []string{"all"},
				Vars: map[string]any{"bin": "x\x00y\n\xff"}, CommandTimeout: time.Minute})
		}
		plans = append(plans, rh)
	}
	pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{p.l.KnownHosts}})
	defer pool.Close()
	rec := &recorder{}
	var mu sync.Mutex
	phases := map[string][]engine.Phase{}
	probed := map[string]bool{}
	ph := phaseHook{f: func(e engine.Phase) {
		mu.Lock()
		phases[e.Host] = append(phases[e.Host], e)
		first := e.Name == "probe" && !probed[e.Host]
		if first {
			probed[e.Host] = true
		}
		mu.Unlock()
		if first && p.onProbe != nil {
			p.onProbe(e.Host)
		}
	}}
	sum := engine.Run(context.Background(), engine.Options{
		Policy: pol, Registry: p.reg, Lookup: providers.Lookup, Plans: plans, Check: check, Forks: 2,
		Connector: &poolConnector{l: p.l, pool: pool}, Hooks: engine.Tee{rec, ph}, Sequential: sequential,
	})
	return sum, rec, phases
}

// execAll runs script on every lab host.
func (p *pipelineLab) execAll(script string) {
	p.t.Helper()
	for _, h := range p.l.Hosts {
		p.exec(h.Name, script)
	}
}

// wantBatches checks how many probe and apply batches host's phases had
// (-1: any number).
func wantBatches(t *testing.T, host string, phases []engine.Phase, probe, apply int) {
	t.Helper()
	for _, w := range []struct {
		name string
		n    int
	}{{"probe", probe}, {"apply", apply}} {
		if got := count(phases, w.name); w.n >= 0 && got != w.n {
			t.Errorf("%s: got %d %s batches; want %d (%+v)", host, got, w.name, w.n, phases)
		}
	}
}

func (p *pipelineLab) exec(host, script string) string {
	p.t.Helper()
	out, err := p.l.Host(host).Exec(context.Background(), script)
	if err != nil {
		p.t.Fatalf("%s: %s: %v (%s)", host, script, err, out)
	}
	return string(out)
}

// count is how many phases called name phases has.
func count(phases []engine.Phase, name string) int {
	n := 0
	for _, p := range phases {
		if p.Name == name {
			n++
		}
	}
	return n
}

// TestLabPipelinedApply applies real resources on two hosts over SSH
// with the pipelined apply: a first apply in one probe batch and one
// batch of changes (plus one for the handler and one for the line on the
// template's file, whose guard sees the template's change); a change made
// by hand between probe and apply is caught by its guard; a failed change
// stops the batch; a resource without a step form is a barrier that sees
// the changes before it. Every apply is followed by a clean check.
func TestLabPipelinedApply(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 69, Hosts: []lab.HostSpec{{Name: "p1"}, {Name: "p2"}}})
	p := &pipelineLab{t: t, l: l, pdir: t.TempDir(), reg: providers.Registry()}
	if err := os.WriteFile(filepath.Join(p.pdir, "app.conf.tmpl"), []byte("name = {{ .host.name }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	clean := func(src string) {
		t.Helper()
		if sum, rec, _ := p.run(src, true, false); sum.Total.Changed != 0 || sum.Failed() {
			t.Fatalf("check after apply: got %+v; want nothing pending; events %+v", sum.Total, rec.events)
		}
	}
	reset := func() { p.execAll("rm -rf /srv/pipe /srv/pipe2") }

	t.Run("first apply", func(t *testing.T) {
		reset()
		sum, rec, phases := p.run(pipelinePolicy, false, false)
		if sum.Failed() || sum.Total.Changed != 2*7 {
			t.Fatalf("got %+v; want 7 changed per host (6 resources and the handler); events %+v", sum.Total, rec.events)
		}
		for _, h := range l.Hosts {
			got := p.exec(h.Name, "stat -c '%a %s' /srv/pipe /srv/pipe/b /srv/pipe/bin; cat /srv/pipe/a /srv/pipe/app.conf /srv/pipe/restarted; readlink /srv/pipe/current; od -An -c /srv/pipe/bin")
			want := "750 " // directory size varies
			if !strings.HasPrefix(got, want) || !strings.Contains(got, "\n600 2\n644 5\na on "+h.Name+"\nname = "+h.Name+"\nyes\n/srv/pipe/a\n") ||
				!strings.Contains(got, `x  \0   y  \n 377`) {
				t.Errorf("%s: got %q; want the files written byte for byte", h.Name, got)
			}
			// One probe batch and one batch of changes for the
			// resources, the same for the handler.
			wantBatches(t, h.Name, phases[h.Name], 2, 2)
		}
		clean(pipelinePolicy)
	})

	t.Run("a template then lines in the same file", func(t *testing.T) {
		reset()
		// The first line's check fails on the probe read before the
		// template made the file: the batch stops there and reads it
		// again; the second line is checked from what the first one's
		// change will make (providers.Predictor), in the same batch.
		src := `
[[roles]]
name = "web"
  [[roles.resources]]
  type = "template"
  src = "app.conf.tmpl"
  path = "/srv/pipe2/app.conf"
  [[roles.resources]]
  type = "line"
  path = "/srv/pipe2/app.conf"
  line = "one = 1"
  [[roles.resources]]
  type = "line"
  path = "/srv/pipe2/app.conf"
  line = "two = 2"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/after"
  content = "after\n"
`
		p.execAll("mkdir -p /srv/pipe2")
		sum, rec, phases := p.run(src, false, false)
		if sum.Failed() || sum.Total.Changed != 2*4 {
			t.Fatalf("got %+v; want 4 changed per host; events %+v", sum.Total, rec.events)
		}
		for _, h := range l.Hosts {
			if got, want := p.exec(h.Name, "cat /srv/pipe2/app.conf /srv/pipe2/after"), "name = "+h.Name+"\none = 1\ntwo = 2\nafter\n"; got != want {
				t.Errorf("%s: got %q; want %q", h.Name, got, want)
			}
			wantBatches(t, h.Name, phases[h.Name], 1, 2)
		}
	})

	t.Run("changed by hand between probe and apply", func(t *testing.T) {
		reset()
		p.onProbe = func(host string) {
			// p1: b made right by hand, p2: b made wrong another way.
			if host == "p1" {
				p.exec(host, "mkdir -p /srv/pipe && printf 'b\\n' >/srv/pipe/b && chmod 600 /srv/pipe/b")
			} else {
				p.exec(host, "mkdir -p /srv/pipe && printf 'hand\\n' >/srv/pipe/b")
			}
		}
		defer func() { p.onProbe = nil }()
		sum, rec, _ := p.run(pipelinePolicy, false, false)
		if sum.Failed() {
			t.Fatalf("got %+v; want no failure; events %+v", sum.Total, rec.events)
		}
		byHost := map[string]string{}
		for _, h := range []string{"p1", "p2"} {
			for _, e := range rec.resources(h) {
				if e.Resource == "file[/srv/pipe/b]" {
					byHost[h] = string(e.Status)
					if h == "p2" && (e.Change == nil || !strings.Contains(describe(e.Change), "hand")) {
						t.Errorf("p2: got change %s; want it checked again from the file changed by hand", describe(e.Change))
					}
				}
			}
		}
		if byHost["p1"] != "ok" || byHost["p2"] != "changed" {
			t.Errorf("file b: got %v; want ok on p1 (made right by hand) and changed on p2", byHost)
		}
		for _, h := range l.Hosts {
			if got := p.exec(h.Name, "cat /srv/pipe/b"); got != "b\n" {
				t.Errorf("%s: b: got %q; want %q", h.Name, got, "b\n")
			}
		}
		clean(pipelinePolicy)
	})

	t.Run("a failed change stops the batch", func(t *testing.T) {
		reset()
		src := `
[[roles]]
name = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/a"
  content = "a\n"
  [[roles.resources]]
  type = "directory"
  path = "/proc/opsmop-cannot"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/c"
  content = "c\n"
`
		p.execAll("mkdir -p /srv/pipe2")
		sum, rec, phases := p.run(src, false, false)
		if !sum.Failed() || sum.Total.Failed != 2 || sum.Total.Changed != 2 {
			t.Fatalf("got %+v; want a changed and the directory failed on each host; events %+v", sum.Total, rec.events)
		}
		var notices []string
		for _, e := range rec.events {
			if e.Type == "notice" {
				notices = append(notices, e.Message)
			}
		}
		for _, h := range l.Hosts {
			if got := p.exec(h.Name, "ls /srv/pipe2"); got != "a\n" {
				t.Errorf("%s: got %q in /srv/pipe2; want only a (c is after the failure)", h.Name, got)
			}
			wantBatches(t, h.Name, phases[h.Name], -1, 1)
			found := false
			for _, n := range notices {
				found = found || strings.HasPrefix(n, h.Name+": not run, directory[/proc/opsmop-cannot] having failed first: file[/srv/pipe2/c]")
			}
			if !found {
				t.Errorf("%s: notices %q; want one naming file /srv/pipe2/c as not run", h.Name, notices)
			}
		}
	})

	t.Run("a barrier sees the changes before it", func(t *testing.T) {
		reset()
		src := `
[[roles]]
name = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/one"
  content = "one\n"
  [[roles.resources]]
  type = "shell"
  cmd = "cat /srv/pipe2/one /srv/pipe2/two > /srv/pipe2/copy 2>&1; true"
  creates = "/srv/pipe2/copy"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/two"
  content = "two\n"
`
		p.execAll("mkdir -p /srv/pipe2")
		sum, rec, _ := p.run(src, false, false)
		if sum.Failed() || sum.Total.Changed != 2*3 {
			t.Fatalf("got %+v; want 3 changed per host; events %+v", sum.Total, rec.events)
		}
		for _, h := range l.Hosts {
			if got := p.exec(h.Name, "cat /srv/pipe2/copy"); !strings.HasPrefix(got, "one\n") || strings.Contains(got, "\ntwo\n") {
				t.Errorf("%s: the shell saw %q; want one's contents and no two yet", h.Name, got)
			}
		}
		clean(src)
	})

	t.Run("a package file in the batch", func(t *testing.T) {
		reset()
		p.execAll("dpkg --purge opsmop-pipe >/dev/null 2>&1; mkdir -p /srv/pipe2")
		testutil.BuildDeb(t, filepath.Join(p.pdir, "pipe.deb"), "gzip", map[string]string{
			"DEBIAN/control":        "Package: opsmop-pipe\nVersion: 1.0\nArchitecture: all\nMaintainer: opsmop <opsmop@example.com>\nDescription: pipelined apply test package\n",
			"usr/share/opsmop-pipe": "installed\n",
		})
		src := `
[[roles]]
name = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/before"
  content = "before\n"
  [[roles.resources]]
  type = "package"
  name = "opsmop-pipe"
  src = "pipe.deb"
  provider = "apt"
  [[roles.resources]]
  type = "file"
  path = "/srv/pipe2/after"
  content = "after\n"
`
		sum, rec, phases := p.run(src, false, false)
		if sum.Failed() || sum.Total.Changed != 2*3 {
			t.Fatalf("got %+v; want 3 changed per host; events %+v", sum.Total, rec.events)
		}
		for _, h := range l.Hosts {
			if got := p.exec(h.Name, "cat /usr/share/opsmop-pipe; dpkg-query -W -f '${Status}' opsmop-pipe; ls /tmp | grep -c '^opsmop\\.' || true"); got != "installed\ninstall ok installed0\n" {
				t.Errorf("%s: got %q; want the package installed and no temp directory left", h.Name, got)
			}
			wantBatches(t, h.Name, phases[h.Name], -1, 1)
		}
		clean(src)
		p.execAll("dpkg --purge opsmop-pipe >/dev/null 2>&1; true")
	})

	t.Run("no-pipeline gives the same result", func(t *testing.T) {
		reset()
		sum, rec, phases := p.run(pipelinePolicy, false, true)
		if sum.Failed() || sum.Total.Changed != 2*7 {
			t.Fatalf("got %+v; want 7 changed per host; events %+v", sum.Total, rec.events)
		}
		for _, h := range l.Hosts {
			wantBatches(t, h.Name, phases[h.Name], -1, 0)
		}
		clean(pipelinePolicy)
	})
}

// describe is a change as text, for messages.
func describe(ch *providers.Change) string {
	if ch == nil {
		return "<nil>"
	}
	var b strings.Builder
	b.WriteString(string(ch.Action))
	for _, f := range ch.Fields {
		b.WriteString(" " + f.Name + ": " + f.Before + " -> " + f.After)
	}
	return b.String() + " " + ch.Diff
}
