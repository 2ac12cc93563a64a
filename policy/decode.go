package policy

import (
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Decode decodes n strictly into dst, a non-nil pointer, and returns every
// problem found (nil when there is none); path is the key path of n
// ("roles[0].resources[2]"), used in the errors.
//
// Structs are decoded from maps through their `opsmop:"key"` tags (fields
// without one are ignored; untagged embedded structs are flattened). Tag
// options: `required:"true"` (the key must be set), `default:"..."` (value
// used when the key is absent, written as a string: "true", "10s",
// "present"), `enum:"a|b|c"` (allowed values of a string or []string),
// `list1:"true"` (a []string also accepts a single string), `expr:"true"`
// (an expression: never templated, see Resource.Render), `secret:"true"`
// (never echoed in errors; keys containing "password" or "passphrase" are
// treated so too), `doc:"..."` and `type:"..."` (documentation, see
// DocKeys).
//
// Supported field types: string, bool, the int and float kinds,
// time.Duration (from strings like "10s"), pointers to any supported type
// (nil when the key is absent), nested structs, slices and string-keyed
// maps of supported types, any (plain values as Node.Interface gives them)
// and *Node (the node itself). A null value counts as absent. Unknown keys
// are errors, with a suggestion when a known key is close.
func Decode(n *Node, path string, dst any) ErrorList {
	d := decoder{}
	v := reflect.ValueOf(dst)
	if !v.IsValid() || v.Kind() != reflect.Pointer || v.IsNil() {
		pos := Pos{}
		if n != nil {
			pos = n.Pos
		}
		d.errs.add(pos, path, "internal error: Decode needs a non-nil pointer, got %T", dst)
		return d.errs
	}
	d.value(n, path, v.Elem(), nil)
	d.errs.Sort()
	return d.errs
}

var (
	nodePtrType  = reflect.TypeFor[*Node]()
	durationType = reflect.TypeFor[time.Duration]()
)

// field is one decodable struct field and its tag options.
type field struct {
	key      string
	index    []int
	typ      reflect.Type
	required bool
	def      string
	hasDef   bool
	doc      string
	typeDoc  string
	expr     bool
	exprVars []string // expr keys: variables they see besides the host's
	list1    bool
	secret   bool
	enum     []string
}

// fieldsOf lists the keys of struct type t in declaration order.
func fieldsOf(t reflect.Type) []field {
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		key, tagged := sf.Tag.Lookup("opsmop")
		if !tagged && sf.Anonymous && sf.Type.Kind() == reflect.Struct {
			for _, f := range fieldsOf(sf.Type) {
				f.index = append([]int{i}, f.index...)
				out = append(out, f)
			}
			continue
		}
		if !tagged || key == "-" || !sf.IsExported() {
			continue
		}
		f := field{
			key:      key,
			index:    []int{i},
			typ:      sf.Type,
			required: sf.Tag.Get("required") == "true",
			doc:      sf.Tag.Get("doc"),
			typeDoc:  sf.Tag.Get("type"),
			expr:     sf.Tag.Get("expr") == "true",
			exprVars: splitTag(sf.Tag.Get("exprvars")),
			list1:    sf.Tag.Get("list1") == "true",
			secret:   sf.Tag.Get("secret") == "true" || isSecretKey(key),
		}
		f.def, f.hasDef = sf.Tag.Lookup("default")
		if e := sf.Tag.Get("enum"); e != "" {
			f.enum = strings.Split(e, "|")
		}
		out = append(out, f)
	}
	return out
}

func isSecretKey(key string) bool {
	k := strings.ToLower(key)
	return strings.Contains(k, "password") || strings.Contains(k, "passphrase")
}

func findField(fields []field, key string) *field {
	for i := range fields {
		if fields[i].key == key {
			return &fields[i]
		}
	}
	return nil
}

func fieldKeys(fields []field) []string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return keys
}

