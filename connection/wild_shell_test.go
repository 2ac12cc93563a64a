package connection

// Issue 14, points 1 and 3: every login shell a target may have (fish,
// tcsh, csh, zsh, dash, busybox ash) runs opsmop's commands, its kill
// helper and its exec fallback; a user without a writable temp directory
// fails loudly; nothing is reported as run without opsmop's own proof.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// wildLabSubnet is the lab block of TestWildShells (127.21.0.0/16).
const wildLabSubnet = 21

// loginShells are the login shells the unit tests run lines through, as
// argv prefixes of `-c LINE`.
var loginShells = [][]string{
	{"sh"}, {"dash"}, {"bash"}, {"zsh"}, {"fish"}, {"tcsh"}, {"csh"}, {"busybox", "ash"},
}

// requireShell fails under CI (and skips elsewhere) when a login shell is
// not installed: .ci/deps installs them all.
func requireShell(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not installed: %v (.ci/deps installs it)", name, err)
		}
		t.Skipf("%s not installed", name)
	}
}

// TestParseExec checks what counts as proof in an exec-mode command's
// output: the start marker, the end marker and a status line, with login
// noise before the start dropped.
func TestParseExec(t *testing.T) {
	const s, e = "S1", "E1"
	tests := []struct {
		name           string
		stdout, stderr string
		ok             bool
		want           Result
	}{
		{"plain", "S1out\nE10\n", "S1err\nE1", true, Result{Stdout: []byte("out\n"), Stderr: []byte("err\n")}},
		{"status", "S1E13\n", "S1E1", true, Result{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 3}},
		{"login noise", "Welcome!\nS1x\nE1127\n", "motd\nS1E1", true, Result{Stdout: []byte("x\n"), Stderr: []byte{}, ExitCode: 127}},
		{"no markers, exit 0 (fish's parse error)", "", "fish: command substitutions not allowed here", false, Result{}},
		{"no start", "out\nE10\n", "", false, Result{}},
		{"no end (killed)", "S1out", "", false, Result{}},
		{"no status line", "S1outE1", "", false, Result{}},
		{"bad status", "S1E1x\n", "", false, Result{}},
		{"stderr without markers", "S1E10\n", "noise", true, Result{Stdout: []byte{}, Stderr: []byte("noise")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseExec([]byte(tc.stdout), []byte(tc.stderr), s, e)
			if ok != tc.ok {
				t.Fatalf("got ok %v; want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if !bytes.Equal(got.Stdout, tc.want.Stdout) || !bytes.Equal(got.Stderr, tc.want.Stderr) || got.ExitCode != tc.want.ExitCode {
				t.Fatalf("got %q %q %d; want %q %q %d", got.Stdout, got.Stderr, got.ExitCode, tc.want.Stdout, tc.want.Stderr, tc.want.ExitCode)
			}
		})
	}
}

// TestExecLineLoginShells runs exec-mode command lines (what execRun sends)
// through every login shell as sshd would (`SHELL -c LINE`, stdin closed):
// the output proves the command ran, with its stdout, stderr, exit status
// and stdin (from the line itself). A POSIX line sent as it was before
// (no LoginLine, no markers) gives no proof under fish, which prints an
// error and exits 0.
func TestExecLineLoginShells(t *testing.T) {
	cmds := []struct {
		name string
		c    command
		want Result
	}{
		{"output", command{script: "echo out; echo err >&2"}, Result{Stdout: []byte("out\n"), Stderr: []byte("err\n")}},
		{"false", command{script: "false"}, Result{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 1}},
		{"exit 3", command{script: "echo a\nexit 3\necho b"}, Result{Stdout: []byte("a\n"), Stderr: []byte{}, ExitCode: 3}},
		{"stdin", command{script: "cat; printf '%s' \"$(printf x)\" 'q\"$`\\!'", stdin: []byte("in\x00put %s \\n\n"), hasStdin: true},
			Result{Stdout: []byte("in\x00put %s \\n\nxq\"$`\\!"), Stderr: []byte{}}},
		{"stdin like an option", command{script: "cat", stdin: []byte("-n x"), hasStdin: true}, Result{Stdout: []byte("-n x"), Stderr: []byte{}}},
		{"no stdin", command{script: "cat"}, Result{Stdout: []byte{}, Stderr: []byte{}}},
		{"unset markers", command{script: `echo "${__opsmop_S-unset}${__opsmop_c-unset}"`}, Result{Stdout: []byte("unsetunset\n"), Stderr: []byte{}}},
	}
	for _, sh := range loginShells {
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			requireShell(t, sh[0])
			for _, tc := range cmds {
				t.Run(tc.name, func(t *testing.T) {
					start, end := "opsmop-S"+randHex(12), "opsmop-E"+randHex(12)
					line, err := shell.LoginLine(execScript(tc.c, start, end))
					if err != nil {
						t.Fatal(err)
					}
					o, e, _ := runLogin(t, sh, line)
					got, ok := parseExec(o, e, start, end)
					if !ok {
						t.Fatalf("got no proof; want one (stdout %q, stderr %q)", o, e)
					}
					if !bytes.Equal(got.Stdout, tc.want.Stdout) || !bytes.Equal(got.Stderr, tc.want.Stderr) || got.ExitCode != tc.want.ExitCode {
						t.Fatalf("got %q %q %d; want %q %q %d", got.Stdout, got.Stderr, got.ExitCode, tc.want.Stdout, tc.want.Stderr, tc.want.ExitCode)
					}
				})
			}
		})
	}
	t.Run("fish and a bare POSIX line", func(t *testing.T) {
		requireShell(t, "fish")
		o, e, code := runLogin(t, []string{"fish"}, `r=$(false); echo "S1$(false)E1$?"`)
		if _, ok := parseExec(o, e, "S1", "E1"); ok {
			t.Fatalf("got proof from a line fish cannot parse (stdout %q); want none", o)
		}
		t.Logf("fish: exit %d, stderr %q: no proof, so no result", code, shortText(string(e), 200))
	})
}

