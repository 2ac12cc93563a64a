package inventory

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pyLiteral types an INI value as Ansible does (ast.literal_eval, falling
// back to the text): it returns the value Python's literal_eval gives
// (int, float64, bool, nil for None, string, []any for lists and tuples,
// map[string]any for dicts), or s itself when literal_eval would fail. A
// literal opsmop cannot hold (complex numbers, bytes, sets, dicts with keys
// that are not strings, integers beyond 64 bits) is an error rather than a
// silently different value.
func pyLiteral(s string) (any, error) {
	p := &pyParser{s: strings.TrimLeft(s, " \t")}
	v, err := p.expr()
	if err == nil {
		p.space()
		if p.i < len(p.s) {
			err = p.junk()
		}
	}
	switch {
	case err == errNotLiteral:
		return s, nil
	case err != nil:
		return nil, fmt.Errorf("value %q: %v; quote it to keep it as text", s, err)
	}
	return v, nil
}

// errNotLiteral: Python's literal_eval would fail, so the value is text.
var errNotLiteral = errors.New("not a Python literal")

type pyParser struct {
	s string
	i int
}

// space skips blanks and a trailing comment.
func (p *pyParser) space() {
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == ' ' || c == '\t' || c == '\f':
			p.i++
		case c == '#':
			p.i = len(p.s)
		default:
			return
		}
	}
}

func (p *pyParser) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *pyParser) expr() (any, error) {
	p.space()
	c := p.peek()
	switch {
	case c == '[':
		p.i++
		return p.seq(']')
	case c == '(':
		p.i++
		return p.paren()
	case c == '{':
		p.i++
		return p.dict()
	case c == '"' || c == '\'':
		return p.strings()
	case c == '+' || c == '-':
		p.i++
		p.space()
		if d := p.peek(); !(d >= '0' && d <= '9' || d == '.') {
			return nil, errNotLiteral
		}
		v, err := p.number()
		if err != nil {
			return nil, err
		}
		if c == '-' {
			switch x := v.(type) {
			case int:
				if x == math.MinInt64 {
					return nil, fmt.Errorf("the integer is too large")
				}
				return -x, nil
			case float64:
				return -x, nil
			}
		}
		return v, nil
	case c >= '0' && c <= '9' || c == '.':
		return p.number()
	case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80:
		start := p.i
		for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] >= 0x80) {
			p.i++
		}
		word := p.s[start:p.i]
		if q := p.peek(); (q == '\'' || q == '"') && len(word) <= 2 {
			lw := strings.ToLower(word)
			switch lw {
			case "r", "u":
				p.i = start
				return p.strings()
			case "b", "br", "rb":
				return nil, fmt.Errorf("bytes literals are not supported")
			}
			return nil, errNotLiteral // f-strings and the like
		}
		switch word {
		case "True":
			return true, nil
		case "False":
			return false, nil
		case "None":
			return nil, nil
		}
		return nil, errNotLiteral
	}
	return nil, errNotLiteral
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// seq reads list items up to end (the opening bracket is read).
func (p *pyParser) seq(end byte) ([]any, error) {
	out := []any{}
	for {
		p.space()
		if p.peek() == end {
			p.i++
			return out, nil
		}
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case end:
		default:
			return nil, p.junk()
		}
	}
}

// junk is the error for an unexpected character after a value: a
// complex number (1+2j) is an error, anything else just not a literal.
func (p *pyParser) junk() error {
	if c := p.peek(); c == '+' || c == '-' {
		rest := strings.TrimRight(strings.SplitN(p.s[p.i:], "#", 2)[0], " \t,)]}")
		if strings.HasSuffix(rest, "j") || strings.HasSuffix(rest, "J") {
			return fmt.Errorf("complex numbers are not supported")
		}
	}
	return errNotLiteral
}

// paren reads (x) or a tuple (the opening parenthesis is read).
func (p *pyParser) paren() (any, error) {
	p.space()
	if p.peek() == ')' {
		p.i++
		return []any{}, nil
	}
	v, err := p.expr()
	if err != nil {
		return nil, err
	}
	p.space()
	switch p.peek() {
	case ')':
		p.i++
		return v, nil
	case ',':
		p.i++
		rest, err := p.seq(')')
		if err != nil {
			return nil, err
		}
		return append([]any{v}, rest...), nil
	}
	return nil, p.junk()
}

func (p *pyParser) dict() (any, error) {
	out := map[string]any{}
	first := true
	for {
		p.space()
		if p.peek() == '}' {
			p.i++
			return out, nil
		}
		k, err := p.expr()
		if err != nil {
			return nil, err
		}
		p.space()
		if first && (p.peek() == ',' || p.peek() == '}') {
			return nil, fmt.Errorf("sets are not supported")
		}
		first = false
		if p.peek() != ':' {
			return nil, p.junk()
		}
		p.i++
		v, err := p.expr()
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("dict keys must be strings, not %v", k)
		}
		out[ks] = v
		p.space()
		switch p.peek() {
		case ',':
			p.i++
		case '}':
		default:
			return nil, p.junk()
		}
	}
}

// strings reads one or more adjacent string literals ('a' "b" is "ab").
func (p *pyParser) strings() (any, error) {
	var b strings.Builder
	for {
		p.space()
		raw := false
		switch c := p.peek(); {
		case c == 'r' || c == 'R':
			raw = true
			p.i++
		case c == 'u' || c == 'U':
			p.i++
		case c == 'b' || c == 'B' || c == 'f' || c == 'F':
			return p.expr() // reports bytes / f-strings
		}
		q := p.peek()
		if q != '\'' && q != '"' {
			if b.Len() == 0 && p.i < len(p.s) {
				return nil, errNotLiteral
			}
			return b.String(), nil
		}
		s, err := p.str(raw)
		if err != nil {
			return nil, err
		}
		b.WriteString(s)
		p.space()
		if c := p.peek(); c != '\'' && c != '"' && c != 'r' && c != 'R' && c != 'u' && c != 'U' && c != 'b' && c != 'B' && c != 'f' && c != 'F' {
			return b.String(), nil
		}
	}
}

