package providers

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

// FuzzLineEdit: editing never panics, the result contains the line (present)
// or no matching line (absent), and a second edit changes nothing, provided
// the regexp matches the line itself (as docs/resources/line.md asks).
func FuzzLineEdit(f *testing.F) {
	f.Add("a=1\nb=2\na=3\n", "a=9", 2, "^b", false)
	f.Add("", "x", 0, "", false)
	f.Add("x", "x", 1, "", true)
	f.Add("[main]\ny\n", "z=1", 0, `^\[main\]$`, false)
	f.Fuzz(func(t *testing.T, content, line string, prefix int, insertAfter string, absent bool) {
		if strings.ContainsAny(line, "\n\x00") || line == "" || strings.IndexByte(content, 0) >= 0 {
			return
		}
		s := &LineSpec{Path: "/f", Line: line, InsertAfter: insertAfter}
		if prefix > 0 {
			if prefix > len(line) {
				prefix = len(line)
			}
			s.Regexp = "^" + regexp.QuoteMeta(line[:prefix])
		}
		if absent {
			s.State = "absent"
		}
		c, err := s.compile()
		if err != nil {
			return // a bad insert_after
		}
		once, _ := c.edit([]byte(content))
		twice, _ := c.edit(once)
		if !bytes.Equal(once, twice) {
			t.Fatalf("not idempotent: %q -> %q -> %q", content, once, twice)
		}
		lines := strings.Split(strings.TrimSuffix(string(once), "\n"), "\n")
		found := false
		for _, l := range lines {
			if l == line {
				found = true
			}
		}
		if !absent && !found {
			t.Fatalf("line %q missing from %q", line, once)
		}
		if absent && found {
			t.Fatalf("line %q still in %q", line, once)
		}
	})
}

// FuzzParseProbe: probe output from a hostile host never panics the parser.
func FuzzParseProbe(f *testing.F) {
	f.Add([]byte("type=file\nstat=644 0 0 root root 3\nsha256=ab\nblob=3\nhi\n"))
	f.Add([]byte("blob=99\nx"))
	f.Add([]byte("blob=-1\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		p, err := parseProbe(out)
		if err == nil {
			_, _, _ = parseStat(p)
		}
	})
}

// FuzzDebControl: a hostile .deb never panics the reader.
func FuzzDebControl(f *testing.F) {
	f.Add([]byte("!<arch>\ndebian-binary   0           0     0     100644  4         `\n2.0\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = debControl(bytes.NewReader(b))
	})
}
