package sshconfig

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestLexLine(t *testing.T) {
	tests := []struct {
		name, in string
		kw       string
		args     []string
		skip     bool
	}{
		{"spaces", "Host  a b", "host", []string{"a", "b"}, false},
		{"tab", "\tUser\tbob", "user", []string{"bob"}, false},
		{"equals", "Port=22", "port", []string{"22"}, false},
		{"equals spaced", "Port = 22", "port", []string{"22"}, false},
		{"equals after space", "Port =22", "port", []string{"22"}, false},
		{"two equals", "Port==22", "port", []string{"=22"}, false},
		{"keyword case", "HostNAME x", "hostname", []string{"x"}, false},
		{"double quotes", `IdentityFile "a b" c`, "identityfile", []string{"a b", "c"}, false},
		{"single quotes", `IdentityFile 'a "b"'`, "identityfile", []string{`a "b"`}, false},
		{"quote mid word", `User a"b c"d`, "user", []string{"ab cd"}, false},
		{"escaped space", `IdentityFile a\ b`, "identityfile", []string{"a b"}, false},
		{"escaped quote", `IdentityFile a\"b`, "identityfile", []string{`a"b`}, false},
		{"escaped backslash", `IdentityFile a\\b`, "identityfile", []string{`a\b`}, false},
		{"unknown escape kept", `IdentityFile a\zb`, "identityfile", []string{`a\zb`}, false},
		{"escaped space in quotes kept", `IdentityFile "a\ b"`, "identityfile", []string{`a\ b`}, false},
		{"comment word", "User bob # who", "user", []string{"bob"}, false},
		{"hash inside word", "User bo#b", "user", []string{"bo#b"}, false},
		{"quoted hash", `User "#b"`, "user", []string{"#b"}, false},
		{"crlf", "User bob\r", "user", []string{"bob"}, false},
		{"form feed at end", "User bob\f", "user", []string{"bob"}, false},
		{"comment line", "  # Host x", "", nil, true},
		{"blank", " \t ", "", nil, true},
		{"empty quotes", `User ""`, "user", []string{""}, false},
		{"quoted keyword", `"User" bob`, "user", []string{"bob"}, false},
		{"quote in keyword", `Us"er" bob`, "user", []string{"bob"}, false},
		{"unclosed keyword quote", `"User bob`, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, ok, err := lexLine(tt.in, Pos{File: "f", Line: 3})
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if ok == tt.skip {
				t.Fatalf("got ok=%v; want %v", ok, !tt.skip)
			}
			if l.keyword != tt.kw || !slices.Equal(l.args, tt.args) {
				t.Errorf("got %q %q; want %q %q", l.keyword, l.args, tt.kw, tt.args)
			}
		})
	}
}

func TestLexLineErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unterminated double", `User "bob`, "f:7: invalid quotes"},
		{"unterminated single", `User 'bob`, "f:7: invalid quotes"},
		{"no argument", "User", `f:7: no argument after keyword "user"`},
		{"only equals", "User =", `f:7: no argument after keyword "user"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := lexLine(tt.in, Pos{File: "f", Line: 7})
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v; want *Error", err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %q; want prefix %q", err, tt.want)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	e := &Error{Pos: Pos{File: "/x/config", Line: 4}, Msg: "boom"}
	if got, want := e.Error(), "/x/config:4: boom"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	e.Host = "web"
	if got, want := e.Error(), "host web: /x/config:4: boom"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestMatchPattern(t *testing.T) {
	tests := []struct {
		s, p string
		want bool
	}{
		{"abc", "abc", true}, {"abc", "a*", true}, {"abc", "*c", true},
		{"abc", "a?c", true}, {"abc", "a?", false}, {"", "*", true},
		{"abc", "ABC", false}, {"a.b.c", "*.*", true}, {"aaa", "a*a*a*a", false},
		{"abcbc", "*bc", true}, {"x", "", false}, {"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.s+"~"+tt.p, func(t *testing.T) {
			if got := matchPattern(tt.s, tt.p); got != tt.want {
				t.Errorf("got %v; want %v", got, tt.want)
			}
		})
	}
}

func TestMatchPatternList(t *testing.T) {
	tests := []struct {
		s, list string
		want    int
	}{
		{"web1", "web*,db*", 1}, {"web1", "db*", 0}, {"web1", "web*,!web1", -1},
		{"web1", "!db*", 0}, {"web1", "WEB*", 0}, {"x", strings.Repeat("x", 1100), 0},
	}
	for _, tt := range tests {
		t.Run(tt.s+"~"+tt.list[:min(len(tt.list), 20)], func(t *testing.T) {
			if got := matchPatternList(tt.s, tt.list, false); got != tt.want {
				t.Errorf("got %d; want %d", got, tt.want)
			}
		})
	}
	if got := matchHostname("WEB1", "Web*"); got != 1 {
		t.Errorf("matchHostname: got %d; want 1", got)
	}
}
