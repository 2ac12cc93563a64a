package report

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// The statuses of resources and hosts, worst last (statusRank).
const (
	statusOK          = "ok"
	statusSkipped     = "skipped"
	statusChanged     = "changed"
	statusIgnored     = "ignored"
	statusFailed      = "failed"
	statusUnreachable = "unreachable"
)

// statusRank orders statuses for a host's overall status.
func statusRank(s string) int {
	switch s {
	case statusOK:
		return 1
	case statusSkipped:
		return 0
	case statusChanged:
		return 2
	case statusIgnored:
		return 3
	case statusFailed:
		return 4
	case statusUnreachable:
		return 5
	}
	return 0
}

// Run is the model of a report: one run, merged from its streams.
type Run struct {
	Mode        string
	Policy      string
	Files       []string
	Slices      []string
	Versions    []int
	Start, End  time.Time
	Duration    float64
	Interrupted bool
	// Notes are the summary's notes, notices, and what the reader
	// skipped (event types of a newer stream version).
	Notes []string
	// Hosts are by name; Roles and Statuses are those that occur.
	Hosts    []*Host
	Roles    []string
	Statuses []string
	Total    Stats
	// Failures are failed, ignored-failed and unreachable results, the
	// unreachable first, then by host.
	Failures []Failure
	// Changes are the changed resources by label.
	Changes []ChangeGroup
	// HasPhases is set when a stream carried phase events (version 2).
	HasPhases bool
}

// Host is one host's line of the recap and of the timeline.
type Host struct {
	Name       string
	Roles      []string
	Stats      Stats
	Status     string
	Start, End time.Time
	Bars       []Bar
}

// Bar is one span of a host's timeline.
type Bar struct {
	// Kind is connect, facts, probe, recheck, resource or handler.
	Kind   string
	Label  string
	Role   string
	Status string
	Start  time.Time
	End    time.Time
}

// Failure is a failed or unreachable result.
type Failure struct {
	Host, Role, Resource, Status string
	Error, Message               string
	Stdout, Stderr               string
	RC                           *int
}

// ChangeGroup is every change of one resource label.
type ChangeGroup struct {
	Resource string
	Hosts    int
	Variants []*ChangeVariant
}

// ChangeVariant is one change (status, action, fields, diff) and the
// hosts it happened on, identically.
type ChangeVariant struct {
	Status    string
	Action    string
	Fields    []Field
	Diff      string
	Sensitive bool
	Message   string
	Handler   bool
	Hosts     []string
	Roles     []string
}

// Identity is what tells which run a stream is of, and which slice.
type Identity struct {
	// File names the stream in messages.
	File                                          string
	Mode, Policy, PolicySHA256, PlanSHA256, Slice string
	// SliceK and SliceN are Slice parsed (0 without --slice).
	SliceK, SliceN int
	// Hosts are the hosts of the stream's summary.
	Hosts []string
}

// Identity returns st's identity.
func (st *Stream) Identity() Identity {
	id := Identity{File: st.File, Mode: st.Start.Mode, Policy: st.Start.Policy, PolicySHA256: st.Start.PolicySHA256,
		PlanSHA256: st.Start.PlanSHA256, Slice: st.Start.Slice, SliceK: st.SliceK, SliceN: st.SliceN}
	for h := range st.Summary.Hosts {
		id.Hosts = append(id.Hosts, h)
	}
	sort.Strings(id.Hosts)
	return id
}

