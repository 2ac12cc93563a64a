package connection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"
)

// execRun runs one command in its own exec channel: the fallback for hosts
// without a usable sh (the login shell interprets the script).
func (h *SSHHost) execRun(ctx context.Context, c command) (Result, error) {
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	if c.hasStdin {
		sess.Stdin = bytes.NewReader(c.stdin)
	}
	if err := sess.Start(c.script); err != nil {
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
	res := Result{Stdout: o.Bytes(), Stderr: e.Bytes()}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	if err != nil {
		return Result{}, h.c.lost(fmt.Errorf("host %s: exec: %w", h.name, err))
	}
	return res, nil
}
