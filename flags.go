package main

import (
	"fmt"
	"strconv"

	"github.com/opsmop/opsmop/defaults"
	"github.com/urfave/cli/v2"
)

// Flag names. The flag layer reads flags by these names only.
const (
	flagAcceptNewHostKeys = "accept-new-host-keys"
	flagAskPass           = "ask-pass"
	flagAskSudoPass       = "ask-sudo-pass"
	flagDetailedExitcode  = "detailed-exitcode"
	flagExtraVars         = "extra-vars"
	flagForks             = "forks"
	flagGraph             = "graph"
	flagHost              = "host"
	flagInventory         = "inventory"
	flagJSON              = "json"
	flagLimit             = "limit"
	flagList              = "list"
	flagLocal             = "local"
	flagRetryFailed       = "retry-failed"
	flagSkipTags          = "skip-tags"
	flagSudo              = "sudo"
	flagTags              = "tags"
	flagVerbose           = "verbose"
)

// Each flag that several commands share has one constructor, which fixes
// its name, aliases and type; the commands differ only in the usage text
// they pass. Every call returns a new flag: commands never share one.

// inventoryFlag is -i/--inventory FILE.
func inventoryFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagInventory, Aliases: []string{"i"}, Usage: usage}
}

// limitFlag is -l/--limit PATTERNS.
func limitFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagLimit, Aliases: []string{"l"}, Usage: usage}
}

// forksFlag is -f/--forks N. Its help shows the default that applies when
// it is not given (0 means "not given").
func forksFlag() cli.Flag {
	return &cli.IntFlag{Name: flagForks, Aliases: []string{"f"}, Usage: "hosts worked on at once", DefaultText: "tuning.forks, else " + strconv.Itoa(defaults.DefaultForks)}
}

// jsonFlag is --json.
func jsonFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: flagJSON, Usage: usage}
}

// extraVarsFlag is -e/--extra-vars, repeatable; each value arrives whole
// (the app disables the slice separator).
func extraVarsFlag(usage string) cli.Flag {
	return &cli.StringSliceFlag{Name: flagExtraVars, Aliases: []string{"e"}, Usage: usage}
}

// askPassFlag is -k/--ask-pass.
func askPassFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagAskPass, Aliases: []string{"k"}, Usage: "prompt for the SSH password"}
}

// askSudoPassFlag is -K/--ask-sudo-pass.
func askSudoPassFlag() cli.Flag {
	return &cli.BoolFlag{Name: flagAskSudoPass, Aliases: []string{"K"}, Usage: "prompt for the sudo password"}
}

// localFlag is --local.
func localFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: flagLocal, Usage: usage}
}

// acceptNewHostKeysFlag is --accept-new-host-keys.
func acceptNewHostKeysFlag(usage string) cli.Flag {
	return &cli.BoolFlag{Name: flagAcceptNewHostKeys, Usage: usage}
}

// isValueFlag reports whether arg, a command-line word such as "-l" or
// "--limit", names one of flags that takes a value, so that reorderArgs
// knows the next word belongs to it. Every flag but a *cli.BoolFlag takes
// a value. Names are matched as they are written: one dash before a
// one-letter name, two before a longer one.
func isValueFlag(flags []cli.Flag, arg string) bool {
	for _, f := range flags {
		if _, ok := f.(*cli.BoolFlag); ok {
			continue
		}
		for _, n := range f.Names() {
			if arg == dashed(n) {
				return true
			}
		}
	}
	return false
}

// dashed writes a flag name as it is typed: -l, --limit.
func dashed(name string) string {
	if len(name) == 1 {
		return "-" + name
	}
	return "--" + name
}

// onlyPolicyArg refuses positional arguments after the POLICY of a
// command that takes one policy and nothing else, and a POLICY that is not
// a policy file. It returns the POLICY ("" when none is given).
func onlyPolicyArg(c *cli.Context) (string, error) {
	name := c.Command.Name
	if c.Args().Len() > 1 {
		return "", invalid(fmt.Errorf("%s: unexpected arguments %q after the policy %s: opsmop %s takes one POLICY (see opsmop %s --help)", name, c.Args().Tail(), c.Args().First(), name, name))
	}
	a := c.Args().First()
	if a != "" && !isPolicyFile(a) {
		return "", invalid(fmt.Errorf("%s: %s is not a policy file (name it .toml, .yaml, .yml or .json; an inventory goes after -i)", name, a))
	}
	return a, nil
}
