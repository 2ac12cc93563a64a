package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// forceHandlersPolicy changes a config file (notifying the restart
// handler) and then fails on web1 only (an assert), over SSH as deploy
// with sudo to root.
const forceHandlersPolicy = `
[[roles]]
name = "app"
groups = "web"
ssh_as = { username = "deploy" }
sudo = true
sudo_as = { username = "root", password = "env:FH_SUDO_PASSWORD" }
  [[roles.resources]]
  type = "directory"
  path = "/srv/fh"
  [[roles.resources]]
  type = "file"
  path = "/srv/fh/app.conf"
  content = "port = 8080\n"
  notify = ["restart app"]
  [[roles.resources]]
  type = "assert"
  that = ["host.name != 'web1'"]
  [[roles.resources]]
  type = "file"
  path = "/srv/fh/after"
  content = "reached\n"
  [[roles.handlers]]
  name = "restart app"
  type = "shell"
  cmd = "echo restarted >> /srv/fh/restarts"
`

// TestLabForceHandlers runs a policy whose resources notify a handler and
// then fail on one of two hosts, over SSH: check --force-handlers shows
// the handler as would run on the failed host too and leaves both hosts
// untouched; apply --force-handlers runs it on both, after the failure on
// web1, whose later resources do not run and which stays failed (exit 1,
// failed=1, --retry-failed lists it); a second apply notifies nothing and
// runs no handler; after drift (the file changed on web1) an apply without
// the flag repairs the file but does not run the handler on the failed
// host, and with the flag it does.
func TestLabForceHandlers(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 62, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "web2", Group: "web"},
	}})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": forceHandlersPolicy})
	password := l.DeployPassword.Reveal()
	env := labEnv(t, l, map[string]string{"FH_SUDO_PASSWORD": password})
	policy := filepath.Join(dir, "site.toml")
	web1, web2 := l.Host("web1"), l.Host("web2")
	ctx := context.Background()
	state := func(h *lab.Host) string {
		t.Helper()
		out, err := h.Exec(ctx, "for f in app.conf restarts after; do printf '%s=' $f; cat /srv/fh/$f 2>/dev/null | tr '\\n' ';'; echo; done")
		if err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, out)
		}
		return string(out)
	}
	const untouched = "app.conf=\nrestarts=\nafter=\n"
	handlerLine := regexp.MustCompile(`(?m)^(web[12]): handler shell\[echo restarted >> /srv/fh/restarts\]: (would run|run)$`)
	handlersRun := func(out string) []string {
		var hosts []string
		for _, m := range handlerLine.FindAllStringSubmatch(out, -1) {
			hosts = append(hosts, m[1]+" "+m[2])
		}
		return hosts
	}

	// check --force-handlers: web1's assert fails, and the handler shows
	// as would run on both hosts; nothing changes.
	code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--force-handlers")
	if code != exitFailed {
		t.Fatalf("check: exit %d; want %d (web1 fails)\nstdout:\n%s\nstderr:\n%s", code, exitFailed, out, errOut)
	}
	for _, want := range []string{
		"web1: assert[host.name != 'web1']: FAILED",
		`web1: failed in role app; running the handlers notified before the failure (force_handlers): "restart app"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.Join(handlersRun(out), ","); got != "web1 would run,web2 would run" && got != "web2 would run,web1 would run" {
		t.Errorf("check: handler lines: got %q; want would run on web1 and web2:\n%s", got, out)
	}
	for _, h := range []*lab.Host{web1, web2} {
		if got := state(h); got != untouched {
			t.Errorf("%s after check: got %q; want %q (check changes nothing)", h.Name, got, untouched)
		}
	}

	// apply --force-handlers: the handler runs on both hosts; web1 stays
	// failed and its resources after the assert do not run.
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory, "--force-handlers")
	if code != exitFailed {
		t.Fatalf("apply: exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, exitFailed, out, errOut)
	}
	if strings.Contains(out+errOut, password) {
		t.Errorf("the sudo password appears in the output")
	}
	for _, re := range []string{
		`(?m)^web1 +ok=0 changed=3 failed=1 skipped=0 unreachable=0$`,
		`(?m)^web2 +ok=1 changed=4 failed=0 skipped=0 unreachable=0$`,
		// On web1 the handler comes after the failure.
		`(?s)web1: assert\[[^\n]*\]: FAILED.*web1: failed in role app; running the handlers.*web1: handler shell\[echo restarted >> /srv/fh/restarts\]: run`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("apply output does not match %s:\n%s", re, out)
		}
	}
	if got, want := state(web1), "app.conf=port = 8080;\nrestarts=restarted;\nafter=\n"; got != want {
		t.Errorf("web1 after apply: got %q; want %q", got, want)
	}
	if got, want := state(web2), "app.conf=port = 8080;\nrestarts=restarted;\nafter=reached;\n"; got != want {
		t.Errorf("web2 after apply: got %q; want %q", got, want)
	}
	// The retry file: a comment line, then the failed hosts.
	if b, err := os.ReadFile(lastFailedPath(env.Home, policy)); err != nil || !strings.HasSuffix(string(b), "\nweb1\n") || strings.Contains(string(b), "web2") {
		t.Errorf("retry file: got %q (%v); want web1 listed, not web2", b, err)
	}

	// apply again: nothing notified, no handler runs; web1 still fails.
	code, out, _ = opsmop(t, env, "apply", policy, "-i", l.Inventory, "--force-handlers")
	if code != exitFailed || len(handlersRun(out)) != 0 || strings.Contains(out, "running the handlers") {
		t.Errorf("second apply: exit %d, handlers %v; want exit 1 and no handler:\n%s", code, handlersRun(out), out)
	}
	if got, want := state(web1), "app.conf=port = 8080;\nrestarts=restarted;\nafter=\n"; got != want {
		t.Errorf("web1 after the second apply: got %q; want %q", got, want)
	}

	// Drift on web1: without the flag the file is repaired and the
	// restart is lost; with it (after the same drift) the restart runs.
	for _, force := range []bool{false, true} {
		if out, err := web1.Exec(ctx, "echo 'port = 1' > /srv/fh/app.conf"); err != nil {
			t.Fatalf("drift: %v: %s", err, out)
		}
		args := []string{"apply", policy, "-i", l.Inventory, "-l", "web1"}
		if force {
			args = append(args, "--force-handlers")
		}
		code, out, errOut = opsmop(t, env, args...)
		if code != exitFailed || !strings.Contains(out, "web1: file[/srv/fh/app.conf]: update") {
			t.Fatalf("apply after drift (force %v): exit %d; want 1 with the file repaired\nstdout:\n%s\nstderr:\n%s", force, code, out, errOut)
		}
		want := "app.conf=port = 8080;\nrestarts=restarted;\nafter=\n"
		if force {
			want = "app.conf=port = 8080;\nrestarts=restarted;restarted;\nafter=\n"
		}
		if got := state(web1); got != want {
			t.Errorf("web1 after drift and apply (force %v): got %q; want %q", force, got, want)
		}
	}
}
