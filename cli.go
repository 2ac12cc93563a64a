package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/urfave/cli/v2"
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

// Env is the process environment run works in; tests pass their own.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// Home overrides the home directory (~/.opsmop, ~/.ssh); "" = $HOME.
	Home string
	// EtcDefaults overrides /etc/opsmop/defaults.toml (tests).
	EtcDefaults string
	// IsTerminal reports whether w is a terminal (nil: check os.File).
	IsTerminal func(w io.Writer) bool
}

// exitError carries an exit code through urfave/cli.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func invalid(err error) error { return &exitError{code: exitInvalid, err: err} }

// run is the whole CLI: it parses args, runs the command and returns the
// process exit code.
func run(ctx context.Context, args []string, env Env) int {
	if env.Getenv == nil {
		env.Getenv = os.Getenv
	}
	if env.Home == "" {
		env.Home = env.Getenv("HOME")
		if env.Home == "" {
			env.Home, _ = os.UserHomeDir()
		}
	}
	app := newApp(env)
	err := app.RunContext(ctx, reorderArgs(args))
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

func newApp(env Env) *cli.App {
	runFlags := []cli.Flag{
		&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "narrow the hosts: comma-separated host/group patterns, !pat excludes, &pat intersects"},
		&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE` (overrides the policy's)"},
		&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "hosts worked on at once (default: tuning.forks, else 20)"},
		&cli.BoolFlag{Name: "json", Usage: "write one JSON event per line on stdout, nothing else"},
		&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "k=v or @file.(toml|yaml|json); highest precedence"},
		&cli.BoolFlag{Name: "ask-pass", Aliases: []string{"k"}, Usage: "prompt for the SSH password"},
		&cli.BoolFlag{Name: "ask-sudo-pass", Aliases: []string{"K"}, Usage: "prompt for the sudo password"},
		&cli.BoolFlag{Name: "local", Usage: "run on this machine, no SSH"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "also show unchanged and skipped resources"},
		&cli.StringFlag{Name: "tags", Aliases: []string{"t"}, Usage: "only resources/roles with one of these comma-separated tags"},
		&cli.StringFlag{Name: "skip-tags", Usage: "skip resources/roles with one of these comma-separated tags"},
		&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "record unknown host keys in ~/.ssh/known_hosts (trust on first use); changed keys are still refused"},
		&cli.BoolFlag{Name: "retry-failed", Usage: "run only the hosts that failed or were unreachable in the previous run (~/.opsmop/last-failed)"},
	}
	checkFlags := append([]cli.Flag{
		&cli.BoolFlag{Name: "detailed-exitcode", Usage: "exit 2 when changes are pending"},
	}, runFlags...)
	app := &cli.App{
		Name:      "opsmop",
		Usage:     "push declarative policy to hosts over SSH",
		Version:   Version,
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
			return invalid(fmt.Errorf("%w (see opsmop --help)", err))
		},
		// Without an Action, urfave/cli answers an unknown command with
		// "No help topic for ...".
		Action: func(c *cli.Context) error {
			if c.Args().First() == "help" { // opsmop help [COMMAND]
				for _, a := range c.Args().Tail() {
					if a != "--" { // reorderArgs may have added one
						return cli.ShowCommandHelp(c, a)
					}
				}
				return cli.ShowAppHelp(c)
			}
			if c.Args().Present() {
				return invalid(fmt.Errorf("unknown command %q (see opsmop --help for the commands)", c.Args().First()))
			}
			return cli.ShowAppHelp(c)
		},
		Commands: []*cli.Command{
			{
				Name: "check", Usage: "show what apply would change on every selected host; changes nothing",
				ArgsUsage: "POLICY", Flags: checkFlags,
				Action: func(c *cli.Context) error { return cmdRun(c, env, true) },
			},
			{
				Name: "apply", Usage: "make the selected hosts match the policy",
				ArgsUsage: "POLICY", Flags: runFlags,
				Action: func(c *cli.Context) error { return cmdRun(c, env, false) },
			},
			{
				Name: "validate", Usage: "check the policy, its inventory, templates and expressions without contacting hosts",
				ArgsUsage: "POLICY",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE` (overrides the policy's)"},
					&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "k=v, a JSON object or @file: variables the run will be given, so that validate knows them"},
				},
				Action: func(c *cli.Context) error { return cmdValidate(c, env) },
			},
			{
				Name: "inventory", Usage: "list selected hosts with their groups, one host's settings, the group graph or Ansible JSON",
				ArgsUsage: "[POLICY]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE`"},
					&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host/group patterns"},
					&cli.StringFlag{Name: "host", Usage: "print this host's merged variables and effective connection settings"},
					&cli.BoolFlag{Name: "graph", Usage: "print the group tree"},
					&cli.BoolFlag{Name: "json", Usage: "print Ansible-compatible JSON (passwords redacted); with --host, that host's variables"},
					&cli.BoolFlag{Name: "list", Usage: "the same as --json (as ansible-inventory --list)"},
				},
				Action: func(c *cli.Context) error { return cmdInventory(c, env) },
			},
			{
				Name: "facts", Usage: "gather and print facts of the selected hosts",
				ArgsUsage: "[POLICY] [HOST...]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE`"},
					&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host/group patterns"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
					&cli.BoolFlag{Name: "local", Usage: "gather on this machine, no SSH"},
					&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "record unknown host keys (trust on first use)"},
					&cli.BoolFlag{Name: "ask-pass", Aliases: []string{"k"}, Usage: "prompt for the SSH password"},
				},
				Action: func(c *cli.Context) error { return cmdFacts(c, env) },
			},
			{
				Name: "run", Usage: "run one shell command on the selected hosts",
				ArgsUsage: "[POLICY] -- COMMAND...",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "inventory", Aliases: []string{"i"}, Usage: "inventory `FILE`"},
					&cli.StringFlag{Name: "limit", Aliases: []string{"l"}, Usage: "host/group patterns"},
					&cli.BoolFlag{Name: "sudo", Aliases: []string{"s"}, Usage: "run the command under sudo (sudo user from the inventory/defaults, else root)"},
					&cli.IntFlag{Name: "forks", Aliases: []string{"f"}, Usage: "hosts worked on at once"},
					&cli.BoolFlag{Name: "json", Usage: "one JSON object per host"},
					&cli.StringSliceFlag{Name: "extra-vars", Aliases: []string{"e"}, Usage: "k=v or @file"},
					&cli.BoolFlag{Name: "ask-pass", Aliases: []string{"k"}, Usage: "prompt for the SSH password"},
					&cli.BoolFlag{Name: "ask-sudo-pass", Aliases: []string{"K"}, Usage: "prompt for the sudo password"},
					&cli.BoolFlag{Name: "local", Usage: "run on this machine, no SSH"},
					&cli.BoolFlag{Name: "accept-new-host-keys", Usage: "record unknown host keys (trust on first use)"},
				},
				Action: func(c *cli.Context) error { return cmdAdhoc(c, env) },
			},
			{
				Name: "version", Usage: "print the version",
				Action: func(c *cli.Context) error {
					fmt.Fprintf(env.Stdout, "opsmop %s (%s %s/%s)\n", Version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
					return nil
				},
			},
		},
	}
	// A usage error in a command (an unknown flag, a missing flag value)
	// is reported once on stderr, with exit 3, like one of the app's.
	for _, cmd := range app.Commands {
		name := cmd.Name
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return invalid(fmt.Errorf("%s: %w (see opsmop %s --help)", name, err, name))
		}
	}
	return app
}

// isValueFlag reports whether flag takes a value, so reorderArgs knows
// that the next argument belongs to it.
func isValueFlag(flag string) bool {
	switch flag {
	case "-l", "--limit", "-i", "--inventory", "-f", "--forks", "-e", "--extra-vars",
		"-t", "--tags", "--skip-tags", "--host":
		return true
	}
	return false
}

// reorderArgs moves a subcommand's positional arguments after its flags,
// so `opsmop apply site.toml --limit web*` works (urfave/cli stops parsing
// flags at the first positional argument). Everything after "--" is left
// alone.
func reorderArgs(args []string) []string {
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
			if isValueFlag(a) && i+1 < len(args) {
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
