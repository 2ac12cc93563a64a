package defaults

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/opsmop/opsmop/internal/homedir"
	"github.com/opsmop/opsmop/internal/kind"
	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/sshconfig"
)

// Built-in values, used when no level sets a setting.
const (
	DefaultPort           = 22
	DefaultSudoUser       = "root"
	DefaultForks          = 20
	DefaultConnectTimeout = 10 * time.Second
	DefaultCommandTimeout = 10 * time.Minute
)

// Connection kinds (opsmop_connection).
const (
	ConnectionSSH   = "ssh"
	ConnectionLocal = "local"
)

// Sources: which level set a setting (Settings.Source values). The defaults
// file level is named by the file's path.
const (
	SourceCommandLine = "command line"
	SourceRole        = "role"
	SourceInventory   = "inventory"
	SourceBuiltin     = "builtin"
	SourceAskPass     = "-k" // --ask-pass prompt
	SourceAskSudo     = "-K" // --ask-sudo-pass prompt
)

// The magic inventory variables Resolve reads.
const (
	VarHost          = "opsmop_host"
	VarPort          = "opsmop_port"
	VarSSHUsername   = "opsmop_ssh_username"
	VarSSHPassword   = "opsmop_ssh_password"
	VarSSHPrivateKey = "opsmop_ssh_private_key"
	VarSudo          = "opsmop_sudo"
	VarSudoUsername  = "opsmop_sudo_username"
	VarSudoPassword  = "opsmop_sudo_password"
	VarCheckHostKeys = "opsmop_check_host_keys"
	// VarSSHIdentitiesOnly offers only the configured key files, none of
	// the agent's other keys (as OpenSSH's IdentitiesOnly).
	VarSSHIdentitiesOnly = "opsmop_ssh_identities_only"
	VarVia               = "opsmop_via"
	VarConnection        = "opsmop_connection"
)

// Role is what a role sets about connecting. An empty string or nil
// pointer means "not set on the role": the setting falls through to the
// inventory, the defaults file and the built-in value. Passwords are
// literals or env:NAME / file:PATH references.
type Role struct {
	SSHUser       string
	SSHPassword   string
	SSHPrivateKey string
	Sudo          *bool
	SudoUser      string
	SudoPassword  string
	CheckHostKeys *bool
}

// CommandLine is what the command line sets about connecting (-u,
// --private-key, -T, -b, --sudo-user). It is the first level: it beats
// the role, the inventory and the defaults file. Zero values and nil
// mean "not given".
type CommandLine struct {
	SSHUser        string
	SSHPrivateKey  string
	ConnectTimeout time.Duration
	Sudo           *bool
	SudoUser       string
}

// Inputs is everything Resolve decides from.
type Inputs struct {
	// CommandLine holds the command line's overrides.
	CommandLine CommandLine
	// Host is the inventory name of the host.
	Host string
	// Vars are the host's merged inventory variables (inventory.Host.Vars).
	Vars map[string]any
	// Role holds the role's overrides.
	Role Role
	// Defaults is the defaults file (nil if none); its Path names the level
	// in Settings.Source.
	Defaults *File
	// CurrentUser is the local user name, the built-in SSH user.
	CurrentUser string
	// Home expands ~ in private key paths; "" means Getenv("HOME").
	Home string
	// Getenv reads environment variables for env:NAME passwords (and
	// HOME); nil means os.Getenv.
	Getenv func(string) string
	// AskedSSHPassword and AskedSudoPassword are the passwords typed at the
	// -k and -K prompts (nil when not asked). They are role-level values
	// and win over a password the role itself sets.
	AskedSSHPassword  *secret.Secret
	AskedSudoPassword *secret.Secret
	// SSHConfig is the OpenSSH client configuration (nil: none is read);
	// it sits between the defaults file and the built-in values.
	SSHConfig *sshconfig.Config
	// LocalHost and UID are %l/%L and %i in ssh config values.
	LocalHost, UID string
	// Jump, when set, says the host is a ProxyJump hop: its user and port
	// beat every level.
	Jump *JumpSpec
}

