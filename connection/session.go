package connection

// Sessions on a connection. sshd limits the sessions one connection may
// have open at once (MaxSessions, 10 by default, as low as 1 on some
// hosts) and answers an open beyond it with "open failed"
// (ssh.ConnectionFailed; some servers say "administratively prohibited").
// opsmop holds, per identity (login user, each sudo user), a persistent
// shell and, once a file has been uploaded over SFTP, an SFTP client; a
// command that times out needs one more, short, session for its kill
// helper. So every session is opened here, within a budget of our own
// (sessionBudget) and within what the server allows:
//
//   - When sshd refuses an open while we hold N sessions, N is its limit
//     (remembered per connection in sessionLimits; raised again should a
//     later open succeed beyond it).
//   - Then an idle session is closed to make room and the open retried:
//     an idle SFTP client first, then (not for an SFTP client) the idle
//     persistent shell of another identity, which is started again when
//     that identity next runs a command. A shell in use, or one whose
//     identity has an upload in flight (its shell removes the upload's
//     temp file should the connection die), is never closed.
//   - An SFTP client is opened only when a file is uploaded, and only when
//     the limit leaves room for it next to the shells: with MaxSessions 1
//     (or 2 and two identities) uploads go through the persistent shell
//     (upload.go) instead.
//   - When nothing can be freed the open fails with a *SessionLimitError
//     that names sshd's MaxSessions as the likely cause.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// sessionBudget caps the sessions open at once on one connection, well
// below sshd's default MaxSessions of 10: per become-identity a shell,
// an SFTP server and a transient helper (kill / fallback exec).
const sessionBudget = 6

// sessionKind is what a session is opened for: it decides what may be
// closed to make room for it and how long to wait for room.
type sessionKind int

const (
	// kindCommand is a persistent shell, a command of the exec fallback
	// or the kill helper: idle SFTP clients and idle shells of other
	// identities may be closed for it.
	kindCommand sessionKind = iota
	// kindSFTP is an SFTP client: only idle SFTP clients of other
	// identities may be closed for it, since an upload can go through the
	// persistent shell instead.
	kindSFTP
)

// sessionWait is how long an open keeps retrying after the last time a
// session was freed (closed by us, or released by another caller) before
// it gives up with a *SessionLimitError: sshd frees a session only once
// the process in it has exited, a moment after we closed it.
func (k sessionKind) wait() time.Duration {
	if k == kindSFTP {
		return 300 * time.Millisecond
	}
	return 1500 * time.Millisecond
}

// freshRelease is how recent a release makes a refusal ambiguous: sshd
// may still count the session we released, so the count we hold does
// not tell its limit.
const freshRelease = time.Second

// sessionLimits is what a connection knows about its sessions: how many we
// hold, the limit sshd enforces (learned), and the identities with an
// upload in flight. The zero value is ready to use.
type sessionLimits struct {
	mu          sync.Mutex
	open        int       // sessions opened and not released
	limit       int       // sshd's MaxSessions as learned; 0 = not known
	lastRelease time.Time // when a session was last released
	pins        map[string]int
}

// opened counts a session that opened; an open beyond the learned limit
// proves the limit higher.
func (l *sessionLimits) opened() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open++
	if l.limit > 0 && l.open > l.limit {
		l.limit = l.open
	}
}

// released counts a session closed by us.
func (l *sessionLimits) released() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	l.lastRelease = time.Now()
}

// refused notes an open that sshd refused and returns how many sessions
// we hold: unless a session was released a moment ago (sshd may still
// count it), that many is sshd's limit.
func (l *sessionLimits) refused() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open > 0 && time.Since(l.lastRelease) > freshRelease && (l.limit == 0 || l.open < l.limit) {
		l.limit = l.open
	}
	return l.open
}

// state returns the sessions held, the learned limit and the last release.
func (l *sessionLimits) state() (open, limit int, last time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.limit, l.lastRelease
}

