package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// oddClass is one kind of unusual target of TestLabOddHosts: a lab host
// made odd by a root script, logged into as user, with or without sudo.
type oddClass struct {
	name  string
	user  string // login user: app (no sudo), ops (sudo without password) or deploy (sudo with password)
	sudo  bool
	setup string   // run as root on the host before the test
	sshd  []string // extra sshd_config lines
	// fail, when set, is the text the host's failure must name: such a
	// host must fail loudly (check, apply and run), never succeed.
	fail string
}

// The setup scripts' pieces.
const (
	// srvOdd is where the policy writes: owned by the login user.
	srvOdd = "mkdir -p /srv/odd && chmod 1777 /srv/odd; "
	// noTmp leaves a non-root user no writable temp directory but $HOME:
	// fresh root-owned 0755 /tmp and /dev/shm, /var/tmp 0755.
	noTmp = "mount -t tmpfs -o mode=0755 tmpfs /tmp && mount -t tmpfs -o mode=0755 tmpfs /dev/shm && chmod 0755 /var/tmp; "
	// noHash hides every hash tool opsmop could use.
	noHash = "for t in sha256sum shasum sha1sum md5sum openssl b2sum cksum; do p=$(command -v $t) && mount --bind /dev/null \"$p\"; done; "
)

// oddClasses are the classes of issue 14: every login shell, busybox as
// /bin/sh, noisy dotfiles, no writable temp directory, no hash tool,
// sshd MaxSessions 1 and 2, sudo with requiretty.
func oddClasses() []oddClass {
	shell := func(path string) string { return srvOdd + "chsh -s " + path + " app; " }
	return []oddClass{
		{name: "fish", user: "app", setup: shell("/usr/bin/fish")},
		{name: "tcsh", user: "app", setup: shell("/usr/bin/tcsh")},
		{name: "csh", user: "app", setup: shell("/bin/csh")},
		{name: "zsh", user: "app", setup: shell("/usr/bin/zsh")},
		{name: "dash", user: "app", setup: shell("/bin/dash")},
		{name: "ash", user: "app", setup: "ln -sf /bin/busybox /usr/local/bin/ash && echo /usr/local/bin/ash >>/etc/shells; " + shell("/usr/local/bin/ash")},
		// busybox as /bin/sh: /bin/sh -> dash on the machine, so busybox is
		// mounted over dash (busybox called as sh is its ash).
		{name: "bbsh", user: "app", setup: "mount --bind /bin/busybox \"$(readlink -f /bin/sh)\"; " + shell("/bin/sh")},
		{name: "noisy", user: "app", setup: shell("/bin/bash") + "printf 'echo hello from bashrc\\necho warning from bashrc >&2\\n' >/home/app/.bashrc; printf 'echo hello from profile\\n' >/home/app/.profile; chown app /home/app/.bashrc /home/app/.profile; "},
		{name: "fishnoisy", user: "app", setup: shell("/usr/bin/fish") + "mkdir -p /home/app/.config/fish && printf 'echo hello from fish\\necho warning from fish >&2\\n' >/home/app/.config/fish/config.fish && chown -R app /home/app/.config; "},
		{name: "notmp", user: "app", setup: srvOdd + noTmp},
		{name: "fishnotmp", user: "app", setup: shell("/usr/bin/fish") + noTmp},
		{name: "nowhere", user: "app", setup: shell("/bin/bash") + noTmp + "chmod 0555 /home/app; ", fail: "temp"},
		{name: "nohash", user: "app", setup: srvOdd + noHash},
		{name: "maxsess1", user: "ops", sudo: true, setup: srvOdd, sshd: []string{"MaxSessions 1"}},
		{name: "maxsess2", user: "ops", sudo: true, setup: srvOdd, sshd: []string{"MaxSessions 2"}},
		{name: "requiretty", user: "ops", sudo: true, setup: srvOdd + "printf 'Defaults requiretty\\n' >/etc/sudoers.d/zz-requiretty; chmod 0440 /etc/sudoers.d/zz-requiretty; "},
		{name: "requirettypw", user: "deploy", sudo: true, setup: srvOdd + "printf 'Defaults requiretty\\n' >/etc/sudoers.d/zz-requiretty; chmod 0440 /etc/sudoers.d/zz-requiretty; "},
	}
}

// oddPolicy writes a small and a large (over 64 KiB) file and runs a
// command that creates a third; as the login user or under sudo.
const oddPolicy = `
[[roles]]
name = "odd"
groups = "all"
  [[roles.resources]]
  type = "file"
  path = "/srv/odd/small.txt"
  content = "hello {{ .host.name }}\n"
  mode = "0640"
  [[roles.resources]]
  type = "file"
  path = "/srv/odd/big.bin"
  src = "files/big.bin"
  [[roles.resources]]
  type = "shell"
  cmd = "echo made >/srv/odd/made.txt"
  creates = "/srv/odd/made.txt"
`

