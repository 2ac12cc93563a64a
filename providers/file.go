package providers

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// FileSpec is the `file` resource: a regular file's contents and
// attributes.
type FileSpec struct {
	Path      string  `opsmop:"path" required:"true" doc:"absolute path of the file on the host"`
	Content   *string `opsmop:"content" doc:"the file's contents, given inline (template-rendered like every string value)"`
	Src       string  `opsmop:"src" local:"file" doc:"a local file to copy, relative to the policy directory"`
	Template  string  `opsmop:"template" local:"template" doc:"a local template to render and copy, relative to the policy directory"`
	Mode      string  `opsmop:"mode" doc:"octal permissions as a quoted string, e.g. \"0644\"; unset: 0644 for a new file, unchanged for an existing one"`
	Owner     string  `opsmop:"owner" doc:"owner (user name or numeric uid); unset: unchanged (the connecting user for a new file)"`
	Group     string  `opsmop:"group" doc:"group (name or numeric gid); unset: unchanged"`
	State     string  `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the file exists with these contents and attributes; absent: it does not exist"`
	Backup    bool    `opsmop:"backup" doc:"before replacing or removing the file, keep the previous version beside it as PATH.YYYYMMDDTHHMMSS~"`
	Sensitive bool    `opsmop:"sensitive" doc:"never show the contents: no diff, and the content field shows only that it changes"`
	// ValidateCmd is the validate key (the name Validate is the method's).
	ValidateCmd string `opsmop:"validate" doc:"a command that must accept the new contents before they replace the file: it runs on the host on the uploaded temp file, %s standing for its path (e.g. \"visudo -cf %s\"; %% is a literal %); a non-zero exit status leaves the file as it was"`
	// seKeys are seuser, serole, setype and selevel (selinux.go).
	seKeys
}

// Validate checks the rules of a file that need no host (see
// Validator): path is absolute; state is present or absent; at most one
// of content, src and template, and none with state = "absent"; mode is
// octal; owner and group are names or numeric ids; validate is given only
// with contents to check, and holds %s bare (checkValidate); the se* keys
// are SELinux names, and not given with state = "absent".
func (s *FileSpec) Validate() error {
	var p problems
	p.path("path", s.Path)
	p.enum("state", s.State, "present", "absent")
	var given []string
	if s.Content != nil {
		given = append(given, "content")
	}
	if s.Src != "" {
		given = append(given, "src")
	}
	if s.Template != "" {
		given = append(given, "template")
	}
	if len(given) > 1 {
		p.add(given[1], "give only one of content, src and template, not both %s and %s", given[0], given[1])
	}
	if s.State == "absent" && len(given) > 0 {
		p.add("state", "state = \"absent\" takes no content, src or template: remove %s, or set state = \"present\"", given[0])
	}
	p.attrs(s.Mode, s.Owner, s.Group)
	if s.ValidateCmd != "" {
		switch {
		case s.State == "absent":
			p.add("validate", "validate checks new contents before they are written: state = \"absent\" writes none, remove validate")
		case len(given) == 0:
			p.add("validate", "validate checks new contents before they are written: give content, src or template (without them only the attributes are managed and nothing is written)")
		}
		p.validateCmd(s.ValidateCmd)
	}
	s.seKeys.validate(&p)
	if s.State == "absent" && s.seKeys.set() {
		p.add("state", "state = \"absent\" removes the file: remove seuser, serole, setype and selevel, or set state = \"present\"")
	}
	return p.err()
}

// fileProvider implements `file` (and, through templateProvider,
// `template`).
type fileProvider struct {
	// readBackMax replaces readBackMax when > 0 (tests).
	readBackMax int64
}

// readBackMax is the largest file a probe reads back to hash it on the
// controller when the host has no hash tool (sha256sum, openssl,
// shasum). Larger wanted contents make Check fail with a *NoHashError
// rather than write a file whose result cannot be verified.
const readBackMax = 64 << 20

// readBackLimit is the read-back limit in effect.
func (f fileProvider) readBackLimit() int64 {
	if f.readBackMax > 0 {
		return f.readBackMax
	}
	return readBackMax
}

// NoHashError is a file whose contents cannot be compared on its host:
// none of sha256sum, openssl and shasum works there, and the wanted
// contents are larger than what a probe reads back to hash on the
// controller. Check returns it before anything is written.
type NoHashError struct {
	// Host is the host's inventory name ("" when unknown).
	Host string
	// Path is the file on the host.
	Path string
	// Size is the size of the wanted contents, in bytes.
	Size int64
	// Limit is the most a probe reads back, in bytes.
	Limit int64
}

// Error says what is missing and what to install.
func (e *NoHashError) Error() string {
	host := "the host"
	if e.Host != "" {
		host = "host " + e.Host
	}
	return fmt.Sprintf("%s has no working sha256sum, openssl or shasum to compare %s, and its %s of contents exceed the %s opsmop reads back to hash itself: install coreutils (sha256sum), openssl or perl (shasum) on %s",
		host, e.Path, byteSize(e.Size), byteSize(e.Limit), host)
}

