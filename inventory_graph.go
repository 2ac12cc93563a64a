package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/opsmop/opsmop/inventory"
)

// The values of inventory --format, how --graph draws the tree.
const (
	graphFormatText = "text" // the indented tree of ansible-inventory --graph (the default)
	graphFormatDot  = "dot"  // Graphviz source
	graphFormatSVG  = "svg"  // the Graphviz source rendered by dot -Tsvg
)

// errNoGraphviz is the answer to --format svg when there is no dot command.
func errNoGraphviz() error {
	return errors.New("inventory: svg needs Graphviz's dot: install graphviz, or use --format dot and render it elsewhere")
}

// checkGraphFormat refuses a --format that is unknown or given without
// --graph, and finds dot for --format svg (returned; "" otherwise). It
// reads no file: a bad command line fails before the inventory is loaded.
func checkGraphFormat(env Env, opts InventoryOptions) (string, error) {
	if !opts.FormatGiven {
		return "", nil
	}
	if !opts.Graph {
		return "", invalid(fmt.Errorf("inventory: --format %s chooses how --graph draws the group tree: add --graph (or drop --format)", opts.Format))
	}
	switch opts.Format {
	case graphFormatText, graphFormatDot:
		return "", nil
	case graphFormatSVG:
		dot, ok := lookPath(env.Getenv, "dot")
		if !ok {
			return "", invalid(errNoGraphviz())
		}
		return dot, nil
	}
	return "", invalid(fmt.Errorf("inventory: --format %q is not a format of --graph: give text, dot or svg", opts.Format))
}

// lookPath finds the executable name in the directories of getenv's PATH
// (the process environment's in the CLI, the test's in tests).
func lookPath(getenv func(string) string, name string) (string, bool) {
	for _, dir := range filepath.SplitList(getenv("PATH")) {
		if dir == "" {
			continue // an empty entry means the working directory: not searched
		}
		p := filepath.Join(dir, name)
		fi, err := os.Stat(p)
		if err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// printGraph prints inv's group tree (the hosts --limit selects) in
// format: text as ansible-inventory --graph, dot as Graphviz source with
// the connection trees, svg as that source rendered by dotPath.
func (s *session) printGraph(ctx context.Context, inv *inventory.Inventory, format, dotPath string) error {
	if format == "" || format == graphFormatText {
		return inv.Graph(s.env.Stdout)
	}
	src, err := s.inventoryDot(inv, len(s.limits) > 0)
	if err != nil {
		return invalid(err)
	}
	if format == graphFormatDot {
		_, err = s.env.Stdout.Write(src)
		return err
	}
	svg, err := renderSVG(ctx, dotPath, src)
	if err != nil {
		return &exitError{code: exitFailed, err: err}
	}
	_, err = s.env.Stdout.Write(svg)
	return err
}

// renderSVG runs dot -Tsvg on src.
func renderSVG(ctx context.Context, dotPath string, src []byte) ([]byte, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, dotPath, "-Tsvg")
	cmd.Stdin = bytes.NewReader(src)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, errNoGraphviz()
		}
		return nil, fmt.Errorf("inventory: %s -Tsvg failed: %w%s (use --format dot to see the source it was given)", dotPath, err, msg)
	}
	return stdout.Bytes(), nil
}

// dotGraph collects the nodes and edges of the dot graph; each node id is
// its kind ("group" or "host") and name.
type dotGraph struct {
	nodes map[string]dotNode // by id
	edges map[[2]string]bool // from id, to id
	ids   map[string]string  // quoted id -> id, to catch two names quoting alike
}

// dotNode is one node of the dot graph.
type dotNode struct {
	kind, name string
	shape      string
	label      string
}

// node adds the node kind:name (the first call's shape and label win) and
// returns its id. Two names whose quoted ids are the same bytes (possible
// only through dotQuote's \xHH) are an error, not one merged node.
func (g *dotGraph) node(kind, name, shape, label string) (string, error) {
	id := kind + ":" + name
	q := dotQuote(id)
	if other, ok := g.ids[q]; ok && other != id {
		return "", fmt.Errorf("%s %q and %q show alike in dot (control characters or invalid UTF-8): rename one, or use --format text", kind, name, strings.TrimPrefix(other, kind+":"))
	}
	g.ids[q] = id
	if _, ok := g.nodes[id]; !ok {
		g.nodes[id] = dotNode{kind: kind, name: name, shape: shape, label: label}
	}
	return id, nil
}

