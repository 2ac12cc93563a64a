package report

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

//go:embed report.html.tmpl
var pageTemplate string

// barsWidth is the timeline's width in SVG user units.
const barsWidth = 1000

// longHostList is the length from which a host list is folded.
const longHostList = 12

// Render writes run's report page to w: one HTML file with its CSS, SVG
// and filter script inline, nothing fetched.
func Render(w io.Writer, run *Run) error {
	t, err := template.New("report").Funcs(template.FuncMap{"join": strings.Join}).Parse(pageTemplate)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	if err := t.Execute(w, newPage(run)); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// page is what the template renders: the model laid out.
type page struct {
	Run      *Run
	Versions string
	Duration string
	Span     string
	Axis     []tick
	Rows     []row
	Failures []failureView
	Changes  []groupView
}

type tick struct {
	X      string
	Label  string
	Anchor string
}

// row is one host's line of the recap and the timeline.
type row struct {
	Host     *Host
	Filter   filter
	Duration string
	Bars     []barView
	Phases   bool
}

// filter is what the filter script matches an element on: hosts, roles
// and statuses, one a line.
type filter struct {
	Hosts, Roles, Statuses string
}

type barView struct {
	X, Y, W, H string
	Class      string
	Title      string
}

type failureView struct {
	Failure
	Filter filter
	RC     string
}

type groupView struct {
	Resource string
	Hosts    int
	Filter   filter
	Variants []variantView
}

type variantView struct {
	*ChangeVariant
	Filter    filter
	Long      bool
	DiffLines []diffLine
}

type diffLine struct {
	Class string
	Text  string
}

func lines(s []string) string { return strings.Join(s, "\n") }

func newPage(run *Run) *page {
	p := &page{Run: run, Duration: seconds(run.Duration)}
	var vs []string
	for _, v := range run.Versions {
		vs = append(vs, fmt.Sprint(v))
	}
	p.Versions = strings.Join(vs, ", ")
	span := run.End.Sub(run.Start).Seconds()
	for _, h := range run.Hosts {
		if h.End.After(run.End) {
			span = max(span, h.End.Sub(run.Start).Seconds())
		}
	}
	if span <= 0 {
		span = 1
	}
	p.Axis = axis(span)
	p.Span = seconds(span)
	x := func(t time.Time) float64 { return t.Sub(run.Start).Seconds() / span * barsWidth }
	for _, h := range run.Hosts {
		statuses := []string{h.Status}
		r := row{Host: h, Duration: seconds(h.End.Sub(h.Start).Seconds()), Phases: run.HasPhases}
		for _, b := range h.Bars {
			if b.Status != "phase" && !slices.Contains(statuses, b.Status) {
				statuses = append(statuses, b.Status)
			}
			x0, x1 := x(b.Start), x(b.End)
			// Bars of quick work stay visible, failures more so.
			w := max(x1-x0, 1)
			if b.Status == statusFailed || b.Status == statusUnreachable {
				w = max(w, 3)
			}
			y, ht := 1.0, 14.0
			if run.HasPhases {
				if b.Status == "phase" {
					y, ht = 1, 6
				} else {
					y, ht = 8, 8
				}
			}
			class := "s-" + b.Status
			if b.Status == "phase" {
				class = "p-" + b.Kind
			}
			title := b.Label
			if b.Kind == "handler" {
				title = "handler " + title
			}
			if b.Role != "" {
				title += " (role " + b.Role + ")"
			}
			if b.Status != "phase" {
				title += ": " + b.Status
			}
			title += fmt.Sprintf(", %s at +%s", seconds(b.End.Sub(b.Start).Seconds()), seconds(b.Start.Sub(run.Start).Seconds()))
			r.Bars = append(r.Bars, barView{X: num(x0), Y: num(y), W: num(w), H: num(ht), Class: class, Title: title})
		}
		r.Filter = filter{Hosts: h.Name, Roles: lines(h.Roles), Statuses: lines(statuses)}
		p.Rows = append(p.Rows, r)
	}
	for _, f := range run.Failures {
		fv := failureView{Failure: f, Filter: filter{Hosts: f.Host, Roles: f.Role, Statuses: f.Status}}
		if f.RC != nil {
			fv.RC = fmt.Sprint(*f.RC)
		}
		p.Failures = append(p.Failures, fv)
	}
	for _, g := range run.Changes {
		gv := groupView{Resource: g.Resource, Hosts: g.Hosts}
		var hosts, roles []string
		for _, v := range g.Variants {
			vv := variantView{ChangeVariant: v, Long: len(v.Hosts) > longHostList,
				Filter: filter{Hosts: lines(v.Hosts), Roles: lines(v.Roles), Statuses: v.Status}}
			if v.Diff != "" {
				vv.DiffLines = splitDiff(v.Diff)
			}
			hosts = append(hosts, v.Hosts...)
			roles = append(roles, v.Roles...)
			gv.Variants = append(gv.Variants, vv)
		}
		gv.Filter = filter{Hosts: lines(hosts), Roles: lines(roles), Statuses: statusChanged}
		p.Changes = append(p.Changes, gv)
	}
	return p
}

// splitDiff splits a unified diff into lines classed for colour.
func splitDiff(d string) []diffLine {
	var out []diffLine
	for _, l := range strings.Split(strings.TrimSuffix(d, "\n"), "\n") {
		c := ""
		switch {
		case strings.HasPrefix(l, "+++"), strings.HasPrefix(l, "---"):
			c = "dh"
		case strings.HasPrefix(l, "@@"):
			c = "da"
		case strings.HasPrefix(l, "+"):
			c = "dp"
		case strings.HasPrefix(l, "-"):
			c = "dm"
		}
		out = append(out, diffLine{Class: c, Text: l})
	}
	return out
}

// axis returns about eight ticks over span seconds, at a round step;
// X is in percent of the width from the left, or, for Anchor "end",
// from the right.
func axis(span float64) []tick {
	step := 0.001
	for _, s := range []float64{0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200} {
		step = s
		if span/s <= 8 {
			break
		}
	}
	var ticks []tick
	for i := 0; float64(i)*step <= span+1e-9 && i <= 1000; i++ {
		t := float64(i) * step
		ticks = append(ticks, tick{X: num(t / span * 100), Label: seconds(t), Anchor: "start"})
	}
	// A last label near the end ends at its tick, so it stays in the
	// picture.
	if n := len(ticks); n > 1 && (span-float64(n-1)*step)/span < 0.08 {
		ticks[n-1].Anchor = "end"
		ticks[n-1].X = num(100 - float64(n-1)*step/span*100)
	}
	return ticks
}

// num formats an SVG coordinate.
func num(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	return fmt.Sprintf("%.1f", f)
}

// seconds formats a duration in seconds for people.
func seconds(s float64) string {
	switch {
	case s < 0:
		return "-" + seconds(-s)
	case s >= 3600:
		return fmt.Sprintf("%dh%02dm", int(s)/3600, int(s)%3600/60)
	case s >= 60:
		return fmt.Sprintf("%dm%02ds", int(s)/60, int(s)%60)
	case s >= 10:
		return fmt.Sprintf("%.1fs", s)
	case s >= 1:
		return fmt.Sprintf("%.2fs", s)
	case s == 0:
		return "0s"
	}
	return fmt.Sprintf("%.0fms", s*1000)
}
