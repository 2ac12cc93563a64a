package view

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/providers"
)

// fakeClock is a clock tests move by hand. It is read by the reporter's
// ticker goroutine too, hence atomic.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// termBuffer records what a reporter writes, safe against its ticker.
type termBuffer struct {
	mu     sync.Mutex
	b      strings.Builder
	writes int
}

func (w *termBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	return w.b.Write(p)
}

func (w *termBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

// stripSGR removes color codes from s.
func stripSGR(s string) string {
	return regexp.MustCompile(`\x1b\[[0-9;]*m`).ReplaceAllString(s, "")
}

// visibleCells measures s as a terminal shows it, independently of the
// reporter's own measure: color codes take no room, combining marks none,
// Han, kana, Hangul and emoji two cells, anything else one.
func visibleCells(s string) int {
	n := 0
	for _, r := range stripSGR(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
		case unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul), r >= 0x1f000:
			n += 2
		default:
			n++
		}
	}
	return n
}

// statusLines returns every status line in out: split on \r, what
// follows the erase-line sequence and any result text printed before the
// line (the recap, printed after the last erase, ends in a newline).
func statusLines(out string) []string {
	var lines []string
	for _, piece := range strings.Split(out, "\r") {
		piece = strings.TrimPrefix(piece, "\x1b[K")
		if i := strings.LastIndexByte(piece, '\n'); i >= 0 {
			piece = piece[i+1:]
		}
		if piece != "" {
			lines = append(lines, piece)
		}
	}
	return lines
}

// TestStatusUploadThrottled: a 190 MB upload reports progress some 6,000
// times over 10 seconds; the status line follows at the documented rate
// (four times a second) and not once per callback.
func TestStatusUploadThrottled(t *testing.T) {
	for _, c := range []struct {
		name  string
		color bool
		width int
	}{
		{"plain", false, 80},
		{"color", true, 80},
		{"narrow", false, 30},
	} {
		t.Run(c.name, func(t *testing.T) {
			const (
				size      = 190 << 20
				callbacks = 6000
				duration  = 10 * time.Second
			)
			clock := newFakeClock()
			var w termBuffer
			h := &Human{W: &w, Color: c.color, Status: true, Now: clock.Now, Width: func() int { return c.width }}
			h.event(event{Type: evRunStart, Mode: "apply", Hosts: 1})
			for i := 1; i <= callbacks; i++ {
				clock.Advance(duration / callbacks)
				h.Upload(engine.UploadProgress{Host: "web1", Resource: "file[/srv/blob.bin]", Written: int64(size) * int64(i) / callbacks, Total: size})
			}
			h.event(event{Type: evHostEnd, Host: "web1"})
			h.event(event{Type: evSummary, Summary: &engine.Summary{Mode: "apply"}})
			out := w.String()

			draws := len(statusLines(out))
			if limit := 4*int(duration/time.Second) + 3; draws > limit {
				t.Errorf("status redraws: got %d; want at most %d", draws, limit)
			}
			if floor := 4*int(duration/time.Second) - 5; draws < floor {
				t.Errorf("status redraws: got %d; want at least %d (the line must keep moving)", draws, floor)
			}
			if len(out) >= 20<<10 {
				t.Errorf("bytes written: got %d; want under %d", len(out), 20<<10)
			}
			if shown := regexp.MustCompile(`web1: uploading \S*blob\.bin\] 9\d% of 190\.0 MiB`); c.width >= 80 && !shown.MatchString(out) {
				t.Errorf("upload progress: got %q; want it shown up to 9x%% of 190.0 MiB", out[max(len(out)-1000, 0):])
			}
			if !strings.Contains(out, "\r\x1b[K\nRECAP") {
				t.Errorf("got %q; want the status line erased and then the recap", out[max(len(out)-300, 0):])
			}
		})
	}
}

// TestStatusSilentEventsThrottled: events that print nothing (host starts
// and ends, unchanged resources) refresh the line at the same rate.
func TestStatusSilentEventsThrottled(t *testing.T) {
	clock := newFakeClock()
	var w termBuffer
	h := &Human{W: &w, Status: true, Now: clock.Now}
	h.event(event{Type: evRunStart, Mode: "apply", Hosts: 2000})
	for i := range 2000 {
		host := fmt.Sprintf("n%d", i)
		clock.Advance(time.Millisecond)
		h.event(event{Type: evHostStart, Host: host})
		h.event(event{Type: evResource, Host: host, Resource: "file[/a]", Status: engine.StatusOK})
		h.event(event{Type: evResource, Host: host, Resource: "file[/b]", Status: engine.StatusSkipped})
		h.event(event{Type: evHostEnd, Host: host})
	}
	out := w.String()
	// 2 s of fake time: the first draw and then one per 250 ms.
	if got, want := len(statusLines(out)), 1+8; got > want {
		t.Errorf("status redraws: got %d; want at most %d", got, want)
	}
}

