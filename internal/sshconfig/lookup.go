package sshconfig

import (
	"os"
	"strconv"
	"strings"
)

// state is the evaluation of one Lookup.
type state struct {
	c         *Config
	q         Query
	getenv    func(string) (string, bool)
	final     bool   // second ("Match final") pass
	subject   string // what Host patterns match: the original host, then the final host
	wantFinal bool
	res       Result
	hostname  Setting[string] // HostName as written
	hostLock  bool            // HostName can no longer be set (second pass)
	agent     Setting[string]
	ukh       Setting[[]string]
	ids       []Setting[string]
	certs     []Setting[string]
	ignore    Setting[string] // IgnoreUnknown
	proxyDone bool            // ProxyJump or ProxyCommand decided
	unsup     map[string]bool // unsupported keywords already decided
}

// Lookup evaluates c for q as ssh does: Host and Match blocks in order,
// first obtained value wins except for IdentityFile and CertificateFile,
// which accumulate, and a second pass when a Match final criterion is seen
// (Host patterns then match the final host name, Match host and canonical
// and final see the second pass; values from the first pass stay). It
// returns *Error (with Host set to q.Host) when a directive that applies
// cannot be honoured (Keywords' unsupported class, Match exec and other
// criteria opsmop cannot evaluate, reached), when an unknown keyword is not
// covered by an IgnoreUnknown that applies, or when a value cannot be
// expanded (unknown %-token, unset ${VAR}).
func (c *Config) Lookup(q Query) (*Result, error) {
	st := &state{c: c, q: q, subject: q.Host, unsup: map[string]bool{}, getenv: lookupEnv(q.Getenv)}
	if err := st.pass(); err != nil {
		return nil, st.wrap(err)
	}
	if st.wantFinal {
		host, err := st.finalHost()
		if err != nil {
			return nil, st.wrap(err)
		}
		st.final, st.subject, st.hostLock = true, host, true
		if err := st.pass(); err != nil {
			return nil, st.wrap(err)
		}
	}
	if err := st.finish(); err != nil {
		return nil, st.wrap(err)
	}
	return &st.res, nil
}

// lookupEnv adapts Query.Getenv: nil means the process environment.
func lookupEnv(get func(string) string) func(string) (string, bool) {
	if get == nil {
		return os.LookupEnv
	}
	return func(k string) (string, bool) {
		v := get(k)
		return v, v != ""
	}
}

// wrap sets the host on an *Error.
func (st *state) wrap(err error) error {
	if e, ok := err.(*Error); ok {
		e.Host = st.q.Host
	}
	return err
}

// fail makes an *Error at pos.
func fail(pos Pos, msg string) error { return &Error{Pos: pos, Msg: msg} }

// pass reads every file once; each top-level file starts active.
func (st *state) pass() error {
	for _, f := range st.c.files {
		active := true
		if err := st.walk(f, &active, false); err != nil {
			return err
		}
	}
	return nil
}

// walk evaluates one file. active is the current block's state, shared
// with the including file (an Include inside a block sees that block's
// state, and the includer's state is restored afterwards); never is set
// inside files included from an inactive block, where no Host or Match
// line can apply (OpenSSH's SSHCONF_NEVERMATCH).
func (st *state) walk(f *file, active *bool, never bool) error {
	for i := range f.lines {
		l := &f.lines[i]
		var err error
		switch {
		case l.keyword == "host":
			*active = !never && hostLineMatches(l.args, st.subject)
		case l.keyword == "match":
			var ok bool
			ok, err = st.evalMatch(l, never)
			*active = !never && ok
		case l.keyword == "include":
			saved := *active
			for _, inc := range l.include {
				if err = st.walk(inc, active, never || !saved); err != nil {
					break
				}
				*active = saved
			}
		case l.class == "":
			err = st.unknown(l)
		case *active:
			err = st.apply(l)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// unknown checks an unknown keyword against the IgnoreUnknown in effect.
func (st *state) unknown(l *line) error {
	if st.ignore.Set && matchPatternList(l.keyword, st.ignore.Value, true) == 1 {
		return nil
	}
	return fail(l.pos, "Bad configuration option: "+l.keyword+": fix the spelling, or list it in IgnoreUnknown (in a block that applies) before this line")
}

// apply applies an active directive.
func (st *state) apply(l *line) error {
	switch l.class {
	case ClassHonoured:
		return st.set(l)
	case ClassUnsupported:
		return st.unsupported(l)
	}
	return nil
}

// unsupported decides an unsupported keyword: its first applying value
// wins (as in OpenSSH), and is an error unless it is an off value.
func (st *state) unsupported(l *line) error {
	slot := l.keyword
	if slot == "smartcarddevice" {
		slot = "pkcs11provider"
	}
	value := ""
	if len(l.args) > 0 {
		value = l.args[0]
	}
	if slot == "proxycommand" {
		if st.proxyDone || len(st.q.JumpChain) > 0 {
			return nil
		}
		st.proxyDone = true
		value = strings.TrimLeft(l.rest, " \t\r\n=")
		st.res.ProxyJump = Setting[[]Hop]{Set: true, At: l.pos}
	} else if st.unsup[slot] {
		return nil
	}
	st.unsup[slot] = true
	k := st.c.kw[l.keyword]
	for _, off := range k.Off {
		if strings.EqualFold(value, off) {
			return nil
		}
	}
	return fail(l.pos, k.Name+" is not supported by opsmop: "+k.Why)
}

// finalHost is HostName expanded (%h is the original host) or the original
// host, lowercased unless it is an IP address.
func (st *state) finalHost() (string, error) {
	host := st.q.Host
	if st.hostname.Set {
		h, err := expand(st.hostname.Value, tokens{'h': st.q.Host}, false, nil)
		if err != nil {
			return "", fail(st.hostname.At, "HostName: "+err.Error())
		}
		host = h
	}
	if !isAddr(host) {
		host = strings.ToLower(host)
	}
	return host, nil
}

// remoteUser is the user so far: explicit, from the config, or local.
func (st *state) remoteUser() string {
	if st.q.User != "" {
		return st.q.User
	}
	if st.res.User.Set {
		return st.res.User.Value
	}
	return st.q.LocalUser
}

// portString is the port so far as %p shows it.
func (st *state) portString() string {
	switch {
	case st.q.Port != 0:
		return strconv.Itoa(st.q.Port)
	case st.res.Port.Set:
		return strconv.Itoa(st.res.Port.Value)
	}
	return "22"
}
