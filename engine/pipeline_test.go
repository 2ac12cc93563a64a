package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// stepHost is a countingHost that also runs a pipelined apply's batches,
// each counted as one round trip.
type stepHost struct {
	*countingHost
	batches int
}

func (s *stepHost) RunSteps(ctx context.Context, steps []connection.Step) ([]connection.Result, error) {
	s.mu.Lock()
	s.trips++
	s.batches++
	s.scripts += len(steps)
	s.mu.Unlock()
	return s.h.RunSteps(ctx, steps)
}

// stepConnector hands every host its own stepHost.
type stepConnector struct {
	fakeConnector
	steps map[string]*stepHost
}

func (f *stepConnector) Connect(ctx context.Context, r *policy.Role, h *engine.HostInfo) (providers.Host, error) {
	c, err := f.fakeConnector.Connect(ctx, r, h)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.steps == nil {
		f.steps = map[string]*stepHost{}
	}
	s, ok := f.steps[h.Name]
	if !ok {
		s = &stepHost{countingHost: c.(*countingHost)}
		f.steps[h.Name] = s
	}
	return s, nil
}

// kvSpec is a file holding exactly content. also is sh code its apply
// runs after writing (a side effect on another resource's state); got,
// when set, is what the apply writes instead of content (a resource that
// does not converge).
type kvSpec struct {
	ID      string `opsmop:"id" required:"true"`
	Path    string `opsmop:"path" required:"true"`
	Content string `opsmop:"content"`
	Also    string `opsmop:"also"`
	Got     string `opsmop:"got"`
	// Lie makes PredictProbe predict the wrong contents.
	Lie bool `opsmop:"lie"`
}

// kvProvider implements kv with a step form; every apply appends the
// resource's id to log, so tests see what ran in which order.
type kvProvider struct{ log string }

func (kvProvider) Probe(req *providers.Request) (string, error) {
	q := shell.Quote(req.Spec.(*kvSpec).Path)
	return "if [ -e " + q + " ]; then printf y; cat -- " + q + "; fi", nil
}

func (kvProvider) Check(req *providers.Request, probe connection.Result) (*providers.Change, error) {
	s := req.Spec.(*kvSpec)
	if string(probe.Stdout) == "y"+s.Content {
		return &providers.Change{Action: providers.None}, nil
	}
	before := strings.TrimPrefix(string(probe.Stdout), "y")
	return &providers.Change{Action: providers.Update, Fields: []providers.Field{{Name: "content", Before: before, After: s.Content}}}, nil
}

func (p kvProvider) script(s *kvSpec) string {
	c := s.Content
	if s.Got != "" {
		c = s.Got
	}
	return "printf '%s\\n' " + shell.Quote(s.ID) + " >>" + shell.Quote(p.log) + "\nprintf %s " + shell.Quote(c) + " >" + shell.Quote(s.Path) + "\n" + s.Also
}

func (p kvProvider) Apply(ctx context.Context, h providers.Host, req *providers.Request, _ *providers.Change) (*providers.Outcome, error) {
	res, err := h.Run(ctx, p.script(req.Spec.(*kvSpec)), nil)
	if err == nil && res.ExitCode != 0 {
		err = errors.New("kv[failed]: " + strings.TrimSpace(string(res.Stderr)))
	}
	return &providers.Outcome{}, err
}

func (p kvProvider) ApplyStep(req *providers.Request, _ *providers.Change) (providers.Step, bool, error) {
	return providers.Step{Script: p.script(req.Spec.(*kvSpec)), What: "kv"}, true, nil
}

// PredictProbe: once written, the file holds the content.
func (kvProvider) PredictProbe(req *providers.Request, _ connection.Result, _ *providers.Change) (connection.Result, bool) {
	s := req.Spec.(*kvSpec)
	if s.Got != "" || s.Also != "" {
		return connection.Result{}, false
	}
	if s.Lie {
		return connection.Result{Stdout: []byte("ylie")}, true
	}
	return connection.Result{Stdout: []byte("y" + s.Content)}, true
}

func (kvProvider) StepDone(_ *providers.Request, _ providers.Step, res connection.Result) (*providers.Outcome, error) {
	if res.ExitCode != 0 {
		return nil, errors.New("kv[failed]: " + strings.TrimSpace(string(res.Stderr)))
	}
	return &providers.Outcome{}, nil
}

// newStepHarness is a harness whose hosts run batches and whose registry
// has kv, logging its applies to the returned file.
func newStepHarness(t *testing.T) (*harness, *stepConnector, string) {
	h := newHarness(t)
	sc := &stepConnector{}
	h.conn = &sc.fakeConnector
	log := filepath.Join(h.dir, "log")
	kv := kvProvider{log: log}
	h.reg["kv"] = policy.ResourceType{Name: "kv", New: func() any { return &kvSpec{} }, Identity: "id", Handler: true}
	h.lookupHook = func(name string) (providers.Provider, bool) {
		if name == "kv" {
			return kv, true
		}
		return nil, false
	}
	h.connector = sc
	return h, sc, log
}

