package policy

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParsersAgree(t *testing.T) {
	tests := []struct {
		name, toml, yaml, want string
	}{
		{
			name: "scalars",
			toml: "s = \"x\"\ni = 42\nneg = -7\nf = 1.5\nb = true\nlit = 'a\\b'\n",
			yaml: "s: x\ni: 42\nneg: -7\nf: 1.5\nb: true\nlit: 'a\\b'\n",
			want: `{s: "x", i: int(42), neg: int(-7), f: float(1.5), b: true, lit: "a\\b"}`,
		},
		{
			name: "number spellings",
			toml: "h = 0xff\no = 0o755\nbin = 0b11\nu = 1_000\ne = 1e3\n",
			yaml: "h: 0xff\no: 0o755\nbin: 0b11\nu: 1000\ne: 1.0e3\n",
			want: `{h: int(255), o: int(493), bin: int(3), u: int(1000), e: float(1000)}`,
		},
		{
			name: "tables and dotted keys",
			toml: "a.b.c = 1\n[x.y]\nz = \"q\"\n[x]\nw = 2\n",
			yaml: "a: {b: {c: 1}}\nx:\n  y: {z: q}\n  w: 2\n",
			want: `{a: {b: {c: int(1)}}, x: {y: {z: "q"}, w: int(2)}}`,
		},
		{
			name: "arrays of tables, nested",
			toml: "[[roles]]\nname = \"a\"\n[[roles.resources]]\ntype = \"t\"\n[[roles.resources]]\ntype = \"u\"\n[[roles]]\nname = \"b\"\n",
			yaml: "roles:\n  - name: a\n    resources:\n      - type: t\n      - type: u\n  - name: b\n",
			want: `{roles: [{name: "a", resources: [{type: "t"}, {type: "u"}]}, {name: "b"}]}`,
		},
		{
			name: "inline tables and arrays",
			toml: "ssh = { username = \"deploy\", opts.port = 22 }\nl = [1, \"two\", [3], { four = 4 }]\nempty = []\nmulti = [\n  \"a\", # comment\n  \"b\",\n]\n",
			yaml: "ssh: {username: deploy, opts: {port: 22}}\nl: [1, two, [3], {four: 4}]\nempty: []\nmulti:\n  - a # comment\n  - b\n",
			want: `{ssh: {username: "deploy", opts: {port: int(22)}}, l: [int(1), "two", [int(3)], {four: int(4)}], empty: [], multi: ["a", "b"]}`,
		},
		{
			name: "dates stay strings",
			toml: "d = 1979-05-27T07:32:00Z\nld = 1979-05-27\n",
			yaml: "d: 1979-05-27T07:32:00Z\nld: 1979-05-27\n",
			want: `{d: "1979-05-27T07:32:00Z", ld: "1979-05-27"}`,
		},
		{
			name: "quoted keys",
			toml: "[hosts.\"web1.example.com\"]\nx = 1\n",
			yaml: "hosts:\n  web1.example.com: {x: 1}\n",
			want: `{hosts: {web1.example.com: {x: int(1)}}}`,
		},
		{
			name: "empty document",
			toml: "# nothing\n",
			yaml: "# nothing\n",
			want: `{}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tn, err := ParseTOML("x.toml", []byte(tt.toml))
			if err != nil {
				t.Fatalf("ParseTOML: %v", err)
			}
			yn, err := ParseYAML("x.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("ParseYAML: %v", err)
			}
			if got := dump(tn); got != tt.want {
				t.Errorf("TOML tree: got %s; want %s", got, tt.want)
			}
			if got := dump(yn); got != tt.want {
				t.Errorf("YAML tree: got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestParseChoosesByExtension(t *testing.T) {
	tests := []struct {
		file, data, want, wantErr string
	}{
		{file: "a.toml", data: "a = 1", want: `{a: int(1)}`},
		{file: "a.yaml", data: "a: 1", want: `{a: int(1)}`},
		{file: "a.YML", data: "a: 1", want: `{a: int(1)}`},
		{file: "a.json", data: `{"a": [1, "x", null, true]}`, want: `{a: [int(1), "x", null, true]}`},
		{file: "a.txt", data: "a = 1", wantErr: "a.txt: unknown policy file type: name it .toml, .yaml, .yml or .json"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			n, err := Parse(tt.file, []byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("got error %v; want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(n); got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

func TestFixtureLines(t *testing.T) {
	tomlData, err := os.ReadFile("../testdata/policy/site.toml")
	if err != nil {
		t.Fatal(err)
	}
	yamlData, err := os.ReadFile("../testdata/policy/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tn, err := ParseTOML("site.toml", tomlData)
	if err != nil {
		t.Fatal(err)
	}
	yn, err := ParseYAML("site.yaml", yamlData)
	if err != nil {
		t.Fatal(err)
	}
	if dump(tn) != dump(yn) {
		t.Fatalf("fixtures differ:\nTOML %s\nYAML %s", dump(tn), dump(yn))
	}
	tests := []struct {
		name             string
		root             *Node
		path             []any
		keyLine, valLine int
	}{
		{"toml inventory", tn, []any{"inventory"}, 1, 1},
		{"toml vars.motd", tn, []any{"vars", "motd"}, 3, 3},
		{"toml ssh_as.username", tn, []any{"roles", 0, "ssh_as", "username"}, 8, 8},
		{"toml role vars.http_port", tn, []any{"roles", 0, "vars", "http_port"}, 13, 13},
		{"toml pre", tn, []any{"roles", 0, "pre"}, 14, 14},
		{"toml resources[0].mode", tn, []any{"roles", 0, "resources", 0, "mode"}, 20, 20},
		{"toml resources[1].notify", tn, []any{"roles", 0, "resources", 1, "notify"}, 25, 25},
		{"toml handlers[0].state", tn, []any{"roles", 0, "handlers", 0, "state"}, 30, 30},
		{"toml post[0].cmd", tn, []any{"roles", 0, "post", 0, "cmd"}, 33, 33},
		{"yaml vars.motd", yn, []any{"vars", "motd"}, 2, 2},
		{"yaml roles[0].when", yn, []any{"roles", 0, "when"}, 10, 10},
		{"yaml resources[1].notify", yn, []any{"roles", 0, "resources", 1, "notify"}, 15, 15},
		{"yaml handlers[0].state", yn, []any{"roles", 0, "handlers", 0, "state"}, 17, 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keyLine(t, tt.root, tt.path...); got != tt.keyLine {
				t.Errorf("key line: got %d; want %d", got, tt.keyLine)
			}
			if got := at(t, tt.root, tt.path...).Pos.Line; got != tt.valLine {
				t.Errorf("value line: got %d; want %d", got, tt.valLine)
			}
		})
	}
	// Tables made by [[headers]] carry the header's line.
	for _, c := range []struct {
		path []any
		line int
	}{
		{[]any{"roles", 0}, 5},
		{[]any{"roles", 0, "pre", 0}, 14},
		{[]any{"roles", 0, "resources", 0}, 17},
		{[]any{"roles", 0, "resources", 1}, 21},
		{[]any{"roles", 0, "handlers", 0}, 26},
	} {
		if got := at(t, tn, c.path...).Pos.Line; got != c.line {
			t.Errorf("TOML %v line: got %d; want %d", c.path, got, c.line)
		}
	}
	if got := at(t, yn, "roles", 0, "resources", 1).Pos.Line; got != 15 {
		t.Errorf("YAML resources[1] line: got %d; want 15", got)
	}
	if got := at(t, tn, "roles", 0).Pos.File; got != "site.toml" {
		t.Errorf("file: got %q; want site.toml", got)
	}
}

func TestMultilineTOMLLines(t *testing.T) {
	src := "a = \"\"\"\nline1\nline2\"\"\"\nb = [\n  1,\n  2,\n]\n[t]\nc = { d = 1,\n  e = 2 }\n"
	n, err := ParseTOML("m.toml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path []any
		line int
	}{
		{[]any{"b"}, 4},
		{[]any{"b", 1}, 6},
		{[]any{"t", "c", "e"}, 10},
	} {
		if got := at(t, n, c.path...).Pos.Line; got != c.line {
			t.Errorf("%v: got line %d; want %d", c.path, got, c.line)
		}
	}
	if got := keyLine(t, n, "t", "c", "e"); got != 10 {
		t.Errorf("key t.c.e: got line %d; want 10", got)
	}
}

func TestTOMLErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"duplicate key", "a = 1\nb = 2\na = 3\n", []string{`x.toml:3: a: duplicate key "a" (first set at line 1)`}},
		{"duplicate in array table", "[[roles]]\nname = \"a\"\nname = \"b\"\n", []string{`x.toml:3: roles[0].name: duplicate key "name" (first set at line 2)`}},
		{"table twice", "[a]\nx = 1\n[a]\ny = 2\n", []string{`x.toml:3: a: table [a] is already defined at line 1; merge the two`}},
		{"array table over static array", "a = [1]\n[[a]]\n", []string{`x.toml:2: a: [[a]] conflicts with the key set at line 1: it is a list, not an array of tables`}},
		{"extend inline table", "a = { b = 1 }\n[a.c]\n", []string{`x.toml:2: a: cannot add a table to this key: it was set to a map at line 1`}},
		{"dotted key over a value", "a = 1\na.b = 2\n", []string{`x.toml:2: a: key "a" was already defined at line 1 and cannot be extended here`}},
		{"several problems", "a = 1\na = 2\n[t]\n[t]\nb = 1\nb = 2\n", []string{
			`x.toml:2: a: duplicate key "a" (first set at line 1)`,
			`x.toml:4: t: table [t] is already defined at line 3; merge the two`,
			`x.toml:6: b: duplicate key "b" (first set at line 5)`,
		}},
		{"syntax error", "a = 1\nb = \n", []string{`x.toml:2: invalid TOML: unexpected character U+000A at start of value`}},
		{"unquoted string", "a = 1\nmode = 20s\n", []string{`x.toml:2: invalid TOML: strings must be quoted`}},
		{"integer overflow", "a = 99999999999999999999\n", []string{`x.toml:1: a: integer 99999999999999999999 is out of range (64-bit signed)`}},
		{"too deep", "a = " + strings.Repeat("[", MaxDepth+5) + strings.Repeat("]", MaxDepth+5) + "\n", []string{`x.toml:1: a` + strings.Repeat("[0]", MaxDepth) + `: nested more than 200 levels deep`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOML("x.toml", []byte(tt.src))
			got := errLines(err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if _, ok := err.(ErrorList); err != nil && !ok {
				t.Errorf("got error type %T; want ErrorList", err)
			}
		})
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"duplicate key", "a: 1\nb:\n  c: 1\n  c: 2\n", []string{`x.yaml:4: b.c: duplicate key "c" (first set at line 3)`}},
		{"two documents", "a: 1\n---\nb: 2\n", []string{`x.yaml:2: a second YAML document starts here; a policy file holds exactly one (remove the ---)`}},
		{"syntax error", "a: 1\nb: :\n  - x\n", []string{`x.yaml:2: invalid YAML: mapping values are not allowed in this context (check this line's indentation, or quote a value that contains ": ")`}},
		{"custom tag", "a: !vault abc\n", []string{`x.yaml:1: a: unsupported YAML tag !vault; remove it`}},
		{"map as key", "? {a: 1}\n: x\n", []string{`x.yaml:1: map keys must be plain strings, not a map`}},
		{"unknown alias", "a: *nope\n", []string{`x.yaml:1: invalid YAML: unknown anchor 'nope' referenced`}},
		{"several problems", "a: 1\na: 2\nb: !x 1\nc: 3\nc: 4\n", []string{
			`x.yaml:2: a: duplicate key "a" (first set at line 1)`,
			`x.yaml:3: b: unsupported YAML tag !x; remove it`,
			`x.yaml:5: c: duplicate key "c" (first set at line 4)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML("x.yaml", []byte(tt.src))
			got := errLines(err)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got errors\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestTOMLLeadingZero(t *testing.T) {
	// TOML refuses numbers with a leading zero (mode = 0750); the error
	// names the line and the key and says to quote the value.
	tests := []struct {
		name, src, want string
	}{
		{"key", "[[roles]]\nname = \"web\"\n  [[roles.resources]]\n  type = \"directory\"\n  mode = 0750\n",
			`x.toml:5: mode = 0750: TOML numbers cannot have leading zeros; quote it: mode = "0750" (for a number, write 750, or 0o750 in octal)`},
		{"any key", "a = 1\nport = 08080\n",
			`x.toml:2: port = 08080: TOML numbers cannot have leading zeros; quote it: port = "08080" (for a number, write 8080)`},
		{"no spaces, comment", "mode=0644 # rw-r--r--\n",
			`x.toml:1: mode = 0644: TOML numbers cannot have leading zeros; quote it: mode = "0644" (for a number, write 644, or 0o644 in octal)`},
		{"negative", "n = -0750\n",
			`x.toml:1: n = -0750: TOML numbers cannot have leading zeros; quote it: n = "-0750" (for a number, write -750, or -0o750 in octal)`},
		{"quoted key", "\"my mode\" = 0644\n",
			`x.toml:1: "my mode" = 0644: TOML numbers cannot have leading zeros; quote it: "my mode" = "0644" (for a number, write 644, or 0o644 in octal)`},
		{"dotted key in inline table", "x = { a = 1, b.mode = 0600 }\n",
			`x.toml:1: b.mode = 0600: TOML numbers cannot have leading zeros; quote it: b.mode = "0600" (for a number, write 600, or 0o600 in octal)`},
		{"list item", "modes = [\n  \"0644\",\n  0750,\n]\n",
			`x.toml:3: 0750: TOML numbers cannot have leading zeros; quote it: "0750" (for a number, write 750, or 0o750 in octal)`},
		{"not octal", "mode = 0789\n",
			`x.toml:1: mode = 0789: TOML numbers cannot have leading zeros; quote it: mode = "0789" (for a number, write 789)`},
		{"float", "f = 00.5\n",
			`x.toml:1: f = 00.5: TOML numbers cannot have leading zeros; quote it: f = "00.5" (for a number, write 0.5)`},
		{"zero", "z = 00\n",
			`x.toml:1: z = 00: TOML numbers cannot have leading zeros; quote it: z = "00" (for a number, write 0)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseTOML("x.toml", []byte(tt.src))
			if got := strings.Join(errLines(err), "\n"); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	// What TOML allows stays allowed.
	n, err := ParseTOML("x.toml", []byte("a = 0\nb = 0.5\nc = 0o750\nd = \"0750\"\ne = 0e2\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(n), `{a: int(0), b: float(0.5), c: int(488), d: "0750", e: float(0)}`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestYAMLLeadingZero(t *testing.T) {
	// yaml.v3 reads 0750 as the octal 488 (YAML 1.1), YAML 1.2 as the
	// decimal 750, TOML and JSON refuse it: a policy refuses it too, so
	// that a mode never silently becomes another (through a variable,
	// say, rendered as "488").
	tests := []struct {
		name, src, want string
	}{
		{"mode", "roles:\n  - name: web\n    resources:\n      - type: directory\n        mode: 0750\n",
			`x.yaml:5: roles[0].resources[0].mode: 0750: numbers cannot have leading zeros (YAML 1.1 reads it as octal 488, YAML 1.2 as decimal 750); quote it: mode: "0750" (for a number, write 750, or 0o750 in octal)`},
		{"variable", "vars:\n  log_mode: 0640\n",
			`x.yaml:2: vars.log_mode: 0640: numbers cannot have leading zeros (YAML 1.1 reads it as octal 416, YAML 1.2 as decimal 640); quote it: log_mode: "0640" (for a number, write 640, or 0o640 in octal)`},
		{"list item", "modes: [\"0644\", 0600]\n",
			`x.yaml:1: modes[1]: 0600: numbers cannot have leading zeros (YAML 1.1 reads it as octal 384, YAML 1.2 as decimal 600); quote it: "0600" (for a number, write 600, or 0o600 in octal)`},
		{"negative", "n: -0750\n",
			`x.yaml:1: n: -0750: numbers cannot have leading zeros (YAML 1.1 reads it as octal -488, YAML 1.2 as decimal -750); quote it: n: "-0750" (for a number, write -750, or -0o750 in octal)`},
		{"same either way", "n: 007\n",
			`x.yaml:1: n: 007: numbers cannot have leading zeros; quote it: n: "007" (for a number, write 7, or 0o7 in octal)`},
		{"not octal", "n: 0789\n",
			`x.yaml:1: n: 0789: numbers cannot have leading zeros; quote it: n: "0789" (for a number, write 789)`},
		{"JSON", "{\"mode\": 0644}",
			`x.yaml:1: mode: 0644: numbers cannot have leading zeros (YAML 1.1 reads it as octal 420, YAML 1.2 as decimal 644); quote it: mode: "0644" (for a number, write 644, or 0o644 in octal)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML("x.yaml", []byte(tt.src))
			if got := strings.Join(errLines(err), "\n"); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	n, err := ParseYAML("x.yaml", []byte("a: 0\nb: 0.5\nc: 0o750\nd: \"0750\"\ne: '0750'\nf: 0x1F\ng: 750\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := dump(n), `{a: int(0), b: float(0.5), c: int(488), d: "0750", e: "0750", f: int(31), g: int(750)}`; got != want {
		t.Errorf("got %s; want %s", got, want)
	}
}

func TestYAMLSyntaxErrorLine(t *testing.T) {
	// The line reported is the line of the offending text, not yaml.v3's
	// (which names the enclosing block, counting from 0).
	long := "roles:\n" + strings.Repeat("  - name: web\n    tags: [a, b]\n", 20) // lines 1-41
	tests := []struct {
		name, src string
		line      int
		msg       string
	}{
		{"sequence item dedented", "roles:\n  - name: web\n   resources: []\n", 3,
			`invalid YAML: did not find expected '-' indicator (check this line's indentation: it must line up with the keys or - items it belongs with)`},
		{"nested key dedented", "roles:\n  - name: web\n    resources:\n      - type: shell\n       cmd: \"true\"\n", 5,
			`invalid YAML: did not find expected '-' indicator`},
		{"map key dedented", "vars:\n  a: 1\n b: 2\n", 3,
			`invalid YAML: did not find expected key (check this line's indentation`},
		{"key after list dedented", "x: 1\nroles:\n  - name: a\n    resources:\n     - type: x\n    - type: y\n", 6,
			`invalid YAML: did not find expected key`},
		{"deep in a long file", long + "  - name: db\n   hosts: \"db*\"\n", 43,
			`invalid YAML: did not find expected '-' indicator`},
		{"key over-indented", "vars:\n  a: 1\n    b: 2\n", 3,
			`invalid YAML: mapping values are not allowed in this context (check this line's indentation, or quote a value that contains ": ")`},
		{"tab", "roles:\n  - name: web\n\tresources: []\n", 3,
			`invalid YAML: found a tab character that violates indentation (indent with spaces, not tabs)`},
		{"unclosed double quote", "roles:\n  - name: web\n    when: \"facts.os == 'x'\n    tags: [a]\n", 3,
			`invalid YAML: found unexpected end of stream (a quoted string opened on this line is never closed)`},
		{"unclosed single quote", "a: 1\nb: 'x\nc: 2\n", 2,
			`invalid YAML: found unexpected end of stream`},
		{"mapping values not allowed", "roles:\n  - name: web\n    label: web: main\n", 3,
			`invalid YAML: mapping values are not allowed in this context`},
		{"unclosed flow list", "vars:\n  a: 1\n  l: [1, 2\n  b: 3\n", 3,
			`invalid YAML: did not find expected ',' or ']' (a [ or { opened here is not closed, or a comma is missing)`},
		{"in the second document", "a: 1\n---\nb:\n  c: 1\n d: 2\n", 5,
			`invalid YAML: did not find expected key`},
		{"unknown alias", "a: 1\nb: 2\nc: *nope\n", 3,
			`invalid YAML: unknown anchor 'nope' referenced`},
		{"control character", "a: 1\nb: x\x01\n", 2,
			`invalid YAML: control characters are not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseYAML("x.yaml", []byte(tt.src))
			var el ErrorList
			if !errors.As(err, &el) || len(el) != 1 {
				t.Fatalf("got error %v; want one problem", err)
			}
			if got := el[0].Pos; got != (Pos{File: "x.yaml", Line: tt.line}) {
				t.Errorf("got position %v; want x.yaml:%d (%v)", got, tt.line, err)
			}
			if !strings.HasPrefix(el[0].Msg, tt.msg) {
				t.Errorf("got message %q; want it to start with %q", el[0].Msg, tt.msg)
			}
		})
	}
}

func TestYAMLAliasesAndMerge(t *testing.T) {
	src := `base: &base {user: deploy, port: 22}
a:
  <<: *base
  port: 2222
b: *base
c:
  <<: [*base, {extra: 1}]
`
	n, err := ParseYAML("x.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := `{base: {user: "deploy", port: int(22)}, a: {port: int(2222), user: "deploy"}, b: {user: "deploy", port: int(22)}, c: {user: "deploy", port: int(22), extra: int(1)}}`
	if got := dump(n); got != want {
		t.Errorf("got %s; want %s", got, want)
	}
	// An alias is a copy: changing one use must not change another.
	at(t, n, "b").Entries[0].Value.Value = "changed"
	if got := at(t, n, "base", "user").Value; got != "deploy" {
		t.Errorf("alias shares nodes: got %v; want deploy", got)
	}
}

func TestYAMLScalarSpellings(t *testing.T) {
	n, err := ParseYAML("x.yaml", []byte("octal: 0o755\nquoted: \"0755\"\nno: no\nnull1: ~\nnull2:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := at(t, n, "octal").describe(false); got != "an integer 0o755" {
		t.Errorf("octal: got %s; want an integer 0o755", got)
	}
	if got := dump(at(t, n, "quoted")); got != `"0755"` {
		t.Errorf("quoted: got %s; want \"0755\"", got)
	}
	if got := dump(at(t, n, "no")); got != `"no"` {
		t.Errorf("no: got %s; want the string \"no\" (YAML 1.2)", got)
	}
	for _, k := range []string{"null1", "null2"} {
		if got := at(t, n, k).Kind; got != Null {
			t.Errorf("%s: got %s; want null", k, got)
		}
	}
}

func TestHostileInputRefusedQuickly(t *testing.T) {
	var bomb strings.Builder
	bomb.WriteString("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n")
	for c := 'b'; c <= 'i'; c++ {
		prev := string(c - 1)
		bomb.WriteString(string(c) + ": &" + string(c) + " [")
		for i := 0; i < 9; i++ {
			if i > 0 {
				bomb.WriteString(",")
			}
			bomb.WriteString("*" + prev)
		}
		bomb.WriteString("]\n")
	}
	deepYAML := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	deepYAMLMaps := ""
	for i := 0; i < 300; i++ {
		deepYAMLMaps += strings.Repeat(" ", i) + "k:\n"
	}
	tests := []struct {
		name, file, src, want string
	}{
		{"billion laughs", "x.yaml", bomb.String(), "x.yaml:1: document expands to more than 1000000 values (aliases re-used too often?); refusing it"},
		{"deep flow nesting", "x.yaml", deepYAML, "x.yaml:1: document nests more than 200 levels deep; refusing it"},
		{"deep block nesting", "x.yaml", deepYAMLMaps, "x.yaml:1: document nests more than 200 levels deep; refusing it"},
		{"self-referencing alias", "x.yaml", "a: &a [1, *a]\n", "x.yaml:1: alias *a refers to a node that contains it"},
		{"deep TOML", "x.toml", "a = " + strings.Repeat("[", 9000) + strings.Repeat("]", 9000), "nested more than 200 levels deep"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse(tt.file, []byte(tt.src))
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v; want well under 2s", d)
			}
			if err == nil {
				t.Fatalf("got no error; want %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q; want it to contain %q", err.Error(), tt.want)
			}
		})
	}
}

func TestNodeInterfaceAndClone(t *testing.T) {
	n, err := ParseTOML("x.toml", []byte("a = 1\nb = [\"x\", 2.5, true]\n[c]\nd = \"e\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := n.Interface().(map[string]any)
	if got := m["a"]; got != 1 {
		t.Errorf("a: got %#v; want int 1", got)
	}
	if got := m["b"].([]any); len(got) != 3 || got[0] != "x" || got[1] != 2.5 || got[2] != true {
		t.Errorf("b: got %#v; want [x 2.5 true]", got)
	}
	if got := m["c"].(map[string]any)["d"]; got != "e" {
		t.Errorf("c.d: got %#v; want e", got)
	}
	c := n.Clone()
	c.Get("c").Entries[0].Value.Value = "changed"
	if got := n.Get("c").Get("d").Value; got != "e" {
		t.Errorf("clone shares nodes: original got %v; want e", got)
	}
	if dump(c) == dump(n) {
		t.Errorf("clone: got the same tree after a change; want a different one")
	}
}
