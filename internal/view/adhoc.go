package view

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/opsmop/opsmop/engine"
)

// Adhoc renders `opsmop run`: each host's output lines with a "HOST | "
// prefix (or, with JSON, one object per host), then a recap.
type Adhoc struct {
	engine.NopHooks
	mu   sync.Mutex
	w    io.Writer
	json bool
	err  error // the first write error
}

// NewAdhoc returns the ad-hoc view writing to w, as JSON lines if asJSON.
func NewAdhoc(w io.Writer, asJSON bool) *Adhoc { return &Adhoc{w: w, json: asJSON} }

// Err returns the first write error: the output is incomplete.
func (a *Adhoc) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// write writes s, keeping the first error; a.mu is held.
func (a *Adhoc) write(s string) {
	if _, err := io.WriteString(a.w, s); err != nil && a.err == nil {
		a.err = fmt.Errorf("write output: %w", err)
	}
}

// adhocEvent is the JSON object printed per host with --json.
type adhocEvent struct {
	Host   string `json:"host"`
	Status string `json:"status"`
	RC     *int   `json:"rc,omitempty"`
	Stdout string `json:"stdout"`
	Stderr string `json:"stderr"`
	Error  string `json:"error,omitempty"`
}

// Resource implements engine.Hooks: one host's command result.
func (a *Adhoc) Resource(e engine.ResourceResult) {
	if e.Handler {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.json {
		b, _ := json.Marshal(adhocEvent{Host: e.Host, Status: string(e.Status), RC: e.RC, Stdout: e.Stdout, Stderr: e.Stderr, Error: e.Error})
		a.write(string(b) + "\n")
		return
	}
	var b strings.Builder
	prefix := func(stream, text string) {
		for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			fmt.Fprintf(&b, "%s%s | %s\n", e.Host, stream, line)
		}
	}
	if e.Stdout != "" {
		prefix("", e.Stdout)
	}
	if e.Stderr != "" {
		prefix(" (stderr)", e.Stderr)
	}
	switch {
	case e.Status == engine.StatusUnreachable:
		fmt.Fprintf(&b, "%s | UNREACHABLE: %s\n", e.Host, e.Error)
	case e.Status == engine.StatusFailed && e.RC != nil:
		fmt.Fprintf(&b, "%s | FAILED: rc=%d\n", e.Host, *e.RC)
	case e.Status == engine.StatusFailed:
		fmt.Fprintf(&b, "%s | FAILED: %s\n", e.Host, e.Error)
	case e.Stdout == "" && e.Stderr == "" && e.RC != nil:
		// A host that succeeded silently still gets its line: no line
		// would look like a host that was never run.
		fmt.Fprintf(&b, "%s | OK: rc=%d, no output\n", e.Host, *e.RC)
	}
	a.write(b.String())
}

// Summary implements engine.Hooks: the count of hosts that succeeded,
// failed and could not be reached (nothing with JSON).
func (a *Adhoc) Summary(s *engine.Summary) {
	if a.json {
		return
	}
	ok, failed, unreachable := 0, 0, 0
	for _, st := range s.Hosts {
		switch {
		case st.Unreachable > 0:
			unreachable++
		case st.Failed > 0:
			failed++
		default:
			ok++
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.write(fmt.Sprintf("\nRECAP run in %.2fs: hosts=%d ok=%d failed=%d unreachable=%d\n", s.Duration, len(s.Hosts), ok, failed, unreachable))
}
