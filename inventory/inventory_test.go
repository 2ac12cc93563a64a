package inventory

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type vars = map[string]any

func TestPrecedence(t *testing.T) {
	cases := []struct {
		name     string
		groups   []Group
		hostVars map[string]vars
		host     string
		want     vars
	}{
		{
			name:   "all only",
			groups: []Group{{Name: "all", Vars: vars{"x": "all"}}, {Name: "g", Hosts: []string{"h"}}},
			host:   "h",
			want:   vars{"x": "all"},
		},
		{
			name:   "group beats all",
			groups: []Group{{Name: "all", Vars: vars{"x": "all"}}, {Name: "g", Hosts: []string{"h"}, Vars: vars{"x": "g"}}},
			host:   "h",
			want:   vars{"x": "g"},
		},
		{
			name: "child beats parent, parent beats all",
			groups: []Group{
				{Name: "all", Vars: vars{"x": "all", "y": "all", "z": "all"}},
				{Name: "parent", Children: []string{"child"}, Vars: vars{"x": "parent", "y": "parent"}},
				{Name: "child", Hosts: []string{"h"}, Vars: vars{"x": "child"}},
			},
			host: "h",
			want: vars{"x": "child", "y": "parent", "z": "all"},
		},
		{
			name: "child beats parent even when parent name sorts later",
			groups: []Group{
				{Name: "zparent", Children: []string{"achild"}, Vars: vars{"x": "zparent"}},
				{Name: "achild", Hosts: []string{"h"}, Vars: vars{"x": "achild"}},
			},
			host: "h",
			want: vars{"x": "achild"},
		},
		{
			name: "grandchild beats child beats grandparent",
			groups: []Group{
				{Name: "a", Children: []string{"b"}, Vars: vars{"x": "a", "y": "a", "z": "a"}},
				{Name: "b", Children: []string{"c"}, Vars: vars{"x": "b", "y": "b"}},
				{Name: "c", Hosts: []string{"h"}, Vars: vars{"x": "c"}},
			},
			host: "h",
			want: vars{"x": "c", "y": "b", "z": "a"},
		},
		{
			name: "siblings merge in name order, later name wins",
			groups: []Group{
				{Name: "beta", Hosts: []string{"h"}, Vars: vars{"x": "beta", "y": "beta"}},
				{Name: "alpha", Hosts: []string{"h"}, Vars: vars{"x": "alpha", "z": "alpha"}},
			},
			host: "h",
			want: vars{"x": "beta", "y": "beta", "z": "alpha"},
		},
		{
			name: "deeper group beats shallower unrelated group regardless of name",
			groups: []Group{
				{Name: "a", Children: []string{"b"}},
				{Name: "b", Hosts: []string{"h"}, Vars: vars{"x": "b"}},
				{Name: "z", Hosts: []string{"h"}, Vars: vars{"x": "z"}},
			},
			host: "h",
			want: vars{"x": "b"},
		},
		{
			name: "depth is the longest chain: a child of all and of a deep group is deeper than that group",
			groups: []Group{
				{Name: "a", Children: []string{"b"}},
				{Name: "b", Children: []string{"c"}, Hosts: []string{"h"}, Vars: vars{"x": "b"}},
				{Name: "all", Children: []string{"c"}},
				{Name: "c", Hosts: []string{"h"}, Vars: vars{"x": "c"}},
			},
			host: "h",
			want: vars{"x": "c"},
		},
		{
			name: "host beats every group",
			groups: []Group{
				{Name: "all", Vars: vars{"x": "all"}},
				{Name: "g", Hosts: []string{"h"}, Vars: vars{"x": "g", "y": "g"}},
			},
			hostVars: map[string]vars{"h": {"x": "host"}},
			host:     "h",
			want:     vars{"x": "host", "y": "g"},
		},
		{
			name:     "ungrouped host gets all vars and its own",
			groups:   []Group{{Name: "all", Vars: vars{"x": "all", "y": "all"}}},
			hostVars: map[string]vars{"h": {"y": "host"}},
			host:     "h",
			want:     vars{"x": "all", "y": "host"},
		},
		{
			name: "replace, not deep merge",
			groups: []Group{
				{Name: "all", Vars: vars{"m": vars{"a": 1, "b": 2}}},
				{Name: "g", Hosts: []string{"h"}, Vars: vars{"m": vars{"a": 3}}},
			},
			host: "h",
			want: vars{"m": vars{"a": 3}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := New(c.groups, c.hostVars)
			if err != nil {
				t.Fatalf("New: got error %v; want nil", err)
			}
			h, ok := inv.Host(c.host)
			if !ok {
				t.Fatalf("Host(%q): not found; hosts %v", c.host, names(inv.Hosts()))
			}
			if !reflect.DeepEqual(h.Vars, c.want) {
				t.Errorf("vars of %s: got %v; want %v", c.host, h.Vars, c.want)
			}
		})
	}
}

