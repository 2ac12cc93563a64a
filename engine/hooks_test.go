package engine_test

import (
	"sync"

	"github.com/opsmop/opsmop/engine"
)

// event is one hook call as the tests see it: its kind ("run_start",
// "host_start", "resource", "handler", "host_end", "notice", "summary")
// and, for resources, the result (host and role for every kind, the
// message for notices).
type event struct {
	Type string
	engine.ResourceResult
}

// recorder keeps every hook call (upload progress aside).
type recorder struct {
	engine.NopHooks
	mu     sync.Mutex
	events []event
}

func (r *recorder) add(e event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) RunStart(engine.RunStart) { r.add(event{Type: "run_start"}) }
func (r *recorder) HostStart(h engine.HostStart) {
	r.add(event{Type: "host_start", ResourceResult: engine.ResourceResult{Host: h.Host, Role: h.Role}})
}
func (r *recorder) Resource(res engine.ResourceResult) {
	typ := "resource"
	if res.Handler {
		typ = "handler"
	}
	r.add(event{Type: typ, ResourceResult: res})
}
func (r *recorder) HostEnd(h engine.HostEnd) {
	r.add(event{Type: "host_end", ResourceResult: engine.ResourceResult{Host: h.Host, Role: h.Role}})
}
func (r *recorder) Notice(n engine.Notice) {
	r.add(event{Type: "notice", ResourceResult: engine.ResourceResult{Role: n.Role, Message: n.Message}})
}
func (r *recorder) Summary(*engine.Summary) { r.add(event{Type: "summary"}) }

// resources returns the resource and handler events of host.
func (r *recorder) resources(host string) []event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []event
	for _, e := range r.events {
		if (e.Type == "resource" || e.Type == "handler") && e.Host == host {
			out = append(out, e)
		}
	}
	return out
}
