package engine

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"text/template/parse"

	"github.com/expr-lang/expr/ast"

	"github.com/opsmop/opsmop/policy"
)

// FactNames are the keys of Facts, the fixed schema of facts.*.
var factNames = []string{"arch", "cpus", "distro", "distro_version", "fqdn", "hostname", "init_system", "kernel", "memory_mb", "os_family", "pkg_manager", "user"}

// resultNames are the variables until sees besides the host's scope.
var resultNames = []string{"rc", "stdout", "stderr", "stdout_lines", "stderr_lines", "changed", "failed"}

// ValidateNames finds, without contacting any host, the names that the
// policy's expressions and templates read but that nothing defines:
// facts.X where X is not a fact (always checked: the facts have a fixed
// schema), and top-level variables defined nowhere — not in the policy's,
// a role's or a resource's vars, not registered by any resource, not a
// namespace (facts, host, item in a loop, rc/stdout/... where a command's
// result is in scope) and not in outside. outside holds the names the
// inventory (any host or group) and -e define; nil means they are not
// known (validate without an inventory), and then top-level names are not
// checked. A name read through a lenient form (a?.b, a ?? b, "b" in a,
// get(a, "b")) is never reported. Each error names file:line and the key.
func ValidateNames(p *policy.Policy, reg policy.Registry, ev *Evaluator, outside map[string]bool) []error {
	var errs policy.ErrorList
	registered := map[string]bool{}
	for _, r := range p.Roles {
		for _, l := range [][]*policy.Resource{r.Pre, r.Resources, r.Handlers, r.Post} {
			for _, res := range l {
				if res.Register != "" {
					registered[res.Register] = true
				}
			}
		}
	}
	for i, r := range p.Roles {
		nc := &nameCheck{ev: ev, reg: reg, outside: outside, errs: &errs}
		nc.known = map[string]bool{"facts": true, "host": true}
		for _, layer := range []map[string]any{p.Vars, r.Vars} {
			for k := range layer {
				nc.known[k] = true
			}
		}
		for k := range registered {
			nc.known[k] = true
		}
		if r.When != "" {
			nc.expr(r.KeyPos("when"), fmt.Sprintf("roles[%d].when", i), r.When, nil)
		}
		for _, l := range [][]*policy.Resource{r.Pre, r.Resources, r.Handlers, r.Post} {
			for _, res := range l {
				nc.resource(res)
			}
		}
	}
	return sortedErrors(errs)
}

type nameCheck struct {
	ev      *Evaluator
	reg     policy.Registry
	outside map[string]bool
	known   map[string]bool // the role's names
	errs    *policy.ErrorList
}

func (nc *nameCheck) add(pos policy.Pos, path, msg string) {
	*nc.errs = append(*nc.errs, &policy.Error{Pos: pos, Path: path, Msg: msg})
}