// Settings is how to reach one host: the result of Resolve.
type Settings struct {
	// Host is the inventory name; Address what is dialled (opsmop_host, or
	// the inventory name).
	Host    string
	Address string
	Port    int
	User    string
	// Password is the SSH password (zero if none).
	Password secret.Secret
	// PrivateKey is a key file path with ~ expanded ("" if none).
	PrivateKey   string
	Sudo         bool
	SudoUser     string
	SudoPassword secret.Secret
	// CheckHostKeys is false only when explicitly turned off.
	CheckHostKeys bool
	// IdentitiesOnly offers only the key files at login, none of the
	// agent's other keys (false: key files, then agent keys).
	IdentitiesOnly bool
	// Via is the inventory name of the jump host ("" for a direct
	// connection); see ViaChain for the whole chain.
	Via string
	// ProxyJump is the ssh config's jump chain when Via is "" (first hop
	// first), and ProxyJumpAt its source ("ssh config FILE:LINE").
	ProxyJump   []Jump
	ProxyJumpAt string
	// IdentityFiles and CertificateFiles are the ssh config's key and
	// certificate files (offered after PrivateKey); IdentityAgent its
	// agent socket ("none": no agent; "": $SSH_AUTH_SOCK).
	IdentityFiles    []string
	CertificateFiles []string
	IdentityAgent    string
	// KnownHostsFiles and GlobalKnownHostsFiles replace the user's and the
	// system's known_hosts files when their Set flag is true (ssh config
	// UserKnownHostsFile, GlobalKnownHostsFile); HashKnownHosts records new
	// keys with hashed names.
	KnownHostsFiles          []string
	KnownHostsFilesSet       bool
	GlobalKnownHostsFiles    []string
	GlobalKnownHostsFilesSet bool
	HashKnownHosts           bool
	// AcceptNewHostKeys records the keys of hosts known_hosts does not
	// know (ssh config StrictHostKeyChecking accept-new or no).
	AcceptNewHostKeys bool
	// Keepalive and KeepaliveMax are the ssh config's ServerAliveInterval
	// and ServerAliveCountMax (0: opsmop's own).
	Keepalive    time.Duration
	KeepaliveMax int
	// AddressFamily is "any", "inet" or "inet6" ("": any).
	AddressFamily string
	// NoPubkey, NoPassword and NoKeyboardInteractive turn those login
	// methods off (ssh config ... no).
	NoPubkey, NoPassword, NoKeyboardInteractive bool
	// BatchMode never asks for a key's passphrase (ssh config BatchMode
	// yes).
	BatchMode bool
	// Connection is ConnectionSSH or ConnectionLocal.
	Connection     string
	ConnectTimeout time.Duration
	CommandTimeout time.Duration
	Forks          int
	// Source says, for each setting, which level set it: "command line", "role", "-k",
	// "-K", "inventory", the defaults file's path, or "builtin". Keys:
	// address, port, user, password, private_key, sudo, sudo_user,
	// sudo_password, check_host_keys, via, connection, connect_timeout,
	// command_timeout, forks. A setting no level sets (a password, via) has
	// no key.
	Source map[string]string
}

// VarError is an inventory variable of the wrong type or value.
type VarError struct {
	Host string
	Var  string
	// Want says what the variable must be; Got describes what it is
	// (never the value of a password).
	Want, Got string
}

// Error names the host, the variable, what it must be and what it is.
func (e *VarError) Error() string {
	return fmt.Sprintf("host %s: inventory variable %s must be %s, not %s", e.Host, e.Var, e.Want, e.Got)
}

