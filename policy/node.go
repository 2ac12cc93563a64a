package policy

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/internal/kind"
)

// Kind is the type of a Node.
type Kind uint8

// The node kinds. Null is also the zero Kind.
const (
	Null Kind = iota
	String
	Int
	Float
	Bool
	Map
	List
)

// String names the kind as messages do (see package internal/kind):
// "null", "string", "integer", "number", "boolean", "map", "list".
func (k Kind) String() string {
	switch k {
	case Null:
		return kind.Null
	case String:
		return kind.String
	case Int:
		return kind.Integer
	case Float:
		return kind.Number
	case Bool:
		return kind.Boolean
	case Map:
		return kind.Map
	case List:
		return kind.List
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Limits on parsed documents, so that hostile or broken input (a YAML alias
// bomb, thousands of nested brackets) is refused instead of exhausting
// memory or stack.
const (
	// MaxDepth is the deepest nesting of maps and lists accepted.
	MaxDepth = 200
	// MaxNodes is the most nodes a document may expand to (YAML aliases
	// included).
	MaxNodes = 1_000_000
)

// Entry is one key of a Map node.
type Entry struct {
	Key    string
	KeyPos Pos
	Value  *Node
}

// Node is a parsed policy value with its position, the common tree that
// both the TOML and the YAML parser produce. Maps keep their keys in
// source order.
type Node struct {
	Kind Kind
	// Value is the scalar: string (String), int64 (Int), float64 (Float)
	// or bool (Bool); nil for Null, Map and List.
	Value any
	// Text is how a scalar was spelled in the source when that may differ
	// from Value (0o755 is the integer 493); used in messages only.
	Text    string
	Entries []Entry // Map only
	Items   []*Node // List only
	Pos     Pos
	// rendered marks a string produced by templating: the decoder then
	// accepts it for boolean and number keys ("8080" → 8080).
	rendered bool
}

// Get returns the value of key in a Map node, or nil when n is not a map
// or has no such key.
func (n *Node) Get(key string) *Node {
	if e := n.entry(key); e != nil {
		return e.Value
	}
	return nil
}

func (n *Node) entry(key string) *Entry {
	if n == nil || n.Kind != Map {
		return nil
	}
	for i := range n.Entries {
		if n.Entries[i].Key == key {
			return &n.Entries[i]
		}
	}
	return nil
}

// Interface converts n to plain Go values: nil, string, int, float64,
// bool, map[string]any and []any.
func (n *Node) Interface() any {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case String, Float, Bool:
		return n.Value
	case Int:
		return int(n.Value.(int64))
	case Map:
		m := make(map[string]any, len(n.Entries))
		for _, e := range n.Entries {
			m[e.Key] = e.Value.Interface()
		}
		return m
	case List:
		l := make([]any, len(n.Items))
		for i, it := range n.Items {
			l[i] = it.Interface()
		}
		return l
	}
	return nil
}

// Clone returns a deep copy of n.
func (n *Node) Clone() *Node {
	if n == nil {
		return nil
	}
	c := *n
	if n.Entries != nil {
		c.Entries = make([]Entry, len(n.Entries))
		for i, e := range n.Entries {
			c.Entries[i] = Entry{Key: e.Key, KeyPos: e.KeyPos, Value: e.Value.Clone()}
		}
	}
	if n.Items != nil {
		c.Items = make([]*Node, len(n.Items))
		for i, it := range n.Items {
			c.Items[i] = it.Clone()
		}
	}
	return &c
}

// describe says what n is for messages, in the words of package
// internal/kind: `an integer 755`, `a string "x"`, `a map`, `null`. A
// number shows as written (0o755). With hide set the value is left out
// (passwords): `an integer`.
func (n *Node) describe(hide bool) string {
	if n == nil {
		return "nothing"
	}
	switch {
	case hide, n.Kind == Null, n.Kind == Map, n.Kind == List:
		return kind.A(n.Kind.String())
	case n.Kind == String:
		return kind.Describe(n.Value)
	}
	return kind.A(n.Kind.String()) + " " + n.scalarText()
}

// scalarText is the scalar as the user wrote it (as best known).
func (n *Node) scalarText() string {
	if n.Text != "" {
		return n.Text
	}
	switch v := n.Value.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// Parse parses a policy document, choosing the syntax by file extension:
// .toml is TOML; .yaml, .yml and .json are YAML (JSON is YAML). Errors are
// an ErrorList with positions.
func Parse(file string, data []byte) (*Node, error) {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".toml":
		return ParseTOML(file, data)
	case ".yaml", ".yml", ".json":
		return ParseYAML(file, data)
	}
	return nil, ErrorList{{Pos: Pos{File: file}, Msg: "unknown policy file type: name it .toml, .yaml, .yml or .json"}}
}

// keyPath appends a map key to a key path: "roles[0]" + "vars" →
// "roles[0].vars". Keys that are not plain words are quoted.
func keyPath(base, key string) string {
	plain := key != ""
	for _, c := range key {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		key = strconv.Quote(key)
	}
	if base == "" {
		return key
	}
	return base + "." + key
}

// indexPath appends a list index to a key path: "roles" + 0 → "roles[0]".
func indexPath(base string, i int) string {
	return base + "[" + strconv.Itoa(i) + "]"
}
