package engine

import (
	"errors"
	"fmt"
	"strings"

	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// Validate checks what policy loading cannot: every expression compiles,
// every inline template and template file parses, every host pattern is
// well formed. It contacts nothing and returns every problem found, each
// naming file:line and the key path.
func Validate(p *policy.Policy, reg policy.Registry, ev *Evaluator, checkPattern func(string) error) []error {
	var errs policy.ErrorList
	add := func(pos policy.Pos, path string, err error) {
		errs = append(errs, &policy.Error{Pos: pos, Path: path, Msg: err.Error()})
	}
	for i, r := range p.Roles {
		rp := fmt.Sprintf("roles[%d]", i)
		if checkPattern != nil {
			if err := checkPattern(r.Groups); err != nil {
				add(r.KeyPos("groups"), rp+".groups", err)
			}
			if err := checkPattern(r.Hosts); err != nil {
				add(r.KeyPos("hosts"), rp+".hosts", err)
			}
		}
		if r.When != "" {
			if _, err := ev.compileExpr(r.When); err != nil {
				add(r.KeyPos("when"), rp+".when", err)
			}
		}
		lists := []struct {
			name string
			list []*policy.Resource
		}{{"pre", r.Pre}, {"resources", r.Resources}, {"handlers", r.Handlers}, {"post", r.Post}}
		for _, l := range lists {
			for j, res := range l.list {
				path := res.Path
				if path == "" {
					path = fmt.Sprintf("%s.%s[%d]", rp, l.name, j)
				}
				validateResource(res, path, reg, ev, add)
			}
		}
	}
	return sortedErrors(errs)
}

// sortedErrors returns errs sorted by position, as plain errors (nil when
// there are none).
func sortedErrors(errs policy.ErrorList) []error {
	if len(errs) == 0 {
		return nil
	}
	errs.Sort()
	out := make([]error, len(errs))
	for i, e := range errs {
		out[i] = e
	}
	return out
}

func validateResource(res *policy.Resource, path string, reg policy.Registry, ev *Evaluator, add func(policy.Pos, string, error)) {
	exprKeys := map[string]bool{"when": true, "until": true, "loop": true}
	if t, ok := reg[res.Type]; ok {
		for _, k := range policy.DocKeys(t) {
			if k.Expr {
				exprKeys[k.Key] = true
			}
		}
	}
	if res.Raw == nil {
		return
	}
	for _, e := range res.Raw.Entries {
		kp := path + "." + e.Key
		if exprKeys[e.Key] {
			for _, n := range stringsOf(e.Value) {
				if e.Key == "loop" && e.Value.Kind == policy.List {
					continue
				}
				if _, err := ev.compileExpr(n.Value.(string)); err != nil {
					add(n.Pos, kp, err)
				}
			}
			continue
		}
		for _, n := range stringsOf(e.Value) {
			s := n.Value.(string)
			if !strings.Contains(s, "{{") {
				continue
			}
			if _, err := newTemplate(kp).Parse(s); err != nil {
				add(n.Pos, kp, fmt.Errorf("template: %v", cleanTemplateErr(err)))
			}
		}
	}
	// The spec's own rules (providers.Validator) and its local files
	// (providers.LocalFiles), each problem shown at its key when the
	// policy has it. A local file must be under the policy directory (or
	// absolute), a readable regular file, and a template must parse.
	atKey := func(key string, err error) {
		if key == "" {
			add(res.Pos, path, err)
			return
		}
		add(res.KeyPos(key), path+"."+key, err)
	}
	if v, ok := res.Spec.(providers.Validator); ok {
		var se *providers.SpecError
		if err := v.Validate(); errors.As(err, &se) {
			for _, p := range se.Problems {
				atKey(p.Key, p)
			}
		} else if err != nil {
			atKey("", err)
		}
	}
	for _, lf := range providers.LocalFiles(res.Spec) {
		full, err := LocalPath(ev.Dir, lf.Path)
		if err == nil {
			err = lf.Check(full)
		}
		if err == nil && lf.Template {
			err = ev.CheckFile(lf.Path)
		}
		if err != nil {
			atKey(lf.Key, err)
		}
	}
}

// templateKeys are the keys naming a local template file in resources of
// type typ (the spec's local:"template" struct tags).
func templateKeys(reg policy.Registry, typ string) []string {
	t, ok := reg[typ]
	if !ok || t.New == nil {
		return nil
	}
	return providers.TemplateKeys(t.New())
}

// stringsOf returns every string scalar in n.
func stringsOf(n *policy.Node) []*policy.Node {
	if n == nil {
		return nil
	}
	switch n.Kind {
	case policy.String:
		return []*policy.Node{n}
	case policy.List:
		var out []*policy.Node
		for _, it := range n.Items {
			out = append(out, stringsOf(it)...)
		}
		return out
	case policy.Map:
		var out []*policy.Node
		for _, e := range n.Entries {
			out = append(out, stringsOf(e.Value)...)
		}
		return out
	}
	return nil
}
