package main

// Reliability tests (docs/reliability.md): faults injected into real lab
// hosts while opsmop runs against them. Lab subnets 50-59.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/internal/testutil"
)

// stampedWriter records when each piece of output was written: the human
// reporter writes every event with one Write.
type stampedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []stampedLine
}

type stampedLine struct {
	at   time.Time
	text string
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for _, l := range strings.SplitAfter(string(p), "\n") {
		if l != "" {
			w.lines = append(w.lines, stampedLine{now, l})
		}
	}
	return w.buf.Write(p)
}

func (w *stampedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// when returns the time the first line containing s was written.
func (w *stampedWriter) when(s string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, l := range w.lines {
		if strings.Contains(l.text, s) {
			return l.at, true
		}
	}
	return time.Time{}, false
}

// runResult is one in-process CLI run started by startOpsmop.
type runResult struct {
	code           int
	stdout, stderr *stampedWriter
	start, end     time.Time
}

// startOpsmop runs the CLI in-process in the background; wait for the
// result on the returned channel.
func startOpsmop(env Env, args ...string) (*runResult, <-chan struct{}) {
	r := &runResult{stdout: &stampedWriter{}, stderr: &stampedWriter{}}
	env.Stdout, env.Stderr, env.Stdin = r.stdout, r.stderr, strings.NewReader("")
	done := make(chan struct{})
	r.start = time.Now()
	go func() {
		defer close(done)
		r.code = run(context.Background(), append([]string{"opsmop"}, args...), env)
		r.end = time.Now()
	}()
	return r, done
}

// writeDefaults writes ~/.opsmop/defaults.toml in env's home.
func writeDefaults(t *testing.T, env Env, content string) {
	t.Helper()
	testutil.WriteTree(t, env.Home, map[string]string{".opsmop/defaults.toml": content})
}

// labInventory writes an inventory of l's public hosts (root with the lab
// key) plus extra host lines, each host given its extra variables.
func labInventory(t *testing.T, l *lab.Lab, group string, hostVars map[string]string, extra ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[groups.%s.hosts]\n", group)
	for _, h := range l.Hosts {
		v := fmt.Sprintf("opsmop_host=%s opsmop_port=%d", h.Addr, h.Port)
		if hv := hostVars[h.Name]; hv != "" {
			v += " " + hv
		}
		fmt.Fprintf(&b, "%q = %q\n", h.Name, v)
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	fmt.Fprintf(&b, "\n[groups.all.vars]\nopsmop_ssh_username = \"root\"\nopsmop_ssh_private_key = %q\n", l.ClientKey)
	p := filepath.Join(t.TempDir(), "inventory.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFor polls cond every 20 ms until it is true or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hostRuns reports whether a process whose command line matches the
// extended regexp re runs on h.
func hostRuns(t *testing.T, h *lab.Host, re string) bool {
	t.Helper()
	_, err := h.Exec(context.Background(), "ps -eo args | grep -E -- "+shell.Quote(re)+" | grep -v grep")
	return err == nil
}

// freezeHost stops every process of h (its sshd listener, the sshd
// serving our connection, the running command): to the controller the
// host looks like one whose network was cut, the TCP connection stays
// open and nothing answers. Stop kills frozen hosts like any other.
func freezeHost(t *testing.T, h *lab.Host) {
	t.Helper()
	// kill -1 inside the host's pid namespace reaches every process but
	// pid 1 and the caller.
	if out, err := h.Exec(context.Background(), "kill -STOP -1"); err != nil {
		t.Fatalf("freeze %s: %v: %s", h.Name, err, out)
	}
	if err := h.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

func hostFile(t *testing.T, h *lab.Host, path string) (string, bool) {
	t.Helper()
	out, err := h.Exec(context.Background(), "cat -- "+shell.Quote(path))
	return string(out), err == nil
}

func recapLine(out, host string) string {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(host) + ` +ok=.*$`).FindString(out)
	return m
}

// TestFaultUnreachableHosts runs one apply against five hosts: two
// healthy, one refusing connections (nothing listens), one accepting TCP
// but never answering (its sshd frozen) and one frozen in the middle of a
// long command (its network cut, as far as the controller can tell).
// With connect_timeout = 2s and the default connect_retries (2) the
// refusing one is marked unreachable after its three attempts and their
// backoff (at most 1.5s), the never-answering one within the documented
// bound (retries+1) x connect_timeout + backoff = 7.5s, the frozen one by
// keepalives (sent every connect_timeout,
// three unanswered: within 3-4 times connect_timeout); the healthy hosts
// finish, the exit code is 1 and the recap names every bad host.
func TestFaultUnreachableHosts(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 50, Hosts: []lab.HostSpec{
		{Name: "ok1"}, {Name: "ok2"}, {Name: "hang"}, {Name: "cut"},
	}})
	inv := labInventory(t, l, "fleet", map[string]string{"cut": "nap=60"},
		fmt.Sprintf(`"refused" = "opsmop_host=127.50.0.250 opsmop_port=%d"`, l.Port))
	env := labEnv(t, l, nil)
	writeDefaults(t, env, "[tuning]\nconnect_timeout = \"2s\"\n")
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[vars]
nap = 0
[[roles]]
name = "faults"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/before"
  content = "before\n"
  [[roles.resources]]
  type = "shell"
  cmd = "sleep {{ .nap }}"
  [[roles.resources]]
  type = "file"
  path = "/srv/after"
  content = "after\n"
`})
	hang, cut := l.Host("hang"), l.Host("cut")
	if err := hang.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	res, done := startOpsmop(env, "apply", filepath.Join(dir, "site.toml"), "-i", inv)
	waitFor(t, 20*time.Second, "the long command on cut", func() bool { return hostRuns(t, cut, "^sleep 60") })
	freezeHost(t, cut)
	frozen := time.Now()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("apply still running 30s after the cut; want the frozen host declared unreachable within 3-4 times connect_timeout\n%s", res.stdout)
	}
	out := res.stdout.String()
	t.Logf("apply took %v", res.end.Sub(res.start).Round(time.Millisecond))
	if res.stderr.String() != "" {
		t.Errorf("stderr: got %q; want nothing", res.stderr)
	}
	if res.code != exitFailed {
		t.Errorf("exit code: got %d; want %d", res.code, exitFailed)
	}
	for _, c := range []struct {
		host, msg string
		since     time.Time
		within    time.Duration
	}{
		{"refused", fmt.Sprintf("refused: UNREACHABLE: host refused (127.50.0.250:%d): connect: ", l.Port), res.start, 3 * time.Second},
		{"hang", fmt.Sprintf("hang: UNREACHABLE: host hang (%s:%d): handshake: no complete SSH handshake within connect_timeout 2s", hang.Addr, l.Port), res.start, 8500 * time.Millisecond},
		{"cut", fmt.Sprintf("host cut (%s:%d): keepalive: no reply to 3 keepalives sent every 2s; the connection was lost", cut.Addr, l.Port), frozen, 9 * time.Second},
	} {
		at, ok := res.stdout.when(c.msg)
		if !ok {
			t.Errorf("%s: output lacks %q", c.host, c.msg)
			continue
		}
		d := at.Sub(c.since)
		t.Logf("%s: unreachable %v after the fault", c.host, d.Round(time.Millisecond))
		if !strings.Contains(out, c.host+": UNREACHABLE: ") {
			t.Errorf("%s: no UNREACHABLE line for it", c.host)
		}
		if d > c.within {
			t.Errorf("%s: reported unreachable %v after the fault; want within %v (connect_timeout is 2s)", c.host, d.Round(10*time.Millisecond), c.within)
		}
		if rl := recapLine(out, c.host); !strings.Contains(rl, "unreachable=1") {
			t.Errorf("%s: recap line %q; want unreachable=1", c.host, rl)
		}
	}
	if !regexp.MustCompile(`TOTAL +hosts=5 ok=0 changed=7 failed=0 skipped=0 unreachable=3`).MatchString(out) {
		t.Errorf("recap total: want 7 changes (3 per healthy host, 1 on cut) and 3 unreachable hosts:\n%s", out)
	}
	for _, n := range []string{"ok1", "ok2"} {
		if got, _ := hostFile(t, l.Host(n), "/srv/after"); got != "after\n" {
			t.Errorf("%s: /srv/after = %q; want the healthy host to have finished", n, got)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}

// TestFaultCommandTimeout runs `sleep 60` with command_timeout = 2s on two
// hosts at once: on t1 (root login: the kill goes through a helper
// session) with ignore_errors, on t2 (ops with sudo: the kill is a signal
// relayed by sudo) without. Both commands are killed at 2 s with a message
// naming command_timeout; t2 fails and stops; t1 goes on over the same
// connection (one SSH connection per host for the whole run), through the
// rest of the role and a second role.
func TestFaultCommandTimeout(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 51, Hosts: []lab.HostSpec{{Name: "t1"}, {Name: "t2"}}})
	inv := labInventory(t, l, "fleet", map[string]string{"t2": "opsmop_ssh_username=ops opsmop_sudo=true"})
	env := labEnv(t, l, nil)
	writeDefaults(t, env, "[tuning]\ncommand_timeout = \"2s\"\n")
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "hangs"
groups = "fleet"
  [[roles.resources]]
  type = "shell"
  cmd = "sleep 60; echo not killed"
  when = "host.name == 't1'"
  ignore_errors = true
  [[roles.resources]]
  type = "shell"
  cmd = "sleep 60; echo not killed"
  when = "host.name == 't2'"
  [[roles.resources]]
  type = "shell"
  cmd = "id -un > /srv/after-timeout"
[[roles]]
name = "next"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/next-role"
  content = "ran\n"
`})
	before := sshConnectionsByHost(t, l)
	start := time.Now()
	code, out, errOut := opsmop(t, env, "apply", filepath.Join(dir, "site.toml"), "-i", inv)
	took := time.Since(start)
	t.Logf("apply took %v", took.Round(time.Millisecond))
	if code != exitFailed {
		t.Errorf("exit code: got %d; want %d", code, exitFailed)
	}
	if took > 8*time.Second {
		t.Errorf("apply took %v; want about command_timeout (2s) plus a little", took)
	}
	for _, want := range []string{
		"t1: shell[sleep 60; echo not killed]: FAILED (ignored): apply: shell sleep 60; echo not killed: host t1: command exceeded command_timeout (2s) and was killed",
		"t2: shell[sleep 60; echo not killed]: FAILED: apply: shell sleep 60; echo not killed: host t2: command exceeded command_timeout (2s) and was killed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if rl := recapLine(out, "t1"); !strings.Contains(rl, "failed=0") || !strings.Contains(rl, "ignored=1") {
		t.Errorf("t1 recap %q; want failed=0 ignored=1", rl)
	}
	if rl := recapLine(out, "t2"); !strings.Contains(rl, "failed=1") {
		t.Errorf("t2 recap %q; want failed=1", rl)
	}
	t1, t2 := l.Host("t1"), l.Host("t2")
	if got, _ := hostFile(t, t1, "/srv/after-timeout"); got != "root\n" {
		t.Errorf("t1: /srv/after-timeout = %q; want the next command to have run (as root)", got)
	}
	if got, _ := hostFile(t, t1, "/srv/next-role"); got != "ran\n" {
		t.Errorf("t1: /srv/next-role = %q; want the second role to have run", got)
	}
	if _, ok := hostFile(t, t2, "/srv/after-timeout"); ok {
		t.Errorf("t2: /srv/after-timeout exists; want the failed host stopped")
	}
	for _, h := range l.Hosts {
		if hostRuns(t, h, "^sleep 60") {
			t.Errorf("%s: sleep 60 still runs; want it killed", h.Name)
		}
		if d := sshConnections(t, h) - before[h.Name]; d != 1 {
			t.Errorf("%s: %d SSH connections; want 1 for the whole run", h.Name, d)
		}
	}
	if strings.Contains(out, "not killed") && strings.Contains(out, "stdout") {
		t.Errorf("a killed command printed its last line")
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, errOut)
	}
}

