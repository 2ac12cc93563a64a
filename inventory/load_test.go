package inventory

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// exampleHosts is what testdata/example.{toml,yaml} must load to.
var exampleHosts = map[string]struct {
	groups []string
	vars   vars
}{
	"web1.example.com": {
		[]string{"all", "rack1", "webservers"},
		vars{"opsmop_ssh_username": "deploy", "region": "eu", "tier": "front", "rack": 1, "http_port": 9000, "opsmop_host": "10.0.0.5"},
	},
	"web2.example.com": {
		[]string{"all", "rack1", "webservers"},
		vars{"opsmop_ssh_username": "deploy", "region": "us", "tier": "front", "rack": 1, "http_port": 8082},
	},
	"127.0.0.1": {
		[]string{"all", "rack1", "webservers"},
		vars{"opsmop_ssh_username": "deploy", "region": "us", "tier": "front", "rack": 1, "http_port": 80},
	},
	"web3.example.com": {
		[]string{"all", "webservers_eu"},
		vars{"opsmop_ssh_username": "deploy", "region": "us"},
	},
	"db1.example.com": {
		[]string{"all", "dbservers"},
		vars{"opsmop_ssh_username": "deploy", "region": "us", "tier": "back", "opsmop_sudo_password": "s3cret"},
	},
	"lonely.example.com": {
		[]string{"all", "ungrouped"},
		vars{"opsmop_ssh_username": "deploy", "region": "us"},
	},
}

func loadExample(t *testing.T, name string) *Inventory {
	t.Helper()
	inv, err := Load(context.Background(), filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("Load(%s): %v", name, err)
	}
	return inv
}

func checkExample(t *testing.T, inv *Inventory) {
	t.Helper()
	if len(inv.Hosts()) != len(exampleHosts) {
		t.Errorf("hosts: got %v; want %d hosts", names(inv.Hosts()), len(exampleHosts))
	}
	for name, want := range exampleHosts {
		h, ok := inv.Host(name)
		if !ok {
			t.Errorf("host %s: not found; got %v", name, names(inv.Hosts()))
			continue
		}
		if !reflect.DeepEqual(h.Groups, want.groups) {
			t.Errorf("host %s groups: got %v; want %v", name, h.Groups, want.groups)
		}
		if !reflect.DeepEqual(h.Vars, want.vars) {
			t.Errorf("host %s vars: got %#v; want %#v", name, h.Vars, want.vars)
		}
	}
	rack, ok := inv.Group("rack1")
	if !ok || !reflect.DeepEqual(rack.Children, []string{"webservers"}) || !reflect.DeepEqual(rack.Vars, vars{"tier": "rack", "rack": 1}) {
		t.Errorf("group rack1: got %+v; want children [webservers], vars tier=rack rack=1", rack)
	}
}

func TestLoadTOML(t *testing.T) {
	inv := loadExample(t, "example.toml")
	checkExample(t, inv)
	if got, want := inv.Source(), filepath.Join("testdata", "example.toml"); got != want {
		t.Errorf("Source(): got %q; want %q", got, want)
	}
}

func TestLoadYAMLEqualsTOML(t *testing.T) {
	y := loadExample(t, "example.yaml")
	checkExample(t, y)
	tm := loadExample(t, "example.toml")
	if !reflect.DeepEqual(y.Hosts(), tm.Hosts()) {
		t.Errorf("YAML hosts: got %v; want the TOML ones %v", y.Hosts(), tm.Hosts())
	}
	if !reflect.DeepEqual(y.Groups(), tm.Groups()) {
		t.Errorf("YAML groups: got %v; want the TOML ones %v", y.Groups(), tm.Groups())
	}
}

