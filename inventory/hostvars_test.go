package inventory

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/shell"
)

func TestParseHostVars(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]any
	}{
		{"empty", "", map[string]any{}},
		{"spaces only", " \t\n ", map[string]any{}},
		{"brief example", "opsmop_host=10.0.0.5 http_port=8081", map[string]any{"opsmop_host": "10.0.0.5", "http_port": 8081}},
		{"int", "a=0 b=-12 c=+7", map[string]any{"a": 0, "b": -12, "c": 7}},
		{"leading zero stays string", "mode=0644 zip=007", map[string]any{"mode": "0644", "zip": "007"}},
		{"float", "a=1.5 b=-0.25 c=2e3 d=1. e=.5 f=1.5E-7", map[string]any{"a": 1.5, "b": -0.25, "c": 2000.0, "d": 1.0, "e": 0.5, "f": 1.5e-7}},
		{"version-like stays string", "v=1.2.3", map[string]any{"v": "1.2.3"}},
		{"bool any case", "a=true b=False c=TRUE d=fAlSe", map[string]any{"a": true, "b": false, "c": true, "d": false}},
		{"not bools", "a=yes b=no c=truely", map[string]any{"a": "yes", "b": "no", "c": "truely"}},
		{"int overflow stays string", "big=99999999999999999999", map[string]any{"big": "99999999999999999999"}},
		{"float overflow stays string", "f=1e999", map[string]any{"f": "1e999"}},
		{"inf nan stay strings", "a=inf b=NaN", map[string]any{"a": "inf", "b": "NaN"}},
		{"empty value", "a=", map[string]any{"a": ""}},
		{"value with =", "a=b=c", map[string]any{"a": "b=c"}},
		{"double quoted with space", `motd="hello world"`, map[string]any{"motd": "hello world"}},
		{"single quoted with space", `motd='hello world'`, map[string]any{"motd": "hello world"}},
		{"quoted number is string", `port="8081" v='1.10' t="true"`, map[string]any{"port": "8081", "v": "1.10", "t": "true"}},
		{"escaped number is string", `port=\8081`, map[string]any{"port": "8081"}},
		{"quoted empty", `a="" b=''`, map[string]any{"a": "", "b": ""}},
		{"double quote escapes", `a="x\"y\\z\$w\` + "`" + `" b="\n"`, map[string]any{"a": "x\"y\\z$w`", "b": `\n`}},
		{"single quotes literal", `a='x\"y $z'`, map[string]any{"a": `x\"y $z`}},
		{"unquoted escapes", `a=x\ y\'z`, map[string]any{"a": "x y'z"}},
		{"concatenation", `a=pre"mid dle"'post'`, map[string]any{"a": "premid dlepost"}},
		{"embedded single quote", `a='it'\''s'`, map[string]any{"a": "it's"}},
		{"line continuation", "a=x\\\ny", map[string]any{"a": "xy"}},
		{"tabs and newlines separate", "a=1\tb=2\nc=3", map[string]any{"a": 1, "b": 2, "c": 3}},
		{"shell metachars literal", `cmd=a;b|c&d`, map[string]any{"cmd": "a;b|c&d"}},
		{"password never converted", "opsmop_ssh_password=12345 db_password=true", map[string]any{"opsmop_ssh_password": "12345", "db_password": "true"}},
		{"underscore key", "_x=1 x_2=2", map[string]any{"_x": 1, "x_2": 2}},
		{"non-utf8 value", "a='\xff\xfe'", map[string]any{"a": "\xff\xfe"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseHostVars(c.in)
			if err != nil {
				t.Fatalf("ParseHostVars(%q): got error %v; want %v", c.in, err, c.want)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("ParseHostVars(%q) = %#v; want %#v", c.in, got, c.want)
			}
		})
	}
}

