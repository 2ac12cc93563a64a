package view

import (
	"cmp"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/providers"
)

// Human renders events for people: one line per resource as it
// happens (unchanged ones only when Verbose), diffs for changes in both
// check and apply, failures with the command's rc and stderr, and a recap.
type Human struct {
	W       io.Writer
	Color   bool
	Verbose bool
	// Status keeps a live progress line at the bottom of a terminal
	// (hosts done/total, changed, failed, unreachable, elapsed time, the
	// upload in progress), redrawn in place while results scroll above
	// it. Only for terminals: callers leave it off for pipes and --json.
	//
	// Result text is printed as soon as its event arrives, and the status
	// line is put back below it in the same write. Every other refresh
	// (the clock, upload progress, events that print nothing) happens at
	// most once per 250 ms, however many callbacks arrive. The line never
	// reaches the terminal's last column (see Width).
	Status bool
	// Now is the clock behind the elapsed time and the redraw limit; nil
	// means time.Now.
	Now func() time.Time
	// Width returns the terminal's width in columns. It is asked again
	// before every redraw, as terminals get resized; nil, or a result of
	// 0 or less, means 80 columns.
	Width func() int

	mu       sync.Mutex
	prog     progress
	stopTick chan struct{}
	err      error
	flatOnce sync.Once
	f        flat
}

// Err returns the first error writing to W: the report is incomplete and
// the caller must not report success.
func (h *Human) Err() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// writeOut writes s to W, keeping the first error; h.mu is held.
func (h *Human) writeOut(s string) {
	if _, err := io.WriteString(h.W, s); err != nil && h.err == nil {
		h.err = fmt.Errorf("write output: %w", err)
	}
}

// progress is what the status line shows, and when it was last drawn.
type progress struct {
	started                                   time.Time
	total, done, changed, failed, unreachable int
	upload                                    *upload
	shown                                     bool      // the line is on screen
	drawn                                     time.Time // last time it was drawn
	finished                                  bool      // the recap is out: no more redraws
}

// upload is the file upload the status line shows.
type upload struct {
	host, path string
	percent    int64
	total      int64
}

const (
	cReset  = "\x1b[0m"
	cRed    = "\x1b[31m"
	cGreen  = "\x1b[32m"
	cYellow = "\x1b[33m"
	cCyan   = "\x1b[36m"
	cDim    = "\x1b[2m"
)

const (
	// redrawEvery is the least time between two refreshes of the status
	// line that come with no result text.
	redrawEvery = 250 * time.Millisecond
	// defaultWidth is the width assumed when the terminal's is unknown.
	defaultWidth = 80
	// eraseLine returns to the start of the line and clears it.
	eraseLine = "\r\x1b[K"
)

func (h *Human) paint(c, s string) string {
	if !h.Color {
		return s
	}
	return c + s + cReset
}

func (h *Human) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Human) width() int {
	if h.Width != nil {
		if w := h.Width(); w > 0 {
			return w
		}
	}
	return defaultWidth
}

// event renders one event: result lines at once, the status line kept below them.
func (h *Human) event(e event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	if h.Status {
		h.track(e)
		if e.Type == evRunStart {
			h.startTicker()
		}
	}
	switch e.Type {
	case evRunStart:
		verb := "apply"
		if e.Mode == "check" {
			verb = "check (nothing will be changed)"
		}
		fmt.Fprintf(&b, "%s: %d host(s)\n", verb, e.Hosts)
	case evNotice:
		fmt.Fprintf(&b, "%s\n", h.paint(cCyan, e.Message))
	case evResource, evHandler:
		h.resource(&b, e)
	case evSummary:
		h.recap(&b, e.Summary)
	}
	if e.Type == evSummary {
		h.finish(b.String())
		h.stopTicker()
		return
	}
	h.write(b.String())
}

