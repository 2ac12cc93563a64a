package connection

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// TestProtocolLocal runs the persistent-shell protocol against a local sh
// through pipes: the same text and framing as over SSH.
func TestProtocolLocal(t *testing.T) {
	cmd := exec.Command("sh")
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
	io.WriteString(stdin, "K="+string(sh.k)+"\nD=$(mktemp -d)\ntrap 'rm -rf \"$D\"' EXIT\nS=\n")
	cmds := []command{
		{script: "printf 'a\\000b'; printf err >&2; exit 4"},
		{script: "cat", stdin: []byte("in\x00put"), hasStdin: true},
		{script: "printf '%s' \"$K$D\""}, // the sentinel and dir are not visible
		{script: "kill -9 $$"},
	}
	var b strings.Builder
	for _, c := range cmds {
		writeCommand(&b, c)
	}
	io.WriteString(stdin, b.String())
	want := []Result{
		{Stdout: []byte("a\x00b"), Stderr: []byte("err"), ExitCode: 4},
		{Stdout: []byte("in\x00put"), Stderr: []byte{}, ExitCode: 0},
		{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 0},
		{Stdout: []byte{}, Stderr: []byte{}, ExitCode: 137},
	}
	for i, w := range want {
		o, err := readUntil(sh.out, sh.marker('R'), -1)
		if err != nil {
			t.Fatal(err)
		}
		line, err := sh.out.ReadSlice('\n')
		if err != nil {
			t.Fatal(err)
		}
		e, err := sh.errs.readUntil(sh.marker('E'))
		if err != nil {
			t.Fatal(err)
		}
		got := Result{Stdout: o, Stderr: e}
		got.ExitCode = atoiOr(strings.TrimSpace(string(line)), -1)
		if !bytes.Equal(got.Stdout, w.Stdout) || !bytes.Equal(got.Stderr, w.Stderr) || got.ExitCode != w.ExitCode {
			t.Fatalf("command %d: got %q %q %d; want %q %q %d", i, got.Stdout, got.Stderr, got.ExitCode, w.Stdout, w.Stderr, w.ExitCode)
		}
	}
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
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
