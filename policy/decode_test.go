package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

type subT struct {
	X int    `opsmop:"x" required:"true"`
	Y string `opsmop:"y" default:"why"`
}

type embedded struct {
	Emb string `opsmop:"emb"`
}

type allTypes struct {
	embedded
	S        string            `opsmop:"s"`
	B        bool              `opsmop:"b"`
	I        int               `opsmop:"i"`
	I8       int8              `opsmop:"i8"`
	I64      int64             `opsmop:"i64"`
	F        float64           `opsmop:"f"`
	PS       *string           `opsmop:"ps"`
	PB       *bool             `opsmop:"pb"`
	PI       *int              `opsmop:"pi"`
	PF       *float64          `opsmop:"pf"`
	D        time.Duration     `opsmop:"d"`
	L        []string          `opsmop:"l"`
	L1       []string          `opsmop:"l1" list1:"true"`
	M        map[string]any    `opsmop:"m"`
	MS       map[string]string `opsmop:"ms"`
	A        any               `opsmop:"a"`
	N        *Node             `opsmop:"n"`
	Sub      subT              `opsmop:"sub"`
	PSub     *subT             `opsmop:"psub"`
	Subs     []*subT           `opsmop:"subs"`
	Def      string            `opsmop:"def" default:"dflt"`
	DefB     *bool             `opsmop:"defb" default:"true"`
	DefD     time.Duration     `opsmop:"defd" default:"10s"`
	DefL     []string          `opsmop:"defl" list1:"true" default:"one"`
	E        string            `opsmop:"e" enum:"red|green|blue"`
	EL       []string          `opsmop:"el" enum:"red|green|blue"`
	Password string            `opsmop:"password"`
	Token    string            `opsmop:"token" secret:"true"`
	Ignored  string
}

func decodeTOML(t *testing.T, src string, dst any) ErrorList {
	t.Helper()
	n, err := ParseTOML("site.toml", []byte(src))
	if err != nil {
		t.Fatalf("ParseTOML: %v", err)
	}
	return Decode(n, "", dst)
}

