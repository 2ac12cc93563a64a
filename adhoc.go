package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// AdhocOptions are the inputs of run: one shell command on the selected
// hosts.
type AdhocOptions struct {
	// Slice is --slice K/N ("": every selected host).
	Slice string
	// Policy is the optional POLICY argument ("" when none); it is loaded
	// only when it is named like a policy file.
	Policy string
	// Command is the command's words, joined with spaces to make the
	// shell command.
	Command []string
	// Inventory is -i ("": the policy's inventory key).
	Inventory string
	// Limit is --limit ("": every host).
	Limit string
	// Forks is --forks (0: the hosts' forks setting).
	Forks int
	// JSON prints one JSON object per host instead of prefixed lines.
	JSON bool
	// ExtraVars are the -e values, unparsed.
	ExtraVars []string
	// AskPass and AskSudoPass prompt for the SSH and sudo passwords (-k,
	// -K).
	AskPass     bool
	AskSudoPass bool
	// Local runs on this machine, without SSH.
	Local bool
	// AcceptNewHostKeys records unknown host keys (trust on first use).
	AcceptNewHostKeys bool
	// Login is the login overrides; Login.Become (--sudo, -s, -b,
	// --become) runs the command under sudo.
	Login LoginOptions
}

// adhocOptions is the flag layer of run: the command is what follows
// "--", else what follows a POLICY, else every argument.
func adhocOptions(c *cli.Context) (AdhocOptions, error) {
	args := c.Args().Slice()
	var cmdWords []string
	for i, a := range args {
		if a == "--" {
			cmdWords, args = args[i+1:], args[:i]
			break
		}
	}
	if cmdWords == nil && len(args) > 0 && !isPolicyFile(args[0]) {
		cmdWords, args = args, nil
	} else if cmdWords == nil && len(args) > 1 {
		cmdWords, args = args[1:], args[:1]
	}
	if len(cmdWords) == 0 {
		return AdhocOptions{}, invalid(errors.New("missing command: opsmop run [-i INVENTORY | POLICY] --limit PATTERN -- COMMAND [ARGS]"))
	}
	if len(args) > 1 {
		return AdhocOptions{}, invalid(fmt.Errorf("unexpected arguments %q before --: give at most one POLICY", args[1:]))
	}
	login, err := loginOptions(c)
	if err != nil {
		return AdhocOptions{}, err
	}
	opts := AdhocOptions{
		Login:             login,
		Command:           cmdWords,
		Inventory:         c.String(flagInventory),
		Limit:             c.String(flagLimit),
		Slice:             c.String(flagSlice),
		Forks:             c.Int(flagForks),
		JSON:              c.Bool(flagJSON),
		ExtraVars:         c.StringSlice(flagExtraVars),
		AskPass:           c.Bool(flagAskPass),
		AskSudoPass:       c.Bool(flagAskSudoPass),
		Local:             c.Bool(flagLocal),
		AcceptNewHostKeys: c.Bool(flagAcceptNewHostKeys),
	}
	if len(args) == 1 {
		opts.Policy = args[0]
	}
	return opts, nil
}

// runAdhoc is `opsmop run ... -- COMMAND...`: one shell command on every
// selected host, over the same connections (persistent shell, sudo, jump
// hosts) as a policy run.
func runAdhoc(ctx context.Context, env Env, opts AdhocOptions) error {
	s, err := load(ctx, env, loadOptions{
		Command: "run", Policy: opts.Policy, Inventory: opts.Inventory,
		Local: opts.Local, Limit: opts.Limit, Slice: opts.Slice, ExtraVars: opts.ExtraVars, Login: opts.Login,
	})
	if err != nil {
		return err
	}
	if err := s.askPasswords(opts.AskPass, opts.AskSudoPass); err != nil {
		return err
	}
	cmd := strings.Join(opts.Command, " ")
	role := &policy.Role{Name: "run"}
	raw := &policy.Node{Kind: policy.Map, Entries: []policy.Entry{
		{Key: "type", Value: &policy.Node{Kind: policy.String, Value: "shell"}},
		{Key: "cmd", Value: &policy.Node{Kind: policy.String, Value: cmd}},
	}}
	role.Resources = []*policy.Resource{{Type: "shell", Raw: raw, Spec: &providers.ShellSpec{Cmd: cmd}, Path: "command", Pos: policy.Pos{File: "command line"}}}
	s.pol.Roles = []*policy.Role{role}
	rp, err := s.plans()
	if err != nil {
		return invalid(err)
	}
	forks := rp.forks
	if opts.Forks > 0 {
		forks = opts.Forks
	}
	kind := view.KindAdhoc
	if opts.JSON {
		kind = view.KindAdhocJSON
	}
	rep := view.New(kind, env.Stdout, view.Options{})
	conn := s.newConnector(rp.hosts, opts.AcceptNewHostKeys)
	defer conn.Close()
	sum := engine.Run(ctx, engine.Options{
		Policy: s.pol, Registry: s.reg, Lookup: providers.Lookup, Plans: rp.plans,
		Forks: forks, ExtraVars: s.extra, Connector: conn, Hooks: rep, SkipFacts: true,
	})
	switch {
	case rep.Err() != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("%w: the command's output is incomplete, although it ran", rep.Err())}
	case sum.Interrupted:
		return &exitError{code: exitInterrupted}
	case sum.Failed():
		return &exitError{code: exitFailed}
	}
	return nil
}