// full reports whether the learned limit is reached.
func (l *sessionLimits) full() bool {
	open, limit, _ := l.state()
	return limit > 0 && open >= limit
}

// pin marks an upload in flight for identity key: its shell is not closed
// to make room until the returned func is called.
func (l *sessionLimits) pin(key string) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pins == nil {
		l.pins = map[string]int{}
	}
	l.pins[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.pins[key]--; l.pins[key] <= 0 {
				delete(l.pins, key)
			}
		})
	}
}

func (l *sessionLimits) pinned(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pins[key] > 0
}

// openSession opens a session within the connection's budget and sshd's
// limit (see openBudgeted).
func (c *sshConn) openSession(ctx context.Context) (*ssh.Session, func(), error) {
	return openBudgeted(ctx, c, kindCommand, c.client.NewSession, func(s *ssh.Session) { s.Close() })
}

// openSFTPSession opens a session for an SFTP client: like openSession,
// but it closes only idle SFTP clients to make room, and fails at once
// with a *SessionLimitError when the learned limit leaves no room (the
// upload then goes through the persistent shell).
func (c *sshConn) openSFTPSession(ctx context.Context) (*ssh.Session, func(), error) {
	if c.sl.full() && !c.evictable(kindSFTP, false) {
		open, limit, _ := c.sl.state()
		return nil, nil, &SessionLimitError{Host: c.name, Held: open, Limit: limit, Purpose: "an SFTP client"}
	}
	return openBudgeted(ctx, c, kindSFTP, c.client.NewSession, func(s *ssh.Session) { s.Close() })
}

// sessionAvailable reports whether a new session can be opened now
// without waiting: sshd's limit is not known or not reached, or an idle
// session could be closed to make room. The kill path asks it before it
// opens its helper session: with MaxSessions 1 the only session is the
// shell running the command to kill, and nothing can be freed.
func (c *sshConn) sessionAvailable() bool {
	return !c.sl.full() || c.evictable(kindCommand, false)
}

// sessionChannel is a raw session channel with its request stream, for
// callers that send their own requests (the persistent shell sends "exec"
// without waiting for the reply).
type sessionChannel struct {
	ch   ssh.Channel
	reqs <-chan *ssh.Request
}

// openChannel opens a raw session channel within the connection's budget,
// like openSession. The caller must drain the channel's requests.
func (c *sshConn) openChannel(ctx context.Context) (sessionChannel, func(), error) {
	open := func() (sessionChannel, error) {
		ch, reqs, err := c.client.OpenChannel("session", nil)
		return sessionChannel{ch, reqs}, err
	}
	discard := func(sc sessionChannel) {
		go ssh.DiscardRequests(sc.reqs)
		sc.ch.Close()
	}
	return openBudgeted(ctx, c, kindCommand, open, discard)
}

// sessionRefused reports whether err is sshd refusing a session channel,
// which at its MaxSessions it answers with "open failed" (connect failed)
// and some servers with "administratively prohibited".
func sessionRefused(err error) bool {
	var oce *ssh.OpenChannelError
	return errors.As(err, &oce) && (oce.Reason == ssh.ConnectionFailed || oce.Reason == ssh.Prohibited)
}

