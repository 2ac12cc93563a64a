package yamlsafe

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v3"
)

// dumper builds a compact text form of a document: maps as {k: v, ...} in
// entry order, lists as [a, b], scalars as written.
type dumper struct{}

func (dumper) Scalar(n *yaml.Node, path Path) (string, error) {
	if n.Value == "bad" {
		return "?", fmt.Errorf("bad value at %s", pathText(path))
	}
	return n.Value, nil
}

func (dumper) Key(k *yaml.Node) (string, error) {
	if k.Value == "badkey" {
		return "", errors.New("bad key")
	}
	return k.Value, nil
}

func (dumper) List(_ *yaml.Node, items []string) string {
	return "[" + strings.Join(items, ", ") + "]"
}

func (dumper) Map(_ *yaml.Node, entries []Entry[string]) string {
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = fmt.Sprintf("%s@%d: %s", e.Key, e.KeyNode.Line, e.Value)
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func pathText(p Path) string {
	var b strings.Builder
	for _, s := range p {
		if s.IsKey() {
			b.WriteString("." + s.Key)
		} else {
			fmt.Fprintf(&b, "[%d]", s.Index)
		}
	}
	return b.String()
}

func parse(t *testing.T, src string) *yaml.Node {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatalf("yaml: %v", err)
	}
	return &doc
}

