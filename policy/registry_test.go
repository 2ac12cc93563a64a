package policy

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The test registry: small stand-ins for the real providers.

type shellSpec struct {
	Cmd         string `opsmop:"cmd" required:"true" doc:"command run with sh"`
	Creates     string `opsmop:"creates" doc:"skip when this path exists"`
	Unless      string `opsmop:"unless" doc:"skip when this command succeeds"`
	ChangedWhen string `opsmop:"changed_when" expr:"true" doc:"expression deciding whether the run changed something"`
}

type directorySpec struct {
	Path    string `opsmop:"path" required:"true" doc:"directory path"`
	Mode    string `opsmop:"mode" doc:"octal mode"`
	Owner   string `opsmop:"owner"`
	Group   string `opsmop:"group"`
	State   string `opsmop:"state" enum:"present|absent" default:"present"`
	Recurse bool   `opsmop:"recurse"`
}

type templateSpec struct {
	Src   string `opsmop:"src" required:"true"`
	Path  string `opsmop:"path" required:"true"`
	Mode  string `opsmop:"mode"`
	Owner string `opsmop:"owner"`
	Group string `opsmop:"group"`
}

type serviceSpec struct {
	Service string `opsmop:"service" required:"true"`
	State   string `opsmop:"state" enum:"started|stopped|restarted|reloaded"`
	Enabled *bool  `opsmop:"enabled"`
}

type packageSpec struct {
	Name []string `opsmop:"name" list1:"true" required:"true" doc:"package names"`
}

func testRegistry() Registry {
	return Registry{
		"shell":     {Name: "shell", New: func() any { return &shellSpec{} }, Identity: "cmd", Handler: true, Doc: "runs a command"},
		"directory": {Name: "directory", New: func() any { return &directorySpec{} }, Identity: "path", Handler: true},
		"template":  {Name: "template", New: func() any { return &templateSpec{} }, Identity: "path", Handler: true},
		"service":   {Name: "service", New: func() any { return &serviceSpec{} }, Identity: "service", Handler: true},
		"package":   {Name: "package", New: func() any { return &packageSpec{} }, Identity: "name", Handler: false},
	}
}

// dump prints a node tree without positions or source spellings, so that
// trees from TOML and YAML can be compared.
func dump(n *Node) string {
	var b strings.Builder
	var rec func(n *Node)
	rec = func(n *Node) {
		if n == nil {
			b.WriteString("<nil>")
			return
		}
		switch n.Kind {
		case Null:
			b.WriteString("null")
		case String:
			b.WriteString(strconv.Quote(n.Value.(string)))
		case Int:
			fmt.Fprintf(&b, "int(%d)", n.Value)
		case Float:
			fmt.Fprintf(&b, "float(%v)", n.Value)
		case Bool:
			fmt.Fprintf(&b, "%v", n.Value)
		case Map:
			b.WriteString("{")
			for i, e := range n.Entries {
				if i > 0 {
					b.WriteString(", ")
				}
				b.WriteString(e.Key + ": ")
				rec(e.Value)
			}
			b.WriteString("}")
		case List:
			b.WriteString("[")
			for i, it := range n.Items {
				if i > 0 {
					b.WriteString(", ")
				}
				rec(it)
			}
			b.WriteString("]")
		}
	}
	rec(n)
	return b.String()
}

// at follows a path of keys (string) and indexes (int) from n.
func at(t *testing.T, n *Node, path ...any) *Node {
	t.Helper()
	for _, p := range path {
		switch p := p.(type) {
		case string:
			c := n.Get(p)
			if c == nil {
				t.Fatalf("no key %q in %s", p, dump(n))
			}
			n = c
		case int:
			if n.Kind != List || p >= len(n.Items) {
				t.Fatalf("no item %d in %s", p, dump(n))
			}
			n = n.Items[p]
		}
	}
	return n
}

// keyLine returns the line of the last key of path.
func keyLine(t *testing.T, n *Node, path ...any) int {
	t.Helper()
	parent := at(t, n, path[:len(path)-1]...)
	e := parent.entry(path[len(path)-1].(string))
	if e == nil {
		t.Fatalf("no key %v", path)
	}
	return e.KeyPos.Line
}

// errLines formats an error (an ErrorList or not) one problem per line.
func errLines(err error) []string {
	if err == nil {
		return nil
	}
	return strings.Split(err.Error(), "\n")
}

// memFS returns a readFile function over an in-memory set of files.
func memFS(files map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if c, ok := files[filepath.Clean(name)]; ok {
			return []byte(c), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}
