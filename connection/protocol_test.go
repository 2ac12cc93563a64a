package connection

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/shell"
)

// TestWritePrintf checks that the printf commands written for scripts and
// stdin reproduce the bytes exactly, run by the machine's sh (dash on
// Debian, like most targets).
func TestWritePrintf(t *testing.T) {
	var all []byte
	for i := 0; i < 256; i++ {
		all = append(all, byte(i))
	}
	rnd := make([]byte, 200_000)
	r := rand.NewChaCha8([32]byte{9})
	r.Read(rnd)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"text", []byte("echo 'hi' \"$x\" `y` \\n %s %%\n")},
		{"all bytes", all},
		{"NUL then digits", []byte("a\x001\x00\x0012")},
		{"only NUL", []byte{0, 0, 0}},
		{"backslash percent around NUL", []byte("\\%\x00\\0%d")},
		{"random binary, several chunks", rnd},
		{"long text, several chunks", []byte(strings.Repeat("line 'with' quotes\n", 10000))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			writePrintf(&b, tc.data)
			cmd := exec.Command("sh")
			cmd.Stdin = strings.NewReader(b.String() + "\n")
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("sh: %v", err)
			}
			if !bytes.Equal(out, tc.data) {
				t.Fatalf("got %d bytes %s; want %d bytes %s", len(out), sshTrunc(out), len(tc.data), sshTrunc(tc.data))
			}
		})
	}
}

// TestProtocolLocal runs the persistent-shell protocol (the same init
// script, command text and framing as over SSH) against local shells
// through pipes: the machine's sh (dash on Debian, like most targets) and
// bash, which is sh on other distributions. TMPDIR holds a single quote,
// so the private directory's path must be quoted right.
func TestProtocolLocal(t *testing.T) {
	shells := []string{"sh"}
	if _, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, "bash")
	}
	for _, name := range shells {
		t.Run(name, func(t *testing.T) { testProtocolLocal(t, name) })
	}
}