// bomb is a "billion laughs": levels lists of nine aliases each to the
// list before, over a list of nine scalars on line 1.
func bomb(levels int) string {
	var b strings.Builder
	b.WriteString("a: &a [x, x, x, x, x, x, x, x, x]\n")
	for c := 'b'; c < 'b'+rune(levels); c++ {
		fmt.Fprintf(&b, "%c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+string(c-1)+", ", 9), ", "))
	}
	return b.String()
}

func TestConvert(t *testing.T) {
	tests := []struct {
		name string
		src  string
		lim  Limits
		want string
		errs []string // "line N path: message"
	}{
		{"scalars and nesting", "a: 1\nb: [x, {c: y}]\n", Limits{}, "{a@1: 1, b@2: [x, {c@2: y}]}", nil},
		{"empty document", "", Limits{}, "", nil},
		{"alias copies", "a: &a {x: 1}\nb: *a\n", Limits{}, "{a@1: {x@1: 1}, b@2: {x@1: 1}}", nil},
		{"merge: explicit keys win, then first merged map", "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  x: 3\n  <<: [*a, *b]\n", Limits{},
			"{a@1: {x@1: 1, y@1: 1}, b@2: {y@2: 2, z@2: 2}, c@3: {x@4: 3, y@1: 1, z@2: 2}}", nil},
		{"merge of one map, nested merges", "a: &a {x: 1}\nb: &b\n  <<: *a\n  y: 2\nc:\n  <<: *b\n", Limits{},
			"{a@1: {x@1: 1}, b@2: {y@4: 2, x@1: 1}, c@5: {y@4: 2, x@1: 1}}", nil},
		{"merge of an alias to a list of maps", "l: &l [{x: 1}]\nm:\n  <<: *l\n", Limits{}, "{l@1: [{x@1: 1}], m@2: {x@1: 1}}", nil},
		{"alias as key", "k: &k name\nm: {*k : 1}\n", Limits{}, "{k@1: name, m@2: {name@1: 1}}", nil},
		{"duplicate key", "a: 1\nb: {c: 1, c: 2}\n", Limits{}, "",
			[]string{`line 2 .b.c: duplicate key "c" (first set at line 2)`}},
		{"second merge key", "x:\n  <<: {a: 1}\n  <<: {b: 2}\n", Limits{}, "",
			[]string{"line 3 .x: a second merge key (<<) in the same map (the first is at line 2); merge several maps with one: <<: [*a, *b]"}},
		{"map as key", "? {a: 1}\n: x\n", Limits{}, "", []string{"line 1 : map keys must be plain strings, not a map"}},
		{"list as key", "? [a]\n: x\n", Limits{}, "", []string{"line 1 : map keys must be plain strings, not a list"}},
		{"merge of a scalar", "m:\n  <<: 5\n", Limits{}, "", []string{"line 2 .m: map merge (<<) needs a map or a list of maps, not an integer 5"}},
		{"merge of a list with a string", "m:\n  <<: [{a: 1}, x]\n", Limits{}, "", []string{`line 2 .m: map merge (<<) needs a map or a list of maps, not a string "x"`}},
		{"builder errors, all of them, with paths", "a: [bad, {b: bad}]\nbadkey: 1\n", Limits{}, "", []string{
			"line 1 .a[0]: bad value at .a[0]",
			"line 1 .a[1].b: bad value at .a[1].b",
			"line 2 : bad key",
		}},
		{"alias inside itself", "a: &a [1, *a]\n", Limits{}, "", []string{"line 1 : alias *a refers to a node that contains it"}},
		{"merge inside itself", "a: &a\n  b: 1\n  <<: *a\n", Limits{}, "", []string{"line 3 : alias *a refers to a node that contains it"}},
		{"too many values", bomb(3), Limits{MaxValues: 1000}, "", []string{"line 1 : document expands to more than 1000 values (aliases re-used too often?); refusing it"}},
		// The map, its key, the list and two items: 5 values.
		{"at MaxValues", "a: [1, 2]\n", Limits{MaxValues: 5}, "{a@1: [1, 2]}", nil},
		{"one over MaxValues", "a: [1, 2]\n", Limits{MaxValues: 4}, "", []string{"line 1 : document expands to more than 4 values (aliases re-used too often?); refusing it"}},
		{"too deep", "a: [[[1]]]\n", Limits{MaxDepth: 3}, "", []string{"line 1 : document nests more than 3 levels deep; refusing it"}},
		{"within MaxDepth", "a: [[1]]\n", Limits{MaxDepth: 3}, "{a@1: [[1]]}", nil},
		// b's nine *a add 10 values each: the 51st is the first of the
		// sixth *a, a's list (line 1), not b's line.
		{"too many alias values", bomb(3), Limits{MaxAliasValues: 50}, "", []string{"line 1 : aliases expand to more than 50 values (aliases re-used too often?); refusing the document"}},
		// A large document without aliases is not bounded by MaxAliasValues.
		{"many values, no aliases", "a: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n", Limits{MaxAliasValues: 5}, "{a@1: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Convert[string](parse(t, tt.src), dumper{}, tt.lim)
			var gotErrs []string
			if err != nil {
				var errs Errors
				if !errors.As(err, &errs) {
					t.Fatalf("got error %T %v; want Errors", err, err)
				}
				for _, e := range errs {
					gotErrs = append(gotErrs, fmt.Sprintf("line %d %s: %s", e.Line, pathText(e.Path), e.Msg))
				}
			}
			if strings.Join(gotErrs, "\n") != strings.Join(tt.errs, "\n") {
				t.Errorf("got errors\n%s\nwant\n%s", strings.Join(gotErrs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if tt.errs == nil && got != tt.want {
				t.Errorf("got %s; want %s", got, tt.want)
			}
		})
	}
}

// TestAliasLimitLine checks where the alias bound is reported on a bomb
// of nine levels: at the value that crosses it, in the first list.
func TestAliasLimitLine(t *testing.T) {
	_, err := Convert[string](parse(t, bomb(8)), dumper{}, Limits{MaxAliasValues: 1_000_000})
	want := "line 1: aliases expand to more than 1000000 values (aliases re-used too often?); refusing the document"
	if err == nil || err.Error() != want {
		t.Errorf("got %v; want %q", err, want)
	}
}

func TestPairs(t *testing.T) {
	doc := parse(t, "a: &a {x: 1, y: 2}\nm:\n  k: 0\n  <<: [*a, {z: 3}]\n  x: 4\n")
	var got []string
	Pairs(doc.Content[0].Content[3], func(k, v *yaml.Node) {
		got = append(got, k.Value+"="+Deref(v).Value)
	})
	want := "k=0 x=1 y=2 z=3 x=4"
	if strings.Join(got, " ") != want {
		t.Errorf("got %s; want %s (merged pairs where the << is, nothing deduplicated)", strings.Join(got, " "), want)
	}
	called := false
	Pairs(parse(t, "[1, 2]\n").Content[0], func(_, _ *yaml.Node) { called = true })
	if called {
		t.Errorf("Pairs called f for a list; want no calls")
	}
}
