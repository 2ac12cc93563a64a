package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
	yaml "go.yaml.in/yaml/v3"

	"github.com/opsmop/opsmop/internal/kind"
	"github.com/opsmop/opsmop/internal/limitread"
	"github.com/opsmop/opsmop/internal/srcpos"
)

// Load reads the inventory at path:
//
//   - a file ending in .toml, .yaml, .yml, .json or .ini is read as that
//     format (.json is Ansible's inventory JSON, as ansible-inventory
//     --list prints it; .ini Ansible's INI inventory). A .yaml/.yml file
//     whose top level has keys other than groups and hosts is Ansible's
//     YAML inventory format;
//   - any other file with an execute bit set is run with --list and must
//     print Ansible's dynamic inventory JSON; when that has no _meta
//     section, it is run again with --host NAME for each host. ctx bounds
//     the run (Load sets no timeout of its own); the error of a failed run
//     includes the script's stderr;
//   - any other file without an extension (such as Ansible's hosts) is
//     read as JSON if its first line that is not blank or a comment starts
//     with {, as YAML if that line is --- or a bare "NAME:", else as INI.
//
// Ansible's connection variables (ansible_host, ansible_user, ...) are
// translated to opsmop's in every format (the table is in
// docs/inventory.md); an Ansible setting opsmop cannot follow is an error.
//
// Hosts are kept in the order in which their names first appear in the
// file or output (see Inventory.Hosts). Errors name the file and, where
// known, the line and key path; a file that does not exist is an error
// that satisfies errors.Is(err, fs.ErrNotExist).
func Load(ctx context.Context, path string) (*Inventory, error) {
	fi, err := os.Stat(path)
	if err != nil {
		// The path is in the message already: keep only the reason
		// (wrapped, so that errors.Is(err, fs.ErrNotExist) holds).
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("inventory %s: %w (give an existing inventory file with -i, or set inventory in the policy)", path, err)
		}
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("inventory %s: is a directory; give an inventory file", path)
	}
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case ".toml", ".yaml", ".yml", ".json":
		b, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		switch ext {
		case ".toml":
			return parseTOML(path, b)
		case ".json":
			return parseAnsibleJSON(path, b, true, nil)
		default:
			return parseYAML(path, b)
		}
	}
	if ext == ".ini" {
		b, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		return parseINI(path, b)
	}
	if fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return runScript(ctx, path)
	}
	if ext == "" && fi.Mode().IsRegular() {
		b, err := readLimited(path)
		if err != nil {
			return nil, err
		}
		switch sniff(b) {
		case "json":
			return parseAnsibleJSON(path, b, true, nil)
		case "yaml":
			return parseYAML(path, b)
		}
		return parseINI(path, b)
	}
	return nil, fmt.Errorf("inventory %s: unknown format: name it *.toml, *.yaml, *.yml, *.json or *.ini (or give it no extension: an Ansible inventory such as hosts), or make it an executable inventory script (chmod +x)", path)
}

