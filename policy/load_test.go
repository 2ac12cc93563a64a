package policy

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

// stripPolicy clears what legitimately differs between a TOML and a YAML
// spelling of one policy: positions, raw nodes and the file name.
func stripPolicy(p *Policy) {
	p.File, p.Files = "", nil
	for _, r := range p.Roles {
		r.Pos = Pos{}
		r.keyPos = nil
		for _, list := range [][]*Resource{r.Pre, r.Resources, r.Handlers, r.Post} {
			for _, res := range list {
				res.Pos = Pos{}
				res.Raw = nil
			}
		}
	}
}

func jsonOf(v any) string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestFixturesDecodeAlike(t *testing.T) {
	reg := testRegistry()
	pt, err := Load("../testdata/policy/site.toml", reg)
	if err != nil {
		t.Fatalf("Load site.toml: %v", err)
	}
	py, err := Load("../testdata/policy/site.yaml", reg)
	if err != nil {
		t.Fatalf("Load site.yaml: %v", err)
	}

	// Spot-check the TOML result before comparing.
	if got, want := pt.Inventory, filepath.Join("..", "testdata", "policy", "inventory.toml"); got != want {
		t.Errorf("Inventory: got %q; want %q", got, want)
	}
	if got := pt.Vars["motd"]; got != "managed by opsmop" {
		t.Errorf("vars.motd: got %v; want managed by opsmop", got)
	}
	if len(pt.Roles) != 1 {
		t.Fatalf("roles: got %d; want 1", len(pt.Roles))
	}
	r := pt.Roles[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name", r.Name, "webservers"},
		{"groups", r.Groups, "webservers*"},
		{"ssh_as", *r.SSHAs, Login{Username: "deploy"}},
		{"sudo", *r.Sudo, true},
		{"sudo_as", *r.SudoAs, Login{Username: "root"}},
		{"check_host_keys", *r.CheckHostKeys, true},
		{"when", r.When, "facts.os_family == 'debian'"},
		{"vars", r.Vars, map[string]any{"http_port": 8080}},
		{"pre", r.Pre[0].Spec, &shellSpec{Cmd: "echo starting"}},
		{"directory", r.Resources[0].Spec, &directorySpec{Path: "/srv/app", Mode: "0755", State: "present"}},
		{"template", r.Resources[1].Spec, &templateSpec{Src: "templates/app.conf.tmpl", Path: "/etc/app/app.conf"}},
		{"notify", r.Resources[1].Notify, []string{"restart app"}},
		{"handler name", r.Handlers[0].Name, "restart app"},
		{"handler", r.Handlers[0].Spec, &serviceSpec{Service: "app", State: "restarted"}},
		{"post", r.Post[0].Spec, &shellSpec{Cmd: "echo done"}},
		{"resource path", r.Resources[1].Path, "roles[0].resources[1]"},
		{"resource pos", r.Resources[1].Pos, Pos{File: "../testdata/policy/site.toml", Line: 21}},
		{"role pos", r.Pos, Pos{File: "../testdata/policy/site.toml", Line: 5}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v; want %#v", c.name, c.got, c.want)
		}
	}

	stripPolicy(pt)
	stripPolicy(py)
	if !reflect.DeepEqual(pt, py) {
		t.Errorf("TOML and YAML policies differ:\nTOML %s\nYAML %s", jsonOf(pt), jsonOf(py))
	}
}

