// Package limitread reads local input of bounded size: a runaway input (a
// generated inventory, a policy of megabytes of variables, an inventory
// script that prints without end) is refused before it is parsed, instead
// of exhausting the controller's memory. File reads a file; Buffer bounds
// what a process writes.
package limitread

import (
	"fmt"
	"io"
	"os"
)

// TooLargeError reports a file larger than the limit. Size is the file's
// size when it was known before reading, else -1 (the file grew while
// being read).
type TooLargeError struct {
	Path      string
	Size, Max int64
}

// Error reads "PATH: " and then Reason.
func (e *TooLargeError) Error() string { return e.Path + ": " + e.Reason() }

// Reason says how the file compares with the limit: "100.0 MiB is larger
// than the limit of 32 MiB", or without the size when it is not known,
// "larger than the limit of 32 MiB".
func (e *TooLargeError) Reason() string {
	if e.Size < 0 {
		return "larger than the limit of " + FormatLimit(e.Max)
	}
	return FormatSize(e.Size) + " is larger than the limit of " + FormatLimit(e.Max)
}

// FormatSize writes a size for messages: "100.0 MiB" from a MiB up,
// "512 bytes" below.
func FormatSize(n int64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}

// FormatLimit writes a limit for messages: "32 MiB" for whole MiB, else
// as FormatSize does.
func FormatLimit(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return FormatSize(n)
}

// File reads the file at path if it holds at most max bytes; otherwise it
// returns a *TooLargeError, without reading a large file at all when its
// size is known up front. Other errors are os errors, unwrapped.
func File(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := &Buffer{Max: int(max)}
	if fi, err := f.Stat(); err == nil {
		if fi.Size() > max {
			return nil, &TooLargeError{Path: path, Size: fi.Size(), Max: max}
		}
		buf.b = make([]byte, 0, fi.Size())
	}
	// The file may grow between Stat and the read: the buffer notices.
	if _, err := io.Copy(buf, f); err != nil && !buf.Over() {
		return nil, err
	}
	if buf.Over() {
		return nil, &TooLargeError{Path: path, Size: -1, Max: max}
	}
	return buf.Bytes(), nil
}

// Buffer is an io.Writer that holds at most Max bytes. A write past Max
// fails, keeping what fits (so a process writing to it through a pipe
// gets EPIPE), and Over reports it from then on; with Drop set the excess
// is discarded silently instead. It grows by doubling, never past Max
// (bytes.Buffer's growth would allocate up to twice the limit for the
// last step alone). It has no ReadFrom on purpose: io.Copy would use it
// and bypass the bound. The zero Buffer holds nothing.
type Buffer struct {
	Max  int
	Drop bool
	b    []byte
	over bool
}

// Write appends p, or as much of it as fits under Max.
func (c *Buffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.Max - len(c.b); n > room {
		c.over = c.over || !c.Drop
		p = p[:max(room, 0)]
	}
	if cap(c.b)-len(c.b) < len(p) {
		nc := min(max(2*cap(c.b), len(c.b)+len(p), 4096), c.Max)
		nb := make([]byte, len(c.b), nc)
		copy(nb, c.b)
		c.b = nb
	}
	c.b = append(c.b, p...)
	if c.over {
		return len(p), fmt.Errorf("more than the limit of %s", FormatLimit(int64(c.Max)))
	}
	return n, nil
}

// Over reports whether a write went past Max (never, with Drop).
func (c *Buffer) Over() bool { return c.over }

// Bytes returns what the buffer holds.
func (c *Buffer) Bytes() []byte { return c.b }

// String returns what the buffer holds as a string.
func (c *Buffer) String() string { return string(c.b) }
