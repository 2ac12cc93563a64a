// Package shell builds POSIX sh command lines. Quote is the one function
// through which every value that reaches a remote shell passes.
package shell

import "strings"

// Quote returns s as a single POSIX sh word that expands to exactly the
// bytes of s: it is wrapped in single quotes and every single quote inside
// is written as close-quote, backslash-quote, open-quote. Any byte
// sequence, including newlines, NUL-free binary and non-UTF-8 bytes,
// round-trips. (A NUL byte cannot appear in an argv at all;
// callers that may see one must reject it before building a command.)
func Quote(s string) string {
	if s == "" {
		return "''"
	}
	if isSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Join quotes every word and joins them with spaces.
func Join(words ...string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = Quote(w)
	}
	return strings.Join(q, " ")
}

// isSafe reports whether s needs no quoting: only characters that sh never
// treats specially, and not starting with a character that could make it
// something other than a plain word (~ for tilde expansion, = is harmless
// only after the first character but we stay conservative).
func isSafe(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-' || c == '_' || c == '.' || c == '/' || c == ',' || c == ':' || c == '@' || c == '%' || c == '+':
		default:
			return false
		}
	}
	return true
}
