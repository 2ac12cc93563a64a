// Package yamlsafe turns a parsed YAML document (a yaml.v3 node tree) into
// values, hardened against hostile input. It is the one YAML converter of
// opsmop: the policy parser and the inventory loader each supply a Builder
// that makes their kind of value, and share everything else:
//
//   - aliases are expanded, each use a fresh copy; an alias inside the node
//     it refers to is refused, and so is a document that would expand
//     beyond Limits (a "billion laughs"), before anything is built;
//   - merge keys (<<) add the keys of a map, or of a list of maps, that the
//     map does not set itself (explicit keys win; of merged maps, the first
//     wins); a second << in one map is refused;
//   - a key written twice is refused (found with a hash map: yaml.v3's own
//     check compares every key with every other, which is quadratic), and
//     so is a key that is a list or a map.
//
// Problems are reported with the line and the key path where they are
// written, in the words of package internal/kind.
package yamlsafe

import (
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/opsmop/opsmop/internal/kind"
)

// Limits bounds what a document may expand to; a zero field sets no
// bound. Values are counted as nodes of the expanded document: every
// scalar, list, map and map key, an alias counting as a copy of what it
// refers to.
type Limits struct {
	// MaxValues is the most values the whole document may expand to.
	MaxValues int
	// MaxAliasValues is the most values the uses of aliases may add (for
	// documents that are large by nature, where only aliases are
	// suspect).
	MaxAliasValues int
	// MaxDepth is the deepest nesting of lists and maps.
	MaxDepth int
}

// Step is one step of a Path: a map key, or (Index >= 0) a list index.
type Step struct {
	Key   string
	Index int
}

// KeyStep returns the step to the value of map key k.
func KeyStep(k string) Step { return Step{Key: k, Index: -1} }

// IndexStep returns the step to list item i.
func IndexStep(i int) Step { return Step{Index: i} }

// IsKey reports whether s steps to a map key's value.
func (s Step) IsKey() bool { return s.Index < 0 }

// Path is where a value is in a document: the steps from its top.
type Path []Step

// Error is a problem at a line of a YAML document.
type Error struct {
	Line int
	// Path is the value the problem is about (nil: the document, or the
	// top map).
	Path Path
	Msg  string
}

// Error reads "line N: message".
func (e *Error) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// Errors is every problem Convert found, in document order. It is never
// empty when returned as an error.
type Errors []*Error

// Error prints one problem per line.
func (l Errors) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Builder makes the values of a document. Convert calls it for each node
// of the expanded document, children before their parent; path is the
// node's Path, valid only during the call.
type Builder[V any] interface {
	// Scalar returns the value of scalar n. With an error it returns a
	// value to put in n's place all the same: Convert records the error
	// (its text, at n's line and path) and goes on.
	Scalar(n *yaml.Node, path Path) (V, error)
	// Key returns the map key that scalar k spells; keys are compared (for
	// duplicates and merges) as Key spells them. With an error the entry
	// is dropped and the error recorded.
	Key(k *yaml.Node) (string, error)
	// List returns the list made of n's items.
	List(n *yaml.Node, items []V) V
	// Map returns the map made of n's entries: the keys written in n in
	// order, then those its merge key adds.
	Map(n *yaml.Node, entries []Entry[V]) V
}

// Entry is one key of a map and its value.
type Entry[V any] struct {
	Key string
	// KeyNode is where the key is written (for a key added by a merge
	// key, in the merged map).
	KeyNode *yaml.Node
	Value   V
}

// Convert builds the value of the document whose top node is root (a
// DocumentNode stands for its content; an empty document is the zero V).
// It first measures the whole expanded document without building
// anything: an alias to an unknown anchor or inside the node it refers to,
// and a document beyond lim, are then the one problem returned. Otherwise
// it builds the value with b, collecting every problem on the way. The
// error is an Errors; with it, the value is incomplete.
func Convert[V any](root *yaml.Node, b Builder[V], lim Limits) (V, error) {
	var zero V
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return zero, nil
		}
		root = root.Content[0]
	}
	if err := measure(root, lim); err != nil {
		return zero, Errors{err}
	}
	c := &converter[V]{b: b}
	v := c.value(root)
	if len(c.errs) > 0 {
		return v, c.errs
	}
	return v, nil
}

