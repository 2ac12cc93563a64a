// Package limitread reads local files of bounded size: a runaway input
// (a generated inventory, a policy of megabytes of variables) is refused
// before it is parsed, instead of exhausting the controller's memory.
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

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than the limit of %d bytes", e.Path, e.Max)
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
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		return nil, &TooLargeError{Path: path, Size: fi.Size(), Max: max}
	}
	// The file may grow between Stat and the read: read one byte past the
	// limit to notice.
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, &TooLargeError{Path: path, Size: -1, Max: max}
	}
	return b, nil
}