// sniff tells the format of an inventory file without an extension from
// its first line that is not blank or a comment (# or ;): "json" when it
// starts with {, "yaml" when it is --- or a bare mapping key (NAME: with
// nothing after it, which INI never accepts), else "ini".
func sniff(b []byte) string {
	for _, line := range strings.Split(strings.TrimPrefix(string(b), "\ufeff"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		switch {
		case line[0] == '{':
			return "json"
		case strings.HasPrefix(line, "---"):
			return "yaml"
		case strings.HasSuffix(line, ":") && !strings.ContainsAny(line, " \t[]="):
			return "yaml"
		}
		return "ini"
	}
	return "ini"
}

// MaxFileSize is the largest inventory file (and inventory script output)
// Load accepts: 32 MiB, some 400 000 hosts with a few variables each. A
// loaded inventory takes about 30 times its size in memory, so a larger
// file is refused before it is read, with an error saying so: a runaway
// generated file cannot exhaust the controller's memory.
const MaxFileSize = 32 << 20

// readLimited reads an inventory file of at most MaxFileSize bytes.
func readLimited(path string) ([]byte, error) {
	b, err := limitread.File(path, MaxFileSize)
	var tl *limitread.TooLargeError
	switch {
	case errors.As(err, &tl):
		return nil, fmt.Errorf("inventory %s: %s; split it, or generate hosts with an inventory script", path, tl.Reason())
	case err != nil:
		return nil, fmt.Errorf("inventory: %w", err)
	}
	return b, nil
}

// ---- TOML and YAML: one schema ----
//
//	groups.NAME.hosts    table HOST -> "k=v ..." string or table of vars
//	                     (or an array of host names)
//	groups.NAME.vars     table
//	groups.NAME.children array of group names
//	hosts.HOST.vars      table

// positions maps a key path to the line where it is written.
type positions map[string]int

func pathKey(p []string) string { return strings.Join(p, "\x00") }

// line returns the line of path, or of its longest known prefix, or 0.
func (ps positions) line(path []string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := ps[pathKey(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// schemaError is an error at a key path in a TOML or YAML inventory.
type schemaError struct {
	file string
	line int
	path []string
	msg  string
}

// Error reads "inventory FILE:LINE: key.path: message".
func (e *schemaError) Error() string {
	loc := e.file
	if e.line > 0 {
		loc += ":" + strconv.Itoa(e.line)
	}
	if len(e.path) > 0 {
		return fmt.Sprintf("inventory %s: %s: %s", loc, formatPath(e.path), e.msg)
	}
	return fmt.Sprintf("inventory %s: %s", loc, e.msg)
}

// bareKey reports whether s can stand unquoted as a TOML key: not empty,
// only letters, digits, '_' and '-'.
func bareKey(s string) bool {
	if s == "" {
		return false
	}
	for j := 0; j < len(s); j++ {
		c := s[j]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// formatPath writes a key path TOML-style, quoting parts that need it.
func formatPath(p []string) string {
	parts := make([]string, len(p))
	for i, s := range p {
		if bareKey(s) {
			parts[i] = s
		} else {
			parts[i] = strconv.Quote(s)
		}
	}
	return strings.Join(parts, ".")
}

// fromTree builds an inventory from the decoded TOML/YAML document; order
// is its host names in the order they first appear in the text.
func fromTree(file string, doc map[string]any, pos positions, order []string) (*Inventory, error) {
	fail := func(path []string, format string, args ...any) error {
		for _, a := range args {
			var ve *varNameError
			if err, ok := a.(error); ok && errors.As(err, &ve) {
				// Point at the offending variable's own line.
				path = append(append([]string{}, path...), ve.key)
			}
		}
		return &schemaError{file: file, line: pos.line(path), path: path, msg: fmt.Sprintf(format, args...)}
	}
	for _, k := range sortedKeys(doc) {
		if k != "groups" && k != "hosts" {
			return nil, fail([]string{k}, "unknown key (an inventory has only groups and hosts)")
		}
	}
	var groups []Group
	hostLevel := map[string]map[string]any{} // from host strings / tables
	hostTable := map[string]map[string]any{} // from hosts.X.vars
	hostWhere := map[string][]string{}       // first path where a host is given
	groupsDoc, err := asTable(doc["groups"])
	if err != nil {
		return nil, fail([]string{"groups"}, "%v", err)
	}
	for _, gname := range sortedKeys(groupsDoc) {
		gpath := []string{"groups", gname}
		if err := checkName("group", gname); err != nil {
			return nil, fail(gpath, "%v", err)
		}
		gdoc, err := asTable(groupsDoc[gname])
		if err != nil {
			return nil, fail(gpath, "%v (a group has hosts, vars and children)", err)
		}
		g := Group{Name: gname}
		for _, k := range sortedKeys(gdoc) {
			kpath := append(append([]string{}, gpath...), k)
			switch k {
			case "hosts":
				names, vars, err := groupHosts(gdoc[k])
				if err != nil {
					return nil, fail(kpath, "%v", err)
				}
				for _, h := range names {
					hpath := append(append([]string{}, kpath...), h)
					if err := checkName("host", h); err != nil {
						return nil, fail(hpath, "%v", err)
					}
					g.Hosts = append(g.Hosts, h)
					if _, ok := hostWhere[h]; !ok {
						hostWhere[h] = hpath
					}
					v, err := hostValue(vars[h])
					if err != nil {
						return nil, fail(hpath, "%v", err)
					}
					if hostLevel[h] == nil {
						hostLevel[h] = map[string]any{}
					}
					// Host strings of the same host in several groups merge
					// in group-name order (later name wins).
					for kk, vv := range v {
						hostLevel[h][kk] = vv
					}
				}
			case "vars":
				vars, err := asTable(gdoc[k])
				if err != nil {
					return nil, fail(kpath, "%v", err)
				}
				if err := checkVarNames(vars); err != nil {
					return nil, fail(kpath, "%v", err)
				}
				g.Vars = vars
			case "children":
				list, ok := gdoc[k].([]any)
				if !ok {
					return nil, fail(kpath, "must be a list of group names, not %s", kind.A(kind.Of(gdoc[k])))
				}
				for _, c := range list {
					s, ok := c.(string)
					if !ok {
						return nil, fail(kpath, "must be a list of group names; %v is %s", c, kind.A(kind.Of(c)))
					}
					if _, ok := groupsDoc[s]; !ok {
						return nil, fail(kpath, "child group %q is not defined; define it as [groups.%s] (defined groups: %s)", s, formatPath([]string{s}), strings.Join(sortedKeys(groupsDoc), ", "))
					}
					g.Children = append(g.Children, s)
				}
			default:
				return nil, fail(kpath, "unknown key (a group has hosts, vars and children)")
			}
		}
		groups = append(groups, g)
	}
	hostsDoc, err := asTable(doc["hosts"])
	if err != nil {
		return nil, fail([]string{"hosts"}, "%v", err)
	}
	for _, h := range sortedKeys(hostsDoc) {
		hpath := []string{"hosts", h}
		if _, ok := hostWhere[h]; !ok {
			return nil, fail(hpath, "host %q is in no group: list it under a group's hosts (use [groups.all.hosts] for a host without a group)", h)
		}
		hdoc, err := asTable(hostsDoc[h])
		if err != nil {
			return nil, fail(hpath, "%v (a host has vars)", err)
		}
		for _, k := range sortedKeys(hdoc) {
			if k != "vars" {
				return nil, fail(append(hpath, k), "unknown key (a host has only vars)")
			}
			vars, err := asTable(hdoc[k])
			if err != nil {
				return nil, fail(append(hpath, k), "%v", err)
			}
			if err := checkVarNames(vars); err != nil {
				return nil, fail(append(hpath, k), "%v", err)
			}
			hostTable[h] = vars
		}
	}
	hostVars := map[string]map[string]any{}
	for h, v := range hostLevel {
		hostVars[h] = v
	}
	for h, v := range hostTable { // [hosts.X.vars] wins over host strings
		if hostVars[h] == nil {
			hostVars[h] = map[string]any{}
		}
		for k, vv := range v {
			hostVars[h][k] = vv
		}
	}
	inv, err := build(file, groups, hostVars, order)
	if err != nil {
		var ce *CycleError
		if errors.As(err, &ce) {
			return nil, &schemaError{file: file, line: pos.line([]string{"groups", ce.Path[0], "children"}), msg: err.Error()}
		}
		return nil, fmt.Errorf("inventory %s: %w", file, err)
	}
	return inv, nil
}

// groupHosts reads a group's hosts: a table HOST -> value, or a list of names.
func groupHosts(v any) ([]string, map[string]any, error) {
	switch x := v.(type) {
	case map[string]any:
		return sortedKeys(x), x, nil
	case []any:
		names := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, nil, fmt.Errorf("must be a table of host names to variables or a list of host names; %v is %s", e, kind.A(kind.Of(e)))
			}
			names = append(names, s)
		}
		return names, map[string]any{}, nil
	case nil:
		return nil, nil, nil
	}
	return nil, nil, fmt.Errorf("must be a table of host names to variables, not %s", kind.A(kind.Of(v)))
}

// hostValue reads the value given to a host in a group's hosts table: a
// host variable string, a table of variables, or nothing.
func hostValue(v any) (map[string]any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return ParseHostVars(x)
	case map[string]any:
		if err := checkVarNames(x); err != nil {
			return nil, err
		}
		return x, nil
	}
	return nil, fmt.Errorf("must be a string of NAME=VALUE words or a table of variables, not %s", kind.A(kind.Of(v)))
}

// varNameError reports an invalid variable name in a table of variables.
type varNameError struct{ key string }

func (e *varNameError) Error() string {
	return fmt.Sprintf("%q is not a valid variable name (use letters, digits and _, not starting with a digit)", e.key)
}

func checkVarNames(vars map[string]any) error {
	for _, k := range sortedKeys(vars) {
		if !validVarName(k) {
			return &varNameError{key: k}
		}
	}
	return nil
}

func asTable(v any) (map[string]any, error) {
	switch x := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		return x, nil
	}
	return nil, fmt.Errorf("must be a table, not %s", kind.A(kind.Of(v)))
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// normalize turns decoded values into plain Go values: int64/uint64 that fit
// become int, maps with non-string keys get string keys, and so on down.
func normalize(v any) any {
	switch x := v.(type) {
	case int64:
		return int(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int(x)
		}
		return float64(x)
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return int(n)
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = normalize(e)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[fmt.Sprint(k)] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	}
	return v
}

// maxTOMLKeys bounds the keys (host names, variables, table names) of a
// TOML inventory. The TOML decoder checks each new key against every key
// before it (quadratic: 47 000 hosts cost about 4 s of CPU, 100 000 about
// 18 s), so larger documents are refused with a pointer to YAML and JSON,
// which load in linear time.
const maxTOMLKeys = 100_000

func parseTOML(file string, b []byte) (*Inventory, error) {
	pos, order := tomlPositions(b)
	if len(pos) > maxTOMLKeys {
		return nil, fmt.Errorf("inventory %s: more than %d keys; TOML inventories that large load too slowly (the TOML decoder is quadratic in the number of keys): write it as YAML or JSON, or generate it with an inventory script", file, maxTOMLKeys)
	}
	var doc map[string]any
	if err := toml.Unmarshal(b, &doc); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			line, _ := de.Position()
			return nil, fmt.Errorf("inventory %s:%d: %s", file, line, strings.TrimPrefix(de.Error(), "toml: "))
		}
		return nil, fmt.Errorf("inventory %s: %w", file, err)
	}
	doc, _ = normalize(doc).(map[string]any)
	return fromTree(file, doc, pos, order)
}

// tomlPositions records the line of every key path in a TOML document
// (the first line a path, or a path it begins, is written at), and
// returns its host names in the order they first appear.
func tomlPositions(b []byte) (positions, []string) {
	pos := positions{}
	var seq hostSeq
	srcpos.TOMLKeys(b, func(path []string, line int, v *unstable.Node) {
		for i := 1; i <= len(path); i++ {
			if _, ok := pos[pathKey(path[:i])]; !ok {
				pos[pathKey(path[:i])] = line
			}
		}
		seq.key(path)
		if v != nil && v.Kind == unstable.Array {
			it := v.Children()
			for it.Next() {
				if c := it.Node(); c.Kind == unstable.String {
					seq.listItem(path, string(c.Data))
				}
			}
		}
	})
	return pos, seq.names
}

func parseYAML(file string, b []byte) (*Inventory, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("inventory %s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	pos := positions{}
	var doc map[string]any
	var order []string
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		top := root.Content[0]
		if top.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("inventory %s:%d: the document must be a mapping with groups and hosts", file, top.Line)
		}
		yamlPositions(top, nil, pos)
		ansible := false
		for i := 0; i < len(top.Content); i += 2 {
			if k := top.Content[i].Value; k != "groups" && k != "hosts" {
				ansible = true
			}
		}
		if ansible {
			if err := yaml11Retag(top); err != nil {
				return nil, fmt.Errorf("inventory %s:%s", file, strings.TrimPrefix(err.Error(), "line "))
			}
		}
		raw, err := yamlValue(top, maxAliasValues)
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %s", file, strings.TrimPrefix(err.Error(), "yaml: "))
		}
		doc, _ = normalize(raw).(map[string]any)
		if ansible {
			return fromAnsibleYAML(file, doc, pos)
		}
		// After yamlValue: it has bounded what aliases expand to.
		order = yamlHostOrder(top)
	}
	return fromTree(file, doc, pos, order)
}