type decoder struct {
	errs ErrorList
	// templates defers the checks of strings holding "{{" (not yet
	// rendered, outside expr keys): they may stand for booleans, numbers,
	// durations or enum values, checked when rendered. Such a key keeps
	// its zero value (or the string, for string keys) until then.
	templates bool
}

// pending reports whether n is a template whose checks are deferred.
func (d *decoder) pending(n *Node, f *field) bool {
	return d.templates && n.Kind == String && !n.rendered && (f == nil || !f.expr) &&
		strings.Contains(n.Value.(string), "{{")
}

// value decodes n into v; f is the struct field being decoded (nil at the
// top or inside lists and maps where no tag applies, except that list
// elements inherit the field's enum).
func (d *decoder) value(n *Node, path string, v reflect.Value, f *field) {
	if n == nil || n.Kind == Null {
		return
	}
	t := v.Type()
	pending := d.pending(n, f)
	if pending {
		base := t
		for base.Kind() == reflect.Pointer {
			base = base.Elem()
		}
		switch base.Kind() {
		case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Float32, reflect.Float64:
			return // includes time.Duration
		}
	}
	switch t {
	case nodePtrType:
		v.Set(reflect.ValueOf(n))
		return
	case durationType:
		d.duration(n, path, v, f)
		return
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			nv := reflect.New(t.Elem())
			d.value(n, path, nv.Elem(), f)
			v.Set(nv)
			return
		}
		d.value(n, path, v.Elem(), f)
	case reflect.Struct:
		d.structure(n, path, v, nil)
	case reflect.String:
		if n.Kind != String {
			d.wrongType(n, path, v, f)
			return
		}
		s := n.Value.(string)
		if f != nil && len(f.enum) > 0 && !contains(f.enum, s) && !pending {
			d.badEnum(n, path, s, f)
			return
		}
		v.SetString(s)
	case reflect.Bool:
		switch {
		case n.Kind == Bool:
			v.SetBool(n.Value.(bool))
		case n.rendered:
			b, err := strconv.ParseBool(strings.TrimSpace(n.Value.(string)))
			if err != nil {
				d.wrongType(n, path, v, f)
				return
			}
			v.SetBool(b)
		default:
			d.wrongType(n, path, v, f)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		switch {
		case n.Kind == Int:
			i = n.Value.(int64)
		case n.rendered:
			var err error
			if i, err = strconv.ParseInt(strings.TrimSpace(n.Value.(string)), 10, 64); err != nil {
				d.wrongType(n, path, v, f)
				return
			}
		default:
			d.wrongType(n, path, v, f)
			return
		}
		if v.OverflowInt(i) {
			d.errs.add(n.Pos, path, "%s is out of range for this key", n.describe(f != nil && f.secret))
			return
		}
		v.SetInt(i)
	case reflect.Float32, reflect.Float64:
		var x float64
		switch {
		case n.Kind == Float:
			x = n.Value.(float64)
		case n.Kind == Int:
			x = float64(n.Value.(int64))
		case n.rendered:
			var err error
			if x, err = strconv.ParseFloat(strings.TrimSpace(n.Value.(string)), 64); err != nil {
				d.wrongType(n, path, v, f)
				return
			}
		default:
			d.wrongType(n, path, v, f)
			return
		}
		if !math.IsInf(x, 0) && !math.IsNaN(x) && v.OverflowFloat(x) {
			d.errs.add(n.Pos, path, "%s is out of range for this key", n.describe(f != nil && f.secret))
			return
		}
		v.SetFloat(x)
	case reflect.Slice:
		d.slice(n, path, v, f)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			d.errs.add(n.Pos, path, "internal error: cannot decode into %s", t)
			return
		}
		if n.Kind != Map {
			d.wrongType(n, path, v, f)
			return
		}
		m := reflect.MakeMapWithSize(t, len(n.Entries))
		for _, e := range n.Entries {
			ev := reflect.New(t.Elem()).Elem()
			if e.Value.Kind != Null || t.Elem().Kind() == reflect.Interface {
				d.value(e.Value, keyPath(path, e.Key), ev, nil)
			}
			m.SetMapIndex(reflect.ValueOf(e.Key).Convert(t.Key()), ev)
		}
		v.Set(m)
	case reflect.Interface:
		if t.NumMethod() != 0 {
			d.errs.add(n.Pos, path, "internal error: cannot decode into %s", t)
			return
		}
		v.Set(reflect.ValueOf(n.Interface()))
	default:
		d.errs.add(n.Pos, path, "internal error: cannot decode into %s", t)
	}
}