func testProtocolLocal(t *testing.T, name string) {
	tmp := filepath.Join(t.TempDir(), "it's")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	cmd.Dir = "/"
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	sh := &pshell{k: []byte(randHex(16)), out: bufio.NewReaderSize(stdout, 16), errs: newStream(stderr, true)}
	sh.errs.settle(0)
	io.WriteString(stdin, initScript(sh.k))
	if _, err := readUntil(sh.out, sh.marker('I'), maxJunk); err != nil {
		t.Fatal(err)
	}
	line, err := sh.out.ReadSlice('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid := strings.TrimSpace(string(line))
	if _, err := sh.errs.readUntil(sh.marker('I')); err != nil {
		t.Fatal(err)
	}
	if dirs, _ := os.ReadDir(tmp); len(dirs) != 1 {
		t.Fatalf("got %d entries in TMPDIR; want the 1 private directory", len(dirs))
	}
	flag := shell.Quote(filepath.Join(t.TempDir(), "flag"))
	leftoverDir := t.TempDir()
	leftover := filepath.Join(leftoverDir, "left over")
	type check func(r Result) string // "" when r is right
	exact := func(out, errOut string, code int) check {
		return func(r Result) string {
			if string(r.Stdout) != out || string(r.Stderr) != errOut || r.ExitCode != code {
				return fmt.Sprintf("got %q %q %d; want %q %q %d", r.Stdout, r.Stderr, r.ExitCode, out, errOut, code)
			}
			return ""
		}
	}
	tests := []struct {
		name string
		c    command
		want check
	}{
		{"binary, stderr, status", command{script: "printf 'a\\000b'; printf err >&2; exit 4"}, exact("a\x00b", "err", 4)},
		{"stdin", command{script: "cat", stdin: []byte("in\x00put"), hasStdin: true}, exact("in\x00put", "", 0)},
		{"no stdin", command{script: "cat"}, exact("", "", 0)},
		{"protocol variables are not visible", command{script: `printf '%s' "$__opsmop_K$__opsmop_D$__opsmop_Q$__opsmop_j$__opsmop_r"`}, exact("", "", 0)},
		{"no variable holds the sentinel", command{script: "set"}, func(r Result) string {
			if bytes.Contains(r.Stdout, sh.k) || r.ExitCode != 0 {
				return fmt.Sprintf("got status %d and the sentinel in `set` output: %s", r.ExitCode, r.Stdout)
			}
			return ""
		}},
		{"a subshell of the persistent shell", command{script: "echo $$; read -r l </proc/self/stat; set -- $l; [ $1 != $$ ] && echo own pid"}, exact(pid+"\nown pid\n", "", 0)},
		{"kill -9 $$ ends the command", command{script: "kill -9 $$; echo after"}, exact("", "", 137)},
		{"kill $$", command{script: "kill $$; echo after"}, exact("", "", 143)},
		{"kill -s TERM $$ runs the command's trap", command{script: "trap 'echo trapped; exit 5' TERM; kill -s TERM $$; echo after"}, exact("trapped\n", "", 5)},
		{"kill -0 $$", command{script: "kill -0 $$ && kill -s 0 $$ && echo alive"}, exact("alive\n", "", 0)},
		{"kill -- -$$", command{script: "kill -- -$$; echo after"}, exact("", "", 143)},
		{"kill $$ from a background child", command{script: "(sleep 0.1; kill $$) & sleep 10; echo after"}, exact("", "", 143)},
		{"kill 0 ends the command and its children", command{script: "sleep 11 & (sleep 12; echo no) & kill 0; echo after"}, exact("", "", 143)},
		{"kill -9 0 from a subshell, odd IFS and options", command{script: "IFS=:; set -efu; sleep 13 & (kill -9 0; echo no); echo after"}, exact("", "", 137)},
		{"kill $$ from an orphan fails", command{script: "(until [ -e " + flag + " ]; do sleep 0.01; done; kill $$; echo $? >&2; : >" + flag + ".done) >/dev/null & echo started"}, exact("started\n", "", 0)},
		// bash lost such signals when the persistent shell trapped them.
		{"kill of a just-started child", command{script: "n=0; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do sleep 3 & kill $!; wait $! 2>/dev/null; [ $? = 143 ] || n=$((n+1)); done; echo $n"}, exact("0\n", "", 0)},
		{"the orphan's kill failed", command{script: ": >" + flag + "; i=0; until [ -e " + flag + ".done ] || [ $i -gt 1000 ]; do sleep 0.01; i=$((i+1)); done"}, func(r Result) string {
			if r.ExitCode != 0 || !strings.Contains(string(r.Stderr), "the command has ended") || !strings.HasSuffix(string(r.Stderr), "1\n") {
				return fmt.Sprintf("got %q status %d; want the orphan's kill error and status 1 on stderr", r.Stderr, r.ExitCode)
			}
			return ""
		}},
		{"no sleep left behind", command{script: "for d in /proc/[0-9]*; do read -r l 2>/dev/null <$d/cmdline && case $l in sleep*1[123]) echo $l;; esac; done; :"}, exact("", "", 0)},
		{"exit and cd stay in the command", command{script: "cd /tmp; exit 7"}, exact("", "", 7)},
		{"cwd unchanged", command{script: "pwd"}, exact("/\n", "", 0)},
		{"set -e", command{script: "set -e; false; echo after"}, exact("", "", 1)},
		{"exec", command{script: "exec sh -c 'exit 3'"}, exact("", "", 3)},
		{"return at top level", command{script: "return 4; echo after"}, exact("", "", 4)},
		{"syntax error", command{script: "echo before\nif then"}, func(r Result) string {
			if string(r.Stdout) != "before\n" || r.ExitCode != 2 || !strings.Contains(strings.ToLower(string(r.Stderr)), "syntax error") {
				return fmt.Sprintf("got %q %q %d; want \"before\\n\", a syntax error, 2", r.Stdout, r.Stderr, r.ExitCode)
			}
			return ""
		}},
		{"the command's EXIT trap runs, the shell's does not", command{script: "trap 'echo bye' EXIT; echo hi"}, exact("hi\nbye\n", "", 0)},
		// RunSteps: a failed StepStop stops the batch; the StepOnStop
		// right behind it runs; a new batch starts afresh.
		{"step runs", stepCmd(Step{Script: "echo a"}, true), exact("a\n", "", 0)},
		{"step whose status is data", stepCmd(Step{Script: "echo b; exit 3", Mode: StepGo}, false), exact("b\n", "", 3)},
		{"OnStop step after a step that did not stop", stepCmd(Step{Script: "echo no", Mode: StepOnStop}, false), exact("", "", notRun)},
		{"failed step stops the batch", stepCmd(Step{Script: "cat; echo e >&2; exit 2", Stdin: []byte("in\x00"), Temp: []string{leftover}}, false), exact("in\x00", "e\n", 2)},
		{"OnStop step right after the stop", stepCmd(Step{Script: "echo again; : >" + shell.Quote(leftover) + "; exit 1", Mode: StepOnStop}, false), exact("again\n", "", 1)},
		{"a second OnStop right after the stop", stepCmd(Step{Script: "echo also", Mode: StepOnStop}, false), exact("also\n", "", 0)},
		{"StepStop after the stop", stepCmd(Step{Script: "echo no; : >" + flag + ".stop"}, false), exact("", "", notRun)},
		{"StepGo after the stop", stepCmd(Step{Script: "echo no", Mode: StepGo}, false), exact("", "", notRun)},
		{"StepGo after the stop, again", stepCmd(Step{Script: "echo no", Mode: StepGo}, false), exact("", "", notRun)},
		{"OnStop after a step of another mode that did not stop", stepCmd(Step{Script: "echo no", Mode: StepOnStop}, false), exact("", "", notRun)},
		{"StepAlways after the stop, inline", stepCmd(Step{Script: "x=1; echo always $x $$", Mode: StepAlways, Inline: true, Vars: []string{"x"}}, false), exact("always 1 "+pid+"\n", "", 0)},
		{"the inline step's variables are gone", command{script: `echo "[$x]"`}, exact("[]\n", "", 0)},
		{"the next batch runs, the batch's variables hidden", stepCmd(Step{Script: `printf '%s' "$__opsmop_x$__opsmop_y"; [ ! -e ` + flag + ".stop ] && echo fine"}, true), exact("fine\n", "", 0)},
		{"the shell survived", command{script: "echo $$"}, exact(pid+"\n", "", 0)},
	}
	var b strings.Builder
	for _, tc := range tests {
		writeCommand(&b, tc.c)
	}
	go io.WriteString(stdin, b.String())
	for _, tc := range tests {
		o, err := readUntil(sh.out, sh.marker('R'), -1)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		line, err := sh.out.ReadSlice('\n')
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		e, err := sh.errs.readUntil(sh.marker('E'))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		code, err := strconv.Atoi(strings.TrimSpace(string(line)))
		if err != nil {
			t.Fatalf("%s: bad status line %q", tc.name, line)
		}
		got := Result{Stdout: o, Stderr: e, ExitCode: code}
		if msg := tc.want(got); msg != "" {
			t.Errorf("%s: %s", tc.name, msg)
		}
	}
	if _, err := os.Stat(leftover); err != nil {
		t.Fatalf("the step that creates %q: %v", leftover, err)
	}
	// The private directory is still there, and goes with the shell.
	if dirs, _ := os.ReadDir(tmp); len(dirs) != 1 {
		t.Fatalf("got %d entries in TMPDIR after the commands; want 1", len(dirs))
	}
	stdin.Close()
	cmd.Wait()
	if dirs, _ := os.ReadDir(tmp); len(dirs) != 0 {
		t.Fatalf("got %d entries in TMPDIR after the shell ended; want 0", len(dirs))
	}
	// A step's temp file, registered before the batch, went with it.
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("got %v for the step's registered temp file after the shell ended; want it removed", err)
	}
}

