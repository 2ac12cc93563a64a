package providers

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// DirectorySpec is the `directory` resource.
type DirectorySpec struct {
	Path    string `opsmop:"path" required:"true" doc:"absolute path of the directory on the host; missing parents are created"`
	Mode    string `opsmop:"mode" doc:"octal permissions as a quoted string, e.g. \"0755\"; unset: the host's default for a new directory, unchanged for an existing one"`
	Owner   string `opsmop:"owner" doc:"owner (user name or numeric uid); unset: unchanged"`
	Group   string `opsmop:"group" doc:"group (name or numeric gid); unset: unchanged"`
	State   string `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the directory exists; absent: it is removed with everything in it"`
	Recurse bool   `opsmop:"recurse" doc:"apply owner, group and mode to everything beneath too (mode applies to files as well as directories, as chmod -R does); the se* keys apply to the directory itself only"`
	// seKeys are seuser, serole, setype and selevel (selinux.go).
	seKeys
}

// Validate checks the rules of a directory that need no host (see
// Validator): path is absolute and, with state = "absent", not /; state
// is present or absent; mode is octal; owner and group are names or
// numeric ids; the se* keys are SELinux names, and not given with state =
// "absent".
func (s *DirectorySpec) Validate() error {
	var p problems
	p.path("path", s.Path)
	p.enum("state", s.State, "present", "absent")
	p.attrs(s.Mode, s.Owner, s.Group)
	s.seKeys.validate(&p)
	if s.State == "absent" && s.seKeys.set() {
		p.add("state", "state = \"absent\" removes the directory: remove seuser, serole, setype and selevel, or set state = \"present\"")
	}
	if s.State == "absent" && !templated(s.Path) && path.Clean(s.Path) == "/" {
		p.add("path", "refusing to remove /")
	}
	return p.err()
}

// directoryProvider implements `directory`.
type directoryProvider struct{}

// directoryPlan is what Apply does for a directory.
type directoryPlan struct {
	Path    string
	Remove  bool
	Mkdir   bool
	Chmod   bool
	Mode    uint32
	Owner   string
	Group   string
	Recurse bool
	// SE sets parts of the SELinux context of the directory.
	SE seChange
}

// labels names the instance by its path; the errors of Apply name it
// themselves.
func (directoryProvider) labels(s *DirectorySpec) errLabels {
	l := "directory " + s.Path
	return errLabels{Probe: l, Check: l}
}

// Probe reports the directory's type and attributes and, with recurse,
// whether anything beneath has another owner, group or mode
// (`beneath=0|1`).
func (directoryProvider) Probe(s *DirectorySpec, req *Request) (string, error) {
	script := statScript(s.Path)
	if s.State != "absent" && s.seKeys.set() {
		script += seProbeScript()
	}
	if s.State != "absent" && s.Recurse && (s.Owner != "" || s.Group != "" || s.Mode != "") {
		var conds []string
		if s.Owner != "" {
			conds = append(conds, "! -user "+shell.Quote(s.Owner))
		}
		if s.Group != "" {
			conds = append(conds, "! -group "+shell.Quote(s.Group))
		}
		if s.Mode != "" {
			m, _ := parseMode(s.Mode)
			conds = append(conds, "! -perm "+fmtMode(m))
		}
		script += "if [ \"$t\" = directory ]; then printf 'beneath=%s\\n' $(($(find \"$p\" \\( " +
			strings.Join(conds, " -o ") + " \\) -print 2>/dev/null | head -n 1 | wc -l))); fi\n"
	}
	return script, nil
}

// ProbeVars says that the probe may run inline (connection.Probe) and
// names the variables it sets.
func (directoryProvider) ProbeVars() []string { return append(pathProbeVars(), seProbeVars()...) }

// ProbePath names the path the probe looks at, for ProbePrelude.
func (directoryProvider) ProbePath(s *DirectorySpec) ProbedPath { return ProbedPath{Path: s.Path} }

