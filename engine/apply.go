package engine

// This file holds what happens to one instance once its probe result is
// in: checkApply is one check and, in apply mode, the apply of exactly
// that change (the CheckApply of a resource); process wraps it in the
// retry loop (retries, delay, until), turns the result into the instance's
// status, event and registered variables, and says whether the host goes
// on.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/providers"
)

// outcome is what processing an instance means for the rest of the host's
// list.
type outcome int

const (
	// unchanged: the instance is fine as it is (ok, skipped, or an error
	// ignored with ignore_errors); the host goes on.
	unchanged outcome = iota
	// changed: the instance changed (would change, in check mode); the
	// host goes on, and probes read before the change may be stale.
	changed
	// stopHost: the host failed or became unreachable; nothing more runs
	// on it.
	stopHost
)

// attempt is the result of one checkApply.
type attempt struct {
	change *providers.Change
	out    *providers.Outcome // nil when nothing was applied
	err    error
	// unreachable: err means the host is gone.
	unreachable bool
	// retryable: err is an apply error that a further attempt may cure.
	retryable bool
	// reported: the host's failure was already reported (by probeBatch);
	// nothing more is to be said.
	reported bool
	// fingerprint is the digest of the probe result the check used.
	fingerprint string
	// note is what the guard (Options.Guard) had to say.
	note string
}

// fingerprint is the digest of an instance's latest probe result ("" when
// it has no probe): what a saved plan records and a guard compares.
func (in *instance) fingerprint() string {
	if in.probe == "" {
		return ""
	}
	h := sha256.New()
	r := in.run.result
	h.Write([]byte(strconv.Itoa(r.ExitCode) + "\x00" + strconv.Itoa(len(r.Stdout)) + "\x00"))
	h.Write(r.Stdout)
	h.Write([]byte{0})
	h.Write(r.Stderr)
	return hex.EncodeToString(h.Sum(nil))
}

// result is the command result of the attempt's apply, if any.
func (a attempt) result() *connection.Result {
	if a.out == nil {
		return nil
	}
	return a.out.Result
}

// decide checks in from its current probe result and, in apply mode,
// asks the guard (Options.Guard) about the change; it applies nothing.
// retried says whether an earlier attempt of in ran or its probe result
// is the prediction of an earlier change of the run (either way the
// guard is told the state may differ from a check before the run).
func (hr *hostRun) decide(in *instance, retried bool) attempt {
	fp := in.fingerprint()
	ch, err := safeCheck(in.prov, in.req, in.run.result)
	if err != nil {
		return attempt{err: err, fingerprint: fp}
	}
	a := attempt{change: ch, fingerprint: fp}
	if g := hr.r.o.Guard; g != nil && !hr.r.o.Check {
		hr.r.mu.Lock()
		touched := hr.hs.touched
		hr.r.mu.Unlock()
		note, err := g(GuardCheck{Host: hr.hs.info.Name, ID: in.id, Fingerprint: fp, Change: ch, Touched: touched || retried})
		if err != nil {
			a.err = err
			return a
		}
		a.note = note
	}
	return a
}

// checkApply decides in (decide) and, in apply mode, applies exactly the
// change the check returned. It does not retry; retried says whether an
// earlier attempt of in ran.
func (hr *hostRun) checkApply(ctx context.Context, in *instance, retried bool) attempt {
	a := hr.decide(in, retried)
	if a.err != nil || !a.change.Changed() || hr.r.o.Check {
		return a
	}
	cctx, cancel := hr.r.cmdCtx(ctx, hr.hs)
	out, err := safeApply(cctx, in.prov, hr.host, in.req, a.change)
	cancel()
	a.out = out
	a.unreachable, a.retryable, a.err = applyErr(ctx, err)
	return a
}

// applyErr classifies the error of an apply: nil; interrupted (the
// run's context ended); the host gone; or an apply error that a further
// attempt may cure.
func applyErr(ctx context.Context, err error) (unreachable, retryable bool, e error) {
	switch {
	case err == nil:
		return false, false, nil
	case ctx.Err() != nil:
		return false, false, fmt.Errorf("%w: stopped before it finished", ErrInterrupted)
	case isUnreachable(err):
		return true, false, err
	default:
		return false, true, fmt.Errorf("apply: %w", err)
	}
}

// attempts is how many times process may try in: once in check mode; else
// 1 + retries, with until alone allowing 3 more (as Ansible does).
func (hr *hostRun) attempts(in *instance) int {
	if hr.r.o.Check {
		return 1
	}
	n := 1 + in.res.Retries
	if in.res.Until != "" && in.res.Retries == 0 {
		n += 3
	}
	return n
}

