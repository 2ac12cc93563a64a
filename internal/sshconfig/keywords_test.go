package sshconfig

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// opensshMirror is where the project keeps a snapshot of OpenSSH portable.
const opensshMirror = "/work/.mirror/openssh+openssh-portable/repo"

// readconfKeywords extracts the keyword names from readconf.c's table.
func readconfKeywords(src string) []string {
	start := strings.Index(src, "keywords[] = {")
	if start < 0 {
		return nil
	}
	end := strings.Index(src[start:], "\n};")
	re := regexp.MustCompile(`\{ "([a-z0-9]+)",`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(src[start:start+end], -1) {
		names = append(names, m[1])
	}
	return names
}

// upstreamKeywords returns OpenSSH's keyword names: from the mirror's
// readconf.c (HEAD and, when present, the 9.2 tag) when the mirror exists,
// else from testdata/keywords.golden.
func upstreamKeywords(t *testing.T) (names []string, from string) {
	t.Helper()
	if _, err := os.Stat(opensshMirror); err == nil {
		for _, rev := range []string{"HEAD", "V_9_2_P1"} {
			out, err := exec.Command("git", "-C", opensshMirror, "show", rev+":readconf.c").Output()
			if err == nil {
				names = append(names, readconfKeywords(string(out))...)
				from += rev + " "
			}
		}
		if len(names) > 0 {
			return names, "mirror " + from
		}
	}
	data, err := os.ReadFile("testdata/keywords.golden")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(data)), "testdata/keywords.golden"
}

func TestKeywordsCoverReadconf(t *testing.T) {
	names, from := upstreamKeywords(t)
	if len(names) < 100 {
		t.Fatalf("got %d keywords from %s; want the whole table", len(names), from)
	}
	idx := keywordIndex()
	for _, n := range names {
		if _, ok := idx[n]; !ok {
			t.Errorf("keyword %q (from %s) is missing from Keywords()", n, from)
		}
	}
	golden, err := os.ReadFile("testdata/keywords.golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range strings.Fields(string(golden)) {
		if _, ok := idx[n]; !ok {
			t.Errorf("golden keyword %q is missing from Keywords()", n)
		}
	}
}

func TestKeywordsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Keywords() {
		low := strings.ToLower(k.Name)
		if seen[low] {
			t.Errorf("keyword %s: got it twice; want once", k.Name)
		}
		seen[low] = true
		switch k.Class {
		case ClassHonoured:
		case ClassIgnored, ClassUnsupported:
			if k.Why == "" {
				t.Errorf("keyword %s: got empty Why; want a reason", k.Name)
			}
		default:
			t.Errorf("keyword %s: got class %q; want honoured, ignored or unsupported", k.Name, k.Class)
		}
	}
}
