package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/opsmop/opsmop/internal/kind"
	"github.com/opsmop/opsmop/internal/srcpos"
	"github.com/opsmop/opsmop/internal/yamlsafe"
)

// ParseYAML parses one YAML (or JSON) document into a Node tree, with
// package internal/yamlsafe: aliases are expanded (each use is a copy
// carrying the anchor's positions) and merge keys (<<) are applied,
// explicit keys winning; documents that would expand to more than
// MaxNodes nodes or nest deeper than MaxDepth are refused before anything
// is built. Duplicate keys, non-scalar keys, a second merge key in one
// map, unsupported tags, numbers written with a leading zero (0750: octal to
// YAML 1.1, decimal to YAML 1.2) and a second document are errors; a
// syntax error is reported at the line of the offending text. An empty
// document is an empty map. Timestamps stay strings as written.
func ParseYAML(file string, data []byte) (*Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return &Node{Kind: Map, Pos: Pos{File: file, Line: 1}}, nil
		}
		return nil, yamlError(file, data, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, ErrorList{{Pos: Pos{File: file, Line: extra.Line}, Msg: "a second YAML document starts here; a policy file holds exactly one (remove the ---)"}}
	case !errors.Is(err, io.EOF):
		return nil, yamlError(file, data, err)
	}
	n, err := yamlsafe.Convert[*Node](&doc, yamlBuilder{file: file}, yamlsafe.Limits{MaxValues: MaxNodes, MaxDepth: MaxDepth})
	if err != nil {
		errs, _ := err.(yamlsafe.Errors) // what Convert returns
		list := make(ErrorList, len(errs))
		for i, e := range errs {
			list[i] = &Error{Pos: Pos{File: file, Line: e.Line}, Path: pathString(e.Path), Msg: e.Msg}
		}
		return nil, list.Err()
	}
	if n == nil || n.Kind == Null {
		line := 1
		if n != nil {
			line = n.Pos.Line
		}
		return &Node{Kind: Map, Pos: Pos{File: file, Line: line}}, nil
	}
	return n, nil
}

var yamlLineRE = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)

// yamlError turns a yaml syntax error into an ErrorList at the line of
// the offending text.
//
// The line yaml.v3 reports is not that line: it is the line of the
// enclosing construct when there is one (the block sequence that starts
// lines before a mis-indented key), counted from 0 for parser errors, and
// absent for some errors (an unknown alias, a bad byte). It is never after
// the offending line, though, and a YAML parser reads left to right: the
// first lines of the file, cut before the offending line, parse without
// that error, and cut after it, fail with it. So the line is the first L,
// at or after yaml's, such that the file's first L lines fail with the
// same message, found by bisection (a few parses of prefixes, each
// stopping at its error).
func yamlError(file string, data []byte, err error) error {
	msg := err.Error()
	line := 0
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if l := yamlErrorLine(data, msg, line); l > 0 {
		line = l
	}
	return ErrorList{{Pos: Pos{File: file, Line: line}, Msg: "invalid YAML: " + msg + yamlHint(msg)}}
}

// yamlHint says what to do about the commonest yaml syntax errors ("" for
// the others), given at the line yamlErrorLine finds.
func yamlHint(msg string) string {
	switch {
	case strings.Contains(msg, "tab character"):
		return " (indent with spaces, not tabs)"
	case msg == "did not find expected key", msg == "did not find expected '-' indicator":
		return " (check this line's indentation: it must line up with the keys or - items it belongs with)"
	case msg == "mapping values are not allowed in this context":
		return " (check this line's indentation, or quote a value that contains \": \")"
	case msg == "found unexpected end of stream":
		return " (a quoted string opened on this line is never closed)"
	case strings.HasPrefix(msg, "did not find expected ',' or "):
		return " (a [ or { opened here is not closed, or a comma is missing)"
	}
	return ""
}

// yamlErrorLine returns the first line L >= from (and >= 1) such that the
// first L lines of data fail to parse with msg (data itself does), or 0
// when from is past the end or finding L would parse more than
// yamlSearchBudget bytes (a file of megabytes erring near its end).
func yamlErrorLine(data []byte, msg string, from int) int {
	lines := srcpos.NewLines(data)
	// Invariant: the first hi lines fail with msg (all of them do: that
	// is the error being located).
	lo, hi := max(from, 1), lines.Count()
	if lo > hi {
		return 0
	}
	budget := yamlSearchBudget
	for lo < hi {
		mid := lo + (hi-lo)/2
		p := data[:lines.End(mid)]
		if budget -= len(p); budget < 0 {
			return 0
		}
		if yamlFailure(p) == msg {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return hi
}

// yamlSearchBudget bounds the bytes yamlErrorLine parses: files of up to
// a few hundred KB always get their exact line.
const yamlSearchBudget = 8 << 20

// yamlFailure parses data as ParseYAML does (a document, then whether
// another follows) and returns the syntax error's message without yaml's
// line, or "" when there is none.
func yamlFailure(data []byte) string {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range 2 {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return ""
			}
			msg := err.Error()
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				msg = m[2]
			}
			return msg
		}
	}
	return ""
}