// Deref follows aliases to the node they refer to.
func Deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// Pairs calls f with each key and value of map n in the order they are
// written, following aliases; the pairs a merge key adds come in its
// place (recursively), and nothing is deduplicated. For a node that is
// not a map it does nothing. Use it only on a document Convert accepted:
// Pairs does not guard against cycles.
func Pairs(n *yaml.Node, f func(k, v *yaml.Node)) {
	n = Deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !isMergeKey(k) {
			f(k, v)
			continue
		}
		if m := Deref(v); m != nil && m.Kind == yaml.SequenceNode {
			for _, src := range m.Content {
				Pairs(src, f)
			}
		} else {
			Pairs(m, f)
		}
	}
}

// isMergeKey reports whether k is the merge key <<, as yaml.v3 reads it.
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

type converter[V any] struct {
	b    Builder[V]
	path Path
	errs Errors
}

func (c *converter[V]) fail(line int, msg string) {
	c.errs = append(c.errs, &Error{Line: line, Path: append(Path(nil), c.path...), Msg: msg})
}

// value builds the value of n, a node of a measured document.
func (c *converter[V]) value(n *yaml.Node) V {
	n = Deref(n)
	switch n.Kind {
	case yaml.SequenceNode:
		items := make([]V, 0, len(n.Content))
		for i, item := range n.Content {
			c.path = append(c.path, IndexStep(i))
			items = append(items, c.value(item))
			c.path = c.path[:len(c.path)-1]
		}
		return c.b.List(n, items)
	case yaml.MappingNode:
		return c.b.Map(n, c.entries(n))
	}
	v, err := c.b.Scalar(n, c.path)
	if err != nil {
		c.fail(n.Line, err.Error())
	}
	return v
}

// entries builds the entries of map n: its own keys in order, then the
// keys its merge key adds that are not set already.
func (c *converter[V]) entries(n *yaml.Node) []Entry[V] {
	out := make([]Entry[V], 0, len(n.Content)/2)
	seen := make(map[string]int, len(n.Content)/2) // key → index in out
	var merge, mergeValue *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			if merge != nil {
				c.fail(k.Line, fmt.Sprintf("a second merge key (<<) in the same map (the first is at line %d); merge several maps with one: <<: [*a, *b]", merge.Line))
				continue
			}
			merge, mergeValue = k, v
			continue
		}
		k = Deref(k)
		if k.Kind != yaml.ScalarNode {
			c.fail(k.Line, "map keys must be plain strings, not "+describe(k))
			continue
		}
		key, err := c.b.Key(k)
		if err != nil {
			c.fail(k.Line, err.Error())
			continue
		}
		c.path = append(c.path, KeyStep(key))
		if j, dup := seen[key]; dup {
			c.fail(k.Line, fmt.Sprintf("duplicate key %q (first set at line %d)", key, out[j].KeyNode.Line))
		} else {
			seen[key] = len(out)
			out = append(out, Entry[V]{Key: key, KeyNode: k, Value: c.value(v)})
		}
		c.path = c.path[:len(c.path)-1]
	}
	if merge == nil {
		return out
	}
	for _, src := range c.mergeSources(mergeValue) {
		for _, e := range c.entries(src) {
			if _, dup := seen[e.Key]; !dup {
				seen[e.Key] = len(out)
				out = append(out, e)
			}
		}
	}
	return out
}

// mergeSources returns the maps a merge key's value v names: v itself, or
// the items of a list; anything else is recorded as a problem.
func (c *converter[V]) mergeSources(v *yaml.Node) []*yaml.Node {
	items := []*yaml.Node{v}
	if d := Deref(v); d.Kind == yaml.SequenceNode {
		items = d.Content
	}
	out := make([]*yaml.Node, 0, len(items))
	for _, it := range items {
		src := Deref(it)
		if src.Kind != yaml.MappingNode {
			c.fail(it.Line, "map merge (<<) needs a map or a list of maps, not "+describe(src))
			continue
		}
		out = append(out, src)
	}
	return out
}

