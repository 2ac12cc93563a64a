package limitread

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, n int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, make([]byte, n), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name     string
		path     string
		wantLen  int
		wantSize int64 // of the *TooLargeError; 0: none wanted
	}{
		{"under the limit", write("small", 9), 9, 0},
		{"at the limit", write("exact", 10), 10, 0},
		{"over the limit", write("big", 11), 0, 11},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := File(tc.path, 10)
			var tl *TooLargeError
			switch {
			case tc.wantSize != 0:
				if !errors.As(err, &tl) || tl.Size != tc.wantSize || tl.Max != 10 || tl.Path != tc.path {
					t.Fatalf("got %v; want *TooLargeError{Size: %d, Max: 10}", err, tc.wantSize)
				}
			case err != nil || len(b) != tc.wantLen:
				t.Fatalf("got %d bytes, %v; want %d bytes", len(b), err, tc.wantLen)
			}
		})
	}
	if _, err := File(filepath.Join(dir, "missing"), 10); !os.IsNotExist(err) {
		t.Errorf("missing file: got %v; want a not-exist error", err)
	}
}
