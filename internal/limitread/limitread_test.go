package limitread

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
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

func TestFileGrowing(t *testing.T) {
	// A FIFO has no size up front: the bound applies while reading.
	p := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v (the test needs a filesystem with FIFOs)", p, err)
	}
	go func() {
		f, err := os.OpenFile(p, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		defer f.Close()
		_, _ = f.Write(make([]byte, 100))
	}()
	_, err := File(p, 10)
	var tl *TooLargeError
	if !errors.As(err, &tl) || tl.Size != -1 {
		t.Fatalf("got %v; want *TooLargeError with Size -1", err)
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  TooLargeError
		want string
	}{
		{"size known", TooLargeError{Path: "p", Size: 100 << 20, Max: 32 << 20}, "100.0 MiB is larger than the limit of 32 MiB"},
		{"size unknown", TooLargeError{Path: "p", Size: -1, Max: 32 << 20}, "larger than the limit of 32 MiB"},
		{"small", TooLargeError{Path: "p", Size: 11, Max: 10}, "11 bytes is larger than the limit of 10 bytes"},
		{"odd limit", TooLargeError{Path: "p", Size: 3 << 20, Max: 3<<20 - 1}, "3.0 MiB is larger than the limit of 3.0 MiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Reason(); got != tt.want {
				t.Errorf("Reason: got %q; want %q", got, tt.want)
			}
			if got := tt.err.Error(); got != "p: "+tt.want {
				t.Errorf("Error: got %q; want %q", got, "p: "+tt.want)
			}
		})
	}
}

func TestBuffer(t *testing.T) {
	tests := []struct {
		name     string
		max      int
		drop     bool
		writes   []string
		want     string
		wantOver bool
		wantErr  []bool // per write
	}{
		{"under", 10, false, []string{"abc", "def"}, "abcdef", false, []bool{false, false}},
		{"exactly", 6, false, []string{"abc", "def"}, "abcdef", false, []bool{false, false}},
		{"over keeps what fits", 5, false, []string{"abc", "def", "g"}, "abcde", true, []bool{false, true, true}},
		{"drop discards silently", 5, true, []string{"abc", "def", "g"}, "abcde", false, []bool{false, false, false}},
		{"zero holds nothing", 0, false, []string{"a"}, "", true, []bool{true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &Buffer{Max: tt.max, Drop: tt.drop}
			for i, w := range tt.writes {
				n, err := b.Write([]byte(w))
				if (err != nil) != tt.wantErr[i] {
					t.Errorf("write %d (%q): got error %v; want error %v", i, w, err, tt.wantErr[i])
				}
				if err == nil && n != len(w) {
					t.Errorf("write %d (%q): got n=%d without error; want %d", i, w, n, len(w))
				}
			}
			if b.String() != tt.want || string(b.Bytes()) != tt.want {
				t.Errorf("got %q; want %q", b.String(), tt.want)
			}
			if b.Over() != tt.wantOver {
				t.Errorf("Over: got %v; want %v", b.Over(), tt.wantOver)
			}
			if cap(b.Bytes()) > tt.max {
				t.Errorf("capacity %d; want at most Max %d", cap(b.Bytes()), tt.max)
			}
		})
	}
}
