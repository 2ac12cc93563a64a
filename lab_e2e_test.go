package main

import (
	"bytes"
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

// e2ePolicy exercises every resource type over SSH: logged in as deploy,
// sudo to root with deploy's password (from the environment), on two
// direct hosts and one reachable only through the bastion.
const e2ePolicy = `
[[roles]]
name = "everything"
groups = "web"
ssh_as = { username = "deploy" }
sudo = true
sudo_as = { username = "root", password = "env:E2E_SUDO_PASSWORD" }
vars = { greeting = "hello" }

  [[roles.resources]]
  type = "group"
  name = "e2egrp"
  [[roles.resources]]
  type = "user"
  name = "e2esvc"
  group = "e2egrp"
  groups = ["e2egrp"]
  shell = "/bin/sh"
  [[roles.resources]]
  type = "directory"
  path = "/srv/e2e/data"
  owner = "e2esvc"
  group = "e2egrp"
  mode = "0750"
  [[roles.resources]]
  type = "file"
  path = "/srv/e2e/motd"
  content = "{{ .greeting }} from {{ .facts.hostname }}\n"
  [[roles.resources]]
  type = "file"
  path = "/srv/e2e/blob.bin"
  src = "files/blob.bin"
  mode = "0600"
  [[roles.resources]]
  type = "template"
  src = "templates/app.conf.tmpl"
  path = "/srv/e2e/app.conf"
  notify = ["mark handler"]
  [[roles.resources]]
  type = "link"
  path = "/srv/e2e/current"
  target = "/srv/e2e/motd"
  [[roles.resources]]
  type = "line"
  path = "/etc/hosts"
  line = "10.9.9.9 e2e.internal"
  [[roles.resources]]
  type = "shell"
  cmd = "date > /srv/e2e/once"
  creates = "/srv/e2e/once"
  [[roles.resources]]
  type = "package"
  name = "opsmop-e2e"
  src = "files/opsmop-e2e.deb"
  [[roles.resources]]
  type = "file"
  path = "/etc/init.d/e2e"
  src = "files/e2e.init"
  mode = "0755"
  [[roles.resources]]
  type = "service"
  service = "e2e"
  state = "started"
  [[roles.resources]]
  type = "echo"
  msg = "configured {{ .host.name }}"
  [[roles.resources]]
  type = "assert"
  that = ["facts.os_family == 'debian'", "greeting == 'hello'"]

  [[roles.handlers]]
  name = "mark handler"
  type = "shell"
  cmd = "echo ran >> /srv/e2e/handler-ran"
`

const e2eInit = `#!/bin/sh
PID=/run/e2e.pid
case "$1" in
  start) [ -f $PID ] || { sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > $PID; } ;;
  stop) [ -f $PID ] && kill "$(cat $PID)" 2>/dev/null; rm -f $PID ;;
  restart) "$0" stop; "$0" start ;;
  status) [ -f $PID ] && kill -0 "$(cat $PID)" 2>/dev/null ;;
esac
`

// buildE2EDeb builds a tiny Debian package into dir.
func buildE2EDeb(t *testing.T, dir string) {
	t.Helper()
	testutil.BuildDeb(t, filepath.Join(dir, "opsmop-e2e.deb"), "gzip", map[string]string{
		"DEBIAN/control":          "Package: opsmop-e2e\nVersion: 1.0\nArchitecture: all\nMaintainer: opsmop <opsmop@example.com>\nDescription: opsmop end-to-end test package\n",
		"usr/share/opsmop-e2e/ok": "installed\n",
	})
}

// labEnv is a CLI environment for l: a private HOME whose known_hosts
// holds the lab's host keys, no /etc defaults, and only vars in the
// environment.
func labEnv(t *testing.T, l *lab.Lab, vars map[string]string) Env {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	kh, err := os.ReadFile(l.KnownHosts)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "known_hosts"), kh, 0o600); err != nil {
		t.Fatal(err)
	}
	return Env{Home: home, EtcDefaults: filepath.Join(home, "no-etc-defaults.toml"), EtcSSHConfig: filepath.Join(home, "no-etc-defaults.toml") + ".no-ssh-config", Getenv: func(k string) string { return vars[k] }}
}

// opsmop runs the CLI in-process and returns its exit code and output.
func opsmop(t *testing.T, env Env, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	env.Stdout, env.Stderr, env.Stdin = &stdout, &stderr, strings.NewReader("")
	code := run(context.Background(), append([]string{"opsmop"}, args...), env)
	return code, stdout.String(), stderr.String()
}

// sshConnectionsByHost is sshConnections for every host of l, by name.
func sshConnectionsByHost(t *testing.T, l *lab.Lab) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, h := range l.Hosts {
		n[h.Name] = sshConnections(t, h)
	}
	return n
}

