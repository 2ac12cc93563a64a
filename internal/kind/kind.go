// Package kind names the kinds of configuration values in user messages.
// Every file opsmop reads (policy, inventory, defaults file) is described
// with the same words: null, string, integer, number, boolean, map and
// list.
package kind

import (
	"fmt"
	"reflect"
	"strconv"
)

// The kind names, as messages spell them.
const (
	Null    = "null"
	String  = "string"
	Integer = "integer"
	Number  = "number"
	Boolean = "boolean"
	Map     = "map"
	List    = "list"
)

// Of names the kind of v, a value as the decoders produce it: nil is
// Null, a string String, a bool Boolean, any integer type Integer, a
// float Number, any map Map and any slice or array List. A value of
// another type is named by its Go type.
func Of(v any) string {
	switch v.(type) {
	case nil:
		return Null
	case string:
		return String
	case bool:
		return Boolean
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return Integer
	case float32, float64:
		return Number
	}
	switch reflect.TypeOf(v).Kind() {
	case reflect.Map:
		return Map
	case reflect.Slice, reflect.Array:
		return List
	}
	return fmt.Sprintf("%T", v)
}

// A returns name with its indefinite article ("a string", "an integer");
// Null takes none ("null").
func A(name string) string {
	switch {
	case name == Null:
		return name
	case name != "" && isVowel(name[0]):
		return "an " + name
	}
	return "a " + name
}

func isVowel(c byte) bool {
	switch c {
	case 'a', 'e', 'i', 'o', 'u':
		return true
	}
	return false
}

// MaxShown is how many characters of a string Describe shows; longer
// strings are cut there and end in "...".
const MaxShown = 40

// Describe says what v is, for messages: `a string "abc"` (quoted, cut
// at MaxShown characters), `an integer 5`, `a number 1.5`, `a boolean
// true`, `a map`, `a list`, `null`. Never use it on a secret: the value is
// shown; A(Of(v)) names the kind alone.
func Describe(v any) string {
	name := Of(v)
	switch x := v.(type) {
	case nil:
		return Null
	case string:
		return A(name) + " " + strconv.Quote(Truncate(x, MaxShown))
	case bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return A(name) + " " + fmt.Sprint(x)
	case float64:
		return A(name) + " " + strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return A(name) + " " + strconv.FormatFloat(float64(x), 'g', -1, 32)
	}
	return A(name)
}

// Truncate cuts s to n characters (runes), marking a cut with "...".
func Truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "..."
}
