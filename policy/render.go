package policy

import (
	"fmt"
	"reflect"
	"strings"
)

// Render returns a copy of r with its templates expanded: every string in
// r.Raw that contains "{{" is passed through render, then the common
// fields and the Spec are decoded again from the result. Left alone are:
// the type key, the expression keys when, loop and until, spec keys
// tagged expr:"true" (and everything under them), and a handler's name.
// Map keys are never rendered. A rendered string is accepted for boolean
// and number keys when it parses as one ("{{ port }}" → 8080).
//
// When no string needs rendering, render is not called and the copy
// shares Spec, Raw and the slices and maps with r: treat both as
// read-only. Errors from render carry the string's position and key path
// and wrap render's error; a rendered value that does not fit its key
// gives an ErrorList. Render only reads r, so one resource may be rendered
// for many hosts concurrently.
func (r *Resource) Render(reg Registry, render func(s string) (string, error)) (*Resource, error) {
	if r.Raw == nil || r.Raw.Kind != Map {
		return nil, fmt.Errorf("%s: %s: resource has no source to render", r.Pos, r.Path)
	}
	t, ok := reg[r.Type]
	if !ok || t.New == nil {
		return nil, fmt.Errorf("%s: %s: unknown resource type %q", r.Pos, r.Path, r.Type)
	}
	specFields := fieldsOf(reflect.TypeOf(t.New()).Elem())
	handler := r.Name != ""
	rr := renderer{render: render}
	var out *Node
	for i, e := range r.Raw.Entries {
		f := findField(specFields, e.Key)
		var typ reflect.Type
		switch {
		case e.Key == "type", handler && e.Key == "name":
			continue
		case f != nil:
			if f.expr {
				continue
			}
			typ = f.typ
		case e.Key == "when" || e.Key == "loop" || e.Key == "until":
			continue
		}
		nv, err := rr.node(e.Value, typ, keyPath(r.Path, e.Key))
		if err != nil {
			return nil, err
		}
		if nv == e.Value {
			continue
		}
		if out == nil {
			out = &Node{Kind: Map, Pos: r.Raw.Pos, Entries: append([]Entry(nil), r.Raw.Entries...)}
		}
		out.Entries[i].Value = nv
	}
	if out == nil {
		c := *r
		return &c, nil
	}
	res, errs := decodeResource(reg, out, r.Path, handler)
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

type renderer struct {
	render func(string) (string, error)
}

// node renders the strings under n; typ is the Go type n decodes into
// (nil when unknown), whose expr-tagged struct fields are skipped. It
// returns n itself when nothing changed.
func (rr renderer) node(n *Node, typ reflect.Type, path string) (*Node, error) {
	for typ != nil && typ.Kind() == reflect.Pointer && typ != nodePtrType {
		typ = typ.Elem()
	}
	switch n.Kind {
	case String:
		s := n.Value.(string)
		if !strings.Contains(s, "{{") {
			return n, nil
		}
		out, err := rr.render(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", n.Pos, path, err)
		}
		return &Node{Kind: String, Value: out, Pos: n.Pos, rendered: true}, nil
	case Map:
		var fields []field
		if typ != nil && typ.Kind() == reflect.Struct && typ != durationType {
			fields = fieldsOf(typ)
		}
		var out *Node
		for i, e := range n.Entries {
			var et reflect.Type
			if fields != nil {
				if f := findField(fields, e.Key); f != nil {
					if f.expr {
						continue
					}
					et = f.typ
				}
			} else if typ != nil && typ.Kind() == reflect.Map {
				et = typ.Elem()
			}
			nv, err := rr.node(e.Value, et, keyPath(path, e.Key))
			if err != nil {
				return nil, err
			}
			if nv == e.Value {
				continue
			}
			if out == nil {
				c := *n
				c.Entries = append([]Entry(nil), n.Entries...)
				out = &c
			}
			out.Entries[i].Value = nv
		}
		if out == nil {
			return n, nil
		}
		return out, nil
	case List:
		var et reflect.Type
		if typ != nil && typ.Kind() == reflect.Slice {
			et = typ.Elem()
		}
		var out *Node
		for i, it := range n.Items {
			nv, err := rr.node(it, et, indexPath(path, i))
			if err != nil {
				return nil, err
			}
			if nv == it {
				continue
			}
			if out == nil {
				c := *n
				c.Items = append([]*Node(nil), n.Items...)
				out = &c
			}
			out.Items[i] = nv
		}
		if out == nil {
			return n, nil
		}
		return out, nil
	}
	return n, nil
}

// DefaultLabel names the resource for output: its Label when set, else
// type[identity] from the type's Identity key (a list joins with ","),
// e.g. file[/etc/motd]; just the type when there is no identity.
func (r *Resource) DefaultLabel(reg Registry) string {
	if r.Label != "" {
		return r.Label
	}
	t, ok := reg[r.Type]
	if !ok || t.Identity == "" || r.Spec == nil {
		return r.Type
	}
	v := reflect.ValueOf(r.Spec)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return r.Type
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return r.Type
	}
	f := findField(fieldsOf(v.Type()), t.Identity)
	if f == nil {
		return r.Type
	}
	id := identityString(v.FieldByIndex(f.index))
	if id == "" {
		return r.Type
	}
	return r.Type + "[" + id + "]"
}

func identityString(v reflect.Value) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = identityString(v.Index(i))
		}
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}
