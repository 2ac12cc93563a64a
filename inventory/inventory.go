// Package inventory reads the hosts opsmop manages and the groups they are
// in: static TOML or YAML files in opsmop's schema, Ansible's own INI, YAML
// and JSON inventories, or an executable that prints Ansible's dynamic
// inventory JSON. It merges each host's variables, translates Ansible's
// connection variables (ansible_host, ...) to opsmop's, selects hosts for
// roles and --limit, and prints the inventory as a graph, as Ansible
// --list JSON or as opsmop TOML.
//
// Variable precedence, lowest first (a later level replaces a whole value
// of the same key; maps are not merged deeply):
//
//  1. group "all" (depth 0);
//  2. every other group the host is in, directly or through children, by
//     depth: a group's depth is the longest chain of parents from "all" (a
//     group with no parent has depth 1), so a child group always beats all
//     of its parents; groups of equal depth (siblings, unrelated groups)
//     are applied in group-name order, so the later name wins;
//  3. the host's own variables: first those of the host strings (or
//     tables) in groups' hosts tables (when one host is given variables in
//     several groups, those merge in group-name order), then
//     [hosts.NAME.vars], which wins.
package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// The implicit groups. Every host is in AllGroup; a host in no other group
// (or only in AllGroup directly) is in UngroupedGroup.
const (
	AllGroup       = "all"
	UngroupedGroup = "ungrouped"
)

// Host is one target host.
type Host struct {
	// Name is the inventory name (what limits, patterns and output use).
	Name string
	// Vars are the host's variables merged across all its groups and its
	// own variables (see the package documentation for the order), with
	// Ansible's connection variables also set under opsmop's names
	// (ansible_host gives opsmop_host, ...). Callers must not modify the
	// map.
	Vars map[string]any
	// Groups is every group the host is in, directly or through child
	// groups, including "all" (and "ungrouped" for ungrouped hosts), sorted.
	Groups []string
}

// Group is a named set of hosts and child groups with variables.
type Group struct {
	Name string
	// Hosts are the hosts listed directly in the group (not through
	// children), sorted.
	Hosts []string
	// Children are the group's direct child groups, sorted. For "all" these
	// are the groups with no parent (and "ungrouped" when it has hosts).
	Children []string
	// Vars are the group's own variables (not merged).
	Vars map[string]any
}

// Inventory is a loaded inventory. It is read-only after New or Load and
// safe for concurrent use.
type Inventory struct {
	source   string
	hosts    map[string]*Host
	order    []string // every host name once, in inventory order
	groups   map[string]*Group
	hostVars map[string]map[string]any // host-level variables, unmerged
}

// Source returns the file the inventory was loaded from ("" for New).
func (inv *Inventory) Source() string { return inv.source }

// Hosts returns all hosts in inventory order: for a loaded inventory, the
// order in which host names first appear in the file (or in the script's
// output), as Ansible orders them; for New, sorted by name. Select, and so
// runs and serial batches, follow this order. The hosts are shared:
// callers must not modify them.
func (inv *Inventory) Hosts() []*Host {
	out := make([]*Host, len(inv.order))
	for i, name := range inv.order {
		out[i] = inv.hosts[name]
	}
	return out
}

// Host returns the host named name.
func (inv *Inventory) Host(name string) (*Host, bool) {
	h, ok := inv.hosts[name]
	return h, ok
}

