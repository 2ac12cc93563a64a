package main

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// slicePolicy has two roles on overlapping groups: a host's roles all
// run in the same slice.
const slicePolicy = `
[[roles]]
name = "web"
groups = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/slice-web"
  content = "web\n"
[[roles]]
name = "all"
groups = "all"
  [[roles.resources]]
  type = "file"
  path = "/srv/slice-all"
  content = "all\n"
`

// TestLabSlices: over real SSH hosts, check --slice K/3 --json for every
// K covers every host once (the slices' recap equals the whole check's);
// apply --slice 1/2 changes only its hosts, and 2/2 the rest, after
// which everything checks clean; run and facts take the same slices.
func TestLabSlices(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 65, Hosts: []lab.HostSpec{
		{Name: "w1", Group: "web"}, {Name: "w2", Group: "web"}, {Name: "w3", Group: "web"}, {Name: "d1", Group: "db"}, {Name: "d2", Group: "db"},
	}})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": slicePolicy})
	env := labEnv(t, l, nil)
	policy := filepath.Join(dir, "site.toml")
	recapLines := func(out string) string {
		var hosts []string
		for _, m := range regexp.MustCompile(`(?m)^([wd][0-9]) +(ok=.*)$`).FindAllStringSubmatch(out, -1) {
			hosts = append(hosts, m[1]+" "+m[2])
		}
		sort.Strings(hosts)
		return strings.Join(hosts, "\n")
	}
	code, whole, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory)
	if code != 0 {
		t.Fatalf("check: exit %d\n%s%s", code, whole, errOut)
	}
	var files []string
	for _, k := range []string{"1/3", "2/3", "3/3"} {
		code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--slice", k, "--json")
		if code != 0 {
			t.Fatalf("check --slice %s: exit %d\n%s%s", k, code, out, errOut)
		}
		f := filepath.Join(dir, strings.ReplaceAll(k, "/", "of")+".json")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	code, merged, errOut := opsmop(t, env, append([]string{"recap", "--detailed-exitcode"}, files...)...)
	if code != exitPending || recapLines(merged) != recapLines(whole) || recapLines(whole) == "" {
		t.Fatalf("recap of the slices: exit %d, hosts\n%s\nwant exit 2 and as the whole check:\n%s\n%s", code, recapLines(merged), recapLines(whole), errOut)
	}

	// apply slice 1 of 2 (sorted d1 d2 w1 w2 w3: d1, w1, w3), then 2.
	code, out, errOut := opsmop(t, env, "apply", policy, "-i", l.Inventory, "--slice", "1/2")
	if code != 0 || recapLines(out) != "d1 ok=0 changed=1 failed=0 skipped=0 unreachable=0\nw1 ok=0 changed=2 failed=0 skipped=0 unreachable=0\nw3 ok=0 changed=2 failed=0 skipped=0 unreachable=0" {
		t.Fatalf("apply --slice 1/2: exit %d\n%s%s", code, out, errOut)
	}
	for name, want := range map[string]string{"d1": "all\n", "w1": "web\nall\n", "d2": "", "w2": ""} {
		got, _ := l.Host(name).Exec(t.Context(), "cat /srv/slice-web /srv/slice-all 2>/dev/null; true")
		if string(got) != want {
			t.Errorf("%s after slice 1/2: got %q; want %q", name, got, want)
		}
	}
	if code, out, errOut := opsmop(t, env, "apply", policy, "-i", l.Inventory, "--slice", "2/2"); code != 0 || !strings.Contains(out, "hosts=2 ok=0 changed=3") {
		t.Fatalf("apply --slice 2/2: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--detailed-exitcode"); code != 0 {
		t.Fatalf("check after both slices: exit %d\n%s%s", code, out, errOut)
	}
	// run and facts: the same split of the inventory's hosts.
	code, out, _ = opsmop(t, env, "run", "-i", l.Inventory, "--slice", "2/2", "--", "hostname")
	if code != 0 || !strings.Contains(out, "hosts=2 ok=2") || !strings.Contains(out, "d2 | ") || !strings.Contains(out, "w2 | ") {
		t.Errorf("run --slice 2/2: exit %d\n%s", code, out)
	}
	code, out, _ = opsmop(t, env, "facts", "-i", l.Inventory, "--slice", "3/5", "--json")
	if code != 0 || !strings.Contains(out, `"w1"`) || strings.Contains(out, `"w2"`) {
		t.Errorf("facts --slice 3/5: exit %d; want w1 only\n%s", code, out)
	}
	if code, _, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--slice", "3/2"); code != exitInvalid || !strings.Contains(errOut, `--slice "3/2": the slice must be 1 to 2`) {
		t.Errorf("--slice 3/2: exit %d, %s; want exit 3 naming the slice", code, errOut)
	}
}
