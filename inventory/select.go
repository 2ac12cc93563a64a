package inventory

import (
	"fmt"
	"path"
	"strings"
)

// splitPatterns splits a comma-separated pattern list, dropping empty items
// and surrounding spaces.
func splitPatterns(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// CheckPatterns reports whether every item of a comma-separated list of
// fnmatch patterns (path.Match syntax) is well formed. Policy loading calls
// it on a role's groups and hosts so that Select never sees a bad one.
func CheckPatterns(s string) error {
	for _, p := range splitPatterns(s) {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("pattern %q: malformed (check [ ] classes and trailing \\)", p)
		}
	}
	return nil
}

// match reports whether name matches pattern p; a malformed pattern matches
// only its own text.
func match(p, name string) bool {
	ok, err := path.Match(p, name)
	if err != nil {
		return p == name
	}
	return ok
}

// Select returns, sorted by name, the hosts a role applies to: a host is
// selected when any of its groups (including "all") matches one of the
// comma-separated fnmatch patterns in groupsPat, or its name matches one of
// those in hostsPat. When both are empty every host is selected. A
// malformed pattern matches only its own literal text (check patterns
// earlier with CheckPatterns).
func (inv *Inventory) Select(groupsPat, hostsPat string) []*Host {
	gps, hps := splitPatterns(groupsPat), splitPatterns(hostsPat)
	all := inv.Hosts()
	if len(gps) == 0 && len(hps) == 0 {
		return all
	}
	var out []*Host
	for _, h := range all {
		if matchesAny(hps, h.Name) || groupsMatch(gps, h.Groups) {
			out = append(out, h)
		}
	}
	return out
}

func matchesAny(pats []string, name string) bool {
	for _, p := range pats {
		if match(p, name) {
			return true
		}
	}
	return false
}

func groupsMatch(pats, groups []string) bool {
	for _, g := range groups {
		if matchesAny(pats, g) {
			return true
		}
	}
	return false
}

// limitOp is how one --limit pattern combines with the others.
type limitOp byte

const (
	opUnion     limitOp = 0
	opExclude   limitOp = '!'
	opIntersect limitOp = '&'
)

type limitPattern struct {
	op  limitOp
	pat string
}

// Limit is a parsed --limit: comma-separated patterns, each matching host
// names and group names with fnmatch wildcards (* ? [a-z]). Plain patterns
// are united, "&pat" intersects, "!pat" excludes, regardless of order:
// (p1 ∪ p2 ...) ∩ &q1 ∩ &q2 ... \ !r1 \ !r2 .... With no plain pattern the
// union is every host. A nil *Limit selects everything.
type Limit struct {
	text string
	pats []limitPattern
}

// ParseLimit parses a --limit value such as "webservers*,!web1*,&eu". An
// empty value, an operator with no pattern and a malformed pattern (an
// unclosed [ class, a trailing backslash) are errors.
func ParseLimit(s string) (*Limit, error) {
	l := &Limit{text: s}
	for _, item := range splitPatterns(s) {
		lp := limitPattern{pat: item}
		if item[0] == '!' || item[0] == '&' {
			lp.op = limitOp(item[0])
			lp.pat = strings.TrimSpace(item[1:])
			if lp.pat == "" {
				return nil, fmt.Errorf("--limit %q: %q has no pattern after %q", s, item, item[:1])
			}
		}
		if _, err := path.Match(lp.pat, ""); err != nil {
			return nil, fmt.Errorf("--limit %q: pattern %q is malformed (check [ ] classes and trailing \\)", s, lp.pat)
		}
		l.pats = append(l.pats, lp)
	}
	if len(l.pats) == 0 {
		return nil, fmt.Errorf("--limit %q: no patterns; give host or group names, e.g. --limit 'webservers,!web1'", s)
	}
	return l, nil
}

// String returns the patterns in canonical form, comma-separated.
func (l *Limit) String() string {
	if l == nil {
		return ""
	}
	parts := make([]string, len(l.pats))
	for i, p := range l.pats {
		if p.op != opUnion {
			parts[i] = string(rune(p.op)) + p.pat
		} else {
			parts[i] = p.pat
		}
	}
	return strings.Join(parts, ",")
}

// NoMatchError is returned when a limit selects no host of the inventory.
// It lists what exists so the user can correct the pattern.
type NoMatchError struct {
	Limit     string
	Inventory string
	Groups    []string
	Hosts     []string // at most maxListedHosts names
	MoreHosts int      // hosts not listed
}

const maxListedHosts = 20

// Error names the limit and lists the groups and hosts that exist.
func (e *NoMatchError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "--limit %q matches no host", e.Limit)
	if e.Inventory != "" {
		fmt.Fprintf(&b, " in inventory %s", e.Inventory)
	}
	hosts := strings.Join(e.Hosts, ", ")
	if hosts == "" {
		hosts = "(none)"
	}
	fmt.Fprintf(&b, "; groups: %s; hosts: %s", strings.Join(e.Groups, ", "), hosts)
	if e.MoreHosts > 0 {
		fmt.Fprintf(&b, " (and %d more)", e.MoreHosts)
	}
	return b.String()
}

// matches reports whether p matches h's name or one of its groups.
func (p limitPattern) matches(h *Host) bool {
	return match(p.pat, h.Name) || groupsMatch([]string{p.pat}, h.Groups)
}

// Filter returns the hosts of hosts (in their order) that the limit
// selects. The limit is evaluated against the whole inventory first: when
// it selects no host of inv at all, Filter returns a *NoMatchError listing
// the groups and up to 20 hosts. (It may select none of hosts, e.g. a role
// whose hosts the limit leaves out; that is not an error.) A nil l returns
// hosts unchanged.
func (l *Limit) Filter(inv *Inventory, hosts []*Host) ([]*Host, error) {
	if l == nil {
		return hosts, nil
	}
	selected := map[string]bool{}
	hasUnion := false
	for _, p := range l.pats {
		if p.op == opUnion {
			hasUnion = true
		}
	}
	for _, h := range inv.Hosts() {
		in := !hasUnion
		for _, p := range l.pats {
			if p.op == opUnion && p.matches(h) {
				in = true
				break
			}
		}
		for _, p := range l.pats {
			if !in {
				break
			}
			switch p.op {
			case opIntersect:
				in = p.matches(h)
			case opExclude:
				in = !p.matches(h)
			}
		}
		if in {
			selected[h.Name] = true
		}
	}
	if len(selected) == 0 {
		e := &NoMatchError{Limit: l.text, Inventory: inv.source, Groups: inv.groupNames()}
		for _, h := range inv.Hosts() {
			if len(e.Hosts) < maxListedHosts {
				e.Hosts = append(e.Hosts, h.Name)
			} else {
				e.MoreHosts++
			}
		}
		return nil, e
	}
	var out []*Host
	for _, h := range hosts {
		if h != nil && selected[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}
