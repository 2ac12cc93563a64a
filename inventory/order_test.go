package inventory

import (
	"context"
	"reflect"
	"testing"
)

// TestHostsInInventoryOrder loads inventories whose hosts are out of
// alphabetical order, in every format, and checks that Hosts (and so
// Select) keeps the order in which the names first appear.
func TestHostsInInventoryOrder(t *testing.T) {
	cases := []struct {
		name, file, content string
		want                []string
	}{
		{"TOML", "inv.toml", `
[groups.web.hosts]
"zeta" = ""
"alpha" = { x = 1 }
"mid" = "x=2"

[groups.db]
hosts = ["yak", "alpha", "bee"]
children = ["eu"]

[groups.eu.hosts.kilo]
x = 3

[groups.all.hosts]
"omega" = ""
"beta" = ""

[hosts.alpha.vars]
y = 1
`, []string{"zeta", "alpha", "mid", "yak", "bee", "kilo", "omega", "beta"}},
		{"TOML host vars first", "inv.toml", `
[hosts.zz.vars]
y = 1

[groups.web]
hosts = { aa = "", zz = "" }
`, []string{"zz", "aa"}},
		{"TOML dotted keys", "inv.toml", `
groups.web.hosts.q = ""
groups.web.hosts.c = ""
groups.db.hosts = ["b", "q", "a"]
`, []string{"q", "c", "b", "a"}},
		{"YAML", "inv.yaml", `
groups:
  web:
    hosts:
      zeta:
      alpha: {x: 1}
      mid: "x=2"
  db:
    hosts: [yak, alpha, bee]
    children: [eu]
  eu:
    hosts:
      kilo: {x: 3}
  all:
    hosts:
      omega:
      beta:
hosts:
  alpha:
    vars: {y: 1}
`, []string{"zeta", "alpha", "mid", "yak", "bee", "kilo", "omega", "beta"}},
		{"YAML aliases and merge keys", "inv.yml", `
groups:
  web:
    hosts: &webhosts
      zeta:
      alpha:
  db:
    hosts:
      yak:
      <<: *webhosts
      bee:
  eu:
    hosts: *webhosts
`, []string{"zeta", "alpha", "yak", "bee"}},
		{"JSON", "inv.json", `{
  "web": {"hosts": ["zeta", "alpha", "mid"], "vars": {"x": 1}},
  "db": ["yak", "alpha", "bee"],
  "eu": {"children": ["db"], "hosts": ["kilo"]},
  "_meta": {"hostvars": {"omega": {}, "alpha": {"y": 1}, "beta": {}}}
}`, []string{"zeta", "alpha", "mid", "yak", "bee", "kilo", "omega", "beta"}},
		{"JSON _meta first", "inv.json", `{
  "_meta": {"hostvars": {"zeta": {"v": [1, {"hosts": ["no"]}]}, "mid": {}}},
  "all": {"children": ["web"], "vars": {"hosts": ["not", "hosts"]}},
  "web": {"hosts": ["alpha", "mid", "zeta"]},
  "empty": null
}`, []string{"zeta", "mid", "alpha"}},
		{"script with _meta", "inventory", "#!/bin/sh\n" + `echo '{"web": ["zeta", "alpha"], "db": {"hosts": ["mid", "alpha"]}, "_meta": {"hostvars": {"beta": {}}}}'` + "\n",
			[]string{"zeta", "alpha", "mid", "beta"}},
		{"script without _meta", "inventory", `#!/bin/sh
case "$1" in
--list) echo '{"web": ["zeta", "alpha"], "db": {"hosts": ["mid", "alpha"], "vars": {}}}' ;;
--host) echo '{}' ;;
esac
`, []string{"zeta", "alpha", "mid"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.file, c.content, 0o755)
			inv, err := Load(context.Background(), p)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got := names(inv.Hosts()); !reflect.DeepEqual(got, c.want) {
				t.Errorf("Hosts(): got %v; want %v", got, c.want)
			}
			if got := names(inv.Select("", "")); !reflect.DeepEqual(got, c.want) {
				t.Errorf(`Select("", ""): got %v; want %v`, got, c.want)
			}
		})
	}
}

// TestHostsOrderOfNew checks that an inventory built by New, whose host
// variables come in a map, lists its hosts by name.
func TestHostsOrderOfNew(t *testing.T) {
	inv, err := New([]Group{{Name: "web", Hosts: []string{"zeta", "alpha"}}},
		map[string]map[string]any{"mid": {}, "beta": {}, "localhost": {"opsmop_connection": "local"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"alpha", "beta", "localhost", "mid", "zeta"}
	if got := names(inv.Hosts()); !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts(): got %v; want %v", got, want)
	}
}

func TestHostOrderFallback(t *testing.T) {
	hosts := map[string]bool{"c": true, "a": true, "b": true, "d": true}
	cases := []struct {
		order, want []string
	}{
		{nil, []string{"a", "b", "c", "d"}},
		{[]string{"d", "b"}, []string{"d", "b", "a", "c"}},
		{[]string{"x", "c", "c", "a", "b", "d"}, []string{"c", "a", "b", "d"}},
	}
	for _, c := range cases {
		if got := hostOrder(hosts, c.order); !reflect.DeepEqual(got, c.want) {
			t.Errorf("hostOrder(%v): got %v; want %v", c.order, got, c.want)
		}
	}
}