// Resolve computes a host's connection settings. For each setting the
// first level that sets it wins:
//
//  0. the command line (CommandLine: user, private key, sudo, sudo user,
//     connect timeout);
//  1. the role (and, for passwords, the -k/-K prompts, which beat a
//     password the role sets);
//  2. the host's inventory variables opsmop_host, opsmop_port,
//     opsmop_ssh_username, opsmop_ssh_password, opsmop_ssh_private_key,
//     opsmop_sudo, opsmop_sudo_username, opsmop_sudo_password,
//     opsmop_check_host_keys, opsmop_via, opsmop_connection;
//  3. the defaults file (~/.opsmop/defaults.toml, else
//     /etc/opsmop/defaults.toml);
//  4. built-in: the current user, port 22, no sudo, sudo user root, host
//     keys checked, ssh, 10s connect and 10m command timeouts, 20 forks.
//
// Passwords may be literals or env:NAME / file:PATH references
// (secret.Resolve); only the winning one is resolved, and the SSH password
// only for ssh connections, the sudo password only when sudo is on. An
// inventory variable of the wrong type is a *VarError naming the host and
// variable. Errors never contain a password.
func Resolve(in Inputs) (Settings, error) {
	getenv := in.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	home := in.Home
	if home == "" {
		home = getenv("HOME")
	}
	df := in.Defaults
	if df == nil {
		df = &File{}
	}
	dfName := df.Path
	if dfName == "" {
		dfName = "defaults file"
	}
	s := Settings{Host: in.Host, Source: map[string]string{}}
	v := varReader{host: in.Host, vars: in.Vars}

	// Connection kind first: it decides what else is needed.
	s.Connection, s.Source["connection"] = ConnectionSSH, SourceBuiltin
	if c, ok, err := v.str(VarConnection); err != nil {
		return Settings{}, err
	} else if ok {
		if c != ConnectionSSH && c != ConnectionLocal {
			return Settings{}, &VarError{Host: in.Host, Var: VarConnection, Want: `"ssh" or "local"`, Got: strconv.Quote(c)}
		}
		s.Connection, s.Source["connection"] = c, SourceInventory
	}

	// Address and port.
	s.Address, s.Source["address"] = in.Host, SourceBuiltin
	if a, ok, err := v.str(VarHost); err != nil {
		return Settings{}, err
	} else if ok {
		s.Address, s.Source["address"] = a, SourceInventory
	}
	s.Port, s.Source["port"] = DefaultPort, SourceBuiltin
	if in.Jump != nil && in.Jump.Port != 0 {
		s.Port, s.Source["port"] = in.Jump.Port, in.Jump.At
	} else if p, ok, err := v.port(VarPort); err != nil {
		return Settings{}, err
	} else if ok {
		s.Port, s.Source["port"] = p, SourceInventory
	} else if df.SSH.Port != 0 {
		s.Port, s.Source["port"] = df.SSH.Port, dfName
	}

	// SSH user.
	invUser, _, err := v.str(VarSSHUsername)
	if err != nil {
		return Settings{}, err
	}
	var jumpUser level
	if in.Jump != nil {
		jumpUser = level{in.Jump.User, in.Jump.At}
	}
	s.User, s.Source["user"] = first(
		jumpUser,
		level{in.CommandLine.SSHUser, SourceCommandLine},
		level{in.Role.SSHUser, SourceRole},
		level{invUser, SourceInventory},
		level{df.SSH.Username, dfName},
		level{in.CurrentUser, SourceBuiltin},
	)
	if s.User == "" {
		delete(s.Source, "user") // the ssh config may still set it
	}

	// SSH password.
	invPass, _, err := v.password(VarSSHPassword)
	if err != nil {
		return Settings{}, err
	}
	if s.Connection == ConnectionSSH {
		s.Password, s.Source["password"], err = resolvePassword(in.Host, "SSH password", getenv,
			in.AskedSSHPassword, SourceAskPass,
			level{in.Role.SSHPassword, SourceRole},
			level{invPass, SourceInventory},
			level{df.SSH.Password, dfName},
		)
		if err != nil {
			return Settings{}, err
		}
		if s.Password.IsZero() {
			delete(s.Source, "password")
		}
	}

	// Private key.
	invKey, _, err := v.str(VarSSHPrivateKey)
	if err != nil {
		return Settings{}, err
	}
	key, src := first(
		level{in.CommandLine.SSHPrivateKey, SourceCommandLine},
		level{in.Role.SSHPrivateKey, SourceRole},
		level{invKey, SourceInventory},
		level{df.SSH.PrivateKey, dfName},
	)
	if key != "" {
		s.PrivateKey, s.Source["private_key"] = homedir.Expand(key, home), src
	}

	// Sudo.
	s.Source["sudo"] = SourceBuiltin
	if in.CommandLine.Sudo != nil {
		s.Sudo, s.Source["sudo"] = *in.CommandLine.Sudo, SourceCommandLine
	} else if in.Role.Sudo != nil {
		s.Sudo, s.Source["sudo"] = *in.Role.Sudo, SourceRole
	} else if b, ok, err := v.boolean(VarSudo); err != nil {
		return Settings{}, err
	} else if ok {
		s.Sudo, s.Source["sudo"] = b, SourceInventory
	}
	invSudoUser, _, err := v.str(VarSudoUsername)
	if err != nil {
		return Settings{}, err
	}
	s.SudoUser, s.Source["sudo_user"] = first(
		level{in.CommandLine.SudoUser, SourceCommandLine},
		level{in.Role.SudoUser, SourceRole},
		level{invSudoUser, SourceInventory},
		level{df.Sudo.Username, dfName},
	)
	if s.SudoUser == "" {
		delete(s.Source, "sudo_user")
		if s.Sudo {
			s.SudoUser, s.Source["sudo_user"] = DefaultSudoUser, SourceBuiltin
		}
	}
	invSudoPass, _, err := v.password(VarSudoPassword)
	if err != nil {
		return Settings{}, err
	}
	if s.Sudo {
		s.SudoPassword, s.Source["sudo_password"], err = resolvePassword(in.Host, "sudo password", getenv,
			in.AskedSudoPassword, SourceAskSudo,
			level{in.Role.SudoPassword, SourceRole},
			level{invSudoPass, SourceInventory},
			level{df.Sudo.Password, dfName},
		)
		if err != nil {
			return Settings{}, err
		}
		if s.SudoPassword.IsZero() {
			delete(s.Source, "sudo_password")
		}
	}

	// Agent keys after the key files, unless only the key files may be
	// offered: inventory, else defaults file, else builtin (false).
	s.IdentitiesOnly, s.Source["identities_only"] = false, SourceBuiltin
	if b, ok, err := v.boolean(VarSSHIdentitiesOnly); err != nil {
		return Settings{}, err
	} else if ok {
		s.IdentitiesOnly, s.Source["identities_only"] = b, SourceInventory
	} else if df.SSH.IdentitiesOnly != nil {
		s.IdentitiesOnly, s.Source["identities_only"] = *df.SSH.IdentitiesOnly, dfName
	}

	// Host key checking.
	s.CheckHostKeys, s.Source["check_host_keys"] = true, SourceBuiltin
	if in.Role.CheckHostKeys != nil {
		s.CheckHostKeys, s.Source["check_host_keys"] = *in.Role.CheckHostKeys, SourceRole
	} else if b, ok, err := v.boolean(VarCheckHostKeys); err != nil {
		return Settings{}, err
	} else if ok {
		s.CheckHostKeys, s.Source["check_host_keys"] = b, SourceInventory
	} else if df.SSH.CheckHostKeys != nil {
		s.CheckHostKeys, s.Source["check_host_keys"] = *df.SSH.CheckHostKeys, dfName
	}

	// Jump host.
	if via, ok, err := v.str(VarVia); err != nil {
		return Settings{}, err
	} else if ok {
		if via == in.Host {
			return Settings{}, fmt.Errorf("host %s: inventory variable %s names the host itself; give the inventory name of a jump host", in.Host, VarVia)
		}
		s.Via, s.Source["via"] = via, SourceInventory
	}

	// Tuning: defaults file, else built-in.
	s.ConnectTimeout, s.Source["connect_timeout"] = DefaultConnectTimeout, SourceBuiltin
	if in.CommandLine.ConnectTimeout > 0 {
		s.ConnectTimeout, s.Source["connect_timeout"] = in.CommandLine.ConnectTimeout, SourceCommandLine
	} else if df.Tuning.ConnectTimeout > 0 {
		s.ConnectTimeout, s.Source["connect_timeout"] = df.Tuning.ConnectTimeout, dfName
	}
	s.CommandTimeout, s.Source["command_timeout"] = DefaultCommandTimeout, SourceBuiltin
	if df.Tuning.CommandTimeout > 0 {
		s.CommandTimeout, s.Source["command_timeout"] = df.Tuning.CommandTimeout, dfName
	}
	s.Forks, s.Source["forks"] = DefaultForks, SourceBuiltin
	if df.Tuning.Forks > 0 {
		s.Forks, s.Source["forks"] = df.Tuning.Forks, dfName
	}
	if s.Connection == ConnectionSSH {
		for _, k := range []string{keyIdentityAgent, keyAuthMethods, keyAcceptNew, keyKnownHosts, keyGlobalKnownHosts, keyHashKnownHosts, keyAddressFamily, keyKeepalive, keyKeepaliveMax} {
			s.Source[k] = SourceBuiltin
		}
	}
	if err := s.applySSHConfig(in, home, getenv); err != nil {
		return Settings{}, err
	}
	if s.User == "" && s.Connection == ConnectionSSH {
		return Settings{}, fmt.Errorf("host %s: no SSH user: the current user is unknown; set %s in the inventory, ssh.username in ~/.opsmop/defaults.toml, or ssh_as on the role", in.Host, VarSSHUsername)
	}
	return s, nil
}

