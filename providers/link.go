package providers

import (
	"context"
	"fmt"
	"path"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// LinkSpec is the `link` resource: a symbolic link.
type LinkSpec struct {
	Path   string `opsmop:"path" required:"true" doc:"absolute path of the symlink on the host"`
	Target string `opsmop:"target" doc:"what the link points to, exactly as written (absolute or relative to the link's directory); required when state is present"`
	State  string `opsmop:"state" enum:"present|absent" default:"present" doc:"present: path is a symlink to target; absent: path is not a symlink (a link there is removed)"`
	Force  bool   `opsmop:"force" doc:"replace (or, with state = \"absent\", remove) a regular file or directory at path; without it such a path is an error"`
}

// Validate checks the rules of a link that need no host (see Validator):
// path is absolute and not /; state is present or absent; with state
// present, target is given and holds no NUL byte or newline.
func (s *LinkSpec) Validate() error {
	var p problems
	p.path("path", s.Path)
	p.enum("state", s.State, "present", "absent")
	if !templated(s.Path) && s.Path != "" && path.Clean(s.Path) == "/" {
		p.add("path", "path cannot be /")
	}
	if s.State != "absent" && !templated(s.State) {
		switch {
		case s.Target == "":
			p.add("target", "target is required when state is present: give what the link points to")
		case !templated(s.Target) && strings.ContainsAny(s.Target, "\x00\n"):
			p.add("target", "target %q contains a NUL byte or newline", s.Target)
		}
	}
	return p.err()
}

// linkProvider implements `link`.
type linkProvider struct{}

// linkPlan is what Apply does for a link.
type linkPlan struct {
	Path   string
	Target string
	Remove bool
	// Replace: remove what is at Path (a non-link, with force) first.
	Replace bool
}

// labels names the instance by its path in the errors of Check; the
// errors of Probe name only the type, and those of Apply name the
// instance themselves.
func (linkProvider) labels(s *LinkSpec) errLabels {
	return errLabels{Probe: "link", Check: "link " + s.Path}
}

// Probe reports what is at path and, for a symlink, `target=`.
func (linkProvider) Probe(s *LinkSpec, req *Request) (string, error) {
	return statScript(s.Path) + "if [ \"$t\" = link ]; then printf 'target=%s\\n' \"$(readlink -- \"$p\")\"; fi\n", nil
}

// ProbeVars says that the probe may run inline (connection.Probe) and
// names the variables it sets.
func (linkProvider) ProbeVars() []string { return pathProbeVars() }

// ProbePath names the path the probe looks at, for ProbePrelude.
func (linkProvider) ProbePath(s *LinkSpec) ProbedPath { return ProbedPath{Path: s.Path} }

// Check compares the link with the probed path.
func (linkProvider) Check(s *LinkSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	typ := p.get("type")
	cur := p.get("target")
	if s.State == "absent" {
		switch typ {
		case "absent":
			return &Change{Action: None}, nil
		case "link":
			return &Change{Action: Delete, Fields: []Field{{Name: "target", Before: cur, After: ""}},
				Plan: linkPlan{Path: s.Path, Remove: true}}, nil
		}
		if !s.Force {
			return nil, fmt.Errorf("exists and is %s: refusing to remove it (set force = true to remove it anyway)", describeType(typ))
		}
		return &Change{Action: Delete, Fields: []Field{{Name: "type", Before: typ, After: "absent"}},
			Plan: linkPlan{Path: s.Path, Remove: true, Replace: true}}, nil
	}
	switch typ {
	case "absent":
		return &Change{Action: Create, Fields: []Field{{Name: "target", Before: "", After: s.Target}},
			Plan: linkPlan{Path: s.Path, Target: s.Target}}, nil
	case "link":
		if cur == s.Target {
			return &Change{Action: None}, nil
		}
		return &Change{Action: Update, Fields: []Field{{Name: "target", Before: cur, After: s.Target}},
			Plan: linkPlan{Path: s.Path, Target: s.Target}}, nil
	}
	if !s.Force {
		return nil, fmt.Errorf("exists and is %s, not a symlink: refusing to replace it (remove it, or set force = true to replace it)", describeType(typ))
	}
	return &Change{Action: Update, Fields: []Field{{Name: "type", Before: typ, After: "link"}, {Name: "target", Before: "", After: s.Target}},
		Plan: linkPlan{Path: s.Path, Target: s.Target, Replace: true}}, nil
}

// Apply creates, replaces or removes the link.
func (linkProvider) Apply(ctx context.Context, h Host, s *LinkSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[linkPlan](ch, "link")
	if err != nil {
		return nil, err
	}
	what, script := linkScript(pl)
	if _, err := run(ctx, h, what, script, nil); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step: Apply runs one script, linkScript.
func (linkProvider) ApplyStep(s *LinkSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[linkPlan](ch, "link")
	if err != nil {
		return Step{}, false, err
	}
	what, script := linkScript(pl)
	return Step{Script: script, What: what}, true, nil
}

// linkScript is the script that performs pl, and what it does for its
// error ("link /srv/x").
func linkScript(pl linkPlan) (what, script string) {
	qp := shell.Quote(pl.Path)
	switch {
	case pl.Remove && pl.Replace:
		script = "rm -rf -- " + qp
	case pl.Remove:
		script = "rm -f -- " + qp
	case pl.Replace:
		script = "rm -rf -- " + qp + " && ln -s -- " + shell.Quote(pl.Target) + " " + qp
	default:
		// -n: replace a link to a directory instead of creating the new
		// link inside that directory.
		script = "ln -sfn -- " + shell.Quote(pl.Target) + " " + qp
	}
	return "link " + pl.Path, script
}

// describeType names a probed type other than a symlink, for errors.
func describeType(t string) string {
	switch t {
	case "file":
		return "a regular file"
	case "directory":
		return "a directory"
	}
	return "not a symlink"
}
