package engine

// This file holds the pipelined apply (docs/engine.md, "The pipelined
// apply"): the changes of a host's probed instances sent as one batch of
// steps, each guarded by its probe run again on the host and compared
// with what the check used, the batch stopping on the host at the first
// failed guard or change, each change re-checked right behind it in the
// same batch.

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/providers"
)

// stepRunner is a host that runs the steps of a pipelined apply in one
// round trip (connection.SSHHost, connection.Local).
type stepRunner interface {
	RunSteps(ctx context.Context, steps []connection.Step) ([]connection.Result, error)
}

const (
	// maxGuard bounds the probe output a guard compares: the expected
	// output travels inside the batch. An instance whose probe printed
	// more is applied on its own (the classic path).
	maxGuard = 256 << 10
	// maxDrifts is how many failed guards an instance may have in a run
	// before it is applied on its own: a probe whose output changes at
	// every read (a clock in it) would otherwise never pass its guard.
	maxDrifts = 3
)

// entry is one instance in a batch: a change to make, or (after the
// first change of the batch) an unchanged instance whose state must
// still be as checked, or a skipped instance reported in its place.
type entry struct {
	in   *instance
	a    attempt
	step providers.Step
	// passive: a skipped instance, only reported in order.
	passive bool
	// stop: the instance's check failed; the batch stops before it
	// and reads its probe again.
	stop bool
	// ownGuard, recheckNow, deferred: see planBatch.
	ownGuard, recheckNow bool
	deferred             int
	// recheckBy is the next entry, whose guard reads the same probe
	// right after this entry's change and so is its re-check;
	// showsRecheck is the entry whose re-check this one's guard is.
	recheckBy, showsRecheck *entry
	// Positions of the entry's steps in the batch (-1: none).
	guard, fallback, apply, recheck int
}

// pipelining reports whether apply mode sends changes in batches on this
// host.
func (hr *hostRun) pipelining() bool {
	if hr.r.o.Check || hr.r.o.Sequential {
		return false
	}
	_, ok := hr.host.(stepRunner)
	return ok
}

// pipelinable reports whether in, probed, may go into a batch: its type
// has a step form, it has no retries or until, its probe output can be
// guarded, and its guard has not failed too often.
func pipelinable(in *instance, attempts int) bool {
	if in.err != nil || in.skip != "" || in.probe == "" || !in.run.probed || attempts != 1 || in.run.drifts >= maxDrifts {
		return false
	}
	if _, ok := in.prov.(providers.Stepper); !ok {
		return false
	}
	out := in.run.result.Stdout
	return len(out) <= maxGuard && bytes.IndexByte(out, 0) < 0
}

// pipeline processes the leading instances of pending that can be
// pipelined: the unchanged ones before the first change are reported at
// once; from the first change on, every instance goes into the batch,
// which is sent when an instance that cannot be pipelined comes (a
// barrier: no step form, retries, until, an unprobed instance, ...) or
// pending ends. It returns the instances still to process (those the
// batch did not get to, first) and whether the host goes on; progressed
// is false when pending[0] is a barrier and nothing was done.
func (hr *hostRun) pipeline(ctx context.Context, pending []*instance) (rest []*instance, ok, progressed bool) {
	var seg []*entry
	open := false
	// predicted holds, by probe script, what a probe will print once the
	// batch's changes so far are made (providers.Predictor).
	predicted := map[string]connection.Result{}
	i := 0
loop:
	for ; i < len(pending); i++ {
		in := pending[i]
		guess := false
		if r, ok := predicted[in.probe]; ok && in.probe != "" && in.run.probed {
			// Checked from the state the batch will have made; never
			// "as probed" (gen -1): it is guarded like a stale probe.
			in.run.result, in.run.gen, guess = r, -1, true
		}
		if in.err == nil && in.skip != "" {
			if open {
				seg = append(seg, &entry{in: in, passive: true})
			} else if hr.process(ctx, in) == stopHost {
				return nil, false, true
			}
			continue
		}
		if !pipelinable(in, hr.attempts(in)) {
			break
		}
		a := hr.decide(in, guess)
		if a.err != nil {
			if !open {
				// The classic path reports it.
				break
			}
			// Checked from a probe read before the batch's changes,
			// which may have made it checkable (a line in a file a
			// template creates): the batch stops there and reads the
			// probe again, and the instance is checked again.
			seg = append(seg, &entry{in: in, a: a, stop: true})
			i++
			break
		}
		if !a.change.Changed() {
			if !open && in.run.gen == hr.gen {
				// Probed since the host's last change: as checked.
				if hr.report(in, a, 0) == stopHost {
					return nil, false, true
				}
				continue
			}
			seg = append(seg, &entry{in: in, a: a})
			continue
		}
		st, ok, err := in.prov.(providers.Stepper).ApplyStep(in.req, a.change)
		switch {
		case err != nil:
			a.err = fmt.Errorf("apply: %w", err)
			if len(seg) == 0 {
				return nil, hr.report(in, a, 0) != stopHost, true
			}
			break loop // the classic path reports it after the batch
		case !ok:
			break loop
		}
		seg = append(seg, &entry{in: in, a: a, step: st})
		open = true
		delete(predicted, in.probe)
		if pr, ok := in.prov.(providers.Predictor); ok {
			if r, ok := pr.PredictProbe(in.req, in.run.result, a.change); ok {
				predicted[in.probe] = r
			}
		}
	}
	progressed = i > 0
	if len(seg) == 0 {
		return pending[i:], true, progressed
	}
	// The instances after the batch keep their probes: a batch guards
	// them, and the classic path reads a barrier's again when the host
	// changed since (runList).
	requeue, ok := hr.flush(ctx, seg)
	return append(requeue, pending[i:]...), ok, true
}

