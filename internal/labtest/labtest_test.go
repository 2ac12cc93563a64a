package labtest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// endingTB records how a helper ends a test: Fatal and Skip record their
// message and end the calling goroutine, as testing's do.
type endingTB struct {
	testing.TB
	fatal, skip string
}

func (e *endingTB) Helper() {}

func (e *endingTB) Fatal(args ...any) {
	e.fatal = fmt.Sprint(args...)
	runtime.Goexit()
}

func (e *endingTB) Skip(args ...any) {
	e.skip = fmt.Sprint(args...)
	runtime.Goexit()
}

// ending runs f on a fresh endingTB in its own goroutine (so Goexit ends
// only f) and returns how it ended.
func ending(t *testing.T, f func(testing.TB)) (fatal, skip string) {
	e := &endingTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(e)
	}()
	<-done
	return e.fatal, e.skip
}

// TestUnavailable: a test whose requirement is missing fails under CI=true
// and skips otherwise (CI unset or any other value), with the reason; a
// test whose requirements are met goes on.
func TestUnavailable(t *testing.T) {
	sshd := filepath.Join(t.TempDir(), "sshd")
	if err := os.WriteFile(sshd, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	noSSHD := filepath.Join(t.TempDir(), "sshd")
	tests := []struct {
		name      string
		ci        string
		why       string
		wantFatal string
		wantSkip  string
	}{
		{"root, CI", "true", rootMissing(0), "", ""},
		{"root, not CI", "", rootMissing(0), "", ""},
		{"not root, CI", "true", rootMissing(1000), "this test needs root: run it as root (CI does)", ""},
		{"not root, not CI", "", rootMissing(1000), "", "this test needs root: run it as root (CI does)"},
		{"not root, CI=1 is not CI=true", "1", rootMissing(1000), "", "this test needs root: run it as root (CI does)"},
		{"lab ready, CI", "true", labMissing(0, sshd), "", ""},
		{"lab not root, CI", "true", labMissing(1000, sshd), "lab tests need root: run as root (CI does)", ""},
		{"lab not root, not CI", "", labMissing(1000, sshd), "", "lab tests need root: run as root (CI does)"},
		{"lab without sshd, CI", "true", labMissing(0, noSSHD), "lab tests need " + noSSHD + ": apt-get install openssh-server sudo iproute2 (make deps)", ""},
		{"lab without sshd, not CI", "", labMissing(0, noSSHD), "", "lab tests need " + noSSHD + ": apt-get install openssh-server sudo iproute2 (make deps)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fatal, skip := ending(t, func(tb testing.TB) { unavailable(tb, tt.ci, tt.why) })
			if fatal != tt.wantFatal || skip != tt.wantSkip {
				t.Errorf("got fatal %q, skip %q; want fatal %q, skip %q", fatal, skip, tt.wantFatal, tt.wantSkip)
			}
		})
	}
}
