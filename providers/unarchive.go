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

// UnarchiveSpec is the `unarchive` resource: a local archive inspected on
// the controller, refused if any entry would land outside path, and
// extracted into path on the host.
type UnarchiveSpec struct {
	Src     string `opsmop:"src" required:"true" local:"file" doc:"local archive, relative to the policy directory: .tar, .tar.gz or .tgz, .tar.xz, .zip (the format is read from the name)"`
	Path    string `opsmop:"path" required:"true" doc:"absolute path of the directory the archive is extracted into; created (mkdir -p) when missing"`
	Owner   string `opsmop:"owner" doc:"owner (user name or numeric uid) of every extracted entry; unset: the connecting or become user"`
	Group   string `opsmop:"group" doc:"group (name or numeric gid) of every extracted entry; unset: that user's group"`
	Creates string `opsmop:"creates" doc:"absolute path on the host: when it exists, nothing is checked or extracted (as Ansible's creates)"`
}

// maxUnarchiveSize bounds the local archive and what it expands to, both
// held in memory on the controller.
const maxUnarchiveSize = 1 << 30

// Validate checks the rules of an unarchive that need no host (see
// Validator): src has a supported extension, path and creates are
// absolute, owner and group are names or numeric ids.
func (s *UnarchiveSpec) Validate() error {
	var p problems
	if s.Src == "" {
		p.add("src", "src is required: the local archive to extract")
	} else if !templated(s.Src) && archiveFormat(s.Src) == "" {
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
	var missing []string
	for _, f := range strings.Fields(p.get("mis")) {
		i, err := strconv.Atoi(f)
		if err != nil || i < 0 || i >= len(entries) {
			return nil, fmt.Errorf("malformed probe output: mis=%q", p.get("mis"))
		}
		missing = append(missing, entries[i].Name)
	}
	if len(missing) > 0 {
		ch.Fields = append(ch.Fields, Field{Name: "entries", Before: strconv.Itoa(len(missing)) + " missing or of another type: " + shortList(missing), After: "extracted"})
	} else if dir == "1" {
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
			ch.Fields = append(ch.Fields, Field{Name: "entries", Before: strconv.Itoa(len(sizes)) + " of another size: " + shortList(sizes), After: "extracted"})
		}
		if len(owners) > 0 {
			ch.Fields = append(ch.Fields, Field{Name: "owner", Before: strconv.Itoa(len(owners)) + " files not " + s.Owner + ": " + shortList(owners), After: s.Owner})
		}
		if len(groups) > 0 {
			ch.Fields = append(ch.Fields, Field{Name: "group", Before: strconv.Itoa(len(groups)) + " files not " + s.Group + ": " + shortList(groups), After: s.Group})
		}
	}
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

// Apply uploads the checked entries as a tar stream into path, extracts
// it with the host's tar (-o: files owned by the extracting user), sets
// owner and group, and records the archive's sum in the marker.
func (unarchiveProvider) Apply(ctx context.Context, h Host, s *UnarchiveSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[unarchivePlan](ch, "unarchive")
	if err != nil {
		return nil, err
	}
	sum, entries, err := loadArchive(s, req)
	if err != nil {
		return nil, err
	}
	if sum != pl.Sum {
		return nil, fmt.Errorf("src %q changed since the check: run again", s.Src)
	}
	stream, err := tarStream(entries, pl.Gzip)
	if err != nil {
		return nil, fmt.Errorf("build the tar stream: %w", err)
	}
	if pl.Mkdir {
		if _, err := run(ctx, h, "mkdir "+pl.Path, "mkdir -p -- "+shell.Quote(pl.Path), nil); err != nil {
			return nil, err
		}
	}
	up := path.Join(pl.Path, pl.Marker+".upload")
	if err := h.Upload(ctx, up, bytes.NewReader(stream), int64(len(stream)), connection.UploadOptions{Mode: 0o600, Progress: req.Progress}); err != nil {
		return nil, fmt.Errorf("upload the archive: %w", err)
	}
	flags := "-xof"
	if pl.Gzip {
		flags = "-xozf"
	}
	script := "cd " + shell.Quote(pl.Path) + " || exit 1\n" +
		"tar " + flags + " " + shell.Quote(pl.Marker+".upload") + "; rc=$?; rm -f -- " + shell.Quote(pl.Marker+".upload") + "\n" +
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
	script += "printf '%s\\n' " + pl.Sum + " > " + shell.Quote(pl.Marker) + "\n"
	if _, err := run(ctx, h, "extract "+pl.Src, script, nil); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}
