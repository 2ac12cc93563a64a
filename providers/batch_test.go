package providers

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
)

// plainProber is a provider that may not run inline; pathProbers may, and
// look at the path of their request's spec.
type plainProber struct{}

func (plainProber) Probe(*Request) (string, error) { return "", nil }
func (plainProber) Check(*Request, connection.Result) (*Change, error) {
	return &Change{Action: None}, nil
}
func (plainProber) Apply(context.Context, Host, *Request, *Change) (*Outcome, error) {
	return &Outcome{}, nil
}

type pathProberFake struct{ plainProber }

func (pathProberFake) ProbeVars() []string { return []string{"v1"} }
func (pathProberFake) ProbePath(req *Request) (ProbedPath, bool) {
	return ProbedPath{Path: req.Spec.(string)}, true
}

func TestBatch(t *testing.T) {
	type add struct {
		p      Provider
		path   string
		script string
	}
	inl, plain := pathProberFake{}, plainProber{}
	for _, tc := range []struct {
		name        string
		adds        []add
		wantScripts []string // what Probes sends, prelude and unset shown as PRELUDE and UNSET
		wantInline  []bool
	}{
		{"identical scripts sent once", []add{{plain, "", "a"}, {plain, "", "b"}, {plain, "", "a"}},
			[]string{"a", "b"}, []bool{false, false}},
		{"one path: no prelude", []add{{inl, "/x", "p1"}, {inl, "/x", "p2"}},
			[]string{"p1", "p2"}, []bool{true, true}},
		{"two paths: prelude and unset", []add{{inl, "/x", "p1"}, {plain, "", "c"}, {inl, "/y", "p2"}},
			[]string{"PRELUDE", "p1", "c", "p2", "UNSET"}, []bool{true, true, false, true, true}},
		{"a plain sender makes a shared script a subshell, and its path does not count",
			[]add{{inl, "/x", "p1"}, {plain, "", "p1"}, {inl, "/y", "p2"}},
			[]string{"p1", "p2"}, []bool{false, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b Batch
			for i, a := range tc.adds {
				if got := b.Add(a.p, &Request{Spec: a.path}, a.script); got != i {
					t.Fatalf("Add %d: got position %d; want %d", i, got, i)
				}
			}
			probes := b.Probes()
			var scripts []string
			var inline []bool
			for i, p := range probes {
				s := p.Script
				switch {
				case i == 0 && strings.Contains(s, "opsmop_pre"):
					s = "PRELUDE"
				case i == len(probes)-1 && s == ":" && len(p.Vars) > 0:
					s = "UNSET"
				}
				scripts = append(scripts, s)
				inline = append(inline, p.Inline)
			}
			if fmt.Sprint(scripts) != fmt.Sprint(tc.wantScripts) || fmt.Sprint(inline) != fmt.Sprint(tc.wantInline) {
				t.Errorf("Probes: got %v inline %v; want %v inline %v", scripts, inline, tc.wantScripts, tc.wantInline)
			}
			for _, p := range probes {
				if p.Inline && p.Script != ":" && !strings.Contains(p.Script, "opsmop_pre") && fmt.Sprint(p.Vars) != "[v1]" {
					t.Errorf("inline probe %q: got vars %v; want [v1]", p.Script, p.Vars)
				}
			}
			// Each Add gets the result of its own script.
			sent := make([]connection.Result, len(probes))
			for i, p := range probes {
				sent[i] = connection.Result{Stdout: []byte(p.Script)}
			}
			got, err := b.Results(sent)
			if err != nil {
				t.Fatal(err)
			}
			for i, a := range tc.adds {
				if string(got[i].Stdout) != a.script {
					t.Errorf("result %d: got %q; want the result of %q", i, got[i].Stdout, a.script)
				}
			}
			if _, err := b.Results(sent[1:]); err == nil {
				t.Errorf("Results with one result missing: got no error")
			}
		})
	}
}