func TestParseHostVarsErrors(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []string // substrings of the error
		mustNot []string // substrings that must not appear (secrets)
	}{
		{"no equals", "a=1 lonely b=2", []string{`word 2 "lonely"`, "NAME=VALUE"}, nil},
		{"empty key", "=5", []string{`word 1 "=5"`, "not a valid variable name"}, nil},
		{"bad key", "a-b=1", []string{`"a-b=1"`, `"a-b" is not a valid variable name`}, nil},
		{"digit first", "1a=1", []string{`"1a" is not a valid`}, nil},
		{"duplicate", "a=1 a=2", []string{`word 2 "a=2"`, "set twice"}, nil},
		{"unterminated double", `a=1 b="oops`, []string{`word 2 "b=\"oops"`, "unterminated double quote"}, nil},
		{"unterminated single", `b='oops`, []string{`word 1`, "unterminated single quote"}, nil},
		{"trailing backslash", `a=x\`, []string{`word 1`, "backslash"}, nil},
		{"password unterminated is redacted", `opsmop_ssh_password="hunter2`, []string{"opsmop_ssh_password=<redacted>", "unterminated"}, []string{"hunter2"}},
		{"password duplicate is redacted", `db_password=hunter2 db_password=hunter3`, []string{"db_password=<redacted>", "set twice"}, []string{"hunter2", "hunter3"}},
		{"space after password = is redacted", `opsmop_sudo_password= hunter2`, []string{"<redacted>", "NAME=VALUE"}, []string{"hunter2"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseHostVars(c.in)
			if err == nil {
				t.Fatalf("ParseHostVars(%q) = %v, nil; want an error containing %q", c.in, got, c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseHostVars(%q) error = %q; want it to contain %q", c.in, err, w)
				}
			}
			for _, w := range c.mustNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("ParseHostVars(%q) error = %q; must not contain %q", c.in, err, w)
				}
			}
		})
	}
}

func TestFormatHostVars(t *testing.T) {
	cases := []struct {
		name string
		in   map[string]any
		want string
	}{
		{"empty", map[string]any{}, ""},
		{"sorted plain", map[string]any{"b": 2, "a": "x", "c": true}, "a=x b=2 c=true"},
		{"string that looks like int is quoted", map[string]any{"port": "8081"}, "port='8081'"},
		{"string that looks like bool is quoted", map[string]any{"t": "True"}, "t='True'"},
		{"space", map[string]any{"m": "hello world"}, "m='hello world'"},
		{"single quote", map[string]any{"m": "it's"}, `m='it'\''s'`},
		{"empty string", map[string]any{"m": ""}, "m=''"},
		{"whole float", map[string]any{"f": 2.0}, "f=2.0"},
		{"float", map[string]any{"f": 1.5}, "f=1.5"},
		{"big float", map[string]any{"f": 1e21}, "f=1e+21"},
		{"password digits unquoted", map[string]any{"opsmop_ssh_password": "12345"}, "opsmop_ssh_password=12345"},
		{"int64", map[string]any{"n": int64(-3)}, "n=-3"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := formatHostVars(c.in)
			if err != nil {
				t.Fatalf("formatHostVars(%v): got error %v; want %q", c.in, err, c.want)
			}
			if got != c.want {
				t.Errorf("formatHostVars(%v) = %q; want %q", c.in, got, c.want)
			}
			back, err := ParseHostVars(got)
			if err != nil {
				t.Fatalf("ParseHostVars(%q): %v", got, err)
			}
			want := map[string]any{}
			for k, v := range c.in {
				if n, ok := v.(int64); ok {
					v = int(n)
				}
				want[k] = v
			}
			if !reflect.DeepEqual(back, want) {
				t.Errorf("ParseHostVars(formatHostVars(%v)) = %#v; want %#v", c.in, back, want)
			}
		})
	}
}

