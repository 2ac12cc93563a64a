package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// systemdPolicy writes two unit files, each notifying its restart
// handler, and keeps both services started and enabled with daemon_reload,
// over SSH as deploy with sudo to root. %s is unit b's ExecStart.
const systemdPolicy = `
[[roles]]
name = "units"
groups = "web"
ssh_as = { username = "deploy" }
sudo = true
sudo_as = { username = "root", password = "env:SD_SUDO_PASSWORD" }
  [[roles.resources]]
  type = "file"
  path = "/etc/systemd/system/opsmop-a.service"
  content = "[Service]\nExecStart=/bin/true a\n[Install]\nWantedBy=multi-user.target\n"
  notify = ["restart a"]
  [[roles.resources]]
  type = "file"
  path = "/etc/systemd/system/opsmop-b.service"
  content = "[Service]\nExecStart=%s\n[Install]\nWantedBy=multi-user.target\n"
  notify = ["restart b"]
  [[roles.resources]]
  type = "service"
  service = "opsmop-a"
  provider = "systemd"
  state = "started"
  enabled = true
  daemon_reload = true
  [[roles.resources]]
  type = "service"
  service = "opsmop-b"
  provider = "systemd"
  state = "started"
  enabled = true
  daemon_reload = true
  [[roles.handlers]]
  name = "restart a"
  type = "service"
  service = "opsmop-a"
  provider = "systemd"
  state = "restarted"
  daemon_reload = true
  [[roles.handlers]]
  name = "restart b"
  type = "service"
  service = "opsmop-b"
  provider = "systemd"
  state = "restarted"
  daemon_reload = true
`

// TestLabSystemdDaemonReload runs the systemd keys of `service` end to end
// on two lab hosts with the systemctl stand-in
// (providers/testdata/systemctl-standin.sh): check changes nothing and
// calls no mutating systemctl verb; the first apply writes both unit files
// and runs daemon-reload exactly once per host although four resources
// ask for it (the second service and the handlers see NeedDaemonReload=no
// once the first reloaded), then starts, enables and restarts each unit
// once; a second apply calls no mutating verb; after a policy change to
// one unit file, the next apply reloads once and restarts only that unit;
// a unit disabled by hand is enabled again.
func TestLabSystemdDaemonReload(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 63, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "web2", Group: "web"},
	}})
	ctx := context.Background()
	standin, err := os.ReadFile("providers/testdata/systemctl-standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	const logFile = "/var/log/systemctl-standin.log"
	hosts := []*lab.Host{l.Host("web1"), l.Host("web2")}
	for _, h := range hosts {
		if out, err := h.ExecInput(ctx, "cat > /usr/bin/systemctl && chmod 755 /usr/bin/systemctl && mkdir -p /etc/systemd/system && systemctl daemon-reload && : > "+logFile, bytes.NewReader(standin)); err != nil {
			t.Fatalf("%s: install the stand-in: %v: %s", h.Name, err, out)
		}
	}
	// calls returns the mutating systemctl calls on h since the last call
	// and empties the log.
	calls := func(h *lab.Host) string {
		t.Helper()
		out, err := h.Exec(ctx, "grep -Ev '^(show|is-active|is-enabled) ' "+logFile+" || true; : > "+logFile)
		if err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, out)
		}
		return strings.ReplaceAll(strings.TrimSpace(string(out)), "\n", "; ")
	}
	units := func(h *lab.Host) string {
		t.Helper()
		out, err := h.Exec(ctx, "cd /etc/systemd/system && find . -printf '%p %l\\n' | sort; ls /var/lib/systemctl-standin/active")
		if err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, out)
		}
		return string(out)
	}

	dir := t.TempDir()
	policy := filepath.Join(dir, "site.toml")
	write := func(execB string) {
		testutil.WriteTree(t, dir, map[string]string{"site.toml": fmt.Sprintf(systemdPolicy, execB)})
	}
	write("/bin/true b")
	password := l.DeployPassword.Reveal()
	env := labEnv(t, l, map[string]string{"SD_SUDO_PASSWORD": password})

	// check: everything would change, nothing does.
	before := map[string]string{}
	for _, h := range hosts {
		before[h.Name] = units(h)
	}
	code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory)
	if code != exitOK {
		t.Fatalf("check: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, h := range hosts {
		if got := calls(h); got != "" {
			t.Errorf("%s: check called systemctl %q; want no mutating call", h.Name, got)
		}
		if got := units(h); got != before[h.Name] {
			t.Errorf("%s: check changed the host:\nbefore:\n%s\nafter:\n%s", h.Name, before[h.Name], got)
		}
	}

	// First apply: one daemon-reload per host, before the first start.
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory)
	if code != exitOK {
		t.Fatalf("apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, password) {
		t.Errorf("the sudo password appears in the output")
	}
	for _, h := range hosts {
		want := "daemon-reload; start opsmop-a; enable opsmop-a; start opsmop-b; enable opsmop-b; restart opsmop-a; restart opsmop-b"
		if got := calls(h); got != want {
			t.Errorf("%s: first apply: systemctl calls: got %q; want %q", h.Name, got, want)
		}
		if !regexp.MustCompile(`(?m)^` + h.Name + `: service\[opsmop-a\]: .*\n(?:.*\n)*?\s+daemon_reload: unit files changed on disk -> reloaded`).MatchString(out) {
			t.Errorf("%s: apply output does not show the reload under service[opsmop-a]:\n%s", h.Name, out)
		}
	}

	// Second apply: nothing to do, no mutating call.
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory)
	if code != exitOK {
		t.Fatalf("second apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, h := range hosts {
		if got := calls(h); got != "" {
			t.Errorf("%s: second apply: systemctl calls: got %q; want none", h.Name, got)
		}
	}

	// Unit b changes in the policy: one reload, at service b (a's files
	// did not change), and only b restarts.
	write("/bin/true b2")
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory)
	if code != exitOK {
		t.Fatalf("apply after the change: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	for _, h := range hosts {
		if got, want := calls(h), "daemon-reload; restart opsmop-b"; got != want {
			t.Errorf("%s: apply after the change: systemctl calls: got %q; want %q", h.Name, got, want)
		}
	}

	// Drift: a disabled by hand on web1 is enabled again, nothing else.
	web1 := hosts[0]
	if out, err := web1.Exec(ctx, "systemctl disable opsmop-a && : > "+logFile); err != nil {
		t.Fatalf("drift: %v: %s", err, out)
	}
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory)
	if code != exitOK || !strings.Contains(out, "enabled: false -> true") {
		t.Fatalf("apply after drift: exit %d; want 0 with enabled repaired\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if got, want := calls(web1), "enable opsmop-a"; got != want {
		t.Errorf("web1 after drift: systemctl calls: got %q; want %q", got, want)
	}
	if got := calls(hosts[1]); got != "" {
		t.Errorf("web2 after web1's drift: systemctl calls: got %q; want none", got)
	}
}

