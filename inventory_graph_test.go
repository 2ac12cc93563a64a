package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

// graphInventory is a small fleet: nested groups (eu holds web and db),
// an empty group, and web1 reached through bastion (an inventory host),
// which the ssh config sends through gw.outside (a host the inventory
// does not hold).
const graphInventory = `
[groups.web.hosts]
"web1" = "opsmop_host=10.0.0.5 opsmop_via=bastion"
"web2" = {}

[groups.db.hosts]
"db1" = {}

[groups.dmz.hosts]
"bastion" = "opsmop_host=203.0.113.9"

[groups.eu]
children = ["web", "db"]

[groups.empty]
`

const graphSSHConfig = `
Host bastion 203.0.113.9
  ProxyJump gw.outside
Host gw.outside
  HostName 198.51.100.1
`

// graphEnv is a test Env whose ~/.ssh/config is graphSSHConfig, with vars
// as its environment, and the path of inventory written to a file.
func graphEnv(t *testing.T, inventory string, vars map[string]string) (Env, string, func() (string, string)) {
	t.Helper()
	env, stdout, stderr := testEnv(t, vars)
	testutil.WriteTree(t, env.Home, map[string]string{".ssh/config": graphSSHConfig})
	if err := os.Chmod(filepath.Join(env.Home, ".ssh", "config"), 0o600); err != nil {
		t.Fatal(err)
	}
	inv := filepath.Join(t.TempDir(), "inv.toml")
	testutil.WriteFile(t, inv, inventory)
	return env, inv, func() (string, string) { return stdout.String(), stderr.String() }
}

// runInventoryCLI runs opsmop inventory -i inv args... in-process.
func runInventoryCLI(env Env, inv string, args ...string) int {
	return run(context.Background(), append([]string{"opsmop", "inventory", "-i", inv}, args...), env)
}

