package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/defaults"
)

// LoginOptions are the command line's login overrides (-u,
// --private-key, -T, -b, --sudo-user). They are the "command line" level
// of defaults.Resolve: they beat the role, the inventory and the defaults
// file, for every host the command works on (not for jump hosts, which
// keep their own settings). Zero values mean "not given".
type LoginOptions struct {
	// User is -u/--user, the SSH user.
	User string
	// PrivateKey is --private-key, a key file.
	PrivateKey string
	// ConnectTimeout is -T/--timeout (0: not given).
	ConnectTimeout time.Duration
	// Become is -b/--become (run: also --sudo, -s): sudo on every host
	// and role, whatever they set.
	Become bool
	// SudoUser is --sudo-user/--become-user.
	SudoUser string
	// SSHConfig is -F/--ssh-config: the OpenSSH client configuration file
	// to read instead of ~/.ssh/config and /etc/ssh/ssh_config; "none"
	// reads none; "" the default files.
	SSHConfig string
	// UserFromEnv and PrivateKeyFromEnv say that User and PrivateKey came
	// from $OPSMOP_USER and $OPSMOP_PRIVATE_KEY, not the command line (the
	// level is the same; its name in Settings.Source differs).
	UserFromEnv       bool
	PrivateKeyFromEnv bool
}

// commandLine is o as the command-line level of defaults.Resolve.
func (o LoginOptions) commandLine() defaults.CommandLine {
	cl := defaults.CommandLine{
		SSHUser: o.User, SSHPrivateKey: o.PrivateKey,
		ConnectTimeout: o.ConnectTimeout, SudoUser: o.SudoUser,
	}
	if o.Become {
		t := true
		cl.Sudo = &t
	}
	return cl
}

// given reports whether any login override is on the command line (not
// from an environment variable).
func (o LoginOptions) given() bool {
	if o.UserFromEnv {
		o.User = ""
	}
	if o.PrivateKeyFromEnv {
		o.PrivateKey = ""
	}
	o.UserFromEnv, o.PrivateKeyFromEnv = false, false
	return o != LoginOptions{}
}

// envSources are the Settings.Source keys whose value came from an
// environment variable, mapped to its name as a source ("$OPSMOP_USER").
func (o LoginOptions) envSources() map[string]string {
	m := map[string]string{}
	if o.UserFromEnv {
		m["user"] = "$" + envUser
	}
	if o.PrivateKeyFromEnv {
		m["private_key"] = "$" + envPrivateKey
	}
	return m
}

// loginFlags are the login overrides of check, apply, facts and
// inventory. run passes its own become flag (--sudo with -s, -b and
// --become as aliases); the others get -b/--become.
func loginFlags(become cli.Flag) []cli.Flag {
	if become == nil {
		become = &cli.BoolFlag{Name: flagBecome, Aliases: []string{"b"}, Usage: "sudo on every host and role, whatever the role, inventory or defaults file say (user: --sudo-user, else theirs, else root)"}
	}
	return []cli.Flag{
		&cli.StringFlag{Name: flagUser, Aliases: []string{"u"}, Usage: envUsage("SSH `USER` (beats the role, inventory and defaults file)", envUser)},
		&cli.StringFlag{Name: flagPrivateKey, Usage: envUsage("SSH private key `FILE` (beats the role, inventory and defaults file)", envPrivateKey)},
		&cli.IntFlag{Name: flagTimeout, Aliases: []string{"T"}, Usage: "SSH connect timeout in `SECONDS` (beats the defaults file)", DefaultText: "tuning.connect_timeout, else 10"},
		become,
		&cli.StringFlag{Name: flagSudoUser, Aliases: []string{"become-user"}, Usage: "sudo to `USER` when sudo is on (beats the role, inventory and defaults file)"},
		sshConfigFlag(),
	}
}

// sshConfigFlag is -F/--ssh-config FILE ($OPSMOP_SSH_CONFIG).
func sshConfigFlag() cli.Flag {
	return &cli.StringFlag{Name: flagSSHConfig, Aliases: []string{"F"}, Usage: envUsage("OpenSSH client configuration `FILE` to read instead of ~/.ssh/config and /etc/ssh/ssh_config (none: read none)", envSSHConfig)}
}

// loginOptions reads the login overrides of c.
func loginOptions(c *cli.Context) (LoginOptions, error) {
	o := LoginOptions{
		User:              c.String(flagUser),
		PrivateKey:        c.String(flagPrivateKey),
		Become:            c.Bool(flagBecome),
		SudoUser:          c.String(flagSudoUser),
		SSHConfig:         c.String(flagSSHConfig),
		UserFromEnv:       fromEnv(c, flagUser),
		PrivateKeyFromEnv: fromEnv(c, flagPrivateKey),
	}
	if c.IsSet(flagUser) && o.User == "" {
		return LoginOptions{}, invalid(fmt.Errorf("%s: --user is empty: give an SSH user name", c.Command.Name))
	}
	if c.IsSet(flagPrivateKey) && o.PrivateKey == "" {
		return LoginOptions{}, invalid(fmt.Errorf("%s: --private-key is empty: give a key file", c.Command.Name))
	}
	if c.IsSet(flagSSHConfig) && o.SSHConfig == "" {
		return LoginOptions{}, invalid(fmt.Errorf("%s: --ssh-config is empty: give an ssh config file, or none", c.Command.Name))
	}
	if c.IsSet(flagSudoUser) && o.SudoUser == "" {
		return LoginOptions{}, invalid(fmt.Errorf("%s: --sudo-user is empty: give a user name", c.Command.Name))
	}
	if c.Bool(flagLocal) {
		for _, f := range []string{flagUser, flagPrivateKey, flagTimeout, flagSSHConfig} {
			if c.IsSet(f) {
				return LoginOptions{}, invalid(fmt.Errorf("%s: --local uses no SSH, so --%s would be ignored: drop one of them", c.Command.Name, f))
			}
		}
	}
	if c.IsSet(flagTimeout) {
		n := c.Int(flagTimeout)
		if n <= 0 {
			return LoginOptions{}, invalid(errors.New(c.Command.Name + ": --timeout must be a positive number of seconds"))
		}
		o.ConnectTimeout = time.Duration(n) * time.Second
	}
	return o, nil
}
