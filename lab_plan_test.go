package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// planPolicy writes a directory, a template, a line in the template's
// file (the line is in the template too: once the template is written
// the line checks clean), a sensitive file from an -e secret, and a
// handler the template notifies; over SSH as deploy with sudo to root,
// the sudo password from the environment.
const planPolicy = `
[[roles]]
name = "app"
groups = "web"
ssh_as = { username = "deploy" }
sudo = true
sudo_as = { username = "root", password = "env:PLAN_SUDO_PASSWORD" }
vars = { port = 8080 }
  [[roles.resources]]
  type = "directory"
  path = "/srv/plan"
  [[roles.resources]]
  type = "template"
  src = "templates/app.conf.tmpl"
  path = "/srv/plan/app.conf"
  notify = ["restart app"]
  [[roles.resources]]
  type = "line"
  path = "/srv/plan/app.conf"
  line = "extra = 1"
  create = true
  [[roles.resources]]
  type = "file"
  path = "/srv/plan/token"
  content = "{{ .token }}\n"
  sensitive = true
  [[roles.handlers]]
  name = "restart app"
  type = "shell"
  cmd = "echo restarted >> /srv/plan/restarts"
`

// plantedToken is the -e secret: it must never reach a plan file.
const plantedToken = "PLANTED-token-5b0c9e"

