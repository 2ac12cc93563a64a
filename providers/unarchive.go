package providers

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/ulikunitz/xz"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// UnarchiveSpec is the `unarchive` resource: an archive (local, or on the
// host with remote_src) inspected on the controller, refused if any entry
// would land outside path, and extracted into path on the host.
type UnarchiveSpec struct {
	Src       string `opsmop:"src" required:"true" local:"file" doc:"the archive: a local file relative to the policy directory, or with remote_src an absolute path on the host; .tar, .tar.gz or .tgz, .tar.xz, .zip (the format is read from the name)"`
	RemoteSrc bool   `opsmop:"remote_src" doc:"src is already on the host (an absolute path there): it is read back and checked on the controller, then extracted on the host from that file"`
	Path      string `opsmop:"path" required:"true" doc:"absolute path of the directory the archive is extracted into; created (mkdir -p) when missing"`
	Owner     string `opsmop:"owner" doc:"owner (user name or numeric uid) of every extracted entry; unset: the connecting or become user"`
	Group     string `opsmop:"group" doc:"group (name or numeric gid) of every extracted entry; unset: that user's group"`
	Creates   string `opsmop:"creates" doc:"absolute path on the host: when it exists, nothing is checked or extracted (as Ansible's creates)"`
}

// maxUnarchiveSize bounds the archive (local, or read back from the host)
// and what it expands to, both held in memory on the controller.
const maxUnarchiveSize = 1 << 30

// IsLocal reports whether key names a local file (see LocalChooser): src
// does, unless remote_src makes it a path on the host.
func (s *UnarchiveSpec) IsLocal(key string) bool {
	return key != "src" || !s.RemoteSrc
}

// Validate checks the rules of an unarchive that need no host (see
// Validator): src has a supported extension (and with remote_src is
// absolute), path and creates are absolute, owner and group are names or
// numeric ids.
func (s *UnarchiveSpec) Validate() error {
	var p problems
	switch {
	case s.Src == "" && s.RemoteSrc:
		p.add("src", "src is required: the absolute path of the archive on the host (remote_src = true)")
	case s.Src == "":
		p.add("src", "src is required: the local archive to extract")
	case templated(s.Src):
	case s.RemoteSrc && checkPath("src", s.Src) != nil:
		p.add("src", "%v (with remote_src = true, src is the archive's path on the host; without it, a local file relative to the policy directory)", checkPath("src", s.Src))
	case archiveFormat(s.Src) == "":
		p.add("src", "src %q is not a supported archive: its name must end in .tar, .tar.gz, .tgz, .tar.xz or .zip", s.Src)
	}
	p.path("path", s.Path)
	if s.Creates != "" {
		p.path("creates", s.Creates)
	}
	p.attrs("", s.Owner, s.Group)
	return p.err()
}

// archiveFormat returns tar, tgz, txz or zip from name's extension, or ""
// when it is none of them.
func archiveFormat(name string) string {
	n := strings.ToLower(name)
	switch {
	case strings.HasSuffix(n, ".tar.gz"), strings.HasSuffix(n, ".tgz"):
		return "tgz"
	case strings.HasSuffix(n, ".tar.xz"), strings.HasSuffix(n, ".txz"):
		return "txz"
	case strings.HasSuffix(n, ".tar"):
		return "tar"
	case strings.HasSuffix(n, ".zip"):
		return "zip"
	}
	return ""
}

// Entry kinds of an archive.
const (
	entryFile     = "file"
	entryDir      = "directory"
	entrySymlink  = "symlink"
	entryHardlink = "hardlink"
)

// archiveEntry is one member of an archive, its name made relative and
// clean.
type archiveEntry struct {
	Name string
	Kind string
	Size int64
	Mode int64
	// Link is a symlink's target, or a hardlink's entry name.
	Link string
	data []byte
}

// ArchiveEntryError is an archive member refused before anything is
// extracted: it would land outside path, or is a kind opsmop does not
// extract.
type ArchiveEntryError struct {
	Entry  string
	Reason string
}

// Error names the entry and why it is refused.
func (e *ArchiveEntryError) Error() string {
	return fmt.Sprintf("archive entry %q refused: %s; nothing was extracted", e.Entry, e.Reason)
}