// CheckOneRun checks that streams are of one run, the rules of recap and
// report: one mode, policy digest and plan; the slices of one N, each
// once, all there; a host in one stream only.
func CheckOneRun(ids []Identity) error {
	if len(ids) == 0 {
		return errors.New("no stream to merge")
	}
	first := ids[0]
	seenSlice := map[int]string{}
	hostFrom := map[string]string{}
	for _, s := range ids {
		switch {
		case s.Mode != first.Mode:
			return fmt.Errorf("%s is a %s run, %s an %s run: merge streams of one command", s.File, s.Mode, first.File, first.Mode)
		case s.PolicySHA256 != first.PolicySHA256:
			return fmt.Errorf("%s ran another policy than %s (%s, digest %.12s…, against %s, %.12s…): merge streams of one policy, as it was", s.File, first.File, s.Policy, s.PolicySHA256, first.Policy, first.PolicySHA256)
		case s.PlanSHA256 != first.PlanSHA256:
			return fmt.Errorf("%s applied another plan than %s: merge streams of one plan", s.File, first.File)
		case s.SliceN != first.SliceN:
			return fmt.Errorf("%s is slice %q, %s slice %q: merge the slices of one --slice K/N split", s.File, s.Slice, first.File, first.Slice)
		}
		if s.SliceN > 0 {
			if other, ok := seenSlice[s.SliceK]; ok {
				return fmt.Errorf("%s and %s are both slice %s: give each slice once", other, s.File, s.Slice)
			}
			seenSlice[s.SliceK] = s.File
		}
		for _, name := range s.Hosts {
			if other, ok := hostFrom[name]; ok {
				return fmt.Errorf("host %s is in %s and in %s: the streams overlap (not the slices of one split)", name, other, s.File)
			}
			hostFrom[name] = s.File
		}
	}
	if n := first.SliceN; n > 0 && len(seenSlice) != n {
		var missing []string
		for k := 1; k <= n; k++ {
			if _, ok := seenSlice[k]; !ok {
				missing = append(missing, fmt.Sprintf("%d/%d", k, n))
			}
		}
		return fmt.Errorf("slices %s are missing: give the streams of all %d slices", strings.Join(missing, ", "), n)
	}
	return nil
}

// Merge checks that the streams are of one run (CheckOneRun) and builds
// the report's model.
func Merge(streams []*Stream) (*Run, error) {
	var ids []Identity
	for _, st := range streams {
		ids = append(ids, st.Identity())
	}
	if err := CheckOneRun(ids); err != nil {
		return nil, err
	}
	first := streams[0]
	run := &Run{Mode: first.Start.Mode, Policy: first.Start.Policy}
	versions := map[int]bool{}
	for _, st := range streams {
		if st.Start.Slice != "" {
			run.Slices = append(run.Slices, st.Start.Slice)
		}
		run.Files = append(run.Files, st.File)
		versions[st.Start.Version] = true
	}
	for v := range versions {
		run.Versions = append(run.Versions, v)
	}
	sort.Ints(run.Versions)
	slices.SortFunc(run.Slices, func(a, b string) int {
		ka, _, _ := parseSlice(a)
		kb, _, _ := parseSlice(b)
		return ka - kb
	})
	b := newBuilder(run)
	for _, st := range streams {
		b.add(st)
	}
	b.finish()
	return run, nil
}

// builder accumulates the model from the merged streams' events.
type builder struct {
	run      *Run
	hosts    map[string]*Host
	roles    map[string]bool
	statuses map[string]bool
	groups   map[string]*ChangeGroup
	variants map[string]*ChangeVariant
	unknown  map[string]int
}

func newBuilder(run *Run) *builder {
	return &builder{run: run, hosts: map[string]*Host{}, roles: map[string]bool{}, statuses: map[string]bool{},
		groups: map[string]*ChangeGroup{}, variants: map[string]*ChangeVariant{}, unknown: map[string]int{}}
}

// host returns the named host, new when unseen.
func (b *builder) host(name string) *Host {
	h := b.hosts[name]
	if h == nil {
		h = &Host{Name: name}
		b.hosts[name] = h
	}
	return h
}

// span widens h's time span to [start, end].
func (h *Host) span(start, end time.Time) {
	if h.Start.IsZero() || start.Before(h.Start) {
		h.Start = start
	}
	if end.After(h.End) {
		h.End = end
	}
}

