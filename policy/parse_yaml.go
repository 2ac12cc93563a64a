package policy

import (
	"bytes"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"

	yaml "go.yaml.in/yaml/v3"
)

// ParseYAML parses one YAML (or JSON) document into a Node tree. Aliases
// are expanded (each use is a copy carrying the anchor's positions) and
// merge keys (<<) are applied, explicit keys winning. Documents that would
// expand to more than MaxNodes nodes or nest deeper than MaxDepth are
// refused before anything is built. Duplicate keys, non-scalar keys,
// unsupported tags and a second document are errors. An empty document is
// an empty map. Timestamps stay strings as written.
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
	n := c.convert(root, "")
	if err := c.errs.Err(); err != nil {
		return nil, err
	}
	if n.Kind == Null {
		return &Node{Kind: Map, Pos: n.Pos}, nil
	}
	return n, nil
}

var (
	yamlLineRE   = regexp.MustCompile(`^yaml: (?:line (\d+): )?(.*)$`)
	yamlAnchorRE = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)
)

// yamlError turns a yaml syntax error into an ErrorList, finding the line
// of an unknown alias (which yaml does not report) in data.
func yamlError(file string, data []byte, err error) error {
	msg := err.Error()
	pos := Pos{File: file}
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if m := yamlAnchorRE.FindStringSubmatch(msg); m != nil && pos.Line == 0 {
		if i := bytes.Index(data, []byte("*"+m[1])); i >= 0 {
			pos.Line = 1 + bytes.Count(data[:i], []byte("\n"))
		}
	}
	return ErrorList{{Pos: pos, Msg: "invalid YAML: " + msg}}
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
// returned in place of a bad value.
func (c *yamlConv) convert(n *yaml.Node, path string) *Node {
	for n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	pos := c.pos(n)
	switch n.Kind {
	case yaml.ScalarNode:
		return c.scalar(n, path)
	case yaml.SequenceNode:
		l := &Node{Kind: List, Pos: pos, Items: make([]*Node, 0, len(n.Content))}
		for i, ch := range n.Content {
			l.Items = append(l.Items, c.convert(ch, indexPath(path, i)))
		}
		return l
	case yaml.MappingNode:
		return c.mapping(n, path)
	}
	c.errs.add(pos, path, "unsupported YAML node")
	return &Node{Kind: Null, Pos: pos}
}

func (c *yamlConv) scalar(n *yaml.Node, path string) *Node {
	pos := c.pos(n)
	bad := func(what string) *Node {
		c.errs.add(pos, path, "%s %s", what, strconv.Quote(truncate(n.Value, 40)))
		return &Node{Kind: Null, Pos: pos}
	}
	switch tag := n.ShortTag(); tag {
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
		m.Entries = append(m.Entries, Entry{Key: key, KeyPos: kpos, Value: c.convert(v, keyPath(path, key))})
	}
	for _, src := range merges {
		var srcs []*yaml.Node
		if deref(src).Kind == yaml.SequenceNode {
			srcs = deref(src).Content
		} else {
			srcs = []*yaml.Node{src}
		}
		for _, s := range srcs {
			mn := c.convert(s, path)
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
