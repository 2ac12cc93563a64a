// Package engine runs a policy: per host it gathers facts, expands and
// renders resources, checks them (batching read-only probes into one round
// trip), and in apply mode performs exactly the checked change and checks
// it again. Events go to a Reporter.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// HostInfo is one selected host as the engine sees it.
type HostInfo struct {
	Name    string
	Address string
	Groups  []string
	// Vars are the host's merged inventory variables.
	Vars map[string]any
	// CommandTimeout bounds every command on the host (0: none). The
	// connection enforces it per command; the engine cancels a step (probe
	// batch, apply) still running commandGrace (15 s) after it.
	CommandTimeout time.Duration
}

// Connector gives the engine a connected host for a role. Any error is
// reported as the host being unreachable.
type Connector interface {
	Connect(ctx context.Context, role *policy.Role, host *HostInfo) (providers.Host, error)
}

// Plan is one role with the hosts it runs on, in order.
type Plan struct {
	Role  *policy.Role
	Hosts []*HostInfo
}

// Options configure a run.
type Options struct {
	Policy    *policy.Policy
	Registry  policy.Registry
	Lookup    func(typeName string) (providers.Provider, bool)
	Plans     []Plan
	Check     bool
	Forks     int
	ExtraVars map[string]any
	Tags      []string
	SkipTags  []string
	Connector Connector
	Reporter  Reporter
	Eval      *Evaluator
	// Verbose adds unchanged ("ok") resources to the human output; the
	// engine itself emits every event regardless.
	Verbose bool
	// SkipFacts leaves facts empty instead of gathering them (ad-hoc
	// commands, which do not use them).
	SkipFacts bool
}

// batchRunner is implemented by hosts that can pipeline several read-only
// scripts in one round trip.
type batchRunner interface {
	RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error)
}

// inlineProber is implemented by providers whose probe scripts keep the
// inline contract of connection.Probe (they may run in the persistent
// shell itself, without a subshell); ProbeVars lists the variables they
// set.
type inlineProber interface {
	ProbeVars() []string
}

// pathProber is implemented by providers whose probes read the
// providers.ProbePrelude results: ProbePath names the path a request's
// probe looks at.
type pathProber interface {
	ProbePath(req *providers.Request) (providers.ProbedPath, bool)
}

// unreachableErr is implemented by transport errors that mean the host is
// gone (as opposed to a command failing on it).
type unreachableErr interface{ Unreachable() bool }

// maxBatch bounds how many probes go into one round trip.
const maxBatch = 64

// ErrInterrupted is the error of a host (and of the resource it was
// working on) when the run's context was cancelled, which is what Ctrl-C
// does: the host did not fail, it was stopped. Such hosts count as failed
// (they did not finish; --retry-failed runs them again). Test for it with
// errors.Is.
const ErrInterrupted = constError("interrupted (Ctrl-C)")

// constError is an error that can be a constant.
type constError string

func (e constError) Error() string { return string(e) }

// hostState is what the engine keeps per host across roles.
type hostState struct {
	info       *HostInfo
	facts      Facts
	registered map[string]any
	stats      Stats
	done       bool // failed or unreachable: later roles skip it
	started    bool // some role started on it
}

type runner struct {
	o       Options
	mode    string
	mu      sync.Mutex
	hosts   map[string]*hostState
	order   []string
	notes   []string
	started time.Time
	sums    sumCache
	// needFacts tells, per role, whether it may read facts (needsFacts):
	// they are gathered on a host before the first role that does.
	needFacts map[*policy.Role]bool
}

