package policy

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// String formats the position as "file:line", or just "file" when the line
// is unknown (0).
func (p Pos) String() string {
	if p.Line <= 0 {
		return p.File
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Error is one problem in a policy file: where it is (Pos), which key it is
// about (Path, e.g. "roles[0].resources[2].mode"; "" for the top level) and
// what is wrong (Msg).
type Error struct {
	Pos  Pos
	Path string
	Msg  string
}

// Error formats the problem as "file:line: path: msg", leaving out the
// parts that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in a policy, in file then line order.
// It implements error; a nil or empty list means no problem, but callers
// must use Err to turn a list into an error value (a nil ErrorList stored
// in an error interface is not a nil error).
type ErrorList []*Error

// Error prints one problem per line.
func (l ErrorList) Error() string {
	if len(l) == 0 {
		return "no errors"
	}
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Err returns nil for an empty list and the sorted list otherwise.
func (l ErrorList) Err() error {
	if len(l) == 0 {
		return nil
	}
	l.Sort()
	return l
}

// Sort orders the list by file, then line; problems on the same line keep
// the order in which they were found.
func (l ErrorList) Sort() {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i].Pos, l[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

// add appends a problem.
func (l *ErrorList) add(pos Pos, path, format string, args ...any) {
	*l = append(*l, &Error{Pos: pos, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// leadingZeroRE matches a number written with a leading zero: 0750, -0750,
// 00.5, 0_7. TOML and JSON refuse such numbers, and YAML 1.1 and 1.2
// disagree about them (octal 488 or decimal 750?).
var leadingZeroRE = regexp.MustCompile(`^[-+]?0[0-9_]`)

// numberRE matches a decimal integer or float as TOML and YAML spell them
// (digits, underscores, a fraction, an exponent).
var numberRE = regexp.MustCompile(`^[-+]?[0-9_]+(\.[0-9_]+)?([eE][-+]?[0-9_]+)?$`)

// leadingZeroAdvice says what to write instead of text, a value with a
// leading zero, as the value of key (written key + sep + value; key "" for
// a list item): `quote it: mode = "0750" (for a number, write 750, or
// 0o750 in octal)`. Quoting comes first because such values are file
// modes nearly always; the alternatives are offered when text is a number.
func leadingZeroAdvice(key, sep, text string) string {
	q := strconv.Quote(text)
	if key != "" {
		q = key + sep + q
	}
	advice := "quote it: " + q
	if !numberRE.MatchString(text) {
		return advice
	}
	sign, digits := "", text
	if text[0] == '+' || text[0] == '-' {
		sign, digits = text[:1], text[1:]
	}
	if sign == "+" {
		sign = ""
	}
	dec := strings.TrimLeft(digits, "0_")
	if dec == "" || dec[0] == '.' || dec[0] == 'e' || dec[0] == 'E' {
		dec = "0" + dec
	}
	alt := sign + dec
	if dec != "0" && strings.Trim(digits, "01234567_") == "" {
		alt += ", or " + sign + "0o" + dec + " in octal"
	}
	return advice + " (for a number, write " + alt + ")"
}
