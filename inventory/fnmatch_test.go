package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// fnmatchEdgeCases are patterns whose meaning is easy to get wrong, each
// with names to try. TestFnmatch pins what they match (as Python 3.11's
// fnmatch.fnmatchcase does); TestFnmatchMatchesPython also asks python3.
var fnmatchEdgeCases = []struct {
	pat     string
	matches []string
	not     []string
}{
	{"", []string{""}, []string{"a"}},
	{"*", []string{"", "a", "a/b", ".hidden", "a.b.c", "é"}, nil},
	{"a*b", []string{"ab", "a/b", "a.x.b", "abab"}, []string{"a", "ba", "abc"}},
	{"*a*a*", []string{"aa", "xaxax", "a/a"}, []string{"a", "xax"}},
	{"?", []string{"a", "/", ".", "é", "\n"}, []string{"", "ab"}},
	{"h[!1]", []string{"h2", "h!", "h^"}, []string{"h1", "h", "h12"}},
	{"h[^1]", []string{"h1", "h^"}, []string{"h2"}}, // ^ is no negation
	{"[]]", []string{"]"}, []string{"[", "[]]"}},
	{"[!]]", []string{"a", "["}, []string{"]"}},
	{"[]a]]", []string{"a]", "]]"}, []string{"a", "]"}},
	{"[", []string{"["}, []string{"", "a"}},
	{"a[b", []string{"a[b"}, []string{"ab"}},
	{"[!]", []string{"[!]"}, []string{"!", "a"}},
	{"[]", []string{"[]"}, []string{"", "]"}},
	{"[z-a]", nil, []string{"z", "a", "-", "m"}},
	{"[!z-a]", []string{"z", "a", "-"}, []string{"", "za"}},
	{"[a-]", []string{"a", "-"}, []string{"b"}},
	{"[-a]", []string{"a", "-"}, []string{"b"}},
	{"[!-a]", []string{"b"}, []string{"a", "-"}},
	{"[a-c-e]", []string{"a", "b", "c", "-", "e"}, []string{"d"}},
	{"[a--]", nil, []string{"a", "-"}},
	{"[]-a]", []string{"]", "^", "a"}, []string{"b"}},
	{"[a-cx-z]", []string{"b", "y"}, []string{"d", "-"}},
	{"[b-a!x]", []string{"q", "!"}, []string{"x"}}, // Python's translation: the empty range goes, "!x" remains
	{"[b-a!]", []string{"a", "!", "z"}, []string{""}},
	{`\`, []string{`\`}, []string{""}},
	{`\*`, []string{`\`, `\x`}, []string{"*", "x"}}, // no escaping: \ then *
	{`[\]`, []string{`\`}, []string{"]"}},
	{"[*?]", []string{"*", "?"}, []string{"a"}},
	{"[[]", []string{"["}, []string{"]"}},
	{"[&~|]", []string{"&", "~", "|"}, []string{"a"}},
	{"[à-ê]", []string{"é"}, []string{"a", "z"}},
	{"web[12].example.com", []string{"web1.example.com"}, []string{"web3.example.com", "web1xexample.com"}},
	{"WEB*", []string{"WEB1"}, []string{"web1"}}, // case-sensitive
	{"a\xffb", []string{"a\xffb"}, []string{"a\xfeb", "a\uFFFDb"}},
}

func TestFnmatch(t *testing.T) {
	for _, c := range fnmatchEdgeCases {
		t.Run(c.pat, func(t *testing.T) {
			p := compilePattern(c.pat)
			for _, name := range c.matches {
				if got := p.match(name); !got {
					t.Errorf("fnmatch(%q, %q): got %v; want true", name, c.pat, got)
				}
			}
			for _, name := range c.not {
				if got := p.match(name); got {
					t.Errorf("fnmatch(%q, %q): got %v; want false", name, c.pat, got)
				}
			}
		})
	}
}

// fnmatchCorpus returns name/pattern pairs for the comparison with
// Python: the edge cases, then patterns and names drawn (with a fixed
// seed) from small alphabets heavy in the characters that mean something
// in patterns.
func fnmatchCorpus() [][2]string {
	var pairs [][2]string
	for _, c := range fnmatchEdgeCases {
		if !utf8.ValidString(c.pat) {
			continue // Python strings are characters; JSON carries no raw bytes
		}
		for _, n := range append(append([]string{}, c.matches...), c.not...) {
			if utf8.ValidString(n) {
				pairs = append(pairs, [2]string{n, c.pat})
			}
		}
	}
	rng := rand.New(rand.NewPCG(20240611, 1))
	patRunes := []rune("ab1-]-][[!!^*?./é\\")
	nameRunes := []rune("ab1-]![^*?./é\\")
	pick := func(alpha []rune, n int) string {
		var b strings.Builder
		for range n {
			b.WriteRune(alpha[rng.IntN(len(alpha))])
		}
		return b.String()
	}
	for range 1500 {
		pat := pick(patRunes, rng.IntN(9))
		// A random name, a short one (more likely to match) and one made
		// from the pattern with its wildcards filled in.
		pairs = append(pairs,
			[2]string{pick(nameRunes, rng.IntN(7)), pat},
			[2]string{pick(nameRunes, 1+rng.IntN(2)), pat},
			[2]string{fillIn(pat, rng, nameRunes), pat})
	}
	// Sets alone, exhaustively small: every body of up to 3 characters
	// from the ones that matter inside [ ], against each character.
	setRunes := []rune("!-]^ab")
	var bodies []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		bodies = append(bodies, prefix)
		if n == 0 {
			return
		}
		for _, r := range setRunes {
			gen(prefix+string(r), n-1)
		}
	}
	gen("", 3)
	for _, body := range bodies {
		for _, name := range []string{"a", "b", "c", "!", "-", "]", "^", "["} {
			pairs = append(pairs, [2]string{name, "[" + body + "]"})
		}
	}
	return pairs
}

// fillIn turns a pattern into a name it may well match: each * becomes up
// to two random characters, each ? one, each [ ... ] its first member.
func fillIn(pat string, rng *rand.Rand, alpha []rune) string {
	var b strings.Builder
	rs := []rune(pat)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			for range rng.IntN(3) {
				b.WriteRune(alpha[rng.IntN(len(alpha))])
			}
		case '?':
			b.WriteRune(alpha[rng.IntN(len(alpha))])
		case '[':
			j := i + 1
			if j < len(rs) && rs[j] == '!' {
				j++
			}
			if j < len(rs) {
				b.WriteRune(rs[j])
				for j < len(rs) && rs[j] != ']' {
					j++
				}
				i = j
			} else {
				b.WriteRune(r)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// pythonFnmatch is the python3 program TestFnmatchMatchesPython runs: it
// reads [[name, pattern], ...] as JSON and prints the Python version and
// fnmatch.fnmatchcase of every pair.
const pythonFnmatch = `
import fnmatch, json, sys, warnings
warnings.simplefilter("ignore")  # re's FutureWarnings about [[ and --
pairs = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = {"version": sys.version.split()[0], "results": []}
for name, pat in pairs:
    out["results"].append(fnmatch.fnmatchcase(name, pat))
sys.stdout.write(json.dumps(out))
`

// TestFnmatchMatchesPython compares the matcher with Python's
// fnmatch.fnmatchcase, which Ansible uses, on a few thousand pairs.
func TestFnmatchMatchesPython(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 is required when CI is set (it checks the host patterns against Python's fnmatch); install it, e.g. in .ci/deps: %v", err)
		}
		t.Skipf("python3 not found (%v): skipping the comparison with Python's fnmatch; CI runs it", err)
	}
	pairs := fnmatchCorpus()
	in, err := json.Marshal(pairs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", pythonFnmatch)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python3: %v; stderr: %s", err, stderr.String())
	}
	var res struct {
		Version string `json:"version"`
		Results []bool `json:"results"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("python3 output %.200q: %v", out, err)
	}
	if len(res.Results) != len(pairs) {
		t.Fatalf("python3 %s: got %d results; want %d", res.Version, len(res.Results), len(pairs))
	}
	failures, matched := 0, 0
	for i, p := range pairs {
		name, pat, want := p[0], p[1], res.Results[i]
		if want {
			matched++
		}
		if got := compilePattern(pat).match(name); got != want {
			if failures++; failures <= 50 {
				t.Errorf("fnmatch(%q, %q): got %v; want %v (python %s)", name, pat, got, want, res.Version)
			}
		}
	}
	if failures > 50 {
		t.Errorf("... %d mismatches in all", failures)
	}
	t.Logf("%d pairs (%d matching) agree with python %s", len(pairs), matched, res.Version)
	if matched < len(pairs)/10 {
		t.Errorf("only %d of %d pairs match in Python; want a corpus with more matches", matched, len(pairs))
	}
}

