package inventory

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ---- Ansible INI ----
//
// Read as ansible-core's ini inventory plugin reads it
// (lib/ansible/plugins/inventory/ini.py): lines are stripped; empty lines
// and lines starting with # or ; are skipped; [NAME], [NAME:vars] and
// [NAME:children] start sections; lines before any section are hosts of
// ungrouped. Values go through Python's ast.literal_eval (pyLiteral).

// iniParser holds the state of one INI inventory being read.
type iniParser struct {
	file     string
	groups   map[string]*Group
	declared map[string]bool // a [g] or [g:children] section exists
	varsAt   map[string]int  // first line of [g:vars] of a group not yet declared
	childAt  map[string]int  // first line naming an undeclared child
	hostVars map[string]map[string]any
	order    hostSeq
	entries  int // host entries so far (ranges expanded), at most maxHostEntries
}

// maxHostEntries bounds the host entries (after expanding ranges) of an
// INI or Ansible YAML inventory: a few lines of ranges could otherwise
// name billions of hosts and exhaust memory.
const maxHostEntries = 1_000_000

// countEntries adds n host entries to *total and fails past the bound.
func countEntries(total *int, n int) error {
	*total += n
	if *total > maxHostEntries {
		return fmt.Errorf("more than %d hosts (ranges expanded); split the inventory, or generate it with an inventory script", maxHostEntries)
	}
	return nil
}

func (p *iniParser) group(name string) *Group {
	g, ok := p.groups[name]
	if !ok {
		g = &Group{Name: name, Vars: map[string]any{}}
		p.groups[name] = g
	}
	return g
}

// iniSection matches a section header as Ansible's pattern does.
func iniSection() *regexp.Regexp {
	return regexp.MustCompile(`^\[([^:\]\s]+)(?::(\w+))?\]\s*(?:#.*)?$`)
}

// iniGroupName matches a line of a [g:children] section.
func iniGroupName() *regexp.Regexp {
	return regexp.MustCompile(`^([^:\]\s]+)\s*(?:#.*)?$`)
}

func parseINI(file string, b []byte) (*Inventory, error) {
	p := &iniParser{
		file:     file,
		groups:   map[string]*Group{},
		declared: map[string]bool{AllGroup: true, UngroupedGroup: true},
		varsAt:   map[string]int{},
		childAt:  map[string]int{},
		hostVars: map[string]map[string]any{},
	}
	section, groupName := iniSection(), iniGroupName()
	group, state := UngroupedGroup, "hosts"
	text := strings.TrimPrefix(string(b), "\ufeff")
	for n, line := range strings.Split(text, "\n") {
		lineNo := n + 1
		fail := func(format string, args ...any) error {
			return fmt.Errorf("inventory %s:%d: %s", file, lineNo, fmt.Sprintf(format, args...))
		}
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if m := section.FindStringSubmatch(line); m != nil {
			group, state = m[1], m[2]
			if state == "" {
				state = "hosts"
			}
			if state != "hosts" && state != "vars" && state != "children" {
				return nil, fail("section [%s:%s] has an unknown type %q (use [%s], [%s:vars] or [%s:children])", group, state, state, group, group, group)
			}
			if err := checkName("group", group); err != nil {
				return nil, fail("%v", err)
			}
			p.group(group)
			if state == "vars" {
				if _, ok := p.varsAt[group]; !ok && !p.declared[group] {
					p.varsAt[group] = lineNo
				}
			} else {
				p.declared[group] = true
			}
			continue
		}
		if line[0] == '[' && line[len(line)-1] == ']' {
			return nil, fail("invalid section %s: a section is [NAME], [NAME:vars] or [NAME:children], with no spaces or other characters", line)
		}
		switch state {
		case "hosts":
			if err := p.hostLine(group, line); err != nil {
				return nil, fail("%v", err)
			}
		case "vars":
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fail("expected NAME=VALUE in [%s:vars], got %q", group, line)
			}
			k = strings.TrimSpace(k)
			if !validVarName(k) {
				return nil, fail("%q is not a valid variable name (use letters, digits and _, not starting with a digit)", k)
			}
			val, err := pyLiteral(strings.TrimSpace(v))
			if err != nil {
				return nil, fail("variable %s: %v", k, err)
			}
			p.group(group).Vars[k] = val
		case "children":
			m := groupName.FindStringSubmatch(line)
			if m == nil {
				return nil, fail("expected a group name in [%s:children], got %q", group, line)
			}
			if m[1] == AllGroup {
				return nil, fail("%q cannot be a child group (every group is already in it)", AllGroup)
			}
			if err := checkName("group", m[1]); err != nil {
				return nil, fail("%v", err)
			}
			p.group(m[1])
			if _, ok := p.childAt[m[1]]; !ok {
				p.childAt[m[1]] = lineNo
			}
			g := p.group(group)
			if group != AllGroup {
				g.Children = append(g.Children, m[1])
			}
		}
	}
	for _, g := range sortedKeys(p.groups) {
		if p.declared[g] {
			continue
		}
		if l, ok := p.childAt[g]; ok {
			return nil, fmt.Errorf("inventory %s:%d: child group %q is not defined; add a [%s] section (it may be empty)", file, l, g, g)
		}
		if l, ok := p.varsAt[g]; ok {
			return nil, fmt.Errorf("inventory %s:%d: section [%s:vars] is for group %q, which is not defined; add a [%s] section", file, l, g, g, g)
		}
	}
	groups := make([]Group, 0, len(p.groups))
	for _, name := range sortedKeys(p.groups) {
		groups = append(groups, *p.groups[name])
	}
	inv, err := build(file, groups, p.hostVars, p.order.names)
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", file, err)
	}
	return inv, nil
}

