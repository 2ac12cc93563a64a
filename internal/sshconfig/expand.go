package sshconfig

import (
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os/user"
	"strings"
)

// tokens maps %-token letters to their values. A letter absent from the
// map is an unknown token.
type tokens map[byte]string

// expand performs OpenSSH's percent and dollar expansion on s: "%%" is a
// literal '%', "%X" is tokens[X] (unknown X is an error), and with dollar,
// "${VAR}" is the value of VAR from getenv (unset is an error). With
// tokens nil no %-expansion is done.
func expand(s string, tok tokens, dollar bool, getenv func(string) (string, bool)) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if dollar && strings.HasPrefix(s[i:], "${") {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return "", fmt.Errorf("environment variable %q is missing its closing '}'", s[i:])
			}
			name := s[i+2 : i+2+end]
			if name == "" {
				return "", errors.New("zero-length environment variable ${}")
			}
			v, ok := getenv(name)
			if !ok {
				return "", fmt.Errorf("environment variable ${%s} has no value: set it or change the line", name)
			}
			b.WriteString(v)
			i += 2 + end
			continue
		}
		if s[i] != '%' || tok == nil {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i == len(s) {
			return "", errors.New("'%' at end of value: write %% for a literal '%'")
		}
		if s[i] == '%' {
			b.WriteByte('%')
			continue
		}
		v, ok := tok[s[i]]
		if !ok {
			return "", fmt.Errorf("unknown token %%%c: write %%%% for a literal '%%'", s[i])
		}
		b.WriteString(v)
	}
	return b.String(), nil
}

// tildeExpand expands a leading "~", "~/" or "~user/" as OpenSSH's
// tilde_expand does (home directory, then '/', then the rest with leading
// slashes removed). Other strings are returned unchanged.
func tildeExpand(s, home string) (string, error) {
	if !strings.HasPrefix(s, "~") {
		return s, nil
	}
	rest := s[1:]
	name, path, _ := strings.Cut(rest, "/")
	if strings.HasPrefix(rest, "/") || rest == "" {
		name, path = "", strings.TrimLeft(rest, "/")
	} else {
		path = strings.TrimLeft(path, "/")
	}
	dir := home
	if name != "" {
		u, err := user.Lookup(name)
		if err != nil {
			return "", fmt.Errorf("cannot expand ~%s: no such user", name)
		}
		dir = u.HomeDir
	}
	if !strings.HasSuffix(dir, "/") {
		dir += "/"
	}
	return dir + path, nil
}

// isAddr reports whether host is an IP address (which OpenSSH does not
// lowercase).
func isAddr(host string) bool {
	return net.ParseIP(host) != nil
}

// connHash is %C: the SHA-1, in hex, of local host name, remote host,
// port and remote user concatenated (OpenSSH's ssh_connection_hash).
func connHash(localHost, host, port, ruser string) string {
	sum := sha1.Sum([]byte(localHost + host + port + ruser))
	return hex.EncodeToString(sum[:])
}

// clientTokens builds the token set OpenSSH uses for IdentityFile,
// CertificateFile, IdentityAgent and UserKnownHostsFile (9.2's
// DEFAULT_CLIENT_PERCENT_EXPAND_ARGS, plus %j from later 9.x releases).
func clientTokens(q Query, host, port, ruser, jumpHost string) tokens {
	short, _, _ := strings.Cut(q.LocalHost, ".")
	return tokens{
		'C': connHash(q.LocalHost, host, port, ruser),
		'L': short,
		'i': q.UID,
		'k': q.Host,
		'l': q.LocalHost,
		'n': q.Host,
		'p': port,
		'd': q.Home,
		'h': host,
		'r': ruser,
		'u': q.LocalUser,
		'j': jumpHost,
	}
}
