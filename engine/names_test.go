package engine_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// TestValidateNames: validate finds, offline, facts that do not exist and
// variables that nothing defines, in expressions, inline templates and
// template files (with the template file's line), and leaves alone what
// is defined or read leniently.
func TestValidateNames(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"t.tmpl": "a\n{{ .port }}\n{{ .facts.os_famly }}\n{{ range .list }}{{ .whatever }}{{ end }}\n",
		"site.toml": `[vars]
port = 1
list = [1]
[[roles]]
name = "r"
when = "facts.hostname != '' && (maybe ?? 1) == 1"
  [[roles.resources]]
  type = "shell"
  cmd = "echo {{ .prot }} {{ .from_inventory }}"
  register = "out"
  changed_when = "rc == 0 && stdout != ''"
  [[roles.resources]]
  type = "template"
  src = "t.tmpl"
  path = "/tmp/x"
  when = "out.rc == 0 && item_x == 1"
  [[roles.resources]]
  type = "echo"
  msg = "{{ .item }}"
  loop = "list"
`,
	}
	for n, c := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := providers.Registry()
	pol, err := policy.Load(filepath.Join(dir, "site.toml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	ev := engine.NewEvaluator(pol.Dir)
	for _, tc := range []struct {
		name    string
		outside map[string]bool
		want    []string
	}{
		{"inventory unknown: facts only", nil, []string{"t.tmpl:3: roles[0].resources[1].src: \"template t.tmpl\" reads facts.os_famly"}},
		{"inventory known", map[string]bool{"from_inventory": true}, []string{
			`site.toml:9: roles[0].resources[0].cmd: "echo {{ .prot }} {{ .from_inventory }}" reads the variable "prot", which nothing defines`,
			`did you mean "port"?`,
			`t.tmpl:3: roles[0].resources[1].src: "template t.tmpl" reads facts.os_famly`,
			`site.toml:16: roles[0].resources[1].when: "out.rc == 0 && item_x == 1" reads the variable "item_x"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var msgs []string
			for _, e := range engine.ValidateNames(pol, reg, ev, tc.outside) {
				msgs = append(msgs, e.Error())
			}
			got := strings.Join(msgs, "\n")
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got\n%s\nwant it to contain %q", got, w)
				}
			}
			if n := len(msgs); n != len(tc.want)-strings.Count(strings.Join(tc.want, "\n"), "did you mean") {
				t.Errorf("got %d problems; want %d:\n%s", n, len(tc.want)-strings.Count(strings.Join(tc.want, "\n"), "did you mean"), got)
			}
		})
	}
}
