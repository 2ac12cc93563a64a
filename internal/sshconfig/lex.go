package sshconfig

import (
	"errors"
	"strings"
)

// rawLine is one non-empty, non-comment line split the way OpenSSH's
// readconf.c splits it: the keyword (lowercased) and the rest of the line
// after the keyword separator (one '=' and/or whitespace), and that rest
// split into words by argv split rules.
type rawLine struct {
	pos     Pos
	keyword string   // lowercased
	rest    string   // text after the keyword and its separator (ProxyCommand/ProxyJump read it raw)
	args    []string // rest split into words; a word starting with '#' ends the line
}

// errBadQuotes is returned by splitArgs for an unterminated quote.
var errBadQuotes = errors.New("unterminated quote")

// trimLineEnd strips trailing whitespace and form feeds (this is what
// makes CRLF files read like LF files).
func trimLineEnd(s string) string {
	return strings.TrimRight(s, " \t\r\n\f")
}

// splitKeyword separates the keyword from the rest of the line as
// OpenSSH's strdelim does: the keyword ends at whitespace or '='; one '='
// (with whitespace around it) is the separator; a double quote inside the
// keyword is dropped and the keyword runs on to the next double quote. ok
// is false for an empty or comment line (and, as in OpenSSH, for a line
// whose keyword quote is never closed).
func splitKeyword(line string) (keyword, rest string, ok bool) {
	s := strings.TrimLeft(line, " \t\r\n")
	if s == "" || s[0] == '#' || s[0] == '=' {
		return "", "", false
	}
	i := strings.IndexAny(s, " \t\r\n\"=")
	if i < 0 {
		return s, "", true
	}
	if s[i] == '"' {
		j := strings.IndexByte(s[i+1:], '"')
		if j < 0 {
			return "", "", false
		}
		keyword = s[:i] + s[i+1:i+1+j]
		return keyword, strings.TrimLeft(s[i+2+j:], " \t\r\n"), keyword != ""
	}
	keyword, s = s[:i], s[i:]
	sawEq := s[0] == '='
	s = strings.TrimLeft(s[1:], " \t\r\n")
	if !sawEq && strings.HasPrefix(s, "=") {
		s = strings.TrimLeft(s[1:], " \t\r\n")
	}
	return keyword, s, true
}

// splitArgs splits s into words as OpenSSH's argv_split does with comment
// termination: words are separated by spaces and tabs; single and double
// quotes group (and are removed); a backslash escapes a quote, a backslash,
// or (outside quotes) a space, and is kept before any other character; a
// '#' that starts a word ends the line.
func splitArgs(s string) ([]string, error) {
	var args []string
	i := 0
	for i < len(s) {
		if s[i] == ' ' || s[i] == '\t' {
			i++
			continue
		}
		if s[i] == '#' {
			break
		}
		word, next, err := scanWord(s, i)
		if err != nil {
			return nil, err
		}
		args = append(args, word)
		i = next
	}
	return args, nil
}

// scanWord reads one word of s starting at i and returns it with the index
// just after it.
func scanWord(s string, i int) (string, int, error) {
	var b strings.Builder
	var quote byte
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && i+1 < len(s) && isEscapable(s[i+1], quote):
			i++
			b.WriteByte(s[i])
		case quote == 0 && (c == ' ' || c == '\t'):
			return b.String(), i, nil
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
		case quote != 0 && c == quote:
			quote = 0
		default:
			b.WriteByte(c)
		}
	}
	if quote != 0 {
		return "", i, errBadQuotes
	}
	return b.String(), i, nil
}

// isEscapable reports whether a backslash before c is an escape (and is
// dropped) rather than a literal backslash.
func isEscapable(c, quote byte) bool {
	return c == '\'' || c == '"' || c == '\\' || (quote == 0 && c == ' ')
}

// lexLine turns one physical line into a rawLine. ok is false for blank and
// comment lines. Errors are *Error at pos.
func lexLine(text string, pos Pos) (rawLine, bool, error) {
	text = trimLineEnd(text)
	kw, rest, ok := splitKeyword(text)
	if !ok {
		return rawLine{}, false, nil
	}
	kw = strings.ToLower(kw)
	if rest == "" {
		return rawLine{}, false, &Error{Pos: pos, Msg: "no argument after keyword \"" + kw + "\": give it a value or remove the line"}
	}
	args, err := splitArgs(rest)
	if err != nil {
		return rawLine{}, false, &Error{Pos: pos, Msg: "invalid quotes: close the quote opened on this line"}
	}
	return rawLine{pos: pos, keyword: kw, rest: rest, args: args}, true, nil
}
