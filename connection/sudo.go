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
// shell sudo started, so we know authentication is over.
func sudoCommand(id identity, havePassword bool, prompt, ready, inner string) string {
	cmd := "sudo -S -p " + shell.Quote(prompt)
	if !havePassword {
		cmd += " -n"
	}
	cmd += " -u " + shell.Quote(id.user) + " -- sh -c " +
		shell.Quote("printf %s "+shell.Quote(ready)+" >&2; "+inner)
	return cmd
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