// byteSize renders n bytes for a message: "70000000 bytes (66.8 MiB)".
func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%d bytes (%.1f KiB)", n, float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// hostName is the inventory name of the request's host (the `host.name`
// variable), or "" when it cannot be evaluated.
func hostName(req *Request) string {
	if req == nil || req.Eval == nil {
		return ""
	}
	v, err := req.Eval("host.name", nil)
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	return s
}

// filePlan is what Apply does for a file.
type filePlan struct {
	Path   string
	Remove bool
	// Upload: replace the contents (with Mode/Owner/Group applied).
	Upload bool
	Data   []byte // contents held in memory, or nil when Src is streamed
	Src    string // local file re-opened at apply time when Data is nil
	Size   int64
	Sum    string // expected sha256 of what is uploaded
	Mode   uint32 // 0: the host's default
	Owner  string
	Group  string
	// OwnerKept: Owner and Group are the replaced file's own (numeric
	// ids), so that a step skips the chown when the file and the temp
	// file both belong to the writer's user and group.
	OwnerKept bool
	// Attribute-only changes (no upload).
	Chmod       bool
	ChownOwner  string
	ChownGroup  string
	Backup      bool // copy the existing file aside first
	BackupMoved bool // for Remove: move it aside instead of deleting
	// MkdirParent creates missing parent directories before the upload
	// (line with create = true, like Ansible's lineinfile).
	MkdirParent bool
	// Validate is the validate command (with %s) the upload runs on the
	// temp file before the rename; "" for none.
	Validate string
	// Sensitive hides the validate command's output, which may quote the
	// contents.
	Sensitive bool
	// SE sets parts of the SELinux context once the file is in place.
	SE seChange
}

// labels names the instance by its path, except in the errors of Probe,
// which name only the type.
func (fileProvider) labels(s *FileSpec) errLabels {
	return errLabels{Probe: "file", Check: "file " + s.Path, Apply: "file " + s.Path}
}

// Probe reports the path's type and attributes, the sha256 of its
// contents computed on the host, and, for a small text file that is not
// sensitive, the contents themselves for the diff. On a host without a
// hash tool it reads back the whole file instead, when its size is that
// of the wanted contents, for Check to hash here (readBackScript); when
// the wanted contents exceed the read-back limit it asks whether there
// is a hash tool at all (noHashToolScript).
func (f fileProvider) Probe(s *FileSpec, req *Request) (string, error) {
	script := statScript(s.Path)
	if s.State == "absent" {
		return script, nil
	}
	if s.seKeys.set() {
		script += seProbeScript()
	}
	if s.Content == nil && s.Src == "" && s.Template == "" {
		// Only attributes are managed: the contents are not compared.
		return script, nil
	}
	sum, size, diffable := probeSum(req, s)
	readBack := sum != "" && size <= f.readBackLimit()
	if sum != "" && !readBack {
		script += noHashToolScript()
	}
	script += "if [ \"$t\" = file ]; then\n" + hashScript(s.Path)
	// At most one blob: the read-back or the diff's.
	var branches []string
	if readBack {
		branches = append(branches, readBackCond(size)+"; then\n"+readBackScript())
	}
	if !s.Sensitive {
		// The current contents are fetched for the diff, so only when
		// they differ from the wanted ones (when the wanted sum is known
		// here) and a diff can be shown (not for a large src).
		switch {
		case !diffable:
		case sum != "":
			branches = append(branches, "[ \"$s\" != "+sum+" ]; then\n"+blobScript(maxDiffSize, true))
		default:
			branches = append(branches, "true; then\n"+blobScript(maxDiffSize, true))
		}
	}
	for i, b := range branches {
		if i == 0 {
			script += "if " + b
		} else {
			script += "elif " + b
		}
	}
	if len(branches) > 0 {
		script += "fi\n"
	}
	script += "fi\n"
	return script, nil
}

// ProbeVars says that the probe may run inline (connection.Probe) and
// names the variables it sets.
func (fileProvider) ProbeVars() []string { return append(pathProbeVars(), seProbeVars()...) }

// ProbePath names the path the probe looks at, for ProbePrelude.
func (fileProvider) ProbePath(s *FileSpec) ProbedPath {
	return ProbedPath{Path: s.Path, Hash: s.State != "absent" && (s.Content != nil || s.Src != "" || s.Template != "")}
}

