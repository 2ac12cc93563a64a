package connection

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"

	"github.com/pkg/sftp"

	"github.com/opsmop/opsmop/internal/shell"
)

// sftpSlot is the long-lived SFTP client of one identity on a connection.
type sftpSlot struct {
	mu        sync.Mutex
	cl        *sftp.Client
	close_    func()
	subsystem bool // started via "Subsystem sftp": new files need a chmod
}

func (s *sftpSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		s.cl.Close()
		s.close_()
		s.cl = nil
	}
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
	if s.cl != nil {
		return s, s.cl, nil
	}
	cl, closeFn, err := h.startSFTP(ctx, false)
	if err != nil && !h.ident.sudo && h.c.deadErr() == nil && ctx.Err() == nil {
		// No sftp-server binary where we looked: use the configured
		// subsystem (internal-sftp, other paths).
		var err2 error
		cl, closeFn, err2 = h.startSFTP(ctx, true)
		if err2 == nil {
			err = nil
			s.subsystem = true
		}
	}
	if err != nil {
		return nil, nil, err
	}
	s.cl, s.close_ = cl, closeFn
	return s, cl, nil
}

func (h *SSHHost) startSFTP(ctx context.Context, subsystem bool) (*sftp.Client, func(), error) {
	sess, release, err := h.c.openSession(ctx)
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
	switch {
	case subsystem:
		err = sess.RequestSubsystem("sftp")
		pump.settle(0)
	case h.ident.sudo:
		prompt := "[opsmop-sudo-" + randHex(8) + "] "
		ready := "opsmop-ready-" + randHex(8)
		if err = sess.Start("exec " + sudoCommand(h.ident, !h.sudoPw.IsZero(), prompt, ready, scriptBody(sftpServerFile))); err == nil {
			err = h.sudoHandshake(ctx, pump, stdin, prompt, ready, h.connTO)
		}
	default:
		err = sess.Start("exec sh -c " + shell.Quote(scriptBody(sftpServerFile)))
		pump.settle(0)
	}
	if err != nil {
		return fail(h.c.lost(fmt.Errorf("host %s: start sftp: %w", h.name, err)))
	}
	stop := context.AfterFunc(ctx, closeFn)
	cl, err := sftp.NewClientPipe(stdout, stdin,
		sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if !stop() {
		if cl != nil {
			cl.Close()
		}
		return nil, nil, ctx.Err()
	}
	if err != nil {
		return fail(h.c.lost(fmt.Errorf("host %s: start sftp: %w (stderr: %q)", h.name, err, pump.tail())))
	}
	return cl, closeFn, nil
}

// Upload atomically replaces dst with the size bytes of r: they are
// written over SFTP (as the become-user under sudo) to a new temp file in
// dst's directory, created 0600, then owner/group and mode are set and the
// temp file is renamed over dst. On any failure the temp file is removed;
// if the connection dies before that, the persistent shell removes it as
// it exits (it is registered with removeOnExit before it is created).
// opts.Progress, if set, is called (from another goroutine) as bytes are
// read from r.
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
	slot, cl, err := h.sftp(ctx)
	if err != nil {
		return err
	}
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
	tmp := path.Join(path.Dir(dst), ".opsmop-"+randHex(8)+".tmp")
	// Should the connection die mid-upload, the shell removes the temp
	// file as it exits.
	if err := h.removeOnExit(ctx, tmp); err != nil {
		return fail("register temp file", err)
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
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.connTO)
		defer cancel()
		_, _ = h.Run(rctx, "rm -f -- "+shell.Quote(tmp), nil)
	}()
	if slot.subsystem {
		if err := f.Chmod(0o600); err != nil {
			f.Close()
			return fail("chmod temp file", err)
		}
	}
	src := &sizedReader{ctx: ctx, r: r, remain: size, total: size, progress: opts.Progress}
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
	if err := cl.PosixRename(tmp, dst); err != nil {
		return fail("rename into place", err)
	}
	done = true
	return nil
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
