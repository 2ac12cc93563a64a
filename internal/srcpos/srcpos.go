// Package srcpos is the one way opsmop turns places in a source file into
// line numbers: Lines maps byte offsets to lines, and TOMLKey and
// TOMLKeys find the line where each key of a TOML document is written.
// The policy, inventory and defaults-file parsers all use it, so the same
// key is reported at the same line whichever reads it.
package srcpos

import (
	"bytes"
	"sort"

	"github.com/pelletier/go-toml/v2/unstable"
)

// Lines indexes the lines of a text, so that a byte offset turns into a
// 1-based line number in O(log lines). (go-toml's Parser.Shape counts
// lines from the start of the document on every call: quadratic over a
// large document.)
type Lines struct {
	starts []int // offset of each line's first byte
	size   int
}

// NewLines indexes text.
func NewLines(text []byte) *Lines {
	starts := []int{0}
	for i, c := range text {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return &Lines{starts: starts, size: len(text)}
}

// Count returns the number of lines: one more than the number of
// newlines (an empty text has one, empty, line).
func (l *Lines) Count() int { return len(l.starts) }

// Line returns the 1-based line holding byte off. An offset before the
// text is on line 1, one past its end on the last line.
func (l *Lines) Line(off int) int {
	off = min(max(off, 0), l.size)
	return sort.Search(len(l.starts), func(i int) bool { return l.starts[i] > off })
}

// Start returns the offset of the first byte of line (1-based, at most
// Count).
func (l *Lines) Start(line int) int { return l.starts[line-1] }

// End returns the offset just past line n, its newline included: the
// first n lines of the text are text[:End(n)]. For n >= Count it is the
// length of the text.
func (l *Lines) End(n int) int {
	if n >= len(l.starts) {
		return l.size
	}
	return l.starts[n]
}

// LineAt returns the 1-based line holding byte off of text, as
// NewLines(text).Line(off) does, without building an index: for one
// lookup (an error's position).
func LineAt(text []byte, off int) int {
	off = min(max(off, 0), len(text))
	return bytes.Count(text[:off], []byte("\n")) + 1
}

// KeyPart is one part of a TOML key (a.b.c has three), with the line
// where it is written.
type KeyPart struct {
	Name string
	Line int
}

// TOMLKey returns the parts of the key of e, a [table] or [[array table]]
// header or a key = value expression from go-toml's unstable parser run
// over the text l indexes.
func (l *Lines) TOMLKey(e *unstable.Node) []KeyPart {
	var parts []KeyPart
	it := e.Key()
	for it.Next() {
		k := it.Node()
		parts = append(parts, KeyPart{Name: string(k.Data), Line: l.Line(int(k.Raw.Offset))})
	}
	return parts
}

// TOMLKeys parses a TOML document and calls f for every key it writes, in
// document order: each [table] and [[array table]] header (value nil), and
// each key = value, inline tables' included (value the value's node). path
// is the key's full path from the root of the document, the current
// table's path included (the items of an array of tables are not told
// apart); line is where the key's last part is written. f must not keep
// path or value. TOMLKeys stops silently at a syntax error: it is for
// positions in a document that a decoder checks.
func TOMLKeys(text []byte, f func(path []string, line int, value *unstable.Node)) {
	lines := NewLines(text)
	var keyval func(base []string, kv *unstable.Node)
	keyval = func(base []string, kv *unstable.Node) {
		parts := lines.TOMLKey(kv)
		path := append(base[:len(base):len(base)], names(parts)...)
		v := kv.Value()
		f(path, parts[len(parts)-1].Line, v)
		if v.Kind == unstable.InlineTable {
			it := v.Children()
			for it.Next() {
				if c := it.Node(); c.Kind == unstable.KeyValue {
					keyval(path, c)
				}
			}
		}
	}
	var table []string
	var p unstable.Parser
	p.Reset(text)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts := lines.TOMLKey(e)
			table = names(parts)
			f(table, parts[len(parts)-1].Line, nil)
		case unstable.KeyValue:
			keyval(table, e)
		}
	}
}

func names(parts []KeyPart) []string {
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = p.Name
	}
	return out
}
