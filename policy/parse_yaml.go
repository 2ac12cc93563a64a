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
)

// ParseYAML parses one YAML (or JSON) document into a Node tree. Aliases
// are expanded (each use is a copy carrying the anchor's positions) and
// merge keys (<<) are applied, explicit keys winning. Documents that would
// expand to more than MaxNodes nodes or nest deeper than MaxDepth are
// refused before anything is built. Duplicate keys, non-scalar keys,
// unsupported tags, numbers written with a leading zero (0750: octal to
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
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return &Node{Kind: Map, Pos: Pos{File: file, Line: 1}}, nil
		}
		root = root.Content[0]
	}
	c := &yamlConv{file: file, memo: map[*yaml.Node]yamlSize{}, busy: map[*yaml.Node]bool{}}
	size, depth, ok := c.measure(root)
	switch {
	case !ok:
		return nil, c.errs.Err()
	case size > MaxNodes:
		return nil, ErrorList{{Pos: Pos{File: file, Line: root.Line}, Msg: "document expands to more than " + strconv.Itoa(MaxNodes) + " values (aliases re-used too often?); refusing it"}}
	case depth > MaxDepth:
		return nil, ErrorList{{Pos: Pos{File: file, Line: root.Line}, Msg: "document nests more than " + strconv.Itoa(MaxDepth) + " levels deep; refusing it"}}
	}
	n := c.convert(root, "", "")
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	if n.Kind == Null {
		return &Node{Kind: Map, Pos: n.Pos}, nil
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
	starts := lineStarts(data)
	prefix := func(l int) []byte {
		if l >= len(starts) {
			return data
		}
		return data[:starts[l]]
	}
	// Invariant: the first hi lines fail with msg (all of them do: that
	// is the error being located).
	lo, hi := max(from, 1), len(starts)
	if lo > hi {
		return 0
	}
	budget := yamlSearchBudget
	for lo < hi {
		mid := lo + (hi-lo)/2
		p := prefix(mid)
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

type yamlSize struct{ size, depth int }

type yamlConv struct {
	file string
	errs ErrorList
	memo map[*yaml.Node]yamlSize
	busy map[*yaml.Node]bool
}

// measure returns how many nodes n expands to (capped just above
// MaxNodes) and how deep it nests, without building anything.
func (c *yamlConv) measure(n *yaml.Node) (size, depth int, ok bool) {
	if m, done := c.memo[n]; done {
		return m.size, m.depth, true
	}
	if c.busy[n] {
		c.errs.add(Pos{File: c.file, Line: n.Line}, "", "alias refers to a node that contains it")
		return 0, 0, false
	}
	c.busy[n] = true
	defer delete(c.busy, n)
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			c.errs.add(Pos{File: c.file, Line: n.Line}, "", "unknown alias *%s", n.Value)
			return 0, 0, false
		}
		size, depth, ok = c.measure(n.Alias)
		if !ok {
			return 0, 0, false
		}
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		size = 1
		for _, ch := range n.Content {
			s, d, ok := c.measure(ch)
			if !ok {
				return 0, 0, false
			}
			size += s
			if size > MaxNodes {
				size = MaxNodes + 1
			}
			depth = max(depth, d)
		}
		depth++
	default:
		size = 1
	}
	c.memo[n] = yamlSize{size, depth}
	return size, depth, true
}

func (c *yamlConv) pos(n *yaml.Node) Pos { return Pos{File: c.file, Line: n.Line} }

// convert builds the Node for n; errors are collected and a Null node is
// returned in place of a bad value. key is the map key whose value n is
// ("" for a list item or the document), for advice in messages.
func (c *yamlConv) convert(n *yaml.Node, path, key string) *Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	pos := c.pos(n)
	switch n.Kind {
	case yaml.ScalarNode:
		return c.scalar(n, path, key)
	case yaml.SequenceNode:
		l := &Node{Kind: List, Pos: pos, Items: make([]*Node, 0, len(n.Content))}
		for i, ch := range n.Content {
			l.Items = append(l.Items, c.convert(ch, indexPath(path, i), ""))
		}
		return l
	case yaml.MappingNode:
		return c.mapping(n, path)
	}
	c.errs.add(pos, path, "unsupported YAML node")
	return &Node{Kind: Null, Pos: pos}
}

