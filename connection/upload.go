package connection

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"

	"github.com/opsmop/opsmop/internal/shell"
)

// Uploads go over SFTP when the host allows it, else through the
// persistent shell. SFTP is started through the login shell with a
// marker (sftp_server.sh), so login dotfiles that print to stdout cannot
// corrupt it; without a usable sftp-server binary (or under sudo) the
// sftp subsystem is tried, its output scanned for the SFTP version packet
// (versionReader). When SFTP cannot start for an identity (no server,
// refused subsystem, garbage) or sshd's session limit leaves no room for
// it (session.go), the file is written through the identity's persistent
// shell: in chunks, each a command with the chunk as its stdin
// (uploadShell). Both ways keep Upload's contract.

// sftpSlot is the long-lived SFTP client of one identity on a connection.
type sftpSlot struct {
	mu        sync.Mutex
	cl        *sftp.Client
	close_    func()
	subsystem bool // started via "Subsystem sftp": new files need a chmod
	// busy counts the uploads using cl: it is not closed to make room for
	// another session while they do (session.go).
	busy int
	// unusable is why SFTP cannot start for this identity (it wraps
	// errSFTPUnusable): uploads go through the persistent shell.
	unusable error
	// selinux is whether SELinux is on (selinuxOn, selinuxOff), learned
	// by the first upload's rename, done through the shell
	// (renameSFTP), or selinuxUnknown.
	selinux atomic.Int32
}

// errSFTPUnusable marks why SFTP cannot start for an identity: the host
// has no SFTP server that works for it, so uploads use the shell.
var errSFTPUnusable = errors.New("SFTP cannot start")

func (s *sftpSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
		s.close_()
		s.cl = nil
	}
}

// closeIdle closes the client, when evict is set, if it runs and no
// upload uses it, and reports whether it was so (session.go).
func (s *sftpSlot) closeIdle(evict bool) bool {
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	if s.cl == nil || s.busy > 0 {
		return false
	}
	if evict {
		s.cl.Close()
		s.close_()
		s.cl = nil
	}
	return true
}

// drop forgets a broken client so the next use starts a new one.
func (s *sftpSlot) drop(cl *sftp.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl == cl {
		s.cl.Close()
		s.close_()
		s.cl = nil
	}
}

func (h *SSHHost) sftpSlot() *sftpSlot {
	c := h.c
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sftps[h.ident.key()]
	if s == nil {
		s = &sftpSlot{}
		c.sftps[h.ident.key()] = s
	}
	return s
}

