package engine

// This file holds probing: the read-only probe scripts of many instances
// (and the re-check of the last change) sent in one round trip, identical
// probes sent once, inline probes run in the persistent shell, the stat
// and sha256 prelude shared by path probes, and the re-check that a
// changed resource must pass.

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/providers"
)

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

// maxBatch bounds how many probes go into one round trip.
const maxBatch = 64

func (in *instance) needsProbe() bool {
	return in.err == nil && in.skip == "" && in.probe != "" && !in.run.probed
}

func (in *instance) needsRecheck() bool { return in.run.lastAction != providers.Run }

// probeBatch runs the re-check probe (if any) and the probes of the first
// limit pending instances that need one, in one round trip where the host
// can.
func (hr *hostRun) probeBatch(ctx context.Context, recheck *instance, pending []*instance, limit int) bool {
	var targets []*instance
	var scripts []string
	if recheck != nil {
		recheck.run.probed = false
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
		t.run.result = results[i]
		t.run.probed = true
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
	ch, err := safeCheck(context.Background(), in.prov, in.req, in.run.result)
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