func TestLoadErrors(t *testing.T) {
	const head = "[[roles]]\nname = \"web\"\n"
	tests := []struct {
		name, src string
		want      []string
	}{
		{"brief example", head + "[[roles.resources]]\ntype = \"directory\"\npath = \"/srv\"\nmdoe = \"0755\"\n",
			[]string{`site.toml:6: roles[0].resources[0]: unknown key "mdoe" (did you mean "mode"?)`}},
		{"mode as integer", head + "[[roles.resources]]\ntype = \"directory\"\npath = \"/srv\"\nmode = 755\n",
			[]string{`site.toml:6: roles[0].resources[0].mode: want a string, got an integer 755 (quote it: "755")`}},
		{"unknown type", head + "[[roles.resources]]\ntype = \"servce\"\nservice = \"x\"\n",
			[]string{`site.toml:4: roles[0].resources[0].type: unknown resource type "servce" (did you mean "service"?); known types: directory, package, service, shell, template`}},
		{"missing type", head + "[[roles.resources]]\nservice = \"x\"\n",
			[]string{`site.toml:3: roles[0].resources[0]: missing required key "type"`}},
		{"missing spec key", head + "[[roles.pre]]\ntype = \"shell\"\n",
			[]string{`site.toml:3: roles[0].pre[0]: missing required key "cmd"`}},
		{"common key typo suggested", head + "[[roles.resources]]\ntype = \"shell\"\ncmd = \"x\"\nlable = \"y\"\n",
			[]string{`site.toml:6: roles[0].resources[0]: unknown key "lable" (did you mean "label"?)`}},
		{"bad enum", head + "[[roles.handlers]]\nname = \"h\"\ntype = \"service\"\nservice = \"x\"\nstate = \"restartd\"\n",
			[]string{`site.toml:7: roles[0].handlers[0].state: invalid value "restartd": want one of "started", "stopped", "restarted", "reloaded" (did you mean "restarted"?)`}},
		{"name outside handlers", head + "[[roles.resources]]\nname = \"x\"\ntype = \"shell\"\ncmd = \"x\"\n",
			[]string{`site.toml:4: roles[0].resources[0]: name is only for handlers (what notify refers to); use label to name a resource in output`}},
		{"package may use its own name", head + "[[roles.resources]]\ntype = \"package\"\nname = \"nginx\"\n", nil},
		{"handler without name", head + "[[roles.handlers]]\ntype = \"shell\"\ncmd = \"x\"\n",
			[]string{`site.toml:3: roles[0].handlers[0]: missing required key "name" (a handler's name is what notify refers to)`}},
		{"package as handler", head + "[[roles.handlers]]\nname = \"p\"\ntype = \"package\"\n",
			[]string{`site.toml:5: roles[0].handlers[0].type: package cannot be a handler: handlers may be of type directory, service, shell, template`}},
		{"duplicate handler", head + "[[roles.handlers]]\nname = \"h\"\ntype = \"shell\"\ncmd = \"a\"\n[[roles.handlers]]\nname = \"h\"\ntype = \"shell\"\ncmd = \"b\"\n",
			[]string{`site.toml:8: roles[0].handlers[1].name: duplicate handler name "h" (first defined at site.toml:4)`}},
		{"notify unknown handler", head + "[[roles.resources]]\ntype = \"shell\"\ncmd = \"x\"\nnotify = [\"restart ap\", \"other\"]\n[[roles.handlers]]\nname = \"restart app\"\ntype = \"service\"\nservice = \"app\"\n",
			[]string{
				`site.toml:6: roles[0].resources[0].notify[0]: no handler named "restart ap" in role "web" (did you mean "restart app"?); its handlers: "restart app"`,
				`site.toml:6: roles[0].resources[0].notify[1]: no handler named "other" in role "web"; its handlers: "restart app"`,
			}},
		{"notify without handlers", head + "[[roles.resources]]\ntype = \"shell\"\ncmd = \"x\"\nnotify = \"h\"\n",
			[]string{`site.toml:6: roles[0].resources[0].notify: no handler named "h" in role "web"; the role has no handlers`}},
		{"role name missing", "[[roles]]\ngroups = \"x\"\n",
			[]string{`site.toml:1: roles[0]: missing required key "name"`}},
		{"unknown top-level key", "invntory = \"x\"\n",
			[]string{`site.toml:1: unknown key "invntory" (did you mean "inventory"?)`}},
		{"roles not a list", "[roles]\nname = \"x\"\n",
			[]string{`site.toml:1: roles: want a list of roles, got a map (in TOML write [[roles]])`}},
		{"resources not a list", head + "[roles.resources]\ntype = \"shell\"\n",
			[]string{`site.toml:3: roles[0].resources: want a list of resources, got a map (in TOML write [[roles.resources]] blocks)`}},
		{"serial forms", head + "serial = [1, \"25%\", 0, \"150%\", \"x\"]\n",
			[]string{
				`site.toml:3: roles[0].serial[2]: want a number of hosts (at least 1) or a percentage like "25%", got an integer 0`,
				`site.toml:3: roles[0].serial[3]: want a number of hosts (at least 1) or a percentage like "25%", got a string "150%"`,
				`site.toml:3: roles[0].serial[4]: want a number of hosts (at least 1) or a percentage like "25%", got a string "x"`,
			}},
		{"max_fail_percentage range", head + "max_fail_percentage = 120\n",
			[]string{`site.toml:3: roles[0].max_fail_percentage: want a percentage from 0 to 100, got 120`}},
		{"sudo_as private key", head + "sudo_as = { username = \"root\", private_key = \"k\" }\n",
			[]string{`site.toml:3: roles[0].sudo_as: private_key applies to ssh_as only; sudo does not use keys`}},
		{"password never echoed", head + "ssh_as = { username = \"u\", password = 12345678 }\n",
			[]string{`site.toml:3: roles[0].ssh_as.password: want a string, got an integer (quote it)`}},
		{"loop of wrong type", head + "[[roles.resources]]\ntype = \"shell\"\ncmd = \"x\"\nloop = 3\n",
			[]string{`site.toml:6: roles[0].resources[0].loop: want a list or an expression string giving a list, got an integer 3`}},
		{"negative retries", head + "[[roles.resources]]\ntype = \"shell\"\ncmd = \"x\"\nretries = -1\n",
			[]string{`site.toml:6: roles[0].resources[0].retries: want 0 or more, got -1`}},
		{"many problems at once", "invntory = 1\n" + head + "sudo = \"yes\"\n[[roles.resources]]\ntype = \"directory\"\nmdoe = \"0755\"\n[[roles.resources]]\ntype = \"nope\"\n",
			[]string{
				`site.toml:1: unknown key "invntory" (did you mean "inventory"?)`,
				`site.toml:4: roles[0].sudo: want a boolean (true or false), got a string "yes" (write true or false without quotes)`,
				`site.toml:5: roles[0].resources[0]: missing required key "path"`,
				`site.toml:7: roles[0].resources[0]: unknown key "mdoe" (did you mean "mode"?)`,
				`site.toml:9: roles[0].resources[1].type: unknown resource type "nope"; known types: directory, package, service, shell, template`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := loadBytes("site.toml", []byte(tt.src), testRegistry(), memFS(nil))
			if got, want := strings.Join(errLines(err), "\n"), strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got errors\n%s\nwant\n%s", got, want)
			}
			if err != nil {
				var el ErrorList
				if !errors.As(err, &el) {
					t.Errorf("got error type %T; want ErrorList", err)
				}
				if p != nil {
					t.Errorf("got a policy with errors; want nil")
				}
			} else if p == nil {
				t.Errorf("got nil policy and nil error")
			}
		})
	}
}