// TestInventoryGraphDot compares --graph --format dot with the expected
// graph: the group tree, the hosts with their addresses, the via chain
// (an inventory jump host, then a ProxyJump hop that is not one), and
// --limit keeping only the selected hosts and the groups above them.
func TestInventoryGraphDot(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{
			name: "whole inventory",
			args: []string{"--graph", "--format", "dot"},
			want: `digraph inventory {
  rankdir=LR;
  "group:all" [shape=box, label="all"];
  "group:db" [shape=box, label="db"];
  "group:dmz" [shape=box, label="dmz"];
  "group:empty" [shape=box, label="empty"];
  "group:eu" [shape=box, label="eu"];
  "group:web" [shape=box, label="web"];
  "host:bastion" [shape=ellipse, label="bastion\n203.0.113.9"];
  "host:db1" [shape=ellipse, label="db1"];
  "host:gw.outside" [shape=diamond, label="gw.outside\n198.51.100.1"];
  "host:web1" [shape=ellipse, label="web1\n10.0.0.5"];
  "host:web2" [shape=ellipse, label="web2"];
  "group:all" -> "group:dmz";
  "group:all" -> "group:empty";
  "group:all" -> "group:eu";
  "group:db" -> "host:db1";
  "group:dmz" -> "host:bastion";
  "group:eu" -> "group:db";
  "group:eu" -> "group:web";
  "group:web" -> "host:web1";
  "group:web" -> "host:web2";
  "host:bastion" -> "host:web1" [style=dashed, label="via"];
  "host:gw.outside" -> "host:bastion" [style=dashed, label="via"];
}
`,
		},
		{
			name: "--limit one host behind two hops",
			args: []string{"--graph", "--format", "dot", "--limit", "web1"},
			// bastion is drawn as the jump host it is, outside the tree
			// (it is not selected); db, dmz and empty hold no selected host.
			want: `digraph inventory {
  rankdir=LR;
  "group:all" [shape=box, label="all"];
  "group:eu" [shape=box, label="eu"];
  "group:web" [shape=box, label="web"];
  "host:bastion" [shape=ellipse, label="bastion\n203.0.113.9"];
  "host:gw.outside" [shape=diamond, label="gw.outside\n198.51.100.1"];
  "host:web1" [shape=ellipse, label="web1\n10.0.0.5"];
  "group:all" -> "group:eu";
  "group:eu" -> "group:web";
  "group:web" -> "host:web1";
  "host:bastion" -> "host:web1" [style=dashed, label="via"];
  "host:gw.outside" -> "host:bastion" [style=dashed, label="via"];
}
`,
		},
		{
			name: "--limit with patterns: the bastion alone",
			args: []string{"--limit", "dmz", "--graph", "--format", "dot"},
			want: `digraph inventory {
  rankdir=LR;
  "group:all" [shape=box, label="all"];
  "group:dmz" [shape=box, label="dmz"];
  "host:bastion" [shape=ellipse, label="bastion\n203.0.113.9"];
  "host:gw.outside" [shape=diamond, label="gw.outside\n198.51.100.1"];
  "group:all" -> "group:dmz";
  "group:dmz" -> "host:bastion";
  "host:gw.outside" -> "host:bastion" [style=dashed, label="via"];
}
`,
		},
		{
			name: "--limit without jump hosts",
			args: []string{"--graph", "--format", "dot", "-l", "eu,!web1"},
			want: `digraph inventory {
  rankdir=LR;
  "group:all" [shape=box, label="all"];
  "group:db" [shape=box, label="db"];
  "group:eu" [shape=box, label="eu"];
  "group:web" [shape=box, label="web"];
  "host:db1" [shape=ellipse, label="db1"];
  "host:web2" [shape=ellipse, label="web2"];
  "group:all" -> "group:eu";
  "group:db" -> "host:db1";
  "group:eu" -> "group:db";
  "group:eu" -> "group:web";
  "group:web" -> "host:web2";
}
`,
		},
		{
			name: "--format text is the default tree",
			args: []string{"--graph", "--format", "text"},
			want: `@all:
  |--@dmz:
  |  |--bastion
  |--@empty:
  |--@eu:
  |  |--@db:
  |  |  |--db1
  |  |--@web:
  |  |  |--web1
  |  |  |--web2
`,
		},
		{
			name: "no --format: the text tree",
			args: []string{"--graph"},
			want: `@all:
  |--@dmz:
  |  |--bastion
  |--@empty:
  |--@eu:
  |  |--@db:
  |  |  |--db1
  |  |--@web:
  |  |  |--web1
  |  |  |--web2
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, inv, out := graphEnv(t, graphInventory, nil)
			code := runInventoryCLI(env, inv, tt.args...)
			stdout, stderr := out()
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
			}
			if stdout != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", stdout, tt.want)
			}
			if strings.HasPrefix(stdout, "digraph") {
				checkDotSyntax(t, stdout)
			}
		})
	}
}

// TestInventoryGraphDotDeterministic: the same inventory gives the same
// bytes every time (maps are walked in sorted order).
func TestInventoryGraphDotDeterministic(t *testing.T) {
	var first string
	for i := range 10 {
		env, inv, out := graphEnv(t, graphInventory, nil)
		if code := runInventoryCLI(env, inv, "--graph", "--format", "dot"); code != exitOK {
			_, stderr := out()
			t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
		}
		got, _ := out()
		if i == 0 {
			first = got
		} else if got != first {
			t.Fatalf("run %d got:\n%s\nwant the first run's:\n%s", i, got, first)
		}
	}
}

// hostileInventory has names and addresses with quotes, backslashes, a
// newline, markup, dot's own label escapes (\N) and non-ASCII.
const hostileInventory = `
[groups."g<\"\\>ü".hosts]
"q\"uote" = { opsmop_host = "10.0.0.1\nevil" }
'back\slash' = { opsmop_via = "<script>alert(1)</script>" }
"<script>alert(1)</script>" = { opsmop_host = "a\\N\"b" }
"ünï" = {}
`

// TestInventoryGraphHostileNames: every hostile name comes back, after
// dot's unquoting, as the id and label it was; the source is valid
// statements only, and dot itself renders it (when installed; required
// under CI).
func TestInventoryGraphHostileNames(t *testing.T) {
	env, inv, out := graphEnv(t, hostileInventory, nil)
	if code := runInventoryCLI(env, inv, "--graph", "--format", "dot"); code != exitOK {
		_, stderr := out()
		t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
	}
	src, _ := out()
	nodes, edges := checkDotSyntax(t, src)
	wantNodes := map[string]string{ // id -> label
		"group:all":                      "all",
		`group:g<"\>ü`:                   `g<"\>ü`,
		`host:q"uote`:                    "q\"uote\n10.0.0.1\nevil",
		`host:back\slash`:                `back\slash`,
		"host:<script>alert(1)</script>": "<script>alert(1)</script>\na\\N\"b",
		"host:ünï":                       "ünï",
	}
	for id, label := range wantNodes {
		t.Run(id, func(t *testing.T) {
			attrs, ok := nodes[id]
			if !ok {
				t.Fatalf("got no node %q; want one (nodes: %q)", id, nodeIDs(nodes))
			}
			if attrs["label"] != label {
				t.Errorf("got label %q; want %q", attrs["label"], label)
			}
		})
	}
	if len(nodes) != len(wantNodes) {
		t.Errorf("got nodes %q; want %d nodes", nodeIDs(nodes), len(wantNodes))
	}
	wantVia := [2]string{"host:<script>alert(1)</script>", `host:back\slash`}
	found := false
	for _, e := range edges {
		if e.from == wantVia[0] && e.to == wantVia[1] {
			found = e.attrs["style"] == "dashed" && e.attrs["label"] == "via"
		}
	}
	if !found {
		t.Errorf("got edges %+v; want a dashed via edge %q -> %q", edges, wantVia[0], wantVia[1])
	}
	dot := needDot(t)
	cmd := exec.Command(dot, "-Tsvg")
	cmd.Stdin = strings.NewReader(src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("dot -Tsvg: %v; want exit 0\n%s", err, b)
	}
}

