package policy

import (
	"fmt"
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