// TestSystemdKeysValidate checks that `opsmop validate` reports the
// refused combinations of the systemd keys at their file:line, before any
// host is contacted.
func TestSystemdKeysValidate(t *testing.T) {
	dir := t.TempDir()
	src := `[[roles]]
name = "x"
  [[roles.resources]]
  type = "service"
  service = "app"
  state = "started"
  masked = true
  [[roles.resources]]
  type = "service"
  service = "app"
  enabled = true
  masked = true
  [[roles.resources]]
  type = "service"
  service = "app"
  provider = "sysv"
  daemon_reload = true
  masked = false
`
	testutil.WriteTree(t, dir, map[string]string{"site.toml": src})
	policy := filepath.Join(dir, "site.toml")
	env, stdout, stderr := testEnv(t, nil)
	code := run(context.Background(), []string{"opsmop", "validate", policy}, env)
	if code != exitInvalid {
		t.Fatalf("validate: exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, exitInvalid, stdout, stderr)
	}
	for _, want := range []string{
		policy + `:7: roles[0].resources[0].masked: masked = true with state = "started": a masked unit cannot be started`,
		policy + `:12: roles[0].resources[1].masked: masked = true with enabled = true: a masked unit cannot be enabled`,
		policy + `:17: roles[0].resources[2].daemon_reload: daemon_reload needs provider systemd: sysv has no unit files to reload`,
		policy + `:18: roles[0].resources[2].masked: masked needs provider systemd: sysv has no masking`,
	} {
		if !strings.Contains(stdout.String()+stderr.String(), want) {
			t.Errorf("validate output lacks %q:\n%s%s", want, stdout, stderr)
		}
	}
}