func TestDecodeAllTypes(t *testing.T) {
	src := `emb = "e"
s = "str"
b = true
i = -3
i8 = 100
i64 = 9007199254740993
f = 2
ps = "p"
pb = false
pi = 7
pf = 0.5
d = "1m30s"
l = ["a", "b"]
l1 = "single"
m = { k = "v", n = 1, f = 1.5, b = true, sub = { x = [1, "y"] } }
ms = { a = "b" }
a = [1, "two"]
n = { raw = true }
sub = { x = 1 }
psub = { x = 2, y = "set" }
e = "green"
el = ["red", "blue"]
defl = ["x", "y"]
[[subs]]
x = 3
[[subs]]
x = 4
`
	var got allTypes
	if errs := decodeTOML(t, src, &got); errs != nil {
		t.Fatalf("Decode: got errors\n%v\nwant none", errs)
	}
	ps, pb, pi, pf, defb := "p", false, 7, 0.5, true
	want := allTypes{
		embedded: embedded{Emb: "e"},
		S:        "str", B: true, I: -3, I8: 100, I64: 9007199254740993, F: 2,
		PS: &ps, PB: &pb, PI: &pi, PF: &pf,
		D:  90 * time.Second,
		L:  []string{"a", "b"},
		L1: []string{"single"},
		M: map[string]any{"k": "v", "n": 1, "f": 1.5, "b": true,
			"sub": map[string]any{"x": []any{1, "y"}}},
		MS:   map[string]string{"a": "b"},
		A:    []any{1, "two"},
		Sub:  subT{X: 1, Y: "why"},
		PSub: &subT{X: 2, Y: "set"},
		Subs: []*subT{{X: 3, Y: "why"}, {X: 4, Y: "why"}},
		Def:  "dflt", DefB: &defb, DefD: 10 * time.Second,
		DefL: []string{"x", "y"},
		E:    "green",
		EL:   []string{"red", "blue"},
	}
	if got.N == nil || dump(got.N) != `{raw: true}` {
		t.Errorf("N: got %s; want the raw node {raw: true}", dump(got.N))
	}
	got.N = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestDecodeDefaultsAndNull(t *testing.T) {
	n, err := ParseYAML("x.yaml", []byte("s: ~\ndef: ~\nps:\nsub: {x: 1}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got allTypes
	if errs := Decode(n, "", &got); errs != nil {
		t.Fatalf("got errors %v; want none", errs)
	}
	if got.S != "" || got.PS != nil {
		t.Errorf("null values: got s=%q ps=%v; want them unset", got.S, got.PS)
	}
	if got.Def != "dflt" || got.DefB == nil || !*got.DefB || got.DefD != 10*time.Second || !reflect.DeepEqual(got.DefL, []string{"one"}) {
		t.Errorf("defaults: got def=%q defb=%v defd=%v defl=%v; want dflt true 10s [one]", got.Def, got.DefB, got.DefD, got.DefL)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"unknown key with suggestion", "s = \"a\"\nsb = 1\n", []string{`site.toml:2: unknown key "sb" (did you mean "s"?)`}},
		{"unknown key, transposition", "[sub]\nx = 1\ny = \"a\"\n[psub]\nx = 1\nyy = 2\n", []string{`site.toml:6: psub: unknown key "yy" (did you mean "y"?)`}},
		{"unknown key without suggestion", "[sub]\nx = 1\nzzzzzz = 1\n", []string{`site.toml:3: sub: unknown key "zzzzzz"; valid keys: x, y`}},
		{"string wanted, integer given", "s = 755\n", []string{`site.toml:1: s: want a string, got an integer 755 (quote it: "755")`}},
		{"string wanted, bool given", "s = true\n", []string{`site.toml:1: s: want a string, got a boolean true (quote it: "true")`}},
		{"bool wanted, string given", "b = \"yes\"\n", []string{`site.toml:1: b: want a boolean (true or false), got a string "yes" (write true or false without quotes)`}},
		{"int wanted, quoted number", "i = \"5\"\n", []string{`site.toml:1: i: want an integer, got a string "5" (remove the quotes)`}},
		{"int wanted, float given", "i = 1.5\n", []string{`site.toml:1: i: want an integer, got a number 1.5`}},
		{"int out of range", "i8 = 300\n", []string{`site.toml:1: i8: an integer 300 is out of range for this key`}},
		{"duration as integer", "d = 5\n", []string{`site.toml:1: d: want a duration like "10s", got an integer 5 (write "5s" for seconds)`}},
		{"bad duration", "d = \"5 minutes\"\n", []string{`site.toml:1: d: want a duration like "10s" or "1m30s", got a string "5 minutes"`}},
		{"negative duration", "d = \"-5s\"\n", []string{`site.toml:1: d: duration -5s is negative`}},
		{"list wanted, string given", "l = \"a\"\n", []string{`site.toml:1: l: want a list of strings, got a string "a"`}},
		{"list1 wanted, map given", "l1 = { a = 1 }\n", []string{`site.toml:1: l1: want a string or a list of strings, got a map`}},
		{"list item of wrong type", "l = [\"a\", 2]\n", []string{`site.toml:1: l[1]: want a string, got an integer 2 (quote it: "2")`}},
		{"map wanted", "m = 1\n", []string{`site.toml:1: m: want a map, got an integer 1`}},
		{"struct wanted", "sub = \"x\"\n", []string{`site.toml:1: sub: want a map, got a string "x"`}},
		{"missing required nested", "[psub]\ny = \"a\"\n", []string{`site.toml:1: psub: missing required key "x"`}},
		{"missing required in list", "[[subs]]\nx = 1\n[[subs]]\ny = \"q\"\n", []string{`site.toml:3: subs[1]: missing required key "x"`}},
		{"bad enum", "e = \"gren\"\n", []string{`site.toml:1: e: invalid value "gren": want one of "red", "green", "blue" (did you mean "green"?)`}},
		{"bad enum in list", "el = [\"red\", \"purple\"]\n", []string{`site.toml:1: el[1]: invalid value "purple": want one of "red", "green", "blue"`}},
		{"password never echoed", "password = 123456\n", []string{`site.toml:1: password: want a string, got an integer (quote it)`}},
		{"secret tag never echoed", "token = 987654\n", []string{`site.toml:1: token: want a string, got an integer (quote it)`}},
		{"untagged field is not a key", "Ignored = \"x\"\n", []string{`site.toml:1: unknown key "Ignored"; valid keys: a, b, d, def, defb, defd, defl, e, el, emb, f, i, i64, i8, l, l1, m, ms, n, password, pb, pf, pi, ps, psub, s, sub, subs, token`}},
		{"all problems collected, sorted", "[psub]\nyy = 1\n[[subs]]\nx = \"1\"\n[sub]\nx = 1\nzz = 1\n[m]\n", []string{
			`site.toml:1: psub: missing required key "x"`,
			`site.toml:2: psub: unknown key "yy" (did you mean "y"?)`,
			`site.toml:4: subs[0].x: want an integer, got a string "1" (remove the quotes)`,
			`site.toml:7: sub: unknown key "zz"; valid keys: x, y`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got allTypes
			errs := decodeTOML(t, tt.src, &got)
			if gotS, wantS := strings.Join(errLines(errs.Err()), "\n"), strings.Join(tt.want, "\n"); gotS != wantS {
				t.Errorf("got errors\n%s\nwant\n%s", gotS, wantS)
			}
			for _, e := range errs {
				if e.Pos.File != "site.toml" || e.Pos.Line == 0 {
					t.Errorf("error %q: got pos %v; want site.toml:line", e.Msg, e.Pos)
				}
			}
		})
	}
}

func TestDecodeOctalHint(t *testing.T) {
	// An octal number given to a string key is a file mode: the hint
	// quotes it as one ("0755", which the mode keys parse), not as
	// "0o755".
	tests := []struct {
		name, file, src, want string
	}{
		{"TOML 0o", "site.toml", "s = 0o755\n", `site.toml:1: s: want a string, got an integer 0o755 (quote it: "0755")`},
		{"YAML 0o", "site.yaml", "s: 0o755\n", `site.yaml:1: s: want a string, got an integer 0o755 (quote it: "0755")`},
		{"TOML hex stays", "site.toml", "s = 0x1F\n", `site.toml:1: s: want a string, got an integer 0x1F (quote it: "0x1F")`},
		{"decimal", "site.yaml", "s: 755\n", `site.yaml:1: s: want a string, got an integer 755 (quote it: "755")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, err := Parse(tt.file, []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			var got allTypes
			if got := Decode(n, "", &got).Error(); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
}

func TestDecodeBadDestination(t *testing.T) {
	n := &Node{Kind: Map, Pos: Pos{File: "x.toml", Line: 1}}
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"nil", nil, "x.toml:1: internal error: Decode needs a non-nil pointer, got <nil>"},
		{"not a pointer", allTypes{}, "x.toml:1: internal error: Decode needs a non-nil pointer, got policy.allTypes"},
		{"nil pointer", (*allTypes)(nil), "x.toml:1: internal error: Decode needs a non-nil pointer, got *policy.allTypes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Decode(n, "", tt.dst).Error(); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	var unsupported struct {
		C chan int `opsmop:"c"`
	}
	n2, _ := ParseTOML("x.toml", []byte("c = 1\n"))
	if got, want := Decode(n2, "", &unsupported).Error(), "x.toml:1: c: internal error: cannot decode into chan int"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	var badDefault struct {
		B bool `opsmop:"b" default:"maybe"`
	}
	if got, want := Decode(n, "", &badDefault).Error(), `x.toml:1: internal error: bad default "maybe" for key "b": want a boolean (true or false), got a string "maybe" (after templating)`; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestErrorFormatting(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"full", &Error{Pos: Pos{"site.toml", 14}, Path: "roles[0].resources[2]", Msg: `unknown key "mdoe" (did you mean "mode"?)`}, `site.toml:14: roles[0].resources[2]: unknown key "mdoe" (did you mean "mode"?)`},
		{"no path", &Error{Pos: Pos{"site.toml", 3}, Msg: "m"}, "site.toml:3: m"},
		{"no line", &Error{Pos: Pos{File: "site.toml"}, Path: "p", Msg: "m"}, "site.toml: p: m"},
		{"nothing", &Error{Msg: "m"}, "m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("got %q; want %q", got, tt.want)
			}
		})
	}
	l := ErrorList{
		{Pos: Pos{"b.toml", 1}, Msg: "b1"},
		{Pos: Pos{"a.toml", 9}, Msg: "a9"},
		{Pos: Pos{"a.toml", 2}, Msg: "a2-first"},
		{Pos: Pos{"a.toml", 2}, Msg: "a2-second"},
	}
	if got, want := l.Err().Error(), "a.toml:2: a2-first\na.toml:2: a2-second\na.toml:9: a9\nb.toml:1: b1"; got != want {
		t.Errorf("sorted list: got %q; want %q", got, want)
	}
	if err := (ErrorList{}).Err(); err != nil {
		t.Errorf("empty list: got %v; want nil error", err)
	}
}

func TestSuggest(t *testing.T) {
	tests := []struct {
		in   string
		cand []string
		want string
	}{
		{"mdoe", []string{"mode", "owner", "path"}, "mode"},
		{"Mode", []string{"mode"}, "mode"},
		{"recuse", []string{"recurse", "state"}, "recurse"},
		{"servce", []string{"service", "shell"}, "service"},
		{"abc", []string{"mode"}, ""},
		{"x", []string{"y"}, "y"},
		{"xy", []string{"ab"}, ""},
		{"changedwhen", []string{"changed_when"}, "changed_when"},
		{strings.Repeat("a", 100), []string{"a"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := suggest(tt.in, tt.cand); got != tt.want {
				t.Errorf("suggest(%q, %v): got %q; want %q", tt.in, tt.cand, got, tt.want)
			}
		})
	}
}