func (d *decoder) slice(n *Node, path string, v reflect.Value, f *field) {
	t := v.Type()
	var items []*Node
	switch {
	case n.Kind == List:
		items = n.Items
	case n.Kind == String && f != nil && f.list1:
		items = []*Node{n}
	default:
		d.wrongType(n, path, v, f)
		return
	}
	s := reflect.MakeSlice(t, len(items), len(items))
	var elemField *field
	if f != nil && len(f.enum) > 0 {
		elemField = &field{key: f.key, enum: f.enum, secret: f.secret}
	}
	for i, it := range items {
		p := indexPath(path, i)
		if n.Kind != List {
			p = path
		}
		if it.Kind == Null && t.Elem().Kind() != reflect.Interface && t.Elem().Kind() != reflect.Pointer {
			d.errs.add(it.Pos, p, "want %s, got null", wantName(t.Elem(), nil))
			continue
		}
		d.value(it, p, s.Index(i), elemField)
	}
	v.Set(s)
}

func (d *decoder) duration(n *Node, path string, v reflect.Value, f *field) {
	if n.Kind != String {
		d.wrongType(n, path, v, f)
		return
	}
	s := strings.TrimSpace(n.Value.(string))
	dur, err := time.ParseDuration(s)
	if err != nil {
		d.errs.add(n.Pos, path, "want a duration like \"10s\" or \"1m30s\", got %s", n.describe(f != nil && f.secret))
		return
	}
	if dur < 0 {
		d.errs.add(n.Pos, path, "duration %s is negative", s)
		return
	}
	v.SetInt(int64(dur))
}

// structure decodes a map into struct v. extra names further keys that are
// valid beside the struct's (handled by the caller), offered as
// suggestions for unknown keys.
func (d *decoder) structure(n *Node, path string, v reflect.Value, extra []string) {
	if n.Kind != Map {
		d.wrongType(n, path, v, nil)
		return
	}
	fields := fieldsOf(v.Type())
	set := make(map[string]bool, len(n.Entries))
	for _, e := range n.Entries {
		f := findField(fields, e.Key)
		if f == nil {
			d.unknownKey(e, path, append(fieldKeys(fields), extra...))
			continue
		}
		if e.Value.Kind != Null {
			set[f.key] = true
		}
		d.value(e.Value, keyPath(path, e.Key), v.FieldByIndex(f.index), f)
	}
	for i := range fields {
		f := &fields[i]
		if set[f.key] {
			continue
		}
		switch {
		case f.required:
			d.errs.add(n.Pos, path, "missing required key %q", f.key)
		case f.hasDef:
			d.setDefault(n.Pos, path, v.FieldByIndex(f.index), f)
		}
	}
}

// setDefault decodes the default tag's string as if the user had written
// it (with the lenient conversions a templated string gets).
func (d *decoder) setDefault(pos Pos, path string, v reflect.Value, f *field) {
	var sub decoder
	sub.value(&Node{Kind: String, Value: f.def, Pos: pos, rendered: true}, keyPath(path, f.key), v, f)
	if len(sub.errs) > 0 {
		d.errs.add(pos, path, "internal error: bad default %q for key %q: %s", f.def, f.key, sub.errs[0].Msg)
	}
}

