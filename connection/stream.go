package connection

import (
	"bytes"
	"io"
	"strings"
	"sync"
)

// stream reads a session's stderr for the session's whole life (a stderr
// nobody reads would block the remote side). Until settle it accumulates
// everything (the sudo handshake inspects it). After settle it either
// queues the bytes for readUntil (framed: the persistent shell's stderr) or
// keeps only a tail for error messages.
type stream struct {
	mu      sync.Mutex
	cond    *sync.Cond
	buf     []byte
	settled bool
	framed  bool
	eof     bool
	tailBuf []byte        // last bytes seen, for error messages
	notify  chan struct{} // signalled (non-blocking) after each read
}

const streamTail = 4096

func newStream(r io.Reader, framed bool) *stream {
	s := &stream{framed: framed, notify: make(chan struct{}, 1)}
	s.cond = sync.NewCond(&s.mu)
	go func() {
		b := make([]byte, 32*1024)
		for {
			n, err := r.Read(b)
			s.mu.Lock()
			s.buf = append(s.buf, b[:n]...)
			s.tailBuf = append(s.tailBuf, b[:n]...)
			if len(s.tailBuf) > 2*streamTail {
				s.tailBuf = append(s.tailBuf[:0], s.tailBuf[len(s.tailBuf)-streamTail:]...)
			}
			if s.settled && !s.framed {
				s.buf = s.buf[:0]
			}
			if err != nil {
				s.eof = true
			}
			s.cond.Broadcast()
			s.mu.Unlock()
			select {
			case s.notify <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return s
}

// snapshot returns a copy of what is buffered and whether the stream ended.
func (s *stream) snapshot() ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.buf...), s.eof
}

// settle drops the first drop bytes (the sudo handshake) and switches to
// the after-handshake mode.
func (s *stream) settle(drop int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if drop <= len(s.buf) {
		s.buf = append(s.buf[:0], s.buf[drop:]...)
	}
	s.settled = true
	if !s.framed {
		s.buf = s.buf[:0]
	}
	s.tailBuf = append(s.tailBuf[:0], s.buf...)
}

// readUntil waits for marker and returns the bytes before it, consuming
// both; io.ErrUnexpectedEOF if the stream ends first.
func (s *stream) readUntil(marker []byte) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	from := 0
	for {
		if i := bytes.Index(s.buf[from:], marker); i >= 0 {
			i += from
			out := append([]byte(nil), s.buf[:i]...)
			s.buf = append(s.buf[:0], s.buf[i+len(marker):]...)
			return out, nil
		}
		if s.eof {
			return nil, io.ErrUnexpectedEOF
		}
		from = max(0, len(s.buf)-len(marker)+1)
		s.cond.Wait()
	}
}

// tail returns the last bytes seen, as trimmed text.
func (s *stream) tail() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.tailBuf
	if len(b) > streamTail {
		b = b[len(b)-streamTail:]
	}
	return strings.TrimSpace(string(b))
}