// yamlBuilder makes the Node tree of a policy file for yamlsafe.Convert,
// which expands aliases and merge keys and checks keys and limits.
type yamlBuilder struct{ file string }

func (b yamlBuilder) pos(n *yaml.Node) Pos { return Pos{File: b.file, Line: n.Line} }

// Key spells a key as written.
func (yamlBuilder) Key(k *yaml.Node) (string, error) { return k.Value, nil }

// List makes a List node.
func (b yamlBuilder) List(n *yaml.Node, items []*Node) *Node {
	return &Node{Kind: List, Pos: b.pos(n), Items: items}
}

// Map makes a Map node, its entries in the order given.
func (b yamlBuilder) Map(n *yaml.Node, entries []yamlsafe.Entry[*Node]) *Node {
	m := &Node{Kind: Map, Pos: b.pos(n)}
	for _, e := range entries {
		m.Entries = append(m.Entries, Entry{Key: e.Key, KeyPos: b.pos(e.KeyNode), Value: e.Value})
	}
	return m
}

// Scalar makes a scalar node as its YAML 1.2 tag says; timestamps stay
// strings. A bad value is a Null node and an error.
func (b yamlBuilder) Scalar(n *yaml.Node, path yamlsafe.Path) (*Node, error) {
	pos := b.pos(n)
	null := &Node{Kind: Null, Pos: pos}
	bad := func(what string) (*Node, error) {
		return null, fmt.Errorf("%s %s", what, strconv.Quote(kind.Truncate(n.Value, kind.MaxShown)))
	}
	tag := n.ShortTag()
	if (tag == "!!int" || tag == "!!float") && leadingZeroRE.MatchString(n.Value) {
		return null, leadingZero(n, tag, path)
	}
	switch tag {
	case "!!null":
		return null, nil
	case "!!str", "!!timestamp":
		return &Node{Kind: String, Value: n.Value, Pos: pos}, nil
	case "!!bool":
		var v bool
		if err := n.Decode(&v); err != nil {
			return bad("invalid boolean")
		}
		return &Node{Kind: Bool, Value: v, Pos: pos}, nil
	case "!!int":
		var v any
		if err := n.Decode(&v); err != nil {
			return bad("invalid integer")
		}
		var i int64
		switch v := v.(type) {
		case int:
			i = int64(v)
		case int64:
			i = v
		case float64:
			// yaml resolves some !!int-tagged values to floats; accept
			// them only when integral.
			if v != math.Trunc(v) || math.Abs(v) > 1<<62 {
				return bad("invalid integer")
			}
			i = int64(v)
		default:
			return bad("integer out of range (64-bit signed):")
		}
		out := &Node{Kind: Int, Value: i, Pos: pos}
		if strconv.FormatInt(i, 10) != n.Value {
			out.Text = n.Value
		}
		return out, nil
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return bad("invalid number")
		}
		return &Node{Kind: Float, Value: f, Text: n.Value, Pos: pos}, nil
	case "!!binary":
		return bad("binary values are not supported:")
	}
	return null, fmt.Errorf("unsupported YAML tag %s; remove it", tag)
}

// leadingZero explains a number written with a leading zero (mode: 0750),
// which is refused. yaml.v3 follows YAML 1.1 and reads 0750 as the octal
// 488, YAML 1.2 reads it as the decimal 750, and TOML and JSON refuse it:
// a policy means the same in every syntax, so it is refused here too
// rather than read either way. Spelled 0o750 the number is unambiguous and
// accepted.
func leadingZero(n *yaml.Node, tag string, path yamlsafe.Path) error {
	msg := n.Value + ": numbers cannot have leading zeros"
	if tag == "!!int" {
		var v int64
		dec, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
		if n.Decode(&v) == nil && err == nil && v != dec {
			msg += fmt.Sprintf(" (YAML 1.1 reads it as octal %d, YAML 1.2 as decimal %d)", v, dec)
		}
	}
	key := ""
	if len(path) > 0 && path[len(path)-1].IsKey() {
		key = path[len(path)-1].Key
	}
	return fmt.Errorf("%s; %s", msg, leadingZeroAdvice(key, ": ", n.Value))
}

// pathString spells a yamlsafe.Path as policy key paths are spelled:
// roles[0].vars."a b".
func pathString(p yamlsafe.Path) string {
	s := ""
	for _, st := range p {
		if st.IsKey() {
			s = keyPath(s, st.Key)
		} else {
			s = indexPath(s, st.Index)
		}
	}
	return s
}