// inventoryDot is the Graphviz source of inv: a box per group and an
// ellipse per host (labelled with its address when that differs from its
// name), solid edges for the group tree (from "all"; with limited, only
// the groups with a host of inv beneath them), and for each host reached
// through jump hosts, dashed "via" edges along its chain, first hop first.
// A jump host the inventory does not hold (an ssh config ProxyJump hop)
// is a diamond. Nodes and edges are sorted.
func (s *session) inventoryDot(inv *inventory.Inventory, limited bool) ([]byte, error) {
	g := &dotGraph{nodes: map[string]dotNode{}, edges: map[[2]string]bool{}, ids: map[string]string{}}
	selected := map[string]bool{}
	for _, h := range inv.Hosts() {
		selected[h.Name] = true
	}
	// has reports whether a group holds a selected host, directly or below.
	memo := map[string]bool{}
	var has func(name string) bool
	has = func(name string) bool {
		if v, ok := memo[name]; ok {
			return v
		}
		memo[name] = false
		grp, ok := inv.Group(name)
		if !ok {
			return false
		}
		for _, h := range grp.Hosts {
			if selected[h] {
				memo[name] = true
				return true
			}
		}
		for _, c := range grp.Children {
			if has(c) {
				memo[name] = true
				return true
			}
		}
		return false
	}
	hostLabel := map[string]string{}
	labelOf := func(name string) (string, error) {
		if l, ok := hostLabel[name]; ok {
			return l, nil
		}
		st, err := s.settings(nil, name)
		if err != nil {
			return "", fmt.Errorf("host %s: %w", name, err)
		}
		hostLabel[name] = addressLabel(name, st.Address)
		return hostLabel[name], nil
	}
	visited := map[string]bool{}
	var walk func(name string) (string, error)
	walk = func(name string) (string, error) {
		id, err := g.node("group", name, "box", name)
		if err != nil || visited[name] {
			return id, err
		}
		visited[name] = true
		grp, _ := inv.Group(name)
		for _, c := range grp.Children {
			if limited && !has(c) {
				continue
			}
			cid, err := walk(c)
			if err != nil {
				return "", err
			}
			g.edges[[2]string{id, cid}] = true
		}
		for _, h := range grp.Hosts {
			label, err := labelOf(h)
			if err != nil {
				return "", err
			}
			hid, err := g.node("host", h, "ellipse", label)
			if err != nil {
				return "", err
			}
			g.edges[[2]string{id, hid}] = true
		}
		return id, nil
	}
	if _, ok := inv.Group(inventory.AllGroup); ok {
		if _, err := walk(inventory.AllGroup); err != nil {
			return nil, err
		}
	}
	via := map[[2]string]bool{}
	for _, h := range inv.Hosts() {
		st, err := s.settings(nil, h.Name)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		chain, err := s.jumpChain(h.Name, st, nil)
		if err != nil {
			return nil, fmt.Errorf("host %s: %w", h.Name, err)
		}
		prev := ""
		for _, hp := range chain {
			var id string
			if _, ok := s.inv.Host(hp.name); ok {
				label, err := labelOf(hp.name)
				if err != nil {
					return nil, err
				}
				id, err = g.node("host", hp.name, "ellipse", label)
				if err != nil {
					return nil, err
				}
			} else if id, err = g.node("host", hp.name, "diamond", addressLabel(hp.name, hp.settings.Address)); err != nil {
				return nil, err
			}
			if prev != "" {
				via[[2]string{prev, id}] = true
			}
			prev = id
		}
		if prev != "" {
			via[[2]string{prev, "host:" + h.Name}] = true
		}
	}
	return g.render(via), nil
}

// addressLabel is a host's label: its name, and its address on a second
// line when that differs.
func addressLabel(name, address string) string {
	if address == "" || address == name {
		return name
	}
	return name + "\n" + address
}

// render writes the graph: nodes sorted by kind then name, then the
// group-tree edges, then the via edges, each sorted.
func (g *dotGraph) render(via map[[2]string]bool) []byte {
	var b bytes.Buffer
	b.WriteString("digraph inventory {\n  rankdir=LR;\n")
	ids := make([]string, 0, len(g.nodes))
	for id := range g.nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, c := g.nodes[ids[i]], g.nodes[ids[j]]
		if a.kind != c.kind {
			return a.kind < c.kind // "group" before "host"
		}
		return a.name < c.name
	})
	for _, id := range ids {
		n := g.nodes[id]
		fmt.Fprintf(&b, "  %s [shape=%s, label=%s];\n", dotQuote(id), n.shape, dotQuote(n.label))
	}
	for _, e := range sortedEdges(g.edges) {
		fmt.Fprintf(&b, "  %s -> %s;\n", dotQuote(e[0]), dotQuote(e[1]))
	}
	for _, e := range sortedEdges(via) {
		fmt.Fprintf(&b, "  %s -> %s [style=dashed, label=\"via\"];\n", dotQuote(e[0]), dotQuote(e[1]))
	}
	b.WriteString("}\n")
	return b.Bytes()
}

func sortedEdges(m map[[2]string]bool) [][2]string {
	out := make([][2]string, 0, len(m))
	for e := range m {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i][0] != out[j][0] {
			return out[i][0] < out[j][0]
		}
		return out[i][1] < out[j][1]
	})
	return out
}

// dotQuote is s as a dot quoted string, for an id or a label: `"` and `\`
// escaped (so a label's `\N`, `\G`, `\l` stay literal text), a newline as
// `\n` and a carriage return as `\r` (line breaks in a label), any other
// control character or invalid UTF-8 byte as the visible text \xHH.
// Everything else (spaces, `<`, `>`, `&`, non-ASCII) is kept: inside
// quotes dot reads it as text, and its SVG output escapes it.
func dotQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\\x%02X`, s[i])
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\\x%02X`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	b.WriteByte('"')
	return b.String()
}
