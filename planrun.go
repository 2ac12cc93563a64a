package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/providers"
)

// planFlagConflicts names the flags that choose hosts or resources, which
// a plan fixes: apply FILE refuses them.
func planFlagConflicts(opts RunOptions) []string {
	var bad []string
	for _, f := range []struct {
		set  bool
		name string
	}{
		{opts.Inventory != "", "-i"}, {opts.Limit != "", "--limit"}, {opts.Slice != "", "--slice"}, {len(opts.Tags) > 0, "--tags"},
		{len(opts.SkipTags) > 0, "--skip-tags"}, {opts.Local, "--local"}, {opts.RetryFailed, "--retry-failed"},
		{opts.ForceHandlers, "--force-handlers"}, {opts.ListHosts, "--list-hosts"}, {opts.ListResources, "--list-resources"},
	} {
		if f.set {
			bad = append(bad, f.name)
		}
	}
	return bad
}

// applyPlan is `opsmop apply FILE`: it refuses a plan whose local inputs
// changed (exit 3, nothing contacted), checks every planned host again
// and refuses, with nothing changed on it, each host whose state or
// change differs from the plan, then applies the others with every
// instance guarded: it must check as planned until something was
// applied on its host in this run.
func applyPlan(ctx context.Context, env Env, opts RunOptions, path string) error {
	pf, err := readPlan(path)
	if err != nil {
		return err
	}
	if bad := planFlagConflicts(opts); len(bad) > 0 {
		return planError(path, "%s cannot be given with a plan: the plan fixes the hosts and resources it was made for (inventory %q, limit %q, tags %q, skip-tags %q); make a new plan to change them", strings.Join(bad, ", "), pf.Run.Inventory, pf.Run.Limit, strings.Join(pf.Run.Tags, ","), strings.Join(pf.Run.SkipTags, ","))
	}
	if err := pf.verifyInputs(path); err != nil {
		return err
	}
	opts.Policy, opts.Inventory, opts.Limit, opts.Slice, opts.Local = pf.Policy, pf.Run.Inventory, pf.Run.Limit, pf.Run.Slice, pf.Run.Local
	opts.Tags, opts.SkipTags, opts.ForceHandlers = pf.Run.Tags, pf.Run.SkipTags, pf.Run.ForceHandlers
	s, err := load(ctx, env, loadOptions{
		Command: "apply", Policy: opts.Policy, NeedPolicy: true, Inventory: opts.Inventory, Local: opts.Local,
		Limit: opts.Limit, Slice: opts.Slice, ExtraVars: opts.ExtraVars, Login: opts.Login,
	})
	if err != nil {
		return err
	}
	var keys []string
	for k := range s.extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !slices.Equal(keys, pf.Run.ExtraVarKeys) {
		return planError(path, "the plan was made with -e variables %q and is applied with %q: give the same -e variables again (their values are not kept in the plan)", pf.Run.ExtraVarKeys, keys)
	}
	if errs := validateSession(s); len(errs) > 0 {
		return invalid(joinErrors(errs))
	}
	if err := s.askPasswords(opts.AskPass, opts.AskSudoPass); err != nil {
		return err
	}
	rp, err := s.plans()
	if err != nil {
		return invalid(err)
	}
	planned := map[string]*planHost{}
	for _, h := range pf.Hosts {
		planned[h.Name] = h
	}
	// Only the planned hosts run; each must still be selected, and
	// reached the same way.
	logins := hostLogins(rp, s.local)
	selected := map[string]bool{}
	refused := map[string]error{}
	for i, p := range rp.plans {
		var hosts []*engine.HostInfo
		for _, h := range p.Hosts {
			ph := planned[h.Name]
			if ph == nil {
				continue
			}
			selected[h.Name] = true
			if want, now := ph.Logins[p.Role.Name], logins[h.Name][p.Role.Name]; want != now && refused[h.Name] == nil {
				refused[h.Name] = fmt.Errorf("refused: the plan was made for this host reached as %q in role %s, now it is %q; nothing was changed on it: make a new plan", want, p.Role.Name, now)
			}
			hosts = append(hosts, h)
		}
		rp.plans[i].Hosts = hosts
	}
	var missing []string
	for _, h := range pf.Hosts {
		if !selected[h.Name] {
			missing = append(missing, h.Name)
		}
	}
	if len(missing) > 0 {
		return planError(path, "refused as a whole, nothing was contacted: the plan's hosts %s are not selected by the policy and inventory now", strings.Join(missing, ", "))
	}
	forks := rp.forks
	if opts.Forks > 0 {
		forks = opts.Forks
	}
	conn := s.newConnector(rp.hosts, opts.AcceptNewHostKeys)
	defer conn.Close()
	base := engine.Options{
		Policy: s.pol, Registry: s.reg, Lookup: providers.Lookup, Plans: rp.plans,
		Forks: forks, ExtraVars: s.extra, Tags: opts.Tags, SkipTags: opts.SkipTags,
		Connector: conn, ForceHandlers: opts.ForceHandlers, Sequential: opts.Sequential, Info: s.runInfo(),
	}
	base.Info.PlanSHA256 = pf.sha256
	// The host's state now, as check sees it, against the plan: the same
	// connections serve the apply after it.
	rec := newPlanRecorder()
	known := engine.NewKnown()
	verify := base
	verify.Check, verify.Hooks, verify.Record = true, rec, known
	if sum := engine.Run(ctx, verify); sum.Interrupted {
		return &exitError{code: exitInterrupted}
	} else {
		for _, h := range pf.Hosts {
			if refused[h.Name] != nil {
				continue
			}
			if st := sum.Hosts[h.Name]; st != nil && (st.Failed > 0 || st.Unreachable > 0) {
				refused[h.Name] = fmt.Errorf("refused: checking it against the plan failed: %s; nothing was changed on it", st.Error)
				continue
			}
			if err := compareHost(h.Resources, rec.hosts[h.Name]); err != nil {
				refused[h.Name] = fmt.Errorf("refused: drifted since the plan: %w; nothing was changed on it: run check -o again to make a new plan", err)
			}
		}
	}
	kind := view.KindHuman
	if opts.JSON {
		kind = view.KindJSON
	}
	tty := env.isTerminal(env.Stdout)
	rep := view.New(kind, env.Stdout, view.Options{Color: tty && env.Getenv("NO_COLOR") == "", Verbose: opts.Verbose, Status: tty, Width: env.termWidth})
	hooks := &noticesAfterStart{View: rep}
	for _, n := range sortedKeys(refused) {
		hooks.notes = append(hooks.notes, engine.Notice{Message: fmt.Sprintf("%s: %v", n, refused[n])})
	}
	apply := base
	apply.Hooks, apply.Verbose = hooks, opts.Verbose
	// What the verification just read is where the apply starts: its
	// first probe batch and facts are not read again.
	apply.Reuse = known
	apply.Guard = func(g engine.GuardCheck) (string, error) {
		if err := refused[g.Host]; err != nil {
			return "", err
		}
		var want *planResource
		for _, r := range planned[g.Host].Resources {
			if r.ID == g.ID {
				want = r
				break
			}
		}
		if want == nil && g.Touched {
			// A handler notified, or a loop item added, only because an
			// earlier change of this run made a resource differ.
			return "not in the plan: it comes from a resource checked again after an earlier change of this run on the host", nil
		}
		if want == nil {
			return "", fmt.Errorf("not in the plan (%s): nothing applied; run check -o again to make a new plan", g.ID)
		}
		if samePlanned(want, g.Change, g.Fingerprint) {
			return "", nil
		}
		now := &planResource{Status: engine.StatusOK, Change: g.Change}
		if g.Change.Changed() {
			now.Status = engine.StatusChanged
		}
		if g.Touched {
			// An earlier change of this run on the host made it differ
			// from the plan (a template, then a line in the same file):
			// it is applied as checked now, and says so.
			return fmt.Sprintf("checked again after an earlier change of this run on the host: the plan had %s", describeChange(want)), nil
		}
		return "", fmt.Errorf("changed since the plan was verified (%s): the plan has %s, the host now needs %s; nothing applied", g.ID, describeChange(want), describeChange(now))
	}
	return runEnd(env, pf.Policy, rep, engine.Run(ctx, apply), false)
}