// readArchive returns the entries of the archive data in format, with
// their contents, and checks them all with checkEntries.
func readArchive(data []byte, format string) ([]archiveEntry, error) {
	var entries []archiveEntry
	var total int64
	add := func(e archiveEntry) error {
		total += e.Size
		if total > maxUnarchiveSize {
			return fmt.Errorf("the archive expands to more than %s: opsmop extracts archives up to that size", byteSize(maxUnarchiveSize))
		}
		entries = append(entries, e)
		return nil
	}
	if format == "zip" {
		zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return nil, fmt.Errorf("not a readable zip archive: %w", err)
		}
		for _, f := range zr.File {
			e := archiveEntry{Name: f.Name, Mode: int64(f.Mode().Perm())}
			m := f.Mode()
			switch {
			case m.IsDir():
				e.Kind = entryDir
			case m&fs.ModeSymlink != 0:
				e.Kind = entrySymlink
			case m.IsRegular():
				e.Kind = entryFile
			default:
				return nil, &ArchiveEntryError{Entry: f.Name, Reason: "a device, fifo or socket (only files, directories and links are extracted)"}
			}
			if e.Kind != entryDir {
				if f.UncompressedSize64 > maxUnarchiveSize {
					return nil, fmt.Errorf("archive entry %q is larger than %s", f.Name, byteSize(maxUnarchiveSize))
				}
				rc, err := f.Open()
				if err != nil {
					return nil, fmt.Errorf("archive entry %q: %w", f.Name, err)
				}
				b, err := io.ReadAll(io.LimitReader(rc, maxUnarchiveSize+1))
				rc.Close()
				if err != nil {
					return nil, fmt.Errorf("archive entry %q: %w", f.Name, err)
				}
				if e.Kind == entrySymlink {
					e.Link = string(b)
				} else {
					e.data, e.Size = b, int64(len(b))
				}
			}
			if err := add(e); err != nil {
				return nil, err
			}
		}
	} else {
		var r io.Reader = bytes.NewReader(data)
		switch format {
		case "tgz":
			zr, err := gzip.NewReader(r)
			if err != nil {
				return nil, fmt.Errorf("not a readable gzip archive: %w", err)
			}
			r = zr
		case "txz":
			xr, err := xz.NewReader(r)
			if err != nil {
				return nil, fmt.Errorf("not a readable xz archive: %w", err)
			}
			r = xr
		}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("not a readable tar archive: %w", err)
			}
			e := archiveEntry{Name: h.Name, Mode: h.Mode & 0o7777}
			switch h.Typeflag {
			case tar.TypeReg:
				e.Kind = entryFile
				if h.Size > maxUnarchiveSize {
					return nil, fmt.Errorf("archive entry %q is larger than %s", h.Name, byteSize(maxUnarchiveSize))
				}
				b, err := io.ReadAll(tr)
				if err != nil {
					return nil, fmt.Errorf("archive entry %q: %w", h.Name, err)
				}
				e.data, e.Size = b, int64(len(b))
			case tar.TypeDir:
				e.Kind = entryDir
			case tar.TypeSymlink:
				e.Kind, e.Link = entrySymlink, h.Linkname
			case tar.TypeLink:
				e.Kind, e.Link = entryHardlink, h.Linkname
			case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
				return nil, &ArchiveEntryError{Entry: h.Name, Reason: "a device node or fifo (only files, directories and links are extracted)"}
			default:
				return nil, &ArchiveEntryError{Entry: h.Name, Reason: fmt.Sprintf("tar entry type %q is not supported (only files, directories and links are extracted)", h.Typeflag)}
			}
			if err := add(e); err != nil {
				return nil, err
			}
		}
	}
	return checkEntries(entries)
}

// cleanEntryName returns an archive member's name relative to the
// extraction directory ("./a/b/" is "a/b"), "" for the directory itself,
// or an error when the name is absolute, has a ".." component, a
// backslash or a control character.
func cleanEntryName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("an empty name")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("its name has a control character")
		}
	}
	if strings.Contains(name, "\\") {
		return "", fmt.Errorf("its name has a backslash (a Windows path?)")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("an absolute name would be extracted outside path")
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("a \"..\" component would be extracted outside path")
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, "/"), nil
}

// resolveInside walks target (relative to dir, both inside the
// extraction directory) component by component and returns the clean
// path it names, or false when it leaves the extraction directory or
// goes through one of links (whose own targets could lead anywhere).
func resolveInside(dir, target string, links map[string]bool) (string, bool) {
	if strings.HasPrefix(target, "/") || target == "" {
		return "", false
	}
	var stack []string
	if dir != "" && dir != "." {
		stack = strings.Split(dir, "/")
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", false
			}
			stack = stack[:len(stack)-1]
			continue
		}
		if links[strings.Join(stack, "/")] && len(stack) > 0 {
			return "", false
		}
		stack = append(stack, c)
	}
	if len(stack) > 0 && links[strings.Join(stack[:len(stack)-1], "/")] {
		return "", false
	}
	return strings.Join(stack, "/"), true
}

// checkEntries cleans the entries' names and refuses any that would put
// something outside the extraction directory: ".." or absolute names,
// names under an entry that is a symlink, symlinks whose target leaves
// the directory or goes through another symlink, hardlinks to anything
// but an earlier regular file of the archive. The directory itself (".")
// is dropped; a later entry of the same name replaces an earlier one.
func checkEntries(in []archiveEntry) ([]archiveEntry, error) {
	links := map[string]bool{}
	var out []archiveEntry
	for _, e := range in {
		n, err := cleanEntryName(e.Name)
		if err != nil {
			return nil, &ArchiveEntryError{Entry: e.Name, Reason: err.Error()}
		}
		if n == "" {
			if e.Kind != entryDir {
				return nil, &ArchiveEntryError{Entry: e.Name, Reason: "it names the extraction directory itself"}
			}
			continue
		}
		e.Name = n
		if e.Kind == entrySymlink {
			links[n] = true
		}
		out = append(out, e)
	}
	files := map[string]bool{}
	idx := map[string]int{}
	var uniq []archiveEntry
	for _, e := range out {
		parts := strings.Split(e.Name, "/")
		for i := 1; i < len(parts); i++ {
			if links[strings.Join(parts[:i], "/")] {
				return nil, &ArchiveEntryError{Entry: e.Name, Reason: "it would be written through the symlink " + strconv.Quote(strings.Join(parts[:i], "/")) + " of the archive"}
			}
		}
		switch e.Kind {
		case entrySymlink:
			if _, ok := resolveInside(path.Dir(e.Name), e.Link, links); !ok {
				return nil, &ArchiveEntryError{Entry: e.Name, Reason: "symlink to " + strconv.Quote(e.Link) + " points outside path (or through another symlink)"}
			}
		case entryHardlink:
			t, err := cleanEntryName(e.Link)
			if err != nil || !files[t] {
				return nil, &ArchiveEntryError{Entry: e.Name, Reason: "hardlink to " + strconv.Quote(e.Link) + " is not to an earlier regular file of the archive"}
			}
			e.Link = t
		case entryFile:
			files[e.Name] = true
		}
		if i, ok := idx[e.Name]; ok {
			uniq[i] = e
			continue
		}
		idx[e.Name] = len(uniq)
		uniq = append(uniq, e)
	}
	return uniq, nil
}

