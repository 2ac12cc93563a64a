package connection

// The fallback for hosts where opsmop's persistent shell cannot be used
// (it ended before its init frame, or its output before the frame was
// garbled): every command gets an exec channel of its own, sent through
// the login shell as one shell.LoginLine (shell_run_exec.sh), and counts
// as run only when the random markers that script prints are in its
// output. A login shell that cannot run the line (fish on POSIX syntax,
// nologin, no /bin/sh) prints something and exits, often with status 0:
// that is an *UnprovenError, never a result.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/shell"
)

// execRunSlot runs cmds in exec mode for slot s (the caller holds s.mu): one
// proven exec channel each, in order. A command that gives no proof before
// any command of the slot did makes the host fail: s.failed keeps the
// error, so later runs return it without trying again.
func (h *SSHHost) execRunSlot(ctx context.Context, s *shellSlot, cmds []command) ([]Result, error) {
	out := make([]Result, 0, len(cmds))
	for _, c := range cmds {
		r, err := h.execRun(ctx, c, s.noShell)
		if err != nil {
			if _, ok := errors.AsType[*UnprovenError](err); ok && !s.proven {
				s.failed = err
			}
			return out, err
		}
		s.proven = true
		out = append(out, r)
	}
	return out, nil
}

// execScript returns the script execRun sends for c (as a LoginLine):
// the assignments shell_run_exec.sh reads, then that file.
func execScript(c command, start, end string) string {
	var b strings.Builder
	b.WriteString("__opsmop_S=" + start + " __opsmop_E=" + end + " __opsmop_h=")
	if c.hasStdin {
		var f strings.Builder
		for i, x := range c.stdin {
			switch {
			case x == 0:
				f.WriteString(`\000`)
			case x == '\\':
				f.WriteString(`\\`)
			case x == '%':
				f.WriteString("%%")
			case x == '-' && i == 0:
				// A format that starts with '-' is taken for an option.
				f.WriteString(`\055`)
			default:
				f.WriteByte(x)
			}
		}
		b.WriteString("1 __opsmop_f=" + shell.Quote(f.String()))
	} else {
		b.WriteString("0 __opsmop_f=")
	}
	b.WriteString(" __opsmop_c=" + shell.Quote(c.script) + "\n")
	b.WriteString(scriptBody(shellRunExecFile))
	return b.String()
}

// parseExec takes a command's result out of the output of
// shell_run_exec.sh with markers start and end. ok is false when the
// output does not prove that the command ran: the start marker, the end
// marker and an exit status line must all be on stdout. Whatever the
// login shell printed before the start marker is dropped.
func parseExec(stdout, stderr []byte, start, end string) (res Result, ok bool) {
	_, o, found := bytes.Cut(stdout, []byte(start))
	if !found {
		return Result{}, false
	}
	o, tail, found := bytes.Cut(o, []byte(end))
	if !found {
		return Result{}, false
	}
	status, _, found := bytes.Cut(tail, []byte("\n"))
	if !found {
		return Result{}, false
	}
	code, err := strconv.Atoi(string(status))
	if err != nil || code < 0 {
		return Result{}, false
	}
	if _, e, found := bytes.Cut(stderr, []byte(start)); found {
		stderr = e
	}
	if e, _, found := bytes.Cut(stderr, []byte(end)); found {
		stderr = e
	}
	return Result{Stdout: o, Stderr: stderr, ExitCode: code}, true
}

// execRun runs one command in its own exec channel through the login
// shell and returns its result only when the output proves it ran (see
// parseExec); otherwise an *UnprovenError naming why (the reason the
// persistent shell could not be used) and what the login shell printed.
func (h *SSHHost) execRun(ctx context.Context, c command, why string) (Result, error) {
	start, end := "opsmop-S"+randHex(12), "opsmop-E"+randHex(12)
	line, err := shell.LoginLine(execScript(c, start, end))
	if err != nil {
		return Result{}, fmt.Errorf("host %s: opsmop's shell cannot run here (%s) and %w: the command (with its stdin) must fit on one command line", h.name, why, err)
	}
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	if err := sess.Start(line); err != nil {
		return Result{}, h.c.lost(fmt.Errorf("host %s: exec: %w", h.name, err))
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	var timeout <-chan time.Time
	if h.cmdTO > 0 {
		t := time.NewTimer(h.cmdTO)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case err = <-done:
	case <-timeout:
		_ = sess.Signal(ssh.SIGKILL)
		return Result{}, &TimeoutError{Host: h.name, Timeout: h.cmdTO}
	case <-ctx.Done():
		_ = sess.Signal(ssh.SIGKILL)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Result{}, &TimeoutError{Host: h.name}
		}
		return Result{}, ctx.Err()
	}
	if res, ok := parseExec(o.Bytes(), e.Bytes(), start, end); ok {
		return res, nil
	}
	exit := "no exit status"
	var ee *ssh.ExitError
	switch {
	case errors.As(err, &ee):
		exit = "exit status " + strconv.Itoa(ee.ExitStatus())
		if ee.Signal() != "" {
			exit = "signal " + ee.Signal()
		}
	case err == nil:
		exit = "exit status 0"
	default:
		if d := h.c.deadErr(); d != nil {
			return Result{}, d
		}
	}
	return Result{}, &UnprovenError{Host: h.name, Why: why, Exit: exit,
		Stdout: shortText(o.String(), 1024), Stderr: shortText(e.String(), 1024)}
}