// sftp returns the identity's SFTP client, starting it on first use.
func (h *SSHHost) sftp(ctx context.Context) (*sftpSlot, *sftp.Client, error) {
	s := h.sftpSlot()
	s.mu.Lock()
	defer s.mu.Unlock()
	cl, err := h.sftpLocked(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	return s, cl, nil
}

// sftpForUpload is sftp for an upload: the client is marked busy (not
// closed to make room for another session) until done is called.
func (h *SSHHost) sftpForUpload(ctx context.Context) (s *sftpSlot, cl *sftp.Client, done func(), err error) {
	s = h.sftpSlot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cl, err = h.sftpLocked(ctx, s); err != nil {
		return nil, nil, nil, err
	}
	s.busy++
	var once sync.Once
	return s, cl, func() {
		once.Do(func() {
			s.mu.Lock()
			s.busy--
			s.mu.Unlock()
		})
	}, nil
}

// sftpLocked returns the slot's client, starting it if needed: sftp-server
// through the login shell (under sudo for a sudo identity), else the sftp
// subsystem (not under sudo: it runs as the login user). A failure that
// means SFTP cannot work for the identity is remembered: later uploads go
// through the shell at once. The caller holds s.mu.
func (h *SSHHost) sftpLocked(ctx context.Context, s *sftpSlot) (*sftp.Client, error) {
	if s.cl != nil {
		return s.cl, nil
	}
	if s.unusable != nil {
		return nil, s.unusable
	}
	cl, closeFn, err := h.startSFTP(ctx, false)
	if errors.Is(err, errSFTPUnusable) && !h.ident.sudo {
		// No sftp-server binary where we looked, or the login shell did
		// not run our starter: sshd's configured subsystem may still work
		// (internal-sftp, other paths).
		cl2, closeFn2, err2 := h.startSFTP(ctx, true)
		switch {
		case err2 == nil:
			cl, closeFn, err = cl2, closeFn2, nil
			s.subsystem = true
		case errors.Is(err2, errSFTPUnusable):
			err = fmt.Errorf("%w; and sshd's sftp subsystem: %v", err, errors.Unwrap(err2))
		default:
			err = err2
		}
	}
	if err != nil {
		if errors.Is(err, errSFTPUnusable) {
			s.unusable = err
		}
		return nil, err
	}
	s.cl, s.close_ = cl, closeFn
	return cl, nil
}

// unusableError is why SFTP cannot start, wrapping errSFTPUnusable.
type unusableError struct{ err error }

func (e *unusableError) Error() string { return errSFTPUnusable.Error() + ": " + e.err.Error() }
func (e *unusableError) Unwrap() error { return e.err }
func (e *unusableError) Is(target error) bool {
	return target == errSFTPUnusable
}

// startSFTP starts an SFTP client in a new session (see startSFTPOnce),
// starting sudo again with a terminal when sudoers requires one.
func (h *SSHHost) startSFTP(ctx context.Context, subsystem bool) (*sftp.Client, func(), error) {
	cl, closeFn, err := h.startSFTPOnce(ctx, subsystem, h.c.sudoTTY.Load())
	if err != nil && !subsystem && h.retryWithTTY(err) {
		return h.startSFTPOnce(ctx, subsystem, true)
	}
	return cl, closeFn, err
}

// startSFTPOnce opens a session and starts an SFTP server in it: the sftp
// subsystem, or sftp_server.sh through the login shell (as a LoginLine,
// under sudo for a sudo identity; tty runs sudo with a terminal). The
// script prints a random marker just before it execs sftp-server, and
// what the login shell's dotfiles printed before it is skipped. Everything
// up to the SFTP handshake is bounded by connect_timeout. Errors that mean
// SFTP cannot work here wrap errSFTPUnusable; others (no session, sudo
// refused, connection lost, ctx) do not.
func (h *SSHHost) startSFTPOnce(ctx context.Context, subsystem, tty bool) (*sftp.Client, func(), error) {
	sess, release, err := h.c.openSFTPSession(ctx)
	if err != nil {
		return nil, nil, err
	}
	closeFn := func() { sess.Close(); release() }
	fail := func(err error) (*sftp.Client, func(), error) {
		closeFn()
		return nil, nil, err
	}
	stdin, err := sess.StdinPipe()
	if err != nil {
		return fail(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		return fail(err)
	}
	stderr, err := sess.StderrPipe()
	if err != nil {
		return fail(err)
	}
	pump := newStream(stderr, false)
	marker := "opsmop-sftp-" + randHex(16)
	script := "__opsmop_M=" + marker + "\n" + scriptBody(sftpServerFile)
	switch {
	case subsystem:
		if err := sess.RequestSubsystem("sftp"); err != nil {
			if d := h.c.deadErr(); d != nil {
				return fail(d)
			}
			return fail(&unusableError{fmt.Errorf("sshd refused the sftp subsystem: %w", err)})
		}
		pump.settle(0)
	case h.ident.sudo:
		prompt := "[opsmop-sudo-" + randHex(8) + "] "
		ready := "opsmop-ready-" + randHex(8)
		line, err := sudoLine(h.ident, !h.sudoPw.IsZero(), tty, prompt, ready, script)
		if err == nil {
			err = sess.Start(line)
		}
		if err == nil {
			err = h.sudoHandshake(ctx, pump, stdin, prompt, ready, h.connTO)
		}
		if err != nil {
			var se *SudoError
			if errors.As(err, &se) || ctx.Err() != nil {
				return fail(err)
			}
			return fail(h.c.lost(fmt.Errorf("host %s: start sftp: %w", h.name, err)))
		}
	default:
		line, err := shell.LoginLine(script)
		if err == nil {
			err = sess.Start(line)
		}
		if err != nil {
			return fail(h.c.lost(fmt.Errorf("host %s: start sftp: %w", h.name, err)))
		}
		pump.settle(0)
	}
	// Bounded: a login shell that hangs, or a server that never answers,
	// ends the session.
	timedOut := false
	var tmu sync.Mutex
	timer := time.AfterFunc(h.connTO, func() {
		tmu.Lock()
		timedOut = true
		tmu.Unlock()
		sess.Close()
	})
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	unusable := func(err error) (*sftp.Client, func(), error) {
		timer.Stop()
		stop()
		closeFn()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if d := h.c.lost(nil); d != nil {
			return nil, nil, d
		}
		tmu.Lock()
		to := timedOut
		tmu.Unlock()
		if to {
			err = fmt.Errorf("no SFTP server answered within connect_timeout %s (%v)", h.connTO, err)
		}
		if t := pump.tail(); t != "" {
			err = fmt.Errorf("%w (stderr: %q)", err, t)
		}
		return nil, nil, &unusableError{err}
	}
	br := bufio.NewReaderSize(stdout, 64*1024)
	started := false
	if !subsystem {
		junk, err := readUntil(br, []byte(marker+"-"), maxJunk)
		if err != nil {
			return unusable(fmt.Errorf("the login shell did not run opsmop's sftp-server starter (%d bytes of output, then %v)", len(junk), err))
		}
		what, err := br.ReadString('\n')
		if err != nil || what != "go\n" {
			return unusable(errors.New("no sftp-server binary on the host"))
		}
		started = true
	}
	vr := &versionReader{r: br, started: started, quiet: sftpQuiet}
	cl, err := sftp.NewClientPipe(vr, stdin,
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		if vr.noise != nil {
			vr.noise.Host = h.name
			return unusable(vr.noise)
		}
		if vr.err != nil {
			return unusable(vr.err)
		}
		return unusable(fmt.Errorf("SFTP handshake: %w", err))
	}
	timer.Stop()
	if !stop() {
		cl.Close()
		closeFn()
		return nil, nil, ctx.Err()
	}
	tmu.Lock()
	to := timedOut
	tmu.Unlock()
	if to {
		cl.Close()
		return unusable(errors.New("the SFTP handshake ended late"))
	}
	return cl, closeFn, nil
}

// maxNoise bounds what versionReader skips before the SFTP version packet.
const maxNoise = 64 * 1024

// versionReader passes an SFTP server's output through from its version
// packet on: bytes before it (login dotfiles printing to stdout, which
// sshd's sftp subsystem runs through the login shell) are skipped. When
// no version packet comes within maxNoise bytes, or the output ends
// first, or quiet passes without more output once some came, reads fail
// with noise set. After the marker of our starter (started) the packet
// must come first.
type versionReader struct {
	r       io.Reader
	started bool          // our starter's marker was seen: the bytes are the server's
	quiet   time.Duration // 0: no limit
	scanned bool
	buf     []byte // bytes from the version packet on, not yet read
	err     error  // to return once buf is drained
	noise   *SFTPNoiseError
}

// sftpQuiet is versionReader.quiet for SFTP servers: dotfiles' output
// followed by nothing for that long is not followed by SFTP.
const sftpQuiet = 2 * time.Second

func (v *versionReader) Read(p []byte) (int, error) {
	if !v.scanned {
		v.scan()
	}
	if len(v.buf) > 0 {
		n := copy(p, v.buf)
		v.buf = v.buf[n:]
		return n, nil
	}
	if v.err != nil {
		return 0, v.err
	}
	return v.r.Read(p)
}

func (v *versionReader) scan() {
	v.scanned = true
	type chunk struct {
		b   []byte
		err error
	}
	// Reads run in a goroutine so that quiet can end the wait; one at a
	// time, and none after scan returns with an error (the caller then
	// closes the session, which ends a read in flight).
	got := make(chan chunk, 1)
	var acc []byte
	from := 0 // offsets before it hold no version packet
	for {
		if i := versionAt(acc, from); i >= 0 && (i == 0 || !v.started) {
			v.buf = acc[i:]
			return
		}
		if v.started && len(acc) >= 9 {
			v.fail(acc, errors.New("no SFTP version packet"))
			return
		}
		from = max(0, len(acc)-8)
		if len(acc) > maxNoise {
			v.fail(acc, errors.New("no SFTP version packet"))
			return
		}
		go func() {
			b := make([]byte, 4096)
			n, err := v.r.Read(b)
			got <- chunk{b[:n], err}
		}()
		var c chunk
		if len(acc) > 0 && v.quiet > 0 {
			select {
			case c = <-got:
			case <-time.After(v.quiet):
				v.fail(acc, fmt.Errorf("then nothing for %s", v.quiet))
				return
			}
		} else {
			c = <-got
		}
		acc = append(acc, c.b...)
		if c.err != nil {
			if i := versionAt(acc, from); i >= 0 && (i == 0 || !v.started) {
				v.buf, v.err = acc[i:], c.err
				return
			}
			v.fail(acc, c.err)
			return
		}
	}
}

func (v *versionReader) fail(acc []byte, err error) {
	if len(acc) == 0 {
		v.err = fmt.Errorf("sftp-server ended before it answered: %w", err)
		return
	}
	v.noise = &SFTPNoiseError{Bytes: len(acc), Sample: string(acc[:min(len(acc), 64)]), Started: v.started}
	v.err = fmt.Errorf("%w (%v)", v.noise, err)
}

// versionAt returns the offset of the first SFTP version packet in b at
// or after from (uint32 length, type 2 SSH_FXP_VERSION, uint32 version
// 1-6), or -1.
func versionAt(b []byte, from int) int {
	for i := from; i+9 <= len(b); i++ {
		l := binary.BigEndian.Uint32(b[i:])
		if l >= 5 && l < 1<<18 && b[i+4] == 2 && b[i+5] == 0 && b[i+6] == 0 && b[i+7] == 0 && b[i+8] >= 1 && b[i+8] <= 6 {
			return i
		}
	}
	return -1
}

// Upload atomically replaces dst with the size bytes of r: they are
// written (as the become-user under sudo) to a new temp file in dst's
// directory, created 0600, then owner/group and mode are set and the temp
// file is renamed over dst. The bytes go over SFTP, or, when SFTP cannot
// start for the identity or sshd's MaxSessions leaves no room for it,
// through the persistent shell (uploadShell); either way the contract is
// the same. On any failure the temp file is removed; if the connection
// dies before that, the persistent shell removes it as it exits (it is
// registered with removeOnExit before it is created). opts.Progress, if
// set, is called (from another goroutine) as bytes are read from r.
func (h *SSHHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts UploadOptions) error {
	if err := h.check(); err != nil {
		return err
	}
	if !path.IsAbs(dst) || strings.ContainsRune(dst, 0) || path.Clean(dst) == "/" {
		return fmt.Errorf("host %s: upload %s: destination must be an absolute file path", h.name, dst)
	}
	if size < 0 {
		return fmt.Errorf("host %s: upload %s: negative size %d", h.name, dst, size)
	}
	dst = path.Clean(dst)
	tmp := path.Join(path.Dir(dst), ".opsmop-"+randHex(8)+".tmp")
	// The shell that removes the temp file should the connection die is
	// not closed to make room for other sessions meanwhile.
	unpin := h.c.sl.pin(h.ident.key())
	defer unpin()
	// The shell first: with MaxSessions 1 it is the only session, and
	// the file goes through it.
	if err := h.removeOnExit(ctx, tmp); err != nil {
		return fmt.Errorf("host %s: upload %s: register temp file: %w", h.name, dst, err)
	}
	src := &sizedReader{ctx: ctx, r: r, remain: size, total: size, progress: opts.Progress}
	slot, cl, done, err := h.sftpForUpload(ctx)
	if err == nil {
		defer done()
		return h.uploadSFTP(ctx, slot, cl, dst, tmp, src, size, opts)
	}
	var sle *SessionLimitError
	if !errors.Is(err, errSFTPUnusable) && !errors.As(err, &sle) {
		return err
	}
	sftpErr := err
	if err := h.uploadShell(ctx, dst, tmp, src, size, opts); err != nil {
		if errors.Is(err, errShellCarry) && ctx.Err() == nil {
			return fmt.Errorf("host %s: upload %s: %w; and through the persistent shell: %w", h.name, dst, sftpErr, err)
		}
		return fmt.Errorf("host %s: upload %s: %w", h.name, dst, err)
	}
	return nil
}

// uploadSFTP is Upload over SFTP: src to tmp, then owner, mode, rename.
func (h *SSHHost) uploadSFTP(ctx context.Context, slot *sftpSlot, cl *sftp.Client, dst, tmp string, src *sizedReader, size int64, opts UploadOptions) error {
	fail := func(step string, err error) error {
		if errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) {
			slot.drop(cl)
			err = h.c.lost(err)
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("host %s: upload %s: %s: %w", h.name, dst, step, err)
	}
	f, err := cl.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		hint := ""
		if errors.Is(err, os.ErrPermission) && !h.ident.sudo {
			hint = " (the login user cannot write there: use sudo)"
		}
		if errors.Is(err, os.ErrNotExist) {
			hint = " (the directory does not exist)"
		}
		return fail("create temp file in "+path.Dir(dst)+hint, err)
	}
	done := false
	defer func() {
		if done {
			return
		}
		if err := cl.Remove(tmp); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		// The SFTP client may be what failed (its server died): remove
		// the temp file through the shell, bounded even when ctx is done.
		h.removeTemp(ctx, tmp)
	}()
	if slot.subsystem {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fail("chmod temp file", err)
		}
	}
	n, err := f.ReadFrom(src)
	if err == nil && n != size {
		// a reader that returned EOF early
		err = fmt.Errorf("source ended after %d of %d bytes", n, size)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		step := "write"
		if errors.As(err, new(*sftp.StatusError)) && ctx.Err() == nil {
			step += h.spaceHint(ctx, path.Dir(dst), size)
		}
		return fail(step, err)
	}
	uid, uerr := strconv.ParseUint(opts.Owner, 10, 32)
	gid, gerr := strconv.ParseUint(opts.Group, 10, 32)
	switch {
	case uerr == nil && gerr == nil:
		// Numeric ids (what a replaced file's attributes are carried
		// over as): SFTP sets them, no command on the host.
		if err := cl.Chown(tmp, int(uid), int(gid)); err != nil {
			return fail("set owner/group", err)
		}
	case opts.Owner != "" || opts.Group != "":
		cmd := shell.Chown(opts.Owner, opts.Group, false) + " " + shell.Quote(tmp)
		res, err := h.Run(ctx, cmd, nil)
		if err != nil {
			return fail("set owner/group", err)
		}
		if res.ExitCode != 0 {
			return fail("set owner/group", fmt.Errorf("%s", strings.TrimSpace(string(res.Stderr))))
		}
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o644
	}
	if err := cl.Chmod(tmp, mode); err != nil {
		return fail("chmod", err)
	}
	if opts.Validate != nil {
		if err := h.validateTemp(ctx, dst, tmp, opts); err != nil {
			return fmt.Errorf("host %s: upload %s: %w", h.name, dst, err)
		}
	}
	if err := h.renameSFTP(ctx, slot, cl, tmp, dst); err != nil {
		return fail("rename into place", err)
	}
	done = true
	return nil
}

