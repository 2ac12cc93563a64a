package inventory

import (
	"strings"
	"unicode/utf8"
)

// This file implements the host and group patterns of roles and --limit
// with the semantics of Python's fnmatch.fnmatchcase (checked against
// Python 3.11), which Ansible uses for its host patterns:
//
//   - "*" matches any run of characters, "/" and "." included; "?" matches
//     one character;
//   - "[seq]" matches one character of seq, "[!seq]" one not in seq; "a-z"
//     in seq is a range; "]" first in seq (after "!") is literal, as is "-"
//     first or last; a reversed range ("z-a") is left out of the set, so
//     "[z-a]" matches nothing (and "[!z-a]" any one character);
//   - "[^x]" is NOT a negation: "^" is an ordinary member of the set;
//   - a "[" with no closing "]" is a literal "[";
//   - there is no escaping: "\" is an ordinary character (match a
//     metacharacter literally with a class: "[*]", "[?]", "[[]");
//   - matching is case-sensitive and works on characters (runes), not
//     bytes; an invalid UTF-8 byte is one character that equals only itself.
//
// Python implements all this by translating the pattern into a regular
// expression. A few odd results follow from that translation (for
// instance "[b-a!x]" drops the empty range b-a, which leaves "!x" at the
// start of the set, so it means "[!x]"). setBody and setElem reproduce
// that translation of a set, oddities included, so that every pattern
// matches exactly what it matches in Python and Ansible;
// TestFnmatchMatchesPython checks this against python3.

// invalidByteBase is added to an invalid UTF-8 byte to give it a rune of
// its own, above every valid one, so that it only ever equals itself.
const invalidByteBase = utf8.MaxRune + 1

// decodeRune returns the character at s[i:] and its length in bytes.
func decodeRune(s string, i int) (rune, int) {
	r, n := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && n == 1 {
		return invalidByteBase + rune(s[i]), 1
	}
	return r, n
}

func decodeRunes(s string) []rune {
	out := make([]rune, 0, len(s))
	for i := 0; i < len(s); {
		r, n := decodeRune(s, i)
		out = append(out, r)
		i += n
	}
	return out
}

type elemKind uint8

const (
	elemLiteral elemKind = iota // the rune r
	elemAny                     // "?", or a set that takes every rune
	elemNone                    // a set that takes no rune
	elemSet                     // one of set (or, with negate, none of it)
	elemStar                    // "*"
)

// runeRange is an inclusive range of runes; a single rune has lo == hi.
type runeRange struct{ lo, hi rune }

// patElem is one element of a compiled pattern. Every kind but elemStar
// matches exactly one rune.
type patElem struct {
	kind   elemKind
	r      rune
	negate bool
	set    []runeRange
}

func (e *patElem) matches(r rune) bool {
	switch e.kind {
	case elemLiteral:
		return r == e.r
	case elemAny:
		return true
	case elemSet:
		for _, rg := range e.set {
			if rg.lo <= r && r <= rg.hi {
				return !e.negate
			}
		}
		return e.negate
	}
	return false
}

// pattern is a compiled fnmatch pattern.
type pattern struct {
	text  string
	plain bool // no metacharacter: matches only text itself
	elems []patElem
}

// compilePattern compiles an fnmatch pattern. It cannot fail: like Python,
// it reads what is not a well-formed wildcard as literal text. The
// compiled pattern's match(name) is fnmatch.fnmatchcase(name, text).
func compilePattern(text string) *pattern {
	p := &pattern{text: text}
	if !strings.ContainsAny(text, "*?[") {
		p.plain = true
		return p
	}
	pr := decodeRunes(text)
	for i, n := 0, len(pr); i < n; {
		c := pr[i]
		i++
		switch c {
		case '*':
			if len(p.elems) == 0 || p.elems[len(p.elems)-1].kind != elemStar {
				p.elems = append(p.elems, patElem{kind: elemStar})
			}
		case '?':
			p.elems = append(p.elems, patElem{kind: elemAny})
		case '[':
			j := i
			if j < n && pr[j] == '!' {
				j++
			}
			if j < n && pr[j] == ']' {
				j++
			}
			for j < n && pr[j] != ']' {
				j++
			}
			if j >= n {
				p.elems = append(p.elems, patElem{kind: elemLiteral, r: '['})
				continue
			}
			p.elems = append(p.elems, setElem(setBody(pr, i, j)))
			i = j + 1
		default:
			p.elems = append(p.elems, patElem{kind: elemLiteral, r: c})
		}
	}
	return p
}

