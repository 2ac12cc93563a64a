package connection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

func localCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestLocalRun(t *testing.T) {
	l := &Local{}
	tests := []struct {
		name      string
		script    string
		stdin     io.Reader
		out, errs string
		exit      int
	}{
		{"stdout and stderr apart", "echo out; echo err >&2", nil, "out\n", "err\n", 0},
		{"exit code", "exit 7", nil, "", "", 7},
		{"stdin", "tr a-z A-Z", strings.NewReader("hello"), "HELLO", "", 0},
		{"binary without newline", `printf 'a\000b'`, nil, "a\x00b", "", 0},
		{"killed by a signal", "kill -TERM $$", nil, "", "", 128 + int(syscall.SIGTERM)},
		{"no stdin reads nothing", "cat", nil, "", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := l.Run(localCtx(t), tc.script, tc.stdin)
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if string(res.Stdout) != tc.out || string(res.Stderr) != tc.errs || res.ExitCode != tc.exit {
				t.Errorf("got stdout %q stderr %q exit %d; want %q %q %d", res.Stdout, res.Stderr, res.ExitCode, tc.out, tc.errs, tc.exit)
			}
		})
	}
}

// pidAlive reports whether the pid written to file still runs.
func pidAlive(t *testing.T, file string) bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	// A killed grandchild may linger as a zombie when pid 1 is slow to
	// reap: that is dead too.
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

func TestLocalTimeoutKillsProcessGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	script := "sleep 30 & echo $! > " + pidFile + "; wait"
	tests := []struct {
		name string
		l    *Local
		ctx  func() (context.Context, context.CancelFunc)
		want string
	}{
		{"command timeout", &Local{CommandTimeout: 300 * time.Millisecond},
			func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) }, "timed out after 300ms"},
		{"context deadline", &Local{},
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 300*time.Millisecond)
			}, "interrupted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := tc.l.Run(ctx, script, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("got %v; want it to wrap context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Run returned after %s; want well under 5s", d)
			}
			deadline := time.Now().Add(2 * time.Second)
			for pidAlive(t, pidFile) {
				if time.Now().After(deadline) {
					t.Fatal("the background sleep survived the timeout: process group not killed")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// TestLocalRunLongScript: a script over the kernel's 128 KiB limit for
// one argument runs whole, as `sh -c` would run it: no positional
// parameters, IFS at its default, its exit status kept.
func TestLocalRunLongScript(t *testing.T) {
	l := &Local{CommandTimeout: 30 * time.Second}
	var b strings.Builder
	b.WriteString("echo \"args=$# ifs=$(printf %s \"${IFS-unset}\" | od -An -tx1 | tr -d ' ')\"\nn=0\n")
	for b.Len() < 600<<10 {
		b.WriteString("n=$((n+1)) # some padding to make the script long, with a quote ' inside a comment\n")
	}
	b.WriteString("echo \"n=$n\"\nprintf '%s\\n' 'ünïcödé at the end'\nexit 3\n")
	script := b.String()
	want := strings.Count(script, "n=$((n+1))")
	for _, tc := range []struct {
		name   string
		script string
	}{{"long", script}, {"short", strings.Replace(script, strings.Repeat("n=$((n+1)) # some padding to make the script long, with a quote ' inside a comment\n", want-2), "", 1)}} {
		t.Run(tc.name, func(t *testing.T) {
			n := strings.Count(tc.script, "n=$((n+1))")
			res, err := l.Run(t.Context(), tc.script, nil)
			if err != nil {
				t.Fatal(err)
			}
			wantOut := fmt.Sprintf("args=0 ifs=20090a\nn=%d\nünïcödé at the end\n", n)
			if string(res.Stdout) != wantOut || res.ExitCode != 3 {
				t.Errorf("got %q (exit %d, stderr %q); want %q (exit 3)", res.Stdout, res.ExitCode, res.Stderr, wantOut)
			}
		})
	}
}

func TestLocalRunBatch(t *testing.T) {
	l := &Local{}
	res, err := l.RunBatch(localCtx(t), []string{"echo 1", "echo 2 >&2; exit 2", "echo 3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || string(res[0].Stdout) != "1\n" || string(res[1].Stderr) != "2\n" || res[1].ExitCode != 2 || string(res[2].Stdout) != "3\n" {
		t.Errorf("got %+v; want the three results in order", res)
	}
	l.CommandTimeout = 200 * time.Millisecond
	res, err = l.RunBatch(localCtx(t), []string{"true", "sleep 5", "true"})
	if err == nil || len(res) != 1 || !strings.Contains(err.Error(), "batch command 2 of 3") {
		t.Errorf("got %d results, %v; want 1 result and an error naming command 2 of 3", len(res), err)
	}
}

func TestLocalUpload(t *testing.T) {
	labtest.RequireRoot(t)
	tests := []struct {
		name     string
		existing bool
		opts     UploadOptions
		wantMode os.FileMode
		wantUID  uint32
		wantGID  uint32
		sudo     bool
	}{
		{"new file default mode", false, UploadOptions{}, 0o644, 0, 0, false},
		{"replace with mode and names", true, UploadOptions{Mode: 0o640, Owner: "nobody", Group: "nogroup"}, 0o640, 65534, 65534, false},
		{"numeric ids", false, UploadOptions{Mode: 0o600, Owner: "65534", Group: "65534"}, 0o600, 65534, 65534, false},
		{"setgid survives chown", false, UploadOptions{Mode: 0o2755 | os.ModeSetgid, Group: "nogroup"}, 0o755 | os.ModeSetgid, 0, 65534, false},
		{"through sudo", true, UploadOptions{Mode: 0o604, Owner: "nobody"}, 0o604, 65534, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.sudo {
				if _, err := exec.LookPath("sudo"); err != nil {
					t.Fatal("sudo is not installed: apt-get install sudo")
				}
			}
			dir := t.TempDir()
			dst := filepath.Join(dir, "f")
			if tc.existing {
				if err := os.WriteFile(dst, []byte("old"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			var calls int
			var last int64
			opts := tc.opts
			opts.Progress = func(w, total int64) { calls++; last = w }
			l := &Local{Sudo: tc.sudo}
			data := []byte("new contents\n")
			if err := l.Upload(localCtx(t), dst, bytes.NewReader(data), int64(len(data)), opts); err != nil {
				t.Fatalf("upload: %v", err)
			}
			got, _ := os.ReadFile(dst)
			if !bytes.Equal(got, data) {
				t.Errorf("content: got %q; want %q", got, data)
			}
			fi, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if fi.Mode() != tc.wantMode || st.Uid != tc.wantUID || st.Gid != tc.wantGID {
				t.Errorf("got %v %d:%d; want %v %d:%d", fi.Mode(), st.Uid, st.Gid, tc.wantMode, tc.wantUID, tc.wantGID)
			}
			if calls == 0 || last != int64(len(data)) {
				t.Errorf("progress: %d calls, last %d; want calls ending at %d", calls, last, len(data))
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("directory holds %d entries; want only f (temp file left behind?)", len(entries))
			}
		})
	}
}

func TestLocalUploadFailureLeavesTarget(t *testing.T) {
	tests := []struct {
		name string
		r    io.Reader
		size int64
		opts UploadOptions
		want string
	}{
		{"short source", strings.NewReader("abc"), 10, UploadOptions{}, "7 bytes short"},
		{"unknown owner", strings.NewReader("abc"), 3, UploadOptions{Owner: "no-such-user-opsmop"}, `owner "no-such-user-opsmop": no such user`},
		{"failing reader", io.MultiReader(strings.NewReader("ab"), errReader{}), 5, UploadOptions{}, "boom"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dst := filepath.Join(dir, "f")
			if err := os.WriteFile(dst, []byte("keep"), 0o644); err != nil {
				t.Fatal(err)
			}
			err := (&Local{}).Upload(localCtx(t), dst, tc.r, tc.size, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			if got, _ := os.ReadFile(dst); string(got) != "keep" {
				t.Errorf("target: got %q; want it untouched", got)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("directory holds %d entries; want the temp file removed", len(entries))
			}
		})
	}
	if err := (&Local{}).Upload(localCtx(t), "relative/f", strings.NewReader(""), 0, UploadOptions{}); err == nil {
		t.Error("relative destination: got no error")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func TestLocalSudo(t *testing.T) {
	labtest.RequireRoot(t)
	if _, err := exec.LookPath("sudo"); err != nil {
		t.Fatal("sudo is not installed: apt-get install sudo")
	}
	l := &Local{Sudo: true, SudoUser: "nobody"}
	res, err := l.Run(localCtx(t), "id -un; cat", strings.NewReader("in"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(res.Stdout); got != "nobody\nin" || res.ExitCode != 0 {
		t.Errorf("got %q exit %d (stderr %q); want %q", got, res.ExitCode, res.Stderr, "nobody\nin")
	}
}

// FuzzStepWriteTo writes data through a RunSteps step's WriteTo (the
// builtins-only writing the persistent shell does, here through Local)
// and reads it back: byte for byte, with the mode asked, the status in
// opsmop_written.
func FuzzStepWriteTo(f *testing.F) {
	for _, s := range []string{"", "x", "-n", "%s%%\\000", "a\x00b", "'\"$`\\\n", "\xff\xfe\n\n"} {
		f.Add([]byte(s), uint16(0o644))
	}
	dir := f.TempDir()
	l := &Local{}
	n := 0
	f.Fuzz(func(t *testing.T, data []byte, mode uint16) {
		if len(data) > 70000 {
			t.Skip()
		}
		n++
		p := filepath.Join(dir, fmt.Sprintf("it's %d", n))
		m := uint32(mode) & 0o666 &^ 0o400 // readable by the owner, as files are
		m |= 0o400
		rs, err := l.RunSteps(context.Background(), []Step{{
			Script:  `[ "$opsmop_written" = 0 ] || exit 9; stat -c %a ` + shell.Quote(p) + ` >&2; cat ` + shell.Quote(p) + `; rm -f ` + shell.Quote(p),
			WriteTo: p, WriteMode: m, Stdin: data,
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := rs[0]
		if r.ExitCode != 0 || !bytes.Equal(r.Stdout, data) {
			t.Fatalf("got status %d, %q (stderr %q); want status 0 and the %d bytes written", r.ExitCode, r.Stdout, r.Stderr, len(data))
		}
		if got, want := strings.TrimSpace(string(r.Stderr)), fmt.Sprintf("%o", m); got != want {
			t.Fatalf("mode: got %s; want %s", got, want)
		}
	})
}