// runLogin runs `sh... -c line` with stdin closed and no controlling
// terminal, as sshd runs a command, and returns stdout, stderr and the
// exit status.
func runLogin(t *testing.T, sh []string, line string) ([]byte, []byte, int) {
	t.Helper()
	cmd := exec.Command(sh[0], append(sh[1:], "-c", line)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.Bytes(), e.Bytes(), code
}

// TestKillLineLoginShells runs the kill helper's line (killScript as a
// LoginLine, what helper sends) through every login shell against a local
// stand-in of the persistent shell: its running command and that
// command's child die, the stand-in goes on (its wait returns), and the
// line prints the proof marker.
func TestKillLineLoginShells(t *testing.T) {
	for _, sh := range loginShells {
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			requireShell(t, sh[0])
			// P runs a command (a subshell with a child of its own),
			// waits for it and reports its status.
			p := exec.Command("sh", "-c", `(sleep 61 & sleep 60; echo never) & wait $!; echo "waited $?"`)
			var out bytes.Buffer
			p.Stdout = &out
			if err := p.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- p.Wait() }()
			defer func() {
				_ = p.Process.Kill()
			}()
			waitChildren(t, p.Process.Pid)
			ok := "opsmop-" + randHex(8)
			line, err := shell.LoginLine(killScript(p.Process.Pid, ok))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			o, e, code := runLogin(t, sh, line)
			if !bytes.Contains(o, []byte(ok+"-killed\n")) || code != 0 {
				t.Fatalf("got stdout %q stderr %q exit %d; want the marker %q and exit 0", o, e, code, ok+"-killed")
			}
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				t.Fatal("the stand-in shell did not get its command back within 5s of the kill")
			}
			if got := out.String(); got != "waited 137\n" {
				t.Fatalf("got stand-in output %q; want %q", got, "waited 137\n")
			}
			t.Logf("killed in %v", time.Since(start))
		})
	}
}