// noticesAfterStart is a view that shows notes right after the run
// starts.
type noticesAfterStart struct {
	view.View
	notes []engine.Notice
}

// RunStart starts the run, then shows the notes.
func (n *noticesAfterStart) RunStart(e engine.RunStart) {
	n.View.RunStart(e)
	for _, note := range n.notes {
		n.View.Notice(note)
	}
}

// sameChange reports whether two changes read the same (action, fields,
// diff, message).
func sameChange(a, b *providers.Change) bool {
	ra := &planResource{Change: a}
	rb := &planResource{Change: b}
	return ra.digest() == rb.digest()
}

// sortedKeys are m's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// ShowOptions are the inputs of `opsmop show`.
type ShowOptions struct {
	// Plan is the plan file.
	Plan string
	// JSON prints the plan's events as check --json did.
	JSON bool
	// Verbose also shows unchanged and skipped resources.
	Verbose bool
}

// showPlan prints a plan as check showed it, after a header saying what
// it was made from.
func showPlan(_ context.Context, env Env, o ShowOptions) error {
	pf, err := readPlan(o.Plan)
	if err != nil {
		return err
	}
	kind := view.KindHuman
	if o.JSON {
		kind = view.KindJSON
	} else {
		fmt.Fprintf(env.Stdout, "plan %s: made %s by opsmop %s from %s (local files read: %d)\n", o.Plan, pf.Created, pf.Opsmop, pf.Policy, len(pf.Inputs))
		for _, h := range pf.NotPlanned {
			fmt.Fprintf(env.Stdout, "not planned: %s: %s\n", h.Name, h.Error)
		}
	}
	rep := view.New(kind, env.Stdout, view.Options{Verbose: o.Verbose})
	tasks := 0
	var roles []string
	for _, h := range pf.Hosts {
		for _, r := range h.Resources {
			if !slices.Contains(roles, r.Role) {
				roles = append(roles, r.Role)
			}
		}
	}
	sum := &engine.Summary{Mode: "check", Hosts: map[string]*engine.Stats{}}
	for _, h := range pf.Hosts {
		sum.Hosts[h.Name] = &engine.Stats{}
		sum.Order = append(sum.Order, h.Name)
		tasks += len(h.Logins)
	}
	rep.RunStart(engine.RunStart{Mode: "check", Hosts: len(pf.Hosts), Tasks: tasks})
	for _, role := range roles {
		for _, h := range pf.Hosts {
			if _, ok := h.Logins[role]; !ok {
				continue
			}
			rep.HostStart(engine.HostStart{Host: h.Name, Role: role})
			st := sum.Hosts[h.Name]
			for _, r := range h.Resources {
				if r.Role != role {
					continue
				}
				ev := engine.ResourceResult{Host: h.Name, Role: r.Role, Resource: r.Resource, ResourceType: r.Type, Handler: r.Handler,
					Status: r.Status, Change: r.Change, Error: r.Error, Message: r.Message, ID: r.ID, Fingerprint: r.Fingerprint}
				if strings.HasSuffix(r.ID, "/role") {
					ev.ID = ""
				}
				rep.Resource(ev)
				addStatus(st, r.Status)
			}
			rep.HostEnd(engine.HostEnd{Host: h.Name, Role: role, Stats: *st})
		}
	}
	for _, n := range sum.Order {
		st := sum.Hosts[n]
		sum.Total.OK += st.OK
		sum.Total.Changed += st.Changed
		sum.Total.Skipped += st.Skipped
		sum.Total.Ignored += st.Ignored
	}
	rep.Summary(sum)
	return rep.Err()
}

// addStatus counts one status in st.
func addStatus(st *engine.Stats, s engine.Status) {
	switch s {
	case engine.StatusOK:
		st.OK++
	case engine.StatusChanged:
		st.Changed++
	case engine.StatusSkipped:
		st.Skipped++
	case engine.StatusIgnored:
		st.Ignored++
	}
}

// showOptions is the flag layer of show: one PLAN argument.
func showOptions(c *cli.Context) (ShowOptions, error) {
	if c.Args().Len() != 1 {
		return ShowOptions{}, invalid(fmt.Errorf("show: want one PLAN argument (a file written by opsmop check POLICY -o FILE), got %d", c.Args().Len()))
	}
	return ShowOptions{Plan: c.Args().First(), JSON: c.Bool(flagJSON), Verbose: c.Bool(flagVerbose)}, nil
}