// TestLabSavedPlan: check -o writes a plan (0600, no secrets) and changes
// nothing; show prints what check printed; apply FILE performs it (the
// line, planned against the file before the template wrote it, is checked
// again and says so) and the hosts then check clean; a host changed by
// hand after the plan is refused with nothing changed on it while the
// other is applied; a changed template or policy, missing -e variables,
// flags that choose hosts, another login and a tampered or unknown plan
// refuse the whole plan before any host is contacted.
func TestLabSavedPlan(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 64, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "web2", Group: "web"},
	}})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"site.toml":               planPolicy,
		"templates/app.conf.tmpl": "port = {{ .port }}\nextra = 1\n",
	})
	password := l.DeployPassword.Reveal()
	env := labEnv(t, l, map[string]string{"PLAN_SUDO_PASSWORD": password})
	policy := filepath.Join(dir, "site.toml")
	planPath := filepath.Join(dir, "site.plan")
	web1, web2 := l.Host("web1"), l.Host("web2")
	ctx := context.Background()
	sh := func(h *lab.Host, script string) string {
		t.Helper()
		out, err := h.Exec(ctx, script)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", h.Name, script, err, out)
		}
		return string(out)
	}
	state := func(h *lab.Host) string {
		return sh(h, "cd /srv 2>/dev/null && find . -path './plan*' -exec ls -ld --time-style=+ {} + 2>/dev/null | sort; cat /srv/plan/app.conf /srv/plan/restarts 2>/dev/null; true")
	}
	reset := func() {
		for _, h := range []*lab.Host{web1, web2} {
			sh(h, "rm -rf /srv/plan")
		}
	}
	run := func(want int, args ...string) string {
		t.Helper()
		code, out, errOut := opsmop(t, env, args...)
		if code != want {
			t.Fatalf("opsmop %s: exit %d; want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, want, out, errOut)
		}
		if strings.Contains(out+errOut, password) || strings.Contains(out+errOut, plantedToken) {
			t.Fatalf("opsmop %s: a secret appears in the output", strings.Join(args, " "))
		}
		return out + errOut
	}
	secret := "token=" + plantedToken

	// check -o: the plan, and nothing changed.
	reset()
	before1, before2 := state(web1), state(web2)
	checkOut := run(0, "check", policy, "-i", l.Inventory, "-e", secret, "-o", planPath)
	if state(web1) != before1 || state(web2) != before2 {
		t.Fatalf("check -o changed a host")
	}
	fi, err := os.Stat(planPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("plan file: %v, %v; want mode 0600", fi, err)
	}
	data, _ := os.ReadFile(planPath)
	if strings.Contains(string(data), password) || strings.Contains(string(data), plantedToken) {
		t.Fatalf("the plan file holds a secret")
	}
	var pf planFile
	if err := json.Unmarshal(data, &pf); err != nil || pf.Format != planFormat || pf.Version != planVersion || len(pf.Hosts) != 2 || len(pf.Inputs) != 3 {
		t.Fatalf("plan: %v; got format %q version %d, %d hosts, %d inputs; want 2 hosts and 3 inputs (inventory, policy, template)", err, pf.Format, pf.Version, len(pf.Hosts), len(pf.Inputs))
	}
	// show prints the resources as check did (the recap's time aside).
	resourceLines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "web") && strings.Contains(l, ": ") || strings.HasPrefix(l, "    ") {
				out = append(out, l)
			}
		}
		return out
	}
	showOut := run(0, "show", planPath)
	if got, want := sortedLines(resourceLines(showOut)), sortedLines(resourceLines(checkOut)); got != want {
		t.Errorf("show: got\n%s\nwant (as check printed)\n%s", got, want)
	}

	// apply FILE: performed; the line is checked again after the template
	// and says so; then the hosts check clean.
	applyOut := run(0, "apply", planPath, "-e", secret, "--json")
	if !regexp.MustCompile(`"resource":"line\[/srv/plan/app.conf\]"[^\n]*"message":"checked again after an earlier change of this run on the host: the plan had create`).MatchString(applyOut) {
		t.Errorf("apply: the line's event does not say it was checked again:\n%s", applyOut)
	}
	for _, h := range []*lab.Host{web1, web2} {
		if got := sh(h, "cat /srv/plan/app.conf /srv/plan/restarts"); got != "port = 8080\nextra = 1\nrestarted\n" {
			t.Errorf("%s after apply: got %q", h.Name, got)
		}
	}
	run(0, "check", policy, "-i", l.Inventory, "-e", secret, "--detailed-exitcode")

	// Drift: web1 changed by hand after the plan is refused, untouched;
	// web2 is applied.
	reset()
	for _, h := range []*lab.Host{web1, web2} {
		sh(h, "mkdir -p /srv/plan")
	}
	run(0, "check", policy, "-i", l.Inventory, "-e", secret, "-o", planPath)
	sh(web1, "echo 'port = 1' > /srv/plan/app.conf")
	drifted := state(web1)
	out := run(exitFailed, "apply", planPath, "-e", secret)
	for _, want := range []string{
		"web1: refused: drifted since the plan: template[/srv/plan/app.conf] (app/resources/1): the plan has create",
		"the host now needs update",
		"nothing was changed on it",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply with drift: output lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`(?m)^web1 +ok=0 changed=0 failed=1`).MatchString(out) || !regexp.MustCompile(`(?m)^web2 +ok=2 changed=3 failed=0`).MatchString(out) {
		t.Errorf("apply with drift: recap:\n%s", out)
	}
	if got := state(web1); got != drifted {
		t.Errorf("web1 was changed although refused:\n%s\nwas\n%s", got, drifted)
	}

	// Refused as a whole, before any host is contacted (exit 3).
	reset()
	run(0, "check", policy, "-i", l.Inventory, "-e", secret, "-o", planPath)
	before1, before2 = state(web1), state(web2)
	tmpl := filepath.Join(dir, "templates/app.conf.tmpl")
	for _, tc := range []struct {
		name, want string
		args       []string
		change     func()
		undo       func()
	}{
		{name: "template changed", want: "these local files changed since the plan was made: " + tmpl,
			change: func() { testutil.WriteTree(t, dir, map[string]string{"templates/app.conf.tmpl": "port = 9\n"}) },
			undo: func() {
				testutil.WriteTree(t, dir, map[string]string{"templates/app.conf.tmpl": "port = {{ .port }}\nextra = 1\n"})
			}},
		{name: "policy changed", want: "changed since the plan was made: " + policy,
			change: func() { testutil.WriteTree(t, dir, map[string]string{"site.toml": planPolicy + "\n# edited\n"}) },
			undo:   func() { testutil.WriteTree(t, dir, map[string]string{"site.toml": planPolicy}) }},
		{name: "no -e", want: "give the same -e variables again", args: []string{}},
		{name: "limit", want: "--limit cannot be given with a plan", args: []string{"-e", secret, "--limit", "web2"}},
		{name: "inventory", want: "-i cannot be given with a plan", args: []string{"-e", secret, "-i", l.Inventory}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.change != nil {
				tc.change()
				defer tc.undo()
			}
			args := tc.args
			if args == nil {
				args = []string{"-e", secret}
			}
			out := run(exitInvalid, append([]string{"apply", planPath}, args...)...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("got %q; want it to say %q", out, tc.want)
			}
			if state(web1) != before1 || state(web2) != before2 {
				t.Errorf("a refused plan changed a host")
			}
		})
	}
	// Another login than the plan's: each host refused, none changed.
	out = run(exitFailed, "apply", planPath, "-e", secret, "-u", "root")
	if !strings.Contains(out, `the plan was made for this host reached as "deploy@`) || state(web1) != before1 || state(web2) != before2 {
		t.Errorf("apply as another user: got\n%s\nwant both hosts refused and unchanged", out)
	}
	// A tampered plan, and one of a later format version.
	for name, edit := range map[string]func(string) string{
		"tampered": func(s string) string { return strings.Replace(s, `"hosts": [`, `"extra": 1, "hosts": [`, 1) },
		"version":  func(s string) string { return strings.Replace(s, `"version": 1`, `"version": 2`, 1) },
	} {
		p := filepath.Join(dir, name+".plan")
		if err := os.WriteFile(p, []byte(edit(string(data))), 0o600); err != nil {
			t.Fatal(err)
		}
		out := run(exitInvalid, "apply", p, "-e", secret)
		if !strings.Contains(out, "malformed") && !strings.Contains(out, "plan format version 2") {
			t.Errorf("%s plan: got %q; want it refused", name, out)
		}
	}
	// The plan still applies after all that.
	run(0, "apply", planPath, "-e", secret)
	run(0, "check", policy, "-i", l.Inventory, "-e", secret, "--detailed-exitcode")
}

// sortedLines joins lines sorted (hosts report concurrently).
func sortedLines(lines []string) string {
	s := slices.Clone(lines)
	slices.Sort(s)
	return strings.Join(s, "\n")
}