// level is one candidate value and the level it comes from.
type level struct{ val, src string }

// first returns the first non-empty value and its level.
func first(ls ...level) (string, string) {
	for _, l := range ls {
		if l.val != "" {
			return l.val, l.src
		}
	}
	return "", ""
}

// resolvePassword picks the prompted password, else the first configured
// one, and resolves env:/file: references.
func resolvePassword(host, what string, getenv func(string) string, asked *secret.Secret, askedSrc string, ls ...level) (secret.Secret, string, error) {
	if asked != nil {
		return *asked, askedSrc, nil
	}
	ref, src := first(ls...)
	if ref == "" {
		return secret.Secret{}, "", nil
	}
	sec, err := secret.Resolve(ref, getenv)
	if err != nil {
		return secret.Secret{}, "", fmt.Errorf("host %s: %s from %s: %w", host, what, src, err)
	}
	return sec, src, nil
}

// varReader reads typed magic variables of one host.
type varReader struct {
	host string
	vars map[string]any
}

// str returns a string variable; an empty string counts as not set.
func (r varReader) str(name string) (string, bool, error) {
	v, ok := r.vars[name]
	if !ok || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, &VarError{Host: r.host, Var: name, Want: "a string", Got: kind.Describe(v)}
	}
	return s, s != "", nil
}

