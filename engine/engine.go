// Package engine runs a policy: per host it gathers facts, expands and
// renders resources, checks them (batching read-only probes into one round
// trip), and in apply mode performs exactly the checked change and checks
// it again. What happens goes to Hooks (the views).
package engine

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/opsmop/opsmop/defaults"
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

// RoleHosts is one role with the hosts it runs on, in order (what main
// plans; not to be confused with a providers.Change's Plan, the apply
// recipe a check hands to apply).
type RoleHosts struct {
	Role  *policy.Role
	Hosts []*HostInfo
}

// Options configure a run.
type Options struct {
	Policy    *policy.Policy
	Registry  policy.Registry
	Lookup    func(typeName string) (providers.Provider, bool)
	Plans     []RoleHosts
	Check     bool
	Forks     int
	ExtraVars map[string]any
	Tags      []string
	SkipTags  []string
	Connector Connector
	// Hooks receive what happens (nil: nothing does).
	Hooks Hooks
	Eval  *Evaluator
	// Verbose adds unchanged ("ok") resources to the human output; the
	// engine itself emits every event regardless.
	Verbose bool
	// ForceHandlers runs, on a host where a resource of pre, resources or
	// post failed, the role's handlers notified before the failure
	// (--force-handlers, Ansible's force_handlers). The host stays failed.
	// A role's force_handlers key, when set, decides for that role
	// instead.
	ForceHandlers bool
	// SkipFacts leaves facts empty instead of gathering them (ad-hoc
	// commands, which do not use them).
	SkipFacts bool
	// Info identifies the run in its RunStart event.
	Info RunInfo
	// Record, when set, keeps the facts and probe results this run reads;
	// Reuse, when set, gives this run those of a run just before it over
	// the same connections (see Known).
	Record, Reuse *Known
	// OnLocalRead, when set, is called with the full path of every local
	// file or directory the run reads for a resource (src files, trees,
	// templates), possibly more than once and from several goroutines.
	OnLocalRead func(full string)
	// Guard, when set, is asked in apply mode about every instance the
	// engine has just checked, before anything is applied for it; an
	// error fails the instance with that error (nothing applied) and
	// stops the host; a note is added to the instance's message. Saved
	// plans use it to apply exactly what was planned.
	Guard func(GuardCheck) (note string, err error)
	// Sequential turns the pipelined apply off: every change is applied
	// on its own and re-checked before the next one is probed
	// (--no-pipeline). Check mode is the same either way.
	Sequential bool
}

// GuardCheck is what Options.Guard is asked about: one instance, checked
// in apply mode, about to be applied (or found unchanged).
type GuardCheck struct {
	Host string
	// ID names the instance in the policy (ResourceResult.ID).
	ID string
	// Fingerprint is the digest of the probe result the check used
	// (ResourceResult.Fingerprint).
	Fingerprint string
	Change      *providers.Change
	// Touched is set when something was already applied on the host in
	// this run (or by an earlier attempt of this instance), so that its
	// state may differ from what a check before the run saw.
	Touched bool
}

// ErrInterrupted is the error of a host (and of the resource it was
// working on) when the run's context was cancelled, which is what Ctrl-C
// does: the host did not fail, it was stopped. Such hosts count as failed
// (they did not finish; --retry-failed runs them again). Test for it with
// errors.Is.
const ErrInterrupted = constError("interrupted (Ctrl-C)")

// constError is an error that can be a constant.
type constError string

func (e constError) Error() string { return string(e) }

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
		r.o.Forks = defaults.DefaultForks
	}
	if r.o.Hooks == nil {
		r.o.Hooks = NopHooks{}
	}
	if r.o.Eval == nil {
		r.o.Eval = NewEvaluator(o.Policy.Dir)
		r.o.Eval.OnRead = o.OnLocalRead
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
	r.o.Hooks.RunStart(RunStart{Mode: r.mode, Hosts: total, Tasks: tasks, RunInfo: o.Info})
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
	r.o.Hooks.Summary(sum)
	return sum
}
