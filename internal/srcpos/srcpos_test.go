package srcpos

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2/unstable"
)

func TestLines(t *testing.T) {
	text := []byte("ab\ncd\n\nef")
	l := NewLines(text)
	if got := l.Count(); got != 4 {
		t.Errorf("Count: got %d; want 4", got)
	}
	tests := []struct{ off, line int }{
		{-1, 1}, {0, 1}, {2, 1}, {3, 2}, {5, 2}, {6, 3}, {7, 4}, {9, 4}, {100, 4},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("offset ", tt.off), func(t *testing.T) {
			if got := l.Line(tt.off); got != tt.line {
				t.Errorf("Line(%d): got %d; want %d", tt.off, got, tt.line)
			}
			if got := LineAt(text, tt.off); got != tt.line {
				t.Errorf("LineAt(%d): got %d; want %d", tt.off, got, tt.line)
			}
		})
	}
	ends := []struct{ n, end int }{{0, 0}, {1, 3}, {2, 6}, {3, 7}, {4, 9}, {5, 9}}
	for _, tt := range ends {
		t.Run(fmt.Sprint("end ", tt.n), func(t *testing.T) {
			if got := l.End(tt.n); got != tt.end {
				t.Errorf("End(%d): got %d; want %d", tt.n, got, tt.end)
			}
		})
	}
	if got := l.Start(3); got != 6 {
		t.Errorf("Start(3): got %d; want 6", got)
	}
}

func TestTOMLKeys(t *testing.T) {
	src := `top = 1
[a.b]
x = 1
"quoted key".y = [1, 2]

[[list]]
z = { p = 1, q.r = 2 }
`
	var got []string
	TOMLKeys([]byte(src), func(path []string, line int, v *unstable.Node) {
		kind := "header"
		if v != nil {
			kind = v.Kind.String()
		}
		got = append(got, fmt.Sprintf("%d %s %s", line, strings.Join(path, "|"), kind))
	})
	want := []string{
		"1 top Integer",
		"2 a|b header",
		"3 a|b|x Integer",
		"4 a|b|quoted key|y Array",
		"6 list header",
		"7 list|z InlineTable",
		"7 list|z|p Integer",
		"7 list|z|q|r Integer",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestTOMLKeysStopsAtSyntaxError(t *testing.T) {
	var got []string
	TOMLKeys([]byte("a = 1\nb = \nc = 3\n"), func(path []string, _ int, _ *unstable.Node) {
		got = append(got, strings.Join(path, "."))
	})
	if strings.Join(got, ",") != "a" {
		t.Errorf("got keys %q; want only a (the keys before the error)", got)
	}
}