// entryParents lists, in order and once each, the directories the
// entries are extracted through (every proper prefix of every name).
func entryParents(entries []archiveEntry) []string {
	seen := map[string]bool{}
	var out []string
	for _, e := range entries {
		parts := strings.Split(e.Name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
			}
		}
	}
	return out
}

// unarchiveProvider implements `unarchive`.
type unarchiveProvider struct{}

// unarchivePlan is what Apply does.
type unarchivePlan struct {
	Path   string
	Src    string
	Format string
	Sum    string
	Marker string
	Mkdir  bool
	Gzip   bool
	Owner  string
	Group  string
	// Remote is set for remote_src: src is a path on the host and the
	// marker also lists the entries (see manifest).
	Remote bool
	// Direct (remote_src only): the host extracts a private copy of src
	// with its own tar after verifying the copy's sha256 is Sum; unset,
	// the checked entries are uploaded as a tar stream as for a local src
	// (a zip, or the host lacks a hash tool or the decompressor).
	Direct bool
	// entries are the checked entries of the archive whose sha256 is Sum,
	// with their contents; nil when the check did not read the archive
	// (remote_src, archive unchanged): Apply then reads it back.
	entries []archiveEntry
}

// labels names the instance by its path.
func (unarchiveProvider) labels(s *UnarchiveSpec) errLabels {
	l := "unarchive " + s.Path
	return errLabels{Probe: l, Check: l, Apply: l}
}

// markerName is the file in path that records the sha256 of the archive
// last extracted from src there.
func markerName(src string) string {
	b := []byte(path.Base(strings.ReplaceAll(src, "\\", "/")))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '_'
		}
	}
	return ".opsmop-unarchive-" + string(b) + ".sha256"
}

// loadArchive reads src through req and returns its sha256 and checked
// entries.
func loadArchive(s *UnarchiveSpec, req *Request) (string, []archiveEntry, error) {
	if req == nil || req.Open == nil {
		return "", nil, fmt.Errorf("src %q: no local file access in this request", s.Src)
	}
	rc, size, err := req.Open(s.Src)
	if err != nil {
		return "", nil, err
	}
	defer rc.Close()
	if size > maxUnarchiveSize {
		return "", nil, fmt.Errorf("src %q is %s: opsmop extracts archives up to %s", s.Src, byteSize(size), byteSize(maxUnarchiveSize))
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxUnarchiveSize+1))
	if err != nil {
		return "", nil, fmt.Errorf("read src %q: %w", s.Src, err)
	}
	entries, err := readArchive(data, archiveFormat(s.Src))
	if err != nil {
		return "", nil, fmt.Errorf("src %q: %w", s.Src, err)
	}
	return sha256Hex(data), entries, nil
}

// Probe reports whether path is a directory, the marker's sum, whether
// creates exists, whether tar and gzip exist, which entries are missing
// or of another type (mis=INDEXES), and size, uid, gid, user and group of
// every regular file when none is missing (st=...).
func (unarchiveProvider) Probe(s *UnarchiveSpec, req *Request) (string, error) {
	if s.RemoteSrc {
		return remoteProbe(s), nil
	}
	var b strings.Builder
	var entries []archiveEntry
	if req != nil && req.Open != nil {
		// Without local file access (a policy only decoded) the probe
		// looks at path alone; Check then fails on the same lack.
		sum, es, err := loadArchive(s, req)
		if err != nil {
			return "", err
		}
		entries = es
		b.WriteString("echo probed=" + sum + "\n")
	}
	b.WriteString("p=" + shell.Quote(s.Path) + "\n")
	if s.Creates != "" {
		b.WriteString("if [ -e " + shell.Quote(s.Creates) + " ] || [ -L " + shell.Quote(s.Creates) + " ]; then echo creates=1; fi\n")
	}
	b.WriteString(`if [ -L "$p" ]; then echo dir=other; elif [ -d "$p" ]; then echo dir=1; elif [ -e "$p" ]; then echo dir=other; else echo dir=0; fi
if command -v tar >/dev/null 2>&1; then echo tar=1; fi
if command -v gzip >/dev/null 2>&1; then echo gzip=1; fi
`)
	b.WriteString("if [ -r \"$p\"/" + shell.Quote(markerName(s.Src)) + " ]; then mk=; read -r mk < \"$p\"/" + shell.Quote(markerName(s.Src)) + "; printf 'marker=%s\\n' \"$mk\"; fi\n")
	b.WriteString("if [ -d \"$p\" ] && cd \"$p\"; then m=\n")
	var files []string
	for i, e := range entries {
		q := shell.Quote("./" + e.Name)
		var test string
		switch e.Kind {
		case entryDir:
			test = "[ -d " + q + " ] && [ ! -L " + q + " ]"
		case entrySymlink:
			test = "[ -L " + q + " ]"
		default:
			test = "[ -f " + q + " ] && [ ! -L " + q + " ]"
			files = append(files, q)
		}
		b.WriteString(test + " || m=\"$m " + strconv.Itoa(i) + "\"\n")
	}
	b.WriteString("printf 'mis=%s\\n' \"$m\"\n")
	// Directories the entries go through must not be symlinks on the
	// host: tar would follow them out of path.
	b.WriteString("l=\n")
	for i, d := range entryParents(entries) {
		b.WriteString("[ ! -L " + shell.Quote("./"+d) + " ] || l=\"$l " + strconv.Itoa(i) + "\"\n")
	}
	b.WriteString("printf 'hl=%s\\n' \"$l\"\n")
	if len(files) > 0 {
		b.WriteString("if [ -z \"$m\" ]; then set -- $(stat -c '%s:%u:%g:%U:%G' -- " + strings.Join(files, " ") + " 2>/dev/null); printf 'st=%s\\n' \"$*\"; fi\n")
	}
	b.WriteString("cd /; fi\n")
	return b.String(), nil
}