// TestInventoryGraphSVG: --format svg prints dot's SVG, the names in it
// escaped as XML; a dot that fails is an error naming its message.
func TestInventoryGraphSVG(t *testing.T) {
	t.Run("rendered", func(t *testing.T) {
		dot := needDot(t)
		env, inv, out := graphEnv(t, hostileInventory, map[string]string{"PATH": filepath.Dir(dot)})
		code := runInventoryCLI(env, inv, "--graph", "--format", "svg")
		stdout, stderr := out()
		if code != exitOK {
			t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
		}
		if !strings.HasPrefix(stdout, "<?xml") && !strings.HasPrefix(stdout, "<svg") {
			t.Errorf("got %.60q...; want SVG (<?xml or <svg first)", stdout)
		}
		for _, want := range []string{">&lt;script&gt;alert(1)&lt;/script&gt;<", ">q&quot;uote<", `>back\slash<`, ">ünï<", ">10.0.0.1<", ">evil<", `>a\N&quot;b<`, ">g&lt;&quot;\\&gt;ü<", ">via<"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("SVG holds no %q; want every name, escaped", want)
			}
		}
		if strings.Contains(stdout, "<script>") {
			t.Errorf("SVG holds a raw <script>; want it escaped")
		}
	})
	t.Run("dot fails", func(t *testing.T) {
		bin := t.TempDir()
		testutil.WriteFile(t, filepath.Join(bin, "dot"), "#!/bin/sh\necho 'Error: syntax boom' >&2\nexit 1\n")
		if err := os.Chmod(filepath.Join(bin, "dot"), 0o755); err != nil {
			t.Fatal(err)
		}
		env, inv, out := graphEnv(t, graphInventory, map[string]string{"PATH": bin})
		code := runInventoryCLI(env, inv, "--graph", "--format", "svg")
		stdout, stderr := out()
		if code != exitFailed {
			t.Errorf("exit %d; want %d", code, exitFailed)
		}
		if want := "-Tsvg failed: exit status 1: Error: syntax boom (use --format dot to see the source it was given)"; !strings.Contains(stderr, want) {
			t.Errorf("got stderr %q; want it to hold %q", stderr, want)
		}
		if stdout != "" {
			t.Errorf("got stdout %q; want nothing", stdout)
		}
	})
}

