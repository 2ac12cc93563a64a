package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/inventory"
	"github.com/opsmop/opsmop/policy"
)

// factsForks is how many hosts facts gathers from at once.
const factsForks = 20

// FactsOptions are the inputs of facts.
type FactsOptions struct {
	// Slice is --slice K/N ("": every selected host).
	Slice string
	// Policy is the optional POLICY argument ("" when none): the first
	// argument when it is named like a policy file.
	Policy string
	// Hosts are the HOST arguments: only these of the selected hosts
	// (none: every selected host).
	Hosts []string
	// Inventory is -i ("": the policy's inventory key).
	Inventory string
	// Limit is --limit ("": every host).
	Limit string
	// JSON prints one JSON object of every host's facts.
	JSON bool
	// Local gathers on this machine, without SSH.
	Local bool
	// AcceptNewHostKeys records unknown host keys (trust on first use).
	AcceptNewHostKeys bool
	// AskPass prompts for the SSH password (-k).
	AskPass bool
	// Login is the login overrides (-u, --private-key, -T, -b,
	// --sudo-user): -b gathers the facts under sudo.
	Login LoginOptions
}

// factsOptions is the flag layer of facts.
func factsOptions(c *cli.Context) (FactsOptions, error) {
	login, err := loginOptions(c)
	if err != nil {
		return FactsOptions{}, err
	}
	opts := FactsOptions{
		Login:             login,
		Hosts:             c.Args().Slice(),
		Inventory:         c.String(flagInventory),
		Limit:             c.String(flagLimit),
		Slice:             c.String(flagSlice),
		JSON:              c.Bool(flagJSON),
		Local:             c.Bool(flagLocal),
		AcceptNewHostKeys: c.Bool(flagAcceptNewHostKeys),
		AskPass:           c.Bool(flagAskPass),
	}
	if len(opts.Hosts) > 0 && isPolicyFile(opts.Hosts[0]) {
		opts.Policy, opts.Hosts = opts.Hosts[0], opts.Hosts[1:]
	}
	return opts, nil
}

// runFacts gathers the facts of the selected hosts (at most factsForks at
// once) and prints them. A host that cannot be reached is printed as
// such and makes the command fail (exit 1) after every host is printed.
func runFacts(ctx context.Context, env Env, opts FactsOptions) error {
	s, err := load(ctx, env, loadOptions{
		Command: "facts", Policy: opts.Policy, Inventory: opts.Inventory,
		Local: opts.Local, Limit: opts.Limit, Slice: opts.Slice, Login: opts.Login,
	})
	if err != nil {
		return err
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return invalid(err)
	}
	if len(opts.Hosts) > 0 {
		want := map[string]bool{}
		for _, a := range opts.Hosts {
			if _, ok := s.inv.Host(a); !ok {
				return invalid(fmt.Errorf("host %q is not in the inventory", a))
			}
			want[a] = true
		}
		var sel []*inventory.Host
		for _, h := range hosts {
			if want[h.Name] {
				sel = append(sel, h)
			}
		}
		hosts = sel
	}
	if err := s.askPasswords(opts.AskPass, false); err != nil {
		return err
	}
	conn := s.newConnector(nil, opts.AcceptNewHostKeys)
	defer conn.Close()
	type res struct {
		facts engine.Facts
		err   error
	}
	out := make([]res, len(hosts))
	var wg sync.WaitGroup
	sem := make(chan struct{}, factsForks)
	role := &policy.Role{}
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			hc, err := s.resolve(role, h.Name)
			if err != nil {
				out[i].err = err
				return
			}
			host, err := conn.open(ctx, hc)
			if err != nil {
				out[i].err = err
				return
			}
			out[i].facts, out[i].err = engine.GatherFacts(ctx, host)
		}()
	}
	wg.Wait()
	failed := false
	if opts.JSON {
		m := map[string]any{}
		for i, h := range hosts {
			if out[i].err != nil {
				m[h.Name] = map[string]string{"error": out[i].err.Error()}
				failed = true
				continue
			}
			m[h.Name] = out[i].facts
		}
		b, _ := json.MarshalIndent(m, "", "  ")
		fmt.Fprintf(env.Stdout, "%s\n", b)
	} else {
		for i, h := range hosts {
			if out[i].err != nil {
				fmt.Fprintf(env.Stdout, "%s: UNREACHABLE: %s\n", h.Name, out[i].err)
				failed = true
				continue
			}
			keys := make([]string, 0, len(out[i].facts))
			for k := range out[i].facts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			fmt.Fprintf(env.Stdout, "%s:\n", h.Name)
			for _, k := range keys {
				fmt.Fprintf(env.Stdout, "  %-15s %v\n", k, out[i].facts[k])
			}
		}
	}
	if failed {
		return &exitError{code: exitFailed}
	}
	return nil
}
