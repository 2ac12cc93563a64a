package connection

import (
	"fmt"
	"time"
)

// Phases of an UnreachableError.
const (
	PhaseConnect   = "connect"   // TCP connect (or the jump host's forward) failed or timed out
	PhaseHandshake = "handshake" // SSH version/key exchange failed or timed out
	PhaseAuth      = "auth"      // no offered credential was accepted; Err is an *AuthError
	PhaseHostKey   = "hostkey"   // the host key is unknown or changed; Err is a *HostKeyError
	PhaseKeepalive = "keepalive" // an established connection stopped answering or was closed
)

// UnreachableError means the host could not be reached or the connection to
// it was lost: the engine reports such hosts as "unreachable", apart from
// hosts where a command failed. Err is the cause (a *HostKeyError when Phase
// is "hostkey", an *AuthError when it is "auth").
type UnreachableError struct {
	Host  string // inventory name
	Addr  string // host:port dialled
	Phase string // one of the Phase* constants
	Err   error
}

// Error says which host, where and why, with a hint what to check.
func (e *UnreachableError) Error() string {
	switch err := e.Err.(type) {
	case *HostKeyError:
		return err.Error()
	case *AuthError:
		return err.Error()
	}
	hint := ""
	switch e.Phase {
	case PhaseConnect:
		hint = "; check the address and port, that sshd runs there, and any jump host (opsmop_via)"
	case PhaseHandshake:
		hint = "; the peer did not complete the SSH handshake in time (is it an SSH server? raise connect_timeout for slow links)"
	case PhaseAuth:
		hint = "; check the user, the key (private_key, ssh-agent) or the password"
	case PhaseKeepalive:
		hint = "; the connection was lost"
	}
	return fmt.Sprintf("host %s (%s): %s: %v%s", e.Host, e.Addr, e.Phase, e.Err, hint)
}

// Unwrap returns the cause.
func (e *UnreachableError) Unwrap() error { return e.Err }

// Unreachable reports true: the engine counts such a host as unreachable,
// not failed, even when the connection dies in the middle of a run.
func (e *UnreachableError) Unreachable() bool { return true }

// HostKeyError is a host key that is not in known_hosts (Changed false) or
// that contradicts it (Changed true). A changed key is refused whatever the
// settings.
type HostKeyError struct {
	Host        string // inventory name
	Addr        string // host:port as looked up in known_hosts
	Fingerprint string // SHA256:... of the key the host presented
	Changed     bool
	// Known is the fingerprint known_hosts holds (Changed only).
	Known string
	// KnownHostsFile is where a new key would be recorded (unknown), or
	// FILE:LINE of the contradicting entry (changed).
	KnownHostsFile string
}

// Error says what is wrong with the key and what to do about it.
func (e *HostKeyError) Error() string {
	if e.Changed {
		return fmt.Sprintf("host %s (%s): HOST KEY CHANGED: known_hosts says %s, the host presents %s; this could be an attack. opsmop refuses to connect whatever the settings; if the change is legitimate remove the old line from %s",
			e.Host, e.Addr, e.Known, e.Fingerprint, e.KnownHostsFile)
	}
	return fmt.Sprintf("host %s (%s): unknown host key %s; verify it, then run with --accept-new-host-keys to record it in %s, or set check_host_keys = false",
		e.Host, e.Addr, e.Fingerprint, e.KnownHostsFile)
}

// SudoErrorKind says why becoming another user failed.
type SudoErrorKind int

// The kinds of SudoError.
const (
	SudoWrongPassword    SudoErrorKind = iota + 1 // sudo asked again after the password was given
	SudoPasswordRequired                          // sudo wants a password and none is configured
	SudoRefused                                   // sudo refused (not in sudoers, requiretty, no sudo, ...)
	SudoTimeout                                   // sudo did not answer within connect_timeout
	SudoNeedsTTY                                  // sudoers says requiretty: start sudo again with a pty
)

// SudoError means the persistent shell (or the SFTP server) could not be
// started under sudo. It never contains the password.
type SudoError struct {
	Host     string // inventory name
	User     string // the login user running sudo
	SudoUser string // the user to become
	Kind     SudoErrorKind
	// Detail is what sudo printed (refused) or other context; never a password.
	Detail string
}

