package policy

import (
	"errors"
	"math"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/opsmop/opsmop/internal/srcpos"
)

// ParseTOML parses a TOML document into a Node tree (a Map at the top).
// Keys carry the line where they are written; a table made by a [header]
// or [[header]] carries the header's line. Dates and times become strings.
// Syntax errors, duplicate keys and tables defined twice are reported as an
// ErrorList; a number with a leading zero (mode = 0750) gets advice to
// quote it.
func ParseTOML(file string, data []byte) (*Node, error) {
	data = data[:len(data):len(data)] // so that error highlights map to offsets
	b := &tomlBuilder{
		file:  file,
		data:  data,
		lines: srcpos.NewLines(data),
		state: map[*Node]tableState{},
		index: map[*Node]map[string]int{},
	}
	b.root = &Node{Kind: Map, Pos: Pos{File: file, Line: 1}}
	b.cur, b.curPath = b.root, ""
	var p unstable.Parser
	p.Reset(data)
	for p.NextExpression() {
		b.expression(p.Expression())
		if b.nodes > MaxNodes {
			b.errs.add(Pos{File: file, Line: b.lastLine}, "", "document too large: more than %d values", MaxNodes)
			return nil, b.errs.Err()
		}
	}
	if err := p.Error(); err != nil {
		pos := Pos{File: file}
		msg := "invalid TOML: " + err.Error()
		var perr *unstable.ParserError
		if errors.As(err, &perr) {
			off := cap(data) - cap(perr.Highlight)
			pos.Line = b.lines.Line(off)
			if m := b.leadingZero(off, perr.Message); m != "" {
				msg = m
			}
		}
		b.errs.add(pos, "", "%s", msg)
	}
	if err := b.errs.Err(); err != nil {
		return nil, err
	}
	return b.root, nil
}

// leadingZero explains a syntax error at byte off about a number written
// with a leading zero (mode = 0750), or returns "" when the error is
// another. go-toml says "integers cannot have leading zeroes" and
// highlights the first two digits; the source text is checked too, so the
// advice does not depend on the wording.
func (b *tomlBuilder) leadingZero(off int, msg string) string {
	if off < 0 || off >= len(b.data) {
		return ""
	}
	start, end := off, off
	if start > 0 && (b.data[start-1] == '+' || b.data[start-1] == '-') {
		start--
	}
	for end < len(b.data) && !strings.ContainsRune(" \t\r\n,]}#", rune(b.data[end])) {
		end++
	}
	text := string(b.data[start:end])
	if !leadingZeroRE.MatchString(text) || (!numberRE.MatchString(text) && !strings.Contains(msg, "leading zero")) {
		return ""
	}
	// The key, when the number is a key's value (not a list item).
	key := ""
	before := strings.TrimRight(string(b.data[b.lines.Start(b.lines.Line(start)):start]), " \t")
	if k, ok := strings.CutSuffix(before, "="); ok {
		if i := strings.LastIndexAny(k, "{,"); i >= 0 {
			k = k[i+1:]
		}
		key = strings.TrimSpace(k)
	}
	what := text
	if key != "" {
		what = key + " = " + text
	}
	return what + ": TOML numbers cannot have leading zeros; " + leadingZeroAdvice(key, " = ", text)
}

// tableState is how a TOML table or array came to exist, which decides
// what may later extend it.
type tableState uint8

const (
	tsImplicit   tableState = iota // parent of a [header], not yet defined itself
	tsHeader                       // defined by its own [header]
	tsDotted                       // defined by dotted keys (a.b = 1)
	tsInline                       // an inline table: closed
	tsArrayTable                   // the list made by [[header]]
	tsStatic                       // a list written as a value: closed
)

type tomlBuilder struct {
	file     string
	data     []byte
	lines    *srcpos.Lines
	root     *Node
	cur      *Node // table receiving key/values
	curPath  string
	state    map[*Node]tableState
	index    map[*Node]map[string]int // map node → key → entry index
	errs     ErrorList
	nodes    int
	lastLine int
}

// get returns t's entry for key, or nil (a map index keeps this O(1)).
func (b *tomlBuilder) get(t *Node, key string) *Entry {
	if i, ok := b.index[t][key]; ok {
		return &t.Entries[i]
	}
	return nil
}

// put appends an entry to t.
func (b *tomlBuilder) put(t *Node, e Entry) {
	m := b.index[t]
	if m == nil {
		m = map[string]int{}
		b.index[t] = m
	}
	m[e.Key] = len(t.Entries)
	t.Entries = append(t.Entries, e)
}

