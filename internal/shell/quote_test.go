package shell

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestQuoteTable(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", "''"},
		{"abc", "abc"},
		{"/etc/motd", "/etc/motd"},
		{"a b", "'a b'"},
		{"it's", `'it'\''s'`},
		{"$(id)", "'$(id)'"},
		{"~root", "'~root'"},
		{"*", "'*'"},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			if got := Quote(c.in); got != c.want {
				t.Errorf("Quote(%q) = %q; want %q", c.in, got, c.want)
			}
		})
	}
}

// roundTrip runs printf %s WORD in a real sh and returns what it printed.
func roundTrip(t testing.TB, s string) []byte {
	t.Helper()
	out, err := exec.Command("sh", "-c", "printf %s "+Quote(s)).Output()
	if err != nil {
		t.Fatalf("sh -c printf %%s %s: %v", Quote(s), err)
	}
	return out
}

func TestQuoteRoundTripsThroughSh(t *testing.T) {
	for _, s := range []string{"a'b\"c", "line1\nline2", "`id`", "$HOME", "-n", "\xff\xfe", "a\\b", "!x", "  lead", "tab\there", "x=1", "#comment", "&&;|<>"} {
		if got := roundTrip(t, s); !bytes.Equal(got, []byte(s)) {
			t.Errorf("round trip of %q: got %q; want %q", s, got, s)
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a", "'", "''\\'", "$(rm -rf /)", "\n", "\xff", "-e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.IndexByte(s, 0) >= 0 {
			return // NUL cannot be in an argv; callers reject it
		}
		if got := roundTrip(t, s); !bytes.Equal(got, []byte(s)) {
			t.Errorf("round trip of %q: got %q; want %q", s, got, s)
		}
	})
}