// waitChildren waits until pid has a child that has a child (the command
// and its sleep), reading /proc.
func waitChildren(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		kids := childrenOf(pid)
		for _, k := range kids {
			if len(childrenOf(k)) > 0 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("pid %d got no grandchild within 5s", pid)
}

func childrenOf(pid int) []int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// TestShellErrors checks the messages and unwrapping of the typed errors
// of this file's cases.
func TestShellErrors(t *testing.T) {
	te := &TimeoutError{Host: "web1", Timeout: time.Second}
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{"no temp dir", &ShellStartError{Host: "web1", User: "app", Reason: "no writable temp directory among mktemp -d, TMPDIR (unset), /tmp, /var/tmp, /dev/shm and HOME (/home/app)"},
			[]string{"host web1", "as app", "/var/tmp", "make /tmp writable", "set TMPDIR"}},
		{"unproven", &UnprovenError{Host: "web1", Why: "no usable sh", Exit: "exit status 0", Stderr: "fish: command substitutions not allowed here"},
			[]string{"host web1", "could not be proven to run", "exit status 0", "command substitutions", "no usable sh"}},
		{"kill", &KillError{Timeout: te, Cause: "kill helper: it did not finish within 4s"},
			[]string{"command_timeout (1s)", "did not finish within 4s", "torn down"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			msg := tc.err.Error()
			for _, w := range tc.want {
				if !strings.Contains(msg, w) {
					t.Errorf("got %q; want it to contain %q", msg, w)
				}
			}
		})
	}
	var got *TimeoutError
	if !errors.As(&KillError{Timeout: te}, &got) || got != te {
		t.Fatalf("errors.As(KillError, *TimeoutError): got %v; want %v", got, te)
	}
}