// TestStatusAfterResults: result text is printed as its event arrives,
// however recent the last redraw, and the status line is put back below
// it in the same write.
func TestStatusAfterResults(t *testing.T) {
	clock := newFakeClock()
	var w termBuffer
	h := &Human{W: &w, Status: true, Now: clock.Now}
	h.event(event{Type: evRunStart, Mode: "apply", Hosts: 3})
	for i := range 3 {
		clock.Advance(time.Millisecond)
		before, writes := len(w.String()), w.writes
		host := fmt.Sprintf("n%d", i)
		h.event(event{Type: evResource, Host: host, Resource: "file[/srv/x]", Status: engine.StatusChanged, Mode: "apply", Change: &providers.Change{Action: "create"}})
		got := w.String()[before:]
		want := fmt.Sprintf("\r\x1b[K%s: file[/srv/x]: create\n[0/3 done] changed %d  failed 0  unreachable 0  0.0s", host, i+1)
		if got != want || w.writes != writes+1 {
			t.Errorf("%s: got %q in %d write(s); want %q in 1", host, got, w.writes-writes, want)
		}
	}
	h.event(event{Type: evSummary, Summary: &engine.Summary{Mode: "apply"}})
	if out := w.String(); !strings.Contains(out, "0.0s\r\x1b[K\nRECAP") {
		t.Errorf("got %q; want the status line erased before the recap", out)
	}
}

// TestStatusElapsedFromClock: the elapsed time is read from Now.
func TestStatusElapsedFromClock(t *testing.T) {
	clock := newFakeClock()
	var w termBuffer
	h := &Human{W: &w, Status: true, Now: clock.Now, Width: func() int { return 120 }}
	h.event(event{Type: evRunStart, Mode: "check", Hosts: 1})
	clock.Advance(4500 * time.Millisecond)
	h.Upload(engine.UploadProgress{Host: "n1", Resource: "file[/f]", Written: 1, Total: 4})
	lines := statusLines(w.String())
	if got, want := lines[len(lines)-1], "[0/1 done] changed 0  failed 0  unreachable 0  4.5s  n1: uploading file[/f] 25% of 4 B"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	h.event(event{Type: evSummary, Summary: &engine.Summary{Mode: "check"}})
}

// TestStatusWidth: every status line fits the terminal's width, whatever
// the host names, paths (multi-byte, wide, combining, hostile) and colors,
// and the upload detail gives way before the counters.
func TestStatusWidth(t *testing.T) {
	hosts := []string{
		"web1",
		"very-long-host-name-number-0042.eu-west-1.compute.internal.example.com",
		"hôte-numéro-ünë.例え.jp",
	}
	paths := []string{
		"file[/srv/blob.bin]",
		"file[/srv/releases/2025-01-02/some/deeply/nested/directory/structure/that/goes/on/and/on/blob.bin]",
		"file[/srv/データ/ファイル/日本語のとても長いファイル名です/e\u0301te\u0301-ñ-한국어-🚀-blob.bin]",
		"file[/srv/evil\n\x1b[31mred\x1b]0;title\a\xff\xfe\u202eblob.bin]",
	}
	for _, width := range []int{20, 40, 80, 200} {
		for _, color := range []bool{false, true} {
			t.Run(fmt.Sprintf("width %d color %v", width, color), func(t *testing.T) {
				clock := newFakeClock()
				var w termBuffer
				h := &Human{W: &w, Color: color, Status: true, Now: clock.Now, Width: func() int { return width }}
				h.event(event{Type: evRunStart, Mode: "apply", Hosts: 50})
				for _, host := range hosts {
					for _, path := range paths {
						clock.Advance(300 * time.Millisecond)
						h.Upload(engine.UploadProgress{Host: host, Resource: path, Written: 1 << 30, Total: 190 << 30})
						h.event(event{Type: evResource, Host: host, Resource: path, Status: engine.StatusFailed, Error: "boom"})
					}
				}
				h.event(event{Type: evSummary, Summary: &engine.Summary{Mode: "apply"}})
				lines := statusLines(w.String())
				if want := 1 + 2*len(hosts)*len(paths); len(lines) != want {
					t.Fatalf("status lines: got %d; want %d", len(lines), want)
				}
				sawUpload := false
				for _, line := range lines {
					if got := visibleCells(line); got > width {
						t.Errorf("visible width of %q: got %d; want at most %d", line, got, width)
					}
					if !utf8.ValidString(line) {
						t.Errorf("line %q: got invalid UTF-8; want valid", line)
					}
					plain := stripSGR(line)
					if strings.ContainsFunc(plain, unicode.IsControl) {
						t.Errorf("line %q: got control characters; want none", line)
					}
					if !strings.HasPrefix(plain, "[") {
						t.Errorf("line %q: got no counters first; want them", line)
					}
					if color && (!strings.HasPrefix(line, cDim) || !strings.HasSuffix(line, cReset)) {
						t.Errorf("line %q: got it unpainted; want dim from start to reset", line)
					}
					if strings.Contains(plain, "uploading") {
						sawUpload = true
						if !strings.Contains(plain, "blob.bin]") {
							t.Errorf("line %q: got the path cut at its end; want its start cut, keeping the file name", line)
						}
					}
				}
				if width >= 80 && !sawUpload {
					t.Errorf("got no upload shown in %q; want it at %d columns", lines, width)
				}
				if last := stripSGR(lines[len(lines)-1]); width >= 200 && (!strings.HasPrefix(last, "[0/50 done] changed 0  failed 12  unreachable 0  3.6s  hôte-numéro-ünë.例え.jp: uploading file[/srv/evil") || !strings.HasSuffix(last, "blob.bin] 0% of 190.0 GiB")) {
					t.Errorf("got %q; want the whole line, uncut", last)
				}
			})
		}
	}
}