// Run executes the plans: roles in order, each role's hosts concurrently
// (at most Forks at a time). It returns the recap; it does not fail as a
// whole: per-host failures are in the summary.
func Run(ctx context.Context, o Options) *Summary {
	r := &runner{o: o, mode: "apply", hosts: map[string]*hostState{}, started: time.Now()}
	if o.Check {
		r.mode = "check"
	}
	if r.o.Forks <= 0 {
		r.o.Forks = 20
	}
	if r.o.Eval == nil {
		r.o.Eval = NewEvaluator(o.Policy.Dir)
	}
	total, tasks := 0, 0
	r.needFacts = map[*policy.Role]bool{}
	for _, p := range o.Plans {
		r.needFacts[p.Role] = needsFacts(o.Policy, p.Role, o.Registry, o.Policy.Dir)
		tasks += len(p.Hosts)
		for _, h := range p.Hosts {
			if _, ok := r.hosts[h.Name]; !ok {
				r.hosts[h.Name] = &hostState{info: h, registered: map[string]any{}}
				r.order = append(r.order, h.Name)
				total++
			}
		}
	}
	r.emit(Event{Type: EventRunStart, Hosts: total, Tasks: tasks})
	for _, p := range o.Plans {
		if ctx.Err() != nil {
			break
		}
		r.runRole(ctx, p)
	}
	if ctx.Err() != nil {
		var never []string
		for _, n := range r.order {
			if !r.hosts[n].started {
				never = append(never, n)
			}
		}
		if len(never) > 0 {
			r.notes = append(r.notes, "interrupted before these hosts were started: "+strings.Join(never, ", "))
		}
	}
	sum := &Summary{Mode: r.mode, Hosts: map[string]*Stats{}, Order: r.order, Duration: time.Since(r.started).Seconds(), Interrupted: ctx.Err() != nil, Notes: r.notes}
	for _, n := range r.order {
		st := r.hosts[n].stats
		sum.Hosts[n] = &st
		sum.Total.OK += st.OK
		sum.Total.Changed += st.Changed
		sum.Total.Failed += st.Failed
		sum.Total.Skipped += st.Skipped
		sum.Total.Unreachable += st.Unreachable
		sum.Total.Ignored += st.Ignored
	}
	r.emit(Event{Type: EventSummary, Summary: sum, Duration: sum.Duration})
	return sum
}

func (r *runner) emit(e Event) {
	e.Time = time.Now()
	e.Mode = r.mode
	if r.o.Reporter != nil {
		r.o.Reporter.Event(e)
	}
}

func (r *runner) runRole(ctx context.Context, p Plan) {
	if len(p.Hosts) == 0 {
		return
	}
	if !r.roleSelected(p.Role) {
		return
	}
	var live []*hostState
	for _, h := range p.Hosts {
		if hs := r.hosts[h.Name]; !hs.done {
			live = append(live, hs)
		}
	}
	batches := Batches(len(live), p.Role.Serial)
	start := 0
	for bi, size := range batches {
		if ctx.Err() != nil {
			return
		}
		batch := live[start : start+size]
		start += size
		if len(batches) > 1 {
			names := make([]string, len(batch))
			for i, hs := range batch {
				names[i] = hs.info.Name
			}
			r.emit(Event{Type: EventNotice, Role: p.Role.Name, Message: fmt.Sprintf("role %s: batch %d/%d: %s", p.Role.Name, bi+1, len(batches), strings.Join(names, ", "))})
		}
		r.runBatch(ctx, p.Role, batch)
		if mf := p.Role.MaxFailPercentage; mf != nil {
			failed := 0
			for _, hs := range batch {
				if hs.done {
					failed++
				}
			}
			if pct := float64(failed) * 100 / float64(len(batch)); pct > *mf {
				msg := fmt.Sprintf("role %s stopped after batch %d/%d: %d of %d hosts failed (%.0f%% > max_fail_percentage %g%%)", p.Role.Name, bi+1, len(batches), failed, len(batch), pct, *mf)
				if rest := live[start:]; len(rest) > 0 {
					names := make([]string, len(rest))
					for i, hs := range rest {
						names[i] = hs.info.Name
					}
					msg += "; not run: " + strings.Join(names, ", ")
				}
				r.mu.Lock()
				r.notes = append(r.notes, msg)
				r.mu.Unlock()
				r.emit(Event{Type: EventNotice, Role: p.Role.Name, Message: msg})
				return
			}
		}
	}
}

// runBatch runs the role on the hosts of one batch, at most Forks at once.
func (r *runner) runBatch(ctx context.Context, role *policy.Role, batch []*hostState) {
	sem := make(chan struct{}, r.o.Forks)
	var wg sync.WaitGroup
	for _, hs := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.runHost(ctx, role, hs)
		}()
	}
	wg.Wait()
}

// Batches splits n hosts by a serial plan: each entry an int (hosts) or a
// "N%" string (of n, at least 1); the last size repeats until every host
// is placed. An empty plan is one batch of all hosts.
func Batches(n int, serial []any) []int {
	if n == 0 {
		return nil
	}
	if len(serial) == 0 {
		return []int{n}
	}
	var out []int
	left := n
	for i := 0; left > 0; i++ {
		spec := serial[min(i, len(serial)-1)]
		size := 0
		switch v := spec.(type) {
		case int:
			size = v
		case int64:
			size = int(v)
		case float64:
			size = int(v)
		case string:
			var pct float64
			if _, err := fmt.Sscanf(strings.TrimSuffix(v, "%"), "%g", &pct); err == nil {
				size = int(float64(n) * pct / 100)
			}
		}
		size = max(1, min(size, left))
		out = append(out, size)
		left -= size
	}
	return out
}