func TestLoadValues(t *testing.T) {
	src := `
roles:
  - name: web
    serial: [1, "25%"]
    max_fail_percentage: 10
    tags: deploy
    ssh_as: {username: u, password: "env:PW", private_key: ~/.ssh/id}
    resources:
      - type: package
        name: nginx
      - type: package
        name: [a, b]
        loop: "{{ items }}"
      - type: shell
        cmd: x
        loop: [1, two]
        retries: 3
        delay: 2s
        until: result.rc == 0
        register: out
        ignore_errors: true
        vars: {k: v}
        tags: [t1, t2]
        label: run x
  - name: db
    serial: 2
`
	p, err := loadBytes("site.yaml", []byte(src), testRegistry(), memFS(nil))
	if err != nil {
		t.Fatal(err)
	}
	web := p.Roles[0]
	mf := 10.0
	checks := []struct {
		name      string
		got, want any
	}{
		{"serial list", web.Serial, []BatchSize{{Hosts: 1}, {Percent: 25}}},
		{"serial int", p.Roles[1].Serial, []BatchSize{{Hosts: 2}}},
		{"max_fail_percentage", web.MaxFailPercentage, &mf},
		{"tags list1", web.Tags, []string{"deploy"}},
		{"ssh_as", *web.SSHAs, Login{Username: "u", Password: "env:PW", PrivateKey: "~/.ssh/id"}},
		{"package single", web.Resources[0].Spec, &packageSpec{Name: []string{"nginx"}}},
		{"package list", web.Resources[1].Spec, &packageSpec{Name: []string{"a", "b"}}},
		{"loop expr", web.Resources[1].Loop, &Loop{Expr: "{{ items }}"}},
		{"loop list", web.Resources[2].Loop, &Loop{Items: []any{1, "two"}}},
		{"retries", web.Resources[2].Retries, 3},
		{"delay", web.Resources[2].Delay.String(), "2s"},
		{"until", web.Resources[2].Until, "result.rc == 0"},
		{"register", web.Resources[2].Register, "out"},
		{"ignore_errors", web.Resources[2].IgnoreErrors, true},
		{"vars", web.Resources[2].Vars, map[string]any{"k": "v"}},
		{"tags", web.Resources[2].Tags, []string{"t1", "t2"}},
		{"label", web.Resources[2].Label, "run x"},
		{"policy without inventory", p.Inventory, ""},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v; want %#v", c.name, c.got, c.want)
		}
	}
}