// hostLine reads "PATTERN[:PORT] k=v ..." in the section of group.
func (p *iniParser) hostLine(group, line string) error {
	words, err := pyShlex(line)
	if err != nil {
		return fmt.Errorf("host line %q: %v", line, err)
	}
	if len(words) == 0 {
		return nil
	}
	names, port, err := hostPattern(words[0], maxHostEntries-p.entries)
	if err != nil {
		return err
	}
	if err := countEntries(&p.entries, len(names)); err != nil {
		return err
	}
	vars := map[string]any{}
	for _, w := range words[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			return fmt.Errorf("host %s: expected NAME=VALUE, got %q (quote values that contain spaces)", words[0], w)
		}
		if !validVarName(k) {
			return fmt.Errorf("host %s: %q is not a valid variable name (use letters, digits and _, not starting with a digit)", words[0], k)
		}
		val, err := pyLiteral(v)
		if err != nil {
			if SecretKey(k) {
				return fmt.Errorf("host %s: variable %s: the value (<redacted>) is a Python literal opsmop cannot hold; quote it", words[0], k)
			}
			return fmt.Errorf("host %s: variable %s: %v", words[0], k, err)
		}
		vars[k] = val
	}
	if port >= 0 {
		vars["ansible_port"] = port
	}
	g := p.group(group)
	for _, h := range names {
		if err := checkName("host", h); err != nil {
			return err
		}
		p.order.add(h)
		if group == UngroupedGroup {
			// As Ansible: a host of ungrouped that is also in another
			// group is not ungrouped; build decides from all.
			g = p.group(AllGroup)
		}
		g.Hosts = append(g.Hosts, h)
		if len(vars) == 0 {
			continue
		}
		hv := p.hostVars[h]
		if hv == nil {
			hv = map[string]any{}
			p.hostVars[h] = hv
		}
		for k, v := range vars {
			hv[k] = v
		}
	}
	return nil
}