// TestInventoryGraphFormatErrors: a --format that cannot be honoured is a
// usage error (exit 3) that says what to do, and prints nothing.
func TestInventoryGraphFormatErrors(t *testing.T) {
	tests := []struct {
		name      string
		inventory string
		args      []string
		wantErr   string
	}{
		{name: "--format without --graph", args: []string{"--format", "dot"},
			wantErr: "error: inventory: --format dot chooses how --graph draws the group tree: add --graph (or drop --format)\n"},
		{name: "--format text without --graph", args: []string{"--format", "text", "--host", "web1"},
			wantErr: "error: inventory: --format text chooses how --graph draws the group tree: add --graph (or drop --format)\n"},
		{name: "unknown format", args: []string{"--graph", "--format", "png"},
			wantErr: "error: inventory: --format \"png\" is not a format of --graph: give text, dot or svg\n"},
		{name: "empty format", args: []string{"--graph", "--format="},
			wantErr: "error: inventory: --format \"\" is not a format of --graph: give text, dot or svg\n"},
		{name: "svg without dot on PATH", args: []string{"--graph", "--format", "svg"},
			wantErr: "error: inventory: svg needs Graphviz's dot: install graphviz, or use --format dot and render it elsewhere\n"},
		{name: "--graph --json stays refused", args: []string{"--graph", "--format", "dot", "--json"},
			wantErr: "error: inventory: --graph cannot be combined with --json, --list or --host: give one of them\n"},
		{name: "a via cycle cannot be drawn", args: []string{"--graph", "--format", "dot"},
			inventory: "[groups.all.hosts]\na = \"opsmop_via=b\"\nb = \"opsmop_via=a\"\n",
			wantErr:   "error: host a: opsmop_via jump hosts form a cycle: a -> b -> a (fix one of these hosts' opsmop_via)\n"},
		{name: "two names that show alike", args: []string{"--graph", "--format", "dot"},
			inventory: "[groups.g.hosts]\n\"a\\u0001\" = {}\n'a\\x01' = {}\n",
			wantErr:   "show alike in dot (control characters or invalid UTF-8): rename one, or use --format text\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := tt.inventory
			if inv == "" {
				inv = graphInventory
			}
			env, path, out := graphEnv(t, inv, map[string]string{"PATH": t.TempDir()}) // no dot on PATH
			code := runInventoryCLI(env, path, tt.args...)
			stdout, stderr := out()
			if code != exitInvalid {
				t.Errorf("exit %d, stderr %q; want %d", code, stderr, exitInvalid)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("got stderr %q; want it to hold %q", stderr, tt.wantErr)
			}
			if stdout != "" {
				t.Errorf("got stdout %q; want nothing", stdout)
			}
		})
	}
}

