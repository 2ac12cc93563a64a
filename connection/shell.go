package connection

// The persistent shell's life (protocol.go specifies the protocol): a
// shellSlot per (connection, become-user) holds at most one pshell and
// lends it to one run at a time; startShell starts it without waiting for
// the host, finishInit reads its init frame with the first run,
// removeOnExit registers files it removes as it exits, abort and shutdown
// end it.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// shellSlot holds the persistent shell of one identity on a connection.
// Its mutex serialises commands.
type shellSlot struct {
	mu       sync.Mutex
	sh       *pshell
	execMode bool // the host has no usable sh: one exec channel per command

	// failed is why the host cannot run opsmop's commands at all (a
	// *ShellStartError, or an *UnprovenError before any exec-mode command
	// was proven): every later run returns it at once.
	failed error
	// noShell is why the persistent shell could not be used (exec mode);
	// proven is set once an exec-mode command has been proven to run.
	noShell string
	proven  bool
}

// close ends an idle shell politely. A shell busy with a command is left
// alone: closing the connection (which the caller does next) ends it, and
// the command's Run returns an error.
func (s *shellSlot) close() {
	if !s.mu.TryLock() {
		return
	}
	sh := s.sh
	s.sh = nil
	s.mu.Unlock()
	if sh != nil {
		sh.shutdown()
	}
}

// pshell is one running persistent shell.
type pshell struct {
	ch      ssh.Channel // the session channel: stdin, stdout, Stderr()
	release func()
	out     *bufio.Reader
	errs    *stream
	cut     []*cutReader // the channel's stdout and stderr as read; abort cuts them
	k       []byte
	pid     int // the persistent shell's pid on the host; 0 until the init frame is read

	// The start-up exchange not read yet (see startShell): the first run
	// reads the init frame, and before it the sudo handshake when sudo
	// runs without a password (-n reads no stdin, so nothing waited).
	initPending   bool
	sudoPending   bool
	prompt, ready string // the sudo prompt and ready markers

	// wmu orders the writes to the shell's stdin: the init script (held
	// from startShell until it is written), then commands and
	// registrations.
	wmu sync.Mutex

	exited  chan struct{} // closed when the channel's requests end (channel closed)
	exitMu  sync.Mutex
	exitMsg string // "exit status N" or "signal S", once sshd reported it

	abortOnce sync.Once
	aborted   chan struct{}
}

// errNoShell is finishInit's error for a host without a usable sh: the
// slot falls back to one exec channel per command (exec.go).
var errNoShell = errors.New("no usable sh on the host")

// errShellAlive marks an errNoShell where the shell did not end (garbled
// or too much output before the init frame): the commands written behind
// the init script may have run, so they are not run again in exec mode.
var errShellAlive = errors.New("the commands sent with the shell's start may have run there: not run again")

// slot returns the shell slot of the handle's identity on its connection,
// creating it on first use.
func (h *SSHHost) slot() *shellSlot {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.shells[h.ident.key()]
	if s == nil {
		s = &shellSlot{}
		c.shells[h.ident.key()] = s
	}
	return s
}

// ensureShell starts the slot's persistent shell unless it runs or the
// host has none (execMode). The caller holds s.mu. Whether the shell
// started is only known at its first run (see startShell).
func (h *SSHHost) ensureShell(ctx context.Context, s *shellSlot) error {
	if s.failed != nil {
		return s.failed
	}
	if s.sh != nil || s.execMode {
		return nil
	}
	sh, err := h.startShell(ctx)
	if err != nil {
		return err
	}
	s.sh = sh
	return nil
}

// removeOnExit registers path with the persistent shell: when the shell
// ends (at the end of the run, or because the connection died) it removes
// path. It does not wait for the host, it only queues the request behind
// the commands already sent; it does nothing on a host without a usable
// sh. Callers remove path themselves when they can; this is the fallback.
func (h *SSHHost) removeOnExit(ctx context.Context, path string) error {
	if err := h.check(); err != nil {
		return err
	}
	s := h.slot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := h.ensureShell(ctx, s); err != nil {
		return err
	}
	if s.execMode {
		return nil
	}
	if err := s.sh.write(removeOnExitLine(path)); err != nil {
		return h.c.lost(fmt.Errorf("host %s: register temp file: %w", h.name, err))
	}
	return nil
}

