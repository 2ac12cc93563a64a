package inventory

import (
	"fmt"

	yaml "go.yaml.in/yaml/v3"

	"github.com/opsmop/opsmop/internal/yamlsafe"
)

// maxAliasValues bounds how many values YAML aliases may expand to in one
// inventory: a "billion laughs" document is refused, not expanded. The
// document itself is bounded by MaxFileSize only: a large inventory is
// large by nature.
const maxAliasValues = 1_000_000

// yamlValue turns a parsed YAML node tree (a document or its top node)
// into plain Go values, as yaml.Node.Decode into an any does: maps with
// string keys (as normalize spells them), slices, and scalars as yaml.v3
// decodes them. yamlsafe.Convert does the walking, in time linear in the
// size of the document (yaml.v3's own duplicate-key check is quadratic):
// aliases, merge keys, duplicate keys, and the bound maxAliasValues (an
// argument, so that tests can lower it). The error is the first problem
// found, a *yamlsafe.Error reading "line N: message".
func yamlValue(n *yaml.Node, maxAliasValues int) (any, error) {
	v, err := yamlsafe.Convert[any](n, yamlBuilder{}, yamlsafe.Limits{MaxAliasValues: maxAliasValues})
	if errs, ok := err.(yamlsafe.Errors); ok {
		return nil, errs[0]
	}
	return v, err
}

// yamlBuilder makes plain Go values for yamlsafe.Convert.
type yamlBuilder struct{}

// Scalar decodes n as yaml.v3 decodes a scalar into an any.
func (yamlBuilder) Scalar(n *yaml.Node, _ yamlsafe.Path) (any, error) {
	var v any
	if err := n.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// Key spells a key as normalize spells map keys.
func (yamlBuilder) Key(k *yaml.Node) (string, error) { return yamlKey(k) }

// List returns the items.
func (yamlBuilder) List(_ *yaml.Node, items []any) any { return items }

// Map returns a map of the entries.
func (yamlBuilder) Map(_ *yaml.Node, entries []yamlsafe.Entry[any]) any {
	m := make(map[string]any, len(entries))
	for _, e := range entries {
		m[e.Key] = e.Value
	}
	return m
}

// yamlKey decodes a scalar map key and spells it as normalize spells map
// keys.
func yamlKey(k *yaml.Node) (string, error) {
	var v any
	if err := k.Decode(&v); err != nil {
		return "", err
	}
	if s, ok := v.(string); ok {
		return s, nil
	}
	return fmt.Sprint(normalize(v)), nil
}
