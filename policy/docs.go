package policy

import (
	"reflect"
)

// KeyDoc documents one key of a resource type, a role or the policy, as
// declared by the struct tags that also drive decoding.
type KeyDoc struct {
	Key string
	// Type says what the key takes: "string", "boolean", "integer",
	// "number", "duration", "list of strings", "string or list of
	// strings", "map", "list of maps", "any", or the field's `type` tag.
	Type     string
	Required bool
	// Default is the default tag as written ("" when there is none).
	Default string
	// Enum lists the allowed values, if restricted.
	Enum []string
	// Expr reports an expression key, which is never templated.
	Expr bool
	// ExprVars are the variables an expression key sees besides the
	// host's (the `exprvars:"rc,stdout"` tag), e.g. a command's result.
	ExprVars []string
	Doc      string
	// Keys documents the keys of a nested map (a struct field).
	Keys []KeyDoc
}

// DocKeys documents the type-specific keys of t, in declaration order; the
// keys every resource accepts (when, loop, notify, ...) are not among them.
func DocKeys(t ResourceType) []KeyDoc {
	if t.New == nil {
		return nil
	}
	return DocStruct(t.New())
}

// DocStruct documents the keys of the struct v (or *v) decodes.
func DocStruct(v any) []KeyDoc {
	t := reflect.TypeOf(v)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	return docFields(t, 0)
}

func docFields(t reflect.Type, depth int) []KeyDoc {
	var out []KeyDoc
	for _, f := range fieldsOf(t) {
		k := KeyDoc{
			Key:      f.key,
			Type:     docType(f.typ, &f),
			Required: f.required,
			Default:  f.def,
			Enum:     f.enum,
			Expr:     f.expr,
			ExprVars: f.exprVars,
			Doc:      f.doc,
		}
		if f.typeDoc != "" {
			k.Type = f.typeDoc
		}
		st := f.typ
		for st.Kind() == reflect.Pointer {
			st = st.Elem()
		}
		if st.Kind() == reflect.Struct && st != durationType && depth < 5 {
			k.Keys = docFields(st, depth+1)
		}
		out = append(out, k)
	}
	return out
}

func docType(t reflect.Type, f *field) string {
	switch {
	case t == durationType:
		return "duration"
	case t == nodePtrType:
		return "any"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return docType(t.Elem(), f)
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Slice:
		e := t.Elem()
		for e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		switch e.Kind() {
		case reflect.String:
			if f != nil && f.list1 {
				return "string or list of strings"
			}
			return "list of strings"
		case reflect.Struct, reflect.Map:
			return "list of maps"
		}
		return "list"
	case reflect.Map, reflect.Struct:
		return "map"
	}
	return "any"
}
