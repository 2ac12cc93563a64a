package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/internal/limitread"
)

// policyKeys are the top-level keys of a policy file.
type policyKeys struct {
	Inventory string         `opsmop:"inventory" doc:"inventory file, relative to the policy file's directory"`
	Vars      map[string]any `opsmop:"vars" doc:"variables for every role and host"`
	Roles     *Node          `opsmop:"roles" type:"list of roles" doc:"the roles, applied in order"`
}

// roleKeys are the keys of a role, inline or in an included role file.
type roleKeys struct {
	Name              string         `opsmop:"name" doc:"role name (required unless include is set; then it defaults to the file's base name)"`
	Include           string         `opsmop:"include" doc:"role file whose keys this role starts from, relative to the including file; keys set beside include replace the file's"`
	Groups            string         `opsmop:"groups" doc:"fnmatch pattern over inventory group names"`
	Hosts             string         `opsmop:"hosts" doc:"fnmatch pattern over host names"`
	SSHAs             *Login         `opsmop:"ssh_as" doc:"user to log in as"`
	Sudo              *bool          `opsmop:"sudo" doc:"run commands under sudo"`
	SudoAs            *Login         `opsmop:"sudo_as" doc:"user sudo switches to (private_key not allowed)"`
	CheckHostKeys     *bool          `opsmop:"check_host_keys" doc:"verify host keys against known_hosts (default true)"`
	When              string         `opsmop:"when" expr:"true" doc:"expression evaluated per host; false skips the role there"`
	Vars              map[string]any `opsmop:"vars" doc:"role variables"`
	Tags              []string       `opsmop:"tags" list1:"true" doc:"tags selecting the role with --tags"`
	Serial            *Node          `opsmop:"serial" type:"integer, percentage string, or list of those" doc:"batch sizes for rolling updates, e.g. 1, \"25%\" or [1, 5, \"50%\"]; the last size repeats"`
	MaxFailPercentage *float64       `opsmop:"max_fail_percentage" doc:"abort the role when more than this percentage of a batch fails (0-100)"`
	ForceHandlers     *bool          `opsmop:"force_handlers" doc:"on a host where a resource failed, still run the handlers notified before the failure (beats --force-handlers when set)"`
	Pre               *Node          `opsmop:"pre" type:"list of resources" doc:"resources run before resources"`
	Resources         *Node          `opsmop:"resources" type:"list of resources" doc:"the role's resources"`
	Handlers          *Node          `opsmop:"handlers" type:"list of resources" doc:"resources run once at the end of the role's resources when notified"`
	Post              *Node          `opsmop:"post" type:"list of resources" doc:"resources run after the handlers"`
}

// commonKeys are the keys every resource accepts besides its type's own.
type commonKeys struct {
	Type         string         `opsmop:"type" required:"true" doc:"resource type"`
	Name         string         `opsmop:"name" doc:"handler name, what notify refers to (handlers only, required there)"`
	Label        string         `opsmop:"label" doc:"name shown in output instead of type[identity]"`
	When         string         `opsmop:"when" expr:"true" doc:"expression; false skips the resource"`
	Notify       []string       `opsmop:"notify" list1:"true" doc:"handlers of the role to run when this resource changes"`
	Loop         *Node          `opsmop:"loop" expr:"true" type:"list, or expression string giving a list" doc:"run the resource once per item (item in templates and expressions)"`
	IgnoreErrors bool           `opsmop:"ignore_errors" doc:"a failure does not stop the host"`
	Vars         map[string]any `opsmop:"vars" doc:"variables for this resource"`
	Tags         []string       `opsmop:"tags" list1:"true" doc:"tags selecting the resource with --tags"`
	Register     string         `opsmop:"register" doc:"variable receiving the result"`
	Retries      int            `opsmop:"retries" doc:"attempts after the first when the resource fails or until is false"`
	Delay        time.Duration  `opsmop:"delay" doc:"pause between retries"`
	Until        string         `opsmop:"until" expr:"true" doc:"expression; retry until it is true"`
}