// TestStatusWidthRequeried: Width is asked again before each redraw, so a
// resized terminal gets lines of its new width; 0 means 80 columns.
func TestStatusWidthRequeried(t *testing.T) {
	clock := newFakeClock()
	var w termBuffer
	width := 0
	h := &Human{W: &w, Status: true, Now: clock.Now, Width: func() int { return width }}
	h.event(event{Type: evRunStart, Mode: "apply", Hosts: 1})
	for _, width = range []int{0, 30, 120, 25} {
		clock.Advance(time.Second)
		before := len(w.String())
		h.Upload(engine.UploadProgress{Host: "web1", Resource: "file[/srv/" + strings.Repeat("x", 200) + "]", Written: 1, Total: 2})
		lines := statusLines(w.String()[before:])
		want := width - 1
		if width == 0 {
			want = 79
		}
		if len(lines) != 1 || visibleCells(lines[0]) != want {
			t.Errorf("width %d: got %q; want one line of %d cells", width, lines, want)
		}
	}
	h.event(event{Type: evSummary, Summary: &engine.Summary{Mode: "apply"}})
}

func TestStatusTruncate(t *testing.T) {
	for _, c := range []struct {
		name, in string
		n        int
		want     string
	}{
		{"fits", "abc", 3, "abc"},
		{"ascii", "abcdef", 4, "abcd"},
		{"multi-byte", "héllo", 2, "hé"},
		{"wide rune not split", "a日本", 2, "a"},
		{"wide runes", "日本語", 4, "日本"},
		{"combining mark stays", "e\u0301x", 1, "e\u0301"},
		{"color kept whole", cDim + "abcdef" + cReset, 3, cDim + "abc" + cReset},
		{"cut before color", "ab" + cRed + "cd" + cReset, 2, "ab" + cRed + cReset},
		{"uncut color", cDim + "ab" + cReset, 2, cDim + "ab" + cReset},
		{"zero", "abc", 0, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := truncate(c.in, c.n); got != c.want {
				t.Errorf("truncate(%q, %d): got %q; want %q", c.in, c.n, got, c.want)
			}
		})
	}
}

func TestStatusCut(t *testing.T) {
	for _, c := range []struct {
		name, in string
		n        int
		left     bool
		want     string
	}{
		{"right fits", "abc", 3, false, "abc"},
		{"right", "abcdef", 4, false, "abc…"},
		{"right wide", "日本語です", 6, false, "日本…"},
		{"left", "/srv/a/blob.bin", 9, true, "…blob.bin"},
		{"left wide", "データ.bin", 7, true, "…タ.bin"},
		{"left no lone mark", "xe\u0301bin", 4, true, "…bin"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := cutRight(c.in, c.n)
			if c.left {
				got = cutLeft(c.in, c.n)
			}
			if got != c.want {
				t.Errorf("cut(%q, %d): got %q; want %q", c.in, c.n, got, c.want)
			}
		})
	}
}
