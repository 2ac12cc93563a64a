package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/inventory"
)

// InventoryOptions are the inputs of inventory.
type InventoryOptions struct {
	// Policy is the optional POLICY argument, a policy file ("" when none).
	Policy string
	// Inventory is -i ("": the policy's inventory key).
	Inventory string
	// Limit is --limit; LimitGiven says it was on the command line (even
	// empty), which --host refuses.
	Limit      string
	LimitGiven bool
	// Host is --host; HostGiven says it was on the command line (even
	// empty).
	Host      string
	HostGiven bool
	// Graph prints the group tree.
	Graph bool
	// Format is --format, how Graph draws the tree: "text" (also when
	// ""), "dot" or "svg"; FormatGiven says it was on the command line,
	// which needs --graph.
	Format      string
	FormatGiven bool
	// TOML prints the inventory as an opsmop TOML inventory.
	TOML bool
	// JSON prints Ansible-compatible JSON (--json or --list).
	JSON bool
	// Login is the login overrides, which change the settings --host
	// shows (and nothing else: without --host they are refused).
	Login LoginOptions
}

// inventoryOptions is the flag layer of inventory.
func inventoryOptions(c *cli.Context) (InventoryOptions, error) {
	pol, err := onlyPolicyArg(c)
	if err != nil {
		return InventoryOptions{}, err
	}
	login, err := loginOptions(c)
	if err != nil {
		return InventoryOptions{}, err
	}
	return InventoryOptions{
		Login:       login,
		Policy:      pol,
		Inventory:   c.String(flagInventory),
		Limit:       c.String(flagLimit),
		LimitGiven:  c.IsSet(flagLimit),
		Host:        c.String(flagHost),
		HostGiven:   c.IsSet(flagHost),
		Graph:       c.Bool(flagGraph),
		Format:      c.String(flagFormat),
		FormatGiven: c.IsSet(flagFormat),
		TOML:        c.Bool(flagTOML),
		JSON:        c.Bool(flagJSON) || c.Bool(flagList),
	}, nil
}

// runInventory lists the selected hosts with their groups, or prints one
// host (--host), the group graph (--graph, as text, dot or svg: --format)
// or Ansible JSON (--json).
func runInventory(ctx context.Context, env Env, opts InventoryOptions) error {
	dotPath, err := checkGraphFormat(env, opts)
	if err != nil {
		return err
	}
	s, err := load(ctx, env, loadOptions{
		Command: "inventory", Policy: opts.Policy, Inventory: opts.Inventory, Limit: opts.Limit, Login: opts.Login,
	})
	if err != nil {
		return err
	}
	redact := func(k string) bool { return inventory.SecretKey(k) }
	if opts.Graph && (opts.JSON || opts.HostGiven) {
		return invalid(errors.New("inventory: --graph cannot be combined with --json, --list or --host: give one of them"))
	}
	if opts.Login.given() && (!opts.HostGiven || opts.JSON) {
		return invalid(errors.New("inventory: -u, --private-key, -T, -b, --sudo-user and -F change only the connection settings --host shows: give --host HOST (without --json)"))
	}
	if opts.TOML && (opts.JSON || opts.Graph || opts.HostGiven) {
		return invalid(errors.New("inventory: --toml cannot be combined with --json, --list, --graph or --host: give one of them"))
	}
	if opts.HostGiven && opts.LimitGiven {
		return invalid(errors.New("inventory: --host shows one host; --limit does not apply to it: give one of them"))
	}
	switch {
	case opts.HostGiven && opts.JSON:
		return s.showHostJSON(opts.Host)
	case opts.JSON:
		inv, err := s.limitedInventory()
		if err != nil {
			return invalid(err)
		}
		b, err := inv.MarshalAnsibleJSON(redact)
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "%s\n", b)
		return nil
	case opts.TOML:
		inv, err := s.limitedInventory()
		if err != nil {
			return invalid(err)
		}
		b, err := inv.MarshalTOML(redact)
		if err != nil {
			return err
		}
		_, err = env.Stdout.Write(b)
		return err
	case opts.Graph:
		inv, err := s.limitedInventory()
		if err != nil {
			return invalid(err)
		}
		return s.printGraph(ctx, inv, opts.Format, dotPath)
	case opts.HostGiven:
		return s.showHost(opts.Host)
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return invalid(err)
	}
	width := 4
	for _, h := range hosts {
		width = max(width, len(h.Name))
	}
	for _, h := range hosts {
		fmt.Fprintf(env.Stdout, "%-*s  %s\n", width, h.Name, strings.Join(h.Groups, ","))
	}
	return nil
}

// limitedInventory is the inventory with only the hosts --limit selects
// (all of it without --limit).
func (s *session) limitedInventory() (*inventory.Inventory, error) {
	if len(s.limits) == 0 {
		return s.inv, nil
	}
	hosts, err := s.selectHosts("", "")
	if err != nil {
		return nil, err
	}
	keep := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		keep[h.Name] = true
	}
	return s.inv.Only(func(n string) bool { return keep[n] }), nil
}

// showHostJSON prints name's merged variables as a JSON object, secrets
// redacted, as ansible-inventory --host does.
func (s *session) showHostJSON(name string) error {
	h, ok := s.inv.Host(name)
	if !ok {
		return invalid(fmt.Errorf("host %q is not in the inventory %s", name, s.inv.Source()))
	}
	vars := make(map[string]any, len(h.Vars))
	for k, v := range h.Vars {
		if inventory.SecretKey(k) {
			v = secret.Redacted
		}
		vars[k] = v
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(vars); err != nil {
		return fmt.Errorf("host %s: encode JSON: %w", name, err)
	}
	_, err := s.env.Stdout.Write(b.Bytes())
	return err
}

// showHost prints name's groups, its variables (secrets redacted) and its
// effective connection settings with where each comes from.
func (s *session) showHost(name string) error {
	h, ok := s.inv.Host(name)
	if !ok {
		return invalid(fmt.Errorf("host %q is not in the inventory %s", name, s.inv.Source()))
	}
	w := s.env.Stdout
	fmt.Fprintf(w, "host: %s\ngroups: %s\nvars:\n", h.Name, strings.Join(h.Groups, ", "))
	keys := make([]string, 0, len(h.Vars))
	for k := range h.Vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := h.Vars[k]
		if inventory.SecretKey(k) {
			v = secret.Redacted
		}
		// No HTML escaping: "<redacted>" must not print as "\u003credacted\u003e".
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(v)
		fmt.Fprintf(w, "  %s = %s\n", k, bytes.TrimSuffix(b.Bytes(), []byte("\n")))
	}
	st, err := s.settings(nil, name)
	if err != nil {
		return invalid(err)
	}
	chain, err := s.viaChain(name, st)
	if err != nil {
		return invalid(err)
	}
	fmt.Fprintf(w, "connection:\n")
	for _, kv := range st.Describe(chain...) {
		src := ""
		if kv.Source != "" {
			src = "  (" + kv.Source + ")"
		}
		fmt.Fprintf(w, "  %-20s %s%s\n", kv.Key, kv.Value, src)
	}
	return nil
}