// renameSFTP renames an SFTP upload's temp file over dst: over SFTP on a
// host known to have SELinux off, else through the shell with
// SELinuxRename (the context kept), which also tells whether SELinux is
// on: the first upload of a connection learns it at the cost of one mv
// process, no round trip more than the SFTP rename.
func (h *SSHHost) renameSFTP(ctx context.Context, slot *sftpSlot, cl *sftp.Client, tmp, dst string) error {
	if slot.selinux.Load() == selinuxOff {
		return cl.PosixRename(tmp, dst)
	}
	qt, qd := shell.Quote(tmp), shell.Quote(dst)
	res, err := h.Run(ctx, "if [ -d "+qd+" ]; then echo 'the destination is a directory' >&2; exit 1; fi; "+
		SELinuxRename(qt, qd)+` && printf 'se=%s\n' "$__opsmop_se"`, nil)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		msg := strings.TrimSpace(string(res.Stderr))
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", res.ExitCode)
		}
		return errors.New(msg)
	}
	if st := selinuxState(res.Stdout); st != selinuxUnknown {
		slot.selinux.Store(st)
	}
	return nil
}

// removeTemp removes an upload's temp file through the shell, bounded by
// connect_timeout even when ctx is done.
func (h *SSHHost) removeTemp(ctx context.Context, tmp string) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.connTO)
	defer cancel()
	_, _ = h.Run(rctx, "rm -f -- "+shell.Quote(tmp), nil)
}

