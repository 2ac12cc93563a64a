package connection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opsmop/opsmop/internal/shell"
)

// Local runs commands and writes files on the machine opsmop itself runs
// on (opsmop_connection = "local", and provider tests).
//
// Without Sudo, scripts run as the current user with `sh -c` and uploads
// are written directly by this process. With Sudo, scripts run under
// `sudo -n -u SudoUser -- sh -c` (no password prompt: sudo must be
// passwordless for the current user, otherwise Run fails fast with sudo's
// message on stderr) and uploads are streamed into place by such a shell.
type Local struct {
	// Sudo runs every script (and upload) as SudoUser through sudo -n.
	Sudo bool
	// SudoUser is the user sudo switches to; "" means root.
	SudoUser string
	// CommandTimeout bounds each Run; 0 means only ctx bounds it. On
	// timeout the command's whole process group is killed.
	CommandTimeout time.Duration
}

// killGrace is how long Run waits for a killed command's output pipes to
// close (a grandchild that left the process group may keep them open).
const killGrace = 2 * time.Second

// Run runs script with `sh -c` (under sudo when configured), feeding stdin
// if non-nil. stdout and stderr are kept apart. A non-zero exit status is
// not an error: it is in Result.ExitCode (128+N for a command killed by
// signal N, as sh reports it). err is set when the command could
// not be started, or when ctx was cancelled or CommandTimeout expired, in
// which case the command's process group has been killed.
func (l *Local) Run(ctx context.Context, script string, stdin io.Reader) (Result, error) {
	if l.CommandTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.CommandTimeout)
		defer cancel()
	}
	args := shArgs(script)
	var cmd *exec.Cmd
	if l.Sudo {
		cmd = exec.CommandContext(ctx, "sudo", append([]string{"-n", "-u", l.sudoUser(), "--", "sh"}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, "sh", args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		pgid := cmd.Process.Pid
		if l.Sudo {
			// sudo (running as root) relays SIGTERM to the command, which
			// may run in its own session under sudo's pty; SIGKILL would
			// leave it orphaned. Follow up with SIGKILL shortly after.
			err := syscall.Kill(-pgid, syscall.SIGTERM)
			time.AfterFunc(500*time.Millisecond, func() { _ = syscall.Kill(-pgid, syscall.SIGKILL) })
			return err
		}
		// Kill the whole process group: sh and everything it started.
		return syscall.Kill(-pgid, syscall.SIGKILL)
	}
	cmd.WaitDelay = killGrace
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	if ctxErr := ctx.Err(); ctxErr != nil {
		res.ExitCode = -1
		if errors.Is(ctxErr, context.DeadlineExceeded) && l.CommandTimeout > 0 {
			return res, fmt.Errorf("local: command timed out after %s (killed): %w", l.CommandTimeout, ctxErr)
		}
		return res, fmt.Errorf("local: command interrupted (killed): %w", ctxErr)
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		// The command exited but something it started kept its output
		// open; what was read so far is the result.
		res.ExitCode = cmd.ProcessState.ExitCode()
		return res, nil
	}
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			res.ExitCode = ee.ExitCode()
			if res.ExitCode < 0 { // killed by a signal
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					res.ExitCode = 128 + int(ws.Signal())
				}
			}
			return res, nil
		}
		return res, fmt.Errorf("local: run sh: %w", err)
	}
	return res, nil
}

// maxArgLen is the longest script passed as one `sh -c` argument: Linux
// refuses a single argument over 128 KiB (MAX_ARG_STRLEN) with "argument
// list too long".
const maxArgLen = 96 << 10

// shArgs returns sh's arguments to run script: `-c script`, or for a
// longer script, a short `-c` that joins the script's pieces (each at most
// maxArgLen bytes, passed as arguments) and evals them with no positional
// parameters set and IFS back to sh's initial space, tab and newline. The whole is still bounded
// by the kernel's total for arguments (a quarter of the stack limit,
// usually 2 MiB).
func shArgs(script string) []string {
	if len(script) <= maxArgLen {
		return []string{"-c", script}
	}
	args := []string{"-c", "IFS=; __opsmop_s=\"$*\"; set --; IFS=' \t\n'; eval \"$__opsmop_s\"", "sh"}
	for len(script) > maxArgLen {
		args = append(args, script[:maxArgLen])
		script = script[maxArgLen:]
	}
	return append(args, script)
}