// hostRun is one role on one host.
type hostRun struct {
	r        *runner
	role     *policy.Role
	hs       *hostState
	host     providers.Host
	base     map[string]any
	notified map[string]bool
	// window is how many probes the next batch may carry: maxBatch while
	// resources check clean (a no-op run is one round trip), back to 1
	// after a change, since a change may make the probes read after it
	// stale and they would be read again anyway.
	window int
}

func (r *runner) runHost(ctx context.Context, role *policy.Role, hs *hostState) {
	start := time.Now()
	name := hs.info.Name
	r.mu.Lock()
	hs.started = true
	r.mu.Unlock()
	r.emit(Event{Type: EventHostStart, Host: name, Role: role.Name})
	end := func() {
		st := hs.stats
		r.emit(Event{Type: EventHostEnd, Host: name, Role: role.Name, Stats: &st, Duration: time.Since(start).Seconds()})
	}
	h, err := r.o.Connector.Connect(ctx, role, hs.info)
	if err != nil {
		if ctx.Err() != nil {
			r.fail(hs, role, "connect", "", fmt.Errorf("%w while connecting", ErrInterrupted))
		} else {
			r.unreachable(hs, role, err)
		}
		end()
		return
	}
	if hs.facts == nil && r.o.SkipFacts {
		hs.facts = Facts{}
	}
	if hs.facts == nil && r.needFacts[role] {
		fctx, cancel := r.cmdCtx(ctx, hs)
		f, err := GatherFacts(fctx, h)
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				r.fail(hs, role, "facts", "", fmt.Errorf("%w while gathering facts", ErrInterrupted))
			case isUnreachable(err):
				r.unreachable(hs, role, err)
			default:
				r.fail(hs, role, "facts", "", err)
			}
			end()
			return
		}
		hs.facts = f
	}
	hr := &hostRun{r: r, role: role, hs: hs, host: h, notified: map[string]bool{}, window: maxBatch}
	hr.base = mergeVars(r.o.Policy.Vars, hs.info.Vars, role.Vars)
	if role.When != "" {
		ok, err := r.o.Eval.EvalBool(role.When, hr.scope(nil, nil))
		if err != nil {
			r.fail(hs, role, "role "+role.Name+" when", "", fmt.Errorf("%s: when: %w", role.KeyPos("when"), err))
			end()
			return
		}
		if !ok {
			hs.stats.Skipped++
			r.emit(Event{Type: EventResource, Host: name, Role: role.Name, Resource: "role " + role.Name, Status: StatusSkipped, Message: "when is false: " + role.When})
			end()
			return
		}
	}
	if hr.runList(ctx, role.Pre, false) && hr.runList(ctx, role.Resources, false) {
		ok := hr.flushHandlers(ctx)
		if ok && hr.runList(ctx, role.Post, false) {
			hr.flushHandlers(ctx)
		}
	}
	end()
}

// commandGrace is how long past command_timeout the engine waits before it
// cancels a step (a probe batch, an apply) itself. The connection enforces
// command_timeout on every command and its error names the timeout; the
// engine's deadline is only the backstop for hosts that do not, and must
// not race the connection's own (which made the message read "exceeded
// the deadline" instead of naming command_timeout).
const commandGrace = 15 * time.Second

func (r *runner) cmdCtx(ctx context.Context, hs *hostState) (context.Context, context.CancelFunc) {
	if hs.info.CommandTimeout > 0 {
		return context.WithTimeout(ctx, hs.info.CommandTimeout+commandGrace)
	}
	return context.WithCancel(ctx)
}

func isUnreachable(err error) bool {
	var u unreachableErr
	return errors.As(err, &u) && u.Unreachable()
}

func (r *runner) unreachable(hs *hostState, role *policy.Role, err error) {
	r.mu.Lock()
	hs.stats.Unreachable = 1
	hs.stats.Error = err.Error()
	hs.done = true
	r.mu.Unlock()
	r.emit(Event{Type: EventResource, Host: hs.info.Name, Role: role.Name, Status: StatusUnreachable, Error: err.Error()})
}