// openBudgeted takes a slot of the connection's session budget and opens a
// channel with open. When sshd refuses it (sessionRefused) it learns the
// limit, closes an idle session that kind may take the place of
// (evictIdle) and retries with back-off, for as long as sessions keep
// being freed (kind.wait after the last one); then it gives up with a
// *SessionLimitError. discard disposes of a channel that opened after ctx
// ended. The returned func releases the session's slot; call it after
// closing the session.
func openBudgeted[T any](ctx context.Context, c *sshConn, kind sessionKind, open func() (T, error), discard func(T)) (T, func(), error) {
	var zero T
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return zero, nil, ctx.Err()
	case <-c.done:
		return zero, nil, c.lost(errors.New("connection closed"))
	}
	freeSlot := func() { <-c.sem }
	progress := time.Now() // the last time a session was freed
	backoff := 20 * time.Millisecond
	for {
		s, err := openCtx(ctx, open, discard)
		if err == nil {
			c.sl.opened()
			var once sync.Once
			return s, func() {
				once.Do(func() {
					c.sl.released()
					freeSlot()
				})
			}, nil
		}
		if ctx.Err() != nil {
			freeSlot()
			return zero, nil, ctx.Err()
		}
		if !sessionRefused(err) {
			freeSlot()
			return zero, nil, c.lost(fmt.Errorf("host %s: open session: %w", c.name, err))
		}
		held := c.sl.refused()
		if c.evictIdle(kind) {
			progress = time.Now()
		}
		if _, _, last := c.sl.state(); last.After(progress) {
			progress = last
		}
		if time.Since(progress) > kind.wait() {
			freeSlot()
			_, limit, _ := c.sl.state()
			purpose := "a session"
			if kind == kindSFTP {
				purpose = "an SFTP client"
			}
			return zero, nil, c.lost(&SessionLimitError{Host: c.name, Held: held, Limit: limit, Purpose: purpose, Err: err})
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			freeSlot()
			return zero, nil, ctx.Err()
		case <-c.done:
			freeSlot()
			return zero, nil, c.lost(errors.New("connection closed"))
		}
		backoff = min(2*backoff, 200*time.Millisecond)
	}
}

// evictIdle closes one idle session that a session of kind may take the
// place of (see evictable) and reports whether it did.
func (c *sshConn) evictIdle(kind sessionKind) bool {
	return c.evictable(kind, true)
}

// evictable reports whether an idle session could be closed for a session
// of kind, closing the first one found when evict is set: an idle SFTP
// client (not in use by an upload), then, unless kind is kindSFTP, the
// idle persistent shell of an identity without an upload in flight. The
// caller's own shell is never idle: the caller holds its slot.
func (c *sshConn) evictable(kind sessionKind, evict bool) bool {
	c.mu.Lock()
	sftpKeys := sortedKeys(c.sftps)
	sftps := make([]*sftpSlot, len(sftpKeys))
	for i, k := range sftpKeys {
		sftps[i] = c.sftps[k]
	}
	shellKeys := sortedKeys(c.shells)
	shells := make([]*shellSlot, len(shellKeys))
	for i, k := range shellKeys {
		shells[i] = c.shells[k]
	}
	c.mu.Unlock()
	for _, s := range sftps {
		if s.closeIdle(evict) {
			return true
		}
	}
	if kind == kindSFTP {
		return false
	}
	for i, s := range shells {
		if c.sl.pinned(shellKeys[i]) {
			continue
		}
		if closeIdleShell(s, evict) {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// closeIdleShell ends the slot's persistent shell if it runs and is idle
// (nobody holds the slot), when evict is set, and reports whether there
// was such a shell. The identity's next command starts a new one.
func closeIdleShell(s *shellSlot, evict bool) bool {
	if !s.mu.TryLock() {
		return false
	}
	sh := s.sh
	if sh == nil || !evict {
		s.mu.Unlock()
		return sh != nil
	}
	s.sh = nil
	s.mu.Unlock()
	sh.shutdown()
	return true
}

// openCtx runs open, giving up when ctx ends: on a frozen host the open
// would wait until keepalives declare the connection dead. A channel that
// opens after ctx ended is discarded.
func openCtx[T any](ctx context.Context, open func() (T, error), discard func(T)) (T, error) {
	type opened struct {
		s   T
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		s, err := open()
		ch <- opened{s, err}
	}()
	select {
	case o := <-ch:
		return o.s, o.err
	case <-ctx.Done():
		go func() {
			if o := <-ch; o.err == nil {
				discard(o.s)
			}
		}()
		var zero T
		return zero, ctx.Err()
	}
}