// Check decides from the probe: with creates existing, nothing; else the
// archive is extracted when the marker does not hold its sum, an entry is
// missing or of another type or size, or owner/group differ on a file.
func (unarchiveProvider) Check(s *UnarchiveSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	if s.Creates != "" && p.get("creates") == "1" {
		return &Change{Action: None, Message: s.Creates + " exists: not extracted"}, nil
	}
	if s.RemoteSrc {
		return checkRemote(s, req, p)
	}
	sum, entries, err := loadArchive(s, req)
	if err != nil {
		return nil, err
	}
	if p.get("probed") != sum {
		return nil, fmt.Errorf("src %q changed between the probe and the check: run again", s.Src)
	}
	dir := p.get("dir")
	if dir == "other" {
		return nil, fmt.Errorf("%s exists and is not a directory (or is a symlink): path names the directory to extract into", s.Path)
	}
	pl := unarchivePlan{Path: s.Path, Src: s.Src, Format: archiveFormat(s.Src), Sum: sum, Marker: markerName(s.Src),
		Mkdir: dir == "0", Gzip: p.get("gzip") == "1", Owner: s.Owner, Group: s.Group}
	ch := &Change{Action: Update}
	if dir == "0" {
		ch.Action = Create
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: "absent", After: "extracted"})
	}
	mk := strings.TrimSpace(p.get("marker"))
	if mk != sum {
		before := ""
		if mk != "" {
			before = shortSum(mk)
		}
		ch.Fields = append(ch.Fields, Field{Name: "archive", Before: before, After: shortSum(sum) + " (" + strconv.Itoa(len(entries)) + " entries)"})
	}
	if hl := strings.Fields(p.get("hl")); len(hl) > 0 {
		parents := entryParents(entries)
		i, err := strconv.Atoi(hl[0])
		if err != nil || i < 0 || i >= len(parents) {
			return nil, fmt.Errorf("malformed probe output: hl=%q", p.get("hl"))
		}
		return nil, fmt.Errorf("%s is a symlink on the host and archive entries would be extracted through it (out of path): remove it, or extract elsewhere", path.Join(s.Path, parents[i]))
	}
	fields, err := driftFields(s, entries, p, dir == "1")
	if err != nil {
		return nil, err
	}
	ch.Fields = append(ch.Fields, fields...)
	if len(ch.Fields) == 0 {
		return &Change{Action: None}, nil
	}
	if p.get("tar") != "1" {
		return nil, fmt.Errorf("%s has no tar to extract the archive: install it (package tar; busybox tar works too)", hostOr(req))
	}
	ch.Message = "extracted from " + s.Src + " with the host's tar (the archive is read and checked here, sent as a tar stream)"
	ch.Plan = pl
	return ch, nil
}

// driftFields compares entries with the probe's mis= (indexes of entries
// missing or of another type) and st= (size:uid:gid:user:group of every
// file, in entry order, when none is missing) lines: the fields of what
// drifted, none when the extraction is intact.
func driftFields(s *UnarchiveSpec, entries []archiveEntry, p *probeOutput, dirExists bool) ([]Field, error) {
	var fields []Field
	var missing []string
	for _, f := range strings.Fields(p.get("mis")) {
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i >= len(entries) {
			return nil, fmt.Errorf("malformed probe output: mis=%q", p.get("mis"))
		}
		missing = append(missing, entries[i].Name)
	}
	if len(missing) > 0 {
		fields = append(fields, Field{Name: "entries", Before: strconv.Itoa(len(missing)) + " missing or of another type: " + shortList(missing), After: "extracted"})
	} else if dirExists {
		var sizes, owners, groups []string
		st := strings.Fields(p.get("st"))
		k := 0
		for _, e := range entries {
			if e.Kind != entryFile && e.Kind != entryHardlink {
				continue
			}
			if k >= len(st) {
				return nil, fmt.Errorf("malformed probe output: %d file stats for more files", len(st))
			}
			f := strings.Split(st[k], ":")
			k++
			if len(f) != 5 {
				return nil, fmt.Errorf("malformed probe output: st entry %q", st[k-1])
			}
			want := e.Size
			if e.Kind == entryHardlink {
				for _, o := range entries {
					if o.Name == e.Link {
						want = o.Size
					}
				}
			}
			if f[0] != strconv.FormatInt(want, 10) {
				sizes = append(sizes, e.Name)
			}
			si := statInfo{UID: f[1], GID: f[2], User: f[3], Group: f[4]}
			if s.Owner != "" && !si.ownerIs(s.Owner) {
				owners = append(owners, e.Name)
			}
			if s.Group != "" && !si.groupIs(s.Group) {
				groups = append(groups, e.Name)
			}
		}
		if len(sizes) > 0 {
			fields = append(fields, Field{Name: "entries", Before: strconv.Itoa(len(sizes)) + " of another size: " + shortList(sizes), After: "extracted"})
		}
		if len(owners) > 0 {
			fields = append(fields, Field{Name: "owner", Before: strconv.Itoa(len(owners)) + " files not " + s.Owner + ": " + shortList(owners), After: s.Owner})
		}
		if len(groups) > 0 {
			fields = append(fields, Field{Name: "group", Before: strconv.Itoa(len(groups)) + " files not " + s.Group + ": " + shortList(groups), After: s.Group})
		}
	}
	return fields, nil
}