func (r *runner) fail(hs *hostState, role *policy.Role, label, typ string, err error) {
	r.mu.Lock()
	hs.stats.Failed++
	hs.stats.Error = err.Error()
	hs.done = true
	r.mu.Unlock()
	r.emit(Event{Type: EventResource, Host: hs.info.Name, Role: role.Name, Resource: label, ResourceType: typ, Status: StatusFailed, Error: err.Error()})
}

// scope builds the variables visible to one resource instance, lowest to
// highest: policy < inventory < role (hr.base) < resource vars < registered
// < extra vars; then the read-only facts and host namespaces, and item.
func (hr *hostRun) scope(resVars map[string]any, item any) map[string]any {
	s := mergeVars(hr.base, resVars, hr.hs.registered, hr.r.o.ExtraVars)
	s["facts"] = map[string]any(hr.hs.facts)
	s["host"] = map[string]any{"name": hr.hs.info.Name, "address": hr.hs.info.Address, "groups": hr.hs.info.Groups}
	if item != nil {
		s["item"] = item
	}
	return s
}

func mergeVars(layers ...map[string]any) map[string]any {
	n := 0
	for _, l := range layers {
		n += len(l)
	}
	out := make(map[string]any, n+3)
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return out
}

// instance is one resource (one loop item) rendered for one host. Its req
// is built once (with its own providers.Memo) and kept for the instance's
// probe, check, apply, retries and re-check: providers keep what they
// compute once (a rendered template) in that Memo, so req must not be
// rebuilt for any of them.
type instance struct {
	orig    *policy.Resource
	res     *policy.Resource // rendered
	label   string
	typ     string
	scope   map[string]any
	prov    providers.Provider
	req     *providers.Request
	probe   string
	err     error
	skip    string
	handler bool

	probed     bool
	lastAction providers.Action
	result     connection.Result
}

// expand turns one policy resource into its instances for this host.
func (hr *hostRun) expand(res *policy.Resource, handler bool) []*instance {
	reg := hr.r.o.Registry
	baseLabel := res.DefaultLabel(reg)
	scope := hr.scope(res.Vars, nil)
	items := []any{nil}
	if res.Loop != nil {
		list, err := hr.loopItems(res.Loop, scope)
		if err != nil {
			return []*instance{{orig: res, label: baseLabel, typ: res.Type, err: fmt.Errorf("%s: loop: %w", res.KeyPos("loop"), err), handler: handler}}
		}
		items = list
	}
	out := make([]*instance, 0, len(items))
	for _, item := range items {
		in := &instance{orig: res, label: baseLabel, typ: res.Type, handler: handler}
		out = append(out, in)
		in.scope = scope
		if item != nil {
			in.scope = hr.scope(res.Vars, item)
			in.label = fmt.Sprintf("%s (item=%v)", baseLabel, item)
		}
		if res.When != "" {
			ok, err := hr.r.o.Eval.EvalBool(res.When, in.scope)
			if err != nil {
				in.err = fmt.Errorf("%s: when: %w", res.KeyPos("when"), err)
				continue
			}
			if !ok {
				in.skip = "when is false: " + res.When
				continue
			}
		}
		rendered, err := res.Render(reg, func(s string) (string, error) { return hr.r.o.Eval.RenderString(s, in.scope) })
		if err != nil {
			in.err = err
			continue
		}
		in.res = rendered
		if item == nil {
			in.label = rendered.DefaultLabel(reg)
		} else {
			in.label = fmt.Sprintf("%s (item=%v)", rendered.DefaultLabel(reg), item)
		}
		p, ok := hr.r.o.Lookup(res.Type)
		if !ok {
			in.err = fmt.Errorf("no provider for resource type %q", res.Type)
			continue
		}
		in.prov = p
		in.req = hr.request(rendered, in.scope)
		probe, err := safeProbe(p, in.req)
		if err != nil {
			in.err = err
			continue
		}
		in.probe = probe
	}
	return out
}