// TestLabOddHosts runs check, apply, check (clean), an ad-hoc command, a
// failing command and a command exiting 3 against every class of odd
// target: each must work, or (nowhere) fail loudly with the cause, and a
// failed command is never reported as a success.
func TestLabOddHosts(t *testing.T) {
	classes := oddClasses()
	var specs []lab.HostSpec
	for _, c := range classes {
		specs = append(specs, lab.HostSpec{Name: c.name, Group: "odd", SSHDOptions: c.sshd})
	}
	l := labtest.Start(t, lab.Config{Subnet: 59, Hosts: specs})
	for _, c := range classes {
		if out, err := l.Host(c.name).Exec(t.Context(), c.setup); err != nil {
			t.Fatalf("%s: setup: %v\n%s", c.name, err, out)
		}
	}
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef"), 100*1024/16+3)
	testutil.WriteTree(t, dir, map[string]string{"site.toml": oddPolicy, "files/big.bin": string(big)})
	var inv strings.Builder
	inv.WriteString("[groups.odd.hosts]\n")
	for _, c := range classes {
		h := l.Host(c.name)
		fmt.Fprintf(&inv, "%s = \"opsmop_host=%s opsmop_port=%d opsmop_ssh_username=%s", c.name, h.Addr, h.Port, c.user)
		if c.sudo {
			inv.WriteString(" opsmop_sudo=true")
		}
		if c.user == "deploy" {
			inv.WriteString(" opsmop_sudo_password=" + l.DeployPassword.Reveal())
		}
		inv.WriteString("\"\n")
	}
	fmt.Fprintf(&inv, "[groups.all.vars]\nopsmop_ssh_private_key = %q\n", l.ClientKey)
	invPath := filepath.Join(dir, "inventory.toml")
	if err := os.WriteFile(invPath, []byte(inv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "site.toml")
	env := labEnv(t, l, nil)
	for _, c := range classes {
		t.Run(c.name, func(t *testing.T) {
			args := func(cmd string, more ...string) []string {
				a := []string{cmd}
				if cmd != "run" {
					a = append(a, policy)
				}
				a = append(a, "-i", invPath, "--limit", c.name)
				return append(a, more...)
			}
			mustFail := func(what string, code int, out, errOut string) {
				t.Helper()
				if code != exitFailed {
					t.Errorf("%s: exit %d; want %d (host failed)\n%s\n%s", what, code, exitFailed, out, errOut)
				}
				if !strings.Contains(strings.ToLower(out+errOut), c.fail) {
					t.Errorf("%s: output does not name the cause %q\n%s\n%s", what, c.fail, out, errOut)
				}
			}
			code, out, errOut := opsmop(t, env, args("check", "--detailed-exitcode")...)
			if c.fail != "" {
				mustFail("check", code, out, errOut)
				code, out, errOut = opsmop(t, env, args("run", "--", "true")...)
				mustFail("run true", code, out, errOut)
				return
			}
			if code != exitPending {
				t.Fatalf("check: exit %d; want %d (changes pending)\n%s\n%s", code, exitPending, out, errOut)
			}
			if got, _ := l.Host(c.name).Exec(t.Context(), "ls -A /srv/odd"); len(got) != 0 {
				t.Fatalf("check changed the host: /srv/odd holds %q", got)
			}
			code, out, errOut = opsmop(t, env, args("apply")...)
			if code != exitOK {
				t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
			}
			for path, want := range map[string]string{"/srv/odd/small.txt": "hello " + c.name + "\n", "/srv/odd/big.bin": string(big), "/srv/odd/made.txt": "made\n"} {
				got, err := l.Host(c.name).Exec(t.Context(), "cat "+path)
				if err != nil || string(got) != want {
					t.Errorf("after apply %s: %d bytes (%v); want %d bytes", path, len(got), err, len(want))
				}
			}
			code, out, errOut = opsmop(t, env, args("check", "--detailed-exitcode")...)
			if code != exitOK {
				t.Fatalf("check after apply: exit %d; want clean\n%s\n%s", code, out, errOut)
			}
			for _, tc := range []struct {
				cmd    string
				rc     int
				stdout string
			}{
				{"echo ok", 0, "ok\n"},
				{"false", 1, ""},
				{"echo partial; exit 3", 3, "partial\n"},
				{"id -un", 0, map[bool]string{true: "root\n", false: c.user + "\n"}[c.sudo]},
			} {
				code, out, errOut := opsmop(t, env, args("run", "--json", "--", tc.cmd)...)
				var r struct {
					Host   string `json:"host"`
					Status string `json:"status"`
					RC     *int   `json:"rc"`
					Stdout string `json:"stdout"`
				}
				if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &r); err != nil {
					t.Errorf("run %q: exit %d, output not one JSON line: %v\n%s\n%s", tc.cmd, code, err, out, errOut)
					continue
				}
				if r.RC == nil || *r.RC != tc.rc || r.Stdout != tc.stdout {
					t.Errorf("run %q: got rc %v stdout %q status %s; want rc %d stdout %q\n%s", tc.cmd, r.RC, r.Stdout, r.Status, tc.rc, tc.stdout, errOut)
				}
				wantCode := exitOK
				if tc.rc != 0 {
					wantCode = exitFailed
				}
				if code != wantCode {
					t.Errorf("run %q: exit %d; want %d", tc.cmd, code, wantCode)
				}
			}
		})
	}
}
