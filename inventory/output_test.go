package inventory

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestGraph(t *testing.T) {
	cases := []struct {
		name string
		inv  func(t *testing.T) *Inventory
		want string
	}{
		{"example", func(t *testing.T) *Inventory { return loadExample(t, "example.toml") }, `@all:
  |--@dbservers:
  |  |--db1.example.com
  |--@rack1:
  |  |--@webservers:
  |  |  |--127.0.0.1
  |  |  |--web1.example.com
  |  |  |--web2.example.com
  |--@ungrouped:
  |  |--lonely.example.com
  |--@webservers_eu:
  |  |--web3.example.com
`},
		{"group with two parents is shown under both, children before hosts", func(t *testing.T) *Inventory {
			inv, err := New([]Group{
				{Name: "a", Children: []string{"shared"}, Hosts: []string{"ha"}},
				{Name: "b", Children: []string{"shared"}},
				{Name: "shared", Hosts: []string{"s1"}},
			}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return inv
		}, `@all:
  |--@a:
  |  |--@shared:
  |  |  |--s1
  |  |--ha
  |--@b:
  |  |--@shared:
  |  |  |--s1
`},
		{"empty", func(t *testing.T) *Inventory {
			inv, err := New(nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			return inv
		}, "@all:\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.inv(t).Graph(&b); err != nil {
				t.Fatalf("Graph: %v", err)
			}
			if b.String() != c.want {
				t.Errorf("Graph: got\n%s\nwant\n%s", b.String(), c.want)
			}
		})
	}
}

func TestMarshalAnsibleJSON(t *testing.T) {
	inv, err := New([]Group{
		{Name: "all", Vars: map[string]any{"opsmop_ssh_password": "hunter2", "user": "deploy"}},
		{Name: "web", Hosts: []string{"w1"}, Vars: map[string]any{"nested": map[string]any{"db_password": "hunter3", "x": []any{map[string]any{"password": "hunter4"}}}}},
		{Name: "rack", Children: []string{"web"}},
	}, map[string]map[string]any{
		"w1":   {"opsmop_sudo_password": "hunter5", "port": 22},
		"solo": {},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := inv.MarshalAnsibleJSON(SecretKey)
	if err != nil {
		t.Fatalf("MarshalAnsibleJSON: %v", err)
	}
	for _, pw := range []string{"hunter2", "hunter3", "hunter4", "hunter5"} {
		if bytes.Contains(b, []byte(pw)) {
			t.Errorf("JSON reveals %s:\n%s", pw, b)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, b)
	}
	want := map[string]any{
		"_meta": map[string]any{"hostvars": map[string]any{
			"w1": map[string]any{
				"opsmop_ssh_password":  "<redacted>",
				"opsmop_sudo_password": "<redacted>",
				"user":                 "deploy",
				"port":                 22.0,
				"nested":               map[string]any{"db_password": "<redacted>", "x": []any{map[string]any{"password": "<redacted>"}}},
			},
			"solo": map[string]any{"opsmop_ssh_password": "<redacted>", "user": "deploy"},
		}},
		"all":       map[string]any{"children": []any{"rack", "ungrouped"}, "vars": map[string]any{"opsmop_ssh_password": "<redacted>", "user": "deploy"}},
		"rack":      map[string]any{"children": []any{"web"}},
		"web":       map[string]any{"hosts": []any{"w1"}, "vars": map[string]any{"nested": map[string]any{"db_password": "<redacted>", "x": []any{map[string]any{"password": "<redacted>"}}}}},
		"ungrouped": map[string]any{"hosts": []any{"solo"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("MarshalAnsibleJSON:\ngot  %v\nwant %v", got, want)
	}
	if !strings.HasPrefix(string(b), "{\n    \"_meta\"") {
		t.Errorf("MarshalAnsibleJSON: got %.40q...; want indented JSON starting with _meta", b)
	}

	// Without redaction the values are there (the redaction above is not
	// an accident of encoding).
	plain, err := inv.MarshalAnsibleJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(plain, []byte("hunter5")) {
		t.Errorf("MarshalAnsibleJSON(nil): want values unredacted; got\n%s", plain)
	}
	// The inventory's own vars are not modified by redaction.
	h, _ := inv.Host("w1")
	if h.Vars["opsmop_sudo_password"] != "hunter5" {
		t.Errorf("host vars after MarshalAnsibleJSON: got %v; want the password unchanged", h.Vars["opsmop_sudo_password"])
	}
}
