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
// runs through eval, in a command substitution with stdin from /dev/null
// and stderr discarded.
func guardScript(in *instance) string {
	want := string(in.run.result.Stdout) + "rc=" + strconv.Itoa(in.run.result.ExitCode)
	return "p=" + shell.Quote(in.probe) + "\n" +
		"g=$( { eval \"$p\"; } </dev/null 2>/dev/null; printf 'rc=%s' \"$?\" )\n" +
		"[ \"$g\" = " + shell.Quote(want) + " ]\n"
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
	changes := 0
	for _, e := range seg {
		e.guard, e.fallback, e.apply, e.recheck = -1, -1, -1, -1
		if e.passive {
			continue
		}
		guard := guardScript(e.in)
		if e.stop {
			guard = "exit 1"
		}
		e.guard = add(connection.Step{Script: guard, Mode: connection.StepStop})
		e.fallback = add(connection.Step{Script: e.in.probe, Mode: connection.StepOnStop})
		if e.stop || !e.a.change.Changed() {
			continue
		}
		changes++
		e.apply = add(connection.Step{Script: e.step.Script, Stdin: e.step.Stdin, Mode: connection.StepStop, Temp: e.step.Temp})
		if e.a.change.Action != providers.Run {
			e.recheck = add(connection.Step{Script: e.in.probe, Mode: connection.StepGo})
		}
	}
	sr := hr.host.(stepRunner)
	cctx, cancel := hr.r.cmdCtx(ctx, hr.hs)
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
	lost := func(e *entry) (requeue []*instance, ok bool) {
		a := e.a
		a.unreachable, _, a.err = applyErr(ctx, err)
		if a.err == nil {
			a.err = fmt.Errorf("apply: the batch's results ended before this resource's (%d of %d)", len(results), len(steps))
		}
		if !a.unreachable && ctx.Err() == nil && err != nil {
			a.err = fmt.Errorf("apply: %w (it may or may not have been applied)", err)
		}
		hr.report(e.in, a, share)
		return nil, false
	}
	// converged is false once a change did not check clean right after
	// it: the host stops after the batch, whose later steps ran (they
	// are reported as they went).
	converged := true
	for k, e := range seg {
		if e.passive {
			hr.process(ctx, e.in)
			continue
		}
		g, got := get(e.guard)
		if !got {
			return lost(e)
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
			if fb, got := get(e.fallback); got && !fb.NotRun {
				e.in.run.result, e.in.run.probed, e.in.run.gen = fb, true, hr.gen
			} else {
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
			return lost(e)
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
		if e.recheck < 0 {
			continue
		}
		rc, got := get(e.recheck)
		if !got {
			return lost(e)
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