// hostList lists a directory on h (names, one per line, hidden included).
func hostList(t *testing.T, h *lab.Host, dir string) string {
	t.Helper()
	out, err := h.Exec(context.Background(), "ls -A -- "+shell.Quote(dir))
	if err != nil {
		t.Fatalf("%s: ls %s: %v: %s", h.Name, dir, err, out)
	}
	return strings.TrimSpace(string(out))
}

// sparseFile makes a local file of size zero bytes (sparse, so cheap).
func sparseFile(t *testing.T, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

// TestFaultUploadInterrupted replaces a file whose upload then fails: the
// target filesystem fills up (a 1 MiB tmpfs), the SFTP server is killed
// in the middle of a 64 MiB transfer, or the whole SSH connection is.
// Each time the old file is intact, no temp file is left behind (after a
// killed connection the persistent shell removes it as sshd closes its
// stdin), and the next run converges.
func TestFaultUploadInterrupted(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 52, Hosts: []lab.HostSpec{{Name: "u1"}}})
	h := l.Host("u1")
	inv := labInventory(t, l, "fleet", nil)
	env := labEnv(t, l, nil)
	writeDefaults(t, env, "[tuning]\nconnect_timeout = \"2s\"\n")
	dir := t.TempDir()
	sparseFile(t, filepath.Join(dir, "big.bin"), 64<<20)
	sparseFile(t, filepath.Join(dir, "two-mib.bin"), 2<<20)
	testutil.WriteTree(t, dir, map[string]string{"new.txt": "new\n"})
	ctx := context.Background()
	if out, err := h.Exec(ctx, "mkdir -p /srv/small /srv/big1 /srv/big2 && mount -t tmpfs -o size=1m tmpfs /srv/small && for d in /srv/small /srv/big1 /srv/big2; do echo old > $d/f; done"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	policy := func(target, src string) string {
		name := strings.ReplaceAll(strings.Trim(target, "/"), "/", "-") + "-" + strings.TrimSuffix(src, filepath.Ext(src)) + ".toml"
		testutil.WriteTree(t, dir, map[string]string{name: fmt.Sprintf(`
[[roles]]
name = "upload"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = %q
  src = %q
`, target, src)})
		return filepath.Join(dir, name)
	}
	oldIntact := func(t *testing.T, d string) {
		t.Helper()
		if got, _ := hostFile(t, h, d+"/f"); got != "old\n" {
			t.Errorf("%s/f = %q; want the old contents intact", d, got)
		}
	}

	t.Run("filesystem full", func(t *testing.T) {
		code, out, errOut := opsmop(t, env, "apply", policy("/srv/small/f", "two-mib.bin"), "-i", inv)
		if code != exitFailed || !strings.Contains(out, "u1: file[/srv/small/f]: FAILED: apply: file /srv/small/f: host u1: upload /srv/small/f: write (no space left on the target filesystem: 0 KiB free in /srv/small for 2048 KiB): sftp: ") {
			t.Errorf("apply: exit %d; want %d and the upload failed\n%s%s", code, exitFailed, out, errOut)
		}
		t.Logf("error: %s", strings.TrimSpace(regexp.MustCompile(`FAILED: .*`).FindString(out)))
		oldIntact(t, "/srv/small")
		if got := hostList(t, h, "/srv/small"); got != "f" {
			t.Errorf("/srv/small holds %q; want only f (no temp file left behind)", got)
		}
	})
	for i, c := range []struct{ name, kill, want string }{
		{"sftp server killed", "pkill -KILL -x sftp-server", "u1: file[/srv/big1/f]: FAILED: apply: file /srv/big1/f: host u1: upload /srv/big1/f: write: connection lost"},
		{"connection killed", "pkill -KILL -f '^sshd: root'", "u1: UNREACHABLE: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := fmt.Sprintf("/srv/big%d", i+1)
			pol := policy(d+"/f", "big.bin")
			res, done := startOpsmop(env, "apply", pol, "-i", inv)
			waitFor(t, 20*time.Second, "the temp file of the upload", func() bool {
				_, err := h.Exec(ctx, "find "+d+" -name '.opsmop-*.tmp' -size +1M | grep -q .")
				return err == nil
			})
			// The temp file is private from the first byte.
			if m, err := h.Exec(ctx, "stat -c %a "+d+"/.opsmop-*.tmp"); err != nil || string(m) != "600\n" {
				t.Errorf("mode of the upload's temp file: got %q (%v); want 600", m, err)
			}
			if out, err := h.Exec(ctx, c.kill); err != nil {
				t.Fatalf("%s: %v: %s", c.kill, err, out)
			}
			killed := time.Now()
			<-done
			t.Logf("the run ended %v after the kill", time.Since(killed).Round(time.Millisecond))
			out := res.stdout.String()
			if res.code != exitFailed || !strings.Contains(out, c.want) {
				t.Errorf("apply: exit %d; want %d and %q\n%s%s", res.code, exitFailed, c.want, out, res.stderr)
			}
			t.Logf("error after %v: %s", res.end.Sub(res.start).Round(time.Millisecond), regexp.MustCompile(`(FAILED|UNREACHABLE): .*`).FindString(out))
			oldIntact(t, d)
			// The shell's EXIT trap may still be running when opsmop has
			// given up on the host.
			waitFor(t, 10*time.Second, d+" to hold only f (no temp file left behind)", func() bool {
				return hostList(t, h, d) == "f"
			})
			// The next run (a new connection, a new SFTP server) replaces
			// the file.
			code, out, errOut := opsmop(t, env, "apply", policy(d+"/f", "new.txt"), "-i", inv)
			if code != exitOK {
				t.Errorf("apply after the fault: exit %d; want 0\n%s%s", code, out, errOut)
			}
			if got, _ := hostFile(t, h, d+"/f"); got != "new\n" {
				t.Errorf("after the next apply %s/f = %q; want \"new\\n\"", d, got)
			}
		})
	}
}