// write prints out and keeps the status line, when enabled, below it.
// Non-empty out is printed at once, the status line erased before it and
// drawn again after it. With out empty, the status line is refreshed
// only if it was last drawn at least redrawEvery ago.
func (h *Human) write(out string) {
	if !h.Status || h.prog.finished {
		h.writeOut(out)
		return
	}
	now := h.now()
	if out == "" && h.prog.shown && now.Sub(h.prog.drawn) < redrawEvery {
		return
	}
	var b strings.Builder
	if h.prog.shown {
		b.WriteString(eraseLine)
	}
	b.WriteString(out)
	b.WriteString(h.statusLine(now, h.width()))
	h.prog.shown = true
	h.prog.drawn = now
	h.writeOut(b.String())
}

// finish removes the status line, prints out (the recap) and stops all
// later redraws.
func (h *Human) finish(out string) {
	if h.Status && h.prog.shown {
		out = eraseLine + out
		h.prog.shown = false
	}
	h.prog.finished = true
	h.writeOut(out)
}

// statusLine renders the status line for a terminal width columns wide;
// it never reaches the last column, so that no terminal wraps it.
func (h *Human) statusLine(now time.Time, width int) string {
	p := h.prog
	room := max(width-1, 1)
	elapsed := now.Sub(p.started).Seconds()
	full := fmt.Sprintf("[%d/%d done] changed %d  failed %d  unreachable %d  %.1fs", p.done, p.total, p.changed, p.failed, p.unreachable, elapsed)
	short := fmt.Sprintf("[%d/%d] chg %d fail %d unr %d %.1fs", p.done, p.total, p.changed, p.failed, p.unreachable, elapsed)
	line := ""
	if p.upload != nil {
		for _, counters := range []string{full, short} {
			if d, ok := p.upload.fit(room - cells(counters) - 2); ok {
				line = counters + "  " + d
				break
			}
		}
	}
	if line == "" {
		line = full
		if cells(full) > room {
			line = cutRight(short, room)
		}
	}
	return truncate(h.paint(cDim, line), room)
}

// Shortest host and path an upload is still shown with, in cells,
// counting the ellipsis.
const (
	minUploadHost = 8
	minUploadPath = 12
)

// fit renders the upload in at most room cells: the path shortened first,
// from its start (the file name is kept), then the host from its end. It
// reports false when even the shortest form does not fit.
func (u *upload) fit(room int) (string, bool) {
	const mid = ": uploading "
	tail := fmt.Sprintf(" %d%% of %s", u.percent, humanBytes(u.total))
	if s := u.host + mid + u.path + tail; cells(s) <= room {
		return s, true
	}
	if pathRoom := room - cells(u.host+mid+tail); pathRoom >= minUploadPath {
		return u.host + mid + cutLeft(u.path, pathRoom) + tail, true
	}
	pathRoom := min(cells(u.path), minUploadPath)
	if hostRoom := room - cells(mid+tail) - pathRoom; hostRoom >= minUploadHost {
		return cutRight(u.host, hostRoom) + mid + cutLeft(u.path, pathRoom) + tail, true
	}
	return "", false
}

func (h *Human) track(e event) {
	switch e.Type {
	case evRunStart:
		h.prog = progress{started: h.now(), total: e.Tasks}
		if h.prog.total == 0 {
			h.prog.total = e.Hosts
		}
	case evHostEnd:
		h.prog.done++
	case evResource, evHandler:
		switch e.Status {
		case engine.StatusChanged:
			h.prog.changed++
		case engine.StatusFailed:
			h.prog.failed++
		case engine.StatusUnreachable:
			h.prog.unreachable++
		}
	}
}

