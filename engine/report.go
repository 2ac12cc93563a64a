package engine

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// JSONReporter writes every event as one JSON object per line and nothing
// else.
type JSONReporter struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSONReporter returns a reporter writing JSON lines to w.
func NewJSONReporter(w io.Writer) *JSONReporter { return &JSONReporter{enc: json.NewEncoder(w)} }

// Event implements Reporter.
func (j *JSONReporter) Event(e Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

// HumanReporter renders events for people: one line per resource as it
// happens (unchanged ones only when Verbose), diffs for changes in both
// check and apply, failures with the command's rc and stderr, and a recap.
type HumanReporter struct {
	W       io.Writer
	Color   bool
	Verbose bool
	// Status keeps a live progress line at the bottom of a terminal
	// (hosts done/total, changed, failed, unreachable, elapsed time, the
	// upload in progress), redrawn in place while results scroll above
	// it. Only for terminals: callers leave it off for pipes and --json.
	Status bool

	mu       sync.Mutex
	prog     progress
	stopTick chan struct{}
}

// progress is what the status line shows.
type progress struct {
	started                                   time.Time
	total, done, changed, failed, unreachable int
	upload                                    string
	shown                                     bool
}

const (
	cReset  = "\x1b[0m"
	cRed    = "\x1b[31m"
	cGreen  = "\x1b[32m"
	cYellow = "\x1b[33m"
	cCyan   = "\x1b[36m"
	cDim    = "\x1b[2m"
)

func (h *HumanReporter) paint(c, s string) string {
	if !h.Color {
		return s
	}
	return c + s + cReset
}

// Event implements Reporter.
func (h *HumanReporter) Event(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	if h.Status {
		h.track(e)
		if e.Type == EventRunStart {
			h.startTicker()
		}
	}
	switch e.Type {
	case EventRunStart:
		verb := "apply"
		if e.Mode == "check" {
			verb = "check (nothing will be changed)"
		}
		fmt.Fprintf(&b, "%s: %d host(s)\n", verb, e.Hosts)
	case EventNotice:
		fmt.Fprintf(&b, "%s\n", h.paint(cCyan, e.Message))
	case EventResource, EventHandler:
		h.resource(&b, e)
	case EventSummary:
		h.recap(&b, e.Summary)
	}
	h.write(b.String(), e.Type != EventSummary)
	if e.Type == EventSummary {
		h.stopTicker()
	}
}

// write prints out, keeping the status line below it when enabled.
func (h *HumanReporter) write(out string, redraw bool) {
	if !h.Status {
		_, _ = io.WriteString(h.W, out)
		return
	}
	var b strings.Builder
	if h.prog.shown {
		b.WriteString("\r\x1b[K")
		h.prog.shown = false
	}
	b.WriteString(out)
	if redraw {
		b.WriteString(h.statusLine())
		h.prog.shown = true
	}
	_, _ = io.WriteString(h.W, b.String())
}

func (h *HumanReporter) statusLine() string {
	p := h.prog
	line := fmt.Sprintf("[%d/%d done] changed %d  failed %d  unreachable %d  %.1fs", p.done, p.total, p.changed, p.failed, p.unreachable, time.Since(p.started).Seconds())
	if p.upload != "" {
		line += "  " + p.upload
	}
	return h.paint(cDim, line)
}

func (h *HumanReporter) track(e Event) {
	switch e.Type {
	case EventRunStart:
		h.prog = progress{started: e.Time, total: e.Tasks}
		if h.prog.total == 0 {
			h.prog.total = e.Hosts
		}
	case EventHostEnd:
		h.prog.done++
	case EventResource, EventHandler:
		switch e.Status {
		case StatusChanged:
			h.prog.changed++
		case StatusFailed:
			h.prog.failed++
		case StatusUnreachable:
			h.prog.unreachable++
		}
	}
}

// Upload shows a file upload's progress on the status line.
func (h *HumanReporter) Upload(host, path string, written, total int64) {
	if !h.Status {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if written >= total {
		h.prog.upload = ""
	} else {
		h.prog.upload = fmt.Sprintf("%s: uploading %s %d%% of %s", host, path, written*100/max(total, 1), humanBytes(total))
	}
	h.write("", true)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func (h *HumanReporter) startTicker() {
	if h.stopTick != nil {
		return
	}
	stop := make(chan struct{})
	h.stopTick = stop
	go func() {
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.mu.Lock()
				if h.prog.shown {
					h.write("", true)
				}
				h.mu.Unlock()
			}
		}
	}()
}

func (h *HumanReporter) stopTicker() {
	if h.stopTick != nil {
		close(h.stopTick)
		h.stopTick = nil
	}
}

func (h *HumanReporter) resource(b *strings.Builder, e Event) {
	what := e.Resource
	if e.Type == EventHandler {
		what = "handler " + what
	}
	prefix := e.Host + ": " + what
	switch e.Status {
	case StatusOK:
		if e.Message != "" && e.ResourceType == "echo" {
			fmt.Fprintf(b, "%s: %s\n", prefix, e.Message)
			return
		}
		if h.Verbose {
			fmt.Fprintf(b, "%s: %s\n", prefix, h.paint(cGreen, "ok"))
		}
	case StatusSkipped:
		if h.Verbose {
			fmt.Fprintf(b, "%s: %s\n", prefix, h.paint(cCyan, "skipped ("+e.Message+")"))
		}
	case StatusChanged:
		action := "changed"
		if e.Change != nil {
			action = string(e.Change.Action)
		}
		if e.Mode == "check" {
			action = "would " + action
		}
		fmt.Fprintf(b, "%s: %s\n", prefix, h.paint(cYellow, action))
		if e.Change != nil {
			h.change(b, e)
		}
	case StatusFailed, StatusIgnored:
		word := "FAILED:"
		if e.Status == StatusIgnored {
			word = "FAILED (ignored):"
		}
		fmt.Fprintf(b, "%s: %s %s\n", prefix, h.paint(cRed, word), indentRest(e.Error))
		if e.RC != nil {
			fmt.Fprintf(b, "    rc: %d\n", *e.RC)
		}
		if s := strings.TrimRight(e.Stderr, "\n"); s != "" {
			fmt.Fprintf(b, "    stderr: %s\n", indentRest(s))
		}
	case StatusUnreachable:
		fmt.Fprintf(b, "%s: %s %s\n", e.Host, h.paint(cRed, "UNREACHABLE:"), e.Error)
	}
}

func indentRest(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

func (h *HumanReporter) change(b *strings.Builder, e Event) {
	c := e.Change
	for _, f := range c.Fields {
		fmt.Fprintf(b, "    %s: %s -> %s\n", f.Name, show(f.Before), show(f.After))
	}
	if c.Sensitive {
		if c.Action != "run" {
			fmt.Fprintf(b, "    (content is sensitive: not shown)\n")
		}
		return
	}
	if c.Diff != "" {
		for _, line := range strings.Split(strings.TrimRight(c.Diff, "\n"), "\n") {
			col := ""
			switch {
			case strings.HasPrefix(line, "+++"), strings.HasPrefix(line, "---"):
				col = cDim
			case strings.HasPrefix(line, "+"):
				col = cGreen
			case strings.HasPrefix(line, "-"):
				col = cRed
			case strings.HasPrefix(line, "@@"):
				col = cCyan
			}
			if col != "" {
				line = h.paint(col, line)
			}
			fmt.Fprintf(b, "    %s\n", line)
		}
	}
	if h.Verbose && e.Stdout != "" {
		fmt.Fprintf(b, "    stdout: %s\n", indentRest(strings.TrimRight(e.Stdout, "\n")))
	}
}

func show(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (h *HumanReporter) recap(b *strings.Builder, s *Summary) {
	if s == nil {
		return
	}
	title := "RECAP"
	if s.Interrupted {
		title += " (interrupted)"
	}
	fmt.Fprintf(b, "\n%s %s in %.2fs\n", title, s.Mode, s.Duration)
	names := append([]string(nil), s.Order...)
	if len(names) == 0 {
		for n := range s.Hosts {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	width := 5
	for _, n := range names {
		if len(n) > width {
			width = len(n)
		}
	}
	changedWord := "changed"
	if s.Mode == "check" {
		changedWord = "pending"
	}
	for _, n := range names {
		st := s.Hosts[n]
		line := fmt.Sprintf("%-*s  ok=%d %s=%d failed=%d skipped=%d unreachable=%d", width, n, st.OK, changedWord, st.Changed, st.Failed, st.Skipped, st.Unreachable)
		if st.Ignored > 0 {
			line += fmt.Sprintf(" ignored=%d", st.Ignored)
		}
		switch {
		case st.Failed > 0 || st.Unreachable > 0:
			line = h.paint(cRed, line)
		case st.Changed > 0:
			line = h.paint(cYellow, line)
		default:
			line = h.paint(cGreen, line)
		}
		fmt.Fprintf(b, "%s\n", line)
	}
	for _, n := range s.Notes {
		fmt.Fprintf(b, "%s\n", h.paint(cRed, "note: "+n))
	}
	t := s.Total
	ignored := ""
	if t.Ignored > 0 {
		ignored = fmt.Sprintf(" ignored=%d", t.Ignored)
	}
	fmt.Fprintf(b, "%-*s  hosts=%d ok=%d %s=%d failed=%d skipped=%d unreachable=%d%s\n", width, "TOTAL", len(names), t.OK, changedWord, t.Changed, t.Failed, t.Skipped, t.Unreachable, ignored)
}
