package shell

import (
	"fmt"
	"strings"
)

// MaxLoginLine is the longest line LoginLine returns: Linux limits one
// argument of a process to 128 KiB, and the line is one argument of the
// login shell (its -c argument) and of sh.
const MaxLoginLine = 128*1024 - 1

// LoginLine returns a command line that runs script with /bin/sh and that
// every login shell a target may have parses the same way: sh, dash,
// bash, zsh, ksh, busybox ash, fish, csh and tcsh. sshd hands a command
// to the user's login shell (`$SHELL -c LINE`), so a POSIX script cannot
// be sent as it is: fish and csh have their own syntax, and tcsh rejects
// a newline inside quotes.
//
// The line is one line: exec /bin/sh -c 'eval "$(printf "...")"'. Every
// byte of script outside [A-Za-z0-9 ._,:/=+@-] is written as a printf
// octal escape (\NNN, a backslash followed by a digit, which fish and
// csh keep inside single quotes), so the single-quoted text holds no
// quote, no newline, no $, no backquote, no ! and no other backslash. The
// script's trailing newlines are dropped (command substitution). It
// returns an error when the line would be longer than MaxLoginLine.
func LoginLine(script string) (string, error) {
	var b strings.Builder
	b.WriteString(`exec /bin/sh -c 'eval "$(printf "`)
	for i := 0; i < len(script); i++ {
		c := script[i]
		if loginSafe(c) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, `\%03o`, c)
	}
	b.WriteString(`")"'`)
	if b.Len() > MaxLoginLine {
		return "", fmt.Errorf("command too long to pass through the login shell (%d bytes encoded, at most %d)", b.Len(), MaxLoginLine)
	}
	return b.String(), nil
}

// loginSafe reports whether c means itself in every login shell's single
// quotes and in sh's double quotes and printf's format.
func loginSafe(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte(" ._,:/=+@-", c) >= 0
}
