package testutil

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteTree(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
	}{
		{"one file", map[string]string{"site.toml": "x = 1\n"}},
		{"nested directories", map[string]string{"roles/web/main.toml": "a", "files/b": "", "top": "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			WriteTree(t, dir, tt.files)
			for p, want := range tt.files {
				b, err := os.ReadFile(filepath.Join(dir, p))
				if err != nil || string(b) != want {
					t.Errorf("%s: got %q, %v; want %q", p, b, err, want)
				}
			}
		})
	}
}

func TestSyncBufferConcurrentWriters(t *testing.T) {
	var b SyncBuffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				b.Write([]byte("ab"))
			}
		})
	}
	wg.Wait()
	if got, want := b.String(), strings.Repeat("ab", 800); got != want {
		t.Errorf("got %d bytes; want %d bytes of \"ab\"", len(got), len(want))
	}
}
