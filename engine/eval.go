package engine

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"
	"github.com/expr-lang/expr/vm/runtime"

	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/policy"
)

// compiled is one expression compiled once, with the top-level names it
// reads so that a missing variable can be named in the error.
type compiled struct {
	prog  *vm.Program
	names []string
}

// Evaluator compiles expressions and templates once per run and evaluates
// them against per-host scopes. It is safe for concurrent use.
type Evaluator struct {
	// Dir is the policy directory: template files resolve against it.
	Dir string
	// OnRead, when set, is called with the full path of every template
	// file the Evaluator reads (once per file).
	OnRead func(full string)

	mu    sync.Mutex
	exprs map[string]*compiled
	tmpls map[string]*template.Template
	files map[string]*template.Template
}

// NewEvaluator returns an Evaluator resolving template files against dir.
func NewEvaluator(dir string) *Evaluator {
	return &Evaluator{Dir: dir, exprs: map[string]*compiled{}, tmpls: map[string]*template.Template{}, files: map[string]*template.Template{}}
}

type identVisitor struct {
	names, declared map[string]bool
	lenient         map[*ast.IdentifierNode]bool
}

func (v *identVisitor) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.IdentifierNode:
		if !v.lenient[x] {
			v.names[x.Value] = true
		}
	case *ast.VariableDeclaratorNode:
		v.declared[x.Name] = true
	}
}

// strictMember is the function that every plain member access a.b (and
// a["b"]) of a compiled expression is rewritten into (see strictPatch): a
// key that a map does not have is an error naming it, not nil. Optional
// access (a?.b), a ?? default, "b" in a and get(a, "b") stay lenient: they
// are how a policy asks whether a key exists.
const strictMember = "opsmop_member"

// strictPatch rewrites member accesses into strictMember calls, and
// records the top-level names read leniently (x ?? d, x?.y), which may be
// missing.
type strictPatch struct {
	lenient map[*ast.IdentifierNode]bool
}

func (sp strictPatch) Visit(n *ast.Node) {
	switch x := (*n).(type) {
	case *ast.MemberNode:
		if x.Optional || x.Method {
			return
		}
		ast.Patch(n, &ast.CallNode{
			Callee:    &ast.IdentifierNode{Value: strictMember},
			Arguments: []ast.Node{x.Node, x.Property, &ast.StringNode{Value: x.Node.String()}},
		})
	case *ast.BinaryNode:
		if x.Operator == "??" {
			sp.relax(&x.Left)
		}
	case *ast.ChainNode:
		sp.relax(&x.Node)
	}
}

// relax undoes strictPatch along the left spine of n (a.b.c ?? d: any of
// a, a.b and a.b.c may be missing).
func (sp strictPatch) relax(n *ast.Node) {
	for {
		switch x := (*n).(type) {
		case *ast.IdentifierNode:
			sp.lenient[x] = true
			return
		case *ast.CallNode:
			id, ok := x.Callee.(*ast.IdentifierNode)
			if !ok || id.Value != strictMember {
				return
			}
			ast.Patch(n, &ast.MemberNode{Node: x.Arguments[0], Property: x.Arguments[1]})
		case *ast.MemberNode:
			n = &x.Node
		default:
			return
		}
	}
}

// member is strictMember: from[key], an error when from is a map without
// key. what is the source text of from, for the message.
func member(params ...any) (out any, err error) {
	from, key, what := params[0], params[1], params[2].(string)
	if v := reflect.ValueOf(from); v.Kind() == reflect.Map {
		k := reflect.ValueOf(key)
		if k.IsValid() && k.Type().AssignableTo(v.Type().Key()) && !v.MapIndex(k).IsValid() {
			return nil, &UndefinedError{Name: fmt.Sprintf("%s.%v", what, key), Keys: mapKeys(v)}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s: %v", what, r)
		}
	}()
	return runtime.Fetch(from, key), nil
}

func mapKeys(v reflect.Value) []string {
	var keys []string
	for _, k := range v.MapKeys() {
		keys = append(keys, fmt.Sprint(k.Interface()))
	}
	sort.Strings(keys)
	return keys
}

// UndefinedError is an expression's read of a variable or map key that
// does not exist.
type UndefinedError struct {
	// Name is what was read: "x" or "facts.os_famly".
	Name string
	// Keys are the keys the map did have (empty for a top-level name).
	Keys []string
}

func (e *UndefinedError) Error() string {
	msg := fmt.Sprintf("undefined variable %q", e.Name)
	if s := policy.Suggest(e.Name[strings.LastIndexByte(e.Name, '.')+1:], e.Keys); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", e.Name[:strings.LastIndexByte(e.Name, '.')+1]+s)
	}
	return msg
}

// compileExpr compiles an expression (cached): validate calls it to find
// syntax errors before any host is contacted.
func (e *Evaluator) compileExpr(src string) (*compiled, error) {
	e.mu.Lock()
	c, ok := e.exprs[src]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	sp := strictPatch{lenient: map[*ast.IdentifierNode]bool{}}
	prog, err := expr.Compile(src, expr.Patch(sp), expr.Function(strictMember, member))
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", src, oneLine(err.Error()))
	}
	v := &identVisitor{names: map[string]bool{}, declared: map[string]bool{}, lenient: sp.lenient}
	node := prog.Node()
	ast.Walk(&node, v)
	c = &compiled{prog: prog}
	for n := range v.names {
		if !v.declared[n] && n != strictMember && !isBuiltin(n) {
			c.names = append(c.names, n)
		}
	}
	sort.Strings(c.names)
	e.mu.Lock()
	e.exprs[src] = c
	e.mu.Unlock()
	return c, nil
}

