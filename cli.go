package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/opsmop/opsmop/policy"
)

// Version is opsmop's version.
const Version = "0.1.0"

// Exit codes, documented in docs/cli.md.
const (
	exitOK          = 0
	exitFailed      = 1   // some host failed or was unreachable
	exitPending     = 2   // check found changes (--detailed-exitcode)
	exitInvalid     = 3   // bad invocation, policy or inventory; nothing contacted
	exitInterrupted = 130 // Ctrl-C
)

// Env is the process environment run works in; tests pass their own. run
// fills Getenv and Home when they are unset (withDefaults); the run
// function of a command expects them filled.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Getenv reads the environment: env:NAME passwords, NO_COLOR, HOME
	// and the flags' variables (OPSMOP_INVENTORY, ...; applyEnv).
	Getenv func(string) string
	// Home overrides the home directory (~/.opsmop, ~/.ssh); "" = $HOME.
	Home string
	// EtcDefaults overrides /etc/opsmop/defaults.toml (tests).
	EtcDefaults string
	// EtcSSHConfig overrides /etc/ssh/ssh_config (tests).
	EtcSSHConfig string
	// IsTerminal reports whether w is a terminal (nil: check os.File).
	IsTerminal func(w io.Writer) bool
}

// termWidth is the width of standard output's terminal in columns, 0
// when it is not a terminal or unknown.
func (e Env) termWidth() int {
	if f, ok := e.Stdout.(*os.File); ok {
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			return w
		}
	}
	return 0
}

