package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/inventory"
)

func TestSliceMembers(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, nHosts := range []int{0, 1, 2, 7, 50, 201} {
		var hosts []*inventory.Host
		for i := range nHosts {
			hosts = append(hosts, &inventory.Host{Name: fmt.Sprintf("h%d-%x", i, rng.Uint32())})
		}
		for n := 1; n <= 13; n++ {
			seen := map[string]int{}
			var sizes []int
			for k := 1; k <= n; k++ {
				sl := sliceSpec{K: k, N: n}
				m := sl.members(hosts)
				// The same slice of the hosts in another order.
				shuffled := append([]*inventory.Host(nil), hosts...)
				rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
				if fmt.Sprint(sl.members(shuffled)) != fmt.Sprint(m) {
					t.Fatalf("%d hosts, slice %s: another inventory order gives other hosts", nHosts, sl)
				}
				for h := range m {
					seen[h]++
				}
				sizes = append(sizes, len(m))
			}
			if len(seen) != nHosts {
				t.Fatalf("%d hosts in %d slices: got %d hosts covered; want all", nHosts, n, len(seen))
			}
			for h, c := range seen {
				if c != 1 {
					t.Fatalf("%d hosts in %d slices: %s is in %d slices; want 1", nHosts, n, h, c)
				}
			}
			lo, hi := sizes[0], sizes[0]
			for _, s := range sizes {
				lo, hi = min(lo, s), max(hi, s)
			}
			if hi-lo > 1 {
				t.Fatalf("%d hosts in %d slices: sizes %v; want them to differ by at most 1", nHosts, n, sizes)
			}
		}
	}
}

func TestParseSlice(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"1/1", "1/1"}, {"3/4", "3/4"},
		{"0/4", "the slice must be 1 to 4"}, {"5/4", "the slice must be 1 to 4"}, {"1/0", "must be 1 to"},
		{"a/b", "want K/N"}, {"2", "want K/N"}, {"1/2/3", "want K/N"}, {"", "want K/N"}, {"-1/2", "the slice must be 1 to 2"},
	} {
		sl, err := parseSlice(tc.in)
		got := sl.String()
		if err != nil {
			got = err.Error()
		}
		if !strings.Contains(got, tc.want) {
			t.Errorf("parseSlice(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
}

// stream is a --json stream of one slice for recap tests.
func stream(mode, policyDigest, slice string, hosts map[string]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"type":"run_start","time":"2026-12-06T00:00:00Z","mode":%q,"hosts":%d,"version":1,"policy":"/p/site.toml","policy_sha256":%q,"slice":%q}`+"\n", mode, len(hosts), policyDigest, slice)
	var entries []string
	for h, st := range hosts {
		fmt.Fprintf(&b, `{"type":"host_end","time":"2026-12-06T00:00:01Z","mode":%q,"host":%q,"role":"r","stats":{%s}}`+"\n", mode, h, st)
		entries = append(entries, fmt.Sprintf("%q:{%s}", h, st))
	}
	fmt.Fprintf(&b, `{"type":"summary","time":"2026-12-06T00:00:02Z","mode":%q,"duration_s":1.5,"summary":{"mode":%q,"hosts":{%s},"total":{},"duration_s":1.5}}`+"\n", mode, mode, strings.Join(entries, ","))
	return b.String()
}

func TestRecap(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ok := `"ok":1,"changed":0,"failed":0,"skipped":0,"unreachable":0`
	pending := `"ok":0,"changed":2,"failed":0,"skipped":0,"unreachable":0`
	failed := `"ok":0,"changed":0,"failed":1,"skipped":0,"unreachable":0,"error":"boom"`
	s1 := write("s1", stream("check", "d1", "1/2", map[string]string{"a": ok, "c": ok}))
	s2 := write("s2", stream("check", "d1", "2/2", map[string]string{"b": pending}))
	s2f := write("s2f", stream("check", "d1", "2/2", map[string]string{"b": failed}))
	other := write("other", stream("check", "d2", "2/2", map[string]string{"b": ok}))
	applyS := write("apply", stream("apply", "d1", "2/2", map[string]string{"b": ok}))
	dup := write("dup", stream("check", "d1", "2/2", map[string]string{"a": ok}))
	full := stream("check", "d1", "2/2", map[string]string{"b": ok})
	cut := write("cut", full[:strings.LastIndex(full, `{"type":"summary"`)])
	half := write("half", full[:len(full)-20])
	old := write("old", strings.Replace(strings.Replace(full, `"version":1,`, ``, 1), `"policy_sha256":"d1",`, ``, 1))
	for _, tc := range []struct {
		name  string
		args  []string
		code  int
		wants []string
	}{
		{"merged", []string{"recap", s1, s2}, 0, []string{"recap of 2 slice(s) (1/2, 2/2) of check /p/site.toml", "TOTAL  hosts=3 ok=2 pending=2 failed=0"}},
		{"pending with --detailed-exitcode", []string{"recap", "--detailed-exitcode", s2, s1}, exitPending, []string{"TOTAL  hosts=3"}},
		{"the worst: failed", []string{"recap", "--detailed-exitcode", s1, s2f}, exitFailed, []string{"failed=1"}},
		{"json", []string{"recap", "--json", s1, s2}, 0, []string{`"type":"summary"`, `"total":{"ok":2,"changed":2,"failed":0`}},
		{"another policy", []string{"recap", s1, other}, exitInvalid, []string{"ran another policy than"}},
		{"another command", []string{"recap", s1, applyS}, exitInvalid, []string{"is a apply run"}},
		{"a slice missing", []string{"recap", s1}, exitInvalid, []string{"slices 2/2 are missing"}},
		{"a slice twice", []string{"recap", s1, s2, s2}, exitInvalid, []string{"are both slice 2/2"}},
		{"overlapping hosts", []string{"recap", s1, dup}, exitInvalid, []string{"host a is in"}},
		{"cut before the summary", []string{"recap", s1, cut}, exitInvalid, []string{"truncated: it ends with a host_end event"}},
		{"cut in a line", []string{"recap", s1, half}, exitInvalid, []string{"not an opsmop --json event"}},
		{"an older stream", []string{"recap", s1, old}, exitInvalid, []string{"written by an older opsmop"}},
		{"no file", []string{"recap"}, exitInvalid, []string{"give the --json streams to merge"}},
		{"missing file", []string{"recap", filepath.Join(dir, "nope")}, exitInvalid, []string{"no such file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := opsmop(t, Env{Home: t.TempDir()}, tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d; want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.wants {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
}
