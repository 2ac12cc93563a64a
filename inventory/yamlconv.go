package inventory

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"
)

// maxAliasValues bounds how many values YAML aliases may expand to in one
// inventory: a "billion laughs" document is refused, not expanded.
const maxAliasValues = 1_000_000

// yamlConv turns a parsed YAML node tree into plain Go values (maps with
// string keys, slices, scalars as yaml.v3 decodes them into an any). It
// replaces yaml.Node.Decode, whose duplicate-key check compares every key
// of a mapping with every other (quadratic: a 4 MiB inventory of 50 000
// hosts took 15 s); here duplicates are found with a map.
type yamlConv struct {
	aliasDepth  int // > 0 while expanding an alias
	aliasValues int // values produced inside aliases so far
	aliasMax    int // the most values aliases may produce
	busy        map[*yaml.Node]bool
}

func newYAMLConv() *yamlConv {
	return &yamlConv{aliasMax: maxAliasValues, busy: map[*yaml.Node]bool{}}
}

// yamlError is a conversion error at a line of the document.
type yamlError struct {
	line int
	msg  string
}

func (e *yamlError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

func (c *yamlConv) value(n *yaml.Node) (any, error) {
	if c.aliasDepth > 0 {
		c.aliasValues++
		if c.aliasValues > c.aliasMax {
			return nil, &yamlError{n.Line, fmt.Sprintf("aliases expand to more than %d values (aliases re-used too often?); refusing the document", c.aliasMax)}
		}
	}
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return c.value(n.Content[0])
	case yaml.AliasNode:
		return c.alias(n, c.value)
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, &yamlError{n.Line, fmt.Sprintf("%v", err)}
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, e := range n.Content {
			v, err := c.value(e)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		return c.mapping(n)
	}
	return nil, &yamlError{n.Line, fmt.Sprintf("unsupported YAML node kind %d", n.Kind)}
}

// alias expands an alias node with f, refusing an alias inside the node it
// refers to.
func (c *yamlConv) alias(n *yaml.Node, f func(*yaml.Node) (any, error)) (any, error) {
	t := n.Alias
	if t == nil {
		return nil, &yamlError{n.Line, "alias to an unknown anchor"}
	}
	if c.busy[t] {
		return nil, &yamlError{n.Line, fmt.Sprintf("alias *%s refers to a node that contains it", n.Value)}
	}
	c.busy[t] = true
	c.aliasDepth++
	v, err := f(t)
	c.aliasDepth--
	delete(c.busy, t)
	return v, err
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// mapping converts a mapping: keys become strings (as normalize makes
// them), a key written twice is an error, and merge keys (<<) add the keys
// of the merged mappings that are not set explicitly (earlier merged
// mappings win over later ones), as yaml.v3 does.
func (c *yamlConv) mapping(n *yaml.Node) (map[string]any, error) {
	c.busy[n] = true
	defer delete(c.busy, n)
	out := make(map[string]any, len(n.Content)/2)
	lines := make(map[string]int, len(n.Content)/2)
	var merge *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			if merge != nil {
				return nil, &yamlError{k.Line, "a second merge key (<<) in the same mapping"}
			}
			merge = v
			continue
		}
		key, err := c.key(k)
		if err != nil {
			return nil, err
		}
		if prev, ok := lines[key]; ok {
			return nil, &yamlError{k.Line, fmt.Sprintf("mapping key %q already defined at line %d", key, prev)}
		}
		lines[key] = k.Line
		val, err := c.value(v)
		if err != nil {
			return nil, err
		}
		out[key] = val
	}
	if merge == nil {
		return out, nil
	}
	var sources []*yaml.Node
	switch merge.Kind {
	case yaml.MappingNode, yaml.AliasNode:
		sources = []*yaml.Node{merge}
	case yaml.SequenceNode:
		sources = merge.Content
	default:
		return nil, &yamlError{merge.Line, "map merge requires a mapping or a list of mappings"}
	}
	for _, s := range sources {
		var m any
		var err error
		switch {
		case s.Kind == yaml.MappingNode:
			m, err = c.mapping(s)
		case s.Kind == yaml.AliasNode && s.Alias != nil && s.Alias.Kind == yaml.MappingNode:
			m, err = c.alias(s, func(t *yaml.Node) (any, error) { return c.mapping(t) })
		default:
			return nil, &yamlError{s.Line, "map merge requires a mapping or a list of mappings"}
		}
		if err != nil {
			return nil, err
		}
		for k, v := range m.(map[string]any) {
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
	}
	return out, nil
}

// key decodes a scalar mapping key (through an alias if need be) and
// spells it as normalize spells map keys.
func (c *yamlConv) key(k *yaml.Node) (string, error) {
	for k.Kind == yaml.AliasNode && k.Alias != nil {
		k = k.Alias
	}
	if k.Kind != yaml.ScalarNode {
		return "", &yamlError{k.Line, "a mapping key must be a plain value (a string or number), not a list or mapping"}
	}
	var v any
	if err := k.Decode(&v); err != nil {
		return "", &yamlError{k.Line, fmt.Sprintf("%v", err)}
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return fmt.Sprint(normalize(v)), nil
}
