package lab

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// overlaid returns the machine directories every lab host sees through its own
// overlay. A lab directory must not be under any of them: from inside a host
// it would itself be overlaid, and the overlay's upper dir would be below
// its own mount point.
func overlaid() []string {
	return []string{"/etc", "/var", "/srv", "/home", "/opt", "/root", "/tmp", "/usr"}
}

// DefaultBase is the directory under which Start creates a fresh lab
// directory when Config.Dir is "".
const DefaultBase = "/run/opsmop-lab"

// maxLinks bounds hosts reached through another host: each gets its own
// 10.S.k.0/24 link, k < 256.
const maxLinks = 256

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	groupRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]{0,62}$`)
	// dirRE keeps lab paths usable inside mount option strings (no commas,
	// colons, spaces or quotes).
	dirRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
)

// ConfigError reports an invalid Config; Field names the offending field.
type ConfigError struct {
	Field string
	Msg   string
}

// Error returns "lab config: FIELD: MESSAGE".
func (e *ConfigError) Error() string { return "lab config: " + e.Field + ": " + e.Msg }

// planned is one host after validation, with its addresses and role in the
// network topology worked out.
type planned struct {
	spec     HostSpec
	index    int    // position in Config.Hosts
	addr     string // address to dial from the controller or from the parent
	parent   int    // index of the Via host, -1 for public hosts
	children []int  // indexes of hosts whose Via is this host
	link     int    // this host's link to its parent (10.S.link.0/24), -1 if public
	// netns is true when the host has its own network namespace: every
	// private host, and every public host that has children (a bastion).
	netns bool
	// acceptor is true for a public host with children: its sshd runs in
	// inetd mode in its own network namespace, fed by a listening socket
	// the lab opens in the root namespace.
	acceptor bool
}

// plan validates cfg (hosts, subnet, port) and assigns addresses. It does not
// look at Dir.
func plan(cfg Config) ([]*planned, error) {
	if cfg.Subnet == 0 {
		return nil, &ConfigError{"Subnet", "must be 1-255 (the second octet of 127.S.0.0/16); pick one per test package so parallel labs never collide"}
	}
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, &ConfigError{"Port", fmt.Sprintf("%d is not a TCP port (1-65535, 0 = 22)", cfg.Port)}
	}
	if len(cfg.Hosts) == 0 {
		return nil, &ConfigError{"Hosts", "no hosts given"}
	}
	byName := make(map[string]int, len(cfg.Hosts))
	ps := make([]*planned, len(cfg.Hosts))
	for i, h := range cfg.Hosts {
		if !nameRE.MatchString(h.Name) {
			return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Name", i), fmt.Sprintf("%q is not a valid host name (lower-case letters, digits and inner '-', at most 63)", h.Name)}
		}
		if _, dup := byName[h.Name]; dup {
			return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Name", i), fmt.Sprintf("host %q is listed twice", h.Name)}
		}
		if h.Group == "" {
			h.Group = "ungrouped"
		}
		if !groupRE.MatchString(h.Group) || h.Group == "all" {
			return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Group", i), fmt.Sprintf("%q is not a valid group name (letters, digits, '_' and '-'; not \"all\")", h.Group)}
		}
		for j, o := range h.SSHDOptions {
			if err := checkSSHDOption(o); err != nil {
				return nil, &ConfigError{fmt.Sprintf("Hosts[%d].SSHDOptions[%d]", i, j), err.Error()}
			}
		}
		byName[h.Name] = i
		ps[i] = &planned{spec: h, index: i, parent: -1, link: -1}
	}
	for i, p := range ps {
		if p.spec.Via == "" {
			continue
		}
		j, ok := byName[p.spec.Via]
		if !ok {
			return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Via", i), fmt.Sprintf("host %q is reached via %q, which is not in Hosts", p.spec.Name, p.spec.Via)}
		}
		if j == i {
			return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Via", i), fmt.Sprintf("host %q cannot be reached via itself", p.spec.Name)}
		}
		p.parent = j
		ps[j].children = append(ps[j].children, i)
	}
	// Every chain of Via must end at a public host.
	for i, p := range ps {
		seen := map[int]bool{i: true}
		chain := []string{p.spec.Name}
		for q := p; q.parent >= 0; q = ps[q.parent] {
			chain = append(chain, ps[q.parent].spec.Name)
			if seen[q.parent] {
				return nil, &ConfigError{fmt.Sprintf("Hosts[%d].Via", i), "Via chain is a cycle: " + strings.Join(chain, " -> ")}
			}
			seen[q.parent] = true
		}
	}
	pub, link := 0, 0
	for _, p := range ps {
		if p.parent < 0 {
			pub++
			if pub > 0xfeff {
				return nil, &ConfigError{"Hosts", "too many public hosts (at most 65279)"}
			}
			p.addr = fmt.Sprintf("127.%d.%d.%d", cfg.Subnet, pub>>8, pub&0xff)
			if len(p.children) > 0 {
				p.netns, p.acceptor = true, true
			}
			continue
		}
		if link >= maxLinks {
			return nil, &ConfigError{"Hosts", fmt.Sprintf("too many hosts with Via (at most %d)", maxLinks)}
		}
		p.link = link
		p.netns = true
		p.addr = childAddr(cfg.Subnet, link)
		link++
	}
	return ps, nil
}

// sshdOptionRE is one sshd_config setting: a keyword and a value.
var sshdOptionRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9]*([ \t]+|[ \t]*=[ \t]*)[^ \t].*$`)