// hostPattern splits "NAME[:PORT]" and expands its ranges; port is -1
// when none is given.
func hostPattern(pat string, limit int) ([]string, int, error) {
	if pat == "---" {
		return nil, 0, errors.New(`host "---": this looks like a YAML document; name a YAML inventory *.yaml or *.yml`)
	}
	port := -1
	// Colons outside [ranges]: one separates a port; more mean an IPv6
	// address.
	colons, depth, last := 0, 0, -1
	for i := 0; i < len(pat); i++ {
		switch pat[i] {
		case '[':
			depth++
		case ']':
			depth--
		case ':':
			if depth == 0 {
				colons++
				last = i
			}
		}
	}
	switch {
	case strings.HasPrefix(pat, "[") && strings.Contains(pat, "]:") && strings.Count(pat, ":") > 2:
		return nil, 0, fmt.Errorf("host %s: a bracketed IPv6 address with a port is not supported; give the address in ansible_host and the port in ansible_port", pat)
	case colons == 1:
		n, err := strconv.Atoi(pat[last+1:])
		if err != nil || n < 0 || n > 65535 {
			return nil, 0, fmt.Errorf("host %s: %q after ':' is not a port number", pat, pat[last+1:])
		}
		port, pat = n, pat[:last]
	case colons > 1 && strings.Contains(pat, "["):
		return nil, 0, fmt.Errorf("host %s: ranges in IPv6 addresses are not supported; list the addresses", pat)
	case colons > 1:
		return []string{pat}, port, nil
	}
	names, err := expandRange(pat, limit)
	if err != nil {
		return nil, 0, fmt.Errorf("host %s: %v", pat, err)
	}
	return names, port, nil
}

// expandRange expands Ansible host ranges: web[01:03] gives web01, web02,
// web03; [a:c] gives a, b, c; [1:10:2] steps by 2. Several ranges in one
// name multiply. More than limit names is an error, found before they are
// made.
func expandRange(name string, limit int) ([]string, error) {
	open := strings.IndexByte(name, '[')
	if open < 0 {
		return []string{name}, nil
	}
	end := strings.IndexByte(name[open:], ']')
	if end < 0 {
		return nil, errors.New("a range [ has no closing ]")
	}
	end += open
	head, spec, tail := name[:open], name[open+1:end], name[end+1:]
	bounds := strings.Split(spec, ":")
	if len(bounds) != 2 && len(bounds) != 3 {
		return nil, fmt.Errorf("range [%s] must be [BEGIN:END] or [BEGIN:END:STEP]", spec)
	}
	beg, fin, step := bounds[0], bounds[1], 1
	if beg == "" {
		beg = "0"
	}
	if fin == "" {
		return nil, fmt.Errorf("range [%s] has no end", spec)
	}
	if len(bounds) == 3 {
		s, err := strconv.Atoi(bounds[2])
		if err != nil || s < 1 {
			return nil, fmt.Errorf("range [%s]: step %q must be a positive integer", spec, bounds[2])
		}
		step = s
	}
	var seq []string
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	ib, ie := strings.Index(letters, beg), strings.Index(letters, fin)
	if len(beg) == 1 && len(fin) == 1 && ib >= 0 && ie >= 0 {
		if ib > ie {
			return nil, fmt.Errorf("range [%s] must have begin <= end", spec)
		}
		for i := ib; i <= ie; i += step {
			seq = append(seq, letters[i:i+1])
		}
	} else {
		b, err1 := strconv.Atoi(beg)
		e, err2 := strconv.Atoi(fin)
		if err1 != nil || err2 != nil || b < 0 || e < 0 {
			return nil, fmt.Errorf("range [%s] must be two numbers or two letters", spec)
		}
		if b > e {
			return nil, fmt.Errorf("range [%s] must have begin <= end", spec)
		}
		if (e-b)/step+1 > limit {
			return nil, fmt.Errorf("more than %d hosts (ranges expanded); split the inventory, or generate it with an inventory script", maxHostEntries)
		}
		width := 0
		if beg[0] == '0' && len(beg) > 1 {
			if len(fin) != len(beg) {
				return nil, fmt.Errorf("range [%s]: a zero-padded begin and the end must have the same width", spec)
			}
			width = len(beg)
		}
		for i := b; i <= e; i += step {
			seq = append(seq, fmt.Sprintf("%0*d", width, i))
		}
	}
	var out []string
	for _, s := range seq {
		more, err := expandRange(head+s+tail, limit-len(out))
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// pyShlex splits a line as Python's shlex.split(line, comments=True).
func pyShlex(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	in := false // a word is being read (possibly empty, from quotes)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		case c == '#':
			if in {
				words = append(words, cur.String())
			}
			return words, nil
		case c == '\\':
			if i+1 >= len(s) {
				return nil, errors.New("no escaped character")
			}
			i++
			cur.WriteByte(s[i])
			in = true
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("no closing quotation")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			in = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("no closing quotation")
			}
			in = true
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words, nil
}
