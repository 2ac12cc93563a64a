package connection

// Killing a command that outlives command_timeout or its context (see the
// specification in protocol.go): the watchdog of a run fires, the kill
// helper (watchdog_kill.sh, in a session of its own) kills the command's
// process tree, and the shell is torn down if that does not end it in
// time.

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/shell"
)

// sshKillGrace is how long a killed command may take to end (and the kill
// helper to run) before the shell is torn down instead.
const sshKillGrace = 10 * time.Second

// fired is whether, and why, a watchdog fired.
type fired int

const (
	firedNone    fired = iota
	firedTimeout       // command_timeout passed
	firedCtx           // the run's context ended
	firedDone          // the run is over: firing does nothing
)

// watchdog kills the running command when command_timeout passes or ctx
// ends, and tears the shell down if the kill does not end it in time.
type watchdog struct {
	sh *pshell
	h  *SSHHost

	mu       sync.Mutex
	reason   fired
	timer    *time.Timer
	grace    *time.Timer
	killDone chan struct{} // closed when the kill has finished
}

// arm starts the timeout of the next command (none when timeout <= 0);
// it does nothing once the watchdog has fired.
func (w *watchdog) arm(timeout time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != firedNone || timeout <= 0 {
		return
	}
	w.timer = time.AfterFunc(timeout, func() { w.fire(firedTimeout) })
}

// fire kills the running command in the background (once: later calls
// do nothing) and tears the shell down if that takes longer than
// sshKillGrace.
func (w *watchdog) fire(reason fired) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.reason != firedNone {
		return
	}
	w.reason = reason
	kd := make(chan struct{})
	w.killDone = kd
	go func() {
		defer close(kd)
		w.sh.kill(w.h)
	}()
	w.grace = time.AfterFunc(sshKillGrace, w.sh.abort)
}

// finish ends the watchdog's watch and waits for a kill in flight, so a
// late kill cannot hit the next command.
func (w *watchdog) finish() {
	w.mu.Lock()
	if w.reason == firedNone {
		w.reason = firedDone
	}
	kd := w.killDone
	w.mu.Unlock()
	w.disarm()
	if kd != nil {
		<-kd
	}
}

// disarm stops the timers and reports whether (why) the watchdog fired.
func (w *watchdog) disarm() fired {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.grace != nil {
		w.grace.Stop()
		w.grace = nil
	}
	return w.reason
}

// killScript is the kill helper's script for the persistent shell with pid
// pshell: the line that sets __pshell, then watchdog_kill.sh.
func killScript(pshell int) string {
	return "__pshell=" + strconv.Itoa(pshell) + "\n" + scriptBody(watchdogKillFile)
}

// kill kills the running command and its descendants from a helper
// session running as the same user (sudo included); if that fails the
// shell is torn down. No SSH "signal" request is used: sshd delivers it to
// the whole process group of the session, which the command shares with
// the shell, so the command could die before its children were found
// (and sshd refuses it on root logins anyway).
func (sh *pshell) kill(h *SSHHost) {
	if sh.pid <= 1 {
		// Not known (cannot happen: run reads the init frame before it
		// arms the watchdog): never let the script match ppid 0 or 1.
		sh.abort()
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), sshKillGrace)
	defer cancel()
	if _, err := h.helper(ctx, killScript(sh.pid)); err != nil {
		sh.abort()
	}
}

// helper runs a short sh script in its own session as the handle's
// identity (sudo included) and returns its output.
func (h *SSHHost) helper(ctx context.Context, script string) (Result, error) {
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	stdin, err := sess.StdinPipe()
	if err != nil {
		return Result{}, err
	}
	var stdout bytes.Buffer
	sess.Stdout = &stdout
	stderr, err := sess.StderrPipe()
	if err != nil {
		return Result{}, err
	}
	errs := newStream(stderr, false)
	cmd := "exec sh -c " + shell.Quote(script)
	var prompt, ready string
	if h.ident.sudo {
		prompt = "[opsmop-sudo-" + randHex(8) + "] "
		ready = "opsmop-ready-" + randHex(8)
		cmd = "exec " + sudoCommand(h.ident, !h.sudoPw.IsZero(), prompt, ready, script)
	}
	if err := sess.Start(cmd); err != nil {
		return Result{}, err
	}
	if h.ident.sudo {
		if err := h.sudoHandshake(ctx, errs, stdin, prompt, ready, h.connTO); err != nil {
			return Result{}, err
		}
	} else {
		errs.settle(0)
	}
	stdin.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	err = sess.Wait()
	res := Result{Stdout: stdout.Bytes(), Stderr: []byte(errs.tail())}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	return res, err
}