// isTerminal reports whether w is a terminal (e.IsTerminal when set).
func (e Env) isTerminal(w io.Writer) bool {
	if e.IsTerminal != nil {
		return e.IsTerminal(w)
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// exitError carries an exit code through urfave/cli.
type exitError struct {
	code int
	err  error
}

// Error is the wrapped error's message ("" when there is none: the
// command has reported already).
func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

// Unwrap returns the wrapped error.
func (e *exitError) Unwrap() error { return e.err }

// invalid marks err as an invalid invocation (exit 3).
func invalid(err error) error { return &exitError{code: exitInvalid, err: err} }

// run is the whole CLI: it parses args, runs the command and returns the
// process exit code.
func run(ctx context.Context, args []string, env Env) int {
	env = env.withDefaults()
	return runApp(ctx, newApp(env), args, env)
}

// withDefaults fills Getenv (os.Getenv) and Home ($HOME, else the user's
// home directory) when they are not set.
func (e Env) withDefaults() Env {
	if e.Getenv == nil {
		e.Getenv = os.Getenv
	}
	if e.Home == "" {
		e.Home = e.Getenv("HOME")
		if e.Home == "" {
			e.Home, _ = os.UserHomeDir()
		}
	}
	return e
}

// runApp runs app on args (after reorderArgs), prints the error if any on
// env.Stderr and returns the exit code: an *exitError's code, else
// exitInvalid.
func runApp(ctx context.Context, app *cli.App, args []string, env Env) int {
	err := app.RunContext(ctx, reorderArgs(app, args))
	if err == nil {
		return exitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintf(env.Stderr, "error: %s\n", ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(env.Stderr, "error: %s\n", err)
	return exitInvalid
}

// action joins a command's two halves: parse, the flag layer, turns the
// command line (with the flags' environment variables applied, applyEnv)
// into options; runCmd acts on them and never sees the *cli.Context.
func action[O any](env Env, parse func(*cli.Context) (O, error), runCmd func(context.Context, Env, O) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		if err := applyEnv(c, env.Getenv); err != nil {
			return err
		}
		opts, err := parse(c)
		if err != nil {
			return err
		}
		return runCmd(c.Context, env, opts)
	}
}

// policyRunFlags are the flags of check and apply (check adds
// --detailed-exitcode before them).
func policyRunFlags() []cli.Flag {
	return append([]cli.Flag{
		limitFlag("narrow the hosts: comma-separated host/group patterns, !pat excludes, &pat intersects"),
		sliceFlag(),
		inventoryFlag("inventory `FILE` (overrides the policy's)"),
		forksFlag(),
		jsonFlag("write one JSON event per line on stdout, nothing else"),
		extraVarsFlag("k=v or @file.(toml|yaml|json); highest precedence"),
		askPassFlag(),
		askSudoPassFlag(),
		localFlag("run on this machine, no SSH"),
		&cli.BoolFlag{Name: flagVerbose, Aliases: []string{"v"}, Usage: "also show unchanged and skipped resources"},
		&cli.StringFlag{Name: flagTags, Aliases: []string{"t"}, Usage: "only resources/roles with one of these comma-separated tags"},
		&cli.StringFlag{Name: flagSkipTags, Usage: "skip resources/roles with one of these comma-separated tags"},
		acceptNewHostKeysFlag("record unknown host keys in ~/.ssh/known_hosts (trust on first use); changed keys are still refused"),
		&cli.BoolFlag{Name: flagForceHandlers, Usage: "run a failed host's notified handlers anyway (after the failure; the host stays failed); a role's force_handlers beats it"},
		&cli.BoolFlag{Name: flagRetryFailed, Usage: "run only the hosts that failed or were unreachable in the previous run (~/.opsmop/last-failed)"},
		&cli.BoolFlag{Name: flagListHosts, Usage: "print the hosts each role targets (after --limit and tags) and exit; contacts no host"},
		&cli.BoolFlag{Name: flagListResources, Usage: "print the resources per role and host (after tags; when not evaluated) and exit; contacts no host"},
	}, loginFlags(nil)...)
}

// newApp builds the CLI. Each command's Action is its flag layer (a
// function from *cli.Context to the command's options) followed by its run
// function.
func newApp(env Env) *cli.App {
	version := versionText(buildInfo())
	app := &cli.App{
		Name:      "opsmop",
		Usage:     "push declarative policy to hosts over SSH",
		Version:   version,
		Reader:    env.Stdin,
		Writer:    env.Stdout,
		ErrWriter: env.Stderr,
		// Errors are printed once, by run.
		ExitErrHandler:  func(*cli.Context, error) {},
		HideHelpCommand: true,
		// -e values arrive whole: "servers=a,b,c" and JSON objects hold
		// commas that are not separators.
		DisableSliceFlagSeparator: true,
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return invalid(fmt.Errorf("%w%s (see opsmop --help)", err, flagSuggestion(err, c.App.Flags)))
		},
		// Without an Action, urfave/cli answers an unknown command with
		// "No help topic for ...".
		Action: func(c *cli.Context) error {
			if c.Args().First() == "help" { // opsmop help [COMMAND]
				for _, a := range c.Args().Tail() {
					switch a {
					case "--": // reorderArgs may have added one
						continue
					case "-h", "--help": // help about help: the app's
						return cli.ShowAppHelp(c)
					}
					if c.App.Command(a) == nil {
						return unknownCommand(c.App, a)
					}
					return cli.ShowCommandHelp(c, a)
				}
				return cli.ShowAppHelp(c)
			}
			if c.Args().Present() {
				return unknownCommand(c.App, c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			{
				Name: "check", Usage: "show what apply would change on every selected host; changes nothing",
				ArgsUsage: "POLICY",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: flagDetailedExitcode, Usage: "exit 2 when changes are pending"},
					&cli.StringFlag{Name: flagOut, Aliases: []string{"o"}, Usage: "write the plan to `FILE`: opsmop apply FILE performs exactly it, or refuses"},
				}, policyRunFlags()...),
				Action: action(env, checkOptions, runPolicy),
			},
			{
				Name: "apply", Usage: "make the selected hosts match the policy, or perform a saved plan exactly",
				ArgsUsage: "POLICY|PLAN",
				Flags: append(policyRunFlags(),
					&cli.BoolFlag{Name: flagNoPipeline, Usage: "apply each change on its own and re-check it before probing the next (no batches of guarded changes)"}),
				Action: action(env, applyOptions, runPolicy),
			},
			{
				Name: "recap", Usage: "merge the --json streams of the slices of one run into one recap and exit code",
				ArgsUsage: "FILE...",
				Flags: []cli.Flag{
					jsonFlag("print the merged summary as one JSON summary event"),
					&cli.BoolFlag{Name: flagDetailedExitcode, Usage: "exit 2 when check streams have pending changes"},
				},
				Action: action(env, recapOptions, runRecap),
			},
			{
				Name: "report", Usage: "write one HTML page of a run (or of its slices) from its --json streams",
				ArgsUsage: "FILE...",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: flagOut, Aliases: []string{"o"}, Usage: "write the page to `FILE`", Value: defaultReportFile},
				},
				Action: action(env, reportOptions, runReport),
			},
			{
				Name: "show", Usage: "print a saved plan as check showed it",
				ArgsUsage: "PLAN",
				Flags: []cli.Flag{
					jsonFlag("print the plan's events as check --json did"),
					&cli.BoolFlag{Name: flagVerbose, Aliases: []string{"v"}, Usage: "also show unchanged and skipped resources"},
				},
				Action: action(env, showOptions, showPlan),
			},
			{
				Name: "pull", Usage: "fetch the policy from git and apply this host's roles here, without SSH (from cron or a timer)",
				ArgsUsage: "--repo URL POLICY",
				Flags:     pullFlags(),
				Action:    action(env, pullOptions, runPull),
			},
			{
				Name: "validate", Usage: "check the policy, its inventory, templates and expressions without contacting hosts",
				ArgsUsage: "POLICY",
				Flags: []cli.Flag{
					inventoryFlag("inventory `FILE` (overrides the policy's)"),
					extraVarsFlag("k=v, a JSON object or @file: variables the run will be given, so that validate knows them"),
					sshConfigFlag(),
				},
				Action: action(env, validateOptions, runValidate),
			},
			{
				Name: "inventory", Usage: "list selected hosts with their groups, one host's settings, the group graph or Ansible JSON",
				ArgsUsage: "[POLICY]",
				Flags: append([]cli.Flag{
					inventoryFlag("inventory `FILE`"),
					limitFlag("host/group patterns"),
					&cli.StringFlag{Name: flagHost, Usage: "print this host's merged variables and effective connection settings"},
					&cli.BoolFlag{Name: flagGraph, Usage: "print the group tree"},
					&cli.StringFlag{Name: flagFormat, Usage: "how --graph draws the tree: text (the default), dot (Graphviz source with the jump-host chains) or svg (needs Graphviz's dot)"},
					&cli.BoolFlag{Name: flagTOML, Usage: "print the inventory as an opsmop TOML inventory (passwords redacted), e.g. to convert an Ansible INI or YAML inventory"},
					jsonFlag("print Ansible-compatible JSON (passwords redacted); with --host, that host's variables"),
					&cli.BoolFlag{Name: flagList, Usage: "the same as --json (as ansible-inventory --list)"},
				}, loginFlags(nil)...),
				Action: action(env, inventoryOptions, runInventory),
			},
			{
				Name: "facts", Usage: "gather and print facts of the selected hosts",
				ArgsUsage: "[POLICY] [HOST...]",
				Flags: append([]cli.Flag{
					inventoryFlag("inventory `FILE`"),
					limitFlag("host/group patterns"),
					sliceFlag(),
					jsonFlag("print JSON"),
					localFlag("gather on this machine, no SSH"),
					acceptNewHostKeysFlag("record unknown host keys (trust on first use)"),
					askPassFlag(),
				}, loginFlags(nil)...),
				Action: action(env, factsOptions, runFacts),
			},
			{
				Name: "run", Usage: "run one shell command on the selected hosts",
				ArgsUsage: "[POLICY] -- COMMAND...",
				Flags: append([]cli.Flag{
					inventoryFlag("inventory `FILE`"),
					limitFlag("host/group patterns"),
					sliceFlag(),
					forksFlag(),
					jsonFlag("one JSON object per host"),
					extraVarsFlag("k=v or @file"),
					askPassFlag(),
					askSudoPassFlag(),
					localFlag("run on this machine, no SSH"),
					acceptNewHostKeysFlag("record unknown host keys (trust on first use)"),
				}, loginFlags(&cli.BoolFlag{Name: flagSudo, Aliases: []string{"s", "b", flagBecome}, Usage: "run the command under sudo (user: --sudo-user, else the inventory's/defaults', else root)"})...),
				Action: action(env, adhocOptions, runAdhoc),
			},
			{
				Name: "version", Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(env.Stdout, "opsmop %s\n", version)
					return nil
				},
			},
		},
	}
	app.Commands = append(app.Commands, completionCommand(env, app), manCommand(env, app))
	// A usage error in a command (an unknown flag, a missing flag value)
	// is reported once on stderr, with exit 3, like one of the app's.
	for _, cmd := range app.Commands {
		name, flags := cmd.Name, cmd.Flags
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return invalid(fmt.Errorf("%s: %w%s (see opsmop %s --help)", name, err, flagSuggestion(err, flags), name))
		}
	}
	return app
}