// checkSSHDOption validates one HostSpec.SSHDOptions entry.
func checkSSHDOption(o string) error {
	if strings.ContainsAny(o, "\n\r\x00") {
		return fmt.Errorf("%q: one setting per entry, on one line", o)
	}
	o = strings.TrimSpace(o)
	if !sshdOptionRE.MatchString(o) {
		return fmt.Errorf("%q is not an sshd_config setting (a keyword and a value, e.g. \"MaxSessions 1\")", o)
	}
	switch k := sshdKey(o); k {
	case "hostkey", "pidfile", "listenaddress", "port", "match", "include":
		return fmt.Errorf("%q: %s is set by the lab (per-host options are single settings; Match and Include are not supported)", o, k)
	}
	return nil
}

// childAddr is the address of the private end of link k; parentAddr the
// address of the parent's end. Both exist only inside lab namespaces.
func childAddr(subnet byte, k int) string  { return fmt.Sprintf("10.%d.%d.2", subnet, k) }
func parentAddr(subnet byte, k int) string { return fmt.Sprintf("10.%d.%d.1", subnet, k) }

// checkDir validates a caller-given lab directory: absolute, simple
// characters only, not "/", not under an overlaid directory (after
// resolving symlinks), and either missing or an empty directory.
func checkDir(dir string) error {
	if !filepath.IsAbs(dir) {
		return &ConfigError{"Dir", fmt.Sprintf("%q is not an absolute path", dir)}
	}
	dir = filepath.Clean(dir)
	if !dirRE.MatchString(dir) {
		return &ConfigError{"Dir", fmt.Sprintf("%q may contain only letters, digits and . _ / - (it ends up in mount options)", dir)}
	}
	if dir == "/" {
		return &ConfigError{"Dir", `"/" cannot be a lab directory`}
	}
	resolved, err := resolveExisting(dir)
	if err != nil {
		return &ConfigError{"Dir", err.Error()}
	}
	for _, cand := range []string{dir, resolved} {
		for _, o := range overlaid() {
			if cand == o || strings.HasPrefix(cand, o+"/") {
				return &ConfigError{"Dir", fmt.Sprintf("%q is under %s, which every lab host overlays; use a directory outside %s, e.g. under %s",
					dir, o, strings.Join(overlaid(), ","), DefaultBase)}
			}
		}
	}
	if !dirRE.MatchString(resolved) {
		return &ConfigError{"Dir", fmt.Sprintf("%q resolves to %q, which has characters other than letters, digits and . _ / -", dir, resolved)}
	}
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return &ConfigError{"Dir", err.Error()}
	case len(ents) > 0:
		return &ConfigError{"Dir", fmt.Sprintf("%q exists and is not empty (the lab removes its directory on Stop, so it must start empty; run `opsmop-lab down --dir %s` if it holds an old lab)", dir, dir)}
	}
	return nil
}

// resolveExisting resolves symlinks in the longest existing prefix of p and
// appends the rest.
func resolveExisting(p string) (string, error) {
	rest := ""
	for cur := p; ; {
		r, err := filepath.EvalSymlinks(cur)
		if err == nil {
			return filepath.Join(r, rest), nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(cur)
		if parent == cur {
			return p, nil
		}
		rest = filepath.Join(filepath.Base(cur), rest)
		cur = parent
	}
}
