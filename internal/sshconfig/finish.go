package sshconfig

import (
	"strconv"
	"strings"
)

// finish fills the values that depend on the whole evaluation: the final
// host, user and port, the explicit Query values, and the expanded paths.
func (st *state) finish() error {
	r := &st.res
	host, err := st.finalHost()
	if err != nil {
		return err
	}
	if st.hostname.Set {
		r.HostName = Setting[string]{Value: host, Set: true, At: st.hostname.At}
	}
	if st.q.User != "" {
		r.User = Setting[string]{Value: st.q.User, Set: true}
	}
	if st.q.Port != 0 {
		r.Port = Setting[int]{Value: st.q.Port, Set: true}
	}
	if len(st.q.JumpChain) > 0 {
		r.ProxyJump = Setting[[]Hop]{Value: st.q.JumpChain, Set: true}
	}
	jump := ""
	if n := len(r.ProxyJump.Value); n > 0 {
		jump = r.ProxyJump.Value[n-1].Host
	}
	tok := clientTokens(st.q, host, st.portString(), st.remoteUser(), jump)
	if r.IdentityFiles, err = st.expandAll(st.ids, tok, "IdentityFile"); err != nil {
		return err
	}
	if r.CertificateFiles, err = st.expandAll(st.certs, tok, "CertificateFile"); err != nil {
		return err
	}
	if err := st.finishAgent(tok); err != nil {
		return err
	}
	if err := st.finishKnownHosts(tok); err != nil {
		return err
	}
	return nil
}

// expandPath applies ~ then %-tokens and ${VAR}, as OpenSSH does for paths.
func (st *state) expandPath(s string, tok tokens, at Pos, kw string) (string, error) {
	p, err := tildeExpand(s, st.q.Home)
	if err == nil {
		p, err = expand(p, tok, true, st.getenv)
	}
	if err != nil {
		return "", fail(at, kw+" "+strconv.Quote(s)+": "+err.Error())
	}
	return p, nil
}

// expandAll expands a list of path settings.
func (st *state) expandAll(in []Setting[string], tok tokens, kw string) ([]Setting[string], error) {
	var out []Setting[string]
	for _, s := range in {
		p, err := st.expandPath(s.Value, tok, s.At, kw)
		if err != nil {
			return nil, err
		}
		out = append(out, Setting[string]{Value: p, Set: true, At: s.At})
	}
	return out, nil
}

// finishAgent resolves IdentityAgent.
func (st *state) finishAgent(tok tokens) error {
	a := st.agent
	if !a.Set {
		return nil
	}
	v := a.Value
	switch {
	case v == "none" || v == "SSH_AUTH_SOCK":
	case strings.HasPrefix(v, "$") && !strings.HasPrefix(v, "${"):
		// Legacy form: the variable names the socket; unset means no agent.
		if env, ok := st.getenv(v[1:]); ok {
			v = env
		} else {
			v = "none"
		}
	default:
		p, err := st.expandPath(v, tok, a.At, "IdentityAgent")
		if err != nil {
			return err
		}
		v = p
	}
	st.res.IdentityAgent = Setting[string]{Value: v, Set: true, At: a.At}
	return nil
}

// finishKnownHosts expands the known-hosts file lists; "none" gives an
// empty list.
func (st *state) finishKnownHosts(tok tokens) error {
	r := &st.res
	if st.ukh.Set {
		files := []string{}
		for _, f := range st.ukh.Value {
			if strings.EqualFold(f, "none") {
				break
			}
			p, err := st.expandPath(f, tok, st.ukh.At, "UserKnownHostsFile")
			if err != nil {
				return err
			}
			files = append(files, p)
		}
		r.UserKnownHostsFiles = Setting[[]string]{Value: files, Set: true, At: st.ukh.At}
	}
	if g := r.GlobalKnownHostsFiles; g.Set {
		files := []string{}
		for _, f := range g.Value {
			if strings.EqualFold(f, "none") {
				break
			}
			p, err := tildeExpand(f, st.q.Home)
			if err != nil {
				return fail(g.At, "GlobalKnownHostsFile: "+err.Error())
			}
			files = append(files, p)
		}
		r.GlobalKnownHostsFiles.Value = files
	}
	return nil
}
