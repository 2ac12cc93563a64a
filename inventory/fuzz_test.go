package inventory

import (
	"reflect"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// FuzzLoadInventory feeds arbitrary bytes to the TOML, YAML and JSON
// inventory parsers (what Load does after reading a file). None may panic;
// every error names the file; Hosts lists every host once, and all of
// them have vars and are in the all group. For YAML, the linear converter must agree with
// yaml.v3's own decoding whenever both accept the document.
func FuzzLoadInventory(f *testing.F) {
	seeds := []string{
		"[groups.web.hosts]\n\"web1\" = \"opsmop_host=10.0.0.1 opsmop_port=22\"\n[groups.all.vars]\nx = 1\n",
		"[groups.web]\nhosts = [\"a\", \"b\"]\nchildren = [\"db\"]\n[groups.db.hosts]\nd = { x = 1 }\n[hosts.a.vars]\ny = [1, 2]\n",
		"groups:\n  web:\n    hosts:\n      a: {x: 1}\n      b: \"y=2 z='q q'\"\n    vars: {p: 8080}\n    children: [db]\n  db:\n    hosts: {d: }\n",
		"base: &b {x: 1}\ngroups:\n  web:\n    hosts: {a: }\n    vars:\n      <<: *b\n      y: 2\n",
		"groups:\n  web:\n    vars:\n      a: &a [1, *a]\n",
		"groups:\n  1: {}\n  \"1\": {}\n",
		`{"web": {"hosts": ["a"], "vars": {"x": 1}, "children": ["db"]}, "db": ["d"], "_meta": {"hostvars": {"a": {"y": 2}}}}`,
		`{"all": {"hosts": ["h"]}, "ungrouped": {}}`,
		"a = [[[[1]]]]\n",
		"? [a]\n: 1\n",
		"all:\n  hosts:\n    web[1:3]:2222: {x: yes, y: 0644}\n  children:\n    g: {hosts: h, vars: {a: 1e3}}\n",
	}
	for i, s := range seeds {
		f.Add(s, uint8(i%3))
	}
	f.Fuzz(func(t *testing.T, src string, format uint8) {
		if len(src) > 1<<16 {
			return
		}
		var file string
		var inv *Inventory
		var err error
		switch format % 3 {
		case 0:
			file = "fuzz.toml"
			inv, err = parseTOML(file, []byte(src))
		case 1:
			file = "fuzz.yaml"
			if strings.Count(src, "*") > 50 {
				return // alias bombs: TestLoadHostileInput; here they only slow the fuzzer down
			}
			inv, err = parseYAML(file, []byte(src))
			yamlAgrees(t, src)
		default:
			file = "fuzz.json"
			inv, err = parseAnsibleJSON(file, []byte(src), true, nil)
		}
		if err != nil {
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the file %s", err, file)
			}
			return
		}
		hosts := inv.Hosts()
		if len(hosts) != len(inv.hosts) {
			t.Errorf("Hosts(): got %d hosts; want %d, each once", len(hosts), len(inv.hosts))
		}
		seen := map[string]bool{}
		for _, h := range hosts {
			if h == nil || seen[h.Name] {
				t.Fatalf("Hosts(): got %v; want every host once", names(hosts))
			}
			seen[h.Name] = true
			if h.Vars == nil {
				t.Errorf("host %q has nil vars", h.Name)
			}
			inAll := false
			for _, g := range h.Groups {
				inAll = inAll || g == AllGroup
			}
			if !inAll {
				t.Errorf("host %q is not in group %s: %v", h.Name, AllGroup, h.Groups)
			}
		}
	})
}

// yamlAgrees compares the linear YAML converter with yaml.v3's decoder on
// src, when both accept it.
func yamlAgrees(t *testing.T, src string) {
	var root yaml.Node
	if yaml.Unmarshal([]byte(src), &root) != nil || len(root.Content) != 1 {
		return
	}
	got, err := yamlValue(root.Content[0], 10000)
	if err != nil {
		return
	}
	var want any
	ok := func() (ok bool) {
		defer func() {
			if recover() != nil {
				ok = false // yaml.v3 panics on some inputs (unhashable keys)
			}
		}()
		return root.Content[0].Decode(&want) == nil
	}()
	if !ok {
		return
	}
	if g, w := normalize(got), normalize(want); !reflect.DeepEqual(g, w) {
		t.Errorf("YAML %q: converter gives %#v; yaml.v3 gives %#v", src, g, w)
	}
}

// FuzzINI feeds arbitrary bytes to the Ansible INI parser and arbitrary
// text to the Python literal reader: neither may panic, and every INI
// error names the file.
func FuzzINI(f *testing.F) {
	seeds := []string{
		"lonely a=1\n[web]\nweb[01:03].x:22 b=True c=\"x y\" d=[1,{'k':(2,)}]\n[web:vars]\ne='q'\n[top:children]\nweb\n",
		"h[a:f:2] x=1e3 y=0x1F z=-.5 w=None\n[g:vars]\nv = 23 # c\n",
		"[g]\nh x=b'y'\n", "h x=1+2j\n", "[p:children]\nc\n[c]\n", "h x=\"\\N{DASH}\"\n",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		if len(src) > 1<<14 {
			return
		}
		_, _ = pyLiteral(src)
		inv, err := parseINI("f.ini", []byte(src))
		if err != nil {
			if !strings.Contains(err.Error(), "f.ini") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, h := range inv.Hosts() {
			if h.Vars == nil {
				t.Fatalf("host %s has nil vars", h.Name)
			}
		}
	})
}