// guardScript is a step that exits 0 when in's probe, run again now,
// prints what the check used (stdout and exit status), else 1. The probe
// runs through eval in a command substitution with stdin from /dev/null
// and stderr discarded, in a subshell of its own unless its provider
// keeps the inline contract (a probe that may exit must not end the
// substitution before its status is printed). With show, the step
// prints what the probe printed followed by "rc=" and its status
// (guardRecheck reads it): the re-check of the change before it, when
// both read the same probe.
func guardScript(in *instance, show bool) string {
	want := string(in.run.result.Stdout) + "rc=" + strconv.Itoa(in.run.result.ExitCode)
	s := "g=$( " + evalProbe(in) + " </dev/null 2>/dev/null; printf 'rc=%s' \"$?\" )\n"
	if show {
		s += "printf '%s' \"$g\"\n"
	}
	return s + "[ \"$g\" = " + shell.Quote(want) + " ]\n"
}

// evalProbe is the sh command that runs in's probe through eval: in a
// subshell of its own (a probe may exit), or in the current shell when
// its provider keeps the inline contract (it does not exit).
func evalProbe(in *instance) string {
	if _, ok := in.prov.(providers.InlineProber); ok {
		return "{ eval " + shell.Quote(in.probe) + "; }"
	}
	return "( eval " + shell.Quote(in.probe) + " )"
}

// guardRecheck is the probe result a guard with show printed: its
// output up to the last "rc=", and the status after it.
func guardRecheck(g connection.Result) (connection.Result, bool) {
	i := bytes.LastIndex(g.Stdout, []byte("rc="))
	if i < 0 {
		return connection.Result{}, false
	}
	code, err := strconv.Atoi(string(g.Stdout[i+3:]))
	if err != nil {
		return connection.Result{}, false
	}
	return connection.Result{Stdout: g.Stdout[:i], ExitCode: code}, true
}