// startShell starts the persistent shell (under sudo if configured) and
// queues its init script, without waiting for the host: the exec request
// goes out without want-reply, the init script as soon as sshd opens the
// session's window (which it does when the command has started), and the
// first run's commands right behind it; that run reads the init frame
// first (see finishInit), so init and the first commands share one round
// trip. A refused exec closes the channel, which finishInit reports. Under
// sudo with a password the sudo handshake is done here: the password may
// only be written after sudo's prompt, and the init script only after it.
func (h *SSHHost) startShell(ctx context.Context) (*pshell, error) {
	sc, release, err := h.c.openChannel(ctx)
	if err != nil {
		return nil, err
	}
	sh := &pshell{ch: sc.ch, release: release, k: []byte(randHex(16)),
		aborted: make(chan struct{}), exited: make(chan struct{})}
	go sh.watchRequests(sc.reqs)
	// Reads go through cutReaders: sshd closes a session's channel only
	// when its process has ended, so closing our side does not end a read
	// that waits on a hung command; abort cuts these instead.
	out, errs := newCutReader(sc.ch), newCutReader(sc.ch.Stderr())
	sh.cut = []*cutReader{out, errs}
	sh.out = bufio.NewReaderSize(out, 64*1024)
	sh.errs = newStream(errs, true)
	fail := func(err error) (*pshell, error) {
		sh.abort()
		sh.shutdown()
		return nil, err
	}
	// The line goes to the login shell, which may be fish, tcsh or csh:
	// `exec /bin/sh` means the same in all of them (the exec: the login
	// shell need not stay around between sshd and the persistent shell),
	// and the sudo line is a shell.LoginLine.
	cmd := "exec /bin/sh"
	if h.ident.sudo {
		sh.prompt = "[opsmop-sudo-" + randHex(8) + "] "
		sh.ready = "opsmop-ready-" + randHex(8)
		line, err := h.sudoExecLine(sh.prompt, sh.ready, "exec /bin/sh")
		if err != nil {
			return fail(fmt.Errorf("host %s: start shell: %w", h.name, err))
		}
		cmd = line
	}
	if _, err := sc.ch.SendRequest("exec", false, ssh.Marshal(struct{ Command string }{cmd})); err != nil {
		return fail(h.c.lost(fmt.Errorf("host %s: start shell: %w", h.name, err)))
	}
	switch {
	case h.ident.sudo && !h.sudoPw.IsZero():
		if err := h.sudoHandshake(ctx, sh.errs, sh.ch, sh.prompt, sh.ready, h.connTO); err != nil {
			return fail(h.c.lost(err))
		}
	case h.ident.sudo:
		// sudo -n never reads stdin: what we write waits for the shell.
		sh.sudoPending = true
	default:
		sh.errs.settle(0)
	}
	// sshd opens the session's window only when the command has started,
	// so the init script waits for that in the background (a failed write
	// shows as a failed read of the init frame); whatever is written next
	// waits for wmu.
	sh.initPending = true
	sh.wmu.Lock()
	go func() {
		defer sh.wmu.Unlock()
		_, _ = io.WriteString(sh.ch, initScript(sh.k))
	}()
	return sh, nil
}

// write writes text to the shell's stdin, after what was written before.
func (sh *pshell) write(text string) error {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	_, err := io.WriteString(sh.ch, text)
	return err
}

// sudoExecLine returns the exec request's command line that runs inner (a
// sh script) as the handle's sudo user, through any login shell (see
// sudoLine), with prompt and ready as the sudo markers.
func (h *SSHHost) sudoExecLine(prompt, ready, inner string) (string, error) {
	return sudoLine(h.ident, !h.sudoPw.IsZero(), h.c.sudoTTY.Load(), prompt, ready, inner)
}