func (b *builder) add(st *Stream) {
	run := b.run
	if run.Start.IsZero() || st.Start.Time.Before(run.Start) {
		run.Start = st.Start.Time
	}
	if st.End.After(run.End) {
		run.End = st.End
	}
	run.Duration = max(run.Duration, st.Summary.Duration)
	run.Interrupted = run.Interrupted || st.Summary.Interrupted
	prefix := ""
	if len(run.Files) > 1 {
		prefix = st.File + ": "
	}
	for _, note := range st.Summary.Notes {
		run.Notes = append(run.Notes, prefix+note)
	}
	for name, stats := range st.Summary.Hosts {
		h := b.host(name)
		if stats != nil {
			h.Stats = *stats
		}
	}
	for i := range st.Events {
		b.event(&st.Events[i], prefix)
	}
}

func (b *builder) event(e *Event, prefix string) {
	if e.Role != "" {
		b.roles[e.Role] = true
	}
	switch e.Type {
	case "host_start":
		h := b.host(e.Host)
		if !slices.Contains(h.Roles, e.Role) {
			h.Roles = append(h.Roles, e.Role)
		}
		h.span(e.Time, e.Time)
	case "host_end":
		h := b.host(e.Host)
		h.span(e.Start(), e.Time)
	case "notice":
		msg := e.Message
		if e.Role != "" {
			msg = "role " + e.Role + ": " + msg
		}
		b.run.Notes = append(b.run.Notes, prefix+msg)
	case "phase":
		b.run.HasPhases = true
		h := b.host(e.Host)
		kind := e.Phase
		label := e.Phase
		if e.Phase == "apply" {
			label = fmt.Sprintf("batch of %d change(s), guarded and re-checked", e.Count)
		}
		if e.Phase == "probe" {
			label = fmt.Sprintf("probe batch (%d probes)", e.Count)
			if e.Recheck {
				kind = "recheck"
				label = fmt.Sprintf("re-check batch (%d probes)", e.Count)
			}
		}
		h.Bars = append(h.Bars, Bar{Kind: kind, Label: label, Role: e.Role, Status: "phase", Start: e.Start(), End: e.Time})
		h.span(e.Start(), e.Time)
	case "resource", "handler":
		b.result(e)
	default:
		b.unknown[e.Type]++
	}
}

// result takes a resource or handler event.
func (b *builder) result(e *Event) {
	h := b.host(e.Host)
	if e.Role != "" && !slices.Contains(h.Roles, e.Role) {
		h.Roles = append(h.Roles, e.Role)
	}
	b.statuses[e.Status] = true
	label := e.Resource
	if e.Status == statusUnreachable && label == "" {
		label = "connect"
	}
	h.Bars = append(h.Bars, Bar{Kind: e.Type, Label: label, Role: e.Role, Status: e.Status, Start: e.Start(), End: e.Time})
	h.span(e.Start(), e.Time)
	switch e.Status {
	case statusFailed, statusIgnored, statusUnreachable:
		b.run.Failures = append(b.run.Failures, Failure{Host: e.Host, Role: e.Role, Resource: label, Status: e.Status,
			Error: e.Error, Message: e.Message, Stdout: e.Stdout, Stderr: e.Stderr, RC: e.RC})
	}
	if e.Status != statusChanged {
		return
	}
	c := e.Change
	if c == nil {
		c = &Change{}
	}
	g := b.groups[e.Resource]
	if g == nil {
		g = &ChangeGroup{Resource: e.Resource}
		b.groups[e.Resource] = g
	}
	key := variantKey(e, c)
	v := b.variants[key]
	if v == nil {
		v = &ChangeVariant{Status: e.Status, Action: string(c.Action), Fields: c.Fields, Diff: c.Diff, Sensitive: c.Sensitive,
			Message: c.Message, Handler: e.Type == "handler"}
		b.variants[key] = v
		g.Variants = append(g.Variants, v)
	}
	if !slices.Contains(v.Hosts, e.Host) {
		v.Hosts = append(v.Hosts, e.Host)
	}
	if e.Role != "" && !slices.Contains(v.Roles, e.Role) {
		v.Roles = append(v.Roles, e.Role)
	}
}