// TestInventoryGraphDotQuote: the quoting of ids and labels, one case per kind of byte.
func TestInventoryGraphDotQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"web1", `"web1"`},
		{"", `""`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{`\N`, `"\\N"`},
		{"a\nb", `"a\nb"`},
		{"a\rb", `"a\rb"`},
		{"a\x01b\x7f", `"a\\x01b\\x7F"`},
		{"a\xffb", `"a\\xFFb"`},
		{"<script> & ünï 日本", `"<script> & ünï 日本"`},
		{"a b;c{d}[e]", `"a b;c{d}[e]"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := dotQuote(tt.in); got != tt.want {
				t.Errorf("dotQuote(%q) = %s; want %s", tt.in, got, tt.want)
			}
		})
	}
}

// needDot returns the path of Graphviz's dot; without it the test is
// skipped, but fails under CI=true (.ci/deps installs graphviz).
func needDot(t *testing.T) string {
	t.Helper()
	dot, err := exec.LookPath("dot")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Graphviz's dot is needed under CI (.ci/deps installs graphviz): %v", err)
		}
		t.Skip("Graphviz's dot is not installed (not under CI)")
	}
	return dot
}

// dotEdge is one parsed edge statement.
type dotEdge struct {
	from, to string
	attrs    map[string]string
}

// checkDotSyntax parses src as the dot inventoryDot writes, line by line:
// "digraph inventory {", "rankdir=LR;", node statements (ID [a=v, ...];),
// edge statements (ID -> ID [a=v, ...];), "}". It fails the test on
// anything else, and on an edge whose ends are not declared nodes. It
// returns the nodes' attributes and the edges, ids and values unquoted as
// dot reads them.
func checkDotSyntax(t *testing.T, src string) (map[string]map[string]string, []dotEdge) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(src, "\n"), "\n")
	if len(lines) < 3 || lines[0] != "digraph inventory {" || lines[1] != "  rankdir=LR;" || lines[len(lines)-1] != "}" {
		t.Fatalf("got %q; want digraph inventory { rankdir=LR; ... }", src)
	}
	nodes := map[string]map[string]string{}
	var edges []dotEdge
	for i, line := range lines[2 : len(lines)-1] {
		toks, err := dotTokens(strings.TrimPrefix(line, "  "))
		if err != nil {
			t.Fatalf("line %d %q: %v", i+3, line, err)
		}
		p := &dotParser{toks: toks}
		stmt, err := p.statement()
		if err != nil {
			t.Fatalf("line %d %q: %v", i+3, line, err)
		}
		if stmt.to == "" {
			if _, dup := nodes[stmt.from]; dup {
				t.Errorf("line %d: node %q declared twice", i+3, stmt.from)
			}
			nodes[stmt.from] = stmt.attrs
		} else {
			edges = append(edges, stmt)
		}
	}
	for _, e := range edges {
		for _, end := range []string{e.from, e.to} {
			if _, ok := nodes[end]; !ok {
				t.Errorf("edge %q -> %q: got no node %q declared; want every edge end declared", e.from, e.to, end)
			}
		}
	}
	return nodes, edges
}

// dotToken is an id (quoted or bare) or one of the punctuation marks.
type dotToken struct {
	punct string // "[", "]", "=", ",", ";", "->"; "" for an id
	id    string // unquoted as dot reads it: \" is ", \\ is \, \n and \r are line breaks
}

// dotTokens splits one statement line.
func dotTokens(s string) ([]dotToken, error) {
	var out []dotToken
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ':
			i++
		case strings.HasPrefix(s[i:], "->"):
			out = append(out, dotToken{punct: "->"})
			i += 2
		case strings.ContainsRune("[]=,;", rune(c)):
			out = append(out, dotToken{punct: string(c)})
			i++
		case c == '"':
			var b strings.Builder
			i++
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("unterminated quoted string")
				}
				if s[i] == '"' {
					i++
					break
				}
				if s[i] == '\\' {
					if i+1 >= len(s) {
						return nil, fmt.Errorf("backslash at the end of the line (would join the next)")
					}
					switch s[i+1] {
					case '"', '\\':
						b.WriteByte(s[i+1])
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					default:
						return nil, fmt.Errorf("escape \\%c: inventoryDot writes only \\\", \\\\, \\n and \\r", s[i+1])
					}
					i += 2
					continue
				}
				if s[i] < 0x20 || s[i] == 0x7f {
					return nil, fmt.Errorf("raw control character %q in a quoted string", s[i])
				}
				b.WriteByte(s[i])
				i++
			}
			out = append(out, dotToken{id: b.String()})
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9' || s[j] == '_') {
				j++
			}
			out = append(out, dotToken{id: s[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q at %d", c, i)
		}
	}
	return out, nil
}

// dotParser reads one statement from tokens.
type dotParser struct {
	toks []dotToken
	pos  int
}

func (p *dotParser) next() (dotToken, bool) {
	if p.pos >= len(p.toks) {
		return dotToken{}, false
	}
	p.pos++
	return p.toks[p.pos-1], true
}

func (p *dotParser) expect(punct string) error {
	tok, ok := p.next()
	if !ok || tok.punct != punct {
		return fmt.Errorf("got %+v at token %d; want %q", tok, p.pos, punct)
	}
	return nil
}

func (p *dotParser) id() (string, error) {
	tok, ok := p.next()
	if !ok || tok.punct != "" {
		return "", fmt.Errorf("got %+v at token %d; want an id", tok, p.pos)
	}
	return tok.id, nil
}

// statement reads ID [-> ID] [[a=v, ...]] ; and the end of the line.
func (p *dotParser) statement() (dotEdge, error) {
	var e dotEdge
	var err error
	if e.from, err = p.id(); err != nil {
		return e, err
	}
	if p.pos < len(p.toks) && p.toks[p.pos].punct == "->" {
		p.pos++
		if e.to, err = p.id(); err != nil {
			return e, err
		}
	}
	e.attrs = map[string]string{}
	if p.pos < len(p.toks) && p.toks[p.pos].punct == "[" {
		p.pos++
		for {
			k, err := p.id()
			if err != nil {
				return e, err
			}
			if err := p.expect("="); err != nil {
				return e, err
			}
			if e.attrs[k], err = p.id(); err != nil {
				return e, err
			}
			tok, ok := p.next()
			if ok && tok.punct == "]" {
				break
			}
			if !ok || tok.punct != "," {
				return e, fmt.Errorf("got %+v in an attribute list; want , or ]", tok)
			}
		}
	}
	if err := p.expect(";"); err != nil {
		return e, err
	}
	if p.pos != len(p.toks) {
		return e, fmt.Errorf("got %d more tokens after ;; want one statement a line", len(p.toks)-p.pos)
	}
	return e, nil
}

func nodeIDs(m map[string]map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
