package providers

import (
	"fmt"
	"slices"

	"github.com/opsmop/opsmop/connection"
)

// InlineProber is implemented by providers whose probe scripts keep the
// inline contract of connection.Probe (they may run in the persistent
// shell itself, without a subshell); ProbeVars lists the variables they
// may set.
type InlineProber interface {
	ProbeVars() []string
}

// PathProber is implemented by providers whose probes read the
// ProbePrelude's results: ProbePath names the path a request's probe
// looks at.
type PathProber interface {
	ProbePath(req *Request) (ProbedPath, bool)
}

// Batch is the probes of one round trip, and the one owner of how they
// travel: Add collects each instance's probe; identical scripts are sent
// once (probes only read, so one result serves all); a script runs inline
// when every provider that sent it is an InlineProber (with the union of
// their variables); when two or more inline probes look at distinct paths
// (PathProber), a ProbePrelude goes first and a last probe unsets its
// variables. Probes is what to send with Host.RunProbes, and Results
// turns what came back into one result per Add, in order.
//
// The zero Batch is empty and ready to use.
type Batch struct {
	index  map[string]int     // script -> position in probes
	probes []connection.Probe // distinct scripts, in order of first Add
	slots  []int              // per Add: its script's position
	paths  []slotPath         // the paths PathProbers' probes look at
	// prelude: Probes sent a prelude first and an unset probe last.
	prelude bool
}

// slotPath is a path a probe at probes[slot] looks at.
type slotPath struct {
	slot int
	path ProbedPath
}

// Add adds the probe script of a provider's request to the batch. It
// returns the position of its result in Results.
func (b *Batch) Add(p Provider, req *Request, script string) int {
	if b.index == nil {
		b.index = map[string]int{}
	}
	i, seen := b.index[script]
	if !seen {
		i = len(b.probes)
		b.index[script] = i
		b.probes = append(b.probes, connection.Probe{Script: script, Inline: true})
	}
	pr := &b.probes[i]
	if pp, ok := p.(PathProber); ok {
		if path, ok := pp.ProbePath(req); ok {
			b.paths = append(b.paths, slotPath{i, path})
		}
	}
	if ip, ok := p.(InlineProber); ok && pr.Inline {
		for _, v := range ip.ProbeVars() {
			if !slices.Contains(pr.Vars, v) {
				pr.Vars = append(pr.Vars, v)
			}
		}
	} else {
		// One sender that may not run inline makes the script a subshell
		// (identical scripts normally come from one type).
		pr.Inline, pr.Vars = false, nil
	}
	b.slots = append(b.slots, i)
	return len(b.slots) - 1
}

// Len is the number of probes added.
func (b *Batch) Len() int { return len(b.slots) }

// Probes returns what to send, in order: the distinct scripts, with the
// prelude before them and the probe that unsets its variables after them
// when two or more distinct paths are probed inline.
func (b *Batch) Probes() []connection.Probe {
	distinct := map[string]bool{}
	var paths []ProbedPath
	for _, sp := range b.paths {
		if b.probes[sp.slot].Inline { // the prelude serves inline probes only
			paths = append(paths, sp.path)
			distinct[sp.path.Path] = true
		}
	}
	b.prelude = len(distinct) >= 2
	if !b.prelude {
		return b.probes
	}
	pre, vars := ProbePrelude(paths)
	out := make([]connection.Probe, 0, len(b.probes)+2)
	out = append(out, connection.Probe{Script: pre, Inline: true})
	out = append(out, b.probes...)
	return append(out, connection.Probe{Script: ":", Inline: true, Vars: vars})
}

// Results maps the results of Probes (as RunProbes returned them) to one
// result per Add, in the order of the Adds.
func (b *Batch) Results(sent []connection.Result) ([]connection.Result, error) {
	if b.prelude {
		if len(sent) != len(b.probes)+2 {
			return nil, fmt.Errorf("probe batch: got %d results; want %d", len(sent), len(b.probes)+2)
		}
		sent = sent[1 : len(sent)-1]
	}
	if len(sent) != len(b.probes) {
		return nil, fmt.Errorf("probe batch: got %d results; want %d", len(sent), len(b.probes))
	}
	out := make([]connection.Result, len(b.slots))
	for i, j := range b.slots {
		out[i] = sent[j]
	}
	return out, nil
}