// errShellCarry marks an upload through the shell that failed because
// the shell could not run its commands (rather than a command failing).
var errShellCarry = errors.New("shell transfer failed")

const (
	// shellChunk is the bytes of a file one command of uploadShell
	// carries (as its stdin; the shell holds it in memory once, opsmop
	// about twice).
	shellChunk = 1 << 20
	// shellBatch is how many chunk commands go to the shell at once (one
	// round trip).
	shellBatch = 4
)

// Exit statuses of uploadShell's commands.
const (
	shellNoDir    = 3 // the directory does not exist
	shellNoWrite  = 4 // the directory is not writable
	shellCreate   = 5 // the temp file could not be created (stderr says why)
	shellGone     = 6 // the temp file is gone
	shellChown    = 7
	shellChmod    = 8
	shellRenameTo = 9
	shellShort    = 10 // the temp file does not have size bytes
)

// uploadShell is Upload through the identity's persistent shell (or, on a
// host without a usable sh, one exec channel per command): the first
// command creates tmp (umask 077, noclobber) and appends the first chunk
// of src, which it gets as its stdin; the others append a chunk each,
// shellBatch to a round trip; the last sets owner, group and mode and
// renames tmp over dst (mv in the same directory: rename(2)). Errors from
// the shell itself (not from a command) wrap errShellCarry. They do not
// name the host and file: Upload does.
func (h *SSHHost) uploadShell(ctx context.Context, dst, tmp string, src *sizedReader, size int64, opts UploadOptions) error {
	dir := path.Dir(dst)
	fail := func(step string, err error) error {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("%s: %w", step, err)
	}
	cmdErr := func(res Result) error {
		if msg := strings.TrimSpace(string(res.Stderr)); msg != "" {
			return errors.New(msg)
		}
		return fmt.Errorf("exit status %d", res.ExitCode)
	}
	// Every command prints a random token first: a result without it
	// (a login shell that did not run the command) is not taken for
	// the command's.
	sc := shellUploadScripts{token: "opsmop-up-" + randHex(8), tmp: tmp, dst: dst}
	token := sc.token
	run := func(cmds []command) ([]Result, error) {
		res, err := h.run(ctx, cmds)
		if err != nil && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errShellCarry, err)
		}
		for i, r := range res {
			if err == nil && !bytes.Contains(r.Stdout, []byte(token+"-ran\n")) {
				err = fmt.Errorf("%w: the shell did not run opsmop's command (exit status %d, stdout %q, stderr %q)",
					errShellCarry, r.ExitCode, trunc(r.Stdout, 200), trunc(r.Stderr, 200))
				res = res[:i]
			}
		}
		return res, err
	}
	created := false
	done := false
	defer func() {
		if created && !done {
			h.removeTemp(ctx, tmp)
		}
	}()
	buf := make([]byte, min(size, shellChunk))
	next := func() ([]byte, error) {
		n := min(int64(len(buf)), src.remain)
		if _, err := io.ReadFull(src, buf[:n]); err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	first, err := next()
	if err != nil {
		return fail("write", err)
	}
	create := sc.create(len(first) > 0)
	created = true // should the command fail after creating it
	res, err := run([]command{{script: create, stdin: append([]byte(nil), first...), hasStdin: true}})
	if err != nil {
		return fail("create temp file in "+dir, err)
	}
	switch res[0].ExitCode {
	case shellNoDir, shellNoWrite, shellCreate:
		created = false
	}
	switch res[0].ExitCode {
	case 0:
	case shellNoDir:
		return fail("create temp file in "+dir+" (the directory does not exist)", errors.New("no such directory"))
	case shellNoWrite:
		hint := " (" + h.c.user + " cannot write there: use sudo)"
		if h.ident.sudo {
			hint = " (" + h.ident.user + " cannot write there)"
		}
		return fail("create temp file in "+dir+hint, errors.New("permission denied"))
	default:
		return fail("create temp file in "+dir, cmdErr(res[0]))
	}
	appendCmd := sc.appendChunk()
	for src.remain > 0 {
		var cmds []command
		for len(cmds) < shellBatch && src.remain > 0 {
			chunk, err := next()
			if err != nil {
				return fail("write", err)
			}
			cmds = append(cmds, command{script: appendCmd, stdin: append([]byte(nil), chunk...), hasStdin: true})
		}
		res, err := run(cmds)
		if err != nil {
			return fail("write", err)
		}
		for _, r := range res {
			if r.ExitCode != 0 {
				return fail("write"+h.spaceHint(ctx, dir, size), cmdErr(r))
			}
		}
	}
	// With a validate command the rename is a command of its own, after
	// it (validateTemp).
	validate := opts.Validate != nil
	script := sc.finish(size, opts)
	if validate {
		script = sc.prepare(size, opts)
	}
	res, err = run([]command{{script: script}})
	if err != nil {
		return fail("rename into place", err)
	}
	switch res[0].ExitCode {
	case 0:
	case shellChown:
		return fail("set owner/group", cmdErr(res[0]))
	case shellChmod:
		return fail("chmod", cmdErr(res[0]))
	case shellGone, shellShort:
		return fail("write", cmdErr(res[0]))
	default:
		return fail("rename into place", cmdErr(res[0]))
	}
	if validate {
		if err := h.validateTemp(ctx, dst, tmp, opts); err != nil {
			return err
		}
		res, err = run([]command{{script: sc.rename()}})
		if err != nil {
			return fail("rename into place", err)
		}
		if res[0].ExitCode != 0 {
			return fail("rename into place", cmdErr(res[0]))
		}
	}
	done = true
	return nil
}