// flush sends seg's steps in one batch and reports each entry in order.
// It returns the instances to process again (the entries from the first
// failed or unreached guard on, with a fresh probe for a failed guard)
// and whether the host goes on.
func (hr *hostRun) flush(ctx context.Context, seg []*entry) (requeue []*instance, ok bool) {
	var steps []connection.Step
	add := func(st connection.Step) int {
		steps = append(steps, st)
		return len(steps) - 1
	}
	plan := planBatch(seg)
	verify := -1
	if plan.verify != "" {
		verify = add(connection.Step{Script: plan.verify, Mode: connection.StepStop})
		// When it fails, the probes of what it verified are read again
		// right behind it.
		for _, e := range plan.verified {
			e.fallback = add(probeStep(e.in, connection.StepOnStop))
		}
	}
	changes := 0
	for _, e := range seg {
		e.guard, e.apply, e.recheck = -1, -1, -1
		if e.passive {
			continue
		}
		if e.stop || e.ownGuard {
			guard := guardScript(e.in, e.showsRecheck != nil)
			if e.stop {
				guard = "exit 1"
			}
			e.guard = add(connection.Step{Script: guard, Mode: connection.StepStop})
			e.fallback = add(connection.Step{Script: e.in.probe, Mode: connection.StepOnStop})
		}
		if e.stop || !e.a.change.Changed() {
			continue
		}
		changes++
		e.apply = add(connection.Step{Script: e.step.Script, Stdin: e.step.Stdin, Mode: connection.StepStop, Temp: e.step.Temp,
			WriteTo: e.step.WriteTo, WriteMode: e.step.WriteMode})
		if e.recheckNow && e.recheckBy == nil {
			e.recheck = add(probeStep(e.in, connection.StepGo))
		}
	}
	// The other re-checks, once the batch is done, in one prelude;
	// StepAlways: also when it stopped, for the changes made before.
	deferredAt := len(steps)
	for _, p := range plan.deferred.Probes() {
		add(connection.Step{Script: p.Script, Inline: p.Inline, Vars: p.Vars, Mode: connection.StepAlways})
	}
	sr := hr.host.(stepRunner)
	// The connection bounds each step by command_timeout; the engine's
	// backstop bounds the batch.
	cctx, cancel := hr.r.batchCtx(ctx, hr.hs, len(steps))
	start := time.Now()
	results, err := sr.RunSteps(cctx, steps)
	cancel()
	took := time.Since(start)
	hr.r.o.Hooks.Phase(Phase{Host: hr.hs.info.Name, Role: hr.role.Name, Name: "apply", Duration: took.Seconds(), Count: changes})
	share := took / time.Duration(max(1, len(seg)))
	get := func(i int) (connection.Result, bool) {
		if i < 0 || i >= len(results) {
			return connection.Result{}, false
		}
		return results[i], true
	}
	// lost reports the transport error err at e, whose steps did not all
	// come back.
	// lost reports the transport error err at e, whose step (what: its
	// guard, change or re-check) did not come back.
	lost := func(e *entry, what string) (requeue []*instance, ok bool) {
		a := e.a
		a.unreachable, _, a.err = applyErr(ctx, err)
		if err == nil {
			a.err = fmt.Errorf("apply: the batch's results ended before this resource's %s (%d of %d steps): an opsmop bug, please report it", what, len(results), len(steps))
		}
		if !a.unreachable && ctx.Err() == nil && err != nil {
			switch what {
			case "guard":
				a.err = fmt.Errorf("apply: reading its state again before the change: %w (nothing applied)", err)
			case "change":
				a.err = fmt.Errorf("apply: %w (it may or may not have been applied)", err)
			default:
				a.err = fmt.Errorf("apply: applied, then its re-check: %w", err)
			}
		}
		hr.report(e.in, a, share)
		return nil, false
	}
	// converged is false once a change did not check clean right after
	// it: the host stops after the batch, whose later steps ran (they
	// are reported as they went).
	converged := true
	if verify >= 0 {
		v, got := get(verify)
		if !got {
			return lost(seg[0], "guard")
		}
		if v.ExitCode != 0 {
			// Some state is not what the check saw (changed by hand
			// since the probe): nothing was applied; the entries are
			// checked again from the probes read right behind it.
			// An entry whose probe now prints something else has
			// drifted; when none has (the step itself failed), all
			// count as drifted, so that a batch cannot fail forever.
			drifted := 0
			for _, e := range plan.verified {
				fb, got := get(e.fallback)
				if !got || fb.NotRun {
					e.in.run.probed = false
					e.in.run.drifts++
					drifted++
					continue
				}
				if !bytes.Equal(fb.Stdout, e.in.run.result.Stdout) || fb.ExitCode != e.in.run.result.ExitCode {
					e.in.run.drifts++
					drifted++
				}
				e.in.run.result, e.in.run.probed, e.in.run.gen = fb, true, hr.gen
			}
			if drifted == 0 {
				for _, e := range plan.verified {
					e.in.run.drifts++
				}
			}
			return instances(seg), converged
		}
	}
	// The deferred re-checks, by entry.
	var deferred []connection.Result
	if n := plan.deferred.Len(); n > 0 && len(results) > deferredAt {
		deferred, _ = plan.deferred.Results(results[deferredAt:])
	}
	for k, e := range seg {
		if e.passive {
			hr.process(ctx, e.in)
			continue
		}
		g, got := get(e.guard)
		if e.guard < 0 {
			// Verified with the batch's first step.
			g, got = connection.Result{}, true
		}
		if !got {
			return lost(e, "guard")
		}
		if g.NotRun {
			return instances(seg[k:]), converged
		}
		if g.ExitCode != 0 {
			// The state is not what the check saw: check it again from
			// the probe read right behind the guard.
			if !e.stop {
				e.in.run.drifts++
			}
			fb, got := get(e.fallback)
			switch {
			case got && !fb.NotRun:
				e.in.run.result, e.in.run.probed, e.in.run.gen = fb, true, hr.gen
			case err != nil:
				return lost(e, "guard")
			default:
				e.in.run.probed = false
			}
			return instances(seg[k:]), converged
		}
		if !e.a.change.Changed() {
			hr.report(e.in, e.a, share)
			continue
		}
		res, got := get(e.apply)
		if !got {
			return lost(e, "change")
		}
		out, aerr := e.in.prov.(providers.Stepper).StepDone(e.in.req, e.step, res)
		if aerr != nil {
			e.a.err = fmt.Errorf("apply: %w", aerr)
			hr.report(e.in, e.a, share)
			hr.notRun(e, seg[k+1:])
			return nil, false
		}
		e.a.out = out
		if hr.report(e.in, e.a, share) == stopHost {
			return nil, false
		}
		var rc connection.Result
		switch {
		case e.recheckBy != nil:
			var g connection.Result
			if g, got = get(e.recheckBy.guard); got {
				rc, got = guardRecheck(g)
			}
		case e.recheck >= 0:
			rc, got = get(e.recheck)
		case e.deferred >= 0:
			got = e.deferred < len(deferred)
			if got {
				rc = deferred[e.deferred]
			}
		default:
			continue
		}
		if !got {
			return lost(e, "re-check")
		}
		e.in.run.result, e.in.run.probed, e.in.run.everProbed, e.in.run.gen = rc, true, true, hr.gen
		if converged && !hr.finishRecheck(e.in) {
			converged = false
		}
	}
	return nil, converged
}

