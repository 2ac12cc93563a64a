package kind

import (
	"strings"
	"testing"
)

func TestOfAndDescribe(t *testing.T) {
	tests := []struct {
		name     string
		v        any
		of, desc string
	}{
		{"nil", nil, "null", "null"},
		{"string", "abc", "string", `a string "abc"`},
		{"long string", strings.Repeat("x", 50), "string", `a string "` + strings.Repeat("x", 40) + `..."`},
		{"bool", true, "boolean", "a boolean true"},
		{"int", 5, "integer", "an integer 5"},
		{"int64", int64(-7), "integer", "an integer -7"},
		{"uint64", uint64(9), "integer", "an integer 9"},
		{"float", 1.5, "number", "a number 1.5"},
		{"map", map[string]any{"a": 1}, "map", "a map"},
		{"other map", map[any]any{}, "map", "a map"},
		{"list", []any{1}, "list", "a list"},
		{"string list", []string{"a"}, "list", "a list"},
		{"struct", struct{}{}, "struct {}", "a struct {}"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Of(tt.v); got != tt.of {
				t.Errorf("Of(%#v): got %q; want %q", tt.v, got, tt.of)
			}
			if got := Describe(tt.v); got != tt.desc {
				t.Errorf("Describe(%#v): got %q; want %q", tt.v, got, tt.desc)
			}
		})
	}
}

func TestA(t *testing.T) {
	tests := []struct{ name, want string }{
		{Null, "null"},
		{String, "a string"},
		{Integer, "an integer"},
		{Number, "a number"},
		{Boolean, "a boolean"},
		{Map, "a map"},
		{List, "a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := A(tt.name); got != tt.want {
				t.Errorf("A(%q): got %q; want %q", tt.name, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc..."},
		{"héllo", 2, "hé..."},
	}
	for _, tt := range tests {
		t.Run(tt.s, func(t *testing.T) {
			if got := Truncate(tt.s, tt.n); got != tt.want {
				t.Errorf("Truncate(%q, %d): got %q; want %q", tt.s, tt.n, got, tt.want)
			}
		})
	}
}
