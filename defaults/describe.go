package defaults

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/internal/secret"
)

// KV is one effective setting as shown by `opsmop inventory --host`.
type KV struct {
	Key    string
	Value  string
	Source string // as in Settings.Source; "" when nothing set it
}

// none is shown for a setting no level sets.
const none = "(none)"

// Describe lists the effective settings with the level that set each, in
// a fixed order: address, port, user, password, private_key,
// identities_only, sudo,
// sudo_user, sudo_password, via, check_host_keys, connection,
// connect_timeout, command_timeout, forks. Passwords show as <redacted>
// when set. viaChain, if given (see ViaChain), is shown as the via value
// ("jump1 -> jump2"); otherwise the direct jump host is.
func (s Settings) Describe(viaChain ...string) []KV {
	str := func(v string) string {
		if v == "" {
			return none
		}
		return v
	}
	pw := func(p secret.Secret) string {
		if p.IsZero() {
			return none
		}
		return secret.Redacted
	}
	via := str(s.Via)
	if len(viaChain) > 0 {
		via = strings.Join(viaChain, " -> ")
	}
	rows := []KV{
		{"address", str(s.Address), ""},
		{"port", strconv.Itoa(s.Port), ""},
		{"user", str(s.User), ""},
		{"password", pw(s.Password), ""},
		{"private_key", str(s.PrivateKey), ""},
		{"identities_only", strconv.FormatBool(s.IdentitiesOnly), ""},
		{"sudo", strconv.FormatBool(s.Sudo), ""},
		{"sudo_user", str(s.SudoUser), ""},
		{"sudo_password", pw(s.SudoPassword), ""},
		{"via", via, ""},
		{"check_host_keys", strconv.FormatBool(s.CheckHostKeys), ""},
		{"connection", str(s.Connection), ""},
		{"connect_timeout", s.ConnectTimeout.String(), ""},
		{"command_timeout", s.CommandTimeout.String(), ""},
		{"forks", strconv.Itoa(s.Forks), ""},
	}
	for i := range rows {
		rows[i].Source = s.Source[rows[i].Key]
	}
	return rows
}

// ViaChainError is a cycle in opsmop_via.
type ViaChainError struct {
	// Cycle lists the hosts from the first repeated one back to itself.
	Cycle []string
}

// Error names the hosts in the cycle.
func (e *ViaChainError) Error() string {
	return fmt.Sprintf("%s jump hosts form a cycle: %s (fix one of these hosts' %s)", VarVia, strings.Join(e.Cycle, " -> "), VarVia)
}

// ViaChain returns the jump hosts to go through to reach host, in dialling
// order (the first to connect to first), by following via from host: via
// returns a host's opsmop_via ("" for a direct connection), e.g. the Via of
// its resolved Settings. A cycle is a *ViaChainError; an error from via is
// returned as is. A direct host gives an empty chain.
func ViaChain(host string, via func(host string) (string, error)) ([]string, error) {
	seen := map[string]int{host: 0}
	path := []string{host}
	cur := host
	for {
		next, err := via(cur)
		if err != nil {
			return nil, err
		}
		if next == "" {
			break
		}
		if i, ok := seen[next]; ok {
			return nil, &ViaChainError{Cycle: append(append([]string{}, path[i:]...), next)}
		}
		seen[next] = len(path)
		path = append(path, next)
		cur = next
	}
	// path is host, jump1 (nearest), ...; dial from the far end.
	chain := make([]string, 0, len(path)-1)
	for i := len(path) - 1; i >= 1; i-- {
		chain = append(chain, path[i])
	}
	return chain, nil
}