// Groups returns all groups sorted by name, including "all" and, when it
// has hosts, "ungrouped". The groups are shared: callers must not modify
// them.
func (inv *Inventory) Groups() []*Group {
	out := make([]*Group, 0, len(inv.groups))
	for _, g := range inv.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Group returns the group named name.
func (inv *Inventory) Group(name string) (*Group, bool) {
	g, ok := inv.groups[name]
	return g, ok
}

// groupNames returns the sorted group names.
func (inv *Inventory) groupNames() []string {
	out := make([]string, 0, len(inv.groups))
	for n := range inv.groups {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CycleError reports groups whose children lead back to themselves.
type CycleError struct {
	// Path is the cycle, first group repeated at the end: a, b, a.
	Path []string
}

// Error names the cycle and says how to fix it.
func (e *CycleError) Error() string {
	return fmt.Sprintf("group children form a cycle: %s (remove one of these children entries)", strings.Join(e.Path, " -> "))
}

// New builds an inventory from groups (each with its direct hosts, child
// group names and own variables) and host-level variables by host name.
// Hosts named only in hostVars, or only in "all", are ungrouped hosts. A
// child group must be one of groups; "all" cannot be a child; children must
// not form a cycle (*CycleError). Variables are merged as described in the
// package documentation, and Ansible connection variables translated (an
// error names the host when they conflict or cannot be followed). Hosts
// orders the hosts of an inventory built by New by name (hostVars, a map,
// has no order to keep). New copies what it keeps; it does not modify its
// arguments.
func New(groups []Group, hostVars map[string]map[string]any) (*Inventory, error) {
	return build("", groups, hostVars, nil)
}

// NewList returns the inventory of an inline host list (-i 'h1,h2,'):
// the named hosts, ungrouped and without variables, in the order given
// (a repeated name counts once), as Ansible keeps it.
func NewList(names []string) (*Inventory, error) {
	hostVars := make(map[string]map[string]any, len(names))
	for _, n := range names {
		hostVars[n] = map[string]any{}
	}
	return build("", nil, hostVars, names)
}

// build builds an inventory as New does. Its hosts are ordered as in
// order (names that are not hosts are ignored), then the hosts order
// leaves out, sorted by name.
func build(source string, groups []Group, hostVars map[string]map[string]any, order []string) (*Inventory, error) {
	inv := &Inventory{
		source:   source,
		hosts:    map[string]*Host{},
		groups:   map[string]*Group{},
		hostVars: map[string]map[string]any{},
	}
	// Collect groups, merging duplicates (the same name given twice).
	for _, g := range groups {
		if err := checkName("group", g.Name); err != nil {
			return nil, err
		}
		cur, ok := inv.groups[g.Name]
		if !ok {
			cur = &Group{Name: g.Name, Vars: map[string]any{}}
			inv.groups[g.Name] = cur
		}
		cur.Hosts = append(cur.Hosts, g.Hosts...)
		cur.Children = append(cur.Children, g.Children...)
		for k, v := range g.Vars {
			cur.Vars[k] = v
		}
	}
	all, ok := inv.groups[AllGroup]
	if !ok {
		all = &Group{Name: AllGroup, Vars: map[string]any{}}
		inv.groups[AllGroup] = all
	}
	// Validate children and hosts; collect every host name.
	parents := map[string][]string{}
	hostNames := map[string]bool{}
	for _, name := range inv.groupNames() {
		g := inv.groups[name]
		g.Hosts = uniqSorted(g.Hosts)
		g.Children = uniqSorted(g.Children)
		for _, c := range g.Children {
			if c == AllGroup {
				return nil, fmt.Errorf("group %s: %q cannot be a child group (every group is already in it)", name, AllGroup)
			}
			if _, ok := inv.groups[c]; !ok {
				return nil, fmt.Errorf("group %s: child group %q is not defined (defined groups: %s)", name, c, strings.Join(inv.groupNames(), ", "))
			}
			if name == AllGroup {
				// all's children (as Ansible JSON lists them) are simply
				// the top-level groups: all is not a parent like others.
				continue
			}
			parents[c] = append(parents[c], name)
		}
		for _, h := range g.Hosts {
			if err := checkName("host", h); err != nil {
				return nil, fmt.Errorf("group %s: %w", name, err)
			}
			hostNames[h] = true
		}
	}
	for h, vars := range hostVars {
		if err := checkName("host", h); err != nil {
			return nil, err
		}
		hostNames[h] = true
		inv.hostVars[h] = copyVars(vars)
	}
	depth, err := groupDepths(inv.groups, parents)
	if err != nil {
		return nil, err
	}
	// Membership: a host is in a group if listed there or in a descendant.
	member := map[string]map[string]bool{} // host -> groups
	var visit func(host, group string)
	visit = func(host, group string) {
		if member[host][group] {
			return
		}
		member[host][group] = true
		for _, p := range parents[group] {
			visit(host, p)
		}
	}
	for h := range hostNames {
		member[h] = map[string]bool{}
	}
	for _, g := range inv.groups {
		for _, h := range g.Hosts {
			visit(h, g.Name)
		}
	}
	// Ungrouped: hosts in no group but all (and ungrouped itself).
	var ungrouped []string
	for h := range hostNames {
		member[h][AllGroup] = true
		grouped := false
		for g := range member[h] {
			if g != AllGroup && g != UngroupedGroup {
				grouped = true
			}
		}
		if !grouped {
			ungrouped = append(ungrouped, h)
		}
	}
	if len(ungrouped) > 0 {
		ug, ok := inv.groups[UngroupedGroup]
		if !ok {
			ug = &Group{Name: UngroupedGroup, Vars: map[string]any{}}
			inv.groups[UngroupedGroup] = ug
			depth[UngroupedGroup] = 1
		}
		ug.Hosts = uniqSorted(append(ug.Hosts, ungrouped...))
		for _, h := range ungrouped {
			member[h][UngroupedGroup] = true
		}
	}
	// Hosts listed directly in all are shown under ungrouped (as Ansible).
	all.Hosts = nil
	// all's children: every group without a parent.
	all.Children = nil
	for name := range inv.groups {
		if name != AllGroup && len(parents[name]) == 0 {
			all.Children = append(all.Children, name)
		}
	}
	sort.Strings(all.Children)

	for h := range hostNames {
		var gs []string
		for g := range member[h] {
			gs = append(gs, g)
		}
		sort.Slice(gs, func(i, j int) bool {
			if depth[gs[i]] != depth[gs[j]] {
				return depth[gs[i]] < depth[gs[j]]
			}
			return gs[i] < gs[j]
		})
		vars := map[string]any{}
		for _, g := range gs {
			for k, v := range inv.groups[g].Vars {
				vars[k] = v
			}
		}
		for k, v := range inv.hostVars[h] {
			vars[k] = v
		}
		vars, err := mapAnsibleVars(h, vars, func(n string) bool { return hostNames[n] })
		if err != nil {
			return nil, err
		}
		sort.Strings(gs)
		inv.hosts[h] = &Host{Name: h, Vars: vars, Groups: gs}
	}
	inv.order = hostOrder(hostNames, order)
	return inv, nil
}

// hostOrder returns the names of hosts ordered as in order, then those
// order leaves out, sorted.
func hostOrder(hosts map[string]bool, order []string) []string {
	out := make([]string, 0, len(hosts))
	placed := make(map[string]bool, len(hosts))
	for _, h := range order {
		if hosts[h] && !placed[h] {
			placed[h] = true
			out = append(out, h)
		}
	}
	rest := len(out)
	for h := range hosts {
		if !placed[h] {
			out = append(out, h)
		}
	}
	sort.Strings(out[rest:])
	return out
}

// groupDepths returns each group's depth: the length of the longest chain
// of parents up to "all" (all is 0, a group without a parent 1). The
// longest chain is used so that a child is always deeper than every parent.
func groupDepths(groups map[string]*Group, parents map[string][]string) (map[string]int, error) {
	const (
		unvisited = iota
		inProgress
		done
	)
	state := map[string]int{}
	depth := map[string]int{AllGroup: 0}
	state[AllGroup] = done
	var stack []string
	var visit func(g string) error
	visit = func(g string) error {
		switch state[g] {
		case done:
			return nil
		case inProgress:
			// The cycle is the part of the stack from g's first occurrence.
			i := len(stack) - 1
			for i >= 0 && stack[i] != g {
				i--
			}
			path := append([]string{}, stack[i:]...)
			// stack is child -> parent; show parent -> child.
			for a, b := 0, len(path)-1; a < b; a, b = a+1, b-1 {
				path[a], path[b] = path[b], path[a]
			}
			// Start at the smallest name so the message is stable.
			m := 0
			for j := range path {
				if path[j] < path[m] {
					m = j
				}
			}
			path = append(append(append([]string{}, path[m:]...), path[:m]...), path[m])
			return &CycleError{Path: path}
		}
		state[g] = inProgress
		stack = append(stack, g)
		d := 1
		ps := append([]string{}, parents[g]...)
		sort.Strings(ps)
		for _, p := range ps {
			if err := visit(p); err != nil {
				return err
			}
			if depth[p]+1 > d {
				d = depth[p] + 1
			}
		}
		stack = stack[:len(stack)-1]
		state[g] = done
		depth[g] = d
		return nil
	}
	names := make([]string, 0, len(groups))
	for n := range groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return depth, nil
}

// checkName rejects names that patterns could never select.
func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("empty %s name", kind)
	}
	if strings.ContainsAny(name, " \t\r\n,") {
		return fmt.Errorf("%s name %q contains a space or comma", kind, name)
	}
	if name[0] == '!' || name[0] == '&' {
		return fmt.Errorf("%s name %q starts with %q, which --limit reads as an operator", kind, name, name[:1])
	}
	return nil
}

func uniqSorted(in []string) []string {
	if len(in) == 0 {
		return nil
	}
	s := append([]string{}, in...)
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func copyVars(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
