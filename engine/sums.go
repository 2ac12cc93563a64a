package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// sumCache computes the sha256 of local files once per run: every host's
// check, apply and re-check of a `src` file would otherwise hash it again,
// three times per host for every file. An entry is keyed by path, size,
// mtime and inode, so a file replaced or modified during the run is hashed
// again. The zero value is ready to use.
type sumCache struct {
	mu      sync.Mutex
	entries map[sumKey]*sumEntry
	hashed  int // files hashed so far (for tests), under mu
	// bufs holds copy buffers: io.Copy from an *os.File into a hash
	// would allocate (and zero) 32 KiB per file, which for a tree of
	// thousands of small files costs more than the hashing.
	bufs sync.Pool
}

type sumKey struct {
	path  string
	size  int64
	mtime time.Time
	ino   uint64
}

type sumEntry struct {
	once sync.Once
	sum  string
	err  error
}

func statKey(path string, fi os.FileInfo) sumKey {
	k := sumKey{path: path, size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.ino = st.Ino
	}
	return k
}

// sum returns the sha256 (hex) and size of the local file at path.
// Concurrent callers for the same file wait for one computation.
func (c *sumCache) sum(path string) (string, int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	k := statKey(path, fi)
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[sumKey]*sumEntry{}
	}
	e := c.entries[k]
	if e == nil {
		e = &sumEntry{}
		c.entries[k] = e
	}
	c.mu.Unlock()
	e.once.Do(func() {
		buf, _ := c.bufs.Get().(*[]byte)
		if buf == nil {
			b := make([]byte, 64<<10)
			buf = &b
		}
		e.sum, e.err = hashFile(path, k, *buf)
		c.bufs.Put(buf)
		c.mu.Lock()
		c.hashed++
		c.mu.Unlock()
	})
	return e.sum, k.size, e.err
}

// hashFile hashes path, reading through buf, and fails if the file no
// longer matches k once read (it changed while being read).
func hashFile(path string, k sumKey, buf []byte) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf); err != nil { // no WriteTo: use buf
		return "", fmt.Errorf("read: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if statKey(path, fi) != k {
		return "", fmt.Errorf("%s changed while being read; try again", path)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