// retry runs checkApply until it succeeds and until (if any) holds, at
// most attempts(in) times, probing in again and waiting delay before each
// further attempt. The attempt it returns has err set when in failed.
func (hr *hostRun) retry(ctx context.Context, in *instance) attempt {
	n := hr.attempts(in)
	var a attempt
	for i := 1; i <= n; i++ {
		if i > 1 {
			select {
			case <-time.After(in.res.Delay):
			case <-ctx.Done():
				return attempt{err: fmt.Errorf("%w while waiting to retry", ErrInterrupted)}
			}
			in.run.probed = false
			if !hr.probeBatch(ctx, nil, []*instance{in}, 1) {
				return attempt{err: errors.New("probe failed"), reported: true}
			}
		}
		a = hr.checkApply(ctx, in, i > 1)
		if a.err != nil {
			if a.retryable && i < n {
				continue
			}
			return a
		}
		if in.res.Until == "" || hr.r.o.Check {
			return a
		}
		rv := resultVars(a.result(), a.change.Changed(), false)
		uscope := mergeVars(in.scope, rv)
		if in.orig.Register != "" {
			uscope[in.orig.Register] = rv
		}
		done, err := hr.r.o.Eval.EvalBool(in.res.Until, uscope)
		switch {
		case err != nil:
			a.err = fmt.Errorf("%s: until: %w", in.orig.KeyPos("until"), err)
			return a
		case done:
			return a
		case i == n:
			a.err = fmt.Errorf("until %q still false after %d attempts", in.res.Until, n)
			return a
		}
	}
	return a
}

// process checks one instance and, in apply mode, applies it (with its
// retries), then emits its event and registers its result.
func (hr *hostRun) process(ctx context.Context, in *instance) outcome {
	ev := ResourceResult{Host: hr.hs.info.Name, Role: hr.role.Name, Resource: in.label, ResourceType: in.typ, Handler: in.handler, ID: in.id}
	if in.err != nil {
		return hr.failed(in, ev, in.err, nil)
	}
	if in.skip != "" {
		ev.Status = StatusSkipped
		ev.Message = in.skip
		hr.count(StatusSkipped)
		hr.register(in, nil, StatusSkipped)
		hr.r.o.Hooks.Resource(ev)
		return unchanged
	}
	start := time.Now()
	a := hr.retry(ctx, in)
	return hr.report(in, a, time.Since(start))
}

// report turns the attempt a at in (which took dur) into in's status,
// event and registered result, and says whether the host goes on.
func (hr *hostRun) report(in *instance, a attempt, dur time.Duration) outcome {
	ev := ResourceResult{Host: hr.hs.info.Name, Role: hr.role.Name, Resource: in.label, ResourceType: in.typ, Handler: in.handler, ID: in.id}
	switch {
	case a.err == nil:
	case a.reported:
		return stopHost
	case a.unreachable:
		hr.r.unreachable(hr.hs, hr.role, a.err)
		return stopHost
	default:
		ev.Fingerprint = a.fingerprint
		return hr.failed(in, ev, a.err, a.result())
	}
	ev.Fingerprint = a.fingerprint
	ch := a.change
	in.run.lastAction = ch.Action
	isChanged := ch.Changed() && (a.out == nil || !a.out.Unchanged)
	ev.Change = ch
	ev.Duration = dur.Seconds()
	res := a.result()
	if res != nil {
		rc := res.ExitCode
		ev.RC = &rc
		if !ch.Sensitive {
			ev.Stdout, ev.Stderr = string(res.Stdout), string(res.Stderr)
		}
	}
	if ch.Message != "" {
		ev.Message = ch.Message
	}
	if a.note != "" {
		ev.Message = strings.TrimPrefix(ev.Message+"; "+a.note, "; ")
	}
	ev.Status = StatusOK
	if isChanged {
		ev.Status = StatusChanged
		for _, n := range in.res.Notify {
			hr.notified[n] = true
		}
		if !hr.r.o.Check {
			hr.gen++
			hr.r.mu.Lock()
			hr.hs.touched = true
			hr.r.mu.Unlock()
		}
	}
	hr.count(ev.Status)
	hr.register(in, res, ev.Status)
	hr.r.o.Hooks.Resource(ev)
	if isChanged {
		return changed
	}
	return unchanged
}

// failed records in's failure (or, with ignore_errors, its ignored error)
// and emits its event.
func (hr *hostRun) failed(in *instance, ev ResourceResult, err error, res *connection.Result) outcome {
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
		hr.hs.setError(err)
		hr.hs.stop = hostFailed
	}
	hr.r.mu.Unlock()
	hr.register(in, res, StatusFailed)
	hr.r.o.Hooks.Resource(ev)
	if ignore {
		return unchanged
	}
	return stopHost
}

// The provider calls, with panics turned into errors of that host alone.

func safeProbe(p providers.Provider, req *providers.Request) (s string, err error) {
	defer recoverInto(&err)
	return p.Probe(req)
}

func safeCheck(p providers.Provider, req *providers.Request, res connection.Result) (ch *providers.Change, err error) {
	defer recoverInto(&err)
	ch, err = p.Check(req, res)
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