// Check compares the wanted file with the probed one: by the sum the
// host computed, else by the sum of the contents read back, else (no
// hash tool, and a size other than the wanted one) by size.
func (f fileProvider) Check(s *FileSpec, req *Request, probe connection.Result) (*Change, error) {
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
			return nil, fmt.Errorf("is a directory, not a file: use a directory resource with state = \"absent\" to remove it")
		}
		return &Change{
			Action: Delete,
			Fields: []Field{{Name: "state", Before: "present", After: "absent"}},
			Plan:   filePlan{Path: s.Path, Remove: true, BackupMoved: s.Backup && typ == "file"},
		}, nil
	}

	switch typ {
	case "absent", "file", "link":
	case "directory":
		return nil, fmt.Errorf("is a directory, not a file: remove it first, or use a directory resource")
	case "other":
		return nil, fmt.Errorf("exists and is not a regular file (a device, fifo or socket): refusing to replace it")
	default:
		return nil, fmt.Errorf("malformed probe output: type=%q", typ)
	}
	if typ == "file" && p.get("readable") == "0" {
		return nil, fmt.Errorf("cannot read the file to compare it: run as a user that can (sudo = true)")
	}
	hasSource := s.Content != nil || s.Src != "" || s.Template != ""
	if !hasSource {
		switch typ {
		case "absent":
			return nil, fmt.Errorf("does not exist, and no content, src or template is given to create it")
		case "link":
			return nil, fmt.Errorf("is a symlink: give content, src or template to replace it with a file, or manage it with a link resource")
		}
	}
	wantMode, _ := parseMode(s.Mode)
	pl := filePlan{Path: s.Path, Backup: s.Backup && typ == "file"}
	ch := &Change{Sensitive: s.Sensitive}
	if typ == "absent" {
		ch.Action = Create
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: "absent", After: "present"})
	} else {
		ch.Action = Update
		if typ == "link" {
			ch.Fields = append(ch.Fields, Field{Name: "type", Before: "link", After: "file"})
		}
	}

	contentChanged := false
	if hasSource {
		if err := loadSource(req, s, &pl); err != nil {
			return nil, err
		}
		if p.get("hashtool") == "0" {
			return nil, &NoHashError{Host: hostName(req), Path: s.Path, Size: pl.Size, Limit: f.readBackLimit()}
		}
		cur, before := "", ""
		if typ == "file" {
			cur = p.get("sha256")
			if cur != "" && !isSum(cur) {
				if len(cur) > 40 {
					cur = cur[:40] + "…"
				}
				return nil, fmt.Errorf("the host's hash tool (sha256sum, openssl or shasum) printed %q, not a sha256: fix or remove it", cur)
			}
			if cur == "" && p.hasBlob {
				// No hash tool: the probe sent the contents back.
				cur = sha256Hex(p.blob)
			}
			before = shortSum(cur)
			if cur == "" {
				// No hash tool and not read back: only a file of
				// another size is not read back (readBackCond).
				if st.Size == pl.Size {
					if pl.Size > f.readBackLimit() {
						return nil, &NoHashError{Host: hostName(req), Path: s.Path, Size: pl.Size, Limit: f.readBackLimit()}
					}
					return nil, fmt.Errorf("malformed probe output: no sha256 and no contents for a file of the wanted size (%d bytes)", pl.Size)
				}
				before = byteSize(st.Size)
			}
		}
		contentChanged = typ != "file" || cur != pl.Sum
		if contentChanged {
			f := Field{Name: "content", Before: before, After: shortSum(pl.Sum)}
			if s.Sensitive {
				f = Field{Name: "content", Before: "<sensitive>", After: "<sensitive, changed>"}
				if typ == "absent" {
					f.Before = ""
				}
			}
			ch.Fields = append(ch.Fields, f)
			if !s.Sensitive {
				ch.Diff, ch.Message = fileDiff(s.Path, typ, p, pl.Data, ch.Message)
			}
		}
	}

	exists := typ == "file"
	modeChanged := s.Mode != "" && (!exists || st.Mode != wantMode)
	ownerChanged := s.Owner != "" && (!exists || !st.ownerIs(s.Owner))
	groupChanged := s.Group != "" && (!exists || !st.groupIs(s.Group))
	if modeChanged {
		ch.Fields = append(ch.Fields, Field{Name: "mode", Before: beforeIf(exists, fmtMode(st.Mode)), After: fmtMode(wantMode)})
	}
	if ownerChanged {
		ch.Fields = append(ch.Fields, Field{Name: "owner", Before: beforeIf(exists, st.owner()), After: s.Owner})
	}
	if groupChanged {
		ch.Fields = append(ch.Fields, Field{Name: "group", Before: beforeIf(exists, st.group()), After: s.Group})
	}
	seFields, seCh, err := s.seKeys.check(p, exists)
	if err != nil {
		return nil, err
	}
	ch.Fields = append(ch.Fields, seFields...)
	pl.SE = seCh

	switch {
	case contentChanged:
		// The upload replaces the file: carry over what the spec leaves
		// unset so that replacing contents keeps the attributes.
		pl.Upload = true
		if s.ValidateCmd != "" {
			// Check writes nothing, so it cannot run the command: it says
			// that apply will.
			pl.Validate, pl.Sensitive = s.ValidateCmd, s.Sensitive
			ch.Message = joinMessage(ch.Message, "not validated yet: apply runs validate ("+s.ValidateCmd+") on the new contents before they replace the file")
		}
		pl.Mode, pl.Owner, pl.Group = st.replaced(exists, s.Mode, wantMode, s.Owner, s.Group)
		pl.OwnerKept = exists && pl.Owner == st.UID && pl.Group == st.GID
	case modeChanged || ownerChanged || groupChanged || !seCh.empty():
		pl.Chmod = modeChanged
		pl.Mode = wantMode
		if ownerChanged {
			pl.ChownOwner = s.Owner
		}
		if groupChanged {
			pl.ChownGroup = s.Group
		}
		pl.Backup = false
	default:
		return &Change{Action: None}, nil
	}
	ch.Plan = pl
	return ch, nil
}

