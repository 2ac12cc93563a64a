// Package sshconfig reads OpenSSH client configuration (ssh_config(5)) and
// answers "what would `ssh HOST` use" for the settings opsmop's SSH client
// honours, with the file:line every value came from.
//
// It follows OpenSSH 9.2's readconf.c (the client opsmop is tested against)
// and notes where later releases differ. Settings that change where or how
// ssh connects or verifies the server and that opsmop cannot honour are
// errors when they apply to a host (see Keywords); every other keyword
// OpenSSH knows is accepted and ignored.
package sshconfig

import (
	"strconv"
	"time"
)

// Pos is where a value was read: File is the path as opened (absolute or as
// given), Line is 1-based.
type Pos struct {
	File string
	Line int
}

// String returns "FILE:LINE".
func (p Pos) String() string { return p.File + ":" + strconv.Itoa(p.Line) }

// Source is one top-level file to read.
type Source struct {
	// Path is the file; a leading ~ is expanded with Load's home.
	Path string
	// System makes relative Include paths resolve under /etc/ssh (OpenSSH's
	// rule for the system file) and forbids ~ in them; otherwise they
	// resolve under HOME/.ssh.
	System bool
	// Required makes a missing file an error (like ssh -F FILE); otherwise
	// a missing file is skipped.
	Required bool
}

// Error is a config problem with its position. Host is "" for problems
// found by Load, and the queried host for problems found by Lookup.
type Error struct {
	Pos  Pos
	Host string
	Msg  string
}

// Error returns "FILE:LINE: MSG", with "host H: " first when Host != "".
func (e *Error) Error() string {
	s := e.Pos.String() + ": " + e.Msg
	if e.Host != "" {
		s = "host " + e.Host + ": " + s
	}
	return s
}

// Query is what is known before the config is read, as ssh's command line
// would give it.
type Query struct {
	// Host is the name given to ssh (the original host); Host patterns
	// match it (case-sensitively, as OpenSSH does).
	Host string
	// User is "" unless given explicitly (like ssh -l): then it beats User
	// in the config, is what %r expands to and what Match user compares.
	User string
	// Port is 0 unless given explicitly (like ssh -p); it beats Port and is
	// used by %p.
	Port int
	// LocalUser is %u and what Match localuser compares; it is also the
	// user Match user compares and %r expands to when no User is known.
	LocalUser string
	// Home is %d and what ~ expands to.
	Home string
	// UID is %i.
	UID string
	// LocalHost is %l (and its first label %L); it is hashed into %C.
	LocalHost string
	// Getenv reads ${VAR} in IdentityFile, CertificateFile, IdentityAgent
	// and UserKnownHostsFile (and the legacy IdentityAgent $VAR). nil means
	// the process environment (os.LookupEnv, so a variable set to "" is
	// set). With a non-nil Getenv a variable counts as unset when it
	// returns "". An unset ${VAR} is an *Error from Lookup, as in OpenSSH.
	Getenv func(string) string
	// JumpChain, when non-empty, makes this the lookup for a ProxyJump hop
	// that OpenSSH would run as `ssh -J CHAIN HOP`: the hops before this
	// one, in order. ProxyJump and ProxyCommand lines in the config are then
	// not consulted and Result.ProxyJump is JumpChain (At is the zero Pos).
	// To resolve a chain A,B,C found for a target: look up A with no
	// JumpChain (A's own ProxyJump from the config then applies, as with
	// ssh), B with [A], C with [A B]; each hop's Query.User and Query.Port
	// are the hop's user and port.
	JumpChain []Hop
}

// Setting is one resolved value: Set is false when no applying line sets it
// (Value is then the zero value, NOT ssh's default: callers apply their own
// defaults). At is the line that set it.
type Setting[T any] struct {
	Value T
	Set   bool
	At    Pos
}

// Hop is one ProxyJump hop. Port 0 means not given; User "" means not given.
type Hop struct {
	User string
	Host string
	Port int
}

// Result holds the resolved settings for one Query. Values are expanded as
// OpenSSH expands them for that keyword.
type Result struct {
	// HostName is expanded (%h, %%) and lowercased unless it is an IP
	// address, as ssh uses it.
	HostName Setting[string]
	// User is the config's User (Query.User, when given, is returned here
	// with Set true and the zero At).
	User Setting[string]
	// Port likewise: Query.Port, when non-zero, is returned with the zero At.
	Port Setting[int]
	// IdentityFiles lists all applying IdentityFile lines, in order, without
	// duplicates (OpenSSH drops a repeated path), expanded (~, %-tokens,
	// ${VAR}). At most 100, as OpenSSH.
	IdentityFiles []Setting[string]
	// CertificateFiles likewise for CertificateFile.
	CertificateFiles []Setting[string]
	IdentitiesOnly   Setting[bool]
	// IdentityAgent is "none", "SSH_AUTH_SOCK" (means: the $SSH_AUTH_SOCK
	// socket) or an expanded path. The legacy form "$VAR" is resolved to the
	// variable's value, or "none" when it is unset (ssh then uses no agent).
	IdentityAgent Setting[string]
	// ProxyJump is Set with a nil slice for "ProxyJump none" and when
	// "ProxyCommand none" was the first of the two to apply.
	ProxyJump Setting[[]Hop]
	// UserKnownHostsFiles are expanded (~, %-tokens, ${VAR}); "none" gives
	// Set with an empty slice.
	UserKnownHostsFiles Setting[[]string]
	// GlobalKnownHostsFiles have ~ expanded only (as OpenSSH); "none" gives
	// Set with an empty slice.
	GlobalKnownHostsFiles Setting[[]string]
	// StrictHostKeyChecking is normalized to "yes", "no", "accept-new" or
	// "ask".
	StrictHostKeyChecking Setting[string]
	HashKnownHosts        Setting[bool]
	// ConnectTimeout: "none" does not set it (OpenSSH treats it as unset,
	// so a later line may still set it); "0" is Set with 0, meaning no
	// timeout.
	ConnectTimeout Setting[time.Duration]
	// ServerAliveInterval: same rules as ConnectTimeout; 0 means no
	// keepalives.
	ServerAliveInterval Setting[time.Duration]
	ServerAliveCountMax Setting[int]
	// AddressFamily is "any", "inet" or "inet6".
	AddressFamily          Setting[string]
	PasswordAuthentication Setting[bool]
	// PubkeyAuthentication: "unbound" and "host-bound" count as yes.
	PubkeyAuthentication         Setting[bool]
	KbdInteractiveAuthentication Setting[bool]
	BatchMode                    Setting[bool]
}
