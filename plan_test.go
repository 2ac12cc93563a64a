package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/providers"
)

func TestComparePlannedHost(t *testing.T) {
	change := func(after string) *providers.Change {
		return &providers.Change{Action: providers.Update, Fields: []providers.Field{{Name: "content", Before: "a", After: after}}}
	}
	res := func(id, fp string, ch *providers.Change) *planResource {
		st := engine.StatusOK
		if ch.Changed() {
			st = engine.StatusChanged
		}
		return &planResource{ID: id, Resource: "file[/" + id + "]", Status: st, Change: ch, Fingerprint: fp}
	}
	none := &providers.Change{Action: providers.None}
	secret := &providers.Change{Action: providers.Update, Sensitive: true, Fields: []providers.Field{{Name: "content", Before: "<hidden>", After: "<hidden>"}}}
	for _, tc := range []struct {
		name         string
		planned, now []*planResource
		want         string // "" or part of the error
	}{
		{"same", []*planResource{res("a", "f1", change("b")), res("b", "f2", none)}, []*planResource{res("a", "f1", change("b")), res("b", "f2", none)}, ""},
		{"same change, other state (a directory's size)", []*planResource{res("a", "f1", none)}, []*planResource{res("a", "f9", none)}, ""},
		{"other change", []*planResource{res("a", "f1", change("b"))}, []*planResource{res("a", "f9", change("c"))}, "file[/a] (a): the plan has update (content: a -> b); the host now needs update (content: a -> c)"},
		{"now clean", []*planResource{res("a", "f1", change("b"))}, []*planResource{res("a", "f9", none)}, "the host now needs no change"},
		{"sensitive, other state", []*planResource{res("a", "f1", secret)}, []*planResource{res("a", "f9", secret)}, "the resource is sensitive"},
		{"sensitive, same state", []*planResource{res("a", "f1", secret)}, []*planResource{res("a", "f1", secret)}, ""},
		{"missing now", []*planResource{res("a", "f1", none)}, nil, "in the plan but not checked now"},
		{"new now", nil, []*planResource{res("a", "f1", none)}, "checked now but not in the plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := compareHost(tc.planned, tc.now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want no difference", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error with %q", err, tc.want)
			}
		})
	}
}

func TestPlanInputs(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": "x", "files/a": "1", "files/sub/b": "2"})
	pf := &planFile{}
	for _, p := range []string{"site.toml", "files", "gone"} {
		in, err := inputDigest(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		pf.Inputs = append(pf.Inputs, in)
	}
	if got := pf.Inputs[2].Kind; got != "missing" {
		t.Errorf("a missing path: got kind %q; want missing", got)
	}
	if err := pf.verifyInputs("p"); err != nil {
		t.Fatalf("unchanged inputs: got %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func()
		want   string
	}{
		{"file edited", func() { testutil.WriteTree(t, dir, map[string]string{"site.toml": "y"}) }, filepath.Join(dir, "site.toml")},
		{"file added to a directory", func() { testutil.WriteTree(t, dir, map[string]string{"files/sub/c": ""}) }, filepath.Join(dir, "files")},
		{"mode changed in a directory", func() { os.Chmod(filepath.Join(dir, "files/a"), 0o755) }, filepath.Join(dir, "files")},
		{"missing now there", func() { testutil.WriteTree(t, dir, map[string]string{"gone": ""}) }, "(was a missing, now file)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			err := pf.verifyInputs("p")
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "refused as a whole") {
				t.Errorf("got %v; want the plan refused naming %q", err, tc.want)
			}
		})
	}
}

func TestReadPlan(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"format":"opsmop-plan","version":1,"opsmop":"x","created":"t","policy":"/p/site.toml","run":{},"inputs":[],"hosts":[]}`
	for _, tc := range []struct {
		name, text, want string
		plan             bool // isPlanFile
	}{
		{"good", good, "", true},
		{"policy", "[[roles]]\nname = \"a\"\n", "not an opsmop plan", false},
		{"json policy", `{"roles":[]}`, "not an opsmop plan", false},
		{"other version", strings.Replace(good, `"version":1`, `"version":7`, 1), "plan format version 7, this opsmop reads version 1", true},
		{"unknown key", strings.Replace(good, `"hosts":[]`, `"hosts":[],"x":1`, 1), "malformed", true},
		{"relative policy", strings.Replace(good, `/p/site.toml`, `site.toml`, 1), "no absolute policy path", true},
		{"truncated", good[:40], "not an opsmop plan", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := write(strings.ReplaceAll(tc.name, " ", "_")+".plan", tc.text)
			_, err := readPlan(p)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("got %v; want it read", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v; want an error with %q", err, tc.want)
			}
			if got := isPlanFile(p); got != tc.plan {
				t.Errorf("isPlanFile: got %v; want %v", got, tc.plan)
			}
		})
	}
}