// stepCmd is the command RunSteps sends for st (first: the batch's
// first).
func stepCmd(st Step, first bool) command {
	c := stepCommands([]Step{st})[0]
	c.first = first
	return c
}

// TestReadUntil checks the marker search across buffer boundaries.
func TestReadUntil(t *testing.T) {
	marker := []byte("0123456789abcdefR")
	tests := []struct {
		name    string
		input   string
		want    []string // segments
		wantErr bool
	}{
		{"one", "abcR0123456789abcdefR", []string{"abcR"}, false},
		{"marker-like prefix", "0123456789abcdef0123456789abcdefR", []string{"0123456789abcdef"}, false},
		{"two", "x0123456789abcdefRy0123456789abcdefR", []string{"x", "y"}, false},
		{"empty", "0123456789abcdefR", []string{""}, false},
		{"long", strings.Repeat("R", 5000) + "0123456789abcdefR", []string{strings.Repeat("R", 5000)}, false},
		{"missing", "abc", nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.input), 16)
			for _, w := range tc.want {
				got, err := readUntil(r, marker, -1)
				if err != nil || string(got) != w {
					t.Fatalf("got %q, %v; want %q", got, err, w)
				}
			}
			if tc.wantErr {
				if _, err := readUntil(r, marker, -1); err == nil {
					t.Fatal("got no error; want one for a missing marker")
				}
			}
			// The stream version agrees.
			pr, pw := io.Pipe()
			s := newStream(pr, true)
			s.settle(0)
			go func() {
				for i := 0; i < len(tc.input); i += 7 {
					pw.Write([]byte(tc.input[i:min(i+7, len(tc.input))]))
					time.Sleep(time.Millisecond)
				}
				pw.Close()
			}()
			for _, w := range tc.want {
				got, err := s.readUntil(marker)
				if err != nil || string(got) != w {
					t.Fatalf("stream: got %q, %v; want %q", got, err, w)
				}
			}
			if tc.wantErr {
				if _, err := s.readUntil(marker); err == nil {
					t.Fatal("stream: got no error; want one for a missing marker")
				}
			}
		})
	}
	t.Run("junk limit", func(t *testing.T) {
		r := bufio.NewReaderSize(strings.NewReader(strings.Repeat("x", 100)+string(marker)), 16)
		if _, err := readUntil(r, marker, 50); err == nil {
			t.Fatal("got no error; want one past the junk limit")
		}
	})
}