// RunBatch runs scripts one after the other (there is no round trip to
// save locally) and returns their results in order. It stops at the first
// transport error (timeout, cancellation) and returns the results so far
// with it.
func (l *Local) RunBatch(ctx context.Context, scripts []string) ([]Result, error) {
	out := make([]Result, 0, len(scripts))
	for i, s := range scripts {
		r, err := l.Run(ctx, s, nil)
		if err != nil {
			return out, fmt.Errorf("local: batch command %d of %d: %w", i+1, len(scripts), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// RunProbes is RunBatch for probes: locally each runs in its own sh, so
// Inline changes nothing.
func (l *Local) RunProbes(ctx context.Context, probes []Probe) ([]Result, error) {
	scripts := make([]string, len(probes))
	for i, p := range probes {
		scripts[i] = p.Script
	}
	return l.RunBatch(ctx, scripts)
}

// Upload atomically replaces dst with the size bytes read from r (size < 0:
// read r to EOF). It writes a temp file created 0600 in dst's directory,
// sets opts.Mode (0644 when 0), opts.Owner and opts.Group (names or
// numeric ids), then renames it over dst. On any failure the temp file is
// removed and dst is left as it was. With Sudo the same steps are done by
// a sudo'd shell reading the contents on stdin.
func (l *Local) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts UploadOptions) error {
	if !path.IsAbs(dst) {
		return fmt.Errorf("local: upload %s: destination must be an absolute path", dst)
	}
	mode := opts.Mode.Perm() | (opts.Mode & (os.ModeSetuid | os.ModeSetgid | os.ModeSticky))
	if opts.Mode == 0 {
		mode = 0o644
	}
	src := r
	if size >= 0 {
		src = &exactReader{r: r, left: size}
	}
	if opts.Progress != nil {
		src = &progressReader{r: src, total: size, fn: opts.Progress}
	}
	if l.Sudo {
		return l.uploadSudo(ctx, dst, src, mode, opts)
	}
	return l.uploadDirect(ctx, dst, src, mode, opts)
}

func (l *Local) uploadDirect(ctx context.Context, dst string, r io.Reader, mode os.FileMode, opts UploadOptions) (err error) {
	uid, gid, err := lookupOwner(opts.Owner, opts.Group)
	if err != nil {
		return fmt.Errorf("local: upload %s: %w", dst, err)
	}
	tmp, err := os.CreateTemp(path.Dir(dst), "."+path.Base(dst)+".opsmop-*")
	if err != nil {
		return fmt.Errorf("local: upload %s: %w", dst, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, ctxReader{ctx: ctx, r: r}); err != nil {
		return fmt.Errorf("local: upload %s: write: %w", dst, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("local: upload %s: sync: %w", dst, err)
	}
	if uid >= 0 || gid >= 0 {
		if err = tmp.Chown(uid, gid); err != nil {
			return fmt.Errorf("local: upload %s: chown: %w", dst, err)
		}
	}
	// chmod after chown: chown clears setuid/setgid bits.
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("local: upload %s: chmod: %w", dst, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("local: upload %s: close: %w", dst, err)
	}
	if opts.Validate != nil {
		// UploadOptions.Validate (upload.go): on the complete temp file.
		cmd := opts.Validate(tmp.Name())
		res, rerr := l.Run(ctx, cmd, nil)
		if rerr != nil {
			err = fmt.Errorf("local: upload %s: validate: %w", dst, rerr)
			return err
		}
		if res.ExitCode != 0 {
			err = fmt.Errorf("local: upload %s: %w", dst, newValidateError("", dst, cmd, res))
			return err
		}
	}
	// Where SELinux is on, the context of the file replaced is kept
	// (selinux.go).
	if err = localSELinuxRename(ctx, tmp.Name(), dst); err != nil {
		return fmt.Errorf("local: upload %s: rename: %w", dst, err)
	}
	return nil
}

func (l *Local) uploadSudo(ctx context.Context, dst string, r io.Reader, mode os.FileMode, opts UploadOptions) error {
	var b strings.Builder
	tmpName, cmd, marker := "", "", ""
	if opts.Validate != nil {
		// UploadOptions.Validate (upload.go): the command needs the temp
		// file's name, so it is chosen here and created exclusively.
		tmpName = path.Join(path.Dir(dst), "."+path.Base(dst)+".opsmop-"+randHex(8))
		cmd = opts.Validate(tmpName)
		marker = "opsmop-validate-" + randHex(8)
		fmt.Fprintf(&b, "umask 077\ntmp=%s\nset -C\n: >\"$tmp\" || exit 1\nset +C\n", shell.Quote(tmpName))
	} else {
		fmt.Fprintf(&b, "umask 077\ntmp=$(mktemp %s) || exit 1\n", shell.Quote(path.Join(path.Dir(dst), "."+path.Base(dst)+".opsmop-XXXXXXXX")))
	}
	b.WriteString("trap 'rm -f \"$tmp\"' EXIT\ncat > \"$tmp\" || exit 1\n")
	if c := shell.Chown(opts.Owner, opts.Group, false); c != "" {
		b.WriteString(c + " \"$tmp\" || exit 1\n")
	}
	fmt.Fprintf(&b, "chmod %o \"$tmp\" || exit 1\n", uint32(mode.Perm())|modeSpecialBits(mode))
	if cmd != "" {
		// In a subshell (an exit or a syntax error ends only it), its
		// status after a marker on stderr's last line.
		fmt.Fprintf(&b, "(eval %s) </dev/null\ns=$?\nif [ $s -ne 0 ]; then printf '\\n%s %%d\\n' \"$s\" >&2; exit 1; fi\n", shell.Quote(cmd), marker)
	}
	fmt.Fprintf(&b, "%s || exit 1\ntrap - EXIT\n", SELinuxRename(`"$tmp"`, shell.Quote(dst)))
	res, err := l.Run(ctx, b.String(), r)
	if err != nil {
		return fmt.Errorf("local: upload %s: %w", dst, err)
	}
	if res.ExitCode != 0 {
		if marker != "" {
			errOut := strings.TrimRight(string(res.Stderr), "\n")
			if i := strings.LastIndex(errOut, "\n"+marker+" "); i >= 0 {
				if code, cerr := strconv.Atoi(errOut[i+len(marker)+2:]); cerr == nil {
					res.ExitCode, res.Stderr = code, []byte(errOut[:i])
					return fmt.Errorf("local: upload %s: %w", dst, newValidateError("", dst, cmd, res))
				}
			}
		}
		return fmt.Errorf("local: upload %s: exit status %d: %s", dst, res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return nil
}

func (l *Local) sudoUser() string {
	if l.SudoUser == "" {
		return "root"
	}
	return l.SudoUser
}

// modeSpecialBits returns the setuid/setgid/sticky bits of m as chmod's
// octal digits.
func modeSpecialBits(m os.FileMode) uint32 {
	var v uint32
	if m&os.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&os.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&os.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}

// lookupOwner resolves owner and group names (or numeric ids) to ids; -1
// means "leave as is".
func lookupOwner(owner, group string) (uid, gid int, err error) {
	uid, gid = -1, -1
	if owner != "" {
		if n, e := strconv.Atoi(owner); e == nil {
			uid = n
		} else {
			u, e := user.Lookup(owner)
			if e != nil {
				return 0, 0, fmt.Errorf("owner %q: no such user", owner)
			}
			uid, _ = strconv.Atoi(u.Uid)
		}
	}
	if group != "" {
		if n, e := strconv.Atoi(group); e == nil {
			gid = n
		} else {
			g, e := user.LookupGroup(group)
			if e != nil {
				return 0, 0, fmt.Errorf("group %q: no such group", group)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}

// exactReader yields exactly left bytes of r: a short source is an error
// (so a truncated upload never replaces the destination), extra bytes are
// ignored.
type exactReader struct {
	r    io.Reader
	left int64
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	if err == io.EOF {
		if e.left > 0 {
			return n, fmt.Errorf("source ended %d bytes short of the announced size", e.left)
		}
		if n == 0 {
			return 0, io.EOF
		}
		return n, nil
	}
	return n, err
}

type progressReader struct {
	r       io.Reader
	written int64
	total   int64
	fn      func(written, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.written += int64(n)
		p.fn(p.written, p.total)
	}
	return n, err
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// RunSteps runs steps one after the other with the rules of
// SSHHost.RunSteps: a StepStop step that exits non-zero stops the steps
// after it (reported NotRun, ExitCode -1) but for a StepOnStop step right
// behind it.
func (l *Local) RunSteps(ctx context.Context, steps []Step) ([]Result, error) {
	return runStepsInGo(steps, func(st Step) (Result, error) {
		script, in := StepScript(st)
		var stdin io.Reader
		if in != nil {
			stdin = bytes.NewReader(in)
		}
		return l.Run(ctx, script, stdin)
	})
}