func readOr(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return "<none>"
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// statuses is "id:status" of host h1's events, in order.
func statuses(rec *recorder) string {
	var out []string
	for _, e := range rec.resources("h1") {
		out = append(out, e.Resource+":"+string(e.Status))
	}
	return strings.Join(out, " ")
}

func TestPipelinedApply(t *testing.T) {
	kv := func(id, extra string) string {
		return "\n  [[roles.resources]]\n  type = \"kv\"\n  id = \"" + id + "\"\n  path = \"{{ .root }}/" + id + "\"\n  content = \"" + strings.ToUpper(id) + "\"\n" + extra
	}
	kvAt := func(id, path string) string {
		return "\n  [[roles.resources]]\n  type = \"kv\"\n  id = \"" + id + "\"\n  path = \"{{ .root }}/" + path + "\"\n  content = \"" + strings.ToUpper(id) + "\"\n"
	}
	handler := func(name, id, extra string) string {
		return "\n  [[roles.handlers]]\n  name = \"" + name + "\"\n  type = \"kv\"\n  id = \"" + id + "\"\n  path = \"{{ .root }}/" + id + "\"\n  content = \"" + strings.ToUpper(id) + "\"\n  " + extra + "\n"
	}
	role := "[[roles]]\nname = \"r\"\n"
	tests := []struct {
		name string
		src  string
		// hand, when set, runs on the host once the first probe batch is
		// back: a change made by hand between probe and apply.
		hand string
		// pre runs on the host before the run.
		pre      string
		want     map[string]string // file -> contents after the run
		log      string            // the applies, in order
		statuses string
		failed   bool
		batches  int
		notice   string
		// fights: resources on one file undo each other; a check after
		// the apply is not clean.
		fights bool
	}{
		{name: "all changes in one batch", src: role + kv("a", "") + kv("b", "") + kv("c", ""),
			want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a b c", statuses: "kv[a]:changed kv[b]:changed kv[c]:changed", batches: 1},
		{name: "an earlier change of the batch touches a later resource's state", src: role + kv("a", "  also = \"printf x >{{ .root }}/b\"\n") + kv("b", "") + kv("c", ""),
			want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a b c", statuses: "kv[a]:changed kv[b]:changed kv[c]:changed", batches: 2},
		{name: "an earlier change makes a later resource right", src: role + kv("a", "  also = \"printf B >{{ .root }}/b\"\n") + kv("b", "") + kv("c", ""),
			want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a c", statuses: "kv[a]:changed kv[b]:ok kv[c]:changed", batches: 2},
		{name: "an unchanged resource after a change is guarded too", src: role + kv("a", "  also = \"rm {{ .root }}/b\"\n") + kv("b", "") + kv("c", ""),
			pre: "printf B >b", want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a b c", statuses: "kv[a]:changed kv[b]:changed kv[c]:changed", batches: 2},
		{name: "changed by hand between probe and apply", src: role + kv("a", "") + kv("b", "") + kv("c", ""),
			hand: "printf B >b", want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a c", statuses: "kv[a]:changed kv[b]:ok kv[c]:changed", batches: 2},
		{name: "a failed change stops the batch", src: role + kv("a", "") + kvAt("x", "missing/x") + kv("c", ""),
			want: map[string]string{"a": "A", "c": "<none>"}, log: "a x", statuses: "kv[a]:changed kv[x]:failed", failed: true, batches: 1, notice: "not run, kv[x] having failed first: kv[c]"},
		{name: "a change that does not converge", src: role + kv("a", "  got = \"other\"\n") + kv("c", ""),
			want: map[string]string{"a": "other", "c": "C"}, log: "a c", statuses: "kv[a]:changed kv[a]:failed kv[c]:changed", failed: true, batches: 1},
		{name: "retries make a barrier", src: role + kv("a", "") + kv("b", "  retries = 1\n") + kv("c", ""),
			want: map[string]string{"a": "A", "b": "B", "c": "C"}, log: "a b c", statuses: "kv[a]:changed kv[b]:changed kv[c]:changed", batches: 2},
		{name: "handlers after a batch", src: role + kv("a", "  notify = [\"h\"]\n") + kv("c", "") + "\n  [[roles.handlers]]\n  name = \"h\"\n  type = \"kv\"\n  id = \"hh\"\n  path = \"{{ .root }}/hh\"\n  content = \"H\"\n",
			want: map[string]string{"a": "A", "c": "C", "hh": "H"}, log: "a c hh", statuses: "kv[a]:changed kv[c]:changed kv[hh]:changed", batches: 2},
		{name: "a change predicted for the next resource with the same probe", src: role + kvAt("x1", "x") + kvAt("x2", "x") + kvAt("x3", "x") + kv("c", ""),
			want: map[string]string{"x": "X3", "c": "C"}, log: "x1 x2 x3 c", statuses: "kv[x1]:changed kv[x2]:changed kv[x3]:changed kv[c]:changed", batches: 1, fights: true},
		{name: "a wrong prediction is caught by the guard", src: role + kvAt("x1", "x") + "  lie = true\n" + kvAt("x2", "x") + kv("c", ""),
			want: map[string]string{"x": "X2", "c": "C"}, log: "x1 x2 c", statuses: "kv[x1]:changed kv[x2]:changed kv[c]:changed", batches: 2, fights: true},
		{name: "notified handlers in one batch, one notifying a later one", src: role + kv("a", "  notify = [\"h1\", \"h3\"]\n") + kv("c", "") +
			handler("h1", "h1b", "") + handler("h2", "h2b", "notify = [\"h4\"]") + handler("h3", "h3b", "notify = [\"h4\"]") + handler("h4", "h4b", ""),
			want: map[string]string{"a": "A", "c": "C", "h1b": "H1B", "h3b": "H3B", "h4b": "H4B", "h2b": "<none>"}, log: "a c h1b h3b h4b", statuses: "kv[a]:changed kv[c]:changed kv[h1b]:changed kv[h3b]:changed kv[h4b]:changed", batches: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, sc, log := newStepHarness(t)
			if tc.pre != "" {
				if _, err := (&connection.Local{}).Run(context.Background(), "cd "+shell.Quote(h.dir)+" && "+tc.pre, nil); err != nil {
					t.Fatal(err)
				}
			}
			if tc.hand != "" {
				done := false
				h.opts = func(o *engine.Options) {
					o.Hooks = engine.Tee{o.Hooks, phaseHook{f: func(p engine.Phase) {
						if p.Name == "probe" && !done {
							done = true
							if _, err := (&connection.Local{}).Run(context.Background(), "cd "+shell.Quote(h.dir)+" && "+tc.hand, nil); err != nil {
								t.Errorf("by hand: %v", err)
							}
						}
					}}}
				}
			}
			sum, rec := h.run(tc.src, false, nil)
			if sum.Failed() != tc.failed {
				t.Errorf("failed: got %v; want %v; events %+v", sum.Failed(), tc.failed, rec.events)
			}
			if got := statuses(rec); got != tc.statuses {
				t.Errorf("events: got %s; want %s", got, tc.statuses)
			}
			if got := strings.Join(strings.Fields(readOr(t, log)), " "); got != tc.log {
				t.Errorf("applies: got %q; want %q", got, tc.log)
			}
			for f, want := range tc.want {
				if got := readOr(t, filepath.Join(h.dir, f)); got != want {
					t.Errorf("%s: got %q; want %q", f, got, want)
				}
			}
			if got := sc.batches(); got != tc.batches {
				t.Errorf("batches: got %d; want %d", got, tc.batches)
			}
			var notices []string
			for _, e := range rec.events {
				if e.Type == "notice" {
					notices = append(notices, e.Message)
				}
			}
			if tc.notice != "" && (len(notices) != 1 || !strings.Contains(notices[0], tc.notice)) {
				t.Errorf("notices: got %q; want one with %q", notices, tc.notice)
			}
			if tc.failed || tc.fights {
				return
			}
			// After apply, everything checks clean.
			h.opts = nil
			if sum, rec := h.run(tc.src, true, nil); sum.Total.Changed != 0 || sum.Failed() {
				t.Errorf("check after apply: got %+v; want nothing pending; events %+v", sum.Total, rec.events)
			}
		})
	}
}

// TestPipelineRoundTrips: a first apply of 10 changes costs one probe
// batch and one batch of guarded changes with their re-checks; without
// the pipeline each change costs a round trip of its own and one to
// re-check it.
func TestPipelineRoundTrips(t *testing.T) {
	var src strings.Builder
	src.WriteString("[[roles]]\nname = \"r\"\n")
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"} {
		src.WriteString("\n  [[roles.resources]]\n  type = \"kv\"\n  id = \"" + id + "\"\n  path = \"{{ .root }}/" + id + "\"\n  content = \"" + id + "\"\n")
	}
	for _, seq := range []bool{false, true} {
		h, sc, _ := newStepHarness(t)
		h.opts = func(o *engine.Options) { o.Sequential = seq }
		sum, rec := h.run(src.String(), false, nil)
		if sum.Failed() || sum.Total.Changed != 10 {
			t.Fatalf("sequential %v: got %+v; want 10 changed; events %+v", seq, sum.Total, rec.events)
		}
		want := 2
		if seq {
			want = 21 // probe, then apply + re-check with the next probe per change
		}
		if got := sc.trips(); got != want {
			t.Errorf("sequential %v: got %d round trips; want %d", seq, got, want)
		}
	}
}

// phaseHook is a Hooks that calls f for every phase.
type phaseHook struct {
	engine.NopHooks
	f func(engine.Phase)
}

func (h phaseHook) Phase(p engine.Phase) { h.f(p) }

func (s *stepConnector) host() *stepHost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.steps["h1"]
}

func (s *stepConnector) batches() int {
	if h := s.host(); h != nil {
		return h.batches
	}
	return 0
}

func (s *stepConnector) trips() int {
	if h := s.host(); h != nil {
		return h.trips
	}
	return 0
}
