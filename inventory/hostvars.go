package inventory

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SecretKey reports whether a variable named key holds a password: it ends
// in "password" (opsmop_ssh_password, opsmop_sudo_password, db_password,
// password). Such values are never type-converted by ParseHostVars, and
// callers pass SecretKey as the redact function of MarshalAnsibleJSON.
func SecretKey(key string) bool {
	return strings.HasSuffix(strings.ToLower(key), "password")
}

// hostVarToken is one key=value word of a host variable string.
type hostVarToken struct {
	raw    string // the word as written (for error messages)
	key    string
	value  string
	hasEq  bool
	quoted bool // some part of the value was quoted or escaped
}

// display is how the token appears in an error message: the value of a
// secret key is never shown.
func (t hostVarToken) display() string {
	if t.hasEq && SecretKey(t.key) {
		return t.key + "=" + "<redacted>"
	}
	return t.raw
}

// ParseHostVars parses a host variable string such as
//
//	opsmop_host=10.0.0.5 http_port=8081 motd="hello world" debug=true
//
// It splits words like a POSIX shell (and Python's shlex.split) without
// expansions: unquoted whitespace separates words; 'single quotes' keep
// everything literally; inside "double quotes" a backslash escapes only
// $ ` " \ and newline; outside quotes a backslash escapes any character.
// Every word must be NAME=VALUE with NAME a letter or underscore followed by
// letters, digits or underscores, and each NAME may appear once.
//
// A value written entirely without quotes or escapes is converted: an
// integer without leading zeros (-12, 0, 8081) becomes an int, a decimal
// number with a point or exponent (1.5, 2e3) a float64, true/false in any
// letter case a bool; anything else stays a string. A value with any quoted
// or escaped part (port="8081", v='1.10') is always a string, and so is the
// value of every key for which SecretKey is true. The empty string gives an
// empty map.
//
// Errors name the offending word; values of password keys are shown as
// <redacted>.
func ParseHostVars(s string) (map[string]any, error) {
	toks, err := splitHostVars(s)
	if err != nil {
		return nil, err
	}
	vars := make(map[string]any, len(toks))
	for i, t := range toks {
		shown := t.display()
		if i > 0 && toks[i-1].hasEq && toks[i-1].value == "" && !toks[i-1].quoted && SecretKey(toks[i-1].key) {
			// "opsmop_ssh_password= x": the stray word is the password.
			shown = "<redacted>"
		}
		if !t.hasEq {
			return nil, fmt.Errorf("host variables: word %d %q is not NAME=VALUE (write NAME=VALUE with no spaces around '=', quote values that contain spaces)", i+1, shown)
		}
		if !validVarName(t.key) {
			return nil, fmt.Errorf("host variables: word %d %q: %q is not a valid variable name (use letters, digits and _, not starting with a digit)", i+1, shown, t.key)
		}
		if _, dup := vars[t.key]; dup {
			return nil, fmt.Errorf("host variables: word %d %q: variable %s is set twice", i+1, shown, t.key)
		}
		if t.quoted || SecretKey(t.key) {
			vars[t.key] = t.value
		} else {
			vars[t.key] = inferValue(t.value)
		}
	}
	return vars, nil
}

// splitHostVars splits s into words as described at ParseHostVars. It works
// on bytes, so any byte sequence (including invalid UTF-8) passes through.
func splitHostVars(s string) ([]hostVarToken, error) {
	var toks []hostVarToken
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return toks, nil
		}
		start := i
		var word []byte
		var t hostVarToken
		eq := -1 // index in word of the first unquoted '='
		mark := func() {
			if eq >= 0 {
				t.quoted = true
			}
		}
		for i < len(s) && !isSpace(s[i]) {
			c := s[i]
			switch c {
			case '\\':
				if i+1 >= len(s) {
					t.raw = s[start:]
					return nil, fmt.Errorf("host variables: word %d %q ends with a backslash that escapes nothing", len(toks)+1, redactPartial(t.raw))
				}
				mark()
				if s[i+1] != '\n' { // backslash-newline is a line continuation
					word = append(word, s[i+1])
				}
				i += 2
			case '\'':
				end := strings.IndexByte(s[i+1:], '\'')
				if end < 0 {
					return nil, fmt.Errorf("host variables: word %d %q has an unterminated single quote", len(toks)+1, redactPartial(s[start:]))
				}
				mark()
				word = append(word, s[i+1:i+1+end]...)
				i += end + 2
			case '"':
				mark()
				i++
				closed := false
				for i < len(s) {
					d := s[i]
					if d == '"' {
						closed = true
						i++
						break
					}
					if d == '\\' && i+1 < len(s) {
						switch s[i+1] {
						case '$', '`', '"', '\\':
							word = append(word, s[i+1])
							i += 2
							continue
						case '\n':
							i += 2
							continue
						}
					}
					word = append(word, d)
					i++
				}
				if !closed {
					return nil, fmt.Errorf("host variables: word %d %q has an unterminated double quote", len(toks)+1, redactPartial(s[start:]))
				}
			case '=':
				if eq < 0 {
					eq = len(word)
				}
				word = append(word, c)
				i++
			default:
				word = append(word, c)
				i++
			}
		}
		t.raw = s[start:i]
		if eq >= 0 {
			t.hasEq = true
			t.key = string(word[:eq])
			t.value = string(word[eq+1:])
		}
		toks = append(toks, t)
	}
}

// redactPartial shows an unfinished word, hiding the value when the word
// starts with a password key.
func redactPartial(raw string) string {
	if k, _, ok := strings.Cut(raw, "="); ok && SecretKey(k) {
		return k + "=<redacted>"
	}
	return raw
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// validVarName reports whether k is a letter or _ followed by letters,
// digits and _.
func validVarName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// inferValue converts an unquoted value as described at ParseHostVars.
func inferValue(v string) any {
	if strings.EqualFold(v, "true") {
		return true
	}
	if strings.EqualFold(v, "false") {
		return false
	}
	if isIntLiteral(v) {
		if n, err := strconv.ParseInt(v, 10, 0); err == nil {
			return int(n)
		}
		return v
	}
	if isFloatLiteral(v) {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(f, 0) {
			return f
		}
	}
	return v
}

// isIntLiteral: optional sign, then 0 or a non-zero digit and digits.
func isIntLiteral(v string) bool {
	if v != "" && (v[0] == '-' || v[0] == '+') {
		v = v[1:]
	}
	if v == "" {
		return false
	}
	if v[0] == '0' {
		return len(v) == 1
	}
	return allDigits(v)
}

// isFloatLiteral: optional sign, digits with a point (1.5, 1., .5) and/or an
// exponent (2e3, 1.5E-7).
func isFloatLiteral(v string) bool {
	if v != "" && (v[0] == '-' || v[0] == '+') {
		v = v[1:]
	}
	mant, exp := v, ""
	hasExp := false
	if i := strings.IndexAny(v, "eE"); i >= 0 {
		mant, exp, hasExp = v[:i], v[i+1:], true
	}
	intPart, frac, hasPoint := strings.Cut(mant, ".")
	if intPart == "" && frac == "" {
		return false
	}
	if !allDigits(intPart) || !allDigits(frac) {
		return false
	}
	if hasExp {
		if exp != "" && (exp[0] == '-' || exp[0] == '+') {
			exp = exp[1:]
		}
		if exp == "" || !allDigits(exp) {
			return false
		}
	}
	return hasPoint || hasExp
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
