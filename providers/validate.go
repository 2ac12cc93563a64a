package providers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
)

// Validator is implemented by the spec of every resource type (what each
// registered type's New returns). Validate checks every rule of the spec
// that needs no host: keys that exclude or require each other, enum
// values, remote paths, modes, names. It contacts nothing and reads no
// local file (LocalFiles names those).
//
// The engine calls Validate on the spec as written, when it validates a
// policy before any host is contacted (opsmop validate, check and apply),
// and every Provider (through adapt) calls it again in Probe and Check
// on the spec rendered for the host. A string value holding template syntax ("{{")
// is known only once rendered: offline, its value checks are skipped
// (they run on the rendered value in Probe and Check), while the
// combinations of keys are still checked. Likewise a boolean or number
// given as a template is unset until rendered.
//
// Validate returns nil or a *SpecError listing every problem.
type Validator interface {
	Validate() error
}

// KeyError is one problem Validate found.
type KeyError struct {
	// Key is the policy key the problem is about; for a combination of
	// keys, the one where it is best shown (the second of two exclusive
	// keys, or the missing one). "" means the spec as a whole.
	Key string
	// Msg says what is wrong and what to do; it names the key.
	Msg string
}

// Error returns Msg.
func (e *KeyError) Error() string { return e.Msg }

// SpecError is every problem Validate found in one spec, in the order of
// the spec's keys. Callers that show problems at their key's position
// iterate Problems.
type SpecError struct {
	Problems []*KeyError
}

// Error joins the problems with "; ".
func (e *SpecError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Msg
	}
	return strings.Join(msgs, "; ")
}

// problems collects what a Validate method finds.
type problems []*KeyError

func (p *problems) add(key, format string, args ...any) {
	*p = append(*p, &KeyError{Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *problems) addErr(key string, err error) {
	if err != nil {
		*p = append(*p, &KeyError{Key: key, Msg: err.Error()})
	}
}

// err is nil when nothing was found, else a *SpecError.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return &SpecError{Problems: p}
}

// templated reports whether a value holds template syntax, and so can be
// checked only once rendered for a host.
func templated(s string) bool { return strings.Contains(s, "{{") }

// path checks a remote path (absolute, no NUL byte).
func (p *problems) path(key, v string) {
	if !templated(v) {
		p.addErr(key, checkPath(key, v))
	}
}

// enum checks that v is one of allowed ("" means the default).
func (p *problems) enum(key, v string, allowed ...string) {
	if !templated(v) {
		p.addErr(key, oneOf(key, v, allowed...))
	}
}

// mode checks an octal mode ("" means unset).
func (p *problems) mode(key, v string) {
	if !templated(v) {
		_, err := parseMode(v)
		p.addErr(key, err)
	}
}

// name checks a user or group name (or numeric id) given as key; kind
// names it in the message ("user", "group", "owner").
func (p *problems) name(key, kind, v string) {
	if !templated(v) {
		p.addErr(key, validName(kind, v))
	}
}

// attrs checks the mode, owner and group keys shared by file, template
// and directory (each may be unset).
func (p *problems) attrs(mode, owner, group string) {
	p.mode("mode", mode)
	if owner != "" {
		p.name("owner", "owner", owner)
	}
	if group != "" {
		p.name("group", "group", group)
	}
}

// LocalFile is a spec key naming a file on the machine that runs opsmop:
// relative to the policy directory, or absolute.
type LocalFile struct {
	// Key is the policy key, e.g. "src".
	Key string
	// Path is the key's value, as written.
	Path string
	// Template is set for a template rendered for each host (tag
	// local:"template"), unset for a file copied as it is (local:"file").
	Template bool
}

// LocalChooser is implemented by a spec whose keys tagged local:"..."
// name a local file only in some configurations: unarchive's src names a
// file on the host when remote_src is set. IsLocal reports whether key
// (its policy name) names a local file as the spec is set; LocalFiles
// leaves out the keys for which it returns false, so nothing checks or
// reads a local file that is not one.
type LocalChooser interface {
	IsLocal(key string) bool
}

// LocalFiles lists the local files that spec (a pointer to a spec struct)
// names: its string fields tagged local:"file" or local:"template", in
// declaration order. Empty values are left out, and so are values holding
// template syntax ("{{"): which file they name is known only once rendered
// for a host, when the provider opens it. A spec that is a LocalChooser
// decides which of its keys count.
func LocalFiles(spec any) []LocalFile {
	lc, _ := spec.(LocalChooser)
	v := reflect.ValueOf(spec)
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	var out []LocalFile
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		kind, ok := f.Tag.Lookup("local")
		key := f.Tag.Get("opsmop")
		if !ok || key == "" || f.Type.Kind() != reflect.String {
			continue
		}
		p := v.Field(i).String()
		if p == "" || templated(p) || (lc != nil && !lc.IsLocal(key)) {
			continue
		}
		out = append(out, LocalFile{Key: key, Path: p, Template: kind == "template"})
	}
	return out
}

// TemplateKeys lists the keys of spec (a pointer to a spec struct) that
// name a local template file (tagged local:"template"), in declaration
// order, whatever their values.
func TemplateKeys(spec any) []string {
	t := reflect.TypeOf(spec)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if key := f.Tag.Get("opsmop"); key != "" && f.Tag.Get("local") == "template" {
			keys = append(keys, key)
		}
	}
	return keys
}

// Check checks the local file at full, which is f.Path resolved against
// the policy directory: it must exist, be a regular file (a symlink to
// one is fine) and be readable by the user running opsmop. The error
// names f.Path and full, and says what to do.
func (f LocalFile) Check(full string) error {
	what := "local file"
	if f.Template {
		what = "template"
	}
	shown := full
	if abs, err := filepath.Abs(full); err == nil {
		shown = abs
	}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s %q does not exist (looked for %s): create it, or correct %s (a relative path is relative to the policy directory)", what, f.Path, shown, f.Key)
	case err != nil:
		return fmt.Errorf("%s %q: %w", what, f.Path, err)
	case fi.IsDir():
		return fmt.Errorf("%s %q is a directory (%s): %s takes a regular file", what, f.Path, shown, f.Key)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s %q is not a regular file (%s is a device, fifo or socket): %s takes a regular file", what, f.Path, shown, f.Key)
	}
	r, err := os.Open(full)
	if err != nil {
		return fmt.Errorf("%s %q cannot be read: %w: make it readable by the user running opsmop", what, f.Path, err)
	}
	r.Close()
	return nil
}