// shortList renders names for a field, at most five.
func shortList(names []string) string {
	if len(names) > 5 {
		return strings.Join(names[:5], ", ") + fmt.Sprintf(", ... (%d more)", len(names)-5)
	}
	return strings.Join(names, ", ")
}

// tarStream writes the checked entries as one tar stream (gzip-compressed
// when gz): exactly what was checked is what the host extracts.
func tarStream(entries []archiveEntry, gz bool) ([]byte, error) {
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := &tar.Header{Name: e.Name, Mode: e.Mode, Format: tar.FormatPAX}
		switch e.Kind {
		case entryDir:
			h.Typeflag, h.Name = tar.TypeDir, e.Name+"/"
			if h.Mode&0o700 == 0 {
				h.Mode = 0o755
			}
		case entrySymlink:
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, e.Link, 0o777
		case entryHardlink:
			h.Typeflag, h.Linkname = tar.TypeLink, e.Link
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(e.data))
			if h.Mode == 0 {
				h.Mode = 0o644
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if e.Kind == entryFile {
			if _, err := tw.Write(e.data); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// Exit statuses of the extraction script (Apply) that mean more than a
// failed command.
const (
	unarchiveChanged = 3 // the copy of a remote src is not the checked archive
	unarchiveLinked  = 4 // a directory entries go through is a symlink
	unarchiveCopy    = 5 // the copy of a remote src failed
)

// Apply extracts the archive into path as planned and records its sum in
// the marker. A local src (and a remote one the host cannot extract
// itself) travels as a tar stream of the checked entries, extracted with
// the host's tar (-o: files owned by the extracting user); a remote src
// the host can extract (see canExtract) is copied privately into path,
// the copy's sha256 verified against the checked archive's, and the copy
// extracted with the host's tar. Then owner and group are set.
func (unarchiveProvider) Apply(ctx context.Context, h Host, s *UnarchiveSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[unarchivePlan](ch, "unarchive")
	if err != nil {
		return nil, err
	}
	entries := pl.entries
	switch {
	case !pl.Remote:
		sum, es, err := loadArchive(s, req)
		if err != nil {
			return nil, err
		}
		if sum != pl.Sum {
			return nil, fmt.Errorf("src %q changed since the check: run again", s.Src)
		}
		entries = es
	case entries == nil:
		// The check saw the archive unchanged (by its sum) but the
		// extraction drifted: the archive is read back and checked
		// again before anything is extracted.
		data, err := readBackRemote(ctx, h, pl.Src, req)
		if err != nil {
			return nil, err
		}
		if sha256Hex(data) != pl.Sum {
			return nil, fmt.Errorf("src %s on %s changed since the check: nothing extracted; run again", pl.Src, hostOr(req))
		}
		entries, err = readArchive(data, pl.Format)
		if err != nil {
			return nil, fmt.Errorf("src %s on %s: %w", pl.Src, hostOr(req), err)
		}
	}
	if pl.Mkdir {
		if _, err := run(ctx, h, "mkdir "+pl.Path, "mkdir -p -- "+shell.Quote(pl.Path), nil); err != nil {
			return nil, err
		}
	}
	tmp := shell.Quote(pl.Marker + ".upload")
	var extract string
	if pl.Direct {
		tmp = shell.Quote(pl.Marker + ".src")
		extract = "rm -f -- " + tmp + "\n(umask 077 && cp -- " + shell.Quote(pl.Src) + " " + tmp + ") || { rm -f -- " + tmp + "; exit " + strconv.Itoa(unarchiveCopy) + "; }\n" +
			"p=" + tmp + "; s=\n" + hashChain() +
			"[ \"$s\" = " + pl.Sum + " ] || { rm -f -- " + tmp + "; exit " + strconv.Itoa(unarchiveChanged) + "; }\n" +
			directExtract(pl.Format, tmp)
	} else {
		stream, err := tarStream(entries, pl.Gzip)
		if err != nil {
			return nil, fmt.Errorf("build the tar stream: %w", err)
		}
		up := path.Join(pl.Path, pl.Marker+".upload")
		if err := h.Upload(ctx, up, bytes.NewReader(stream), int64(len(stream)), connection.UploadOptions{Mode: 0o600, Progress: req.Progress}); err != nil {
			return nil, fmt.Errorf("upload the archive: %w", err)
		}
		flags := "-xof"
		if pl.Gzip {
			flags = "-xozf"
		}
		extract = "tar " + flags + " " + tmp
	}
	script := "cd " + shell.Quote(pl.Path) + " || exit 1\n"
	// Directories the entries go through must not be symlinks (the
	// check saw them; this closes most of the window since).
	for _, d := range entryParents(entries) {
		script += "[ ! -L " + shell.Quote("./"+d) + " ] || { rm -f -- " + tmp + "; printf '%s\\n' " + shell.Quote(d) + " >&2; exit " + strconv.Itoa(unarchiveLinked) + "; }\n"
	}
	script += extract + "; rc=$?; rm -f -- " + tmp + "\n" +
		"[ $rc -eq 0 ] || exit $rc\n"
	if pl.Owner != "" || pl.Group != "" {
		cmd := "chown -h -- " + shell.Quote(pl.Owner)
		if pl.Group != "" && pl.Owner != "" {
			cmd = "chown -h -- " + shell.Quote(pl.Owner+":"+pl.Group)
		} else if pl.Owner == "" {
			cmd = "chgrp -h -- " + shell.Quote(pl.Group)
		}
		var names []string
		for _, e := range entries {
			names = append(names, shell.Quote("./"+e.Name))
		}
		if len(names) > 0 {
			script += cmd + " " + strings.Join(names, " ") + " || exit 1\n"
		}
	}
	if pl.Remote {
		script += "{ printf '%s\\n' " + pl.Sum
		for _, l := range manifest(entries) {
			script += " " + shell.Quote(l)
		}
		script += "; } > " + shell.Quote(pl.Marker) + "\n"
	} else {
		script += "printf '%s\\n' " + pl.Sum + " > " + shell.Quote(pl.Marker) + "\n"
	}
	res, err := h.Run(ctx, script, nil)
	if err != nil {
		return nil, fmt.Errorf("extract %s: %w", pl.Src, err)
	}
	switch res.ExitCode {
	case 0:
		return &Outcome{}, nil
	case unarchiveChanged:
		return nil, fmt.Errorf("src %s on %s changed since the check (its sha256 is no longer %s): nothing extracted; run again", pl.Src, hostOr(req), shortSum(pl.Sum))
	case unarchiveLinked:
		return nil, fmt.Errorf("%s is a symlink on %s and archive entries would be extracted through it (out of path): nothing extracted; remove it, or extract elsewhere", path.Join(pl.Path, strings.TrimSpace(string(res.Stderr))), hostOr(req))
	case unarchiveCopy:
		return nil, fmt.Errorf("copy src %s into %s on %s before extracting it (is there room?): %s", pl.Src, pl.Path, hostOr(req), lastLines(res.Stderr, 5))
	}
	return nil, &CommandError{What: "extract " + pl.Src, ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 10)}
}

// directExtract is the command that extracts the archive file f (quoted)
// of format into the current directory with the host's own tools.
func directExtract(format, f string) string {
	switch format {
	case "tgz":
		return "tar -xozf " + f
	case "txz":
		return "tar -xoJf " + f
	}
	return "tar -xof " + f
}

// canExtract reports whether the probe found the tools to extract an
// archive of format on the host itself: tar, with gzip or xz for a
// compressed one. A zip never is: unzip implementations differ too much
// (busybox's refuses compressed symlinks, Info-ZIP's cannot replace a
// directory by a symlink), so its checked entries travel as a tar stream.
func canExtract(format string, p *probeOutput) bool {
	switch format {
	case "zip":
		return false
	case "tgz":
		return p.get("tar") == "1" && p.get("gzip") == "1"
	case "txz":
		return p.get("tar") == "1" && p.get("xz") == "1"
	}
	return p.get("tar") == "1"
}

// manifest is the entry list a remote_src marker holds after the sum
// line, one "KIND SIZE NAME" line per entry in archive order: d
// (directory), l (symlink) or f (file or hardlink; SIZE is the bytes
// extracted). Names are clean (checkEntries): no newline, no "./".
func manifest(entries []archiveEntry) []string {
	size := map[string]int64{}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		switch e.Kind {
		case entryDir:
			out = append(out, "d 0 "+e.Name)
		case entrySymlink:
			out = append(out, "l 0 "+e.Name)
		case entryHardlink:
			out = append(out, "f "+strconv.FormatInt(size[e.Link], 10)+" "+e.Name)
		default:
			size[e.Name] = e.Size
			out = append(out, "f "+strconv.FormatInt(e.Size, 10)+" "+e.Name)
		}
	}
	return out
}

// parseManifest reads a remote_src marker: the sum line, then the entries
// (see manifest) as directories, symlinks and files with their sizes.
func parseManifest(b []byte) (string, []archiveEntry, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	sum := strings.TrimSpace(lines[0])
	if !isSum(sum) {
		return "", nil, fmt.Errorf("its first line is not a sha256")
	}
	var entries []archiveEntry
	for i, l := range lines[1:] {
		k, rest, ok1 := strings.Cut(l, " ")
		sz, name, ok2 := strings.Cut(rest, " ")
		n, err := strconv.ParseInt(sz, 10, 64)
		clean, cerr := cleanEntryName(name)
		if !ok1 || !ok2 || err != nil || n < 0 || cerr != nil || clean != name {
			return "", nil, fmt.Errorf("line %d is not an entry", i+2)
		}
		e := archiveEntry{Name: name, Size: n}
		switch k {
		case "d":
			e.Kind = entryDir
		case "l":
			e.Kind = entrySymlink
		case "f":
			e.Kind = entryFile
		default:
			return "", nil, fmt.Errorf("line %d is not an entry", i+2)
		}
		entries = append(entries, e)
	}
	return sum, entries, nil
}

// remoteProbe is Probe for remote_src: one round trip that reports src
// (src=file|absent|other, srcsize, srcsum: its sha256 when the host has a
// hash tool), path (dir=), creates, the tools (tar, gzip, xz), the
// marker's sum and, when the marker lists entries, which are missing or
// of another type (mn=COUNT, mis=INDEXES) and the stats of the files
// (st=). It ends with a blob: the marker (blobkind=manifest) when it
// holds src's sum, else src itself (blobkind=archive, up to
// maxUnarchiveSize), for Check to read and check the entries.
func remoteProbe(s *UnarchiveSpec) string {
	var b strings.Builder
	b.WriteString("a=" + shell.Quote(s.Src) + "\np=" + shell.Quote(s.Path) + "\nmf=\"$p\"/" + shell.Quote(markerName(s.Src)) + "\n")
	if s.Creates != "" {
		b.WriteString("if [ -e " + shell.Quote(s.Creates) + " ] || [ -L " + shell.Quote(s.Creates) + " ]; then echo creates=1; fi\n")
	}
	b.WriteString(`if [ -f "$a" ]; then at=file; elif [ -e "$a" ]; then at=other; else at=absent; fi
printf 'src=%s\n' "$at"
s=; asz=
if [ "$at" = file ]; then if [ -r "$a" ]; then
asz=$(stat -L -c %s -- "$a" 2>/dev/null) || asz=
printf 'srcsize=%s\n' "$asz"
s=$(p=$a; s=
` + hashChain() + `printf '%s' "$s")
printf 'srcsum=%s\n' "$s"
else echo srcread=0; fi; fi
if [ -L "$p" ]; then echo dir=other; elif [ -d "$p" ]; then echo dir=1; elif [ -e "$p" ]; then echo dir=other; else echo dir=0; fi
for c in tar gzip xz; do if command -v $c >/dev/null 2>&1; then echo $c=1; fi; done
mk=
if [ -d "$p" ] && [ ! -L "$p" ] && [ -r "$mf" ]; then read -r mk < "$mf"; printf 'marker=%s\n' "$mk"
if cd "$p"; then
m=; i=0; set --
{ read -r x
while IFS= read -r l; do
k=${l%% *}; r=${l#* }; n=./${r#* }
case $k in
d) [ -d "$n" ] && [ ! -L "$n" ] ;;
l) [ -L "$n" ] ;;
*) [ -f "$n" ] && [ ! -L "$n" ] && set -- "$@" "$n" ;;
esac || m="$m $i"
i=$((i+1))
done; } < "$mf"
printf 'mn=%s\nmis=%s\n' "$i" "$m"
if [ -z "$m" ] && [ $# -gt 0 ]; then set -- $(stat -c '%s:%u:%g:%U:%G' -- "$@" 2>/dev/null); printf 'st=%s\n' "$*"; fi
cd /
fi; fi
if [ -n "$s" ] && [ "$s" = "$mk" ]; then
z=$(stat -c %s -- "$mf" 2>/dev/null) && { echo blobkind=manifest; printf 'blob=%s\n' "$z"; head -c "$z" < "$mf"; }
elif [ -n "$asz" ] && [ "$asz" -le ` + strconv.Itoa(maxUnarchiveSize) + ` ]; then
echo blobkind=archive; printf 'blob=%s\n' "$asz"; head -c "$asz" < "$a"
fi
:
`)
	return b.String()
}

// checkRemote is Check for remote_src, from remoteProbe's output: src
// must be a readable regular file of at most maxUnarchiveSize; its
// entries come from the archive read back (checked as a local one's) or,
// when the marker holds its sum, from the marker's entry list.
func checkRemote(s *UnarchiveSpec, req *Request, p *probeOutput) (*Change, error) {
	host := hostOr(req)
	switch p.get("src") {
	case "file":
	case "absent":
		return nil, fmt.Errorf("src %s does not exist on %s: put the archive there first (with remote_src = true, src is a path on the host), or unset remote_src for a local file", s.Src, host)
	case "other":
		return nil, fmt.Errorf("src %s on %s is not a regular file: remote_src takes the path of an archive file", s.Src, host)
	default:
		return nil, fmt.Errorf("malformed probe output: src=%q", p.get("src"))
	}
	if p.get("srcread") == "0" {
		return nil, fmt.Errorf("src %s on %s is not readable by the user opsmop runs as there: make it readable, or use become", s.Src, host)
	}
	size, err := strconv.ParseInt(p.get("srcsize"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("stat src %s on %s failed: is stat installed?", s.Src, host)
	}
	if size > maxUnarchiveSize {
		return nil, fmt.Errorf("src %s on %s is %s: opsmop reads back and extracts archives up to %s", s.Src, host, byteSize(size), byteSize(maxUnarchiveSize))
	}
	sum := p.get("srcsum")
	if sum != "" && !isSum(sum) {
		return nil, fmt.Errorf("the hash tool of %s (sha256sum, openssl or shasum) printed %q, not a sha256: fix or remove it", host, sum)
	}
	dir := p.get("dir")
	if dir == "other" {
		return nil, fmt.Errorf("%s exists and is not a directory (or is a symlink): path names the directory to extract into", s.Path)
	}
	mk := strings.TrimSpace(p.get("marker"))
	var entries, read []archiveEntry
	switch {
	case p.get("blobkind") == "manifest" && p.hasBlob:
		msum, es, err := parseManifest(p.blob)
		if err != nil {
			return nil, fmt.Errorf("the marker %s on %s is damaged (%v): remove it, and opsmop extracts the archive again", path.Join(s.Path, markerName(s.Src)), host, err)
		}
		if msum != sum {
			return nil, fmt.Errorf("the marker %s on %s changed during the probe: run again", path.Join(s.Path, markerName(s.Src)), host)
		}
		entries = es
	case p.get("blobkind") == "archive" && p.hasBlob:
		got := sha256Hex(p.blob)
		if sum != "" && got != sum {
			return nil, fmt.Errorf("src %s on %s changed during the probe: run again", s.Src, host)
		}
		sum = got
		entries, err = readArchive(p.blob, archiveFormat(s.Src))
		if err != nil {
			return nil, fmt.Errorf("src %s on %s: %w", s.Src, host, err)
		}
		read = entries
	default:
		return nil, fmt.Errorf("malformed probe output: neither the archive nor the marker was read back")
	}
	pl := unarchivePlan{Path: s.Path, Src: s.Src, Format: archiveFormat(s.Src), Sum: sum, Marker: markerName(s.Src),
		Mkdir: dir == "0", Gzip: p.get("gzip") == "1", Owner: s.Owner, Group: s.Group,
		Remote: true, Direct: p.get("srcsum") != "" && canExtract(archiveFormat(s.Src), p), entries: read}
	ch := &Change{Action: Update}
	if dir == "0" {
		ch.Action = Create
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: "absent", After: "extracted"})
	}
	if mk != sum {
		ch.Fields = append(ch.Fields, Field{Name: "archive", Before: shortSum(mk), After: shortSum(sum) + " (" + strconv.Itoa(len(entries)) + " entries)"})
	} else if mn, err := strconv.Atoi(p.get("mn")); err != nil || mn != len(entries) {
		ch.Fields = append(ch.Fields, Field{Name: "entries", Before: "the marker's entry list does not match the archive", After: "extracted"})
	} else {
		fields, err := driftFields(s, entries, p, dir == "1")
		if err != nil {
			return nil, err
		}
		ch.Fields = append(ch.Fields, fields...)
	}
	if len(ch.Fields) == 0 {
		return &Change{Action: None}, nil
	}
	if !pl.Direct && p.get("tar") != "1" {
		return nil, fmt.Errorf("%s has no tar to extract the archive: install it (package tar; busybox tar works too)", host)
	}
	switch {
	case pl.Direct:
		ch.Message = "extracted from " + s.Src + " on the host with its tar, from a private copy whose sha256 is verified first"
	case pl.Format == "zip":
		ch.Message = "extracted from " + s.Src + ": read back, checked here and sent as a tar stream (a zip always is)"
	case p.get("srcsum") == "":
		ch.Message = "extracted from " + s.Src + ": read back, checked here and sent as a tar stream (the host has no sha256sum, openssl or shasum to verify a copy)"
	default:
		ch.Message = "extracted from " + s.Src + ": read back, checked here and sent as a tar stream (the host has no " + map[string]string{"tgz": "gzip", "txz": "xz"}[pl.Format] + ")"
	}
	if read == nil {
		ch.Message += "; the archive is read back and checked again before extracting"
	}
	ch.Plan = pl
	return ch, nil
}

