package sshconfig

import (
	"strconv"
	"time"
)

// evalMatch evaluates a Match line as OpenSSH's match_cfg_line: every
// criterion is evaluated in order; "exec" (and the criteria opsmop cannot
// evaluate) is only reached when no earlier criterion failed, and is then
// an error instead of being run. In a never-matching include nothing is
// evaluated beyond noting "final".
func (st *state) evalMatch(l *line, never bool) (bool, error) {
	result := true
	for _, c := range l.match {
		if c.attr == "final" && !c.negate {
			st.wantFinal = true
		}
		if never {
			continue
		}
		var r bool
		switch c.attr {
		case "all":
			return result && !c.negate, nil
		case "canonical", "final":
			r = st.final
		case "host":
			host, err := st.matchHost()
			if err != nil {
				return false, err
			}
			r = matchHostname(host, c.arg) == 1
		case "originalhost":
			r = matchHostname(st.q.Host, c.arg) == 1
		case "user":
			r = matchPatternList(st.remoteUser(), c.arg, false) == 1
		case "localuser":
			r = matchPatternList(st.q.LocalUser, c.arg, false) == 1
		default:
			if !result {
				continue
			}
			return false, fail(l.pos, "Match "+c.attr+" is not supported by opsmop: it cannot evaluate \""+c.attr+" "+c.arg+"\"; put the settings in a Host block or in the inventory instead")
		}
		if r == c.negate {
			result = false
		}
	}
	return result, nil
}

// matchHost is the host Match host compares: in the first pass HostName so
// far (expanded) or the original host; in the second the final host.
func (st *state) matchHost() (string, error) {
	if st.final {
		return st.subject, nil
	}
	if !st.hostname.Set {
		return st.q.Host, nil
	}
	h, err := expand(st.hostname.Value, tokens{'h': st.q.Host}, false, nil)
	if err != nil {
		return "", fail(st.hostname.At, "HostName: "+err.Error())
	}
	return h, nil
}

// first sets s from an applying line unless it is already set.
func first[T any](s *Setting[T], v T, at Pos) {
	if !s.Set {
		*s = Setting[T]{Value: v, Set: true, At: at}
	}
}

// set applies an honoured directive.
func (st *state) set(l *line) error {
	r := &st.res
	switch l.keyword {
	case "hostname":
		if !st.hostLock {
			first(&st.hostname, l.val.(string), l.pos)
		}
	case "user":
		first(&r.User, l.val.(string), l.pos)
	case "port":
		first(&r.Port, l.val.(int), l.pos)
	case "identityfile", "identityfile2":
		return addFile(&st.ids, l, maxIdentityFiles, "identity")
	case "certificatefile":
		return addFile(&st.certs, l, maxCertFiles, "certificate")
	case "identityagent":
		first(&st.agent, l.val.(string), l.pos)
	case "proxyjump":
		st.setJump(l)
	case "userknownhostsfile":
		first(&st.ukh, l.val.([]string), l.pos)
	case "globalknownhostsfile":
		first(&r.GlobalKnownHostsFiles, l.val.([]string), l.pos)
	case "stricthostkeychecking":
		first(&r.StrictHostKeyChecking, l.val.(string), l.pos)
	case "addressfamily":
		first(&r.AddressFamily, l.val.(string), l.pos)
	case "connecttimeout":
		setTime(&r.ConnectTimeout, l)
	case "serveraliveinterval":
		setTime(&r.ServerAliveInterval, l)
	case "serveralivecountmax":
		first(&r.ServerAliveCountMax, l.val.(int), l.pos)
	case "ignoreunknown":
		first(&st.ignore, l.val.(string), l.pos)
	default:
		st.setFlag(l)
	}
	return nil
}

// setFlag applies a yes/no keyword.
func (st *state) setFlag(l *line) {
	r := &st.res
	var s *Setting[bool]
	switch l.keyword {
	case "identitiesonly":
		s = &r.IdentitiesOnly
	case "hashknownhosts":
		s = &r.HashKnownHosts
	case "passwordauthentication":
		s = &r.PasswordAuthentication
	case "pubkeyauthentication", "dsaauthentication":
		s = &r.PubkeyAuthentication
	case "kbdinteractiveauthentication", "challengeresponseauthentication",
		"skeyauthentication", "tisauthentication":
		s = &r.KbdInteractiveAuthentication
	case "batchmode":
		s = &r.BatchMode
	default:
		return
	}
	first(s, l.val.(bool), l.pos)
}

// setTime applies a time keyword; "none" leaves it unset, as in OpenSSH.
func setTime(s *Setting[time.Duration], l *line) {
	if d := l.val.(time.Duration); d != noneTime {
		first(s, d, l.pos)
	}
}

// setJump applies ProxyJump unless ProxyJump or ProxyCommand was already
// decided or the query gives the chain.
func (st *state) setJump(l *line) {
	if st.proxyDone || len(st.q.JumpChain) > 0 {
		return
	}
	st.proxyDone = true
	jv := l.val.(jumpValue)
	st.res.ProxyJump = Setting[[]Hop]{Value: jv.hops, Set: true, At: l.pos}
}

// addFile appends an IdentityFile or CertificateFile path unless the same
// path (as written) is already listed; more than max is an error.
func addFile(list *[]Setting[string], l *line, max int, what string) error {
	v := l.val.(string)
	for _, s := range *list {
		if s.Value == v {
			return nil
		}
	}
	if len(*list) >= max {
		return fail(l.pos, "too many "+what+" files (at most "+strconv.Itoa(max)+")")
	}
	*list = append(*list, Setting[string]{Value: v, Set: true, At: l.pos})
	return nil
}