// Apply replaces, removes or re-attributes the file as planned.
func (fileProvider) Apply(ctx context.Context, h Host, s *FileSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[filePlan](ch, "file")
	if err != nil {
		return nil, err
	}
	if err := applyFile(ctx, h, req, pl); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step where it can be one (fileStep).
func (fileProvider) ApplyStep(s *FileSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[filePlan](ch, "file")
	if err != nil {
		return Step{}, false, err
	}
	return fileStep(pl, time.Now())
}

// TemplateSpec is the `template` resource: shorthand for a `file` with
// `template`.
type TemplateSpec struct {
	Src       string `opsmop:"src" required:"true" local:"template" doc:"the local template, relative to the policy directory"`
	Path      string `opsmop:"path" required:"true" doc:"absolute path of the file on the host"`
	Mode      string `opsmop:"mode" doc:"octal permissions as a quoted string, e.g. \"0644\"; unset: 0644 for a new file, unchanged for an existing one"`
	Owner     string `opsmop:"owner" doc:"owner (user name or numeric uid); unset: unchanged"`
	Group     string `opsmop:"group" doc:"group (name or numeric gid); unset: unchanged"`
	Backup    bool   `opsmop:"backup" doc:"before replacing the file, keep the previous version beside it as PATH.YYYYMMDDTHHMMSS~"`
	Sensitive bool   `opsmop:"sensitive" doc:"never show the rendered contents: no diff"`
	// ValidateCmd is the validate key (the name Validate is the method's).
	ValidateCmd string `opsmop:"validate" doc:"a command that must accept the rendered contents before they replace the file: it runs on the host on the uploaded temp file, %s standing for its path (e.g. \"visudo -cf %s\"; %% is a literal %); a non-zero exit status leaves the file as it was"`
	// seKeys are seuser, serole, setype and selevel (selinux.go).
	seKeys
}

// Validate checks the rules of a template that need no host (see
// Validator): src is given; path is absolute; mode is octal; owner and
// group are names or numeric ids; validate holds %s bare
// (checkValidate).
func (s *TemplateSpec) Validate() error {
	var p problems
	if s.Src == "" {
		p.add("src", "src is empty: give the local template file, relative to the policy directory")
	}
	p.path("path", s.Path)
	p.attrs(s.Mode, s.Owner, s.Group)
	if s.ValidateCmd != "" {
		p.validateCmd(s.ValidateCmd)
	}
	s.seKeys.validate(&p)
	return p.err()
}

// templateProvider implements `template` with file's probe, check and
// apply on the same Request (only the spec is translated), so that the
// rendering kept in req.Memo serves them all.
type templateProvider struct {
	// readBackMax is fileProvider's.
	readBackMax int64
}

// labels names the instance by its path.
func (templateProvider) labels(s *TemplateSpec) errLabels {
	l := "template " + s.Path
	return errLabels{Probe: l, Check: l, Apply: l}
}

// Probe is file's probe.
func (t templateProvider) Probe(s *TemplateSpec, req *Request) (string, error) {
	return fileProvider(t).Probe(s.fileSpec(), req)
}

// ProbeVars says that the probe may run inline (connection.Probe) and
// names the variables it sets.
func (templateProvider) ProbeVars() []string { return append(pathProbeVars(), seProbeVars()...) }

// ProbePath names the path the probe looks at, for ProbePrelude.
func (templateProvider) ProbePath(s *TemplateSpec) ProbedPath {
	return ProbedPath{Path: s.Path, Hash: s.Src != ""}
}

// Check is file's check with the template as source.
func (t templateProvider) Check(s *TemplateSpec, req *Request, probe connection.Result) (*Change, error) {
	return fileProvider(t).Check(s.fileSpec(), req, probe)
}

// Apply is file's apply.
func (templateProvider) Apply(ctx context.Context, h Host, s *TemplateSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[filePlan](ch, "template")
	if err != nil {
		return nil, err
	}
	if err := applyFile(ctx, h, req, pl); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is file's ApplyStep.
func (templateProvider) ApplyStep(s *TemplateSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[filePlan](ch, "template")
	if err != nil {
		return Step{}, false, err
	}
	return fileStep(pl, time.Now())
}

// fileSpec is the file spec that s is shorthand for.
func (s *TemplateSpec) fileSpec() *FileSpec {
	return &FileSpec{Path: s.Path, Template: s.Src, Mode: s.Mode, Owner: s.Owner, Group: s.Group, State: "present", Backup: s.Backup, Sensitive: s.Sensitive, ValidateCmd: s.ValidateCmd, seKeys: s.seKeys}
}

// probeSum is the sha256 and size of the wanted contents (sum "" when
// they cannot be loaded, e.g. a template that fails to render: Check
// reports that), and whether a diff against the current contents is
// possible at all (not for a src file larger than maxDiffSize).
func probeSum(req *Request, s *FileSpec) (sum string, size int64, diffable bool) {
	var pl filePlan
	if err := loadSource(req, s, &pl); err != nil {
		return "", 0, true
	}
	return pl.Sum, pl.Size, pl.Data != nil
}

// beforeIf is v as a Field's Before: "" when the file does not exist.
func beforeIf(exists bool, v string) string {
	if exists {
		return v
	}
	return ""
}

// fileDiff returns the diff between the probed contents and data, or a
// message saying why there is none.
func fileDiff(p, typ string, probe *probeOutput, data []byte, msg string) (string, string) {
	note := func(s string) string {
		if msg != "" {
			return msg + "; " + s
		}
		return s
	}
	if data == nil || !isText(data) {
		return "", note("new contents are binary or larger than 64 KiB: no diff")
	}
	switch typ {
	case "absent":
		return unifiedDiff(p, nil, data, true), msg
	case "file":
		if probe.hasBlob && isText(probe.blob) {
			return unifiedDiff(p, probe.blob, data, false), msg
		}
		return "", note("current contents are binary or larger than 64 KiB: no diff")
	}
	return "", msg
}

// loadedSource is what readSource found: the fields of a filePlan it
// sets, or the error.
type loadedSource struct {
	data []byte
	src  string
	size int64
	sum  string
	err  error
}

// loadSource fills pl.Data (or pl.Src for a large src file), pl.Size and
// pl.Sum from content, template or src. They are read once per instance
// and kept in req.Memo, so that Probe, Check, Apply and the re-check all
// see the same bytes (a template rendering the time renders it once).
func loadSource(req *Request, s *FileSpec, pl *filePlan) error {
	if req.Memo == nil {
		return fmt.Errorf("internal error: the request has no Memo (the engine allocates one per instance)")
	}
	if req.Memo.source == nil {
		var got filePlan
		err := readSource(req, s, &got)
		req.Memo.source = &loadedSource{data: got.Data, src: got.Src, size: got.Size, sum: got.Sum, err: err}
	}
	l := req.Memo.source
	if l.err != nil {
		return l.err
	}
	pl.Data, pl.Src, pl.Size, pl.Sum = l.data, l.src, l.size, l.sum
	return nil
}

// readSource reads the wanted contents for loadSource, uncached.
func readSource(req *Request, s *FileSpec, pl *filePlan) error {
	switch {
	case s.Content != nil:
		pl.Data = []byte(*s.Content)
	case s.Template != "":
		if req.Render == nil {
			return fmt.Errorf("template %s: no template renderer in this context", s.Template)
		}
		b, err := req.Render(s.Template)
		if err != nil {
			return fmt.Errorf("template %s: %w", s.Template, err)
		}
		if b == nil {
			// An empty rendering: Data nil would mean a src to stream.
			b = []byte{}
		}
		pl.Data = b
	case s.Src != "":
		if req.Open == nil {
			return fmt.Errorf("src %s: no local file access in this context", s.Src)
		}
		if req.Sum != nil {
			if sum, size, err := req.Sum(s.Src); err == nil && size > maxDiffSize {
				pl.Src, pl.Size, pl.Sum = s.Src, size, sum
				return nil
			}
		}
		rc, size, err := req.Open(s.Src)
		if err != nil {
			return fmt.Errorf("src %s: %w", s.Src, err)
		}
		defer rc.Close()
		if size <= maxDiffSize {
			b, err := io.ReadAll(io.LimitReader(rc, maxDiffSize+1))
			if err != nil {
				return fmt.Errorf("src %s: read: %w", s.Src, err)
			}
			if int64(len(b)) <= maxDiffSize {
				pl.Data = b
				break
			}
			return fmt.Errorf("src %s: file grew while being read; try again", s.Src)
		}
		h := sha256.New()
		n, err := io.Copy(h, rc)
		if err != nil {
			return fmt.Errorf("src %s: read: %w", s.Src, err)
		}
		pl.Src, pl.Size, pl.Sum = s.Src, n, hex.EncodeToString(h.Sum(nil))
		return nil
	}
	pl.Size = int64(len(pl.Data))
	pl.Sum = sha256Hex(pl.Data)
	return nil
}

// backupPath is where the previous version of p is kept.
func backupPath(p string, now time.Time) string {
	return p + "." + now.Format("20060102T150405") + "~"
}

func applyFile(ctx context.Context, h Host, req *Request, pl filePlan) error {
	qp := shell.Quote(pl.Path)
	if pl.Remove {
		what, script := fileRemoveScript(pl, time.Now())
		_, err := run(ctx, h, what, script, nil)
		return err
	}
	backup := ""
	if pl.Backup {
		backup = backupPath(pl.Path, time.Now())
		if _, err := run(ctx, h, "backup", backupCmd(pl.Path, backup), nil); err != nil {
			return err
		}
	}
	if pl.Upload && pl.MkdirParent {
		if _, err := run(ctx, h, "create parent directory", mkdirParentCmd(pl.Path), nil); err != nil {
			return err
		}
	}
	if pl.Upload {
		var r io.Reader
		if pl.Data != nil {
			r = bytes.NewReader(pl.Data)
		} else {
			if req == nil || req.Open == nil {
				return fmt.Errorf("src %s: no local file access in this context", pl.Src)
			}
			rc, size, err := req.Open(pl.Src)
			if err != nil {
				return fmt.Errorf("src %s: %w", pl.Src, err)
			}
			defer rc.Close()
			if size != pl.Size {
				return fmt.Errorf("src %s: changed since check (%d bytes, was %d): run again", pl.Src, size, pl.Size)
			}
			r = &verifyReader{r: rc, h: sha256.New(), want: pl.Sum, name: pl.Src}
		}
		opts := connection.UploadOptions{Mode: fileMode(pl.Mode), Owner: pl.Owner, Group: pl.Group}
		if req != nil {
			opts.Progress = req.Progress
		}
		if pl.Validate != "" {
			if err := checkValidate(pl.Validate); err != nil {
				return err
			}
			opts.Validate = func(tmp string) string {
				cmd, _ := validateCommand(pl.Validate, tmp) // checked above
				return cmd
			}
		}
		err := h.Upload(ctx, pl.Path, r, pl.Size, opts)
		if ve := (*connection.ValidateError)(nil); errors.As(err, &ve) {
			if pl.Sensitive {
				// The message is made when the error is wrapped: make it
				// again without the output.
				ve.Stdout, ve.Stderr, ve.Hidden = "", "", true
				who := "local"
				if ve.Host != "" {
					who = "host " + ve.Host
				}
				err = fmt.Errorf("%s: upload %s: %w", who, ve.Path, ve)
			}
			if backup != "" {
				// The file is unchanged: the backup of it would only be
				// clutter (best effort; the refusal is the error).
				_, _ = h.Run(ctx, "rm -f -- "+shell.Quote(backup), nil)
			}
		}
		if err != nil || pl.SE.empty() {
			return err
		}
		// The new file has the old one's context (or the policy
		// default): set the parts the spec gives.
		_, err = run(ctx, h, "set SELinux context", pl.SE.script(qp), nil)
		return err
	}
	what, script := fileAttrScript(pl)
	if script == "" {
		return nil
	}
	_, err := run(ctx, h, what, script, nil)
	return err
}

// fileRemoveScript is the script that removes pl.Path (moves it to its
// backup taken at now with pl.BackupMoved), and what it does for its
// error.
func fileRemoveScript(pl filePlan, now time.Time) (what, script string) {
	qp := shell.Quote(pl.Path)
	if pl.BackupMoved {
		return "remove", "mv -f -- " + qp + " " + shell.Quote(backupPath(pl.Path, now))
	}
	return "remove", "rm -f -- " + qp
}

// backupCmd copies the file p to backup, keeping its attributes.
func backupCmd(p, backup string) string {
	return "cp -p -- " + shell.Quote(p) + " " + shell.Quote(backup)
}

// mkdirParentCmd creates the missing parent directories of p.
func mkdirParentCmd(p string) string {
	return "mkdir -p -- " + shell.Quote(path.Dir(p))
}

// fileAttrScript is the script that sets pl's attributes without an
// upload (chown, chmod, the SELinux context), "" when there are none, and
// what it does for its error.
func fileAttrScript(pl filePlan) (what, script string) {
	qp := shell.Quote(pl.Path)
	if c := chownCmd(pl.ChownOwner, pl.ChownGroup, false, pl.Path); c != "" {
		script = c + "\n"
	}
	if pl.Chmod {
		// After chown, which may clear setuid/setgid bits.
		script += "chmod " + fmtMode(pl.Mode) + " -- " + qp + "\n"
	}
	if c := pl.SE.script(qp); c != "" {
		script += c + "\n"
	}
	if script == "" {
		return "", ""
	}
	return "set attributes", "set -e\n" + script
}

// fileStep is applyFile as one step (Stepper): a removal, an attribute
// change, or an upload of contents held in memory (pl.Data, at most
// MaxStepStdin bytes) without a validate command. ok is false for the
// others: an upload of a src file streamed from disk, or one whose
// validate command must run between writing and renaming (its refusal is
// a *connection.ValidateError, which a step cannot return), or no change
// at all. now is the time a backup is named by.
func fileStep(pl filePlan, now time.Time) (Step, bool, error) {
	switch {
	case pl.Remove:
		what, script := fileRemoveScript(pl, now)
		return Step{Script: script, What: what}, true, nil
	case !pl.Upload:
		what, script := fileAttrScript(pl)
		if script == "" {
			return Step{}, false, nil
		}
		return Step{Script: script, What: what}, true, nil
	case pl.Data == nil || int64(len(pl.Data)) != pl.Size || len(pl.Data) > MaxStepStdin || pl.Validate != "":
		return Step{}, false, nil
	case !path.IsAbs(pl.Path) || strings.ContainsRune(pl.Path, 0) || path.Clean(pl.Path) == "/":
		// Upload refuses it, saying why.
		return Step{}, false, nil
	}
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return Step{}, false, fmt.Errorf("temp file name: %w", err)
	}
	dst := path.Clean(pl.Path)
	dir := path.Dir(dst)
	tmp := path.Join(dir, ".opsmop-"+hex.EncodeToString(rnd[:])+".tmp")
	mode := pl.Mode & 0o7777
	if mode == 0 {
		mode = 0o644
	}
	st := Step{
		Stdin: append([]byte{}, pl.Data...),
		What:  "upload " + pl.Path,
		Temp:  []string{tmp},
	}
	written := uint32(0o600) // cat into a file created under umask 077
	if !pl.MkdirParent {
		// The directory exists (or the step says it does not): the
		// shell writes the contents into the temp file itself, with the
		// file's mode when umask can give it, and the script only
		// renames it (no cat, no wc, often no chmod).
		if mode&^0o666 == 0 {
			written = mode
		}
		st.WriteTo, st.WriteMode = tmp, written
	}
	st.Script = uploadStepScript(pl, dst, tmp, mode, written, st.WriteTo != "", now)
	return st, true, nil
}

// uploadStepScript is what applyFile does for an upload, with what
// connection's Upload does through the shell, as one script: the backup
// (pl.Backup, named by now) first; then, unless byShell (the shell wrote
// the contents to tmp already, Step.WriteTo, and says in opsmop_written
// whether it could), the missing parents (pl.MkdirParent) and the temp
// file tmp in dst's directory, created exclusively and private (umask
// 077, set -C), the contents appended from stdin and their size checked
// (where wc exists); then owner and group set (pl.Owner, pl.Group, as
// Upload's; skipped for a file that keeps the writer's own), mode set
// unless the file was created with it (written), tmp renamed over dst
// keeping its SELinux context (connection.SELinuxRename; a directory at
// dst is refused), and the parts of the context pl.SE gives. Every
// failure says which of these failed on stderr (as Upload's and
// applyFile's errors do) and removes tmp, so dst is as it was.
func uploadStepScript(pl filePlan, dst, tmp string, mode, written uint32, byShell bool, now time.Time) string {
	qd, qt, qf := shell.Quote(path.Dir(dst)), shell.Quote(tmp), shell.Quote(dst)
	dir := path.Dir(dst)
	say := func(msg string) string { return "printf '%s\\n' " + shell.Quote(msg) + " >&2" }
	// Only root sees every directory: for another user a directory it
	// cannot search looks missing.
	noDir := fmt.Sprintf("[ -d %s ] || { if [ \"$(id -u)\" = 0 ]; then %s; else printf '%%s (the directory does not exist, or %%s cannot reach it): no such directory\\n' %s \"$(id -un)\" >&2; fi; exit 3; }\n",
		qd, say("create temp file in "+dir+" (the directory does not exist): no such directory"), shell.Quote("create temp file in "+dir))
	cannotWrite := fmt.Sprintf("printf '%%s (%%s cannot write there): permission denied\\n' %s \"$(id -un)\" >&2; exit 4", shell.Quote("create temp file in "+dir))
	var b strings.Builder
	b.WriteString("__opsmop_fail() { rm -f -- " + qt + "; printf '%s\\n' \"$1\" >&2; exit \"$2\"; }\n")
	if pl.Backup {
		fmt.Fprintf(&b, "%s || __opsmop_fail %s 1\n", backupCmd(pl.Path, backupPath(pl.Path, now)), shell.Quote("backup: could not copy "+pl.Path+" aside"))
	}
	if byShell {
		b.WriteString("if [ \"${opsmop_written-1}\" != 0 ]; then\n" + noDir)
		fmt.Fprintf(&b, "[ -w %s ] || { %s; }\n", qd, cannotWrite)
		b.WriteString("__opsmop_fail 'write: could not write the temp file (is the disk full?)' 6\nfi\n")
	} else {
		if pl.MkdirParent {
			fmt.Fprintf(&b, "%s || { %s; exit 2; }\n", mkdirParentCmd(pl.Path), say("create parent directory: could not create "+dir))
		}
		b.WriteString("umask 077\n" + noDir)
		fmt.Fprintf(&b, "set -C\nprintf '' >%s || { [ -w %s ] || { %s; }; %s; exit 5; }\nset +C\n", qt, qd, cannotWrite, say("create temp file in "+dir+": failed"))
		fmt.Fprintf(&b, "cat >>%s || __opsmop_fail 'write: could not write the temp file' 6\n", qt)
		fmt.Fprintf(&b, "if command -v wc >/dev/null 2>&1; then __opsmop_n=$(wc -c <%s) || __opsmop_fail 'write: the temp file is gone' 6; [ $__opsmop_n -eq %d ] || __opsmop_fail \"write: the temp file has $__opsmop_n of %d bytes\" 10; fi\n",
			qt, pl.Size, pl.Size)
	}
	if c := shell.Chown(pl.Owner, pl.Group, false); c != "" {
		chown := fmt.Sprintf("%s %s || __opsmop_fail 'set owner/group: failed' 7", c, qt)
		if pl.OwnerKept {
			// The file keeps its owner: when it and the temp file are
			// the writer's (test builtins), there is nothing to change.
			chown = fmt.Sprintf("if ! { [ -O %s ] && [ -G %s ] && [ -G %s ]; }; then %s; fi", qf, qf, qt, chown)
		}
		b.WriteString(chown + "\n")
	}
	if written != mode || (pl.Owner != "" || pl.Group != "") && mode&0o6000 != 0 {
		// chown clears the setuid and setgid bits: chmod after it.
		fmt.Fprintf(&b, "chmod %04o %s || __opsmop_fail 'chmod: failed' 8\n", mode, qt)
	}
	fmt.Fprintf(&b, "if [ -d %s ]; then __opsmop_fail 'rename into place: the destination is a directory' 9; fi\n", qf)
	fmt.Fprintf(&b, "%s || __opsmop_fail 'rename into place: failed' 9\n", connection.SELinuxRename(qt, qf))
	if c := pl.SE.script(shell.Quote(pl.Path)); c != "" {
		fmt.Fprintf(&b, "%s || { %s; exit 11; }\n", c, say("set SELinux context: failed"))
	}
	return b.String()
}

// verifyReader hashes what it passes on and fails at EOF when the sum is
// not the one checked, so an upload of a file changed since check aborts
// (and the atomic upload leaves the target untouched).
type verifyReader struct {
	r    io.Reader
	h    hash.Hash
	want string
	name string
}

func (v *verifyReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if err == io.EOF {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("src %s: changed since check: run again", v.name)
		}
	}
	return n, err
}

