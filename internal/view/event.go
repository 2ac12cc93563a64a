// Package view renders a run for people and programs: each view is an
// engine.Hooks chosen once per command (New), writing to one io.Writer
// and keeping the first write error (Err), so that a report with holes
// never passes for a complete one.
//
//   - Human: one line per resource as it happens, diffs, a live status
//     line on terminals, and a recap (check and apply);
//   - JSON: one JSON object per event and line (check --json, apply
//     --json; the format is documented in docs/cli.md);
//   - Adhoc: each host's command output with a host prefix, or one JSON
//     object per host, and a recap (opsmop run).
package view

import (
	"io"
	"time"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/providers"
)

// The event types of the JSON lines, in the order a run emits them.
const (
	evRunStart  = "run_start"
	evHostStart = "host_start"
	evResource  = "resource"
	evHandler   = "handler"
	evHostEnd   = "host_end"
	evSummary   = "summary"
	evNotice    = "notice"
	evPhase     = "phase"
)

// event is one JSON line of check/apply --json, and the record the human
// view renders from: the engine's typed hooks flattened.
type event struct {
	Type         string            `json:"type"`
	Time         time.Time         `json:"time"`
	Mode         string            `json:"mode,omitempty"`
	Host         string            `json:"host,omitempty"`
	Role         string            `json:"role,omitempty"`
	Resource     string            `json:"resource,omitempty"`
	ResourceType string            `json:"resource_type,omitempty"`
	Status       engine.Status     `json:"status,omitempty"`
	Change       *providers.Change `json:"change,omitempty"`
	Error        string            `json:"error,omitempty"`
	Message      string            `json:"message,omitempty"`
	Stdout       string            `json:"stdout,omitempty"`
	Stderr       string            `json:"stderr,omitempty"`
	RC           *int              `json:"rc,omitempty"`
	Duration     float64           `json:"duration_s,omitempty"`
	Hosts        int               `json:"hosts,omitempty"`
	Tasks        int               `json:"tasks,omitempty"`
	Stats        *engine.Stats     `json:"stats,omitempty"`
	Summary      *engine.Summary   `json:"summary,omitempty"`
	// phase only: which step, the probes in a batch, a re-check batch.
	Phase   string `json:"phase,omitempty"`
	Count   int    `json:"count,omitempty"`
	Recheck bool   `json:"recheck,omitempty"`
	// run_start only: the stream's format version and what ran.
	Version      int    `json:"version,omitempty"`
	Policy       string `json:"policy,omitempty"`
	PolicySHA256 string `json:"policy_sha256,omitempty"`
	Slice        string `json:"slice,omitempty"`
	PlanSHA256   string `json:"plan_sha256,omitempty"`
}

// StreamVersion is the version of the --json event stream (run_start's
// version): 1 added it, with policy, policy_sha256, slice and
// plan_sha256; 2 added phase events. Streams without it are version 0
// (the events of version 1 but phase).
const StreamVersion = 2

// flat turns the engine's typed hooks into events for a view's handle
// function, stamping each with the time it arrived and the run's mode.
type flat struct {
	mode   string
	handle func(event)
}

func (f *flat) emit(e event) {
	e.Time = time.Now()
	e.Mode = f.mode
	f.handle(e)
}

func (f *flat) RunStart(r engine.RunStart) {
	f.mode = r.Mode
	f.emit(event{Type: evRunStart, Hosts: r.Hosts, Tasks: r.Tasks, Version: StreamVersion,
		Policy: r.Policy, PolicySHA256: r.PolicySHA256, Slice: r.Slice, PlanSHA256: r.PlanSHA256})
}

func (f *flat) HostStart(h engine.HostStart) {
	f.emit(event{Type: evHostStart, Host: h.Host, Role: h.Role})
}

func (f *flat) Resource(r engine.ResourceResult) {
	typ := evResource
	if r.Handler {
		typ = evHandler
	}
	f.emit(event{Type: typ, Host: r.Host, Role: r.Role, Resource: r.Resource, ResourceType: r.ResourceType,
		Status: r.Status, Change: r.Change, Error: r.Error, Message: r.Message,
		Stdout: r.Stdout, Stderr: r.Stderr, RC: r.RC, Duration: r.Duration})
}

func (f *flat) HostEnd(h engine.HostEnd) {
	st := h.Stats
	f.emit(event{Type: evHostEnd, Host: h.Host, Role: h.Role, Stats: &st, Duration: h.Duration})
}

func (f *flat) Phase(p engine.Phase) {
	f.emit(event{Type: evPhase, Host: p.Host, Role: p.Role, Phase: p.Name, Duration: p.Duration, Count: p.Count, Recheck: p.Recheck})
}

func (f *flat) Notice(n engine.Notice) {
	f.emit(event{Type: evNotice, Role: n.Role, Message: n.Message})
}

func (f *flat) Summary(s *engine.Summary) {
	f.emit(event{Type: evSummary, Summary: s, Duration: s.Duration})
}

// View is what a command reports a run through: the engine's hooks, and
// the first error writing the report.
type View interface {
	engine.Hooks
	// Err returns the first write error: the report is incomplete, and
	// the command must not report success.
	Err() error
}

// Kind names a view.
type Kind int

// The views.
const (
	KindHuman     Kind = iota // check/apply for people
	KindJSON                  // check/apply --json
	KindAdhoc                 // run for people
	KindAdhocJSON             // run --json
)

// Options configure the human view.
type Options struct {
	// Color paints statuses with ANSI colors.
	Color bool
	// Verbose also shows unchanged and skipped resources.
	Verbose bool
	// Status keeps a live status line (terminals only).
	Status bool
	// Width gives the terminal's width in columns (see Human.Width).
	Width func() int
}

// New returns the view of kind writing to w; the one place a command
// chooses how its run is shown.
func New(kind Kind, w io.Writer, o Options) View {
	switch kind {
	case KindJSON:
		return NewJSON(w)
	case KindAdhoc:
		return NewAdhoc(w, false)
	case KindAdhocJSON:
		return NewAdhoc(w, true)
	}
	return &Human{W: w, Color: o.Color, Verbose: o.Verbose, Status: o.Status, Width: o.Width}
}
