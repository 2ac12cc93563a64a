package connection

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/shell"
)

// sudoCommand returns the command line that starts inner (a sh script, no
// secrets in it) as the identity's user: sudo -S with a random prompt so we
// know when a password is asked, -n when no password is configured so it
// fails fast instead of waiting, and a ready marker on stderr printed by the
// shell sudo started, so we know authentication is over. It is POSIX sh:
// callers that send it through the login shell wrap it with sudoLine.
func sudoCommand(id identity, havePassword bool, prompt, ready, inner string) string {
	cmd := "sudo -S -p " + shell.Quote(prompt)
	if !havePassword {
		cmd += " -n"
	}
	cmd += " -u " + shell.Quote(id.user) + " -- sh -c " +
		shell.Quote("printf %s "+shell.Quote(ready)+" >&2; "+inner)
	return cmd
}

// noScriptMsg is what a host with requiretty but without script(1) prints
// (and what the SudoError then says).
const noScriptMsg = "opsmop: sudo requires a terminal (requiretty) and script(1) is missing: install util-linux (bsdutils on Debian) or allow this user sudo without requiretty (Defaults:USER !requiretty)"

// sudoTTYScript returns a sh script that runs the sudo command line cmd
// with a pseudo-terminal as its controlling terminal, for hosts whose
// sudoers say requiretty. script(1) provides the terminal; sudo's stdin,
// stdout and stderr stay the session's own (moved through fds 3-5), so
// the password is still written to sudo -S's stdin (never echoed by a
// terminal), the prompt and ready marker still arrive on stderr, and the
// shell's frames on stdout as usual. What the terminal shows goes to
// /dev/null.
func sudoTTYScript(cmd string) string {
	inner := "exec " + cmd + " <&3 >&4 2>&5 3<&- 4>&- 5>&-"
	return "command -v script >/dev/null 2>&1 || { printf '%s\n' " + shell.Quote(noScriptMsg) + " >&2; exit 127; }; " +
		"SHELL=/bin/sh; export SHELL; exec script -qc " + shell.Quote(inner) + " /dev/null 3<&0 4>&1 5>&2 </dev/null >/dev/null"
}

// sudoLine returns the exec request's command line that runs inner (a sh
// script) as the identity's user under sudo, safe for any login shell (see
// shell.LoginLine); tty starts sudo with a pseudo-terminal (sudoTTYScript).
func sudoLine(id identity, havePassword, tty bool, prompt, ready, inner string) (string, error) {
	script := "exec " + sudoCommand(id, havePassword, prompt, ready, inner)
	if tty {
		script = sudoTTYScript(sudoCommand(id, havePassword, prompt, ready, inner))
	}
	return shell.LoginLine(script)
}

// needsTTY reports whether err is sudo refusing for want of a terminal
// (sudoers requiretty): the caller remembers it for the connection and
// starts sudo again with sudoTTYScript.
func needsTTY(err error) bool {
	var se *SudoError
	return errors.As(err, &se) && se.Kind == SudoNeedsTTY
}

// requiresTTY reports whether sudo's output says it wants a terminal.
func requiresTTY(text string) bool {
	return strings.Contains(text, "must have a tty") || strings.Contains(text, "a terminal is required")
}

// sudoHandshake waits for sudo to be done: it writes the password once to
// sudo's stdin when the prompt appears, fails on a second prompt (wrong
// password) and returns when the ready marker appears. Bounded by timeout.
func (h *SSHHost) sudoHandshake(ctx context.Context, pump *stream, stdin io.Writer, prompt, ready string, timeout time.Duration) error {
	serr := func(kind SudoErrorKind, detail string) error {
		return &SudoError{Host: h.name, User: h.c.user, SudoUser: h.ident.user, Kind: kind, Detail: detail}
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	pw := h.sudoPw
	sent := false
	for {
		buf, eof := pump.snapshot()
		if i := bytes.Index(buf, []byte(ready)); i >= 0 {
			pump.settle(i + len(ready))
			return nil
		}
		prompts := bytes.Count(buf, []byte(prompt))
		switch {
		case prompts >= 2:
			return serr(SudoWrongPassword, "")
		case prompts == 1 && !sent:
			if pw.IsZero() {
				return serr(SudoPasswordRequired, "")
			}
			if err := writePassword(stdin, pw); err != nil {
				return err
			}
			sent = true
		case bytes.Contains(buf, []byte("a password is required")):
			return serr(SudoPasswordRequired, "")
		case eof:
			text := strings.TrimSpace(strings.ReplaceAll(string(buf), prompt, ""))
			if sent && strings.Contains(text, "incorrect password") {
				return serr(SudoWrongPassword, "")
			}
			if text == "" {
				text = "sudo exited without a message (is sudo installed?)"
			}
			if requiresTTY(text) && !strings.Contains(text, "script(1) is missing") {
				return serr(SudoNeedsTTY, text)
			}
			return serr(SudoRefused, text)
		}
		select {
		case <-pump.notify:
		case <-timer.C:
			return serr(SudoTimeout, "waited "+timeout.String())
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func writePassword(w io.Writer, pw secret.Secret) error {
	v := pw.Reveal()
	if strings.ContainsAny(v, "\n\r") {
		return errors.New("sudo password contains a newline, which sudo cannot read")
	}
	b := make([]byte, 0, len(v)+1)
	b = append(b, v...)
	b = append(b, '\n')
	_, err := w.Write(b)
	for i := range b {
		b[i] = 0
	}
	if err != nil {
		return errors.New("writing the sudo password to sudo's stdin failed")
	}
	return nil
}
