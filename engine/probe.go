package engine

// This file holds probing: the read-only probe scripts of many instances
// (and the re-check of the last change) sent in one round trip, identical
// probes sent once, inline probes run in the persistent shell, the stat
// and sha256 prelude shared by path probes, and the re-check that a
// changed resource must pass.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/providers"
)

// maxBatch bounds how many probes go into one round trip.
const maxBatch = 64

func (in *instance) needsProbe() bool {
	return in.err == nil && in.skip == "" && in.probe != "" && !in.run.probed
}

func (in *instance) needsRecheck() bool { return in.run.lastAction != providers.Run }

// probeBatch runs the re-check probe (if any) and the probes of the first
// limit pending instances that need one, in one round trip
// (providers.Batch decides how they travel).
func (hr *hostRun) probeBatch(ctx context.Context, recheck *instance, pending []*instance, limit int) bool {
	var targets []*instance
	var b providers.Batch
	if recheck != nil {
		recheck.run.probed = false
		targets = append(targets, recheck)
		b.Add(recheck.prov, recheck.req, recheck.probe)
	}
	n := 0
	for _, p := range pending {
		if n >= limit {
			break
		}
		if p.needsProbe() {
			if hr.reuse(p) {
				continue
			}
			targets = append(targets, p)
			b.Add(p.prov, p.req, p.probe)
			n++
		}
	}
	if b.Len() == 0 {
		return true
	}
	cctx, cancel := hr.r.cmdCtx(ctx, hr.hs)
	defer cancel()
	start := time.Now()
	sent, err := hr.host.RunProbes(cctx, b.Probes())
	hr.r.o.Hooks.Phase(Phase{Host: hr.hs.info.Name, Role: hr.role.Name, Name: "probe", Duration: time.Since(start).Seconds(), Count: b.Len(), Recheck: recheck != nil})
	var results []connection.Result
	if err == nil {
		results, err = b.Results(sent)
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
		t.run.result = results[i]
		t.run.probed, t.run.everProbed, t.run.gen = true, true, hr.gen
		if rec := hr.r.o.Record; rec != nil && t != recheck {
			rec.putProbe(hr.hs.info.Name, t.id, t.probe, t.run.result)
		}
	}
	return true
}

// reuse takes in's probe result from Options.Reuse, while nothing was
// applied on the host in this run and the probe script is the same;
// it reports whether it did.
func (hr *hostRun) reuse(in *instance) bool {
	k := hr.r.o.Reuse
	if k == nil || in.run.everProbed {
		// A second probe (a retry, a re-check) must read the host.
		return false
	}
	hr.r.mu.Lock()
	touched := hr.hs.touched
	hr.r.mu.Unlock()
	if touched {
		return false
	}
	res, ok := k.probe(hr.hs.info.Name, in.id, in.probe)
	if ok {
		in.run.result, in.run.probed, in.run.everProbed, in.run.gen = res, true, true, hr.gen
	}
	return ok
}

// finishRecheck checks a just-applied resource again from its fresh probe:
// it must now check clean.
func (hr *hostRun) finishRecheck(in *instance) bool {
	ch, err := safeCheck(in.prov, in.req, in.run.result)
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
