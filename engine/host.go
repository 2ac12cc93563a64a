package engine

// This file holds one role on one host (hostRun): connecting, facts, the
// role's when, the pre/resources/post lists with their probe read-ahead
// and re-checks, handlers, and the host's lasting state across roles
// (hostState: registered variables, stats, whether it stopped).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// unreachableErr is implemented by transport errors that mean the host is
// gone (as opposed to a command failing on it).
type unreachableErr interface{ Unreachable() bool }

// hostStop says why a host stopped: once it failed or became unreachable,
// nothing more runs on it, in this role or any later one.
type hostStop int

const (
	hostRunning hostStop = iota
	hostFailed
	hostUnreachable
)

// hostState is what the engine keeps per host across roles.
type hostState struct {
	info       *HostInfo
	facts      Facts
	registered map[string]any
	stats      Stats
	stop       hostStop
	started    bool // some role started on it
	// touched: something was applied on the host in this run.
	touched bool
}

// stopped reports whether the host failed or became unreachable.
func (hs *hostState) stopped() bool { return hs.stop != hostRunning }

// setError records err as the host's error (the recap's) unless the host
// had already stopped: a handler forced after a failure (forceHandlers)
// that fails too does not hide the failure that stopped the host. The
// caller holds the runner's mutex.
func (hs *hostState) setError(err error) {
	if hs.stop == hostRunning {
		hs.stats.Error = err.Error()
	}
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
	// gen counts the changes applied on the host in this role: a probe
	// result read at another gen may be stale.
	gen int
}

func (r *runner) runHost(ctx context.Context, role *policy.Role, hs *hostState) {
	start := time.Now()
	name := hs.info.Name
	r.mu.Lock()
	hs.started = true
	r.mu.Unlock()
	r.o.Hooks.HostStart(HostStart{Host: name, Role: role.Name})
	end := func() {
		r.o.Hooks.HostEnd(HostEnd{Host: name, Role: role.Name, Stats: hs.stats, Duration: time.Since(start).Seconds()})
	}
	cstart := time.Now()
	h, err := r.o.Connector.Connect(ctx, role, hs.info)
	r.o.Hooks.Phase(Phase{Host: name, Role: role.Name, Name: "connect", Duration: time.Since(cstart).Seconds()})
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
	if hs.facts == nil && r.needFacts[role] && r.o.Reuse != nil {
		hs.facts = r.o.Reuse.getFacts(name)
	}
	if hs.facts == nil && r.needFacts[role] {
		fctx, cancel := r.cmdCtx(ctx, hs)
		fstart := time.Now()
		f, err := GatherFacts(fctx, h)
		cancel()
		r.o.Hooks.Phase(Phase{Host: name, Role: role.Name, Name: "facts", Duration: time.Since(fstart).Seconds()})
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
		if r.o.Record != nil {
			r.o.Record.putFacts(name, f)
		}
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
			r.o.Hooks.Resource(ResourceResult{Host: name, Role: role.Name, Resource: "role " + role.Name, Status: StatusSkipped, Message: "when is false: " + role.When})
			end()
			return
		}
	}
	switch {
	case !hr.runList(ctx, role.Pre, "pre") || !hr.runList(ctx, role.Resources, "resources"):
		hr.forceHandlers(ctx)
	case !hr.flushHandlers(ctx):
		// A handler failed: the handlers after it do not run, forced
		// or not (as in Ansible).
	case !hr.runList(ctx, role.Post, "post"):
		hr.forceHandlers(ctx)
	default:
		hr.flushHandlers(ctx)
	}
	end()
}

// commandGrace is how long past command_timeout the engine waits before it
// cancels a step (a probe batch, an apply) itself. The connection enforces
// command_timeout on every command and its error names the timeout; the
// engine's deadline is only the backstop for hosts that do not, and must
// not race the connection's own: if it fired first, the error would read
// "exceeded the deadline" instead of naming command_timeout.
const commandGrace = 15 * time.Second

func (r *runner) cmdCtx(ctx context.Context, hs *hostState) (context.Context, context.CancelFunc) {
	return r.batchCtx(ctx, hs, 1)
}

