// Package labtest is the lab (internal/lab) for tests: the rule that a
// test needing root or the lab fails under CI and skips elsewhere, and a
// lab started for one test and stopped when it ends. It is the only lab
// code that imports testing; internal/lab, linked into opsmop-lab and the
// benchmarks, does not.
package labtest

import (
	"os"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
)

// sshdPath is the sshd the lab runs.
const sshdPath = "/usr/sbin/sshd"

// RequireRoot returns when the process runs as root. Otherwise it fails
// the test under CI (CI=true), which runs as root so that these tests run
// there, and skips it elsewhere, saying that it needs root.
func RequireRoot(t testing.TB) {
	t.Helper()
	unavailable(t, os.Getenv("CI"), rootMissing(os.Geteuid()))
}

// Require returns when the lab can run: root and /usr/sbin/sshd. Otherwise
// it fails the test under CI (CI=true) and skips it elsewhere, saying what
// is missing and how to get it.
func Require(t testing.TB) {
	t.Helper()
	unavailable(t, os.Getenv("CI"), labMissing(os.Geteuid(), sshdPath))
}

// Start is Require, then lab.Start(t.Context(), cfg), and lab.Stop when
// the test ends; a failed Start or Stop fails the test.
func Start(t testing.TB, cfg lab.Config) *lab.Lab {
	t.Helper()
	Require(t)
	l, err := lab.Start(t.Context(), cfg)
	if err != nil {
		t.Fatalf("lab.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Errorf("lab.Stop: %v", err)
		}
	})
	return l
}

// rootMissing says why a test needing root cannot run with effective uid
// euid, or "" when it can.
func rootMissing(euid int) string {
	if euid == 0 {
		return ""
	}
	return "this test needs root: run it as root (CI does)"
}

// labMissing says why the lab cannot run with effective uid euid and sshd
// at sshd, or "" when it can.
func labMissing(euid int, sshd string) string {
	if euid != 0 {
		return "lab tests need root: run as root (CI does)"
	}
	if _, err := os.Stat(sshd); err != nil {
		return "lab tests need " + sshd + ": apt-get install openssh-server sudo iproute2 (make deps)"
	}
	return ""
}

// unavailable ends a test that cannot run for the reason why: it fails
// when ci (the CI environment variable) is "true" and skips otherwise. An
// empty why returns at once.
func unavailable(t testing.TB, ci, why string) {
	t.Helper()
	if why == "" {
		return
	}
	if ci == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