// Eval evaluates src against scope. Reading a variable that scope does
// not hold, or a key that a map does not have, is an error naming it
// (*UndefinedError inside); a?.b, a ?? b, "b" in a and get(a, "b") are the
// ways to read what may be missing.
func (e *Evaluator) Eval(src string, scope map[string]any) (any, error) {
	c, err := e.compileExpr(src)
	if err != nil {
		return nil, err
	}
	for _, n := range c.names {
		if _, ok := scope[n]; !ok {
			return nil, fmt.Errorf("expression %q: %w", src, &UndefinedError{Name: n, Keys: scopeKeys(scope)})
		}
	}
	out, err := expr.Run(c.prog, scope)
	if err != nil {
		var ue *UndefinedError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("expression %q: %w", src, ue)
		}
		return nil, fmt.Errorf("expression %q: %v", src, oneLine(err.Error()))
	}
	return out, nil
}

func scopeKeys(scope map[string]any) []string {
	keys := make([]string, 0, len(scope))
	for k := range scope {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// EvalBool evaluates src and requires a boolean result.
func (e *Evaluator) EvalBool(src string, scope map[string]any) (bool, error) {
	v, err := e.Eval(src, scope)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("expression %q: want a boolean, got %T %v", src, v, v)
	}
	return b, nil
}

func isBuiltin(n string) bool {
	switch n {
	case "true", "false", "nil", "len", "all", "none", "any", "one", "filter", "map", "count", "contains",
		"upper", "lower", "trim", "split", "join", "keys", "values", "first", "last", "int", "float", "string",
		"abs", "max", "min", "sum", "now", "duration", "date", "toJSON", "fromJSON", "hasPrefix", "hasSuffix",
		"indexOf", "repeat", "replace", "sort", "sortBy", "groupBy", "reduce", "find", "findIndex", "type":
		return true
	}
	return false
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// templateFuncs are sprig's functions plus shquote, which makes any value
// one literal sh word ({{ .path | shquote }}): the way to put a variable
// into a shell command.
func templateFuncs() template.FuncMap {
	fm := sprig.TxtFuncMap()
	fm["shquote"] = func(v any) string {
		s, ok := v.(string)
		if !ok {
			s = fmt.Sprint(v)
		}
		return shell.Quote(s)
	}
	return fm
}

func newTemplate(name string) *template.Template {
	return template.New(name).Funcs(templateFuncs()).Option("missingkey=error")
}

// RenderString renders s as a Go text/template against scope. Strings
// without "{{" are returned unchanged without parsing.
func (e *Evaluator) RenderString(s string, scope map[string]any) (string, error) {
	if !strings.Contains(s, "{{") {
		return s, nil
	}
	e.mu.Lock()
	t, ok := e.tmpls[s]
	e.mu.Unlock()
	if !ok {
		var err error
		t, err = newTemplate("value").Parse(s)
		if err != nil {
			return "", fmt.Errorf("template %q: %v", s, err)
		}
		e.mu.Lock()
		e.tmpls[s] = t
		e.mu.Unlock()
	}
	var b bytes.Buffer
	if err := t.Execute(&b, scope); err != nil {
		return "", fmt.Errorf("template %q: %v", s, cleanTemplateErr(err))
	}
	return b.String(), nil
}

// LocalPath resolves a policy-relative local path. Relative paths may not
// escape the policy directory with ".."; absolute paths are taken as given.
func LocalPath(dir, p string) (string, error) {
	if filepath.IsAbs(p) {
		return filepath.Clean(p), nil
	}
	clean := filepath.Clean(p)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("local path %q escapes the policy directory %s: use an absolute path to read files outside it", p, dir)
	}
	return filepath.Join(dir, clean), nil
}

// parseFile parses (and caches) a template file relative to Dir.
func (e *Evaluator) parseFile(p string) (*template.Template, error) {
	full, err := LocalPath(e.Dir, p)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	t, ok := e.files[full]
	e.mu.Unlock()
	if ok {
		return t, nil
	}
	if e.OnRead != nil {
		e.OnRead(full)
	}
	b, err := os.ReadFile(full)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", p, err)
	}
	t, err = newTemplate(p).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("template %v", cleanTemplateErr(err))
	}
	e.mu.Lock()
	e.files[full] = t
	e.mu.Unlock()
	return t, nil
}

// CheckFile parses a template file without rendering it (validate).
func (e *Evaluator) CheckFile(p string) error {
	_, err := e.parseFile(p)
	return err
}

// RenderFile renders the template file p (relative to Dir) against scope.
// Errors name the file and line: "template templates/app.conf.tmpl:3: ...".
func (e *Evaluator) RenderFile(p string, scope map[string]any) ([]byte, error) {
	t, err := e.parseFile(p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := t.Execute(&b, scope); err != nil {
		return nil, fmt.Errorf("template %v", cleanTemplateErr(err))
	}
	return b.Bytes(), nil
}

// cleanTemplateErr strips text/template's "template: " prefix so messages
// read "app.conf.tmpl:3:10: executing ... map has no entry for key \"x\"".
func cleanTemplateErr(err error) string {
	return strings.TrimPrefix(err.Error(), "template: ")
}
