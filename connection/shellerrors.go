package connection

import (
	"fmt"
	"strings"
)

// ShellStartError means opsmop's persistent shell could not be set up on
// the host for a reason the host must fix, such as no writable temporary
// directory for the login (or become) user. No command ran; the host is
// failed rather than driven another way.
type ShellStartError struct {
	Host   string // inventory name
	User   string // the user the shell runs as
	Reason string // what the shell's start-up script reported
	Stderr string // the shell's stderr (login-script noise included), trimmed
}

// Error says what failed and what to do about it.
func (e *ShellStartError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s: cannot start opsmop's shell", e.Host)
	if e.User != "" {
		fmt.Fprintf(&b, " as %s", e.User)
	}
	fmt.Fprintf(&b, ": %s", e.Reason)
	if strings.HasPrefix(e.Reason, "no writable temp directory") {
		b.WriteString("; make /tmp writable for this user (mode 1777) or set TMPDIR to a writable directory in its environment")
	}
	if e.Stderr != "" {
		fmt.Fprintf(&b, " (stderr: %q)", e.Stderr)
	}
	return b.String()
}

// UnprovenError means a command sent through the login shell (the
// fallback for hosts where opsmop's persistent shell cannot run) gave no
// proof that it ran: the random start and end markers opsmop wraps every
// such command in were not both in its output. The command may or may not
// have run; its result is not trusted, whatever the exit status.
type UnprovenError struct {
	Host string // inventory name
	// Why is why the persistent shell could not be used on the host.
	Why string
	// Exit is how the login shell's session ended ("exit status 0", ...).
	Exit string
	// Stdout and Stderr are what the login shell printed, trimmed.
	Stdout, Stderr string
}

// Error says that the command cannot be proven to have run and shows what
// the login shell said instead.
func (e *UnprovenError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s: the command could not be proven to run through the login shell (opsmop's markers were missing from its output", e.Host)
	if e.Exit != "" {
		fmt.Fprintf(&b, "; the login shell ended with %s", e.Exit)
	}
	b.WriteString(")")
	if e.Why != "" {
		fmt.Fprintf(&b, "; opsmop's shell could not start either: %s", e.Why)
	}
	fmt.Fprintf(&b, "; stdout: %q; stderr: %q; the login shell must run `/bin/sh -c` command lines (check the user's shell, /etc/shells and /bin/sh)", e.Stdout, e.Stderr)
	return b.String()
}

// KillError means a command outlived command_timeout (or its context's
// deadline) and could not be killed cleanly: the kill helper failed or the
// command did not end within the grace period after it, so the shell was
// torn down (and, where sshd allows it, sent SIGKILL through the SSH
// channel). Processes of the command may still run on the host. It
// unwraps to the *TimeoutError.
type KillError struct {
	Timeout *TimeoutError
	// Cause says what went wrong with the kill.
	Cause string
}

// Error names the timeout and why the kill was not clean.
func (e *KillError) Error() string {
	return fmt.Sprintf("%s; the kill did not end it cleanly (%s): the shell was torn down and some of its processes may still run on the host", e.Timeout.Error(), e.Cause)
}

// Unwrap returns the *TimeoutError.
func (e *KillError) Unwrap() error { return e.Timeout }

// shortText trims s and keeps at most its last n bytes, for error messages
// that quote what a remote shell printed.
func shortText(s string, n int) string {
	s = strings.TrimSpace(s)
	if len(s) > n {
		s = "..." + s[len(s)-n:]
	}
	return s
}
