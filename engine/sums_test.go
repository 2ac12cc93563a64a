package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestSumCache(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	write := func(s string) string {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	want := write("first contents\n")
	var c sumCache
	var wg sync.WaitGroup
	sums := make([]string, 8)
	for i := range sums {
		wg.Go(func() {
			s, size, err := c.sum(p)
			if err != nil || size != 15 {
				t.Errorf("sum: got size %d, %v; want 15, nil", size, err)
			}
			sums[i] = s
		})
	}
	wg.Wait()
	for i, s := range sums {
		if s != want {
			t.Errorf("caller %d: got %s; want %s", i, s, want)
		}
	}
	if c.hashed != 1 {
		t.Errorf("8 concurrent callers: file hashed %d times; want 1", c.hashed)
	}
	// Changed contents (same size, later mtime) are hashed again.
	want = write("other contents\n")
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(p, later, later); err != nil {
		t.Fatal(err)
	}
	if s, _, err := c.sum(p); err != nil || s != want {
		t.Errorf("after a change: got %s, %v; want %s", s, err, want)
	}
	if c.hashed != 2 {
		t.Errorf("after a change: hashed %d times in all; want 2", c.hashed)
	}
	if _, _, err := c.sum(filepath.Join(t.TempDir(), "missing")); !os.IsNotExist(err) {
		t.Errorf("missing file: got %v; want a not-exist error", err)
	}
}