func names(hs []*Host) []string {
	out := []string{}
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

func TestNewGroupsAndMembership(t *testing.T) {
	inv, err := New([]Group{
		{Name: "rack1", Children: []string{"web"}},
		{Name: "web", Hosts: []string{"w2", "w1"}},
		{Name: "db", Hosts: []string{"d1"}},
		{Name: "all", Hosts: []string{"loner", "w1"}},
	}, map[string]vars{"extra": {"a": 1}})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	wantGroups := map[string][]string{
		"w1":    {"all", "rack1", "web"},
		"w2":    {"all", "rack1", "web"},
		"d1":    {"all", "db"},
		"loner": {"all", "ungrouped"},
		"extra": {"all", "ungrouped"},
	}
	for h, want := range wantGroups {
		host, ok := inv.Host(h)
		if !ok {
			t.Errorf("Host(%q): not found", h)
			continue
		}
		if !reflect.DeepEqual(host.Groups, want) {
			t.Errorf("Groups of %s: got %v; want %v", h, host.Groups, want)
		}
	}
	if got, want := names(inv.Hosts()), []string{"d1", "extra", "loner", "w1", "w2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts(): got %v; want %v", got, want)
	}
	var gnames []string
	for _, g := range inv.Groups() {
		gnames = append(gnames, g.Name)
	}
	if want := []string{"all", "db", "rack1", "ungrouped", "web"}; !reflect.DeepEqual(gnames, want) {
		t.Errorf("Groups(): got %v; want %v", gnames, want)
	}
	all, _ := inv.Group("all")
	if want := []string{"db", "rack1", "ungrouped"}; !reflect.DeepEqual(all.Children, want) {
		t.Errorf("all.Children: got %v; want %v", all.Children, want)
	}
	if len(all.Hosts) != 0 {
		t.Errorf("all.Hosts: got %v; want none (direct hosts of all are shown in ungrouped)", all.Hosts)
	}
	ug, _ := inv.Group("ungrouped")
	if want := []string{"extra", "loner"}; !reflect.DeepEqual(ug.Hosts, want) {
		t.Errorf("ungrouped.Hosts: got %v; want %v", ug.Hosts, want)
	}
	web, _ := inv.Group("web")
	if want := []string{"w1", "w2"}; !reflect.DeepEqual(web.Hosts, want) {
		t.Errorf("web.Hosts: got %v; want %v (sorted)", web.Hosts, want)
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name   string
		groups []Group
		want   string
		cycle  []string
	}{
		{"self cycle", []Group{{Name: "a", Children: []string{"a"}}}, "a -> a", []string{"a", "a"}},
		{"two cycle", []Group{{Name: "a", Children: []string{"b"}}, {Name: "b", Children: []string{"a"}, Hosts: []string{"h"}}}, "cycle", nil},
		{"three cycle", []Group{
			{Name: "a", Children: []string{"b"}},
			{Name: "b", Children: []string{"c"}},
			{Name: "c", Children: []string{"a"}},
		}, "a -> b -> c -> a", []string{"a", "b", "c", "a"}},
		{"undefined child", []Group{{Name: "a", Children: []string{"nope"}}}, `child group "nope" is not defined`, nil},
		{"all as child", []Group{{Name: "a", Children: []string{"all"}}}, `"all" cannot be a child`, nil},
		{"empty group name", []Group{{Name: ""}}, "empty group name", nil},
		{"comma in host", []Group{{Name: "g", Hosts: []string{"a,b"}}}, "space or comma", nil},
		{"bang host", []Group{{Name: "g", Hosts: []string{"!a"}}}, "operator", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.groups, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("New: got error %v; want one containing %q", err, c.want)
			}
			if c.cycle != nil {
				var ce *CycleError
				if !errors.As(err, &ce) {
					t.Fatalf("New: got %T; want *CycleError", err)
				}
				if !reflect.DeepEqual(ce.Path, c.cycle) {
					t.Errorf("CycleError.Path: got %v; want %v", ce.Path, c.cycle)
				}
			}
		})
	}
}

func TestNewDoesNotAliasInput(t *testing.T) {
	gv := vars{"x": 1}
	hv := map[string]vars{"h": {"y": 2}}
	inv, err := New([]Group{{Name: "g", Hosts: []string{"h"}, Vars: gv}}, hv)
	if err != nil {
		t.Fatal(err)
	}
	gv["x"] = 99
	hv["h"]["y"] = 99
	h, _ := inv.Host("h")
	if want := (vars{"x": 1, "y": 2}); !reflect.DeepEqual(h.Vars, want) {
		t.Errorf("vars after modifying New's arguments: got %v; want %v", h.Vars, want)
	}
}
