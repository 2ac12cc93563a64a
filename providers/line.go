package providers

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/opsmop/opsmop/connection"
)

// LineSpec is the `line` resource: one line in a text file, like
// Ansible's lineinfile. Regular expressions use Go's RE2 syntax and are
// evaluated locally, on the contents the probe fetched; the new contents
// are computed locally and uploaded atomically.
type LineSpec struct {
	Path        string `opsmop:"path" required:"true" doc:"absolute path of the file on the host"`
	Line        string `opsmop:"line" doc:"the line (without its newline); required when state is present"`
	Regexp      string `opsmop:"regexp" doc:"Go RE2 regular expression (evaluated locally) selecting the line to replace: with state present the LAST matching line is replaced by line; with state absent every matching line is removed"`
	State       string `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the line is in the file; absent: no line matches regexp (or equals line)"`
	InsertAfter string `opsmop:"insert_after" doc:"Go RE2 regular expression: a line that is added goes after the LAST line matching it (end of file when nothing matches); \"EOF\" (the default) means end of file"`
	Create      bool   `opsmop:"create" doc:"create the file (mode 0644), and its missing parent directories, when it does not exist; without it a missing file is an error (with state absent a missing file is fine)"`
}

// Validate checks the rules of a line that need no host (see Validator):
// path is absolute; state is present or absent; line is one line;
// regexp and insert_after compile; with state present line is given, with
// state absent regexp or line is.
func (s *LineSpec) Validate() error {
	var p problems
	p.path("path", s.Path)
	p.enum("state", s.State, "present", "absent")
	if !templated(s.Line) && strings.ContainsAny(s.Line, "\n\x00") {
		p.add("line", "line contains a newline or NUL byte: give one line")
	}
	if s.Regexp != "" && !templated(s.Regexp) {
		if _, err := regexp.Compile(s.Regexp); err != nil {
			p.add("regexp", "regexp %q: %v", s.Regexp, err)
		}
	}
	if s.InsertAfter != "" && s.InsertAfter != "EOF" && !templated(s.InsertAfter) {
		if _, err := regexp.Compile(s.InsertAfter); err != nil {
			p.add("insert_after", "insert_after %q: %v", s.InsertAfter, err)
		}
	}
	switch {
	case templated(s.State):
	case s.State == "absent" && s.Regexp == "" && s.Line == "":
		p.add("state", "state absent needs regexp or line to know what to remove: give one of them")
	case s.State != "absent" && s.Line == "":
		p.add("line", "line is required when state is present")
	}
	return p.err()
}

// lineProvider implements `line`.
type lineProvider struct{}

// labels names the instance by its path in the errors of Check and
// Apply; the errors of Probe name only the type.
func (lineProvider) labels(s *LineSpec) errLabels {
	l := "line in " + s.Path
	return errLabels{Probe: "line", Check: l, Apply: l}
}

// Probe reports the file's type and attributes and its whole contents.
func (lineProvider) Probe(s *LineSpec, req *Request) (string, error) {
	return statScript(s.Path) + "if [ \"$t\" = file ]; then\n[ -r \"$p\" ] || echo readable=0\n" + blobScript(-1, false) + "fi\n", nil
}

// ProbeVars says that the probe may run inline (connection.Probe) and
// names the variables it sets.
func (lineProvider) ProbeVars() []string { return pathProbeVars() }

// ProbePath names the path the probe looks at, for ProbePrelude.
func (lineProvider) ProbePath(s *LineSpec) ProbedPath { return ProbedPath{Path: s.Path} }

// Check computes the new contents locally and compares.
func (lineProvider) Check(s *LineSpec, req *Request, probe connection.Result) (*Change, error) {
	c, err := s.compile()
	if err != nil {
		return nil, err
	}
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	typ := p.get("type")
	st, _, err := parseStat(p)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "absent":
		if s.State == "absent" {
			return &Change{Action: None}, nil
		}
		if !s.Create {
			return nil, fmt.Errorf("the file does not exist: create it first, or set create = true")
		}
		after := []byte(s.Line + "\n")
		return &Change{
			Action: Create,
			Fields: []Field{{Name: "state", Before: "absent", After: "present"}, {Name: "line", Before: "", After: s.Line}},
			Diff:   unifiedDiff(s.Path, nil, after, true),
			Plan:   filePlan{Path: s.Path, Upload: true, Data: after, Size: int64(len(after)), Sum: sha256Hex(after), MkdirParent: true},
		}, nil
	case "file":
	case "link":
		return nil, fmt.Errorf("is a symlink: point line at the file it links to")
	default:
		return nil, fmt.Errorf("exists and is not a regular file")
	}
	if p.get("readable") == "0" || !p.hasBlob {
		return nil, fmt.Errorf("cannot read the file: run as a user that can (sudo = true)")
	}
	if bytes.IndexByte(p.blob, 0) >= 0 {
		return nil, fmt.Errorf("the file contains NUL bytes: line edits only text files")
	}
	after, field := c.edit(p.blob)
	if bytes.Equal(after, p.blob) {
		return &Change{Action: None}, nil
	}
	return &Change{
		Action: Update,
		Fields: []Field{field},
		Diff:   unifiedDiff(s.Path, p.blob, after, false),
		Plan: filePlan{Path: s.Path, Upload: true, Data: after, Size: int64(len(after)), Sum: sha256Hex(after), OwnerKept: true,
			Mode: st.Mode, Owner: st.UID, Group: st.GID},
	}, nil
}