// variantKey identifies identical changes of one resource: same label,
// kind, status, action, fields, diff and message.
func variantKey(e *Event, c *Change) string {
	var sb strings.Builder
	for _, s := range []string{e.Resource, e.Type, e.Status, string(c.Action), c.Diff, c.Message, fmt.Sprint(c.Sensitive)} {
		fmt.Fprintf(&sb, "%d:%s", len(s), s)
	}
	for _, f := range c.Fields {
		fmt.Fprintf(&sb, "%d:%s%d:%s%d:%s", len(f.Name), f.Name, len(f.Before), f.Before, len(f.After), f.After)
	}
	return sb.String()
}

func (b *builder) finish() {
	run := b.run
	for _, h := range b.hosts {
		run.Hosts = append(run.Hosts, h)
		h.Status = statusOK
		worst := -1
		for s, n := range map[string]int{statusOK: h.Stats.OK, statusSkipped: h.Stats.Skipped, statusChanged: h.Stats.Changed,
			statusIgnored: h.Stats.Ignored, statusFailed: h.Stats.Failed, statusUnreachable: h.Stats.Unreachable} {
			if n > 0 && statusRank(s) > worst {
				worst, h.Status = statusRank(s), s
			}
		}
		if worst < 0 {
			h.Status = statusSkipped
		}
		b.statuses[h.Status] = true
		if h.Start.IsZero() {
			h.Start, h.End = run.Start, run.Start
		}
		sort.SliceStable(h.Bars, func(i, j int) bool { return h.Bars[i].Start.Before(h.Bars[j].Start) })
		run.Total.OK += h.Stats.OK
		run.Total.Changed += h.Stats.Changed
		run.Total.Failed += h.Stats.Failed
		run.Total.Skipped += h.Stats.Skipped
		run.Total.Unreachable += h.Stats.Unreachable
		run.Total.Ignored += h.Stats.Ignored
	}
	sort.Slice(run.Hosts, func(i, j int) bool { return run.Hosts[i].Name < run.Hosts[j].Name })
	for r := range b.roles {
		run.Roles = append(run.Roles, r)
	}
	sort.Strings(run.Roles)
	for _, s := range []string{statusUnreachable, statusFailed, statusIgnored, statusChanged, statusOK, statusSkipped} {
		if b.statuses[s] {
			run.Statuses = append(run.Statuses, s)
		}
	}
	sort.SliceStable(run.Failures, func(i, j int) bool {
		a, c := run.Failures[i], run.Failures[j]
		if statusRank(a.Status) != statusRank(c.Status) {
			return statusRank(a.Status) > statusRank(c.Status)
		}
		return a.Host < c.Host
	})
	for _, g := range b.groups {
		for _, v := range g.Variants {
			sort.Strings(v.Hosts)
			g.Hosts += len(v.Hosts)
		}
		sort.SliceStable(g.Variants, func(i, j int) bool { return len(g.Variants[i].Hosts) > len(g.Variants[j].Hosts) })
		run.Changes = append(run.Changes, *g)
	}
	sort.Slice(run.Changes, func(i, j int) bool { return run.Changes[i].Resource < run.Changes[j].Resource })
	var unknown []string
	for t, n := range b.unknown {
		unknown = append(unknown, fmt.Sprintf("%d %s", n, t))
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		run.Notes = append(run.Notes, "events of types this opsmop does not know were not shown: "+strings.Join(unknown, ", "))
	}
	for _, v := range run.Versions {
		if v > KnownVersion {
			run.Notes = append(run.Notes, fmt.Sprintf("a stream is of version %d, newer than this opsmop reads (%d): fields it does not know are not shown", v, KnownVersion))
		}
	}
}