// TestWildShells runs opsmop's commands on a lab host as users whose
// login shells are fish, tcsh, csh, zsh, dash and busybox ash (and sudo
// from tcsh and fish logins): output, exit statuses, stdin, probes and a
// command_timeout kill within its bound. Then the odd cases: a user with
// no writable temp directory (*ShellStartError), one whose only writable
// place is $HOME, login shells that cannot host the persistent shell
// (exec mode, proven per command) or cannot run anything (*UnprovenError),
// and a hung read bounded when the kill helper cannot run (sshd frozen,
// MaxSessions 1).
func TestWildShells(t *testing.T) {
	l := &testLab{Lab: labtest.Start(t, lab.Config{Subnet: wildLabSubnet, Hosts: []lab.HostSpec{
		{Name: "odd", Group: "wild"},
		{Name: "notmp", Group: "wild"},
	}}), t: t}
	l.exec(t, "odd", `set -e
ln -sf /bin/busybox /usr/local/bin/ash
grep -qx /usr/local/bin/ash /etc/shells || echo /usr/local/bin/ash >>/etc/shells
printf '%s\n' '#!/bin/sh' 'exec /usr/bin/fish "$@" </dev/null' >/usr/local/bin/fish-nostdin
printf '%s\n' '#!/bin/sh' 'echo "fish: command substitutions not allowed here" >&2' 'exit 0' >/usr/local/bin/liar
chmod 755 /usr/local/bin/fish-nostdin /usr/local/bin/liar
for u in fish:/usr/bin/fish tcsh:/usr/bin/tcsh csh:/usr/bin/csh zsh:/usr/bin/zsh dash:/usr/bin/dash ash:/usr/local/bin/ash nostdin:/usr/local/bin/fish-nostdin liar:/usr/local/bin/liar; do
  n=sh${u%%:*}
  useradd -m -p '*' -s "${u#*:}" "$n"
  mkdir -p /home/$n/.ssh && cp ~app/.ssh/authorized_keys /home/$n/.ssh/ && chown -R "$n": /home/$n/.ssh
done
chsh -s /usr/bin/tcsh ops
chsh -s /usr/bin/fish deploy`)
	// No writable temp directory: /tmp and /var/tmp 0755, a 0755 tmpfs
	// on /dev/shm (this host's own mount), TMPDIR unset (sshd passes
	// none); notmp's home is root's, homeonly's its own.
	l.exec(t, "notmp", `set -e
chmod 755 /tmp /var/tmp
mount -t tmpfs -o mode=755 tmpfs /dev/shm
useradd -m -p '*' -s /usr/bin/fish notmp
useradd -m -p '*' -s /usr/bin/tcsh homeonly
for n in notmp homeonly; do mkdir -p /home/$n/.ssh && cp ~app/.ssh/authorized_keys /home/$n/.ssh/; done
chown -R homeonly: /home/homeonly
chown -R root:root /home/notmp && chmod 755 /home/notmp /home/notmp/.ssh && chmod 644 /home/notmp/.ssh/authorized_keys`)

	t.Run("login shells", func(t *testing.T) {
		cases := []struct {
			name, user string
			sudo, pw   bool
		}{
			{name: "fish", user: "shfish"},
			{name: "tcsh", user: "shtcsh"},
			{name: "csh", user: "shcsh"},
			{name: "zsh", user: "shzsh"},
			{name: "dash", user: "shdash"},
			{name: "busybox ash", user: "shash"},
			{name: "sudo from tcsh", user: "ops", sudo: true},
			{name: "sudo with password from fish", user: "deploy", sudo: true, pw: true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tg := l.target("odd", tc.user)
				tg.Sudo = tc.sudo
				if tc.pw {
					tg.SudoPassword = l.DeployPassword
				}
				tg.CommandTimeout = time.Second
				p := l.pool(t, PoolConfig{})
				h := l.host(t, p, tg)
				checkCommands(t, h)
				if h.slot().execMode {
					t.Fatal("got exec mode; want the persistent shell")
				}
				checkTimeoutKill(t, l, "odd", h)
			})
		}
	})

	t.Run("no writable temp directory", func(t *testing.T) {
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, l.target("notmp", "notmp"))
		for _, script := range []string{"false", "true"} {
			start := time.Now()
			_, err := h.Run(context.Background(), script, nil)
			t.Logf("Run(%q): %v after %v", script, err, time.Since(start))
			var se *ShellStartError
			if !errors.As(err, &se) {
				t.Fatalf("Run(%q): got %v; want a *ShellStartError", script, err)
			}
			for _, w := range []string{"no writable temp directory", "/tmp", "/var/tmp", "/dev/shm", "HOME (/home/notmp)", "set TMPDIR"} {
				if !strings.Contains(se.Error(), w) {
					t.Fatalf("got %q; want it to name %q", se.Error(), w)
				}
			}
			if s := h.slot(); s.execMode || s.failed == nil {
				t.Fatalf("got exec mode %v, failure kept %v; want no fallback and the failure kept", s.execMode, s.failed)
			}
		}
		if _, err := h.RunProbes(context.Background(), []Probe{{Script: "a=1", Inline: true, Vars: []string{"a"}}}); !errors.As(err, new(*ShellStartError)) {
			t.Fatalf("RunProbes: got %v; want a *ShellStartError", err)
		}
	})

	t.Run("only HOME writable", func(t *testing.T) {
		p := NewPool(PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
		h := l.host(t, p, l.target("notmp", "homeonly"))
		checkCommands(t, h)
		if got := string(sshRun(t, h, "ls -d /home/homeonly/opsmop.*").Stdout); !strings.HasPrefix(got, "/home/homeonly/opsmop.") {
			t.Fatalf("got private directory %q; want one in $HOME", got)
		}
		p.Close()
		deadline := time.Now().Add(5 * time.Second)
		for l.exec(t, "notmp", "ls -d /home/homeonly/opsmop.* 2>/dev/null || :") != "" {
			if time.Now().After(deadline) {
				t.Fatal("the private directory in $HOME is still there 5s after the pool closed")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("exec mode proven", func(t *testing.T) {
		// fish-nostdin gives its command no stdin: the persistent shell
		// ends at once, every command runs in its own exec channel
		// through fish, proven by its markers.
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, l.target("odd", "shnostdin"))
		checkCommands(t, h)
		if !h.slot().execMode {
			t.Fatal("got the persistent shell; want exec mode")
		}
	})

	t.Run("no proof", func(t *testing.T) {
		// liar prints an error and exits 0 without running anything.
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, l.target("odd", "shliar"))
		for _, script := range []string{"false", "true"} {
			_, err := h.Run(context.Background(), script, nil)
			var ue *UnprovenError
			if !errors.As(err, &ue) {
				t.Fatalf("Run(%q): got %v; want an *UnprovenError", script, err)
			}
			if !strings.Contains(ue.Error(), "command substitutions not allowed here") || !strings.Contains(ue.Error(), "exit status 0") {
				t.Fatalf("got %q; want the login shell's message and status", ue.Error())
			}
		}
	})

	t.Run("hung read bounded: sshd frozen", func(t *testing.T) {
		tg := l.target("odd", "shtcsh")
		tg.CommandTimeout = time.Second
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, tg)
		sshRun(t, h, "true")
		sshd := strings.TrimSpace(l.exec(t, "odd", "ps -o ppid= -p "+strconv.Itoa(h.slot().sh.pid)))
		type ran struct {
			err error
			d   time.Duration
		}
		done := make(chan ran, 1)
		start := time.Now()
		go func() {
			_, err := h.Run(context.Background(), "sleep 60", nil)
			done <- ran{err, time.Since(start)}
		}()
		time.Sleep(300 * time.Millisecond)
		l.exec(t, "odd", "kill -STOP "+sshd)
		defer l.exec(t, "odd", "kill -CONT "+sshd+"; pkill -u shtcsh sleep || :")
		var r ran
		select {
		case r = <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s with sshd frozen; want about command_timeout + killBound")
		}
		var ke *KillError
		if !errors.As(r.err, &ke) || !errors.As(r.err, new(*TimeoutError)) {
			t.Fatalf("got %v; want a *KillError (a *TimeoutError)", r.err)
		}
		if limit := tg.CommandTimeout + sshKillGrace + 2*time.Second; r.d > limit {
			t.Fatalf("Run returned after %v; want at most %v", r.d, limit)
		}
		t.Logf("Run returned after %v: %v", r.d, r.err)
	})

	t.Run("hung read bounded: MaxSessions 1", func(t *testing.T) {
		// A second sshd in the host allows one session per connection:
		// the kill helper gets none, the shell is killed through its
		// channel ("signal") and torn down.
		addr := l.Host("odd").Addr
		l.exec(t, "odd", "/usr/sbin/sshd -f /etc/ssh/opsmop-lab/sshd_config -E /run/sshd-ms1.log -o ListenAddress="+addr+":2222 -o MaxSessions=1 -o PidFile=/run/sshd-ms1.pid")
		// sshd forks into the background before it listens.
		for i := 0; !strings.Contains(l.exec(t, "odd", "cat /run/sshd-ms1.log"), "Server listening"); i++ {
			if i == 100 {
				t.Fatalf("the second sshd did not listen within 5s:\n%s", l.exec(t, "odd", "cat /run/sshd-ms1.log"))
			}
			time.Sleep(50 * time.Millisecond)
		}
		defer l.exec(t, "odd", "kill $(cat /run/sshd-ms1.pid)")
		tg := l.target("odd", "shtcsh")
		tg.Port, tg.CheckHostKeys = 2222, false
		tg.CommandTimeout = time.Second
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, tg)
		sshRun(t, h, "true")
		start := time.Now()
		_, err := h.Run(context.Background(), "sleep 62; echo never", nil)
		d := time.Since(start)
		var ke *KillError
		if !errors.As(err, &ke) || !errors.As(err, new(*TimeoutError)) {
			t.Fatalf("got %v; want a *KillError (a *TimeoutError)", err)
		}
		if limit := tg.CommandTimeout + sshKillGrace + 2*time.Second; d > limit {
			t.Fatalf("Run returned after %v; want at most %v", d, limit)
		}
		t.Logf("Run returned after %v: %v", d, err)
		deadline := time.Now().Add(5 * time.Second)
		for strings.Contains(l.exec(t, "odd", "ps -eo args"), "sleep 62") {
			if time.Now().After(deadline) {
				t.Fatal("sleep 62 still runs 5s after the kill")
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// checkCommands runs the commands every odd login must run exactly:
// output on both streams, exit statuses 1 and 3, stdin with every byte,
// a batch of probes (inline and not).
func checkCommands(t *testing.T, h *SSHHost) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	tests := []struct {
		script string
		stdin  []byte
		want   Result
	}{
		{script: "echo out; echo err >&2", want: Result{Stdout: []byte("out\n"), Stderr: []byte("err\n")}},
		{script: "false", want: Result{ExitCode: 1}},
		{script: "echo a; exit 3", want: Result{Stdout: []byte("a\n"), ExitCode: 3}},
		{script: "cat", stdin: []byte("in\x00put %s \\ ' \"\n"), want: Result{Stdout: []byte("in\x00put %s \\ ' \"\n")}},
		{script: `printf '%s\n' "$(id -un)" | grep -c .`, want: Result{Stdout: []byte("1\n")}},
	}
	for _, tc := range tests {
		var stdin io.Reader
		if tc.stdin != nil {
			stdin = bytes.NewReader(tc.stdin)
		}
		got, err := h.Run(ctx, tc.script, stdin)
		if err != nil {
			t.Fatalf("Run(%q): %v", tc.script, err)
		}
		if !bytes.Equal(got.Stdout, tc.want.Stdout) || !bytes.Equal(got.Stderr, tc.want.Stderr) || got.ExitCode != tc.want.ExitCode {
			t.Fatalf("Run(%q): got %q %q exit %d; want %q %q exit %d", tc.script, got.Stdout, got.Stderr, got.ExitCode, tc.want.Stdout, tc.want.Stderr, tc.want.ExitCode)
		}
	}
	rs, err := h.RunProbes(ctx, []Probe{
		{Script: "x=41; x=$((x+1)); echo $x", Inline: true, Vars: []string{"x"}},
		{Script: "echo two; exit 2"},
	})
	if err != nil {
		t.Fatalf("RunProbes: %v", err)
	}
	if len(rs) != 2 || string(rs[0].Stdout) != "42\n" || string(rs[1].Stdout) != "two\n" || rs[1].ExitCode != 2 {
		t.Fatalf("RunProbes: got %+v; want 42 and two/2", rs)
	}
}

// checkTimeoutKill runs a command that outlives h's command_timeout (with
// a child that ignores the usual signals): it is killed with its child
// within the bound, the error is a plain *TimeoutError (the kill was
// clean), and the same shell runs the next command.
func checkTimeoutKill(t *testing.T, l *testLab, host string, h *SSHHost) {
	t.Helper()
	mark := "sleep 6" + strconv.Itoa(3+int(randHex(1)[0])%5)
	start := time.Now()
	_, err := h.Run(context.Background(), "(trap '' TERM HUP INT USR1; "+mark+"1) & "+mark+"0; echo never", nil)
	d := time.Since(start)
	var te *TimeoutError
	if !errors.As(err, &te) || errors.As(err, new(*KillError)) {
		t.Fatalf("got %v; want a *TimeoutError from a clean kill", err)
	}
	if limit := h.cmdTO + killBound; d > limit {
		t.Fatalf("the timeout took %v; want at most %v (command_timeout + killBound)", d, limit)
	}
	t.Logf("command_timeout %v: Run returned after %v", h.cmdTO, d)
	if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
		t.Fatalf("after the timeout got %q; want %q", got, "ok\n")
	}
	if ps := l.exec(t, host, "ps -eo args"); strings.Contains(ps, mark) {
		t.Fatalf("%s still running after the timeout:\n%s", mark, ps)
	}
}