// validate (file and template): a command run on the uploaded temp file
// before the rename (connection.UploadOptions.Validate), as Ansible's
// validate: %s is the temp file's path, %% a literal %.

// validateCommand is the validate template tmpl with every %s replaced by
// tmp, quoted with shell.Quote, and every %% by %. It fails, saying what
// to write instead, when tmpl has no %s, a % followed by anything else, a
// %s inside quotes (the path is quoted here: quotes around it would
// become part of the path, or split it), an unterminated quote, or a NUL
// byte.
func validateCommand(tmpl, tmp string) (string, error) {
	if strings.IndexByte(tmpl, 0) >= 0 {
		return "", fmt.Errorf("validate contains a NUL byte")
	}
	var b strings.Builder
	var quote byte // '\'' or '"' inside such quotes, else 0
	n := 0
	for i := 0; i < len(tmpl); i++ {
		c := tmpl[i]
		switch {
		case c == '%':
			if i+1 == len(tmpl) {
				return "", fmt.Errorf("validate ends with a lone %%: write %%s for the temp file's path, %%%% for a literal percent sign")
			}
			switch tmpl[i+1] {
			case 's':
				if quote != 0 {
					return "", fmt.Errorf("validate has %%s inside %s quotes: opsmop quotes the temp file's path itself, so write %%s bare (e.g. \"visudo -cf %%s\")", quoteName(quote))
				}
				b.WriteString(shell.Quote(tmp))
				n++
			case '%':
				b.WriteByte('%')
			default:
				r, _ := utf8.DecodeRuneInString(tmpl[i+1:])
				return "", fmt.Errorf("validate has %q: write %%s for the temp file's path, %%%% for a literal percent sign", "%"+string(r))
			}
			i++
			continue
		case quote == '\'':
			if c == '\'' {
				quote = 0
			}
		case c == '\\':
			// The next character is quoted (a % is still read as one).
			if i+1 < len(tmpl) && tmpl[i+1] != '%' {
				b.WriteByte(c)
				i++
				c = tmpl[i]
			}
		case quote == '"':
			if c == '"' {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		}
		b.WriteByte(c)
	}
	if quote != 0 {
		return "", fmt.Errorf("validate has an unterminated %s quote", quoteName(quote))
	}
	if n == 0 {
		return "", fmt.Errorf("validate has no %%s: write it where the temp file's path goes, e.g. \"visudo -cf %%s\"")
	}
	return b.String(), nil
}

// quoteName names a quote character for validateCommand's messages.
func quoteName(q byte) string {
	if q == '"' {
		return "double"
	}
	return "single"
}

// checkValidate checks a validate template (see validateCommand).
func checkValidate(tmpl string) error {
	_, err := validateCommand(tmpl, "/tmp/x")
	return err
}

// validateCmd checks the validate key (a template is checked once
// rendered).
func (p *problems) validateCmd(v string) {
	if !templated(v) {
		p.addErr("validate", checkValidate(v))
	}
}

// joinMessage appends note to a Change's message.
func joinMessage(msg, note string) string {
	if msg == "" {
		return note
	}
	return msg + "; " + note
}