// batchCtx is cmdCtx for n commands that run one after the other (a
// pipelined apply's batch), each bounded by command_timeout.
func (r *runner) batchCtx(ctx context.Context, hs *hostState, n int) (context.Context, context.CancelFunc) {
	if hs.info.CommandTimeout > 0 {
		return context.WithTimeout(ctx, time.Duration(max(n, 1))*hs.info.CommandTimeout+commandGrace)
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
	hs.setError(err)
	hs.stop = hostUnreachable
	r.mu.Unlock()
	r.o.Hooks.Resource(ResourceResult{Host: hs.info.Name, Role: role.Name, Status: StatusUnreachable, Error: err.Error()})
}

func (r *runner) fail(hs *hostState, role *policy.Role, label, typ string, err error) {
	r.mu.Lock()
	hs.stats.Failed++
	hs.setError(err)
	hs.stop = hostFailed
	r.mu.Unlock()
	r.o.Hooks.Resource(ResourceResult{Host: hs.info.Name, Role: role.Name, Resource: label, ResourceType: typ, Status: StatusFailed, Error: err.Error()})
}

// runList processes resources in order; it returns false when the host
// failed (and must stop). section is pre, resources or post (for the
// instances' IDs), "" for a handler.
func (hr *hostRun) runList(ctx context.Context, list []*policy.Resource, section string) bool {
	handler := section == ""
	id := func(i int) string {
		if handler {
			return hr.role.Name + "/handler/" + list[i].Name
		}
		return fmt.Sprintf("%s/%s/%d", hr.role.Name, section, i)
	}
	// Handlers are chosen by the caller (flushHandlers), resources by
	// their tags.
	want := func(res *policy.Resource) bool { return handler || hr.selected(res) }
	var pending []*instance
	next := 0
	var recheck *instance
	// probe reads the window of pending that needs probes, with the
	// pending re-check first, and finishes the re-check.
	probe := func() bool {
		if !hr.probeBatch(ctx, recheck, pending, hr.window) {
			return false
		}
		if recheck != nil {
			ok := hr.finishRecheck(recheck)
			recheck = nil
			return ok
		}
		return true
	}
	for {
		if ctx.Err() != nil {
			return false
		}
		for len(pending) == 0 && next < len(list) {
			res := list[next]
			next++
			if !want(res) {
				continue
			}
			pending = hr.expand(res, handler, id(next-1))
		}
		if len(pending) == 0 {
			break
		}
		in := pending[0]
		if in.needsProbe() {
			// Read ahead: expand following resources while their scope
			// cannot change (no register in between), then probe the
			// window in one round trip, with any pending re-check first.
			for len(pending) < maxBatch && next < len(list) && pending[len(pending)-1].orig.Register == "" {
				res := list[next]
				next++
				if !want(res) {
					continue
				}
				pending = append(pending, hr.expand(res, handler, id(next-1))...)
			}
			if !probe() {
				return false
			}
		}
		if hr.pipelining() {
			rest, ok, progressed := hr.pipeline(ctx, pending)
			if !ok {
				return false
			}
			if progressed || len(rest) != len(pending) {
				pending = rest
				continue
			}
			// pending[0] is a barrier: the classic path below, with a
			// fresh probe.
			if in.run.gen != hr.gen {
				in.run.probed = false
			}
			if in.needsProbe() {
				if !probe() {
					return false
				}
			}
		}
		pending = pending[1:]
		out := hr.process(ctx, in)
		if out == stopHost {
			return false
		}
		if out == changed && !hr.r.o.Check {
			// Probes read before this change may be stale.
			for _, p := range pending {
				p.run.probed = false
			}
			if in.needsRecheck() {
				recheck = in
			}
			hr.window = 1
			if hr.pipelining() {
				// A batch guards the probes it uses: read them all.
				hr.window = maxBatch
			}
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

// register saves in's result under its register name (if any): the
// command result res (nil for none) and in's status (changed, failed,
// skipped, ok).
func (hr *hostRun) register(in *instance, res *connection.Result, st Status) {
	if in.orig.Register == "" {
		return
	}
	m := resultVars(res, st == StatusChanged, st == StatusFailed)
	m["skipped"] = st == StatusSkipped
	hr.hs.registered[in.orig.Register] = m
}

// forced reports whether the role's handlers are forced: its
// force_handlers key when set, else --force-handlers (Options.ForceHandlers),
// as a play's force_handlers keyword beats ansible-playbook's flag.
func (hr *hostRun) forced() bool {
	if f := hr.role.ForceHandlers; f != nil {
		return *f
	}
	return hr.r.o.ForceHandlers
}

// forceHandlers is called when a resource of pre, resources or post
// stopped the host: when handlers are forced (forced) and the host failed
// (not unreachable, not interrupted), it runs the handlers notified before
// the failure, once each in declaration order, as flushHandlers does. The
// host stays failed; a handler that fails stops the ones after it.
func (hr *hostRun) forceHandlers(ctx context.Context) {
	if !hr.forced() || ctx.Err() != nil || len(hr.notified) == 0 {
		return
	}
	hr.r.mu.Lock()
	failed := hr.hs.stop == hostFailed
	hr.r.mu.Unlock()
	if !failed {
		return
	}
	var names []string
	for _, h := range hr.role.Handlers {
		if hr.notified[h.Name] {
			names = append(names, fmt.Sprintf("%q", h.Name))
		}
	}
	hr.r.o.Hooks.Notice(Notice{Role: hr.role.Name, Message: fmt.Sprintf("%s: failed in role %s; running the handlers notified before the failure (force_handlers): %s", hr.hs.info.Name, hr.role.Name, strings.Join(names, ", "))})
	hr.flushHandlers(ctx)
}

// flushHandlers runs every notified handler once, in declaration order,
// as one list (its probes in one batch, its changes in one more): up to
// and including the first that notifies handlers itself, since those may
// come after it in the order; then the notified ones after it likewise.
func (hr *hostRun) flushHandlers(ctx context.Context) bool {
	for from := 0; from < len(hr.role.Handlers); {
		var list []*policy.Resource
		for ; from < len(hr.role.Handlers); from++ {
			h := hr.role.Handlers[from]
			if !hr.notified[h.Name] {
				continue
			}
			delete(hr.notified, h.Name)
			list = append(list, h)
			if len(h.Notify) > 0 {
				from++
				break
			}
		}
		if len(list) > 0 && !hr.runList(ctx, list, "") {
			return false
		}
	}
	return true
}