// str reads one quoted string at p.i.
func (p *pyParser) str(raw bool) (string, error) {
	q := p.s[p.i]
	delim := string(q)
	if strings.HasPrefix(p.s[p.i:], strings.Repeat(delim, 3)) {
		delim = strings.Repeat(delim, 3)
	}
	p.i += len(delim)
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return "", errNotLiteral
		}
		if strings.HasPrefix(p.s[p.i:], delim) {
			p.i += len(delim)
			return b.String(), nil
		}
		c := p.s[p.i]
		if c == '\n' && len(delim) == 1 {
			return "", errNotLiteral
		}
		if c != '\\' {
			r, n := utf8.DecodeRuneInString(p.s[p.i:])
			b.WriteRune(r)
			p.i += n
			continue
		}
		if p.i+1 >= len(p.s) {
			return "", errNotLiteral
		}
		e := p.s[p.i+1]
		if raw {
			b.WriteByte('\\')
			b.WriteByte(e)
			p.i += 2
			continue
		}
		p.i += 2
		switch e {
		case '\n':
		case '\\', '\'', '"':
			b.WriteByte(e)
		case 'a':
			b.WriteByte('\a')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'v':
			b.WriteByte('\v')
		case 'x', 'u', 'U':
			n := map[byte]int{'x': 2, 'u': 4, 'U': 8}[e]
			if p.i+n > len(p.s) {
				return "", errNotLiteral
			}
			r, err := strconv.ParseUint(p.s[p.i:p.i+n], 16, 32)
			if err != nil || r > utf8.MaxRune {
				return "", errNotLiteral
			}
			b.WriteRune(rune(r))
			p.i += n
		case '0', '1', '2', '3', '4', '5', '6', '7':
			j := p.i - 1
			for j < len(p.s) && j < p.i+2 && p.s[j] >= '0' && p.s[j] <= '7' {
				j++
			}
			r, _ := strconv.ParseUint(p.s[p.i-1:j], 8, 32)
			b.WriteRune(rune(r))
			p.i = j
		case 'N':
			return "", fmt.Errorf(`\N{...} escapes are not supported`)
		default:
			b.WriteByte('\\')
			b.WriteByte(e)
		}
	}
}

// number reads a Python int or float literal at p.i.
func (p *pyParser) number() (any, error) {
	start := p.i
	for p.i < len(p.s) && (isIdent(p.s[p.i]) || p.s[p.i] == '.' ||
		(p.s[p.i] == '+' || p.s[p.i] == '-') && (p.s[p.i-1] == 'e' || p.s[p.i-1] == 'E') && !strings.HasPrefix(strings.ToLower(p.s[start:]), "0x")) {
		p.i++
	}
	lit := p.s[start:p.i]
	if strings.HasSuffix(lit, "j") || strings.HasSuffix(lit, "J") {
		return nil, fmt.Errorf("complex numbers are not supported")
	}
	if strings.Contains(lit, "__") || strings.HasSuffix(lit, "_") || strings.Contains(lit, "_.") || strings.Contains(lit, "._") {
		return nil, errNotLiteral
	}
	clean := strings.ReplaceAll(lit, "_", "")
	low := strings.ToLower(clean)
	if len(low) > 1 && low[0] == '0' && (low[1] == 'x' || low[1] == 'o' || low[1] == 'b') {
		if len(lit) > 2 && lit[2] == '_' {
			clean = lit[:2] + strings.ReplaceAll(lit[3:], "_", "")
			low = strings.ToLower(clean)
		} else if strings.Contains(lit[:min(len(lit), 3)], "_") {
			return nil, errNotLiteral
		}
		base := map[byte]int{'x': 16, 'o': 8, 'b': 2}[low[1]]
		return pyInt(low[2:], base)
	}
	if strings.ContainsAny(low, ".e") {
		if strings.ContainsAny(low, "abcdfghijklmnopqrstuvwxyz") || strings.Count(low, ".") > 1 || strings.Count(low, "e") > 1 {
			return nil, errNotLiteral
		}
		if i := strings.IndexByte(low, 'e'); i >= 0 && (i == 0 || low[:i] == "." || !strings.ContainsAny(low[i+1:], "0123456789")) {
			return nil, errNotLiteral
		}
		f, err := strconv.ParseFloat(low, 64)
		if err != nil || math.IsInf(f, 0) {
			if err != nil && !strings.Contains(err.Error(), "range") {
				return nil, errNotLiteral
			}
			return nil, fmt.Errorf("the number is out of range")
		}
		return f, nil
	}
	for i := 0; i < len(low); i++ {
		if low[i] < '0' || low[i] > '9' {
			return nil, errNotLiteral
		}
	}
	if len(low) > 1 && low[0] == '0' && strings.Trim(low, "0") != "" {
		return nil, errNotLiteral // 0644: a SyntaxError in Python 3
	}
	return pyInt(low, 10)
}

func pyInt(digits string, base int) (any, error) {
	if digits == "" {
		return nil, errNotLiteral
	}
	n, ok := new(big.Int).SetString(digits, base)
	if !ok {
		return nil, errNotLiteral
	}
	if !n.IsInt64() {
		return nil, fmt.Errorf("the integer is too large")
	}
	return int(n.Int64()), nil
}
