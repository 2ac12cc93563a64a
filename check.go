package main

import (
	"context"
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/inventory"
	"github.com/opsmop/opsmop/providers"
)

// RunOptions are the inputs of check and apply: a run of a policy.
// (`opsmop run`, one ad-hoc command, takes AdhocOptions.)
type RunOptions struct {
	// Check reports what would change (check); false changes it (apply).
	Check bool
	// Policy is the POLICY argument, a policy file ("" when missing).
	Policy string
	// Inventory is -i ("": the policy's inventory key).
	Inventory string
	// Limit is --limit ("": every host the roles select).
	Limit string
	// Slice is --slice K/N ("": every selected host).
	Slice string
	// Forks is --forks (0: the hosts' forks setting).
	Forks int
	// JSON writes one JSON event per line instead of the human report.
	JSON bool
	// ExtraVars are the -e values, unparsed.
	ExtraVars []string
	// AskPass and AskSudoPass prompt for the SSH and sudo passwords (-k,
	// -K).
	AskPass     bool
	AskSudoPass bool
	// Local runs on this machine, without SSH.
	Local bool
	// Verbose also reports unchanged and skipped resources.
	Verbose bool
	// Tags and SkipTags select resources and roles by tag (--tags,
	// --skip-tags, split at commas).
	Tags     []string
	SkipTags []string
	// AcceptNewHostKeys records unknown host keys (trust on first use).
	AcceptNewHostKeys bool
	// RetryFailed runs only the hosts the previous run of Policy recorded
	// as failed or unreachable.
	RetryFailed bool
	// ForceHandlers runs, on a host where a resource failed, the handlers
	// notified before the failure (--force-handlers; check shows them).
	ForceHandlers bool
	// Sequential is apply's --no-pipeline (engine.Options.Sequential).
	Sequential bool
	// DetailedExitcode makes check exit 2 when changes are pending.
	DetailedExitcode bool
	// PlanOut is check's -o: write the plan to this file ("": none).
	PlanOut string
	// PlanFile is apply's argument when it is a plan (opsmop apply FILE):
	// apply performs exactly that plan ("": a policy run).
	PlanFile string
	// Login is the login overrides (-u, --private-key, -T, -b,
	// --sudo-user).
	Login LoginOptions
	// ListHosts and ListResources print the hosts each role targets, or
	// the resources per role and host, and contact no host (at most one
	// is set; the flag layer refuses them with flags of a run).
	ListHosts     bool
	ListResources bool
}

// checkOptions is the flag layer of check.
func checkOptions(c *cli.Context) (RunOptions, error) { return runOptions(c, true) }

// applyOptions is the flag layer of apply.
func applyOptions(c *cli.Context) (RunOptions, error) { return runOptions(c, false) }

// runOptions reads the command line of check (check) or apply. It
// refuses arguments other than one policy file; a missing POLICY is left
// to runPolicy, which reports it after the defaults file.
func runOptions(c *cli.Context, check bool) (RunOptions, error) {
	var pol, planFile string
	a := c.Args().First()
	switch {
	case !check && c.Args().Len() == 1 && isPlanFile(a):
		planFile = a
	default:
		var err error
		if pol, err = onlyPolicyArg(c); err != nil {
			return RunOptions{}, err
		}
	}
	login, err := loginOptions(c)
	if err != nil {
		return RunOptions{}, err
	}
	listHosts, listResources, err := listFlags(c)
	if err != nil {
		return RunOptions{}, err
	}
	return RunOptions{
		Login:             login,
		ListHosts:         listHosts,
		ListResources:     listResources,
		Check:             check,
		Policy:            pol,
		Inventory:         c.String(flagInventory),
		Limit:             c.String(flagLimit),
		Slice:             c.String(flagSlice),
		Forks:             c.Int(flagForks),
		JSON:              c.Bool(flagJSON),
		ExtraVars:         c.StringSlice(flagExtraVars),
		AskPass:           c.Bool(flagAskPass),
		AskSudoPass:       c.Bool(flagAskSudoPass),
		Local:             c.Bool(flagLocal),
		Verbose:           c.Bool(flagVerbose),
		Tags:              inventory.SplitList(c.String(flagTags)),
		SkipTags:          inventory.SplitList(c.String(flagSkipTags)),
		AcceptNewHostKeys: c.Bool(flagAcceptNewHostKeys),
		RetryFailed:       c.Bool(flagRetryFailed),
		ForceHandlers:     c.Bool(flagForceHandlers),
		Sequential:        !check && c.Bool(flagNoPipeline),
		DetailedExitcode:  c.Bool(flagDetailedExitcode),
		PlanOut:           c.String(flagOut),
		PlanFile:          planFile,
	}, nil
}