// defined reports whether a top-level name is defined, extra being the
// names only this key sees.
func (nc *nameCheck) defined(name string, extra []string) bool {
	return nc.known[name] || nc.outside == nil || nc.outside[name] || isBuiltin(name) || contains(extra, name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func (nc *nameCheck) undefined(pos policy.Pos, path, src, name string, extra []string) {
	cands := append(append([]string(nil), extra...), "facts", "host")
	for k := range nc.known {
		cands = append(cands, k)
	}
	for k := range nc.outside {
		cands = append(cands, k)
	}
	msg := fmt.Sprintf("%q reads the variable %q, which nothing defines (not the policy's, role's or resource's vars, a register, the inventory or -e)", src, name)
	if s := policy.Suggest(name, cands); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	nc.add(pos, path, msg)
}

func (nc *nameCheck) badFact(pos policy.Pos, path, src, key string) {
	msg := fmt.Sprintf("%q reads facts.%s, which is not a fact (the facts are %s)", src, key, strings.Join(factNames, ", "))
	if s := policy.Suggest(key, factNames); s != "" {
		msg += fmt.Sprintf("; did you mean facts.%s?", s)
	}
	nc.add(pos, path, msg)
}

// expr checks one expression; extra are names only it sees.
func (nc *nameCheck) expr(pos policy.Pos, path, src string, extra []string) {
	c, err := nc.ev.compileExpr(src)
	if err != nil {
		return // Validate reports it
	}
	for _, n := range c.names {
		if !nc.defined(n, extra) {
			nc.undefined(pos, path, src, n, extra)
		}
	}
	node := c.prog.Node()
	ast.Walk(&node, factVisitor(func(key string) { nc.badFact(pos, path, src, key) }))
}

// factVisitor calls bad for every strict read facts.KEY of an unknown key.
type factVisitor func(key string)

func (f factVisitor) Visit(n *ast.Node) {
	call, ok := (*n).(*ast.CallNode)
	if !ok {
		return
	}
	if id, ok := call.Callee.(*ast.IdentifierNode); !ok || id.Value != strictMember {
		return
	}
	obj, ok := call.Arguments[0].(*ast.IdentifierNode)
	if !ok || obj.Value != "facts" {
		return
	}
	if key, ok := call.Arguments[1].(*ast.StringNode); ok && !contains(factNames, key.Value) {
		f(key.Value)
	}
}

// resource checks every expression and template of res.
func (nc *nameCheck) resource(res *policy.Resource) {
	if res.Raw == nil {
		return
	}
	var local []string
	for k := range res.Vars {
		local = append(local, k)
	}
	if res.Loop != nil {
		local = append(local, "item")
	}
	// Expression keys, with the variables each sees besides the scope:
	// when and until are common keys; the type's own come from its spec's
	// expr and exprvars tags.
	exprs := map[string][]string{"when": nil, "until": resultNames}
	if t, ok := nc.reg[res.Type]; ok {
		for _, k := range policy.DocKeys(t) {
			if k.Expr {
				exprs[k.Key] = k.ExprVars
			}
		}
	}
	for _, e := range res.Raw.Entries {
		kp := res.Path + "." + e.Key
		if e.Key == "loop" {
			if e.Value.Kind == policy.String {
				nc.expr(e.Value.Pos, kp, e.Value.Value.(string), local[:len(res.Vars)])
				continue
			}
		} else if vars, ok := exprs[e.Key]; ok {
			for _, n := range stringsOf(e.Value) {
				nc.expr(n.Pos, kp, n.Value.(string), append(append([]string(nil), local...), vars...))
			}
			continue
		}
		for _, n := range stringsOf(e.Value) {
			if s := n.Value.(string); strings.Contains(s, "{{") {
				nc.template(n.Pos, kp, s, local)
			}
		}
	}
	for _, key := range templateKeys(nc.reg, res.Type) {
		if n := res.Raw.Get(key); n != nil && n.Kind == policy.String {
			if s := n.Value.(string); !strings.Contains(s, "{{") {
				nc.templateFile(res.Path+"."+key, s, local)
			}
		}
	}
}

// template checks an inline template string.
func (nc *nameCheck) template(pos policy.Pos, path, src string, extra []string) {
	t, err := newTemplate(path).Parse(src)
	if err != nil || t.Tree == nil {
		return // Validate reports it
	}
	nc.tree(func(parse.Node) policy.Pos { return pos }, path, src, t.Tree.Root, extra)
}

// templateFile checks a template file (relative to the policy directory);
// each error names the file and the line of the read.
func (nc *nameCheck) templateFile(path, file string, extra []string) {
	t, err := nc.ev.parseFile(file)
	if err != nil || t.Tree == nil {
		return // Validate reports it
	}
	full, err := LocalPath(nc.ev.Dir, file)
	if err != nil {
		return
	}
	text, err := os.ReadFile(full)
	if err != nil {
		return
	}
	at := func(n parse.Node) policy.Pos {
		off := min(int(n.Position()), len(text))
		return policy.Pos{File: file, Line: 1 + bytes.Count(text[:off], []byte("\n"))}
	}
	nc.tree(at, path, "template "+file, t.Tree.Root, extra)
}

// tree walks a template's nodes where dot is the scope (outside range and
// with) and $ everywhere, checking .name and .facts.name reads; at gives a
// node's position, what names the template in messages.
func (nc *nameCheck) tree(at func(parse.Node) policy.Pos, path, what string, root parse.Node, extra []string) {
	src := what
	chain := func(n parse.Node, idents []string) {
		if len(idents) == 0 {
			return
		}
		if !nc.defined(idents[0], extra) {
			nc.undefined(at(n), path, src, idents[0], extra)
		}
		if idents[0] == "facts" && len(idents) > 1 && !contains(factNames, idents[1]) {
			nc.badFact(at(n), path, src, idents[1])
		}
	}
	var pipe func(p *parse.PipeNode, rootDot bool)
	var walk func(n parse.Node, rootDot bool)
	pipe = func(p *parse.PipeNode, rootDot bool) {
		if p == nil {
			return
		}
		for _, c := range p.Cmds {
			for _, a := range c.Args {
				switch x := a.(type) {
				case *parse.FieldNode:
					if rootDot {
						chain(x, x.Ident)
					}
				case *parse.VariableNode:
					if len(x.Ident) > 1 && x.Ident[0] == "$" {
						chain(x, x.Ident[1:])
					}
				case *parse.PipeNode:
					pipe(x, rootDot)
				}
			}
		}
	}
	walk = func(n parse.Node, rootDot bool) {
		switch x := n.(type) {
		case *parse.ListNode:
			if x == nil {
				return
			}
			for _, c := range x.Nodes {
				walk(c, rootDot)
			}
		case *parse.ActionNode:
			pipe(x.Pipe, rootDot)
		case *parse.IfNode:
			pipe(x.Pipe, rootDot)
			walk(x.List, rootDot)
			walk(x.ElseList, rootDot)
		case *parse.RangeNode:
			pipe(x.Pipe, rootDot)
			walk(x.List, false)
			walk(x.ElseList, rootDot)
		case *parse.WithNode:
			pipe(x.Pipe, rootDot)
			walk(x.List, false)
			walk(x.ElseList, rootDot)
		}
	}
	walk(root, true)
}