func TestInclude(t *testing.T) {
	files := map[string]string{
		"site.toml": `
[[roles]]
include = "roles/web.toml"
vars = { b = 2 }
groups = "override*"

[[roles]]
include = "roles/noname.yaml"
`,
		"roles/web.toml": `
name = "web"
groups = "web*"
hosts = "h*"
vars = { a = 1 }
[[resources]]
type = "shell"
cmd = "x"
notify = "h"
[[handlers]]
name = "h"
type = "shell"
cmd = "y"
`,
		"roles/noname.yaml": "include: base.yaml\nsudo: true\n",
		"roles/base.yaml":   "sudo: false\ntags: [base]\npre:\n  - {type: shell, cmd: b}\n",
	}
	dir := t.TempDir()
	testutil.WriteTree(t, dir, files)
	p, err := Load(filepath.Join(dir, "site.toml"), testRegistry())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	web, noname := p.Roles[0], p.Roles[1]
	checks := []struct {
		name      string
		got, want any
	}{
		{"name from file", web.Name, "web"},
		{"include path", web.Include, filepath.Join(dir, "roles", "web.toml")},
		{"groups overridden", web.Groups, "override*"},
		{"hosts from file", web.Hosts, "h*"},
		{"vars replaced whole", web.Vars, map[string]any{"b": 2}},
		{"resources from file", web.Resources[0].Spec, &shellSpec{Cmd: "x"}},
		{"resource pos in role file", web.Resources[0].Pos, Pos{File: filepath.Join(dir, "roles", "web.toml"), Line: 6}},
		{"role pos in policy", web.Pos, Pos{File: filepath.Join(dir, "site.toml"), Line: 2}},
		{"name from file name", noname.Name, "noname"},
		{"nested include, override", *noname.Sudo, true},
		{"nested include, inherited", noname.Tags, []string{"base"}},
		{"files read", p.Files, []string{filepath.Join(dir, "site.toml"), filepath.Join(dir, "roles", "web.toml"), filepath.Join(dir, "roles", "noname.yaml"), filepath.Join(dir, "roles", "base.yaml")}},
		{"nested include, resource", noname.Pre[0].Spec, &shellSpec{Cmd: "b"}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: got %#v; want %#v", c.name, c.got, c.want)
		}
	}
}

