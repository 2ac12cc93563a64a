package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Graph writes the group tree as ansible-inventory --graph does: "@all:"
// first, then each group's child groups and then its direct hosts, both
// sorted, each level indented by "  |". A group with several parents is
// shown under each. Ungrouped hosts appear under "@ungrouped".
func (inv *Inventory) Graph(w io.Writer) error {
	var b bytes.Buffer
	var walk func(name string, depth int)
	walk = func(name string, depth int) {
		g := inv.groups[name]
		b.WriteString(graphLine("@"+name+":", depth))
		for _, c := range g.Children {
			walk(c, depth+1)
		}
		for _, h := range g.Hosts {
			b.WriteString(graphLine(h, depth+1))
		}
	}
	walk(AllGroup, 0)
	_, err := w.Write(b.Bytes())
	return err
}

func graphLine(name string, depth int) string {
	if depth == 0 {
		return name + "\n"
	}
	return strings.Repeat("  |", depth) + "--" + name + "\n"
}

// MarshalAnsibleJSON returns the inventory in the JSON of
// ansible-inventory --list, which Load reads back:
//
//	{"_meta": {"hostvars": {HOST: {merged vars}}},
//	 "all": {"children": [...], "vars": {...}},
//	 GROUP: {"hosts": [...], "children": [...], "vars": {...}}}
//
// hostvars hold each host's merged variables (what the host sees); each
// group also carries its own vars. Empty hosts, children and vars are left
// out, as Ansible does. Every value whose key (at any depth of nesting)
// satisfies redact is replaced by "<redacted>"; redact may be nil. Callers
// normally pass SecretKey.
func (inv *Inventory) MarshalAnsibleJSON(redact func(key string) bool) ([]byte, error) {
	if redact == nil {
		redact = func(string) bool { return false }
	}
	hostvars := map[string]any{}
	for name, h := range inv.hosts {
		hostvars[name] = redactVars(h.Vars, redact)
	}
	doc := map[string]any{"_meta": map[string]any{"hostvars": hostvars}}
	for name, g := range inv.groups {
		o := map[string]any{}
		if len(g.Hosts) > 0 {
			o["hosts"] = g.Hosts
		}
		if len(g.Children) > 0 {
			o["children"] = g.Children
		}
		if len(g.Vars) > 0 {
			o["vars"] = redactVars(g.Vars, redact)
		}
		doc[name] = o
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("inventory %s: encode JSON: %w", inv.source, err)
	}
	return buf.Bytes(), nil
}

func redactVars(vars map[string]any, redact func(string) bool) map[string]any {
	out := make(map[string]any, len(vars))
	for k, v := range vars {
		if redact(k) {
			out[k] = "<redacted>"
		} else {
			out[k] = redactValue(v, redact)
		}
	}
	return out
}

func redactValue(v any, redact func(string) bool) any {
	switch x := v.(type) {
	case map[string]any:
		return redactVars(x, redact)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactValue(e, redact)
		}
		return out
	}
	return v
}