// TestErrorMessages pins the user-facing texts.
func TestErrorMessages(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&SudoError{Host: "web1", User: "deploy", SudoUser: "root", Kind: SudoWrongPassword}, "wrong sudo password for deploy on web1"},
		{&SudoError{Host: "web1", User: "deploy", SudoUser: "root", Kind: SudoPasswordRequired},
			"sudo requires a password for deploy on web1 but none was given: use -K or opsmop_sudo_password"},
		{&SudoError{Host: "web1", User: "app", SudoUser: "root", Kind: SudoRefused, Detail: "sudo: sorry, you must have a tty to run sudo"},
			"sudo to root as app on web1 refused: sudo: sorry, you must have a tty to run sudo"},
		{&TimeoutError{Host: "web1", Timeout: 30 * time.Second}, "host web1: command exceeded command_timeout (30s) and was killed"},
		{&HostKeyError{Host: "web1", Addr: "127.20.0.1:22", Fingerprint: "SHA256:x", KnownHostsFile: "~/.ssh/known_hosts"},
			"host web1 (127.20.0.1:22): unknown host key SHA256:x; verify it, then run with --accept-new-host-keys to record it in ~/.ssh/known_hosts, or set check_host_keys = false"},
		{&HostKeyError{Host: "web1", Addr: "127.20.0.1:22", Fingerprint: "SHA256:b", Known: "SHA256:a", Changed: true, KnownHostsFile: "/k:3"},
			"host web1 (127.20.0.1:22): HOST KEY CHANGED: known_hosts says SHA256:a, the host presents SHA256:b; this could be an attack. opsmop refuses to connect whatever the settings; if the change is legitimate remove the old line from /k:3"},
		{&UnreachableError{Host: "web1", Addr: "a:22", Phase: PhaseHostKey, Err: &HostKeyError{Host: "web1", Addr: "a:22", Fingerprint: "SHA256:x", KnownHostsFile: "f"}},
			"host web1 (a:22): unknown host key SHA256:x; verify it, then run with --accept-new-host-keys to record it in f, or set check_host_keys = false"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got %q; want %q", got, tc.want)
		}
	}
}