func (hr *hostRun) loopItems(loop any, scope map[string]any) ([]any, error) {
	switch l := loop.(type) {
	case []any:
		return l, nil
	case string:
		v, err := hr.r.o.Eval.Eval(l, scope)
		if err != nil {
			return nil, err
		}
		switch vv := v.(type) {
		case []any:
			return vv, nil
		case []string:
			out := make([]any, len(vv))
			for i, s := range vv {
				out[i] = s
			}
			return out, nil
		case map[string]any:
			keys := make([]string, 0, len(vv))
			for k := range vv {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			out := make([]any, len(keys))
			for i, k := range keys {
				out[i] = map[string]any{"key": k, "value": vv[k]}
			}
			return out, nil
		}
		return nil, fmt.Errorf("expression %q gives %T, want a list", l, v)
	}
	return nil, fmt.Errorf("loop must be a list or an expression, got %T", loop)
}

func (hr *hostRun) request(res *policy.Resource, scope map[string]any) *providers.Request {
	ev := hr.r.o.Eval
	dir := hr.r.o.Policy.Dir
	return &providers.Request{
		Spec:  res.Spec,
		Facts: hr.hs.facts,
		Memo:  new(providers.Memo),
		Eval: func(e string, extra map[string]any) (any, error) {
			return ev.Eval(e, mergeVars(scope, extra))
		},
		Render:   func(p string) ([]byte, error) { return ev.RenderFile(p, scope) },
		Progress: hr.uploadProgress(res),
		Sum: func(p string) (string, int64, error) {
			full, err := LocalPath(dir, p)
			if err != nil {
				return "", 0, err
			}
			return hr.r.sums.sum(full)
		},
		Open: func(p string) (io.ReadCloser, int64, error) {
			full, err := LocalPath(dir, p)
			if err != nil {
				return nil, 0, err
			}
			f, err := os.Open(full)
			if err != nil {
				return nil, 0, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			return f, fi.Size(), nil
		},
	}
}

// uploadSink is implemented by reporters that show upload progress.
type uploadSink interface {
	Upload(host, path string, written, total int64)
}

func (hr *hostRun) uploadProgress(res *policy.Resource) func(written, total int64) {
	sink, ok := hr.r.o.Reporter.(uploadSink)
	if !ok {
		return nil
	}
	label := res.DefaultLabel(hr.r.o.Registry)
	return func(written, total int64) { sink.Upload(hr.hs.info.Name, label, written, total) }
}

// runList processes resources in order; it returns false when the host
// failed (and must stop).
func (hr *hostRun) runList(ctx context.Context, list []*policy.Resource, handler bool) bool {
	var pending []*instance
	next := 0
	var recheck *instance
	for {
		if ctx.Err() != nil {
			return false
		}
		for len(pending) == 0 && next < len(list) {
			res := list[next]
			next++
			if !handler && !hr.selected(res) {
				continue
			}
			pending = hr.expand(res, handler)
			if handler {
				// Handlers are filtered by the caller.
				break
			}
		}
		if len(pending) == 0 {
			break
		}
		in := pending[0]
		if in.needsProbe() {
			// Read ahead: expand following resources while their scope
			// cannot change (no register in between), then probe the
			// window in one round trip, with any pending re-check first.
			for len(pending) < maxBatch && next < len(list) && pending[len(pending)-1].orig.Register == "" && !handler {
				res := list[next]
				if !hr.selected(res) {
					next++
					continue
				}
				next++
				pending = append(pending, hr.expand(res, handler)...)
			}
			if !hr.probeBatch(ctx, recheck, pending, hr.window) {
				return false
			}
			if recheck != nil {
				if !hr.finishRecheck(recheck) {
					return false
				}
				recheck = nil
			}
		}
		pending = pending[1:]
		ok, changed := hr.process(ctx, in)
		if !ok {
			return false
		}
		if changed && !hr.r.o.Check {
			// Probes read before this change may be stale.
			for _, p := range pending {
				p.probed = false
			}
			if in.needsRecheck() {
				recheck = in
			}
			hr.window = 1
		} else {
			hr.window = min(2*hr.window, maxBatch)
		}
	}
	if recheck != nil {
		if !hr.probeBatch(ctx, recheck, nil, 0) {
			return false
		}
		return hr.finishRecheck(recheck)
	}
	return true
}

func (in *instance) needsProbe() bool {
	return in.err == nil && in.skip == "" && in.probe != "" && !in.probed
}

func (in *instance) needsRecheck() bool { return in.lastAction != providers.Run }

// probeBatch runs the re-check probe (if any) and the probes of the first
// limit pending instances that need one, in one round trip where the host
// can.
func (hr *hostRun) probeBatch(ctx context.Context, recheck *instance, pending []*instance, limit int) bool {
	var targets []*instance
	var scripts []string
	if recheck != nil {
		recheck.probed = false
		targets = append(targets, recheck)
		scripts = append(scripts, recheck.probe)
	}
	n := 0
	for _, p := range pending {
		if n >= limit {
			break
		}
		if p.needsProbe() {
			targets = append(targets, p)
			scripts = append(scripts, p.probe)
			n++
		}
	}
	if len(scripts) == 0 {
		return true
	}
	// Identical probes (several line resources on one file) run once:
	// probes only read, so one result serves them all.
	unique, index := dedupe(scripts)
	cctx, cancel := hr.r.cmdCtx(ctx, hr.hs)
	defer cancel()
	var uresults []connection.Result
	var err error
	if b, ok := hr.host.(batchRunner); ok {
		probes := make([]connection.Probe, len(unique))
		for i, s := range unique {
			probes[i] = connection.Probe{Script: s, Inline: true}
		}
		// A script runs inline only when every resource that sent it
		// may run inline (identical scripts normally come from one type).
		for i, t := range targets {
			p := &probes[index[i]]
			if ip, ok := t.prov.(inlineProber); ok && p.Inline {
				for _, v := range ip.ProbeVars() {
					if !slices.Contains(p.Vars, v) {
						p.Vars = append(p.Vars, v)
					}
				}
			} else {
				p.Inline = false
			}
		}
		sent, prelude := withPrelude(targets, index, probes)
		uresults, err = b.RunProbes(cctx, sent)
		if err == nil && prelude {
			uresults = uresults[1 : len(uresults)-1]
		}
	} else {
		for _, s := range unique {
			var res connection.Result
			res, err = hr.host.Run(cctx, s, nil)
			if err != nil {
				break
			}
			uresults = append(uresults, res)
		}
	}
	var results []connection.Result
	if err == nil {
		results = make([]connection.Result, len(scripts))
		for i, j := range index {
			results[i] = uresults[j]
		}
	}
	if err != nil {
		t := targets[0]
		switch {
		case ctx.Err() != nil:
			hr.r.fail(hr.hs, hr.role, t.label, t.typ, fmt.Errorf("%w while checking", ErrInterrupted))
		case isUnreachable(err):
			hr.r.unreachable(hr.hs, hr.role, err)
		default:
			hr.r.fail(hr.hs, hr.role, t.label, t.typ, fmt.Errorf("check: %w", err))
		}
		return false
	}
	for i, t := range targets {
		t.result = results[i]
		t.probed = true
	}
	return true
}

// withPrelude returns probes with a providers.ProbePrelude before them and
// the probe that unsets its variables after them, and true, when two or
// more of the inline probes look at paths (one stat and one sha256sum for
// them all instead of one each); otherwise probes unchanged, and false.
func withPrelude(targets []*instance, index []int, probes []connection.Probe) ([]connection.Probe, bool) {
	var paths []providers.ProbedPath
	distinct := map[string]bool{}
	for i, t := range targets {
		pp, ok := t.prov.(pathProber)
		if !ok || !probes[index[i]].Inline {
			continue
		}
		if p, ok := pp.ProbePath(t.req); ok {
			paths = append(paths, p)
			distinct[p.Path] = true
		}
	}
	if len(distinct) < 2 {
		return probes, false
	}
	pre, vars := providers.ProbePrelude(paths)
	out := make([]connection.Probe, 0, len(probes)+2)
	out = append(out, connection.Probe{Script: pre, Inline: true})
	out = append(out, probes...)
	return append(out, connection.Probe{Script: ":", Inline: true, Vars: vars}), true
}

// finishRecheck checks a just-applied resource again from its fresh probe:
// it must now check clean.
func (hr *hostRun) finishRecheck(in *instance) bool {
	ch, err := safeCheck(context.Background(), in.prov, in.req, in.result)
	if err == nil && ch.Changed() {
		err = fmt.Errorf("did not converge: after apply it still checks as %s%s", ch.Action, describeFields(ch))
	}
	if err != nil {
		hr.r.fail(hr.hs, hr.role, in.label, in.typ, err)
		return false
	}
	return true
}

func describeFields(ch *providers.Change) string {
	if len(ch.Fields) == 0 || ch.Sensitive {
		return ""
	}
	parts := make([]string, len(ch.Fields))
	for i, f := range ch.Fields {
		parts[i] = fmt.Sprintf("%s: %s -> %s", f.Name, f.Before, f.After)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// process checks one instance and, in apply mode, applies it. It returns
// whether the host may go on, and whether the instance changed.
func (hr *hostRun) process(ctx context.Context, in *instance) (ok, changed bool) {
	evType := EventResource
	if in.handler {
		evType = EventHandler
	}
	ev := Event{Type: evType, Host: hr.hs.info.Name, Role: hr.role.Name, Resource: in.label, ResourceType: in.typ}
	failed := func(err error, res *connection.Result) (bool, bool) {
		ev.Status = StatusFailed
		ev.Error = err.Error()
		if res != nil {
			rc := res.ExitCode
			ev.RC = &rc
			ev.Stdout, ev.Stderr = string(res.Stdout), string(res.Stderr)
		}
		ignore := in.orig.IgnoreErrors && !errors.Is(err, ErrInterrupted)
		hr.r.mu.Lock()
		if ignore {
			ev.Status = StatusIgnored
			ev.Message = "error ignored (ignore_errors)"
			hr.hs.stats.Ignored++
		} else {
			hr.hs.stats.Failed++
			hr.hs.stats.Error = err.Error()
			hr.hs.done = true
		}
		hr.r.mu.Unlock()
		hr.register(in, res, false, true, false)
		hr.r.emit(ev)
		return ignore, false
	}
	if in.err != nil {
		return failed(in.err, nil)
	}
	if in.skip != "" {
		ev.Status = StatusSkipped
		ev.Message = in.skip
		hr.count(StatusSkipped)
		hr.register(in, nil, false, false, true)
		hr.r.emit(ev)
		return true, false
	}
	start := time.Now()
	// retries: attempts after the first, on failure or while until is
	// false (until alone retries 3 times, as Ansible does). Check mode
	// checks once.
	attempts := 1
	if !hr.r.o.Check {
		attempts += in.res.Retries
		if in.res.Until != "" && in.res.Retries == 0 {
			attempts += 3
		}
	}
	var ch *providers.Change
	var out *providers.Outcome
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			select {
			case <-time.After(in.res.Delay):
			case <-ctx.Done():
				return failed(fmt.Errorf("%w while waiting to retry", ErrInterrupted), nil)
			}
			in.probed = false
			if !hr.probeBatch(ctx, nil, []*instance{in}, 1) {
				return false, false
			}
		}
		ch, err = safeCheck(ctx, in.prov, in.req, in.result)
		if err != nil {
			return failed(err, nil)
		}
		out = nil
		if ch.Changed() && !hr.r.o.Check {
			cctx, cancel := hr.r.cmdCtx(ctx, hr.hs)
			out, err = safeApply(cctx, in.prov, hr.host, in.req, ch)
			cancel()
			if err != nil {
				var res *connection.Result
				if out != nil {
					res = out.Result
				}
				if ctx.Err() != nil {
					return failed(fmt.Errorf("%w: stopped before it finished", ErrInterrupted), res)
				}
				if isUnreachable(err) {
					hr.r.unreachable(hr.hs, hr.role, err)
					return false, false
				}
				if attempt < attempts {
					continue
				}
				return failed(fmt.Errorf("apply: %w", err), res)
			}
		}
		if in.res.Until == "" || hr.r.o.Check {
			break
		}
		var res *connection.Result
		if out != nil {
			res = out.Result
		}
		rv := resultVars(res, ch.Changed(), false)
		uscope := mergeVars(in.scope, rv)
		if in.orig.Register != "" {
			uscope[in.orig.Register] = rv
		}
		done, err := hr.r.o.Eval.EvalBool(in.res.Until, uscope)
		if err != nil {
			return failed(fmt.Errorf("%s: until: %w", in.orig.KeyPos("until"), err), res)
		}
		if done {
			break
		}
		if attempt == attempts {
			return failed(fmt.Errorf("until %q still false after %d attempts", in.res.Until, attempts), res)
		}
	}
	in.lastAction = ch.Action
	changed = ch.Changed() && (out == nil || !out.Unchanged)
	ev.Change = ch
	ev.Duration = time.Since(start).Seconds()
	var res *connection.Result
	if out != nil && out.Result != nil {
		res = out.Result
		rc := res.ExitCode
		ev.RC = &rc
		if !ch.Sensitive {
			ev.Stdout, ev.Stderr = string(res.Stdout), string(res.Stderr)
		}
	}
	if ch.Message != "" {
		ev.Message = ch.Message
	}
	if changed {
		ev.Status = StatusChanged
		for _, n := range in.res.Notify {
			hr.notified[n] = true
		}
	} else {
		ev.Status = StatusOK
	}
	hr.count(ev.Status)
	hr.register(in, res, changed, false, false)
	hr.r.emit(ev)
	return true, changed
}

func (hr *hostRun) count(st Status) {
	hr.r.mu.Lock()
	hr.hs.stats.add(st)
	hr.r.mu.Unlock()
}

// resultVars are the variables a command's result gives changed_when,
// failed_when, until and register: rc, changed, failed, and stdout and
// stderr with trailing newlines removed (as Ansible does), each also split
// into lines (stdout_lines, stderr_lines).
func resultVars(res *connection.Result, changed, failed bool) map[string]any {
	m := map[string]any{"rc": 0, "changed": changed, "failed": failed}
	var stdout, stderr string
	if res != nil {
		m["rc"] = res.ExitCode
		stdout = strings.TrimRight(string(res.Stdout), "\r\n")
		stderr = strings.TrimRight(string(res.Stderr), "\r\n")
	}
	m["stdout"], m["stdout_lines"] = stdout, outputLines(stdout)
	m["stderr"], m["stderr_lines"] = stderr, outputLines(stderr)
	return m
}

// outputLines splits command output into lines ("" has none).
func outputLines(s string) []any {
	lines := []any{}
	if s == "" {
		return lines
	}
	for _, l := range strings.Split(s, "\n") {
		lines = append(lines, strings.TrimSuffix(l, "\r"))
	}
	return lines
}

func (hr *hostRun) register(in *instance, res *connection.Result, changed, failed, skipped bool) {
	if in.orig.Register == "" {
		return
	}
	m := resultVars(res, changed, failed)
	m["skipped"] = skipped
	hr.hs.registered[in.orig.Register] = m
}

// flushHandlers runs every notified handler once, in declaration order.
func (hr *hostRun) flushHandlers(ctx context.Context) bool {
	for _, h := range hr.role.Handlers {
		if !hr.notified[h.Name] {
			continue
		}
		delete(hr.notified, h.Name)
		if !hr.runList(ctx, []*policy.Resource{h}, true) {
			return false
		}
	}
	return true
}

func safeProbe(p providers.Provider, req *providers.Request) (s string, err error) {
	defer recoverInto(&err)
	return p.Probe(req)
}

func safeCheck(ctx context.Context, p providers.Provider, req *providers.Request, res connection.Result) (ch *providers.Change, err error) {
	defer recoverInto(&err)
	ch, err = p.Check(ctx, req, res)
	if err == nil && ch == nil {
		ch = &providers.Change{Action: providers.None}
	}
	return ch, err
}

func safeApply(ctx context.Context, p providers.Provider, h providers.Host, req *providers.Request, ch *providers.Change) (out *providers.Outcome, err error) {
	defer recoverInto(&err)
	return p.Apply(ctx, h, req, ch)
}

func recoverInto(err *error) {
	if v := recover(); v != nil {
		*err = fmt.Errorf("internal error (please report): panic: %v\n%s", v, debug.Stack())
	}
}

// selected applies --tags/--skip-tags to a resource; it inherits its
// role's tags.
func (hr *hostRun) selected(res *policy.Resource) bool {
	return resourceSelected(hr.r.o.Tags, hr.r.o.SkipTags, hr.role, res)
}

// roleSelected reports whether --tags/--skip-tags leave anything of role to
// run: a role is entered when one of its pre, main or post resources is
// selected, so a role's own tags never hide a resource whose tags match.
func (r *runner) roleSelected(role *policy.Role) bool {
	for _, list := range [][]*policy.Resource{role.Pre, role.Resources, role.Post} {
		for _, res := range list {
			if resourceSelected(r.o.Tags, r.o.SkipTags, role, res) {
				return true
			}
		}
	}
	return false
}

// resourceSelected applies --tags (only) and --skip-tags (skip) to res,
// whose tags are its own plus its role's: a skipped tag anywhere excludes
// it; with --tags, one matching tag (or the tag "all") selects it.
func resourceSelected(only, skip []string, role *policy.Role, res *policy.Resource) bool {
	tags := append(append([]string(nil), role.Tags...), res.Tags...)
	for _, t := range tags {
		if slices.Contains(skip, t) {
			return false
		}
	}
	if len(only) == 0 || slices.Contains(only, "all") {
		return true
	}
	for _, t := range tags {
		if slices.Contains(only, t) {
			return true
		}
	}
	return false
}

// dedupe returns the distinct scripts in order of first appearance, and
// for each script its position in that list.
func dedupe(scripts []string) (unique []string, index []int) {
	index = make([]int, len(scripts))
	seen := make(map[string]int, len(scripts))
	for i, s := range scripts {
		j, ok := seen[s]
		if !ok {
			j = len(unique)
			seen[s] = j
			unique = append(unique, s)
		}
		index[i] = j
	}
	return unique, index
}