// readBackRemote returns the contents of the regular file src on the host,
// up to maxUnarchiveSize.
func readBackRemote(ctx context.Context, h Host, src string, req *Request) ([]byte, error) {
	script := "a=" + shell.Quote(src) + "\n" + `[ -f "$a" ] || exit 6
z=$(stat -L -c %s -- "$a") || exit 6
[ "$z" -le ` + strconv.Itoa(maxUnarchiveSize) + ` ] || exit 7
printf '%s\n' "$z"; head -c "$z" < "$a"
`
	res, err := h.Run(ctx, script, nil)
	if err != nil {
		return nil, fmt.Errorf("read back src %s: %w", src, err)
	}
	switch res.ExitCode {
	case 0:
	case 6:
		return nil, fmt.Errorf("src %s on %s is gone or not a regular file since the check: nothing extracted; run again", src, hostOr(req))
	case 7:
		return nil, fmt.Errorf("src %s on %s grew beyond %s since the check: nothing extracted", src, hostOr(req), byteSize(maxUnarchiveSize))
	default:
		return nil, &CommandError{What: "read back src " + src, ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 5)}
	}
	head, data, ok := bytes.Cut(res.Stdout, []byte("\n"))
	n, err := strconv.Atoi(string(head))
	if !ok || err != nil || n != len(data) {
		return nil, fmt.Errorf("src %s on %s changed while it was read back: nothing extracted; run again", src, hostOr(req))
	}
	return data, nil
}
