package inventory

import (
	"fmt"
	"sort"
	"strings"
)

// SplitList splits a comma-separated list at every comma, trims the
// spaces around each item and drops empty items: "a, b,,c " is [a b c],
// and "" and " , " are nil. --limit, a role's hosts and groups, and the
// CLI's --tags and --skip-tags are all read with it, so a comma-separated
// list means the same wherever one is written.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// compilePatterns compiles the items of a comma-separated pattern list.
func compilePatterns(s string) []*pattern {
	var out []*pattern
	for _, p := range SplitList(s) {
		out = append(out, compilePattern(p))
	}
	return out
}

// CheckPatterns reports whether every item of a comma-separated list of
// fnmatch patterns can select anything. Every fnmatch pattern is well
// formed (an unclosed [ and a \ are literal text), so the one mistake it
// rejects is an item starting with ! or &: no host or group name starts
// with those (Load and New refuse such names), and the exclusion and
// intersection they mean in --limit do not exist in a role's groups and
// hosts. Empty items are ignored. Policy loading calls it on a role's
// groups and hosts.
func CheckPatterns(s string) error {
	for _, p := range SplitList(s) {
		if p[0] == '!' || p[0] == '&' {
			return fmt.Errorf("pattern %q starts with %q, which no host or group name does, so it selects nothing (! excludes and & intersects only in --limit)", p, p[:1])
		}
	}
	return nil
}

// Select returns, in inventory order (see Hosts), the hosts a role applies
// to: a host is selected when any of its groups (including "all") matches
// one of the comma-separated fnmatch patterns in groupsPat, or its name
// matches one of those in hostsPat. When both are empty every host is
// selected. Patterns follow Python's fnmatch.fnmatchcase, as Ansible's do:
// * matches any run of characters, ? one, [seq] one of seq, [!seq] one not
// in seq; there is no escaping, and no pattern is malformed.
func (inv *Inventory) Select(groupsPat, hostsPat string) []*Host {
	gps, hps := compilePatterns(groupsPat), compilePatterns(hostsPat)
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

func matchesAny(pats []*pattern, name string) bool {
	for _, p := range pats {
		if p.match(name) {
			return true
		}
	}
	return false
}

func groupsMatch(pats []*pattern, groups []string) bool {
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
	pat *pattern
}

// Limit is a parsed --limit: comma-separated patterns, each matching host
// names and group names with fnmatch wildcards (* ? [seq] [!seq], as
// Select). Plain patterns are united, "&pat" intersects, "!pat" excludes,
// regardless of order: (p1 ∪ p2 ...) ∩ &q1 ∩ &q2 ... \ !r1 \ !r2 .... With
// no plain pattern the union is every host. A nil *Limit selects
// everything.
type Limit struct {
	text string
	pats []limitPattern
}

// ParseLimit parses a --limit value such as "webservers*,!web1*,&eu".
// Empty items are ignored. An empty value, an operator with no pattern and
// a pattern that starts with ! or & after its operator ("!!web", which no
// name can match) are errors; any other pattern is valid (an unclosed [
// and a \ are literal text, as in Python's fnmatch).
func ParseLimit(s string) (*Limit, error) {
	l := &Limit{text: s}
	for _, item := range SplitList(s) {
		op, text := opUnion, item
		if item[0] == '!' || item[0] == '&' {
			op = limitOp(item[0])
			text = strings.TrimSpace(item[1:])
			if text == "" {
				return nil, fmt.Errorf("--limit %q: %q has no pattern after %q", s, item, item[:1])
			}
			if text[0] == '!' || text[0] == '&' {
				return nil, fmt.Errorf("--limit %q: %q: a pattern cannot start with %q (no host or group name does); give one operator, then the pattern", s, item, text[:1])
			}
		}
		l.pats = append(l.pats, limitPattern{op: op, pat: compilePattern(text)})
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
			parts[i] = string(rune(p.op)) + p.pat.text
		} else {
			parts[i] = p.pat.text
		}
	}
	return strings.Join(parts, ",")
}

// NoMatchError is returned when a limit selects no host of the inventory.
// It lists what exists so the user can correct the pattern.
type NoMatchError struct {
	Limit     string
	Inventory string
	Groups    []string // every group name, sorted
	Hosts     []string // host names, sorted, at most maxListedHosts
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
	return p.pat.match(h.Name) || groupsMatch([]*pattern{p.pat}, h.Groups)
}

// Filter returns the hosts of hosts (in their order) that the limit
// selects. The limit is evaluated against the whole inventory first: when
// it selects no host of inv at all, Filter returns a *NoMatchError listing
// the groups and the first 20 host names in name order. (It may select
// none of hosts, e.g. a role whose hosts the limit leaves out; that is not
// an error.) A nil l returns hosts unchanged.
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
		all := make([]string, 0, len(inv.hosts))
		for name := range inv.hosts {
			all = append(all, name)
		}
		sort.Strings(all)
		if len(all) > maxListedHosts {
			all, e.MoreHosts = all[:maxListedHosts], len(all)-maxListedHosts
		}
		e.Hosts = all
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