// Apply uploads the new contents, keeping the file's mode, owner and group.
func (lineProvider) Apply(ctx context.Context, h Host, s *LineSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[filePlan](ch, "line")
	if err != nil {
		return nil, err
	}
	if err := applyFile(ctx, h, req, pl); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is file's ApplyStep for the new contents (fileStep).
func (lineProvider) ApplyStep(s *LineSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[filePlan](ch, "line")
	if err != nil {
		return Step{}, false, err
	}
	return fileStep(pl, time.Now())
}

// PredictProbe tells what the probe prints once ch has rewritten an
// existing, readable file: the same type and attributes (the rewrite
// keeps mode, owner and group), the new size and contents. It predicts
// nothing for a probe of another shape (a file created, one it cannot
// read).
func (lineProvider) PredictProbe(s *LineSpec, req *Request, probe connection.Result, ch *Change) (connection.Result, bool) {
	pl, ok := ch.Plan.(filePlan)
	if !ok || !pl.Upload || pl.Data == nil || pl.Remove {
		return connection.Result{}, false
	}
	p, err := probeResult(probe)
	if err != nil || p.get("type") != "file" || !p.hasBlob {
		return connection.Result{}, false
	}
	stat := p.get("stat")
	fields := strings.Fields(stat)
	if len(fields) != 6 || lineProbeOutput(stat, p.blob) != string(probe.Stdout) {
		return connection.Result{}, false
	}
	after := strings.Join(fields[:5], " ") + " " + strconv.Itoa(len(pl.Data))
	return connection.Result{Stdout: []byte(lineProbeOutput(after, pl.Data))}, true
}

// lineProbeOutput is what the probe prints for a readable regular file
// with the stat line stat and the contents blob.
func lineProbeOutput(stat string, blob []byte) string {
	return "type=file\nstat=" + stat + "\nblob=" + strconv.Itoa(len(blob)) + "\n" + string(blob)
}

// compiledLine is a LineSpec with its expressions compiled.
type compiledLine struct {
	*LineSpec
	re, after *regexp.Regexp
}

// compile compiles the expressions of s.
func (s *LineSpec) compile() (*compiledLine, error) {
	c := &compiledLine{LineSpec: s}
	var err error
	if s.Regexp != "" {
		if c.re, err = regexp.Compile(s.Regexp); err != nil {
			return nil, fmt.Errorf("regexp %q: %w", s.Regexp, err)
		}
	}
	if s.InsertAfter != "" && s.InsertAfter != "EOF" {
		if c.after, err = regexp.Compile(s.InsertAfter); err != nil {
			return nil, fmt.Errorf("insert_after %q: %w", s.InsertAfter, err)
		}
	}
	return c, nil
}

// edit returns the new contents and a Field describing the edit.
func (c *compiledLine) edit(content []byte) ([]byte, Field) {
	text := string(content)
	trailingNL := strings.HasSuffix(text, "\n")
	var lines []string
	if text != "" {
		lines = strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	}
	matches := func(l string) bool {
		if c.re != nil {
			return c.re.MatchString(l)
		}
		return l == c.Line
	}
	if c.State == "absent" {
		kept := lines[:0:0]
		for _, l := range lines {
			if !matches(l) {
				kept = append(kept, l)
			}
		}
		n := len(lines) - len(kept)
		return join(kept, trailingNL), Field{Name: "line", Before: "present (" + strconv.Itoa(n) + ")", After: "absent"}
	}
	if c.re != nil {
		last := -1
		for i, l := range lines {
			if c.re.MatchString(l) {
				last = i
			}
		}
		if last >= 0 {
			old := lines[last]
			out := append([]string(nil), lines...)
			out[last] = c.Line
			return join(out, trailingNL), Field{Name: "line", Before: old, After: c.Line}
		}
	}
	for _, l := range lines {
		if l == c.Line {
			return content, Field{}
		}
	}
	at := len(lines)
	if c.after != nil {
		for i, l := range lines {
			if c.after.MatchString(l) {
				at = i + 1
			}
		}
	}
	out := make([]string, 0, len(lines)+1)
	out = append(out, lines[:at]...)
	out = append(out, c.Line)
	out = append(out, lines[at:]...)
	// A line added at the end gets its newline.
	return join(out, trailingNL || at == len(lines)), Field{Name: "line", Before: "", After: c.Line}
}

// join joins lines into file contents, ending with a newline when
// trailingNL is set.
func join(lines []string, trailingNL bool) []byte {
	if len(lines) == 0 {
		return []byte{}
	}
	s := strings.Join(lines, "\n")
	if trailingNL {
		s += "\n"
	}
	return []byte(s)
}