// retryWithTTY reports whether err is sudo refusing for want of a
// terminal while sudo was started without one: the connection then starts
// sudo with a terminal from now on and the caller tries once more (sudo
// refused before it read anything, so nothing ran).
func (h *SSHHost) retryWithTTY(err error) bool {
	return h.ident.sudo && needsTTY(err) && h.c.sudoTTY.CompareAndSwap(false, true)
}

// finishInit reads what startShell did not wait for: the sudo handshake
// (sudo without a password) and the init frame with the shell's pid,
// bounded by connect_timeout and ctx. On failure the shell is aborted; a
// start-up script that found no usable temp directory gives a
// *ShellStartError; a host without a usable sh (not under sudo) gives
// errNoShell.
func (sh *pshell) finishInit(ctx context.Context, h *SSHHost) error {
	sh.initPending = false
	if sh.sudoPending {
		if err := h.sudoHandshake(ctx, sh.errs, sh.ch, sh.prompt, sh.ready, h.connTO); err != nil {
			sh.abort()
			return h.c.lost(err)
		}
	}
	stop := context.AfterFunc(ctx, sh.abort)
	t := time.AfterFunc(h.connTO, sh.abort)
	var line []byte
	var tag byte
	_, rerr := readUntil(sh.out, sh.k, maxJunk)
	if rerr == nil {
		tag, rerr = sh.out.ReadByte()
	}
	if rerr == nil {
		line, rerr = sh.out.ReadSlice('\n')
	}
	if rerr == nil && tag == 'X' {
		// The start-up script failed (no temp directory) and exits.
		reason := strings.TrimSpace(string(line))
		_, _ = sh.errs.readUntil(sh.marker('X'))
		t.Stop()
		stop()
		sh.abort()
		return &ShellStartError{Host: h.name, User: h.shellUser(), Reason: reason, Stderr: shortText(sh.errTail(), 1024)}
	}
	if rerr == nil && tag != 'I' {
		rerr = fmt.Errorf("protocol error: unknown init frame %q", tag)
	}
	if rerr == nil {
		// Login-script noise on stderr ends here too.
		_, rerr = sh.errs.readUntil(sh.marker('I'))
	}
	t.Stop()
	stop()
	if rerr == nil {
		pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
		if err == nil && pid > 1 {
			sh.pid = pid
			return nil
		}
		rerr = fmt.Errorf("protocol error: bad init line %q", line)
	}
	timedOut := sh.isAborted() // by the timer or ctx
	sh.abort()
	if err := ctx.Err(); err != nil {
		return err
	}
	if d := h.c.deadErr(); d != nil {
		return d
	}
	if timedOut {
		return fmt.Errorf("host %s: the shell did not start within connect_timeout %s (stderr: %q)", h.name, h.connTO, sh.errTail())
	}
	ended := errors.Is(rerr, io.EOF) || errors.Is(rerr, io.ErrUnexpectedEOF)
	if ended {
		rerr = fmt.Errorf("%w (%s)", rerr, sh.exitStatus())
	}
	if !h.ident.sudo {
		// sh missing or unusable: fall back to one exec per command.
		if !ended {
			return fmt.Errorf("%w: %v (stderr: %q); %w", errNoShell, rerr, sh.errTail(), errShellAlive)
		}
		return fmt.Errorf("%w: %v (stderr: %q)", errNoShell, rerr, sh.errTail())
	}
	return h.c.lost(fmt.Errorf("host %s: the shell under sudo ended at start: %v (stderr: %q)", h.name, rerr, sh.errTail()))
}

// watchRequests answers the channel's requests (sshd sends none that want
// a reply) and notes how the shell ended; it closes sh.exited when the
// channel is closed.
func (sh *pshell) watchRequests(reqs <-chan *ssh.Request) {
	defer close(sh.exited)
	for req := range reqs {
		msg := ""
		switch req.Type {
		case "exit-status":
			var m struct{ Status uint32 }
			if ssh.Unmarshal(req.Payload, &m) == nil {
				msg = "exit status " + strconv.Itoa(int(m.Status))
			}
		case "exit-signal":
			var m struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}
			if ssh.Unmarshal(req.Payload, &m) == nil {
				msg = "signal " + m.Signal
			}
		}
		if msg != "" {
			sh.exitMu.Lock()
			sh.exitMsg = msg
			sh.exitMu.Unlock()
		}
		if req.WantReply {
			_ = req.Reply(false, nil)
		}
	}
}

