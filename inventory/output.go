package inventory

import (
	"errors"

	"bytes"
	"encoding/json"
	"fmt"
	toml "github.com/pelletier/go-toml/v2"
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
//
// Hosts appear in _meta.hostvars in inventory order, so that the JSON
// loads back with the same host order.
func (inv *Inventory) MarshalAnsibleJSON(redact func(key string) bool) ([]byte, error) {
	if redact == nil {
		redact = func(string) bool { return false }
	}
	fail := func(err error) ([]byte, error) {
		return nil, fmt.Errorf("inventory %s: encode JSON: %w", inv.source, err)
	}
	encode := func(v any) ([]byte, error) {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		err := enc.Encode(v)
		return bytes.TrimSuffix(b.Bytes(), []byte("\n")), err
	}
	// Built by hand: a Go map would sort the hosts by name.
	var raw bytes.Buffer
	raw.WriteString(`{"_meta":{"hostvars":{`)
	for i, name := range inv.order {
		k, err := encode(name)
		if err != nil {
			return fail(err)
		}
		v, err := encode(redactVars(inv.hosts[name].Vars, redact))
		if err != nil {
			return fail(err)
		}
		if i > 0 {
			raw.WriteByte(',')
		}
		raw.Write(k)
		raw.WriteByte(':')
		raw.Write(v)
	}
	raw.WriteString("}}")
	groups := map[string]any{}
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
		groups[name] = o
	}
	rest, err := encode(groups)
	if err != nil {
		return fail(err)
	}
	if len(rest) > 2 { // not {}
		raw.WriteByte(',')
		raw.Write(rest[1 : len(rest)-1])
	}
	raw.WriteByte('}')
	var out bytes.Buffer
	if err := json.Indent(&out, raw.Bytes(), "", "    "); err != nil {
		return fail(err)
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// Only returns a view of the inventory holding only the hosts for which
// keep is true: the same groups (with those hosts only) and variables.
// inventory --limit uses it for --json and --graph, as ansible-inventory
// does with --limit.
func (inv *Inventory) Only(keep func(name string) bool) *Inventory {
	out := &Inventory{source: inv.source, hosts: map[string]*Host{}, groups: map[string]*Group{}, hostVars: map[string]map[string]any{}}
	for _, name := range inv.order {
		if keep(name) {
			out.order = append(out.order, name)
			out.hosts[name] = inv.hosts[name]
			if v, ok := inv.hostVars[name]; ok {
				out.hostVars[name] = v
			}
		}
	}
	for name, g := range inv.groups {
		cp := *g
		cp.Hosts = nil
		for _, h := range g.Hosts {
			if keep(h) {
				cp.Hosts = append(cp.Hosts, h)
			}
		}
		out.groups[name] = &cp
	}
	return out
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

// MarshalTOML returns the inventory as an opsmop TOML inventory that Load
// reads back to the same hosts (in the same order), groups (hosts,
// children) and variables (each group's own, each host's own, and so the
// same merged variables). All hosts are listed first in
// [groups.all] hosts = [...], which keeps their order and does not change
// their groups. Every value whose key (at any depth) satisfies redact is
// replaced by "<redacted>" (redact may be nil; callers normally pass
// SecretKey), so a redacted output loads back with those values changed.
// A value TOML cannot hold (null, such as YAML's ~ or Python's None) is an
// error naming the group or host and the variable.
func (inv *Inventory) MarshalTOML(redact func(key string) bool) ([]byte, error) {
	if redact == nil {
		redact = func(string) bool { return false }
	}
	var b bytes.Buffer
	b.WriteString("# opsmop inventory")
	if inv.source != "" {
		b.WriteString(", converted from " + inv.source)
	}
	b.WriteString("\n\n[groups.all]\n")
	hosts, err := tomlValue(inv.order)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: encode TOML: %w", inv.source, err)
	}
	b.WriteString("hosts = " + hosts + "\n")
	table := func(header []string, vars map[string]any, what string) error {
		if len(vars) == 0 {
			return nil
		}
		b.WriteString("\n[" + tomlPath(header) + "]\n")
		for _, k := range sortedKeys(vars) {
			v := vars[k]
			if redact(k) {
				v = "<redacted>"
			} else {
				v = redactValue(v, redact)
			}
			if err := checkTOMLValue(v); err != nil {
				return fmt.Errorf("inventory %s: %s: variable %s %v; TOML has no null: use --list (JSON) instead", inv.source, what, k, err)
			}
			s, err := tomlValue(v)
			if err != nil {
				return fmt.Errorf("inventory %s: %s: variable %s: encode TOML: %w", inv.source, what, k, err)
			}
			b.WriteString(tomlPath([]string{k}) + " = " + s + "\n")
		}
		return nil
	}
	if err := table([]string{"groups", AllGroup, "vars"}, inv.groups[AllGroup].Vars, "group all"); err != nil {
		return nil, err
	}
	for _, name := range inv.groupNames() {
		if name == AllGroup {
			continue
		}
		g := inv.groups[name]
		b.WriteString("\n[" + tomlPath([]string{"groups", name}) + "]\n")
		// ungrouped's hosts are in all already; listing them again would
		// change nothing.
		if len(g.Hosts) > 0 && name != UngroupedGroup {
			s, err := tomlValue(g.Hosts)
			if err != nil {
				return nil, fmt.Errorf("inventory %s: encode TOML: %w", inv.source, err)
			}
			b.WriteString("hosts = " + s + "\n")
		}
		if len(g.Children) > 0 {
			s, err := tomlValue(g.Children)
			if err != nil {
				return nil, fmt.Errorf("inventory %s: encode TOML: %w", inv.source, err)
			}
			b.WriteString("children = " + s + "\n")
		}
		if err := table([]string{"groups", name, "vars"}, g.Vars, "group "+name); err != nil {
			return nil, err
		}
	}
	for _, h := range inv.order {
		if err := table([]string{"hosts", h, "vars"}, inv.hostVars[h], "host "+h); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// checkTOMLValue rejects values TOML cannot hold.
func checkTOMLValue(v any) error {
	switch x := v.(type) {
	case nil:
		return errors.New("is null")
	case map[string]any:
		for _, k := range sortedKeys(x) {
			if err := checkTOMLValue(x[k]); err != nil {
				return fmt.Errorf("%s %v", formatPath([]string{k}), err)
			}
		}
	case []any:
		for i, e := range x {
			if err := checkTOMLValue(e); err != nil {
				return fmt.Errorf("item %d %v", i, err)
			}
		}
	}
	return nil
}

// tomlValue encodes one value as TOML (tables inline).
func tomlValue(v any) (string, error) {
	var b bytes.Buffer
	enc := toml.NewEncoder(&b).SetTablesInline(true)
	if err := enc.Encode(map[string]any{"v": v}); err != nil {
		return "", err
	}
	s := strings.TrimSpace(b.String())
	return strings.TrimSpace(strings.TrimPrefix(s, "v =")), nil
}

// tomlPath writes a key path, quoting the parts that are not bare keys.
func tomlPath(p []string) string {
	parts := make([]string, len(p))
	for i, s := range p {
		if bareKey(s) {
			parts[i] = s
		} else {
			q, _ := tomlValue(s)
			parts[i] = q
		}
	}
	return strings.Join(parts, ".")
}
