// Package report turns the --json event streams of check and apply (one
// run, or the slices of one run) into one self-contained HTML page: the
// recap table, failures first, a timeline per host, and every change
// with its diff, identical changes across hosts collapsed into one entry.
//
// Everything read from a stream is untrusted text: the page is rendered
// with html/template, whose contextual escaping keeps host names, paths,
// diffs and messages as text in every context (element, attribute, URL,
// script), and carries no script but its own fixed filter code.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/providers"
)

// KnownVersion is the newest stream version this package reads fully:
// 0 (no version field), 1 (run_start's version, policy, policy_sha256,
// slice, plan_sha256) and 2 (phase events for the timeline). A stream of
// a later version is read too: its unknown fields and event types are
// ignored and counted in the report's notes.
const KnownVersion = 2

// maxEventLine bounds one event's line (a diff of a large file).
const maxEventLine = 64 << 20

// Field, Change, Stats and Summary are the engine's own types, which
// the stream's events serialise.
type (
	Field   = providers.Field
	Change  = providers.Change
	Stats   = engine.Stats
	Summary = engine.Summary
)

// Event is one line of a stream: the union of every event type's fields
// (docs/cli.md, "JSON events").
type Event struct {
	Type         string    `json:"type"`
	Time         time.Time `json:"time"`
	Mode         string    `json:"mode"`
	Host         string    `json:"host"`
	Role         string    `json:"role"`
	Resource     string    `json:"resource"`
	ResourceType string    `json:"resource_type"`
	Status       string    `json:"status"`
	Change       *Change   `json:"change"`
	Error        string    `json:"error"`
	Message      string    `json:"message"`
	Stdout       string    `json:"stdout"`
	Stderr       string    `json:"stderr"`
	RC           *int      `json:"rc"`
	Duration     float64   `json:"duration_s"`
	Hosts        int       `json:"hosts"`
	Tasks        int       `json:"tasks"`
	Stats        *Stats    `json:"stats"`
	Summary      *Summary  `json:"summary"`
	// run_start (version 1 on).
	Version      int    `json:"version"`
	Policy       string `json:"policy"`
	PolicySHA256 string `json:"policy_sha256"`
	Slice        string `json:"slice"`
	PlanSHA256   string `json:"plan_sha256"`
	// phase (version 2 on): connect, facts or probe.
	Phase   string `json:"phase"`
	Count   int    `json:"count"`
	Recheck bool   `json:"recheck"`
}

// Start is when the event's work began: its time less its duration.
func (e *Event) Start() time.Time {
	return e.Time.Add(-time.Duration(e.Duration * float64(time.Second)))
}

// Stream is one read --json stream.
type Stream struct {
	// File names the stream in messages.
	File string
	// Start is the run_start event, Summary the summary event's body.
	Start   Event
	Summary *Summary
	// Events are all events between run_start and summary, in order.
	Events []Event
	// SliceK and SliceN are run_start's slice K/N (0 without --slice).
	SliceK, SliceN int
	// End is the summary event's time.
	End time.Time
}

// ReadFile reads the stream in file (ReadStream).
func ReadFile(file string) (*Stream, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read stream: %w", err)
	}
	defer f.Close()
	return ReadStream(file, f)
}

// ReadStream reads a check or apply --json stream from r, named file in
// errors. Its rules are recap's: run_start first and once, every line a
// JSON event, summary last; a cut stream is refused with the file and
// line. Unlike recap it reads streams of every version, 0 included.
func ReadStream(file string, r io.Reader) (*Stream, error) {
	st := &Stream{File: file}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	n := 0
	last := ""
	for sc.Scan() {
		n++
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Type == "" {
			return nil, fmt.Errorf("%s:%d: not an opsmop --json event (the stream is cut or not one): %.60q", file, n, sc.Text())
		}
		switch {
		case n == 1 && ev.Type != "run_start":
			return nil, fmt.Errorf("%s:1: the stream starts with a %s event, not run_start: not the --json output of check or apply (or its start is cut)", file, ev.Type)
		case n == 1:
			st.Start = ev
		case ev.Type == "run_start":
			return nil, fmt.Errorf("%s:%d: a second run_start: two runs in one file; give each run's stream as its own file", file, n)
		case st.Summary != nil:
			return nil, fmt.Errorf("%s:%d: an event after the summary", file, n)
		case ev.Type == "summary":
			if ev.Summary == nil {
				return nil, fmt.Errorf("%s:%d: a summary event without its summary", file, n)
			}
			st.Summary = ev.Summary
			st.End = ev.Time
		default:
			st.Events = append(st.Events, ev)
		}
		last = ev.Type
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s:%d: %w", file, n+1, err)
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%s: empty: not the --json output of check or apply", file)
	case st.Summary == nil:
		return nil, fmt.Errorf("%s:%d: truncated: the stream ends with a %s event, not the summary (the run did not finish, or the file was cut); run it again", file, n, last)
	}
	if s := st.Start.Slice; s != "" {
		k, nn, err := parseSlice(s)
		if err != nil {
			return nil, fmt.Errorf("%s:1: run_start: %w", file, err)
		}
		st.SliceK, st.SliceN = k, nn
	}
	return st, nil
}

// parseSlice parses "K/N", 1 <= K <= N.
func parseSlice(s string) (k, n int, err error) {
	ks, ns, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || k < 1 || n < 1 || k > n {
		return 0, 0, fmt.Errorf("slice %q is not K/N with 1 <= K <= N", s)
	}
	return k, n, nil
}
