package engine

import (
	"sync"

	"github.com/opsmop/opsmop/connection"
)

// Known is what one run learned of its hosts, for a run that follows it
// at once over the same connections: a saved plan's apply reuses what its
// verification (a check) just read, instead of reading it again. A run
// records into it (Options.Record) and another reuses it (Options.Reuse).
// Reuse is safe only because nothing happens on the hosts in between;
// the reusing run takes a probe result only while it has applied nothing
// on that host, and only for the same probe script. Safe for concurrent
// use.
type Known struct {
	mu     sync.Mutex
	facts  map[string]Facts
	probes map[string]map[string]knownProbe // host -> instance ID
}

// knownProbe is one instance's probe script and its result.
type knownProbe struct {
	script string
	result connection.Result
}

// NewKnown returns an empty Known.
func NewKnown() *Known {
	return &Known{facts: map[string]Facts{}, probes: map[string]map[string]knownProbe{}}
}

func (k *Known) putFacts(host string, f Facts) {
	k.mu.Lock()
	k.facts[host] = f
	k.mu.Unlock()
}

func (k *Known) getFacts(host string) Facts {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.facts[host]
}

func (k *Known) putProbe(host, id, script string, res connection.Result) {
	if id == "" {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.probes[host] == nil {
		k.probes[host] = map[string]knownProbe{}
	}
	k.probes[host][id] = knownProbe{script: script, result: res}
}

// probe returns the recorded result of instance id on host when its
// script was the same.
func (k *Known) probe(host, id, script string) (connection.Result, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	p, ok := k.probes[host][id]
	if !ok || id == "" || p.script != script {
		return connection.Result{}, false
	}
	return p.result, true
}