// password is str without ever describing the value.
func (r varReader) password(name string) (string, bool, error) {
	v, ok := r.vars[name]
	if !ok || v == nil {
		return "", false, nil
	}
	s, isStr := v.(string)
	if !isStr {
		return "", false, &VarError{Host: r.host, Var: name, Want: "a string (a password, env:NAME or file:PATH; quote it)", Got: kind.A(kind.Of(v))}
	}
	return s, s != "", nil
}

func (r varReader) boolean(name string) (bool, bool, error) {
	v, ok := r.vars[name]
	if !ok || v == nil {
		return false, false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, false, &VarError{Host: r.host, Var: name, Want: "true or false", Got: kind.Describe(v)}
	}
	return b, true, nil
}

func (r varReader) port(name string) (int, bool, error) {
	v, ok := r.vars[name]
	if !ok || v == nil {
		return 0, false, nil
	}
	var n int64
	switch x := v.(type) {
	case int:
		n = int64(x)
	case int64:
		n = x
	case float64:
		if x != math.Trunc(x) || x < 0 || x > 65535 {
			n = -1
		} else {
			n = int64(x)
		}
	default:
		return 0, false, &VarError{Host: r.host, Var: name, Want: "a port number (1-65535)", Got: kind.Describe(v)}
	}
	if n < 1 || n > 65535 {
		return 0, false, &VarError{Host: r.host, Var: name, Want: "a port number (1-65535)", Got: kind.Describe(v)}
	}
	return int(n), true, nil
}