func TestLimitBangClass(t *testing.T) {
	inv, err := New([]Group{{Name: "web", Hosts: []string{"h1", "h2", "h3"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		limit string
		want  []string // nil: a *NoMatchError
	}{
		{"h[!1]", []string{"h2", "h3"}}, // path.Match read this as [1!]: only h1
		{"!h[!1]", []string{"h1"}},
		{"web,!h[!12]", []string{"h1", "h2"}},
		{"h[^1]", []string{"h1"}}, // as in Python and Ansible: ^ is a member, not a negation
		{"h[!1-3]", nil},
	}
	for _, c := range cases {
		t.Run(c.limit, func(t *testing.T) {
			l, err := ParseLimit(c.limit)
			if err != nil {
				t.Fatalf("ParseLimit(%q): %v", c.limit, err)
			}
			got, err := l.Filter(inv, inv.Hosts())
			if c.want == nil {
				var nm *NoMatchError
				if !errors.As(err, &nm) {
					t.Errorf("Filter(%q): got %v, %v; want a *NoMatchError", c.limit, names(got), err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Filter(%q): %v", c.limit, err)
			}
			if !reflect.DeepEqual(names(got), c.want) {
				t.Errorf("Filter(%q): got %v; want %v", c.limit, names(got), c.want)
			}
		})
	}
}

// FuzzFnmatch checks that no pattern panics the matcher, that a pattern
// without wildcards matches exactly its own text, and that a leading *
// keeps every match.
func FuzzFnmatch(f *testing.F) {
	for _, c := range fnmatchEdgeCases {
		name := ""
		if len(c.matches) > 0 {
			name = c.matches[0]
		}
		f.Add(c.pat, name)
	}
	f.Fuzz(func(t *testing.T, pat, name string) {
		p := compilePattern(pat)
		m := p.match(name)
		if !strings.ContainsAny(pat, "*?[") {
			if !p.match(pat) {
				t.Errorf("fnmatch(%q, %q): got false; want true (no wildcards)", pat, pat)
			}
			if m != (name == pat) {
				t.Errorf("fnmatch(%q, %q): got %v; want %v (no wildcards)", name, pat, m, name == pat)
			}
		}
		if m && !compilePattern("*"+pat).match("x"+name) {
			t.Errorf("fnmatch(%q, %q): got false; want true (%q matches %q)", "x"+name, "*"+pat, pat, name)
		}
	})
}

func ExampleParseLimit() {
	inv, _ := New([]Group{{Name: "web", Hosts: []string{"h1", "h2", "h3"}}}, nil)
	l, _ := ParseLimit("h[!1]")
	hosts, _ := l.Filter(inv, inv.Hosts())
	fmt.Println(names(hosts))
	// Output: [h2 h3]
}
