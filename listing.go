package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/policy"
)

// listOnlyRefused are the flags --list-hosts and --list-resources are
// refused with: they would change a run, and listing runs nothing.
func listOnlyRefused() []string {
	return []string{
		flagJSON, flagForks, flagAskPass, flagAskSudoPass, flagAcceptNewHostKeys,
		flagDetailedExitcode, flagVerbose, flagUser, flagPrivateKey, flagTimeout, flagSSHConfig,
		flagBecome, flagSudoUser, flagForceHandlers, flagNoPipeline,
	}
}

// listFlags reads --list-hosts and --list-resources of check or apply,
// refusing both together and either with a flag that only a run uses
// (listOnlyRefused), so that no flag is silently ignored.
func listFlags(c *cli.Context) (hosts, resources bool, err error) {
	hosts, resources = c.Bool(flagListHosts), c.Bool(flagListResources)
	name := c.Command.Name
	if hosts && resources {
		return false, false, invalid(fmt.Errorf("%s: --list-hosts and --list-resources cannot be combined: give one of them (--list-resources names the hosts too)", name))
	}
	if !hosts && !resources {
		return false, false, nil
	}
	list := "--" + flagListHosts
	if resources {
		list = "--" + flagListResources
	}
	var set []string
	for _, f := range listOnlyRefused() {
		if c.IsSet(f) {
			set = append(set, "--"+f)
		}
	}
	if len(set) > 0 {
		return false, false, invalid(fmt.Errorf("%s: %s connects to nothing and runs nothing, so %s would be ignored: drop %s", name, list, strings.Join(set, ", "), strings.Join(set, ", ")))
	}
	return hosts, resources, nil
}

// listHosts prints, for each role of the session's policy, the hosts it
// targets after --limit, --retry-failed, --tags and --skip-tags, in
// inventory order. It contacts no host.
func (s *session) listHosts(w io.Writer, tags, skip []string) error {
	for _, r := range s.pol.Roles {
		if !engine.RoleSelected(tags, skip, r) {
			fmt.Fprintf(w, "role %s (0 hosts: --tags/--skip-tags select none of its resources)\n", r.Name)
			continue
		}
		hosts, err := s.selectHosts(r.Groups, r.Hosts)
		if err != nil {
			return err
		}
		noun := "hosts"
		if len(hosts) == 1 {
			noun = "host"
		}
		fmt.Fprintf(w, "role %s (%d %s):\n", r.Name, len(hosts), noun)
		for _, h := range hosts {
			fmt.Fprintf(w, "  %s\n", h.Name)
		}
	}
	return nil
}

// listResources prints, for each role and each host it targets, the
// resources --tags and --skip-tags select (pre, resources, post) and the
// role's handlers, labelled as the run labels them but before templates
// are rendered: `when` is not evaluated and loops are not expanded. It
// contacts no host.
func (s *session) listResources(w io.Writer, tags, skip []string) error {
	for _, r := range s.pol.Roles {
		if !engine.RoleSelected(tags, skip, r) {
			fmt.Fprintf(w, "role %s: --tags/--skip-tags select none of its resources\n", r.Name)
			continue
		}
		hosts, err := s.selectHosts(r.Groups, r.Hosts)
		if err != nil {
			return err
		}
		if len(hosts) == 0 {
			fmt.Fprintf(w, "role %s: no hosts\n", r.Name)
			continue
		}
		for _, h := range hosts {
			fmt.Fprintf(w, "role %s, host %s:\n", r.Name, h.Name)
			for _, list := range [][]*policy.Resource{r.Pre, r.Resources, r.Post} {
				for _, res := range list {
					if engine.ResourceSelected(tags, skip, r, res) {
						fmt.Fprintf(w, "  %s\n", res.DefaultLabel(s.reg))
					}
				}
			}
			for _, res := range r.Handlers {
				fmt.Fprintf(w, "  handler %s (if notified)\n", res.DefaultLabel(s.reg))
			}
		}
	}
	return nil
}