// setBody returns what Python's fnmatch.translate puts between the
// brackets of the regular expression for the set pr[i:j] (the text between
// "[" and "]"), before it turns a leading "!" into "^": reversed ranges
// removed, and "\", "-" (other than range hyphens), "&", "~" and "|"
// escaped with a backslash.
//
// Python splits the set into chunks at its range hyphens: the first "-"
// after the first character (after "!" and one more when negated), then
// the first "-" at least three characters after the previous one; a "-"
// that ends the set is literal. It then merges the chunks on each side of a
// reversed range, from the last range back, dropping the range's ends. A
// range's ends are never changed by the merges after it (every chunk
// between two range hyphens has two characters or more), so each range is
// kept or dropped on its own: a range hyphen at h goes, with pr[h-1] and
// pr[h+1], when pr[h-1] > pr[h+1]. This keeps the work linear.
func setBody(pr []rune, i, j int) []rune {
	stuff := pr[i:j]
	if !containsRune(stuff, '-') {
		return escapeRunes(stuff, `\&~|`)
	}
	var hyphens []int
	k := i + 1
	if pr[i] == '!' {
		k = i + 2
	}
	for {
		if k = indexRune(pr, '-', k, j); k < 0 {
			break
		}
		hyphens = append(hyphens, k)
		k += 3
	}
	if n := len(hyphens); n > 0 && hyphens[n-1] == j-1 {
		hyphens = hyphens[:n-1] // a final "-" is literal
	}
	const (
		plain = iota
		rangeHyphen
		dropped
	)
	state := make([]uint8, j-i)
	for _, h := range hyphens {
		if pr[h-1] > pr[h+1] {
			state[h-1-i], state[h-i], state[h+1-i] = dropped, dropped, dropped
		} else {
			state[h-i] = rangeHyphen
		}
	}
	body := make([]rune, 0, 2*len(stuff))
	for n, r := range stuff {
		switch {
		case state[n] == dropped:
		case state[n] == rangeHyphen:
			body = append(body, '-')
		default:
			if strings.ContainsRune(`\-&~|`, r) {
				body = append(body, '\\')
			}
			body = append(body, r)
		}
	}
	return body
}

// setElem turns a set body (see setBody) into an element, as Python's
// fnmatch.translate and then its regular expression parser read it.
func setElem(body []rune) patElem {
	switch {
	case len(body) == 0:
		return patElem{kind: elemNone}
	case len(body) == 1 && body[0] == '!':
		return patElem{kind: elemAny}
	}
	src := make([]rune, 0, len(body)+2)
	switch body[0] {
	case '!':
		src = append(append(src, '^'), body[1:]...)
	case '^', '[':
		src = append(append(src, '\\'), body...)
	default:
		src = append(src, body...)
	}
	src = append(src, ']')
	e := patElem{kind: elemSet}
	pos := 0
	if src[0] == '^' {
		e.negate = true
		pos++
	}
	// next returns the next rune of the set and whether it was escaped.
	next := func() (rune, bool, bool) {
		if pos >= len(src) {
			return 0, false, false
		}
		r := src[pos]
		pos++
		if r == '\\' && pos < len(src) {
			r = src[pos]
			pos++
			return r, true, true
		}
		return r, false, true
	}
	for {
		this, escaped, ok := next()
		if !ok {
			// Python's regular expression parser would reject the set;
			// setBody never produces such a set. Match nothing.
			return patElem{kind: elemNone}
		}
		if this == ']' && !escaped && len(e.set) > 0 {
			break
		}
		if pos < len(src) && src[pos] == '-' {
			pos++
			that, escaped, ok := next()
			if !ok {
				return patElem{kind: elemNone}
			}
			if that == ']' && !escaped {
				e.set = append(e.set, runeRange{this, this}, runeRange{'-', '-'})
				break
			}
			if that < this {
				return patElem{kind: elemNone} // unreachable, as above
			}
			e.set = append(e.set, runeRange{this, that})
			continue
		}
		e.set = append(e.set, runeRange{this, this})
	}
	return e
}

func containsRune(rs []rune, r rune) bool {
	for _, c := range rs {
		if c == r {
			return true
		}
	}
	return false
}

// indexRune returns the index of the first r in rs[from:to], or -1.
func indexRune(rs []rune, r rune, from, to int) int {
	for k := from; k < to; k++ {
		if rs[k] == r {
			return k
		}
	}
	return -1
}

// escapeRunes returns rs with a backslash before every rune in chars.
func escapeRunes(rs []rune, chars string) []rune {
	out := make([]rune, 0, len(rs))
	for _, r := range rs {
		if strings.ContainsRune(chars, r) {
			out = append(out, '\\')
		}
		out = append(out, r)
	}
	return out
}

// match reports whether name matches the pattern.
func (p *pattern) match(name string) bool {
	if p.plain {
		return name == p.text
	}
	// Every element but "*" takes exactly one rune, so on a mismatch it is
	// enough to let the last "*" take one more rune and retry from there.
	pi, ni := 0, 0
	starP, starN := -1, 0
	for {
		if pi < len(p.elems) && p.elems[pi].kind == elemStar {
			starP, starN = pi, ni
			pi++
			continue
		}
		if ni < len(name) {
			if pi < len(p.elems) {
				r, n := decodeRune(name, ni)
				if p.elems[pi].matches(r) {
					pi++
					ni += n
					continue
				}
			}
		} else if pi == len(p.elems) {
			return true
		}
		if starP < 0 || starN >= len(name) {
			return false
		}
		_, n := decodeRune(name, starN)
		starN += n
		pi, ni = starP+1, starN
	}
}