// Upload shows a file upload's progress on the status line. It may be
// called for every chunk written: the line is redrawn at most once per
// 250 ms.
func (h *Human) Upload(u engine.UploadProgress) {
	if !h.Status {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.Written >= u.Total {
		h.prog.upload = nil
	} else {
		h.prog.upload = &upload{host: printable(u.Host), path: printable(u.Resource), percent: u.Written * 100 / max(u.Total, 1), total: u.Total}
	}
	h.write("")
}

// The engine.Hooks of Human, rendered through event.

func (h *Human) flat() *flat {
	h.flatOnce.Do(func() { h.f = flat{handle: h.event} })
	return &h.f
}

// RunStart implements engine.Hooks.
func (h *Human) RunStart(r engine.RunStart) { h.flat().RunStart(r) }

// HostStart implements engine.Hooks.
func (h *Human) HostStart(e engine.HostStart) { h.flat().HostStart(e) }

// Resource implements engine.Hooks.
func (h *Human) Resource(r engine.ResourceResult) { h.flat().Resource(r) }

// HostEnd implements engine.Hooks.
func (h *Human) HostEnd(e engine.HostEnd) { h.flat().HostEnd(e) }

// Notice implements engine.Hooks.
func (h *Human) Notice(n engine.Notice) { h.flat().Notice(n) }

// Phase implements engine.Hooks: the human view does not show phases.
func (h *Human) Phase(engine.Phase) {}

// Summary implements engine.Hooks.
func (h *Human) Summary(s *engine.Summary) { h.flat().Summary(s) }

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

// startTicker refreshes the status line (the elapsed time) every
// redrawEvery until stopTicker. Its timer is set for when the line falls
// due, so that redraws for other reasons push it back.
func (h *Human) startTicker() {
	if h.stopTick != nil {
		return
	}
	stop := make(chan struct{})
	h.stopTick = stop
	go func() {
		t := time.NewTimer(redrawEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				h.mu.Lock()
				h.write("")
				wait := redrawEvery - h.now().Sub(h.prog.drawn)
				h.mu.Unlock()
				t.Reset(min(max(wait, 10*time.Millisecond), redrawEvery))
			}
		}
	}()
}

func (h *Human) stopTicker() {
	if h.stopTick != nil {
		close(h.stopTick)
		h.stopTick = nil
	}
}

func (h *Human) resource(b *strings.Builder, e event) {
	what := e.Resource
	if e.Type == evHandler {
		what = "handler " + what
	}
	prefix := e.Host + ": " + what
	switch e.Status {
	case engine.StatusOK:
		if e.Message != "" && e.Change != nil && e.Change.Output {
			fmt.Fprintf(b, "%s: %s\n", prefix, e.Message)
			return
		}
		if h.Verbose {
			fmt.Fprintf(b, "%s: %s\n", prefix, h.paint(cGreen, "ok"))
		}
	case engine.StatusSkipped:
		if h.Verbose {
			fmt.Fprintf(b, "%s: %s\n", prefix, h.paint(cCyan, "skipped ("+e.Message+")"))
		}
	case engine.StatusChanged:
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
	case engine.StatusFailed, engine.StatusIgnored:
		word := "FAILED:"
		if e.Status == engine.StatusIgnored {
			word = "FAILED (ignored):"
		}
		fmt.Fprintf(b, "%s: %s %s\n", prefix, h.paint(cRed, word), indentRest(e.Error))
		if e.RC != nil {
			fmt.Fprintf(b, "    rc: %d\n", *e.RC)
		}
		if s := strings.TrimRight(e.Stderr, "\n"); s != "" {
			fmt.Fprintf(b, "    stderr: %s\n", indentRest(s))
		}
	case engine.StatusUnreachable:
		fmt.Fprintf(b, "%s: %s %s\n", e.Host, h.paint(cRed, "UNREACHABLE:"), e.Error)
	}
}

func indentRest(s string) string { return strings.ReplaceAll(s, "\n", "\n    ") }