func (c *yamlConv) scalar(n *yaml.Node, path, key string) *Node {
	pos := c.pos(n)
	bad := func(what string) *Node {
		c.errs.add(pos, path, "%s %s", what, strconv.Quote(truncate(n.Value, 40)))
		return &Node{Kind: Null, Pos: pos}
	}
	tag := n.ShortTag()
	if (tag == "!!int" || tag == "!!float") && leadingZeroRE.MatchString(n.Value) {
		return c.leadingZero(n, path, key, tag)
	}
	switch tag {
	case "!!null":
		return &Node{Kind: Null, Pos: pos}
	case "!!str", "!!timestamp":
		return &Node{Kind: String, Value: n.Value, Pos: pos}
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			return bad("invalid boolean")
		}
		return &Node{Kind: Bool, Value: b, Pos: pos}
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
		return out
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			return bad("invalid number")
		}
		return &Node{Kind: Float, Value: f, Text: n.Value, Pos: pos}
	case "!!binary":
		return bad("binary values are not supported:")
	default:
		c.errs.add(pos, path, "unsupported YAML tag %s; remove it", tag)
		return &Node{Kind: Null, Pos: pos}
	}
}

// leadingZero reports a number written with a leading zero (mode: 0750)
// and returns a Null node in its place. yaml.v3 follows YAML 1.1 and reads
// 0750 as the octal 488, YAML 1.2 reads it as the decimal 750, and TOML
// and JSON refuse it: a policy means the same in every syntax, so it is
// refused here too rather than read either way. Spelled 0o750 the number
// is unambiguous and accepted.
func (c *yamlConv) leadingZero(n *yaml.Node, path, key, tag string) *Node {
	pos := c.pos(n)
	msg := n.Value + ": numbers cannot have leading zeros"
	if tag == "!!int" {
		var v int64
		dec, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 10, 64)
		if n.Decode(&v) == nil && err == nil && v != dec {
			msg += fmt.Sprintf(" (YAML 1.1 reads it as octal %d, YAML 1.2 as decimal %d)", v, dec)
		}
	}
	c.errs.add(pos, path, "%s; %s", msg, leadingZeroAdvice(key, ": ", n.Value))
	return &Node{Kind: Null, Pos: pos}
}

func (c *yamlConv) mapping(n *yaml.Node, path string) *Node {
	m := &Node{Kind: Map, Pos: c.pos(n)}
	seen := map[string]int{} // key → entry index
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		for k.Kind == yaml.AliasNode {
			k = k.Alias
		}
		if k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		kpos := c.pos(k)
		if k.Kind != yaml.ScalarNode {
			c.errs.add(kpos, path, "map keys must be plain strings, not a %s", yamlKindName(k.Kind))
			continue
		}
		key := k.Value
		if i, dup := seen[key]; dup {
			c.errs.add(kpos, keyPath(path, key), "duplicate key %q (first set at line %d)", key, m.Entries[i].KeyPos.Line)
			continue
		}
		seen[key] = len(m.Entries)
		m.Entries = append(m.Entries, Entry{Key: key, KeyPos: kpos, Value: c.convert(v, keyPath(path, key), key)})
	}
	for _, src := range merges {
		var srcs []*yaml.Node
		if deref(src).Kind == yaml.SequenceNode {
			srcs = deref(src).Content
		} else {
			srcs = []*yaml.Node{src}
		}
		for _, s := range srcs {
			mn := c.convert(s, path, "")
			if mn.Kind != Map {
				c.errs.add(mn.Pos, path, "<< merges maps only, got %s", mn.describe(false))
				continue
			}
			for _, e := range mn.Entries {
				if _, dup := seen[e.Key]; !dup {
					seen[e.Key] = len(m.Entries)
					m.Entries = append(m.Entries, e)
				}
			}
		}
	}
	return m
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func yamlKindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "map"
	case yaml.SequenceNode:
		return "list"
	}
	return "node"
}
