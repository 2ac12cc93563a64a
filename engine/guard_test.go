package engine_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/opsmop/opsmop/engine"
)

// TestGuard: in apply mode the guard is asked about every checked
// instance, by its ID, before anything is applied for it, with Touched
// set once something was applied on the host; its error fails that
// instance with nothing applied and stops the host; its note joins the
// event's message. Check never asks it. Events carry IDs and the probe
// fingerprints, equal for equal states; OnLocalRead sees the template.
func TestGuard(t *testing.T) {
	h := newHarness(t)
	tmpl := filepath.Join(h.pdir, "app.conf.tmpl")
	if err := os.WriteFile(tmpl, []byte("port = {{ .http_port }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []string
	var reads []string
	refuse := ""
	h.opts = func(o *engine.Options) {
		o.Guard = func(g engine.GuardCheck) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			asked = append(asked, fmt.Sprintf("%s %s touched=%v fp=%v", g.ID, g.Change.Action, g.Touched, g.Fingerprint != ""))
			if g.ID == refuse {
				return "", errors.New("refused by the guard")
			}
			return "guarded", nil
		}
		o.OnLocalRead = func(full string) {
			mu.Lock()
			reads = append(reads, full)
			mu.Unlock()
		}
	}

	// Check: no guard; IDs and fingerprints in the events.
	_, rec := h.run(sitePolicy, true, nil)
	_, rec2 := h.run(sitePolicy, true, nil)
	if len(asked) != 0 {
		t.Fatalf("check asked the guard: %q", asked)
	}
	var ids []string
	for i, e := range rec.resources("h1") {
		ids = append(ids, e.ID)
		if (e.Fingerprint == "") != e.Handler || e.Fingerprint != rec2.resources("h1")[i].Fingerprint {
			t.Errorf("%s: fingerprint %q, then %q; want the same for the same state, empty only for the handler (a shell has no probe)", e.ID, e.Fingerprint, rec2.resources("h1")[i].Fingerprint)
		}
	}
	if want := []string{"web/resources/0", "web/resources/1", "web/resources/2", "web/resources/3", "web/handler/restart app"}; !slices.Equal(ids, want) {
		t.Errorf("IDs: got %q; want %q", ids, want)
	}
	if !slices.Contains(reads, tmpl) {
		t.Errorf("OnLocalRead: got %q; want the template %s", reads, tmpl)
	}

	// Apply refused at the file: the directory is made, nothing after it.
	refuse = "web/resources/1"
	sum, rec := h.run(sitePolicy, false, nil)
	want := []string{
		"web/resources/0 create touched=false fp=true",
		"web/resources/1 create touched=true fp=true",
	}
	if !slices.Equal(asked, want) {
		t.Errorf("guard asked: got %q; want %q", asked, want)
	}
	if sum.Hosts["h1"].Failed != 1 || sum.Hosts["h1"].Changed != 1 {
		t.Errorf("recap: got %+v; want the directory changed and the file failed", sum.Hosts["h1"])
	}
	evs := rec.resources("h1")
	if len(evs) != 2 || evs[1].Error != "refused by the guard" || !strings.Contains(evs[0].Message, "guarded") {
		t.Errorf("events: got %+v; want the directory (note guarded), then the file failed with the guard's error", evs)
	}
	if _, err := os.Stat(filepath.Join(h.dir, "srv/app/motd")); err == nil {
		t.Errorf("the refused file was written")
	}

	// Without a refusal the rest applies; the unchanged directory is
	// asked about too.
	asked, refuse = nil, ""
	if sum, _ := h.run(sitePolicy, false, nil); sum.Failed() || sum.Total.Changed != 4 {
		t.Fatalf("apply: got %+v; want 4 changed (3 resources, the handler)", sum.Total)
	}
	if len(asked) != 5 || asked[0] != "web/resources/0 none touched=false fp=true" || asked[4] != "web/handler/restart app run touched=true fp=false" {
		t.Errorf("guard asked: got %q", asked)
	}
}

// TestKnownReuse: an apply that reuses what a check just read (a saved
// plan's verification) sends one probe batch less than a plain first
// apply and ends the same; a second probe of an instance (its re-check)
// always reads the host.
func TestKnownReuse(t *testing.T) {
	trips := func(reuse bool) (int, string) {
		h := newHarness(t)
		if err := os.WriteFile(filepath.Join(h.pdir, "app.conf.tmpl"), []byte("port = {{ .http_port }}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		known := engine.NewKnown()
		h.opts = func(o *engine.Options) { o.Record = known }
		h.run(sitePolicy, true, nil)
		host := h.conn.hosts["h1"]
		host.trips = 0
		h.opts = func(o *engine.Options) {
			if reuse {
				o.Reuse = known
			}
		}
		sum, rec := h.run(sitePolicy, false, nil)
		if sum.Failed() || sum.Total.Changed != 5 {
			t.Fatalf("apply (reuse %v): got %+v; want 5 changed; events %+v", reuse, sum.Total, rec.events)
		}
		n := host.trips
		h.opts = nil
		if sum, _ := h.run(sitePolicy, true, nil); sum.Total.Changed != 0 || sum.Failed() {
			t.Fatalf("check after apply (reuse %v): got %+v; want clean", reuse, sum.Total)
		}
		return n, listTree(t, filepath.Join(h.dir, "srv"))
	}
	plain, plainTree := trips(false)
	reused, reusedTree := trips(true)
	if reused != plain-1 {
		t.Errorf("round trips of the apply: got %d reusing, %d plain; want one less", reused, plain)
	}
	if reusedTree != plainTree {
		t.Errorf("the two applies left different trees:\n%s\n%s", reusedTree, plainTree)
	}
}

// phaseRecorder keeps the phases of a run.
type phaseRecorder struct {
	engine.NopHooks
	mu     sync.Mutex
	phases []engine.Phase
}

func (p *phaseRecorder) Phase(e engine.Phase) {
	p.mu.Lock()
	p.phases = append(p.phases, e)
	p.mu.Unlock()
}

// TestPhases: a run reports connecting, then its probe batches with the
// number of probes in each and whether it re-checks a change: a first
// apply of sitePolicy's 4 resources re-checks each change (not the
// handler, a command), a no-op check
// is one batch of all 4.
func TestPhases(t *testing.T) {
	h := newHarness(t)
	if err := os.WriteFile(filepath.Join(h.pdir, "app.conf.tmpl"), []byte("port = {{ .http_port }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(check bool) []string {
		pr := &phaseRecorder{}
		h.opts = func(o *engine.Options) { o.Hooks = pr }
		h.run(sitePolicy, check, nil)
		var got []string
		for _, p := range pr.phases {
			if p.Host != "h1" || p.Role != "web" || p.Duration < 0 {
				t.Errorf("phase %+v: want host h1, role web, a duration", p)
			}
			got = append(got, fmt.Sprintf("%s/%d/%v", p.Name, p.Count, p.Recheck))
		}
		return got
	}
	apply := run(false)
	if len(apply) < 2 || apply[0] != "connect/0/false" || apply[1] != "probe/4/false" {
		t.Fatalf("apply phases: got %q; want connect, then one batch of the 4 probes", apply)
	}
	rechecks := 0
	for _, p := range apply {
		if strings.HasSuffix(p, "/true") {
			rechecks++
		}
	}
	if rechecks != 4 {
		t.Errorf("apply phases: got %d re-check batches in %q; want 4 (each resource; the handler is a command, not re-checked)", rechecks, apply)
	}
	if got := run(true); !slices.Equal(got, []string{"connect/0/false", "probe/4/false"}) {
		t.Errorf("no-op check phases: got %q; want connect and one batch of 4", got)
	}
}
