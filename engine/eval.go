package engine

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/vm"

	"github.com/opsmop/opsmop/internal/shell"
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

	mu    sync.Mutex
	exprs map[string]*compiled
	tmpls map[string]*template.Template
	files map[string]*template.Template
}

// NewEvaluator returns an Evaluator resolving template files against dir.
func NewEvaluator(dir string) *Evaluator {
	return &Evaluator{Dir: dir, exprs: map[string]*compiled{}, tmpls: map[string]*template.Template{}, files: map[string]*template.Template{}}
}

type identVisitor struct{ names map[string]bool }

func (v *identVisitor) Visit(n *ast.Node) {
	if id, ok := (*n).(*ast.IdentifierNode); ok {
		v.names[id.Value] = true
	}
}

// CompileExpr compiles an expression (cached). It is what validate calls.
func (e *Evaluator) CompileExpr(src string) (*compiled, error) {
	e.mu.Lock()
	c, ok := e.exprs[src]
	e.mu.Unlock()
	if ok {
		return c, nil
	}
	prog, err := expr.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", src, oneLine(err.Error()))
	}
	v := &identVisitor{names: map[string]bool{}}
	node := prog.Node()
	ast.Walk(&node, v)
	c = &compiled{prog: prog}
	for n := range v.names {
		c.names = append(c.names, n)
	}
	sort.Strings(c.names)
	e.mu.Lock()
	e.exprs[src] = c
	e.mu.Unlock()
	return c, nil
}

// Eval evaluates src against scope.
func (e *Evaluator) Eval(src string, scope map[string]any) (any, error) {
	c, err := e.CompileExpr(src)
	if err != nil {
		return nil, err
	}
	out, err := expr.Run(c.prog, scope)
	if err != nil || out == nil {
		for _, n := range c.names {
			if _, ok := scope[n]; !ok && !isBuiltin(n) {
				return nil, fmt.Errorf("expression %q: undefined variable %q", src, n)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("expression %q: %v", src, oneLine(err.Error()))
	}
	return out, nil
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