// buildOpsmop builds the opsmop binary into a temp dir (the Ctrl-C tests
// need a real process with main's signal handling).
func buildOpsmop(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "opsmop")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestInterrupt runs the real binary against two hosts with --forks 1 and
// presses Ctrl-C (SIGINT) while a `sleep 60` resource runs on the first:
// the command is killed, no further resource starts on it, the second
// host is never contacted, the shell's private temp directory is removed,
// a recap marked interrupted is printed and the exit code is 130. Then
// again with the host frozen, so that the clean-up after the first Ctrl-C
// cannot finish: a second Ctrl-C exits at once, also with 130.
func TestInterrupt(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 53, Hosts: []lab.HostSpec{{Name: "i1"}, {Name: "i2"}, {Name: "i3"}}})
	bin := buildOpsmop(t)
	env := labEnv(t, l, nil)
	writeDefaults(t, env, "[tuning]\nconnect_timeout = \"30s\"\n")
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "interrupt"
groups = "fleet"
  [[roles.resources]]
  type = "shell"
  cmd = "touch /srv/r1"
  [[roles.resources]]
  type = "shell"
  cmd = "sleep 60"
  [[roles.resources]]
  type = "shell"
  cmd = "touch /srv/r3"
`})
	ctx := context.Background()
	type proc struct {
		cmd            *exec.Cmd
		stdout, stderr bytes.Buffer
		done           chan struct{} // closed when the process has exited
	}
	start := func(t *testing.T, limit string) *proc {
		t.Helper()
		inv := labInventory(t, l, "fleet", nil)
		p := &proc{done: make(chan struct{})}
		p.cmd = exec.Command(bin, "apply", filepath.Join(dir, "site.toml"), "-i", inv, "--forks", "1", "--limit", limit)
		p.cmd.Env = []string{"HOME=" + env.Home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		return p
	}
	// exited waits at most d for p to exit and returns its exit code (-1:
	// still running).
	exited := func(p *proc, d time.Duration) int {
		select {
		case <-p.done:
			return p.cmd.ProcessState.ExitCode()
		case <-time.After(d):
			return -1
		}
	}
	// tmpDirs lists what the host itself has in /tmp: its overlay's own
	// layer (the lower layer is the machine's /tmp, which others use).
	tmpDirs := func(h *lab.Host) string { return listModes(t, filepath.Join(h.Upper, "tmp")) }

	t.Run("first Ctrl-C stops cleanly", func(t *testing.T) {
		i1, i2 := l.Host("i1"), l.Host("i2")
		tmpBefore := tmpDirs(i1)
		conns := sshConnections(t, i2)
		p := start(t, "i1,i2")
		waitFor(t, 20*time.Second, "sleep 60 on i1", func() bool { return hostRuns(t, i1, "^sleep 60") })
		// The shell's private directory exists while the command runs.
		if tmpDirs(i1) == tmpBefore {
			t.Errorf("no new directory in /tmp on i1 while a command runs; the clean-up check below proves nothing")
		}
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		code := exited(p, 15*time.Second)
		took := time.Since(sent)
		t.Logf("exit %d %v after SIGINT", code, took.Round(time.Millisecond))
		defer func() {
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", &p.stdout, &p.stderr)
			}
		}()
		if code != exitInterrupted {
			t.Fatalf("exit code: got %d; want %d", code, exitInterrupted)
		}
		if took > 5*time.Second {
			t.Errorf("exited %v after Ctrl-C; want promptly", took)
		}
		out := p.stdout.String()
		if !strings.Contains(out, "RECAP (interrupted) apply") {
			t.Errorf("stdout lacks the recap marked interrupted:\n%s", out)
		}
		if !strings.Contains(p.stderr.String(), "interrupted: stopping") {
			t.Errorf("stderr lacks the notice of the first Ctrl-C: %q", &p.stderr)
		}
		if !strings.Contains(out, "i1: shell[sleep 60]: FAILED: interrupted (Ctrl-C): stopped before it finished") || !strings.Contains(out, "note: interrupted before these hosts were started: i2") {
			t.Errorf("stdout does not say what was interrupted and what never started:\n%s", out)
		}
		if hostRuns(t, i1, "^sleep 60") {
			t.Errorf("i1: sleep 60 still runs; want it killed")
		}
		if _, ok := hostFile(t, i1, "/srv/r1"); !ok {
			t.Errorf("i1: /srv/r1 missing: the resource before the interrupted one did not run")
		}
		if _, ok := hostFile(t, i1, "/srv/r3"); ok {
			t.Errorf("i1: /srv/r3 exists: a resource started after Ctrl-C")
		}
		// The host removes the shell's directory when sshd closes the
		// shell's stdin, after opsmop has gone: on a loaded machine that
		// can take a moment (a CI run failed checking at once).
		deadline := time.Now().Add(5 * time.Second)
		for tmpDirs(i1) != tmpBefore && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if got := tmpDirs(i1); got != tmpBefore {
			t.Errorf("i1: /tmp 5 s after the run: got %q; want as before (%q): the shell's private directory was left", got, tmpBefore)
		}
		if n := sshConnections(t, i2); n != conns {
			t.Errorf("i2: %d new SSH connections; want none (the run stopped before it)", n-conns)
		}
	})

	t.Run("Ctrl-C during an upload", func(t *testing.T) {
		i2 := l.Host("i2")
		sparseFile(t, filepath.Join(dir, "big.bin"), 64<<20)
		if out, err := i2.Exec(ctx, "mkdir -p /srv/up && echo old > /srv/up/f"); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		testutil.WriteTree(t, dir, map[string]string{"upload.toml": `