// notRun tells which changes of a batch were not made because failed
// stopped it.
func (hr *hostRun) notRun(failed *entry, rest []*entry) {
	var names []string
	for _, e := range rest {
		if !e.passive && e.a.change.Changed() {
			names = append(names, e.in.label)
		}
	}
	if len(names) == 0 {
		return
	}
	hr.r.o.Hooks.Notice(Notice{Role: hr.role.Name, Message: fmt.Sprintf("%s: not run, %s having failed first: %s", hr.hs.info.Name, failed.in.label, strings.Join(names, ", "))})
}

// instances are the instances of entries, in order.
func instances(es []*entry) []*instance {
	out := make([]*instance, len(es))
	for i, e := range es {
		out[i] = e.in
	}
	return out
}

// batchPlan is how a batch guards and re-checks its entries.
type batchPlan struct {
	// verify is the batch's first step (or ""): it reads the probes of
	// every entry that no earlier change of the batch can affect, at
	// once (with a prelude), and fails unless each prints what its check
	// used. The other entries get a guard of their own.
	verify string
	// verified are the entries verify reads.
	verified []*entry
	// deferred holds the re-checks read at the end of the batch: those
	// of changes that no later change of the batch can affect.
	deferred providers.Batch
}

// planBatch decides, for every entry of seg, whether it needs a guard of
// its own (ownGuard: an earlier change of the batch may have changed its
// state) or is verified by the batch's first step, and whether its
// change is re-checked right behind it (recheckNow: a later change may
// change its state again) or at the end of the batch (deferred: its
// position in the plan's deferred batch).
func planBatch(seg []*entry) batchPlan {
	var p batchPlan
	for k, e := range seg {
		e.deferred, e.fallback = -1, -1
		if e.passive || e.stop {
			continue
		}
		for _, before := range seg[:k] {
			if !before.passive && !before.stop && before.a.change.Changed() && affects(before, e) {
				e.ownGuard = true
				break
			}
		}
		if !e.ownGuard {
			p.verified = append(p.verified, e)
		}
		if !e.a.change.Changed() || e.a.change.Action == providers.Run {
			continue
		}
		for _, after := range seg[k+1:] {
			if !after.passive && !after.stop && after.a.change.Changed() && affects(after, e) {
				e.recheckNow = true
				break
			}
		}
		if !e.recheckNow {
			e.deferred = p.deferred.Add(e.in.prov, e.in.req, e.in.probe)
		}
	}
	// A change re-checked now whose next entry guards the same probe
	// (a line, then another in the same file) is re-checked by that
	// guard: one probe fewer.
	for k, e := range seg {
		if !e.recheckNow {
			continue
		}
		for _, n := range seg[k+1:] {
			if n.passive {
				continue
			}
			if n.ownGuard && !n.stop && n.in.probe == e.in.probe {
				e.recheckBy, n.showsRecheck = n, e
			}
			break
		}
	}
	p.verify = verifyScript(p.verified)
	return p
}