// describe says what n is in the words of package kind: `a map`, `a
// list`, `an integer 5` (as written), `a string "x"`, `null`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return kind.A(kind.Map)
	case yaml.SequenceNode:
		return kind.A(kind.List)
	}
	switch n.ShortTag() {
	case "!!null":
		return kind.Null
	case "!!bool":
		return kind.A(kind.Boolean) + " " + n.Value
	case "!!int":
		return kind.A(kind.Integer) + " " + n.Value
	case "!!float":
		return kind.A(kind.Number) + " " + n.Value
	}
	return kind.Describe(n.Value)
}

// size is what a node expands to: how many values, how deeply nested.
type size struct{ values, depth int }

// saturated bounds the counts of measure, so that a chain of aliases
// cannot overflow them: far above any limit.
const saturated = 1 << 50

// measurer walks a document once, in document order, sizing each node.
// Only anchored nodes can be reached twice (through aliases), so only
// they are remembered.
type measurer struct {
	lim     Limits
	memo    map[*yaml.Node]size
	busy    map[*yaml.Node]bool // anchored nodes being measured
	aliased int                 // values added by aliases so far
	err     *Error
}

// measure checks the document under root against lim, and for aliases
// that are unknown or inside the node they refer to.
func measure(root *yaml.Node, lim Limits) *Error {
	m := &measurer{lim: lim, memo: map[*yaml.Node]size{}, busy: map[*yaml.Node]bool{}}
	s, ok := m.size(root)
	switch {
	case !ok:
		return m.err
	case lim.MaxValues > 0 && s.values > lim.MaxValues:
		return &Error{Line: root.Line, Msg: "document expands to more than " + strconv.Itoa(lim.MaxValues) + " values (aliases re-used too often?); refusing it"}
	case lim.MaxDepth > 0 && s.depth > lim.MaxDepth:
		return &Error{Line: root.Line, Msg: "document nests more than " + strconv.Itoa(lim.MaxDepth) + " levels deep; refusing it"}
	}
	return nil
}

func (m *measurer) size(n *yaml.Node) (size, bool) {
	if s, ok := m.memo[n]; ok {
		return s, true
	}
	if n.Anchor != "" {
		m.busy[n] = true
		defer delete(m.busy, n)
	}
	var s size
	switch n.Kind {
	case yaml.AliasNode:
		t := n.Alias
		switch {
		case t == nil:
			m.err = &Error{Line: n.Line, Msg: "unknown alias *" + n.Value}
			return s, false
		case m.busy[t]:
			m.err = &Error{Line: n.Line, Msg: "alias *" + n.Value + " refers to a node that contains it"}
			return s, false
		}
		ts, ok := m.size(t)
		if !ok {
			return s, false
		}
		if limit := m.lim.MaxAliasValues; limit > 0 {
			before := m.aliased
			m.aliased = min(m.aliased+ts.values, saturated)
			if m.aliased > limit {
				line, _ := m.nth(t, limit-before+1)
				m.err = &Error{Line: line, Msg: "aliases expand to more than " + strconv.Itoa(limit) + " values (aliases re-used too often?); refusing the document"}
				return s, false
			}
		}
		s = ts
	case yaml.MappingNode, yaml.SequenceNode, yaml.DocumentNode:
		s.values = 1
		for _, ch := range n.Content {
			cs, ok := m.size(ch)
			if !ok {
				return s, false
			}
			s.values = min(s.values+cs.values, saturated)
			s.depth = max(s.depth, cs.depth)
		}
		s.depth++
	default:
		s.values = 1
	}
	if n.Anchor != "" {
		m.memo[n] = s
	}
	return s, true
}

// nth finds the k-th value (1-based, in document order) of n's
// expansion, and returns its line; when n expands to fewer values, it
// returns 0 and how many of the k are left. Subtrees of known size that
// end before the k-th value are skipped, so it visits at most about k
// nodes.
func (m *measurer) nth(n *yaml.Node, k int) (line, left int) {
	n = Deref(n)
	if s, ok := m.memo[n]; ok && s.values < k {
		return 0, k - s.values
	}
	if k == 1 {
		return n.Line, 0
	}
	k--
	for _, ch := range n.Content {
		if line, k = m.nth(ch, k); line > 0 {
			return line, 0
		}
	}
	return 0, k
}