func (d *decoder) unknownKey(e Entry, path string, known []string) {
	msg := "unknown key " + strconv.Quote(e.Key)
	if len(d.errs) > 100 {
		// Pathological input: keep the cost of each message low.
		d.errs = append(d.errs, &Error{Pos: e.KeyPos, Path: path, Msg: msg})
		return
	}
	if s := suggest(e.Key, known); s != "" {
		msg += " (did you mean " + strconv.Quote(s) + "?)"
	} else if len(known) > 0 {
		sorted := append([]string(nil), known...)
		sort.Strings(sorted)
		msg += "; valid keys: " + strings.Join(sorted, ", ")
	}
	d.errs = append(d.errs, &Error{Pos: e.KeyPos, Path: path, Msg: msg})
}

func (d *decoder) badEnum(n *Node, path, got string, f *field) {
	quoted := make([]string, len(f.enum))
	for i, e := range f.enum {
		quoted[i] = strconv.Quote(e)
	}
	msg := "invalid value " + strconv.Quote(got) + ": want one of " + strings.Join(quoted, ", ")
	if s := suggest(got, f.enum); s != "" {
		msg += " (did you mean " + strconv.Quote(s) + "?)"
	}
	d.errs = append(d.errs, &Error{Pos: n.Pos, Path: path, Msg: msg})
}

func (d *decoder) wrongType(n *Node, path string, v reflect.Value, f *field) {
	hide := f != nil && f.secret
	want := wantName(v.Type(), f)
	msg := "want " + want + ", got " + n.describe(hide)
	if n.rendered {
		msg += " (after templating)"
	} else {
		msg += typeHint(n, v.Type(), hide)
	}
	d.errs = append(d.errs, &Error{Pos: n.Pos, Path: path, Msg: msg})
}

// typeHint suggests how to write the value the key wants.
func typeHint(n *Node, t reflect.Type, hide bool) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	k := t.Kind()
	isString := k == reflect.String || (k == reflect.Slice && t.Elem().Kind() == reflect.String)
	switch {
	case t == durationType && n.Kind == Int && !hide:
		return " (write \"" + n.scalarText() + "s\" for seconds)"
	case isString && (n.Kind == Int || n.Kind == Float || n.Kind == Bool):
		if hide {
			return " (quote it)"
		}
		text := n.scalarText()
		if n.Kind == Int && (strings.HasPrefix(text, "0o") || strings.HasPrefix(text, "0O")) {
			// An octal number given to a string key is a file mode:
			// quoted, it is written with a plain leading zero.
			text = "0" + text[2:]
		}
		return " (quote it: \"" + text + "\")"
	case k == reflect.Bool && n.Kind == String:
		return " (write true or false without quotes)"
	case (k >= reflect.Int && k <= reflect.Int64 || k == reflect.Float32 || k == reflect.Float64) && n.Kind == String:
		if _, err := strconv.ParseFloat(strings.TrimSpace(n.Value.(string)), 64); err == nil {
			return " (remove the quotes)"
		}
	}
	return ""
}

// wantName says what a key of type t takes, for messages and docs.
func wantName(t reflect.Type, f *field) string {
	if t == durationType {
		return "a duration like \"10s\""
	}
	if t == nodePtrType {
		return "any value"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return wantName(t.Elem(), f)
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean (true or false)"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			if f != nil && f.list1 {
				return "a string or a list of strings"
			}
			return "a list of strings"
		}
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a map"
	}
	return "any value"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// suggest returns the candidate closest to s when it is close enough to be
// a likely typo, or "".
func suggest(s string, candidates []string) string {
	limit := 1
	switch {
	case len(s) > 8:
		limit = 3
	case len(s) > 4:
		limit = 2
	}
	best, bestD := "", limit+1
	ls := strings.ToLower(s)
	for _, c := range candidates {
		if c == s || abs(len(c)-len(s)) > limit {
			continue
		}
		if d := editDistance(ls, strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func abs(i int) int {
	if i < 0 {
		return -i
	}
	return i
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and transpositions of adjacent runes cost 1.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		if a == b {
			return 0
		}
		return 1 << 20
	}
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// splitTag splits a comma-separated struct tag value ("" has no items).
func splitTag(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