func TestLoadAnsibleJSONRoundTrip(t *testing.T) {
	tm := loadExample(t, "example.toml")
	b, err := tm.MarshalAnsibleJSON(nil)
	if err != nil {
		t.Fatalf("MarshalAnsibleJSON: %v", err)
	}
	p := filepath.Join(t.TempDir(), "inv.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(context.Background(), p)
	if err != nil {
		t.Fatalf("Load(our own JSON): %v\n%s", err, b)
	}
	checkExample(t, inv)
}

func TestLoadStaticJSON(t *testing.T) {
	const doc = `{
  "webservers": ["w1", "w2"],
  "eu": {"children": ["webservers", "implicit"], "vars": {"region": "eu", "n": 3, "f": 1.5}},
  "all": {"vars": {"user": "deploy"}},
  "_meta": {"hostvars": {"w1": {"opsmop_port": 2222}, "solo": {"x": true}}}
}`
	p := filepath.Join(t.TempDir(), "inv.json")
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Load(context.Background(), p)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := map[string]vars{
		"w1":   {"user": "deploy", "region": "eu", "n": 3, "f": 1.5, "opsmop_port": 2222},
		"w2":   {"user": "deploy", "region": "eu", "n": 3, "f": 1.5},
		"solo": {"user": "deploy", "x": true},
	}
	if got := names(inv.Hosts()); !reflect.DeepEqual(got, []string{"w1", "w2", "solo"}) {
		t.Errorf("hosts: got %v; want [w1 w2 solo] (inventory order)", got)
	}
	for h, w := range want {
		host, _ := inv.Host(h)
		if host == nil || !reflect.DeepEqual(host.Vars, w) {
			t.Errorf("host %s vars: got %v; want %v", h, host, w)
		}
	}
	if _, ok := inv.Group("implicit"); !ok {
		t.Errorf("group implicit (named only as a child): not created; want an empty group as Ansible does")
	}
}

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
		want    []string
	}{
		{"toml syntax", "inv.toml", "[groups.web.hosts]\n\"a\" = \n", []string{"inv.toml:2:"}},
		{"toml duplicate key", "inv.toml", "[groups.web.hosts]\na = \"\"\na = \"\"\n", []string{"inv.toml:3:"}},
		{"toml unknown top key", "inv.toml", "[groups.web.hosts]\na = \"\"\n\n[servers]\nx = 1\n", []string{"inv.toml:4:", "servers", "unknown key"}},
		{"toml unknown group key", "inv.toml", "[groups.web]\nhost = [\"a\"]\n", []string{"inv.toml:2:", "groups.web.host", "unknown key"}},
		{"toml bad host string", "inv.toml", "[groups.web.hosts]\n\"a.example.com\" = \"x=1\"\n\"b.example.com\" = \"x=1 oops\"\n", []string{"inv.toml:3:", `groups.web.hosts."b.example.com"`, `"oops"`, "NAME=VALUE"}},
		{"toml host string password redacted", "inv.toml", "[groups.web.hosts]\n\"b\" = \"opsmop_ssh_password='hunter2\"\n", []string{"inv.toml:2:", "<redacted>"}},
		{"toml inline table host", "inv.toml", "[groups.web]\nhosts = { a = { x = 1 }, b = 5 }\n", []string{"inv.toml:2:", "groups.web.hosts.b", "NAME=VALUE words or a table"}},
		{"toml vars not a table", "inv.toml", "[groups.web]\nvars = 3\n", []string{"inv.toml:2:", "groups.web.vars", "must be a table"}},
		{"toml children not a list", "inv.toml", "[groups.web]\nchildren = \"db\"\n", []string{"inv.toml:2:", "must be a list"}},
		{"toml undefined child", "inv.toml", "[groups.web]\nchildren = [\"db\"]\n", []string{"inv.toml:2:", `child group "db" is not defined`}},
		{"toml cycle", "inv.toml", "[groups.a]\nchildren = [\"b\"]\n[groups.b]\nchildren = [\"a\"]\n", []string{"inv.toml:2:", "a -> b -> a"}},
		{"toml host not in a group", "inv.toml", "[groups.web.hosts]\na = \"\"\n[hosts.typo.vars]\nx = 1\n", []string{"inv.toml:3:", `host "typo" is in no group`}},
		{"toml host unknown key", "inv.toml", "[groups.web.hosts]\na = \"\"\n[hosts.a]\nvar = 1\n", []string{"inv.toml:4:", "hosts.a.var", "unknown key"}},
		{"toml bad var name", "inv.toml", "[groups.web.vars]\n\"a-b\" = 1\n", []string{"inv.toml:2:", `"a-b" is not a valid variable name`}},
		{"toml bad group name", "inv.toml", "[groups.\"a,b\".hosts]\nx = \"\"\n", []string{"inv.toml:1:", "space or comma"}},
		{"yaml syntax", "inv.yaml", "groups:\n  web:\n    hosts: [a\n", []string{"inv.yaml", "line"}},
		{"yaml unknown key", "inv.yml", "groups:\n  web:\n    hosts:\n      a:\n    childs: [x]\n", []string{"inv.yml:5:", "groups.web.childs", "unknown key"}},
		{"yaml bad host string", "inv.yaml", "groups:\n  web:\n    hosts:\n      a: \"x='1\"\n", []string{"inv.yaml:4:", "unterminated single quote"}},
		{"yaml not a mapping", "inv.yaml", "- a\n- b\n", []string{"inv.yaml:1:", "must be a mapping"}},
		{"yaml duplicate key", "inv.yaml", "groups:\n  web: {}\n  web: {}\n", []string{"inv.yaml", "line 3"}},
		{"json syntax", "inv.json", "{\n  \"web\": [\"a\",\n}\n", []string{"inv.json", "line 3"}},
		{"json unknown group key (static is strict)", "inv.json", `{"web": {"host": ["a"]}}`, []string{"inv.json", "group web", `unknown key "host"`}},
		{"json hosts wrong type", "inv.json", `{"web": {"hosts": "a"}}`, []string{"inv.json", "group web", "list of names"}},
		{"json not an object", "inv.json", `[1,2]`, []string{"inv.json", "must be an object"}},
		{"json trailing data", "inv.json", "{}\n{}", []string{"inv.json:2:", "after the JSON"}},
		{"json cycle", "inv.json", `{"a": {"children": ["b"]}, "b": {"children": ["a"]}}`, []string{"inv.json", "a -> b -> a"}},
		{"unknown extension", "inv.cfg", "[web]\na\n", []string{"inv.cfg", "unknown format", "chmod +x"}},
		{"ini bad section", "inv.ini", "[web:hostz]\na\n", []string{"inv.ini:1:", "unknown type"}},
		{"ini undefined child", "inv.ini", "[p:children]\nc\n", []string{"inv.ini:2:", `child group "c" is not defined`}},
		{"ini vars of undefined group", "inv.ini", "[g:vars]\nx=1\n", []string{"inv.ini:1:", "[g:vars]", "not defined"}},
		{"ini not key=value", "inv.ini", "[g]\nh1 x\n", []string{"inv.ini:2:", "NAME=VALUE"}},
		{"ini too many hosts", "inv.ini", "a[0:999]\nb[0:99999999]\n", []string{"inv.ini:2:", "more than 1000000 hosts"}},
		{"ini bad range", "inv.ini", "h[3:1]\n", []string{"inv.ini:1:", "begin <= end"}},
		{"ini complex", "inv.ini", "h x=1+2j\n", []string{"inv.ini:1:", "complex"}},
		{"ini unclosed quote", "inv.ini", "h x='a\n", []string{"inv.ini:1:", "no closing quotation"}},
		{"ini other connection", "inv.ini", "h ansible_connection=docker\n", []string{"host h", "ansible_connection", `"docker"`}},
		{"ini both names differ", "inv.ini", "h ansible_host=a opsmop_host=b\n", []string{"host h", "ansible_host", "opsmop_host", "different"}},
		{"ini password both names", "inv.ini", "h ansible_password=a opsmop_ssh_password=b\n", []string{"host h", "ansible_password", "different"}},
		{"ini become method", "inv.ini", "h ansible_become_method=su\n", []string{"host h", "ansible_become_method", `"sudo"`}},
		{"ini jump not a host", "inv.ini", "h ansible_ssh_common_args='-J bastion'\n", []string{"host h", `"bastion"`, "not a host"}},
		{"ini other ssh args", "inv.ini", "j\nh ansible_ssh_common_args='-o StrictHostKeyChecking=no'\n", []string{"host h", "opsmop_via"}},
		{"ini bad port", "inv.ini", "h ansible_port=ssh\n", []string{"host h", "ansible_port", "port number"}},
		{"ini bad become", "inv.ini", "h ansible_become=maybe\n", []string{"host h", "ansible_become", "boolean"}},
		{"ansible yaml unknown key", "inv.yaml", "all:\n  hostz: {}\n", []string{"inv.yaml:2:", "all.hostz", "unknown key", "Ansible YAML"}},
		{"ansible yaml sexagesimal", "inv.yaml", "all:\n  vars:\n    t: 1:20\n", []string{"inv.yaml:3:", "quote it"}},
		{"ansible yaml all child", "inv.yaml", "g:\n  children:\n    all:\n", []string{"inv.yaml:3:", "cannot be a child"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, c.file, c.content, 0o644)
			inv, err := Load(context.Background(), p)
			if err == nil {
				t.Fatalf("Load: got %v hosts, nil error; want an error containing %q", names(inv.Hosts()), c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load error: got %q; want it to contain %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Load error %q reveals a password", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	notDir := writeFile(t, "plain", "", 0o644)
	cases := []struct {
		path, want string
		notExist   bool
	}{
		{"nope.toml", "inventory nope.toml: no such file or directory (give an existing inventory file with -i, or set inventory in the policy)", true},
		{filepath.Join(dir, "sub", "inv.yaml"), "inventory " + filepath.Join(dir, "sub", "inv.yaml") + ": no such file or directory (give an existing inventory file with -i, or set inventory in the policy)", true},
		{filepath.Join(notDir, "inv.toml"), "inventory " + filepath.Join(notDir, "inv.toml") + ": not a directory", false},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			_, err := Load(context.Background(), c.path)
			if err == nil {
				t.Fatalf("Load(%q): got nil error; want %q", c.path, c.want)
			}
			if err.Error() != c.want {
				t.Errorf("Load(%q): got %q; want %q", c.path, err, c.want)
			}
			if got := errors.Is(err, fs.ErrNotExist); got != c.notExist {
				t.Errorf("errors.Is(Load(%q), fs.ErrNotExist): got %v; want %v", c.path, got, c.notExist)
			}
		})
	}
}

func TestLoadHostForms(t *testing.T) {
	cases := []struct {
		name    string
		file    string
		content string
		want    map[string]vars
	}{
		{"toml host list", "i.toml", "[groups.web]\nhosts = [\"a\", \"b\"]\n", map[string]vars{"a": {}, "b": {}}},
		{"toml inline tables", "i.toml", "[groups.web]\nhosts = { a = { x = 1 }, b = \"y=2\" }\n", map[string]vars{"a": {"x": 1}, "b": {"y": 2}}},
		{"yaml host map and null", "i.yaml", "groups:\n  web:\n    hosts:\n      a: {x: 1}\n      b:\n", map[string]vars{"a": {"x": 1}, "b": {}}},
		{"host string vs hosts table: table wins", "i.toml", "[groups.web.hosts]\na = \"x=1 y=1\"\n[hosts.a.vars]\nx = 2\n", map[string]vars{"a": {"x": 2, "y": 1}}},
		{"host strings in two groups: later group name wins", "i.toml", "[groups.b.hosts]\nh = \"x=b\"\n[groups.a.hosts]\nh = \"x=a y=a\"\n", map[string]vars{"h": {"x": "b", "y": "a"}}},
		{"empty toml", "i.toml", "", map[string]vars{}},
		{"empty yaml", "i.yaml", "", map[string]vars{}},
		{"nested var values", "i.yaml", "groups:\n  g:\n    hosts: {h: }\n    vars:\n      m: {1: a, b: [1, {c: d}]}\n", map[string]vars{"h": {"m": vars{"1": "a", "b": []any{1, vars{"c": "d"}}}}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv, err := Load(context.Background(), writeFile(t, c.file, c.content, 0o644))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			got := map[string]vars{}
			for _, h := range inv.Hosts() {
				got[h.Name] = h.Vars
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("host vars: got %#v; want %#v", got, c.want)
			}
		})
	}
}

const scriptWithMeta = `#!/bin/sh
if [ "$1" != "--list" ]; then echo "unexpected args: $*" >&2; exit 3; fi
cat <<'EOF'
{"web": {"hosts": ["w1", "w2"], "vars": {"tier": "front"}, "extra_key": 1},
 "_meta": {"hostvars": {"w1": {"opsmop_host": "10.0.0.1"}}}}
EOF
`

const scriptWithoutMeta = `#!/bin/sh
case "$1" in
--list) echo '{"web": ["w1", "w2"], "db": {"hosts": ["d1"]}}' ;;
--host) echo "{\"me\": \"$2\"}" ;;
*) echo "bad args" >&2; exit 2 ;;
esac
`

func TestLoadScript(t *testing.T) {
	cases := []struct {
		name   string
		script string
		want   map[string]vars
	}{
		{"with _meta, lenient about extra keys", scriptWithMeta, map[string]vars{
			"w1": {"tier": "front", "opsmop_host": "10.0.0.1"},
			"w2": {"tier": "front"},
		}},
		{"without _meta calls --host per host", scriptWithoutMeta, map[string]vars{
			"w1": {"me": "w1"},
			"w2": {"me": "w2"},
			"d1": {"me": "d1"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, "inventory.sh", c.script, 0o755)
			inv, err := Load(context.Background(), p)
			if err != nil {
				t.Fatalf("Load(script): %v", err)
			}
			got := map[string]vars{}
			for _, h := range inv.Hosts() {
				got[h.Name] = h.Vars
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("host vars: got %v; want %v", got, c.want)
			}
		})
	}
}

func TestLoadScriptRelativePathIsNotLookedUpInPATH(t *testing.T) {
	dir := t.TempDir()
	// scriptWithoutMeta uses only sh builtins, so it runs with PATH unset.
	if err := os.WriteFile(filepath.Join(dir, "inv"), []byte(scriptWithoutMeta), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	t.Setenv("PATH", "/nonexistent")
	inv, err := Load(context.Background(), "inv")
	if err != nil {
		t.Fatalf("Load(\"inv\") in its directory: %v", err)
	}
	if got := names(inv.Hosts()); !reflect.DeepEqual(got, []string{"w1", "w2", "d1"}) {
		t.Errorf("hosts: got %v; want [w1 w2 d1] (inventory order)", got)
	}
}

func TestLoadScriptErrors(t *testing.T) {
	cases := []struct {
		name   string
		script string
		ctx    time.Duration
		want   []string
	}{
		{"non-zero exit with stderr", "#!/bin/sh\necho 'cannot reach cloud API' >&2\nexit 4\n", 0, []string{"inventory script", "exit status 4", "cannot reach cloud API"}},
		{"bad JSON", "#!/bin/sh\necho '{\"web\": '\n", 0, []string{"--list output", "JSON"}},
		{"bad --host output", "#!/bin/sh\nif [ \"$1\" = --list ]; then echo '{\"web\": [\"w1\"]}'; else echo '[1]'; fi\n", 0, []string{"--host w1", "must be a table"}},
		{"failing --host", "#!/bin/sh\nif [ \"$1\" = --list ]; then echo '{\"web\": [\"w1\"]}'; else echo 'no such host' >&2; exit 1; fi\n", 0, []string{"--host w1", "no such host"}},
		{"timeout from ctx", "#!/bin/sh\nexec sleep 10\n", 200 * time.Millisecond, []string{"inventory script", "deadline exceeded"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			if c.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, c.ctx)
				defer cancel()
			}
			p := writeFile(t, "inventory.sh", c.script, 0o755)
			start := time.Now()
			_, err := Load(ctx, p)
			if err == nil {
				t.Fatalf("Load(script): got nil error; want one containing %q", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Load(script) error: got %q; want it to contain %q", err, w)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Load(script) took %v; want it bounded by ctx", d)
			}
		})
	}
}