// posOf returns the position of r, and remembers its line as the last
// one read.
func (b *tomlBuilder) posOf(r unstable.Range) Pos {
	l := b.lines.Line(int(r.Offset))
	b.lastLine = l
	return Pos{File: b.file, Line: l}
}

type keyPart struct {
	name string
	pos  Pos
}

// keyParts returns the parts of n's key with their positions, and
// remembers the last part's line as the last one read.
func (b *tomlBuilder) keyParts(n *unstable.Node) []keyPart {
	src := b.lines.TOMLKey(n)
	parts := make([]keyPart, len(src))
	for i, p := range src {
		parts[i] = keyPart{name: p.Name, pos: Pos{File: b.file, Line: p.Line}}
	}
	if len(src) > 0 {
		b.lastLine = src[len(src)-1].Line
	}
	return parts
}

func (b *tomlBuilder) expression(e *unstable.Node) {
	switch e.Kind {
	case unstable.Table, unstable.ArrayTable:
		b.header(b.keyParts(e), e.Kind == unstable.ArrayTable)
	case unstable.KeyValue:
		b.keyValue(b.cur, b.curPath, e, 0)
	}
}

// walk follows the parent parts of a [header] from the root, creating
// implicit tables. It returns nil (after recording an error) when a part
// cannot be a table.
func (b *tomlBuilder) walk(parts []keyPart) (*Node, string) {
	t, path := b.root, ""
	for _, p := range parts {
		e := b.get(t, p.name)
		if e == nil {
			m := &Node{Kind: Map, Pos: p.pos}
			b.nodes++
			b.state[m] = tsImplicit
			b.put(t, Entry{Key: p.name, KeyPos: p.pos, Value: m})
			t, path = m, keyPath(path, p.name)
			continue
		}
		v := e.Value
		switch {
		case v.Kind == Map && b.state[v] != tsInline:
			t, path = v, keyPath(path, p.name)
		case v.Kind == List && b.state[v] == tsArrayTable && len(v.Items) > 0:
			path = indexPath(keyPath(path, p.name), len(v.Items)-1)
			t = v.Items[len(v.Items)-1]
		default:
			b.errs.add(p.pos, keyPath(path, p.name), "cannot add a table to this key: it was set to %s at line %d", v.describe(true), e.KeyPos.Line)
			return nil, ""
		}
	}
	return t, path
}

func (b *tomlBuilder) header(parts []keyPart, array bool) {
	last := parts[len(parts)-1]
	// On error, key/values below the bad header go to a throwaway table so
	// they do not produce misleading follow-up errors.
	b.cur, b.curPath = &Node{Kind: Map, Pos: last.pos}, ""
	parent, path := b.walk(parts[:len(parts)-1])
	if parent == nil {
		return
	}
	path = keyPath(path, last.name)
	e := b.get(parent, last.name)
	b.nodes++
	table := &Node{Kind: Map, Pos: last.pos}
	b.state[table] = tsHeader
	if array {
		switch {
		case e == nil:
			list := &Node{Kind: List, Pos: last.pos, Items: []*Node{table}}
			b.state[list] = tsArrayTable
			b.put(parent, Entry{Key: last.name, KeyPos: last.pos, Value: list})
		case e.Value.Kind == List && b.state[e.Value] == tsArrayTable:
			e.Value.Items = append(e.Value.Items, table)
		default:
			b.errs.add(last.pos, path, "[[%s]] conflicts with the key set at line %d: it is %s, not an array of tables", path, e.KeyPos.Line, e.Value.describe(true))
			return
		}
		b.cur, b.curPath = table, indexPath(path, len(b.get(parent, last.name).Value.Items)-1)
		return
	}
	switch {
	case e == nil:
		b.put(parent, Entry{Key: last.name, KeyPos: last.pos, Value: table})
	case e.Value.Kind == Map && b.state[e.Value] == tsImplicit:
		b.state[e.Value] = tsHeader
		table = e.Value
	default:
		b.errs.add(last.pos, path, "table [%s] is already defined at line %d; merge the two", path, e.KeyPos.Line)
		return
	}
	b.cur, b.curPath = table, path
}