// Load reads the policy at path, resolving role includes, and decodes it
// strictly against reg. When the policy is bad the error is an ErrorList
// holding every problem found (sorted by file and line); the Policy is
// then nil. Relative paths in the policy (inventory, includes) resolve
// against the policy file's directory, or the including file's for nested
// includes.
func Load(path string, reg Registry) (*Policy, error) {
	data, err := readLimited(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return loadBytes(path, data, reg, readLimited)
}

// MaxFileSize is the largest policy file (or included file) Load reads:
// real policies are kilobytes, and a runaway one is refused before it is
// parsed.
const MaxFileSize = 16 << 20

// readLimited reads the file at path, refusing one larger than
// MaxFileSize.
func readLimited(path string) ([]byte, error) {
	b, err := limitread.File(path, MaxFileSize)
	if errors.As(err, new(*limitread.TooLargeError)) {
		return nil, fmt.Errorf("%s is larger than the limit of %s for a policy file; move data into inventory variables or split it into included files", path, limitread.FormatLimit(MaxFileSize))
	}
	return b, err
}

// loadBytes is Load with the policy's bytes given and includes read by
// readFile.
func loadBytes(path string, data []byte, reg Registry, readFile func(string) ([]byte, error)) (*Policy, error) {
	files := []string{path}
	read := func(f string) ([]byte, error) {
		files = append(files, f)
		return readFile(f)
	}
	l := &loader{reg: reg, readFile: read, root: filepath.Dir(path)}
	n, err := Parse(path, data)
	if err != nil {
		return nil, err
	}
	p := l.policy(n, path)
	if err := l.errs.Err(); err != nil {
		return nil, err
	}
	p.Files = files
	return p, nil
}

type loader struct {
	reg      Registry
	readFile func(string) ([]byte, error)
	root     string // the policy file's directory
	errs     ErrorList
}

func (l *loader) decode(n *Node, path string, dst any) {
	l.errs = append(l.errs, Decode(n, path, dst)...)
}

func (l *loader) policy(n *Node, file string) *Policy {
	var pk policyKeys
	l.decode(n, "", &pk)
	p := &Policy{File: file, Dir: filepath.Dir(file), Vars: pk.Vars}
	if pk.Inventory != "" {
		p.Inventory = pk.Inventory
		if !filepath.IsAbs(p.Inventory) {
			p.Inventory = filepath.Join(p.Dir, p.Inventory)
		}
	}
	if pk.Roles == nil || pk.Roles.Kind == Null {
		return p
	}
	if pk.Roles.Kind != List {
		l.errs.add(pk.Roles.Pos, "roles", "want a list of roles, got %s (in TOML write [[roles]])", pk.Roles.describe(false))
		return p
	}
	for i, rn := range pk.Roles.Items {
		if r := l.role(rn, indexPath("roles", i), file); r != nil {
			p.Roles = append(p.Roles, r)
		}
	}
	return p
}

func (l *loader) role(n *Node, path, file string) *Role {
	if n.Kind != Map {
		l.errs.add(n.Pos, path, "want a map (a role), got %s", n.describe(false))
		return nil
	}
	merged, include := l.expand(n, path, file, []string{absPath(file)})
	var rk roleKeys
	l.decode(merged, path, &rk)
	r := &Role{
		Name:              rk.Name,
		Include:           include,
		Groups:            rk.Groups,
		Hosts:             rk.Hosts,
		SSHAs:             rk.SSHAs,
		Sudo:              rk.Sudo,
		SudoAs:            rk.SudoAs,
		CheckHostKeys:     rk.CheckHostKeys,
		When:              rk.When,
		Vars:              rk.Vars,
		Tags:              rk.Tags,
		MaxFailPercentage: rk.MaxFailPercentage,
		ForceHandlers:     rk.ForceHandlers,
		Pos:               n.Pos,
		keyPos:            make(map[string]Pos, len(merged.Entries)),
	}
	for _, e := range merged.Entries {
		r.keyPos[e.Key] = e.KeyPos
	}
	if r.Name == "" {
		switch {
		case include == "" && n.entry("include") == nil:
			l.errs.add(n.Pos, path, "missing required key %q", "name")
		case include != "":
			base := filepath.Base(include)
			r.Name = strings.TrimSuffix(base, filepath.Ext(base))
		}
	}
	if rk.SudoAs != nil && rk.SudoAs.PrivateKey != "" {
		e := merged.Get("sudo_as").entry("private_key")
		l.errs.add(e.KeyPos, path+".sudo_as", "private_key applies to ssh_as only; sudo does not use keys")
	}
	if m := rk.MaxFailPercentage; m != nil && (*m < 0 || *m > 100) {
		l.errs.add(merged.Get("max_fail_percentage").Pos, path+".max_fail_percentage", "want a percentage from 0 to 100, got %v", *m)
	}
	r.Serial = l.serial(rk.Serial, path+".serial")
	r.Pre = l.resources(rk.Pre, path+".pre", false)
	r.Resources = l.resources(rk.Resources, path+".resources", false)
	r.Handlers = l.resources(rk.Handlers, path+".handlers", true)
	r.Post = l.resources(rk.Post, path+".post", false)
	l.checkHandlers(r)
	return r
}

// expand resolves the role's include (recursively) and returns the role's
// keys: the included file's, each replaced by the same key set beside
// include. The include key itself is consumed. It also returns the
// resolved include path ("" without one).
func (l *loader) expand(n *Node, path, file string, stack []string) (*Node, string) {
	e := n.entry("include")
	if e == nil {
		return n, ""
	}
	rest := &Node{Kind: Map, Pos: n.Pos}
	for _, x := range n.Entries {
		if x.Key != "include" {
			rest.Entries = append(rest.Entries, x)
		}
	}
	ipath := path + ".include"
	if e.Value.Kind != String {
		l.errs.add(e.Value.Pos, ipath, "want a file name, got %s", e.Value.describe(false))
		return rest, ""
	}
	inc := e.Value.Value.(string)
	resolved := inc
	if !filepath.IsAbs(inc) {
		resolved = filepath.Join(filepath.Dir(file), inc)
		if escapes(l.root, resolved) {
			l.errs.add(e.Value.Pos, ipath, "%q is outside the policy directory %s; move the file under it or use an absolute path", inc, l.root)
			return rest, ""
		}
	}
	key := absPath(resolved)
	for i, s := range stack {
		if s == key {
			chain := append(append([]string(nil), stack[i:]...), key)
			l.errs.add(e.Value.Pos, ipath, "include cycle: %s", strings.Join(chain, " -> "))
			return rest, ""
		}
	}
	if len(stack) >= MaxDepth {
		l.errs.add(e.Value.Pos, ipath, "includes nested more than %d deep", MaxDepth)
		return rest, ""
	}
	data, err := l.readFile(resolved)
	if err != nil {
		msg := err.Error()
		if errors.Is(err, fs.ErrNotExist) {
			msg = "no such file (looked for " + resolved + ")"
		}
		l.errs.add(e.Value.Pos, ipath, "cannot include %q: %s", inc, msg)
		return rest, ""
	}
	fn, err := Parse(resolved, data)
	if err != nil {
		var el ErrorList
		if errors.As(err, &el) {
			l.errs = append(l.errs, el...)
		} else {
			l.errs.add(e.Value.Pos, ipath, "%v", err)
		}
		return rest, ""
	}
	if fn.Kind != Map {
		l.errs.add(fn.Pos, "", "a role file holds role keys (name, resources, ...), got %s", fn.describe(false))
		return rest, ""
	}
	inner, _ := l.expand(fn, path, resolved, append(stack[:len(stack):len(stack)], key))
	merged := &Node{Kind: Map, Pos: n.Pos, Entries: append([]Entry(nil), inner.Entries...)}
	for _, x := range rest.Entries {
		if me := merged.entry(x.Key); me != nil {
			*me = x
		} else {
			merged.Entries = append(merged.Entries, x)
		}
	}
	return merged, resolved
}

func absPath(file string) string {
	if abs, err := filepath.Abs(file); err == nil {
		return abs
	}
	return filepath.Clean(file)
}

// escapes reports whether path lies outside dir.
func escapes(dir, path string) bool {
	ad, err1 := filepath.Abs(dir)
	ap, err2 := filepath.Abs(path)
	if err1 != nil || err2 != nil {
		return true
	}
	rel, err := filepath.Rel(ad, ap)
	return err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

var percentRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)%$`)

// serial decodes a batch plan: an integer, a "25%" string, or a list of
// those.
func (l *loader) serial(n *Node, path string) []BatchSize {
	if n == nil || n.Kind == Null {
		return nil
	}
	items := []*Node{n}
	if n.Kind == List {
		items = n.Items
		if len(items) == 0 {
			l.errs.add(n.Pos, path, "empty list; leave serial out to run on all hosts at once")
			return nil
		}
	}
	var out []BatchSize
	for i, it := range items {
		p := path
		if n.Kind == List {
			p = indexPath(path, i)
		}
		switch {
		case it.Kind == Int && it.Value.(int64) >= 1 && it.Value.(int64) <= 1<<31:
			out = append(out, BatchSize{Hosts: int(it.Value.(int64))})
			continue
		case it.Kind == String:
			if m := percentRE.FindStringSubmatch(strings.TrimSpace(it.Value.(string))); m != nil {
				if f, _ := strconv.ParseFloat(m[1], 64); f > 0 && f <= 100 {
					out = append(out, BatchSize{Percent: f})
					continue
				}
			}
		}
		l.errs.add(it.Pos, p, "want a number of hosts (at least 1) or a percentage like \"25%%\", got %s", it.describe(false))
	}
	return out
}

func (l *loader) resources(n *Node, path string, handlers bool) []*Resource {
	if n == nil || n.Kind == Null {
		return nil
	}
	if n.Kind != List {
		hint := ""
		if n.Kind == Map {
			hint = " (in TOML write [[roles." + path[strings.LastIndex(path, ".")+1:] + "]] blocks)"
		}
		l.errs.add(n.Pos, path, "want a list of resources, got %s%s", n.describe(false), hint)
		return nil
	}
	var out []*Resource
	for i, item := range n.Items {
		r, errs := decodeResource(l.reg, item, indexPath(path, i), handlers)
		l.errs = append(l.errs, errs...)
		if r != nil {
			out = append(out, r)
		}
	}
	return out
}

// checkHandlers reports duplicate handler names and notify entries naming
// no handler of the role.
func (l *loader) checkHandlers(r *Role) {
	first := map[string]*Resource{}
	var names []string
	for _, h := range r.Handlers {
		if h.Name == "" {
			continue
		}
		if f, dup := first[h.Name]; dup {
			l.errs.add(h.Raw.Get("name").Pos, h.Path+".name", "duplicate handler name %q (first defined at %s)", h.Name, f.Raw.Get("name").Pos)
			continue
		}
		first[h.Name] = h
		names = append(names, h.Name)
	}
	sort.Strings(names)
	for _, list := range [][]*Resource{r.Pre, r.Resources, r.Handlers, r.Post} {
		for _, res := range list {
			nn := res.Raw.Get("notify")
			for i, name := range res.Notify {
				if _, ok := first[name]; ok {
					continue
				}
				pos, p := nn.Pos, res.Path+".notify"
				if nn.Kind == List {
					pos, p = nn.Items[i].Pos, indexPath(p, i)
				}
				msg := fmt.Sprintf("no handler named %q in role %q", name, r.Name)
				if len(names) == 0 {
					msg += "; the role has no handlers"
				} else {
					if s := suggest(name, names); s != "" {
						msg += fmt.Sprintf(" (did you mean %q?)", s)
					}
					q := make([]string, len(names))
					for j, n := range names {
						q[j] = strconv.Quote(n)
					}
					msg += "; its handlers: " + strings.Join(q, ", ")
				}
				l.errs.add(pos, p, "%s", msg)
			}
		}
	}
}

// decodeResource decodes one resource map: the common keys into Resource
// fields, the rest strictly into the type's spec.
func decodeResource(reg Registry, n *Node, path string, handler bool) (*Resource, ErrorList) {
	var errs ErrorList
	if n.Kind != Map {
		errs.add(n.Pos, path, "want a map (a resource), got %s", n.describe(false))
		return nil, errs
	}
	commonFields := fieldsOf(reflect.TypeFor[commonKeys]())
	var t ResourceType
	var specFields []field
	typeOK := false
	if tn := n.Get("type"); tn != nil && tn.Kind == String {
		name := tn.Value.(string)
		var ok bool
		if t, ok = reg[name]; ok && t.New != nil {
			typeOK = true
			specFields = fieldsOf(reflect.TypeOf(t.New()).Elem())
		} else {
			known := make([]string, 0, len(reg))
			for k := range reg {
				known = append(known, k)
			}
			sort.Strings(known)
			msg := fmt.Sprintf("unknown resource type %q", name)
			if s := suggest(name, known); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			msg += "; known types: " + strings.Join(known, ", ")
			errs.add(tn.Pos, path+".type", "%s", msg)
		}
	}
	// Split the keys: the spec's own win over common ones of the same name,
	// except a handler's name, which is both.
	common := &Node{Kind: Map, Pos: n.Pos}
	spec := &Node{Kind: Map, Pos: n.Pos}
	for _, e := range n.Entries {
		inSpec := findField(specFields, e.Key) != nil
		inCommon := findField(commonFields, e.Key) != nil
		switch {
		case inCommon && (!inSpec || (handler && e.Key == "name")):
			common.Entries = append(common.Entries, e)
			if inSpec {
				spec.Entries = append(spec.Entries, e)
			}
		default:
			spec.Entries = append(spec.Entries, e)
		}
	}
	var ck commonKeys
	d := decoder{templates: true}
	d.structure(common, path, reflect.ValueOf(&ck).Elem(), nil)
	errs = append(errs, d.errs...)
	if !typeOK {
		return nil, errs
	}
	specV := reflect.ValueOf(t.New())
	d = decoder{templates: true}
	d.structure(spec, path, specV.Elem(), fieldKeys(commonFields))
	errs = append(errs, d.errs...)

	r := &Resource{
		Type:         ck.Type,
		Name:         ck.Name,
		Label:        ck.Label,
		When:         ck.When,
		Notify:       ck.Notify,
		IgnoreErrors: ck.IgnoreErrors,
		Vars:         ck.Vars,
		Tags:         ck.Tags,
		Register:     ck.Register,
		Retries:      ck.Retries,
		Delay:        ck.Delay,
		Until:        ck.Until,
		Spec:         specV.Interface(),
		Raw:          n,
		Path:         path,
		Pos:          n.Pos,
	}
	if nameE := common.entry("name"); nameE != nil && !handler {
		errs.add(nameE.KeyPos, path, "name is only for handlers (what notify refers to); use label to name a resource in output")
	}
	if handler {
		if r.Name == "" {
			errs.add(n.Pos, path, "missing required key %q (a handler's name is what notify refers to)", "name")
		}
		if !t.Handler {
			var hs []string
			for k, rt := range reg {
				if rt.Handler {
					hs = append(hs, k)
				}
			}
			sort.Strings(hs)
			errs.add(n.Get("type").Pos, path+".type", "%s cannot be a handler: handlers may be of type %s", r.Type, strings.Join(hs, ", "))
		}
	}
	if r.Retries < 0 {
		errs.add(n.Get("retries").Pos, path+".retries", "want 0 or more, got %d", r.Retries)
	}
	if ck.Loop != nil {
		switch ck.Loop.Kind {
		case String:
			r.Loop = &Loop{Expr: ck.Loop.Value.(string)}
		case List:
			r.Loop = &Loop{Items: ck.Loop.Interface().([]any)}
		case Null:
		default:
			errs.add(ck.Loop.Pos, path+".loop", "want a list or an expression string giving a list, got %s", ck.Loop.describe(false))
		}
	}
	return r, errs
}
