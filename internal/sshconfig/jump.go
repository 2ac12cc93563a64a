package sshconfig

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// parseJump parses a ProxyJump value as OpenSSH's parse_jump does: "none",
// or comma-separated [user@]host[:port] and ssh://[user@]host[:port] hops.
// Text from the first '#' on is a comment. none is true for "none".
func parseJump(s string) (hops []Hop, none bool, err error) {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, " \t\r\n")
	if strings.EqualFold(s, "none") {
		return nil, true, nil
	}
	for _, part := range strings.Split(s, ",") {
		h, err := parseHop(part)
		if err != nil {
			return nil, false, err
		}
		hops = append(hops, h)
	}
	return hops, false, nil
}

// parseHop parses one hop, URI or [user@]host[:port].
func parseHop(s string) (Hop, error) {
	if strings.HasPrefix(s, "ssh://") {
		return parseSSHURI(s[len("ssh://"):])
	}
	var h Hop
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return h, errors.New("empty user before '@'")
		}
		h.User, s = s[:at], s[at+1:]
	}
	host, rest, delim, err := splitHostPort(s)
	if err != nil {
		return h, err
	}
	if delim == '/' {
		return h, errors.New("unexpected '/' after host " + host)
	}
	h.Host = host
	if rest != "" {
		if h.Port, err = parsePort(rest); err != nil {
			return h, err
		}
	}
	return h, nil
}

// parseSSHURI parses the part of an ssh:// URI after the scheme.
func parseSSHURI(s string) (Hop, error) {
	var h Hop
	if at := strings.IndexByte(s, '@'); at >= 0 {
		userinfo, _, _ := strings.Cut(s[:at], ";")
		if userinfo == "" {
			return h, errors.New("empty user in ssh:// URI")
		}
		u, err := url.PathUnescape(userinfo)
		if err != nil {
			return h, errors.New("bad %-escape in ssh:// URI user")
		}
		h.User, s = u, s[at+1:]
	}
	host, rest, delim, err := splitHostPort(s)
	if err != nil {
		return h, err
	}
	if !validDomain(host) {
		return h, errors.New("invalid host name " + strconv.Quote(host) + " in ssh:// URI")
	}
	h.Host = host
	if delim == ':' && rest != "" {
		port, path, hasPath := strings.Cut(rest, "/")
		if h.Port, err = parsePort(port); err != nil {
			return h, err
		}
		rest, delim = path, 0
		if hasPath {
			delim = '/'
		}
	}
	if delim == '/' && rest != "" {
		return h, errors.New("ssh:// URI must not have a path")
	}
	return h, nil
}

// splitHostPort splits "host", "host:rest", "host/rest" or "[addr]…" the way
// OpenSSH's hpdelim2 does, returning the host without brackets, what follows
// the delimiter, and the delimiter (0 for none).
func splitHostPort(s string) (host, rest string, delim byte, err error) {
	end := strings.IndexAny(s, ":/")
	if strings.HasPrefix(s, "[") {
		end = strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", 0, errors.New("missing ']' after IPv6 address")
		}
		end++
		if end < len(s) && s[end] != ':' && s[end] != '/' {
			return "", "", 0, errors.New("unexpected text after ']'")
		}
	}
	if end < 0 || end == len(s) {
		host = s
	} else {
		host, rest, delim = s[:end], s[end+1:], s[end]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", "", 0, errors.New("missing host name")
	}
	return host, rest, delim, nil
}

// parsePort parses a port 1-65535 (OpenSSH's a2port).
func parsePort(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || n > 65535 {
		return 0, errors.New("bad port " + strconv.Quote(s) + ": want a number from 1 to 65535")
	}
	return n, nil
}

// validDomain is OpenSSH's valid_domain: letters, digits, '.', '-' and
// '_', starting with a letter or digit, no "..".
func validDomain(s string) bool {
	if s == "" || !isAlnum(s[0]) || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isAlnum(c) && c != '.' && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