// sshConnections counts the connections h's sshd has logged so far.
func sshConnections(t *testing.T, h *lab.Host) int {
	t.Helper()
	b, err := os.ReadFile(h.Log)
	if err != nil {
		t.Fatalf("read sshd log of %s: %v", h.Name, err)
	}
	return strings.Count(string(b), "Connection from ")
}

// TestLabEveryResourceTypeOverSSH applies a policy using every resource
// type to three hosts at once over SSH (one behind a bastion): check shows
// the changes and changes nothing, apply converges with the handler run
// once, a second check is clean, and each run uses exactly one SSH
// connection per host.
func TestLabEveryResourceTypeOverSSH(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 40, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "web2", Group: "web"},
		{Name: "bastion", Group: "bastions"}, {Name: "db1", Group: "web", Via: "bastion"},
	}})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"site.toml":               e2ePolicy,
		"templates/app.conf.tmpl": "greeting = {{ .greeting }}\nhost = {{ .host.name }}\n",
		"files/e2e.init":          e2eInit,
		"files/blob.bin":          "\x00\x01\xff binary \x00 content\n",
	})
	buildE2EDeb(t, filepath.Join(dir, "files"))
	password := l.DeployPassword.Reveal()
	env := labEnv(t, l, map[string]string{"E2E_SUDO_PASSWORD": password})
	policy := filepath.Join(dir, "site.toml")
	hosts := []*lab.Host{l.Host("web1"), l.Host("web2"), l.Host("db1")}
	logins := func() []int {
		var n []int
		for _, h := range hosts {
			n = append(n, sshConnections(t, h))
		}
		return n
	}
	ctx := context.Background()

	// check: every type reports its change; nothing on the hosts changes.
	before := logins()
	code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--detailed-exitcode")
	if code != exitPending {
		t.Fatalf("check: exit %d; want %d (pending)\nstdout:\n%s\nstderr:\n%s", code, exitPending, out, errOut)
	}
	for _, want := range []string{"group[e2egrp]: would create", "user[e2esvc]: would create", "directory[/srv/e2e/data]: would create",
		"file[/srv/e2e/motd]: would create", "+hello from web1", "file[/srv/e2e/blob.bin]: would create", "template[/srv/e2e/app.conf]: would create",
		"link[/srv/e2e/current]: would create", "line[/etc/hosts]: would update", "+10.9.9.9 e2e.internal", "shell[date > /srv/e2e/once]: would run",
		"package[opsmop-e2e]: would", "service[e2e]: would", "configured db1", "handler shell[echo ran >> /srv/e2e/handler-ran]: would run"} {
		if !strings.Contains(out, want) {
			t.Errorf("check output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+errOut, password) {
		t.Errorf("the sudo password appears in the output")
	}
	for i, h := range hosts {
		got, err := h.Exec(ctx, "test -e /srv/e2e && echo changed; getent passwd e2esvc; dpkg -s opsmop-e2e 2>/dev/null | grep -c installed; grep -c e2e.internal /etc/hosts; true")
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.TrimSpace(string(got)); s != "0\n0" {
			t.Errorf("%s after check: got %q; want nothing changed", h.Name, s)
		}
		if d := logins()[i] - before[i]; d != 1 {
			t.Errorf("%s: check made %d SSH connections; want exactly 1", h.Name, d)
		}
	}

	// apply: converges; every host changed; the handler ran once.
	before = logins()
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory)
	if code != exitOK {
		t.Fatalf("apply: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	if !regexp.MustCompile(`TOTAL +hosts=3 ok=6 changed=39 failed=0`).MatchString(out) {
		t.Errorf("apply recap: want 3 hosts, 13 changes each (12 resources and the handler), no failure:\n%s", out)
	}
	for i, h := range hosts {
		got, err := h.Exec(ctx, "cat /srv/e2e/handler-ran; cat /srv/e2e/motd; readlink /srv/e2e/current; stat -c '%U:%G %a' /srv/e2e/data; cat /usr/share/opsmop-e2e/ok; service e2e status && echo running; id -gn e2esvc")
		if err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, got)
		}
		want := "ran\nhello from " + h.Name + "\n/srv/e2e/motd\ne2esvc:e2egrp 750\ninstalled\nrunning\ne2egrp\n"
		if string(got) != want {
			t.Errorf("%s after apply: got %q; want %q", h.Name, got, want)
		}
		if d := logins()[i] - before[i]; d != 1 {
			t.Errorf("%s: apply made %d SSH connections; want exactly 1", h.Name, d)
		}
	}

	// check again: clean.
	code, out, errOut = opsmop(t, env, "check", policy, "-i", l.Inventory, "--detailed-exitcode")
	if code != exitOK || !strings.Contains(out, "pending=0 failed=0") {
		t.Fatalf("check after apply: exit %d; want 0 with nothing pending\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}
