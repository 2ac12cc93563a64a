package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/inventory"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// ValidateOptions are the inputs of validate.
type ValidateOptions struct {
	// Policy is the POLICY argument, a policy file.
	Policy string
	// Inventory is -i ("": the policy's inventory key, if any).
	Inventory string
	// ExtraVars are the -e values, unparsed: variables the run will be
	// given.
	ExtraVars []string
	// SSHConfig is -F: the ssh config to resolve connection settings with
	// ("": ~/.ssh/config and /etc/ssh/ssh_config; "none": none).
	SSHConfig string
}

// validateOptions is the flag layer of validate: it requires one policy
// file.
func validateOptions(c *cli.Context) (ValidateOptions, error) {
	if c.Args().Len() == 0 {
		return ValidateOptions{}, invalid(errors.New("missing POLICY argument: opsmop validate POLICY"))
	}
	pol, err := onlyPolicyArg(c)
	if err != nil {
		return ValidateOptions{}, err
	}
	return ValidateOptions{
		Policy:    pol,
		Inventory: c.String(flagInventory),
		ExtraVars: c.StringSlice(flagExtraVars),
		SSHConfig: c.String(flagSSHConfig),
	}, nil
}

// runValidate loads and checks everything without contacting hosts. It
// reports every problem it finds at once, notes the password references
// it cannot resolve here, and prints "POLICY: ok (N roles)".
func runValidate(ctx context.Context, env Env, opts ValidateOptions) error {
	reg := providers.Registry()
	p, err := policy.Load(opts.Policy, reg)
	if err != nil {
		return invalid(err)
	}
	s := &session{env: env, pol: p, reg: reg, curUser: currentUser()}
	var errs []error
	if s.defs, _, err = defaults.LoadFrom(defaults.HomeFile(env.Home), etcDefaults(env)); err != nil {
		errs = append(errs, err)
	}
	if s.extra, err = parseExtraVars(opts.ExtraVars); err != nil {
		errs = append(errs, err)
	}
	if err := s.loadSSHConfig(opts.SSHConfig); err != nil {
		errs = append(errs, err)
	}
	invPath := opts.Inventory
	if invPath == "" {
		invPath = p.Inventory
	}
	if invPath != "" {
		if s.inv, err = loadInventory(ctx, invPath, opts.Inventory == "", opts.Policy); err != nil {
			errs = append(errs, err)
		}
	}
	var refs []string
	if len(errs) == 0 {
		errs, refs = validateSessionRefs(s, true)
	}
	if len(errs) > 0 {
		return invalid(joinErrors(errs))
	}
	for _, r := range slices.Compact(slices.Sorted(slices.Values(refs))) {
		fmt.Fprintf(env.Stderr, "note: not resolvable here, needed by check and apply: %s\n", r)
	}
	fmt.Fprintf(env.Stdout, "%s: ok (%d roles)\n", opts.Policy, len(p.Roles))
	return nil
}

// validateSession runs every check that needs no host, for validate and
// before check or apply contacts any: the policy's expressions,
// templates, patterns and resource rules (engine.Validate), the names
// they read (engine.ValidateNames: top-level names only when the
// inventory is known), and, with an inventory, every host's connection
// settings as the inventory gives them and under every role that selects
// the host (opsmop_port=abc, a missing key file, a jump host cycle).
func validateSession(s *session) []error {
	errs, _ := validateSessionRefs(s, false)
	return errs
}

// validateSessionRefs is validateSession. With deferRefs, a password
// reference that cannot be resolved here (an env:NAME not set, a file:PATH
// not readable, as on a machine that only validates) is not an error but
// returned in refs, for a note: check and apply resolve it, and fail then.
func validateSessionRefs(s *session, deferRefs bool) (errs []error, refs []string) {
	ref := func(err error) bool {
		var re *secret.RefError
		if deferRefs && errors.As(err, &re) {
			refs = append(refs, err.Error())
			return true
		}
		return false
	}
	ev := engine.NewEvaluator(s.pol.Dir)
	errs = engine.Validate(s.pol, s.reg, ev, inventory.CheckPatterns)
	var outside map[string]bool
	if s.inv != nil {
		outside = map[string]bool{}
		for _, h := range s.inv.Hosts() {
			for k := range h.Vars {
				outside[k] = true
			}
		}
		for k := range s.extra {
			outside[k] = true
		}
	}
	errs = append(errs, engine.ValidateNames(s.pol, s.reg, ev, outside)...)
	if s.inv == nil {
		return errs, nil
	}
	bad := map[string]bool{} // reported once, not again per role
	for _, h := range s.inv.Hosts() {
		st, err := s.settings(nil, h.Name)
		if err == nil {
			_, err = s.viaChain(h.Name, st)
		}
		if err != nil && !ref(err) {
			bad[h.Name] = true
			errs = append(errs, fmt.Errorf("inventory %s: %w", s.inv.Source(), err))
		}
	}
	for _, r := range s.pol.Roles {
		for _, h := range s.inv.Select(r.Groups, r.Hosts) {
			if bad[h.Name] {
				continue
			}
			if _, err := s.settings(r, h.Name); err != nil && !ref(err) {
				errs = append(errs, fmt.Errorf("%s: role %s: %w", r.Pos, r.Name, err))
			}
		}
	}
	return errs, refs
}