func TestKeyPos(t *testing.T) {
	// Role and resource keys each carry their own line, so that an error
	// about one (a bad when, say) points at it rather than at [[roles]].
	files := map[string]string{
		"site.toml": `[[roles]]
name = "web"
hosts = "web*"
groups = "app"
when = "facts.os == 'linux'"
serial = [1, "50%"]
tags = ["a"]
  [roles.vars]
  x = 1
  [[roles.resources]]
  type = "shell"
  cmd = "true"
  when = "x == 1"
[[roles]]
include = "roles/db.toml"
hosts = "db*"
`,
		"site.yaml": `roles:
  - name: web
    hosts: web*
    groups: app
    when: facts.os == 'linux'
    serial: [1, 50%]
    tags: [a]
    vars:
      x: 1
    resources:
      - type: shell
        cmd: "true"
        when: x == 1
  - include: roles/db.toml
    hosts: db*
`,
		"roles/db.toml": `name = "db"
when = "facts.os == 'bsd'"
hosts = "from-file*"
`,
	}
	dir := t.TempDir()
	testutil.WriteTree(t, dir, files)
	dbFile := filepath.Join(dir, "roles", "db.toml")
	for _, f := range []struct {
		name          string
		besideInclude int // the line of hosts beside include
	}{{"site.toml", 16}, {"site.yaml", 15}} {
		t.Run(f.name, func(t *testing.T) {
			file := filepath.Join(dir, f.name)
			p, err := Load(file, testRegistry())
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			web, db := p.Roles[0], p.Roles[1]
			res := web.Resources[0]
			at := func(line int) Pos { return Pos{File: file, Line: line} }
			tests := []struct {
				name      string
				got, want Pos
			}{
				{"role hosts", web.KeyPos("hosts"), at(3)},
				{"role groups", web.KeyPos("groups"), at(4)},
				{"role when", web.KeyPos("when"), at(5)},
				{"role serial", web.KeyPos("serial"), at(6)},
				{"role tags", web.KeyPos("tags"), at(7)},
				{"role vars", web.KeyPos("vars"), at(8)},
				{"role key not set: the role's line", web.KeyPos("sudo"), web.Pos},
				{"included role's when: its file", db.KeyPos("when"), Pos{File: dbFile, Line: 2}},
				{"key set beside include", db.KeyPos("hosts"), at(f.besideInclude)},
				{"resource when", res.KeyPos("when"), at(13)},
				{"resource type's own key", res.KeyPos("cmd"), at(12)},
				{"resource key not set: the resource's line", res.KeyPos("loop"), res.Pos},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					if tt.got != tt.want {
						t.Errorf("got %v; want %v", tt.got, tt.want)
					}
				})
			}
		})
	}
	// Made by hand, without Load: the role's and resource's own position.
	pos := Pos{File: "x.toml", Line: 7}
	if got := (&Role{Pos: pos}).KeyPos("when"); got != pos {
		t.Errorf("Role without key positions: got %v; want %v", got, pos)
	}
	if got := (&Resource{Pos: pos}).KeyPos("when"); got != pos {
		t.Errorf("Resource without Raw: got %v; want %v", got, pos)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  []string // "DIR" is replaced by the temp dir
	}{
		{"missing file", map[string]string{"site.toml": "[[roles]]\ninclude = \"roles/nope.toml\"\n"},
			[]string{`DIR/site.toml:2: roles[0].include: cannot include "roles/nope.toml": no such file (looked for DIR/roles/nope.toml)`}},
		{"cycle", map[string]string{
			"site.toml": "[[roles]]\ninclude = \"a.toml\"\n",
			"a.toml":    "include = \"b.yaml\"\n",
			"b.yaml":    "include: a.toml\n",
		}, []string{`DIR/b.yaml:1: roles[0].include: include cycle: DIR/a.toml -> DIR/b.yaml -> DIR/a.toml`}},
		{"include of the policy itself", map[string]string{"site.toml": "[[roles]]\ninclude = \"site.toml\"\n"},
			[]string{`DIR/site.toml:2: roles[0].include: include cycle: DIR/site.toml -> DIR/site.toml`}},
		{"escape", map[string]string{"site.toml": "[[roles]]\ninclude = \"../x.toml\"\n"},
			[]string{`DIR/site.toml:2: roles[0].include: "../x.toml" is outside the policy directory DIR; move the file under it or use an absolute path`}},
		{"not a string", map[string]string{"site.toml": "[[roles]]\nname = \"x\"\ninclude = 1\n"},
			[]string{`DIR/site.toml:3: roles[0].include: want a file name, got an integer 1`}},
		{"errors inside the role file", map[string]string{
			"site.toml":      "[[roles]]\ninclude = \"roles/web.toml\"\nsudo = 1\n",
			"roles/web.toml": "name = \"web\"\n[[resources]]\ntype = \"directory\"\npath = \"/x\"\nmdoe = \"1\"\n",
		}, []string{
			`DIR/roles/web.toml:5: roles[0].resources[0]: unknown key "mdoe" (did you mean "mode"?)`,
			`DIR/site.toml:3: roles[0].sudo: want a boolean (true or false), got an integer 1`,
		}},
		{"syntax error in role file", map[string]string{
			"site.toml":      "[[roles]]\ninclude = \"roles/web.toml\"\n",
			"roles/web.toml": "name = \n",
		}, []string{`DIR/roles/web.toml:1: invalid TOML: unexpected character U+000A at start of value`}},
		{"role file is a list", map[string]string{
			"site.toml":      "[[roles]]\ninclude = \"roles/web.yaml\"\n",
			"roles/web.yaml": "- a\n",
		}, []string{`DIR/roles/web.yaml:1: a role file holds role keys (name, resources, ...), got a list`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.WriteTree(t, dir, tt.files)
			_, err := Load(filepath.Join(dir, "site.toml"), testRegistry())
			got := strings.ReplaceAll(strings.Join(errLines(err), "\n"), dir, "DIR")
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("got errors\n%s\nwant\n%s", got, want)
			}
		})
	}
}

func TestIncludeAbsolutePathAllowed(t *testing.T) {
	outside := t.TempDir()
	testutil.WriteTree(t, outside, map[string]string{"web.toml": "name = \"web\"\n"})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": "[[roles]]\ninclude = " + jsonOf(filepath.Join(outside, "web.toml")) + "\n"})
	p, err := Load(filepath.Join(dir, "site.toml"), testRegistry())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got := p.Roles[0].Name; got != "web" {
		t.Errorf("name: got %q; want web", got)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.toml"), testRegistry())
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("got %v; want a not-exist error", err)
	}
}
