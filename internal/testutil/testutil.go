// Package testutil holds the test helpers more than one package's tests
// use: writing files, a buffer safe for concurrent writers, and building a
// Debian package. It is imported by tests only.
package testutil

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// WriteFile writes content to path with mode 0644, creating its missing
// parent directories with mode 0755 (both less the umask); an error fails
// the test.
func WriteFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// WriteTree writes files (slash-separated path relative to dir -> content)
// under dir as WriteFile does.
func WriteTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		WriteFile(t, filepath.Join(dir, filepath.FromSlash(p)), c)
	}
}

// SyncBuffer is a bytes.Buffer that is safe for concurrent writers. The
// zero value is empty and ready to use.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what has been written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BuildDeb builds the Debian package made of files (slash-separated paths
// relative to the package root -> content, e.g. "DEBIAN/control"; every
// directory 0755 and every file 0644 whatever the umask) with `dpkg-deb
// --root-owner-group`, compressed with compress (dpkg-deb -Z: "gzip",
// "xz", "none", ...), into the file path. A missing dpkg-deb or a failed
// build fails the test.
func BuildDeb(t testing.TB, path, compress string, files map[string]string) {
	t.Helper()
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Fatal("dpkg-deb is missing (apt-get install dpkg)")
	}
	root := filepath.Join(t.TempDir(), "pkg")
	WriteTree(t, root, files)
	// dpkg-deb wants DEBIAN at 0755-0775: set the modes the umask may have cut.
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if d.IsDir() {
			mode = 0o755
		}
		return os.Chmod(p, mode)
	})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("dpkg-deb", "--root-owner-group", "-Z"+compress, "--build", root, path).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb: %v: %s", err, out)
	}
}