// command is "check" or "apply".
func (o RunOptions) command() string {
	if o.Check {
		return "check"
	}
	return "apply"
}

// runPolicy is check and apply: it loads and validates everything, asks
// for passwords, runs the policy on the selected hosts, records the
// failed ones for --retry-failed and returns the exit status as an
// *exitError (nil: success).
func runPolicy(ctx context.Context, env Env, opts RunOptions) error {
	if opts.PlanFile != "" {
		return applyPlan(ctx, env, opts, opts.PlanFile)
	}
	if opts.PlanOut != "" && (opts.ListHosts || opts.ListResources) {
		return invalid(fmt.Errorf("check: -o writes the plan of a check run; it cannot be given with --list-hosts or --list-resources"))
	}
	s, err := load(ctx, env, loadOptions{
		Command: opts.command(), Policy: opts.Policy, NeedPolicy: true,
		Inventory: opts.Inventory, Local: opts.Local, RetryFailed: opts.RetryFailed,
		Limit: opts.Limit, Slice: opts.Slice, ExtraVars: opts.ExtraVars, Login: opts.Login,
	})
	if err != nil {
		return err
	}
	if errs := validateSession(s); len(errs) > 0 {
		return invalid(joinErrors(errs))
	}
	switch {
	case opts.ListHosts:
		if err := s.listHosts(env.Stdout, opts.Tags, opts.SkipTags); err != nil {
			return invalid(err)
		}
		return nil
	case opts.ListResources:
		if err := s.listResources(env.Stdout, opts.Tags, opts.SkipTags); err != nil {
			return invalid(err)
		}
		return nil
	}
	if err := s.askPasswords(opts.AskPass, opts.AskSudoPass); err != nil {
		return err
	}
	rp, err := s.plans()
	if err != nil {
		return invalid(err)
	}
	forks := rp.forks
	if opts.Forks > 0 {
		forks = opts.Forks
	}
	kind := view.KindHuman
	if opts.JSON {
		kind = view.KindJSON
	}
	tty := env.isTerminal(env.Stdout)
	rep := view.New(kind, env.Stdout, view.Options{Color: tty && env.Getenv("NO_COLOR") == "", Verbose: opts.Verbose, Status: tty, Width: env.termWidth})
	conn := s.newConnector(rp.hosts, opts.AcceptNewHostKeys)
	defer conn.Close()
	eo := engine.Options{
		Policy: s.pol, Registry: s.reg, Lookup: providers.Lookup, Plans: rp.plans,
		Check: opts.Check, Forks: forks, ExtraVars: s.extra,
		Tags: opts.Tags, SkipTags: opts.SkipTags,
		Connector: conn, Hooks: rep, Verbose: opts.Verbose,
		ForceHandlers: opts.ForceHandlers,
		Sequential:    opts.Sequential,
		Info:          s.runInfo(),
	}
	var rec *planRecorder
	if opts.PlanOut != "" {
		rec = newPlanRecorder()
		eo.Hooks = engine.Tee{rep, rec}
		eo.OnLocalRead = rec.read
	}
	sum := engine.Run(ctx, eo)
	if rec != nil {
		if err := writePlan(opts.PlanOut, s, opts, rp, rec, versionText(buildInfo())); err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("check: plan %s not written: %w", opts.PlanOut, err)}
		}
	}
	return runEnd(env, opts.Policy, rep, sum, opts.Check && opts.DetailedExitcode)
}

// runEnd ends a check or apply of policy: it records the failed hosts
// for --retry-failed and returns the exit status (nil: success);
// detailed makes pending changes exit 2.
func runEnd(env Env, policy string, rep view.View, sum *engine.Summary, detailed bool) error {
	if err := writeLastFailed(env.Home, policy, sum); err != nil {
		fmt.Fprintf(env.Stderr, "warning: %v\n", err)
	}
	switch {
	case rep.Err() != nil:
		// The report is incomplete: whatever happened on the hosts, the
		// caller reading it cannot know, so this is not a success.
		return &exitError{code: exitFailed, err: fmt.Errorf("%w: the run's report is incomplete, although the run went on (run check to see where the hosts stand)", rep.Err())}
	case sum.Interrupted:
		return &exitError{code: exitInterrupted}
	case sum.Failed():
		return &exitError{code: exitFailed}
	case detailed && sum.Changed():
		return &exitError{code: exitPending}
	}
	return nil
}
