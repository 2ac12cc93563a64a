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
	flagBecome            = "become"
	flagDetailedExitcode  = "detailed-exitcode"
	flagExtraVars         = "extra-vars"
	flagForceHandlers     = "force-handlers"
	flagForks             = "forks"
	flagFormat            = "format"
	flagGraph             = "graph"
	flagTOML              = "toml"
	flagHost              = "host"
	flagInventory         = "inventory"
	flagJSON              = "json"
	flagLimit             = "limit"
	flagList              = "list"
	flagListHosts         = "list-hosts"
	flagListResources     = "list-resources"
	flagLocal             = "local"
	flagNoPipeline        = "no-pipeline"
	flagOut               = "out"
	flagPrivateKey        = "private-key"
	flagRetryFailed       = "retry-failed"
	flagSkipTags          = "skip-tags"
	flagSlice             = "slice"
	flagSSHConfig         = "ssh-config"
	flagSudo              = "sudo"
	flagSudoUser          = "sudo-user"
	flagTags              = "tags"
	flagTimeout           = "timeout"
	flagUser              = "user"
	flagVerbose           = "verbose"
	// opsmop pull
	flagRepo   = "repo"
	flagRef    = "ref"
	flagDir    = "dir"
	flagName   = "name"
	flagLogDir = "log-dir"
	flagCheck  = "check"
)

// Each flag that several commands share has one constructor, which fixes
// its name, aliases and type; the commands differ only in the usage text
// they pass. Every call returns a new flag: commands never share one.

// Environment variables that give a flag's value when the command line
// does not (applyEnv, reading Env.Getenv). They are defaults: where the
// flag on the command line would be refused (--limit with inventory
// --host, a login override with --list-hosts), the variable is not
// used.
const (
	envInventory  = "OPSMOP_INVENTORY"
	envLimit      = "OPSMOP_LIMIT"
	envForks      = "OPSMOP_FORKS"
	envUser       = "OPSMOP_USER"
	envPrivateKey = "OPSMOP_PRIVATE_KEY"
	envSSHConfig  = "OPSMOP_SSH_CONFIG"
)

// flagEnvVars maps a flag name to its environment variable.
func flagEnvVars() map[string]string {
	return map[string]string{
		flagInventory: envInventory, flagLimit: envLimit, flagForks: envForks,
		flagUser: envUser, flagPrivateKey: envPrivateKey, flagSSHConfig: envSSHConfig,
	}
}

// envUsage is usage with the flag's environment variable named.
func envUsage(usage, envVar string) string { return usage + " [$" + envVar + "]" }

// inventoryFlag is -i/--inventory FILE ($OPSMOP_INVENTORY).
func inventoryFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagInventory, Aliases: []string{"i"}, Usage: envUsage(usage, envInventory)}
}

// limitFlag is -l/--limit PATTERNS ($OPSMOP_LIMIT).
func limitFlag(usage string) cli.Flag {
	return &cli.StringFlag{Name: flagLimit, Aliases: []string{"l"}, Usage: envUsage(usage, envLimit)}
}

// sliceFlag is --slice K/N.
func sliceFlag() cli.Flag {
	return &cli.StringFlag{Name: flagSlice, Usage: "only slice `K/N` of the selected hosts (by sorted name), so that N processes each take one"}
}

// forksFlag is -f/--forks N. Its help shows the default that applies when
// it is not given (0 means "not given").
func forksFlag() cli.Flag {
	return &cli.IntFlag{Name: flagForks, Aliases: []string{"f"}, Usage: envUsage("hosts worked on at once", envForks), DefaultText: "tuning.forks, else " + strconv.Itoa(defaults.DefaultForks)}
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

// pullFlags are the flags of pull.
func pullFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagRepo, Usage: "the git repository holding the policy: a `URL`, user@host:path or a path (required)"},
		&cli.StringFlag{Name: flagRef, Usage: "the branch, tag or commit `REF` to apply (default: the remote's default branch)"},
		&cli.StringFlag{Name: flagDir, Usage: "the checkout `DIR` (default: /var/lib/opsmop/pull/NAME, for non-root ~/.opsmop/pull/NAME); opsmop owns it: local changes are discarded"},
		&cli.StringFlag{Name: flagName, Usage: "this host's inventory `NAME` (default: the hostname, else the short hostname)"},
		&cli.StringFlag{Name: flagLogDir, Usage: "`DIR` of each run's JSON log and recap.log (default: /var/log/opsmop/pull, for non-root ~/.opsmop/pull-logs)"},
		&cli.BoolFlag{Name: flagCheck, Usage: "pull and check only: change nothing on this host"},
	}
}

// metaFromEnv is the key of c.App.Metadata under which applyEnv records
// the flags it set from the environment (a map[string]bool by flag name).
const metaFromEnv = "opsmop.fromEnv"

// applyEnv gives each flag of c's command that has an environment
// variable (flagEnvVars) and is not on the command line the variable's
// value, when it is set and not empty, except where the flag would be
// refused (envRefused), and records it (fromEnv). A value the flag cannot
// take is an invalid-invocation error naming the variable.
func applyEnv(c *cli.Context, getenv func(string) string) error {
	vars := flagEnvVars()
	set := map[string]bool{}
	for _, f := range c.Command.Flags {
		name := f.Names()[0]
		v, ok := vars[name]
		if !ok || c.IsSet(name) || envRefused(c, name) {
			continue
		}
		val := getenv(v)
		if val == "" {
			continue
		}
		if err := c.Set(name, val); err != nil {
			return invalid(fmt.Errorf("%s: environment variable %s=%q is not a valid --%s (%v): fix or unset it", c.Command.Name, v, val, name, err))
		}
		set[name] = true
	}
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[metaFromEnv] = set
	return nil
}

// fromEnv reports whether applyEnv set the flag name from its
// environment variable.
func fromEnv(c *cli.Context, name string) bool {
	set, _ := c.App.Metadata[metaFromEnv].(map[string]bool)
	return set[name]
}

// envRefused reports whether the flag name would be refused with what
// the command line gives, so that its environment variable is not
// applied: the login overrides with --local; --limit with inventory
// --host; the login overrides with
// inventory without --host or with --json; --forks and the login
// overrides with --list-hosts or --list-resources.
func envRefused(c *cli.Context, name string) bool {
	login := name == flagUser || name == flagPrivateKey || name == flagSSHConfig
	switch {
	case login && c.Bool(flagLocal):
		return true
	case c.Command.Name == "apply" && (name == flagLimit || name == flagInventory) && isPlanFile(c.Args().First()):
		// A plan fixes the inventory and the hosts.
		return true
	case c.Command.Name == "inventory" && name == flagLimit:
		return c.IsSet(flagHost)
	case c.Command.Name == "inventory" && login:
		return !c.IsSet(flagHost) || c.IsSet(flagJSON) || c.IsSet(flagList)
	case c.Command.Name == "check" || c.Command.Name == "apply":
		return (login || name == flagForks) && (c.IsSet(flagListHosts) || c.IsSet(flagListResources))
	}
	return false
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
		plan := ""
		if name == "apply" {
			plan = ", nor a plan written by opsmop check POLICY -o FILE"
		}
		return "", invalid(fmt.Errorf("%s: %s is not a policy file (name it .toml, .yaml, .yml or .json; an inventory goes after -i)%s", name, a, plan))
	}
	return a, nil
}