// trunc is b as text, cut to n bytes.
func trunc(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// shellUploadScripts are the commands of uploadShell, POSIX sh run as the
// identity. Each prints token "-ran" and a newline first.
type shellUploadScripts struct {
	token    string
	tmp, dst string
}

func (sc shellUploadScripts) ran() string {
	return "printf '%s-ran\\n' " + sc.token + "; "
}

// create creates tmp, 0600 and exclusively (set -C), and when data is set
// appends its stdin to it. Exit statuses: shellNoDir, shellNoWrite,
// shellCreate (stderr says why), else cat's.
func (sc shellUploadScripts) create(data bool) string {
	qt, qd := shell.Quote(sc.tmp), shell.Quote(path.Dir(sc.tmp))
	s := sc.ran() + fmt.Sprintf("umask 077; set -C; [ -d %s ] || exit %d; printf '' >%s || { [ -w %s ] || exit %d; exit %d; }",
		qd, shellNoDir, qt, qd, shellNoWrite, shellCreate)
	if data {
		s += "; exec cat >>" + qt
	}
	return s
}

// appendChunk appends its stdin to tmp, which must exist (shellGone).
func (sc shellUploadScripts) appendChunk() string {
	qt := shell.Quote(sc.tmp)
	return sc.ran() + fmt.Sprintf("umask 077; [ -f %s ] || exit %d; exec cat >>%s", qt, shellGone, qt)
}

// finish checks that tmp has size bytes (where wc exists: shellShort),
// sets owner and group (shellChown), the mode (shellChmod) and renames
// it over dst, which must not be a directory (shellRenameTo).
func (sc shellUploadScripts) finish(size int64, opts UploadOptions) string {
	return sc.prepare(size, opts) + "; " + sc.renameBody()
}

// prepare is finish without the rename: for an upload with a validate
// command, which runs between them.
func (sc shellUploadScripts) prepare(size int64, opts UploadOptions) string {
	qt := shell.Quote(sc.tmp)
	var b strings.Builder
	b.WriteString(sc.ran())
	fmt.Fprintf(&b, "if command -v wc >/dev/null 2>&1; then n=$(wc -c <%s) || exit %d; [ $n -eq %d ] || { echo \"the temp file has $n of %d bytes\" >&2; exit %d; }; fi; ",
		qt, shellGone, size, size, shellShort)
	if c := shell.Chown(opts.Owner, opts.Group, false); c != "" {
		fmt.Fprintf(&b, "%s %s || exit %d; ", c, qt, shellChown)
	}
	mode := opts.Mode
	if mode == 0 {
		mode = 0o644
	}
	fmt.Fprintf(&b, "chmod %04o %s || exit %d", posixMode(mode), qt, shellChmod)
	return b.String()
}

// rename renames tmp over dst, which must not be a directory
// (shellRenameTo): the last command of an upload with a validate command.
func (sc shellUploadScripts) rename() string { return sc.ran() + sc.renameBody() }

func (sc shellUploadScripts) renameBody() string {
	qt, qf := shell.Quote(sc.tmp), shell.Quote(sc.dst)
	return fmt.Sprintf("if [ -d %s ]; then echo 'the destination is a directory' >&2; exit %d; fi; %s || exit %d", qf, shellRenameTo, SELinuxRename(qt, qf), shellRenameTo)
}

// posixMode is mode's permission bits with setuid, setgid and sticky as
// chmod takes them.
func posixMode(mode os.FileMode) uint32 {
	// Both Go's mode bits and chmod's (0o4000...) are taken, as pkg/sftp
	// does.
	m := uint32(mode & (os.ModePerm | 0o7000))
	if mode&os.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&os.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&os.ModeSticky != 0 {
		m |= 0o1000
	}
	return m
}

// spaceHint explains a failed write when dir's filesystem has less room
// than size bytes (SFTP reports a full disk as a bare "Failure"), and is
// empty otherwise.
func (h *SSHHost) spaceHint(ctx context.Context, dir string, size int64) string {
	rctx, cancel := context.WithTimeout(ctx, h.connTO)
	defer cancel()
	res, err := h.Run(rctx, "df -Pk -- "+shell.Quote(dir)+" | { read -r _; read -r _ _ _ a _; echo \"$a\"; }", nil)
	if err != nil || res.ExitCode != 0 {
		return ""
	}
	free, err := strconv.ParseInt(strings.TrimSpace(string(res.Stdout)), 10, 64)
	if err != nil || free*1024 >= size {
		return ""
	}
	return fmt.Sprintf(" (no space left on the target filesystem: %d KiB free in %s for %d KiB)", free, dir, (size+1023)/1024)
}

// sizedReader yields at most remain bytes of r, tells pkg/sftp its size
// (so ReadFrom uses concurrent writes), stops on ctx and reports progress.
type sizedReader struct {
	ctx      context.Context
	r        io.Reader
	remain   int64
	total    int64
	progress func(written, total int64)
}

func (s *sizedReader) Size() int64 { return s.remain }

func (s *sizedReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	if s.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.remain {
		p = p[:s.remain]
	}
	n, err := s.r.Read(p)
	s.remain -= int64(n)
	if s.progress != nil && n > 0 {
		s.progress(s.total-s.remain, s.total)
	}
	if err == io.EOF && s.remain > 0 {
		return n, fmt.Errorf("source ended after %d of %d bytes", s.total-s.remain, s.total)
	}
	return n, err
}

// Validated uploads (UploadOptions.Validate): the command runs on the
// complete temp file, after its mode, owner and group are set and before
// the rename, on both ways of uploading (validateTemp) and on Local.

// ValidateError is an upload that its validate command refused
// (UploadOptions.Validate exited non-zero): the temp file was removed and
// the destination is as it was.
type ValidateError struct {
	// Host is the host's name ("" for a Local target).
	Host string
	// Path is the destination, which was left as it was.
	Path string
	// Command is the command as it ran, the temp file's path in it.
	Command string
	// ExitCode is the command's exit status.
	ExitCode int
	// Stdout and Stderr are the last lines of the command's output.
	Stdout, Stderr string
	// Hidden is set by a caller that blanked Stdout and Stderr (the
	// command may print the contents, e.g. visudo the offending line, and
	// they are sensitive); Error says so.
	Hidden bool
}

// Error says what refused the contents, that the file is unchanged, and
// what the command printed. It does not name the host and the path: the
// upload's error that wraps it does.
func (e *ValidateError) Error() string {
	msg := fmt.Sprintf("validate refused the new contents (exit status %d), the file is unchanged: %s", e.ExitCode, e.Command)
	if e.Stderr != "" {
		msg += "\nstderr: " + e.Stderr
	}
	if e.Stdout != "" {
		msg += "\nstdout: " + e.Stdout
	}
	if e.Hidden {
		msg += " (its output is not shown: the contents are sensitive)"
	}
	return msg
}

// validateTail is how much of a validate command's stdout and stderr a
// ValidateError keeps: the last lines, at most this many bytes.
const (
	validateTailLines = 20
	validateTailBytes = 4096
)

// outputTail is the last lines of b (validateTailLines, validateTailBytes),
// trimmed, "…" first when some were cut.
func outputTail(b []byte) string {
	s := strings.TrimSpace(string(b))
	cut := false
	if len(s) > validateTailBytes {
		s, cut = s[len(s)-validateTailBytes:], true
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[i+1:]
		}
	}
	if lines := strings.Split(s, "\n"); len(lines) > validateTailLines {
		s, cut = strings.Join(lines[len(lines)-validateTailLines:], "\n"), true
	}
	if cut {
		s = "…\n" + s
	}
	return s
}

// newValidateError is the *ValidateError of a validate command's result.
func newValidateError(host, dst, cmd string, res Result) *ValidateError {
	return &ValidateError{Host: host, Path: dst, Command: cmd, ExitCode: res.ExitCode,
		Stdout: outputTail(res.Stdout), Stderr: outputTail(res.Stderr)}
}

// validateTemp runs opts.Validate's command for the temp file tmp of an
// upload to dst as the identity (in its persistent shell, stdin from
// /dev/null, in a subshell: an exit or a syntax error in it ends only
// itself). A non-zero exit status is a *ValidateError; the caller removes
// tmp. Errors do not name the host and dst.
func (h *SSHHost) validateTemp(ctx context.Context, dst, tmp string, opts UploadOptions) error {
	cmd := opts.Validate(tmp)
	res, err := h.Run(ctx, cmd, nil)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return fmt.Errorf("validate: %w", err)
	}
	if res.ExitCode != 0 {
		return newValidateError(h.name, dst, cmd, res)
	}
	return nil
}
