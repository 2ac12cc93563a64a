package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// ansibleList runs ansible-inventory --list on file and returns its hosts'
// groups (children resolved, all and ungrouped included) and merged vars.
func ansibleList(t *testing.T, bin, file string) (map[string][]string, map[string]map[string]any) {
	t.Helper()
	cmd := exec.Command(bin, "-i", file, "--list")
	cmd.Env = append(os.Environ(), "ANSIBLE_INVENTORY_UNPARSED_FAILED=true", "ANSIBLE_LOCALHOST_WARNING=false", "ANSIBLE_NOCOLOR=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ansible-inventory -i %s --list: %v\n%s", file, err, stderr.String())
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("ansible-inventory output: %v", err)
	}
	doc := normalize(raw).(map[string]any)
	// opsmop reads Ansible's --list JSON to the same inventory too.
	fromJSON, err := parseAnsibleJSON(file+".json", out, false, nil)
	if err != nil {
		t.Fatalf("opsmop on ansible-inventory's JSON: %v", err)
	}
	fromFile, err := Load(context.Background(), file)
	if err != nil {
		t.Fatalf("opsmop: %v", err)
	}
	for _, h := range fromFile.Hosts() {
		j, ok := fromJSON.Host(h.Name)
		if !ok || !reflect.DeepEqual(j.Vars, h.Vars) || !reflect.DeepEqual(j.Groups, h.Groups) {
			t.Errorf("host %s from the --list JSON: got %v; want %+v", h.Name, j, *h)
		}
	}
	parents := map[string][]string{}
	direct := map[string][]string{} // host -> groups listing it
	for g, v := range doc {
		if g == "_meta" {
			continue
		}
		m, _ := v.(map[string]any)
		for _, c := range asStrings(m["children"]) {
			if g != AllGroup {
				parents[c] = append(parents[c], g)
			}
		}
		for _, h := range asStrings(m["hosts"]) {
			direct[h] = append(direct[h], g)
		}
	}
	hostvars := map[string]map[string]any{}
	meta, _ := doc["_meta"].(map[string]any)
	hv, _ := meta["hostvars"].(map[string]any)
	for h, v := range hv {
		vars, _ := v.(map[string]any)
		hostvars[h] = vars
	}
	groups := map[string][]string{}
	for h := range hostvars {
		set := map[string]bool{AllGroup: true}
		var up func(g string)
		up = func(g string) {
			if set[g] {
				return
			}
			set[g] = true
			for _, p := range parents[g] {
				up(p)
			}
		}
		for _, g := range direct[h] {
			up(g)
		}
		for g := range set {
			groups[h] = append(groups[h], g)
		}
		sort.Strings(groups[h])
	}
	return groups, hostvars
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// TestAnsibleDifferential loads every inventory of testdata/ansible with
// opsmop and with ansible-inventory and compares hosts, group membership
// and each host's merged variables (Ansible's side translated by the same
// mapping of connection variables). Under CI=true a missing
// ansible-inventory is a failure.
func TestAnsibleDifferential(t *testing.T) {
	bin, err := exec.LookPath("ansible-inventory")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ansible-inventory not found: install ansible: .ci/deps does")
		}
		t.Skip("ansible-inventory not found (install the Debian package ansible, or run .ci/deps); skipping the comparison with Ansible")
	}
	files, err := filepath.Glob(filepath.Join("testdata", "ansible", "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			inv, err := Load(context.Background(), file)
			if err != nil {
				t.Fatalf("opsmop: %v", err)
			}
			groups, hostvars := ansibleList(t, bin, file)
			isHost := func(n string) bool { _, ok := hostvars[n]; return ok }
			var names []string
			for _, h := range inv.Hosts() {
				names = append(names, h.Name)
			}
			sort.Strings(names)
			var want []string
			for h := range hostvars {
				want = append(want, h)
			}
			sort.Strings(want)
			if !reflect.DeepEqual(names, want) {
				t.Fatalf("hosts: got %v; want %v", names, want)
			}
			for _, h := range inv.Hosts() {
				if !reflect.DeepEqual(h.Groups, groups[h.Name]) {
					t.Errorf("host %s groups: got %v; want %v", h.Name, h.Groups, groups[h.Name])
				}
				wv, err := mapAnsibleVars(h.Name, hostvars[h.Name], isHost)
				if err != nil {
					t.Fatalf("mapping Ansible's vars: %v", err)
				}
				if len(wv) == 0 && len(h.Vars) == 0 {
					continue
				}
				if !reflect.DeepEqual(h.Vars, wv) {
					t.Errorf("host %s vars:\n got %#v;\nwant %#v", h.Name, h.Vars, wv)
				}
			}
		})
	}
}