func TestFormatHostVarsErrors(t *testing.T) {
	cases := []struct {
		name string
		in   map[string]any
	}{
		{"bad key", map[string]any{"a b": 1}},
		{"list value", map[string]any{"l": []any{1}}},
		{"nan", map[string]any{"f": nan()}},
		{"non-string password", map[string]any{"db_password": 5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got, err := formatHostVars(c.in); err == nil {
				t.Errorf("formatHostVars(%v) = %q, nil; want an error", c.in, got)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func TestSecretKey(t *testing.T) {
	cases := map[string]bool{
		"opsmop_ssh_password":  true,
		"opsmop_sudo_password": true,
		"db_password":          true,
		"password":             true,
		"DB_PASSWORD":          true,
		"password_file":        false,
		"opsmop_ssh_username":  false,
	}
	for k, want := range cases {
		t.Run(k, func(t *testing.T) {
			if got := SecretKey(k); got != want {
				t.Errorf("SecretKey(%q) = %v; want %v", k, got, want)
			}
		})
	}
}

// fuzzKey turns arbitrary input into a valid variable name.
func fuzzKey(s string) string {
	b := []byte("k_")
	for i := 0; i < len(s) && i < 12; i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b = append(b, c)
		}
	}
	return string(b)
}

func FuzzParseHostVars(f *testing.F) {
	f.Add("opsmop_host=10.0.0.5 http_port=8081", "tier", "front", int64(5), true, 1.5)
	f.Add(`a="x y" b='z' c=\5 d=1.5e3 e=True`, "k", "8081", int64(-1), false, 0.0)
	f.Add(`x="unterminated`, "p", "it's", int64(0), true, -2.5)
	f.Add("a=b=c opsmop_ssh_password=12 \\\n", "db_password", "", int64(9223372036854775807), false, 1e300)
	f.Add("a='\xff' b=\"\\$\"", "x", "\xff\n\t\"", int64(7), true, 3.0)
	f.Fuzz(func(t *testing.T, s, key, sval string, ival int64, bval bool, fval float64) {
		// 1. Any input: no panic; a successful parse re-formats and
		//    re-parses to the same map.
		if m, err := ParseHostVars(s); err == nil {
			text, err := formatHostVars(m)
			if err != nil {
				t.Fatalf("formatHostVars(ParseHostVars(%q) = %#v): %v", s, m, err)
			}
			back, err := ParseHostVars(text)
			if err != nil {
				t.Fatalf("ParseHostVars(%q) (formatted from %q): %v", text, s, err)
			}
			if !reflect.DeepEqual(back, m) {
				t.Fatalf("round trip of %q via %q: got %#v; want %#v", s, text, back, m)
			}
		}
		// 2. Generated simple maps round-trip.
		m := map[string]any{fuzzKey(key): sval, "n": int(ival), "b": bval}
		if fval == fval && fval-fval == 0 { // finite
			m["f"] = fval
		}
		text, err := formatHostVars(m)
		if err != nil {
			t.Fatalf("formatHostVars(%#v): %v", m, err)
		}
		back, err := ParseHostVars(text)
		if err != nil {
			t.Fatalf("ParseHostVars(%q) (formatted from %#v): %v", text, m, err)
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("round trip of %#v via %q: got %#v", m, text, back)
		}
	})
}

// formatHostVars is the inverse of ParseHostVars, for its round-trip
// tests: it writes vars as a host variable string, keys sorted, quoting
// every string value that needs it (shell.Quote) and every string that
// would otherwise be read back as a number or bool, so
// ParseHostVars(formatHostVars(m)) equals m. Values must be strings,
// integers, finite floats or bools.
func formatHostVars(vars map[string]any) (string, error) {
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	words := make([]string, 0, len(keys))
	for _, k := range keys {
		if !validVarName(k) {
			return "", fmt.Errorf("host variables: %q is not a valid variable name", k)
		}
		var v string
		switch x := vars[k].(type) {
		case string:
			v = shell.Quote(x)
			if !SecretKey(k) {
				if _, isString := inferValue(x).(string); !isString && v == x {
					v = "'" + x + "'" // safe characters only, so no ' inside
				}
			}
		case bool:
			v = strconv.FormatBool(x)
		case int:
			v = strconv.Itoa(x)
		case int64:
			v = strconv.FormatInt(x, 10)
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return "", fmt.Errorf("host variables: %s: %v cannot be written", k, x)
			}
			v = strconv.FormatFloat(x, 'g', -1, 64)
			if !strings.ContainsAny(v, ".e") {
				v += ".0"
			}
		default:
			return "", fmt.Errorf("host variables: %s: values of type %T cannot be written in a host string", k, x)
		}
		if SecretKey(k) {
			if _, ok := vars[k].(string); !ok {
				return "", fmt.Errorf("host variables: %s: a password must be a string", k)
			}
		}
		words = append(words, k+"="+v)
	}
	return strings.Join(words, " "), nil
}