// Error says why sudo failed and what to do; never the password.
func (e *SudoError) Error() string {
	switch e.Kind {
	case SudoWrongPassword:
		return fmt.Sprintf("wrong sudo password for %s on %s", e.User, e.Host)
	case SudoPasswordRequired:
		return fmt.Sprintf("sudo requires a password for %s on %s but none was given: use -K or opsmop_sudo_password", e.User, e.Host)
	case SudoTimeout:
		return fmt.Sprintf("sudo to %s as %s on %s did not answer in time (%s); check sudoers or raise connect_timeout", e.SudoUser, e.User, e.Host, e.Detail)
	case SudoNeedsTTY:
		return fmt.Sprintf("sudo to %s as %s on %s requires a terminal (sudoers requiretty): %s", e.SudoUser, e.User, e.Host, e.Detail)
	}
	return fmt.Sprintf("sudo to %s as %s on %s refused: %s", e.SudoUser, e.User, e.Host, e.Detail)
}

// TimeoutError means a command ran longer than command_timeout (or the
// context deadline) and was killed (its whole process group).
type TimeoutError struct {
	Host    string
	Timeout time.Duration // 0 when the context deadline struck first
}

// Error names the host and the timeout.
func (e *TimeoutError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("host %s: command exceeded command_timeout (%s) and was killed", e.Host, e.Timeout)
	}
	return fmt.Sprintf("host %s: command exceeded the deadline and was killed", e.Host)
}

// SessionLimitError means sshd refused to open a session on the
// connection and none of the sessions opsmop held could be closed to make
// room: most likely sshd's MaxSessions is lower than what the run needs
// (one session per identity in use, one more while a timed-out command is
// killed; uploads take one more when the limit allows, else they go
// through the persistent shell).
type SessionLimitError struct {
	Host string // inventory name
	// Held is how many sessions opsmop held on the connection when sshd
	// refused; Limit the limit learned from earlier refusals (0 = not
	// known).
	Held, Limit int
	// Purpose is what the session was for ("a session", "an SFTP client").
	Purpose string
	Err     error // sshd's refusal; nil when the learned limit ruled it out
}

// Error names sshd's MaxSessions as the likely cause and what to do.
func (e *SessionLimitError) Error() string {
	why := ""
	if e.Err != nil {
		why = fmt.Sprintf(" (%v)", e.Err)
	}
	return fmt.Sprintf("host %s: sshd refused to open %s while opsmop holds %d session(s) on the connection%s and none could be closed to make room: "+
		"sshd's MaxSessions is the likely cause: raise it in the host's sshd_config (opsmop needs one session per identity, login user and each sudo user, one more to kill a command that timed out, and uses one more per identity for SFTP when allowed; sshd's default is 10), or use fewer identities on this host",
		e.Host, e.Purpose, e.Held, why)
}

// Unwrap returns sshd's refusal.
func (e *SessionLimitError) Unwrap() error { return e.Err }

// SFTPNoiseError means the SFTP server's output did not start with the
// SFTP version packet: Bytes bytes came first, almost always written by
// the login shell's dotfiles (sshd starts the sftp-server subsystem
// through the user's login shell). Uploads then go through the persistent
// shell; this error is seen only when that is not possible either.
type SFTPNoiseError struct {
	Host   string // inventory name
	Bytes  int    // bytes seen before the version packet (or before giving up)
	Sample string // the first of them
	// Started is true when opsmop's starter had already exec'd the
	// sftp-server binary (its marker was seen), so the bytes are that
	// program's, not the dotfiles'.
	Started bool
}

// Error says what the bytes are most likely from and how to silence them.
// It does not repeat the host: it is the cause in an upload's error.
func (e *SFTPNoiseError) Error() string {
	if e.Started {
		return fmt.Sprintf("sftp-server answered %d bytes that are not an SFTP version packet (%q): the program found as sftp-server is not an SFTP server", e.Bytes, e.Sample)
	}
	return fmt.Sprintf("sftp-server printed %d bytes before the SFTP version (%q): your login shell's dotfiles write to stdout; "+
		"print only in interactive shells (bash/zsh: [ -t 1 ] or case $- in *i*; fish: status is-interactive; tcsh: if ($?prompt)) or write to stderr",
		e.Bytes, e.Sample)
}