// exitStatus describes how the shell's channel ended, waiting briefly for
// sshd's report (it follows the end of the output). A channel closed
// without one is an exec that was refused.
func (sh *pshell) exitStatus() string {
	select {
	case <-sh.exited:
	case <-time.After(500 * time.Millisecond):
	}
	sh.exitMu.Lock()
	defer sh.exitMu.Unlock()
	switch {
	case sh.exitMsg != "":
		return "the shell ended with " + sh.exitMsg
	case isClosed(sh.exited):
		return "the session closed without an exit status: exec refused?"
	}
	return "no exit status yet"
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// abort tears the session down so that every read and write on it fails
// at once (the reads are cut: sshd would close the channel only when the
// shell has ended); the shell is then replaced.
func (sh *pshell) abort() { sh.tearDown(false) }

// killAbort is abort for a command that could not be killed: the channel
// first gets an SSH "signal" request for SIGKILL (sshd sends it to the
// session's process group: the shell and every command process that did
// not leave it; sshd refuses it for root logins), and the requests go out
// in the background, so a stalled transport cannot hold the caller.
func (sh *pshell) killAbort() { sh.tearDown(true) }

func (sh *pshell) tearDown(kill bool) {
	sh.abortOnce.Do(func() {
		close(sh.aborted)
		for _, c := range sh.cut {
			c.cut()
		}
		closeCh := func() {
			if kill {
				_, _ = sh.ch.SendRequest("signal", false, ssh.Marshal(struct{ Signal string }{"KILL"}))
			}
			// EOF first, so the shell ends by its input like at a
			// normal end; but never while a write is in flight:
			// x/crypto's CloseWrite and Write race on the channel's EOF
			// flag. Close alone ends the session as well.
			if sh.wmu.TryLock() {
				_ = sh.ch.CloseWrite()
				sh.wmu.Unlock()
			}
			_ = sh.ch.Close()
		}
		if kill {
			go closeCh()
			return
		}
		closeCh()
	})
}

// cutReader reads r in a goroutine of its own and hands the bytes over a
// pipe, so that cut ends a read at once, even one waiting on r. After a
// cut the goroutine stays until r's next read returns (for a session
// channel: when sshd closes it, or the connection ends).
type cutReader struct {
	pr *io.PipeReader
}

// errCut is what reads return after cut.
var errCut = errors.New("shell session torn down")

func newCutReader(r io.Reader) *cutReader {
	pr, pw := io.Pipe()
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err) // nil: io.EOF for the reader
	}()
	return &cutReader{pr: pr}
}

func (c *cutReader) Read(p []byte) (int, error) { return c.pr.Read(p) }

// cut makes every read in progress and after it fail with errCut.
func (c *cutReader) cut() { _ = c.pr.CloseWithError(errCut) }

func (sh *pshell) isAborted() bool {
	return isClosed(sh.aborted)
}

// shutdown ends the shell and frees its session without waiting for the
// host: EOF on its stdin ends the shell, whose EXIT trap removes the
// private directory and the registered files. sshd hands the shell all
// its input and the EOF even when the connection is closed right after
// (what Pool.Close does next), so no round trip is spent on it.
func (sh *pshell) shutdown() {
	sh.abort()
	sh.release()
}

// shellUser is the user the handle's shell runs as: the sudo user, or the
// login user.
func (h *SSHHost) shellUser() string {
	if h.ident.sudo {
		return h.ident.user
	}
	return h.c.user
}

// errTail is the shell's last stderr without our frame markers.
func (sh *pshell) errTail() string {
	t := sh.errs.tail()
	for _, tag := range []byte("EIX") {
		t = strings.ReplaceAll(t, string(sh.marker(tag)), "")
	}
	return t
}