[[roles]]
name = "upload"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/up/f"
  src = "big.bin"
`})
		inv := labInventory(t, l, "fleet", nil)
		p := &proc{done: make(chan struct{})}
		p.cmd = exec.Command(bin, "apply", filepath.Join(dir, "upload.toml"), "-i", inv, "--limit", "i2")
		p.cmd.Env = []string{"HOME=" + env.Home, "PATH=" + os.Getenv("PATH"), "NO_COLOR=1"}
		p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
		waitFor(t, 20*time.Second, "the upload's temp file on i2", func() bool {
			_, err := i2.Exec(ctx, "find /srv/up -name '.opsmop-*.tmp' -size +1M | grep -q .")
			return err == nil
		})
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		if code := exited(p, 15*time.Second); code != exitInterrupted {
			t.Fatalf("exit code: got %d; want %d\n%s%s", code, exitInterrupted, &p.stdout, &p.stderr)
		}
		if got, _ := hostFile(t, i2, "/srv/up/f"); got != "old\n" {
			t.Errorf("/srv/up/f = %q; want the old contents intact", got)
		}
		if got := hostList(t, i2, "/srv/up"); got != "f" {
			t.Errorf("/srv/up holds %q; want only f (the temp file removed)", got)
		}
		if !strings.Contains(p.stdout.String(), "i2: file[/srv/up/f]: FAILED: interrupted (Ctrl-C)") {
			t.Errorf("stdout does not report the interrupted upload:\n%s", &p.stdout)
		}
	})

	t.Run("second Ctrl-C exits at once", func(t *testing.T) {
		i3 := l.Host("i3")
		p := start(t, "i3")
		waitFor(t, 20*time.Second, "sleep 60 on i3", func() bool { return hostRuns(t, i3, "^sleep 60") })
		freezeHost(t, i3)
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		// With the host frozen the kill of the running command cannot
		// complete: the first Ctrl-C does not end the process...
		if code := exited(p, time.Second); code != -1 {
			t.Fatalf("exited with %d within 1s of the first Ctrl-C although the host is frozen; this test needs a slow clean-up\n%s%s", code, &p.stdout, &p.stderr)
		}
		if err := p.cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		sent := time.Now()
		code := exited(p, 5*time.Second)
		took := time.Since(sent)
		t.Logf("exit %d %v after the second SIGINT", code, took.Round(time.Millisecond))
		// ...the second one does, at once.
		if code != exitInterrupted || took > time.Second {
			t.Errorf("after the second Ctrl-C: exit %d after %v; want %d within 1s\n%s%s", code, took, exitInterrupted, &p.stdout, &p.stderr)
		}
	})
}

// TestLoginFailures runs two roles against four hosts: one whose login
// fails (a key it does not know and a wrong password), one where sudo is
// given the wrong password, one whose host key is not the one in
// known_hosts, and a healthy one. Each bad host gets its own clear error,
// none is retried (exactly one SSH connection per host for the whole run,
// counted in its sshd log, and the second role skips failed hosts), the
// healthy host finishes and the exit code is 1.
func TestLoginFailures(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 54, Hosts: []lab.HostSpec{
		{Name: "authfail"}, {Name: "sudofail"}, {Name: "keychanged"}, {Name: "good"},
	}})
	unknownKey := filepath.Join(t.TempDir(), "id_unknown")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", unknownKey).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v: %s", err, out)
	}
	inv := labInventory(t, l, "fleet", map[string]string{
		"authfail": "opsmop_ssh_username=deploy opsmop_ssh_private_key=" + unknownKey + " opsmop_ssh_password=env:WRONG_PW",
		"sudofail": "opsmop_ssh_username=deploy opsmop_sudo=true opsmop_sudo_password=env:WRONG_PW",
	})
	env := labEnv(t, l, map[string]string{"WRONG_PW": "not-the-password-9f3e"})
	// keychanged's entry in known_hosts now holds good's key.
	kh := filepath.Join(env.Home, ".ssh", "known_hosts")
	b, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	kc, good := l.Host("keychanged"), l.Host("good")
	khAddr := kc.Addr
	if l.Port != 22 {
		khAddr = fmt.Sprintf("[%s]:%d", kc.Addr, l.Port)
	}
	lines := strings.Split(string(b), "\n")
	for i, line := range lines {
		if strings.HasPrefix(line, khAddr+" ") {
			lines[i] = khAddr + " " + strings.TrimSpace(good.HostKey)
		}
	}
	if err := os.WriteFile(kh, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "first"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/first"
  content = "1\n"
[[roles]]
name = "second"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/second"
  content = "2\n"
`})
	before := sshConnectionsByHost(t, l)
	start := time.Now()
	code, out, errOut := opsmop(t, env, "apply", filepath.Join(dir, "site.toml"), "-i", inv)
	t.Logf("apply took %v", time.Since(start).Round(time.Millisecond))
	if code != exitFailed {
		t.Errorf("exit code: got %d; want %d", code, exitFailed)
	}
	port := l.Port
	for _, w := range []struct{ host, want, recap string }{
		{"authfail", fmt.Sprintf("authfail: UNREACHABLE: host authfail (%s:%d): auth: as user deploy: ssh: handshake failed: ssh: unable to authenticate", l.Host("authfail").Addr, port), "unreachable=1"},
		{"sudofail", "sudofail: file[/srv/first]: FAILED: check: wrong sudo password for deploy on sudofail", "failed=1"},
		{"keychanged", fmt.Sprintf("keychanged: UNREACHABLE: host keychanged (%s:%d): HOST KEY CHANGED: known_hosts says", kc.Addr, port), "unreachable=1"},
	} {
		if !strings.Contains(out, w.want) {
			t.Errorf("%s: output lacks %q", w.host, w.want)
		}
		if rl := recapLine(out, w.host); !strings.Contains(rl, w.recap) {
			t.Errorf("%s: recap %q; want %s", w.host, rl, w.recap)
		}
	}
	if got, _ := hostFile(t, good, "/srv/second"); got != "2\n" {
		t.Errorf("good: /srv/second = %q; want the healthy host to finish both roles", got)
	}
	if strings.Contains(out+errOut, "not-the-password-9f3e") {
		t.Errorf("the (wrong) password appears in the output")
	}
	for _, h := range l.Hosts {
		if d := sshConnections(t, h) - before[h.Name]; d != 1 {
			t.Errorf("%s: %d SSH connections in the run; want exactly 1 (no retries)", h.Name, d)
		}
	}
	if t.Failed() {
		t.Logf("output:\n%s\nstderr:\n%s", out, errOut)
	}
}