// Check compares the wanted directory with the probed one.
func (directoryProvider) Check(s *DirectorySpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	typ := p.get("type")
	st, _, err := parseStat(p)
	if err != nil {
		return nil, err
	}
	if s.State == "absent" {
		switch typ {
		case "absent":
			return &Change{Action: None}, nil
		case "directory":
			return &Change{Action: Delete, Fields: []Field{{Name: "state", Before: "present", After: "absent"}},
				Plan: directoryPlan{Path: s.Path, Remove: true}}, nil
		}
		return nil, fmt.Errorf("exists and is a %s, not a directory: refusing to remove it", typ)
	}
	switch typ {
	case "absent", "directory":
	case "link":
		return nil, fmt.Errorf("is a symlink, not a directory: remove it or manage it with a link resource")
	case "file", "other":
		return nil, fmt.Errorf("exists and is not a directory: remove it first")
	default:
		return nil, fmt.Errorf("malformed probe output: type=%q", typ)
	}
	exists := typ == "directory"
	wantMode, _ := parseMode(s.Mode)
	pl := directoryPlan{Path: s.Path, Mkdir: !exists, Mode: wantMode, Recurse: s.Recurse}
	ch := &Change{Action: Update}
	if !exists {
		ch.Action = Create
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: "absent", After: "present"})
	}
	if s.Mode != "" && (!exists || st.Mode != wantMode) {
		pl.Chmod = true
		ch.Fields = append(ch.Fields, Field{Name: "mode", Before: beforeIf(exists, fmtMode(st.Mode)), After: fmtMode(wantMode)})
	}
	if s.Owner != "" && (!exists || !st.ownerIs(s.Owner)) {
		pl.Owner = s.Owner
		ch.Fields = append(ch.Fields, Field{Name: "owner", Before: beforeIf(exists, st.owner()), After: s.Owner})
	}
	if s.Group != "" && (!exists || !st.groupIs(s.Group)) {
		pl.Group = s.Group
		ch.Fields = append(ch.Fields, Field{Name: "group", Before: beforeIf(exists, st.group()), After: s.Group})
	}
	if exists && p.get("beneath") == "1" {
		// Something beneath differs: re-apply everything given, recursively.
		pl.Chmod = s.Mode != ""
		pl.Owner, pl.Group = s.Owner, s.Group
		ch.Fields = append(ch.Fields, Field{Name: "beneath", Before: "differs", After: "owner/group/mode applied recursively"})
	}
	seFields, seCh, err := s.seKeys.check(p, exists)
	if err != nil {
		return nil, err
	}
	ch.Fields = append(ch.Fields, seFields...)
	pl.SE = seCh
	if len(ch.Fields) == 0 {
		return &Change{Action: None}, nil
	}
	ch.Plan = pl
	return ch, nil
}

// Apply creates, re-attributes or removes the directory.
func (directoryProvider) Apply(ctx context.Context, h Host, s *DirectorySpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[directoryPlan](ch, "directory")
	if err != nil {
		return nil, err
	}
	what, script, err := directoryScript(pl)
	if err != nil {
		return nil, err
	}
	if _, err := run(ctx, h, what, script, nil); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step: Apply runs one script, directoryScript.
func (directoryProvider) ApplyStep(s *DirectorySpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[directoryPlan](ch, "directory")
	if err != nil {
		return Step{}, false, err
	}
	what, script, err := directoryScript(pl)
	if err != nil {
		return Step{}, false, err
	}
	return Step{Script: script, What: what}, true, nil
}

// directoryScript is the script that performs pl, and what it does for
// its error ("directory /srv/x"); it refuses to remove / or an empty
// path.
func directoryScript(pl directoryPlan) (what, script string, err error) {
	qp := shell.Quote(pl.Path)
	if pl.Remove {
		if c := path.Clean(pl.Path); c == "/" || c == "." || pl.Path == "" {
			return "", "", fmt.Errorf("directory %q: refusing to remove it", pl.Path)
		}
		return "directory " + pl.Path, "rm -rf -- " + qp, nil
	}
	var b strings.Builder
	b.WriteString("set -e\n")
	chown := chownCmd(pl.Owner, pl.Group, pl.Recurse, pl.Path)
	chmod := pl.Chmod
	switch {
	case pl.Mkdir && chmod && !pl.Recurse && chown == "":
		// One process: the new directory gets its mode at once.
		b.WriteString("mkdir -p -m " + fmtMode(pl.Mode) + " -- " + qp + "\n")
		chmod = false
	case pl.Mkdir:
		b.WriteString("mkdir -p -- " + qp + "\n")
	}
	if chown != "" {
		b.WriteString(chown + "\n")
	}
	if chmod {
		r := ""
		if pl.Recurse {
			r = "-R "
		}
		b.WriteString("chmod " + r + fmtMode(pl.Mode) + " -- " + qp + "\n")
	}
	if c := pl.SE.script(qp); c != "" {
		b.WriteString(c + "\n")
	}
	return "directory " + pl.Path, b.String(), nil
}
