package connection

// Killing a command that outlives command_timeout or its context (see the
// specification in protocol.go): the watchdog of a run fires, the kill
// helper (watchdog_kill.sh, in a session of its own, sent through the
// login shell as a shell.LoginLine) kills the command's process tree and
// proves it ran with a random marker, and the shell is torn down (after an
// SSH "signal" KILL) if the helper fails or the command does not end in
// time. The run's read then returns at once, with a *KillError.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/shell"
)

// killBound is how long the kill helper may take (opening its session,
// sudo, the script) before the shell is torn down instead; sshKillGrace is
// how long after the watchdog fires the command may take to end before
// the same. Together they bound how long a run waits for a command past
// its timeout, whatever the host does.
const (
	killBound    = 4 * time.Second
	sshKillGrace = 5 * time.Second
)

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
	// torn is why the watchdog tore the shell down ("" if it did not):
	// the kill helper failed or the command outlived the grace period.
	torn string
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
// do nothing). The shell is torn down if the kill helper fails or the
// command has not ended sshKillGrace after this.
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
		if err := w.sh.kill(w.h); err != nil {
			w.tearDown("kill helper: " + err.Error())
		}
	}()
	w.grace = time.AfterFunc(sshKillGrace, func() {
		w.tearDown(fmt.Sprintf("the command had not ended %s after the timeout", sshKillGrace))
	})
}

// tearDown records why and tears the shell down (SSH signal, then abort).
func (w *watchdog) tearDown(why string) {
	w.mu.Lock()
	if w.torn == "" {
		w.torn = why
	}
	w.mu.Unlock()
	w.sh.killAbort()
}

// err is the error of a run whose read failed after the watchdog fired
// for reason: a *TimeoutError (a *KillError when the watchdog had to tear
// the shell down) or ctx's error; nil when it did not fire.
func (w *watchdog) err(ctx context.Context, reason fired) error {
	var te *TimeoutError
	switch reason {
	case firedTimeout:
		te = &TimeoutError{Host: w.h.name, Timeout: w.h.cmdTO}
	case firedCtx:
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return ctx.Err()
		}
		te = &TimeoutError{Host: w.h.name}
	default:
		return nil
	}
	w.mu.Lock()
	torn := w.torn
	w.mu.Unlock()
	if torn != "" {
		return &KillError{Timeout: te, Cause: torn}
	}
	return te
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
// pshell: the lines that set __pshell and __opsmop_ok (the proof marker),
// then watchdog_kill.sh, which ends by printing __opsmop_ok "-killed".
func killScript(pshell int, ok string) string {
	return "__pshell=" + strconv.Itoa(pshell) + "\n__opsmop_ok=" + ok + "\n" + scriptBody(watchdogKillFile)
}

// kill kills the running command and its descendants from a helper
// session running as the same user (sudo included). It returns an error,
// after at most killBound, when the helper could not be run (no session:
// sshd's MaxSessions; sudo failing), did not finish in time or gave no
// proof it ran; the caller then tears the shell down. No SSH "signal"
// request is used first: sshd delivers it to the whole process group of
// the session, which the command shares with the shell, so the command
// could die before its children were found (and sshd refuses it on root
// logins anyway).
func (sh *pshell) kill(h *SSHHost) error {
	if sh.pid <= 1 {
		// Not known (cannot happen: run reads the init frame before it
		// arms the watchdog): never let the script match ppid 0 or 1.
		return errors.New("the shell's pid is not known")
	}
	ctx, cancel := context.WithTimeout(context.Background(), killBound)
	defer cancel()
	ok := "opsmop-" + randHex(8)
	done := make(chan error, 1)
	go func() {
		res, err := h.helper(ctx, killScript(sh.pid, ok))
		if err == nil && !bytes.Contains(res.Stdout, []byte(ok+"-killed\n")) {
			err = fmt.Errorf("no proof that it ran (exit status %d, stdout %q, stderr %q)", res.ExitCode, shortText(string(res.Stdout), 512), shortText(string(res.Stderr), 512))
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		// The helper may be stuck in a request sshd does not answer;
		// its goroutine ends with the connection.
		return fmt.Errorf("it did not finish within %s", killBound)
	}
}

// helper runs a short sh script in its own session as the handle's
// identity (sudo included) and returns its output. The command line goes
// through the login shell as a shell.LoginLine (under sudo, sudoLine's),
// so fish, tcsh and csh run it as sh does. It ends when ctx does.
func (h *SSHHost) helper(ctx context.Context, script string) (Result, error) {
	cmd, err := shell.LoginLine(script)
	var prompt, ready string
	if h.ident.sudo {
		prompt = "[opsmop-sudo-" + randHex(8) + "] "
		ready = "opsmop-ready-" + randHex(8)
		cmd, err = h.sudoExecLine(prompt, ready, script)
	}
	if err != nil {
		return Result{}, err
	}
	sess, release, err := h.c.openSession(ctx)
	if err != nil {
		return Result{}, err
	}
	defer release()
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
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
	err = sess.Wait()
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	res := Result{Stdout: stdout.Bytes(), Stderr: []byte(errs.tail())}
	var ee *ssh.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitStatus()
		return res, nil
	}
	return res, err
}