func (h *Human) change(b *strings.Builder, e event) {
	c := e.Change
	for _, f := range c.Fields {
		fmt.Fprintf(b, "    %s: %s -> %s\n", f.Name, show(f.Before), show(f.After))
	}
	if msg := cmp.Or(e.Message, c.Message); msg != "" {
		// What the fields cannot say (file's validate: "not validated
		// yet"; package: which packages are held back, ...), and what
		// the run adds (a saved plan's note).
		fmt.Fprintf(b, "    note: %s\n", msg)
	}
	if c.Sensitive {
		if c.Action != providers.Run {
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

func (h *Human) recap(b *strings.Builder, s *engine.Summary) {
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

// printable makes s safe for the status line: control characters (a
// newline would break the redraw, an escape would inject terminal
// commands) and bidirectional overrides become '?', invalid UTF-8 becomes
// U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsControl(r), r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
			return '?'
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}

// runeCells is how many terminal cells r takes: 0 for combining marks and
// invisible format characters, 2 for East Asian wide and fullwidth
// characters and emoji, 1 otherwise. Where terminals differ it errs
// towards 2, which can only make a line shorter than needed, never wrap.
func runeCells(r rune) int {
	switch {
	case r == 0 || unicode.IsControl(r):
		return 0
	case r < 0x300:
		return 1
	case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
		return 0
	case r >= 0x1100 && r <= 0x115f, // Hangul Jamo initials
		r == 0x2329 || r == 0x232a,
		r >= 0x231a && r <= 0x231b, r >= 0x23e9 && r <= 0x23f3,
		r >= 0x25fd && r <= 0x25fe,
		r >= 0x2600 && r <= 0x27bf, // miscellaneous symbols, dingbats
		r >= 0x2b1b && r <= 0x2b1c, r == 0x2b50 || r == 0x2b55,
		r >= 0x2e80 && r <= 0xa4cf, // CJK, kana, Yi
		r >= 0xa960 && r <= 0xa97f,
		r >= 0xac00 && r <= 0xd7a3, // Hangul syllables
		r >= 0xf900 && r <= 0xfaff, // CJK compatibility ideographs
		r >= 0xfe10 && r <= 0xfe19, r >= 0xfe30 && r <= 0xfe6f,
		r >= 0xff00 && r <= 0xff60, r >= 0xffe0 && r <= 0xffe6, // fullwidth forms
		r >= 0x16fe0 && r <= 0x1b2ff, // Tangut, Khitan, kana supplements
		r >= 0x1f000 && r <= 0x1faff, // emoji and pictographs
		r >= 0x20000 && r <= 0x3fffd: // CJK extensions
		return 2
	}
	return 1
}

// cells is the display width of s, which holds no escape sequences.
func cells(s string) int {
	n := 0
	for _, r := range s {
		n += runeCells(r)
	}
	return n
}

// cutRight shortens s to at most n cells, replacing its end with "…".
func cutRight(s string, n int) string {
	if cells(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	used := 0
	for i, r := range s {
		if used+runeCells(r) > n-1 {
			return s[:i] + "…"
		}
		used += runeCells(r)
	}
	return s
}

// cutLeft shortens s to at most n cells, replacing its start with "…"
// (for paths, whose end says most).
func cutLeft(s string, n int) string {
	if cells(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	used, i := 0, len(s)
	for i > 0 {
		r, size := utf8.DecodeLastRuneInString(s[:i])
		if used+runeCells(r) > n-1 {
			break
		}
		used += runeCells(r)
		i -= size
	}
	// Do not start on a combining mark: its base was cut off.
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if runeCells(r) != 0 {
			break
		}
		i += size
	}
	return "…" + s[i:]
}

// truncate cuts s, which may hold ANSI escape sequences, to at most n
// visible cells. Escape sequences take no cells and are kept whole, runes
// are never split, and a reset is appended if s was cut after a color was
// set.
func truncate(s string, n int) string {
	var b strings.Builder
	used, colored := 0, false
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			j := escapeEnd(s, i)
			b.WriteString(s[i:j])
			colored = colored || s[j-1] == 'm'
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if used+runeCells(r) > n {
			if colored {
				b.WriteString(cReset)
			}
			return b.String()
		}
		used += runeCells(r)
		b.WriteString(s[i : i+size])
		i += size
	}
	return b.String()
}

// escapeEnd returns where the escape sequence starting at s[i] ends: after
// a CSI sequence's final byte, or after the byte following a lone ESC.
func escapeEnd(s string, i int) int {
	if i+1 >= len(s) {
		return len(s)
	}
	if s[i+1] != '[' {
		return i + 2
	}
	for j := i + 2; j < len(s); j++ {
		if s[j] >= 0x40 && s[j] <= 0x7e {
			return j + 1
		}
	}
	return len(s)
}
