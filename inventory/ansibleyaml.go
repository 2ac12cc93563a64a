package inventory

import (
	"fmt"
	"sort"

	"github.com/opsmop/opsmop/internal/kind"
)

// ---- Ansible YAML ----
//
// A YAML inventory whose top level has any key other than groups and
// hosts is Ansible's YAML format (ansible-core's yaml inventory plugin):
// every top-level key is a group; a group is null or a mapping of hosts
// (HOST-PATTERN -> variables or null), vars and children (GROUP -> a
// group, recursively). Host patterns may hold ranges and :PORT as in INI.
// Host variables given in several places merge in document order.

type ansibleYAML struct {
	file     string
	pos      positions
	groups   map[string]*Group
	hostVars map[string]map[string]any
	order    hostSeq
	entries  int // host entries so far, at most maxHostEntries
}

// byLine returns m's keys in document order (by the line of path+key).
func (a *ansibleYAML) byLine(path []string, m map[string]any) []string {
	keys := sortedKeys(m)
	line := func(k string) int { return a.pos.line(append(append([]string{}, path...), k)) }
	sort.SliceStable(keys, func(i, j int) bool { return line(keys[i]) < line(keys[j]) })
	return keys
}

func (a *ansibleYAML) fail(path []string, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	return &schemaError{file: a.file, line: a.pos.line(path), path: path, msg: msg + " (read as an Ansible YAML inventory: its top level has keys other than groups and hosts)"}
}

func fromAnsibleYAML(file string, doc map[string]any, pos positions) (*Inventory, error) {
	a := &ansibleYAML{file: file, pos: pos, groups: map[string]*Group{}, hostVars: map[string]map[string]any{}}
	for _, g := range a.byLine(nil, doc) {
		if err := a.group([]string{g}, g, doc[g]); err != nil {
			return nil, err
		}
	}
	groups := make([]Group, 0, len(a.groups))
	for _, name := range sortedKeys(a.groups) {
		groups = append(groups, *a.groups[name])
	}
	inv, err := build(file, groups, a.hostVars, a.order.names)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", file, err)
	}
	return inv, nil
}

// group reads the group name defined at path.
func (a *ansibleYAML) group(path []string, name string, v any) error {
	if err := checkName("group", name); err != nil {
		return a.fail(path, "%v", err)
	}
	g, ok := a.groups[name]
	if !ok {
		g = &Group{Name: name, Vars: map[string]any{}}
		a.groups[name] = g
	}
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return a.fail(path, "a group must be a mapping with hosts, vars and children, not %s", kind.A(kind.Of(v)))
	}
	for _, k := range a.byLine(path, m) {
		kpath := append(append([]string{}, path...), k)
		sec := m[k]
		if s, ok := sec.(string); ok && (k == "hosts" || k == "children") {
			sec = map[string]any{s: nil} // as Ansible: a lone name
		}
		secMap, err := asTable(sec)
		if err != nil {
			return a.fail(kpath, "%v", err)
		}
		switch k {
		case "vars":
			if err := checkVarNames(secMap); err != nil {
				return a.fail(kpath, "%v", err)
			}
			for vk, vv := range secMap {
				g.Vars[vk] = vv
			}
		case "children":
			for _, c := range a.byLine(kpath, secMap) {
				if c == AllGroup {
					return a.fail(append(kpath, c), "%q cannot be a child group (every group is already in it)", AllGroup)
				}
				if err := a.group(append(append([]string{}, kpath...), c), c, secMap[c]); err != nil {
					return err
				}
				if name != AllGroup {
					g.Children = append(g.Children, c)
				}
			}
		case "hosts":
			for _, pat := range a.byLine(kpath, secMap) {
				hpath := append(append([]string{}, kpath...), pat)
				names, port, err := hostPattern(pat, maxHostEntries-a.entries)
				if err == nil {
					err = countEntries(&a.entries, len(names))
				}
				if err != nil {
					return a.fail(hpath, "%v", err)
				}
				vars, err := asTable(secMap[pat])
				if err != nil {
					return a.fail(hpath, "host variables %v", err)
				}
				if err := checkVarNames(vars); err != nil {
					return a.fail(hpath, "%v", err)
				}
				for _, h := range names {
					if err := checkName("host", h); err != nil {
						return a.fail(hpath, "%v", err)
					}
					a.order.add(h)
					g.Hosts = append(g.Hosts, h)
					hv := a.hostVars[h]
					if hv == nil {
						hv = map[string]any{}
						a.hostVars[h] = hv
					}
					for vk, vv := range vars {
						hv[vk] = vv
					}
					if port >= 0 {
						hv["ansible_port"] = port
					}
				}
			}
		default:
			return a.fail(kpath, "unknown key (an Ansible group has hosts, vars and children)")
		}
	}
	return nil
}