// keyValue adds one key = value to table t (the current table, or an
// inline table being built).
func (b *tomlBuilder) keyValue(t *Node, path string, kv *unstable.Node, depth int) {
	parts := b.keyParts(kv)
	for _, p := range parts[:len(parts)-1] {
		e := b.get(t, p.name)
		if e == nil {
			m := &Node{Kind: Map, Pos: p.pos}
			b.nodes++
			b.state[m] = tsDotted
			b.put(t, Entry{Key: p.name, KeyPos: p.pos, Value: m})
			t, path = m, keyPath(path, p.name)
			continue
		}
		if e.Value.Kind == Map && (b.state[e.Value] == tsDotted || b.state[e.Value] == tsImplicit) {
			t, path = e.Value, keyPath(path, p.name)
			continue
		}
		b.errs.add(p.pos, keyPath(path, p.name), "key %q was already defined at line %d and cannot be extended here", p.name, e.KeyPos.Line)
		return
	}
	last := parts[len(parts)-1]
	path = keyPath(path, last.name)
	if e := b.get(t, last.name); e != nil {
		b.errs.add(last.pos, path, "duplicate key %q (first set at line %d)", last.name, e.KeyPos.Line)
		return
	}
	v := b.value(kv.Value(), last.pos, path, depth+1)
	if v == nil {
		return
	}
	b.put(t, Entry{Key: last.name, KeyPos: last.pos, Value: v})
}

// value converts a TOML value; at is the position to use when the value
// has no range of its own (arrays). It returns nil after an error.
func (b *tomlBuilder) value(v *unstable.Node, at Pos, path string, depth int) *Node {
	b.nodes++
	if depth > MaxDepth {
		b.errs.add(at, path, "nested more than %d levels deep", MaxDepth)
		return nil
	}
	pos := at
	if v.Raw.Length > 0 {
		pos = b.posOf(v.Raw)
	}
	raw := string(v.Data)
	switch v.Kind {
	case unstable.String:
		return &Node{Kind: String, Value: raw, Pos: pos}
	case unstable.Bool:
		return &Node{Kind: Bool, Value: raw == "true", Pos: pos}
	case unstable.Integer:
		i, err := tomlInt(raw)
		if err != nil {
			b.errs.add(pos, path, "integer %s is out of range (64-bit signed)", raw)
			return nil
		}
		n := &Node{Kind: Int, Value: i, Pos: pos}
		if strconv.FormatInt(i, 10) != raw {
			n.Text = raw
		}
		return n
	case unstable.Float:
		f, err := tomlFloat(raw)
		if err != nil {
			b.errs.add(pos, path, "number %s is out of range", raw)
			return nil
		}
		return &Node{Kind: Float, Value: f, Text: raw, Pos: pos}
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return &Node{Kind: String, Value: raw, Pos: pos}
	case unstable.Array:
		list := &Node{Kind: List, Pos: pos, Items: []*Node{}}
		b.state[list] = tsStatic
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind == unstable.Comment {
				continue
			}
			item := b.value(c, pos, indexPath(path, len(list.Items)), depth+1)
			if item == nil {
				return nil
			}
			list.Items = append(list.Items, item)
		}
		return list
	case unstable.InlineTable:
		m := &Node{Kind: Map, Pos: pos}
		it := v.Children()
		for it.Next() {
			c := it.Node()
			if c.Kind != unstable.KeyValue {
				continue
			}
			b.keyValue(m, path, c, depth)
		}
		b.closeInline(m)
		return m
	}
	b.errs.add(pos, path, "unsupported TOML value %s", v.Kind)
	return nil
}

// closeInline marks an inline table and the tables its dotted keys made as
// closed to later headers and keys.
func (b *tomlBuilder) closeInline(m *Node) {
	b.state[m] = tsInline
	for _, e := range m.Entries {
		if e.Value.Kind == Map && b.state[e.Value] == tsDotted {
			b.closeInline(e.Value)
		}
	}
}

// tomlInt parses a TOML integer already validated by the scanner
// (underscores, 0x/0o/0b prefixes, sign).
func tomlInt(s string) (int64, error) {
	s = strings.ReplaceAll(s, "_", "")
	if len(s) > 2 && s[0] == '0' {
		switch s[1] {
		case 'x':
			return strconv.ParseInt(s[2:], 16, 64)
		case 'o':
			return strconv.ParseInt(s[2:], 8, 64)
		case 'b':
			return strconv.ParseInt(s[2:], 2, 64)
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// tomlFloat parses a TOML float already validated by the scanner.
func tomlFloat(s string) (float64, error) {
	switch strings.TrimLeft(s, "+-") {
	case "inf":
		if s[0] == '-' {
			return math.Inf(-1), nil
		}
		return math.Inf(1), nil
	case "nan":
		return math.NaN(), nil
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0, err
	}
	if math.IsInf(f, 0) {
		return 0, strconv.ErrRange
	}
	return f, nil
}