// affects reports whether the change of entry i may change what the
// probe of entry j prints. Only path resources (providers.PathProber)
// are told apart: i and j look at unrelated paths, or i creates a
// directory under which j's path lies (what was absent stays absent).
// Any other pair, a command or package among them, may.
func affects(i, j *entry) bool {
	pi, ok := i.in.prov.(providers.PathProber)
	if !ok {
		return true
	}
	ppi, ok := pi.ProbePath(i.in.req)
	if !ok {
		return true
	}
	pj, ok := j.in.prov.(providers.PathProber)
	if !ok {
		return true
	}
	ppj, ok := pj.ProbePath(j.in.req)
	if !ok {
		return true
	}
	a, b := path.Clean(ppi.Path), path.Clean(ppj.Path)
	switch {
	case a == b:
		return true
	case strings.HasPrefix(b, strings.TrimSuffix(a, "/")+"/"):
		// j lies under i: only a new directory leaves it as it was.
		return !(i.in.typ == "directory" && i.a.change.Action == providers.Create)
	case strings.HasPrefix(a, strings.TrimSuffix(b, "/")+"/"):
		// i lies under j, whose probe may read what is beneath it.
		return true
	}
	return false
}

// verifyScript is the step that reads the probes of entries (with a
// prelude when two or more paths are probed) in one command substitution
// and exits 0 only when each printed exactly what its check used (its
// output and exit status, NUL-free: pipelinable); "" without entries.
func verifyScript(entries []*entry) string {
	if len(entries) == 0 {
		return ""
	}
	var paths []providers.ProbedPath
	distinct := map[string]bool{}
	for _, e := range entries {
		if pp, ok := e.in.prov.(providers.PathProber); ok {
			if p, ok := pp.ProbePath(e.in.req); ok {
				paths = append(paths, p)
				distinct[p.Path] = true
			}
		}
	}
	var run, want strings.Builder
	if len(distinct) >= 2 {
		pre, _ := providers.ProbePrelude(paths)
		run.WriteString("eval " + shell.Quote(pre) + "\n")
	}
	for _, e := range entries {
		run.WriteString(evalProbe(e.in) + "; printf '\\n%s\\n' \"rc=$?\"\n")
		if ip, ok := e.in.prov.(providers.InlineProber); ok && len(ip.ProbeVars()) > 0 {
			// As in a probe batch, the next probe starts without them.
			run.WriteString("unset " + strings.Join(ip.ProbeVars(), " ") + "\n")
		}
		want.WriteString(string(e.in.run.result.Stdout) + "\nrc=" + strconv.Itoa(e.in.run.result.ExitCode) + "\n")
	}
	return "g=$( {\n" + run.String() + "printf .\n} </dev/null 2>/dev/null )\n[ \"$g\" = " + shell.Quote(want.String()+".") + " ]\n"
}

// probeStep is the step that reads in's probe: inline when its provider
// keeps the inline contract.
func probeStep(in *instance, mode connection.StepMode) connection.Step {
	st := connection.Step{Script: in.probe, Mode: mode}
	if ip, ok := in.prov.(providers.InlineProber); ok {
		st.Inline, st.Vars = true, ip.ProbeVars()
	}
	return st
}