func yamlPositions(n *yaml.Node, path []string, pos positions) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		p := append(append([]string{}, path...), k.Value)
		if _, ok := pos[pathKey(p)]; !ok {
			pos[pathKey(p)] = k.Line
		}
		yamlPositions(v, p, pos)
	}
}

// ---- Ansible JSON (static files and scripts) ----

// parseAnsibleJSON reads Ansible's inventory JSON. strict rejects unknown
// keys in group objects (static files); scripts are read leniently, as
// Ansible does. hostVars, if non-nil, is called for each host when the
// document has no _meta section.
func parseAnsibleJSON(file string, b []byte, strict bool, hostVars func(host string) (map[string]any, error)) (*Inventory, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("inventory %s: %s", file, jsonErr(b, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("inventory %s:%d: unexpected data after the JSON object", file, srcpos.LineAt(b, int(dec.InputOffset())))
	}
	doc, ok := normalize(raw).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("inventory %s: the JSON must be an object of groups (and _meta), not %s", file, kind.A(kind.Of(raw)))
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("inventory %s: "+format, append([]any{file}, args...)...)
	}
	var groups []Group
	defined := map[string]bool{}
	hostSeen := map[string]bool{}
	for _, gname := range sortedKeys(doc) {
		if gname == "_meta" {
			continue
		}
		defined[gname] = true
		g := Group{Name: gname}
		switch x := doc[gname].(type) {
		case []any: // {"group": ["host1", "host2"]}
			for _, h := range x {
				s, ok := h.(string)
				if !ok {
					return nil, fail("group %s: hosts must be strings; %v is %s", gname, h, kind.A(kind.Of(h)))
				}
				g.Hosts = append(g.Hosts, s)
			}
		case map[string]any:
			for _, k := range sortedKeys(x) {
				switch k {
				case "hosts", "children":
					list, ok := x[k].([]any)
					if !ok && x[k] != nil {
						return nil, fail("group %s: %s must be a list of names, not %s", gname, k, kind.A(kind.Of(x[k])))
					}
					for _, e := range list {
						s, ok := e.(string)
						if !ok {
							return nil, fail("group %s: %s must be a list of names; %v is %s", gname, k, e, kind.A(kind.Of(e)))
						}
						if k == "hosts" {
							g.Hosts = append(g.Hosts, s)
						} else {
							g.Children = append(g.Children, s)
						}
					}
				case "vars":
					vars, err := asTable(x[k])
					if err != nil {
						return nil, fail("group %s: vars %v", gname, err)
					}
					g.Vars = vars
				default:
					if strict {
						return nil, fail("group %s: unknown key %q (a group has hosts, vars and children)", gname, k)
					}
				}
			}
		case nil:
		default:
			return nil, fail("group %s: must be an object with hosts, vars and children, not %s", gname, kind.A(kind.Of(x)))
		}
		for _, h := range g.Hosts {
			hostSeen[h] = true
		}
		groups = append(groups, g)
	}
	// Children Ansible creates implicitly.
	for _, g := range groups {
		for _, c := range g.Children {
			if !defined[c] && c != AllGroup {
				defined[c] = true
				groups = append(groups, Group{Name: c})
			}
		}
	}
	hv := map[string]map[string]any{}
	if meta, ok := doc["_meta"]; ok {
		m, err := asTable(meta)
		if err != nil {
			return nil, fail("_meta %v", err)
		}
		for _, k := range sortedKeys(m) {
			if k != "hostvars" {
				if strict {
					return nil, fail("_meta: unknown key %q (only hostvars)", k)
				}
				continue
			}
			all, err := asTable(m[k])
			if err != nil {
				return nil, fail("_meta.hostvars %v", err)
			}
			for _, h := range sortedKeys(all) {
				vars, err := asTable(all[h])
				if err != nil {
					return nil, fail("_meta.hostvars.%s %v", h, err)
				}
				hv[h] = vars
			}
		}
	} else if hostVars != nil {
		names := make([]string, 0, len(hostSeen))
		for h := range hostSeen {
			names = append(names, h)
		}
		sort.Strings(names)
		got, err := fetchHostVars(names, hostVars)
		if err != nil {
			return nil, fmt.Errorf("inventory %s: %w", file, err)
		}
		hv = got
	}
	inv, err := build(file, groups, hv, jsonHostOrder(b))
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", file, err)
	}
	return inv, nil
}

// jsonErr describes a JSON decoding error with its line.
func jsonErr(b []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("line %d: invalid JSON: %v", srcpos.LineAt(b, int(se.Offset)), se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("line %d: %v", srcpos.LineAt(b, int(te.Offset)), te)
	}
	if errors.Is(err, io.EOF) {
		return "empty JSON document"
	}
	return "invalid JSON: " + err.Error()
}