// unknownCommand is the error for a command app does not have, with the
// likeliest one it meant.
func unknownCommand(app *cli.App, name string) error {
	var names []string
	for _, c := range app.Commands {
		if !c.Hidden {
			names = append(names, c.Name)
		}
	}
	if s := policy.Suggest(name, names); s != "" {
		return invalid(fmt.Errorf("unknown command %q (did you mean %q?)", name, s))
	}
	return invalid(fmt.Errorf("unknown command %q (see opsmop --help for the commands)", name))
}

// flagSuggestion is " (did you mean --limit?)" when err is the flag
// package's "flag provided but not defined: -NAME" and NAME is close to
// one of flags' names; else "".
func flagSuggestion(err error, flags []cli.Flag) string {
	const prefix = "flag provided but not defined: "
	msg := err.Error()
	if !strings.HasPrefix(msg, prefix) {
		return ""
	}
	typed := strings.TrimLeft(strings.TrimPrefix(msg, prefix), "-")
	var names []string
	for _, f := range flags {
		for _, n := range f.Names() {
			if len(n) > 1 { // a one-letter alias is no likely typo target
				names = append(names, n)
			}
		}
	}
	if s := policy.Suggest(typed, names); s != "" {
		return " (did you mean " + dashed(s) + "?)"
	}
	return ""
}

// reorderArgs moves a subcommand's positional arguments after its flags,
// so `opsmop apply site.toml --limit web*` works (urfave/cli stops parsing
// flags at the first positional argument). A flag of the command that
// takes a value (isValueFlag) keeps the word after it. Everything after
// "--" is left alone.
func reorderArgs(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	i := 1
	// global flags before the command
	for i < len(args) && strings.HasPrefix(args[i], "-") {
		out = append(out, args[i])
		i++
	}
	if i >= len(args) {
		return out
	}
	var cmdFlags []cli.Flag // none for an unknown command
	if cmd := app.Command(args[i]); cmd != nil {
		cmdFlags = cmd.Flags
	}
	out = append(out, args[i]) // the command
	i++
	var flags, pos []string
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			pos = append(pos, args[i:]...)
			break
		}
		if strings.HasPrefix(a, "-") && a != "-" {
			flags = append(flags, a)
			if isValueFlag(cmdFlags, a) && i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
			continue
		}
		pos = append(pos, a)
	}
	if len(pos) > 0 && pos[0] != "--" {
		// keep an explicit "--" so positionals starting with "-" stay
		// positional
		return append(append(append(out, flags...), "--"), pos...)
	}
	return append(append(out, flags...), pos...)
}
