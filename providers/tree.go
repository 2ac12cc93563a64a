package providers

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// TreeSpec is the `tree` resource: a local directory copied recursively
// to a directory on the host.
type TreeSpec struct {
	Src     string   `opsmop:"src" required:"true" doc:"the local directory to copy, relative to the policy directory; its symlinks are refused (see Behaviour)"`
	Path    string   `opsmop:"path" required:"true" doc:"absolute path of the directory on the host that receives src's contents; created (with missing parents) when absent"`
	Delete  bool     `opsmop:"delete" doc:"remove what is under path but not in src (excluded paths are never removed)"`
	Mode    string   `opsmop:"file_mode" doc:"octal permissions of every file, e.g. \"0644\"; unset: each file's mode in src (the exec bit survives)"`
	DirMode string   `opsmop:"dir_mode" doc:"octal permissions of every directory, path included, e.g. \"0755\"; unset: each directory's mode in src (an existing path keeps its own)"`
	Owner   string   `opsmop:"owner" doc:"owner of every file and directory (user name or numeric uid); unset: new entries belong to the connecting (or sudo) user, replaced files keep their owner"`
	Group   string   `opsmop:"group" doc:"group of every file and directory (name or numeric gid); unset: as for owner"`
	Exclude []string `opsmop:"exclude" doc:"patterns of paths to leave alone on both sides (neither copied, compared nor deleted): a pattern with a / matches the path relative to src, one without matches any single name; * ? and [...] as in shell globs; an excluded directory excludes everything beneath"`
	// ValidateCmd is the validate key (the name Validate is the method's).
	ValidateCmd string `opsmop:"validate" doc:"a command run on the host on each new or changed file before any of them is moved into place, %s standing for the file's temporary path (e.g. \"nginx -t -c %s\"; %% is a literal %); if it fails for any file, no file of the tree is replaced"`
	// seKeys are seuser, serole, setype and selevel (selinux.go), set on
	// path and every entry copied from src.
	seKeys
}

// Validate checks the rules of a tree that need no host: src is given
// and relative (or absolute) without NUL; path is absolute and not /
// with delete; modes are octal; owner and group are names or ids;
// exclude patterns are valid globs; validate holds %s bare.
func (s *TreeSpec) Validate() error {
	var p problems
	p.path("path", s.Path)
	if s.Src == "" {
		p.add("src", "src is required: the local directory to copy")
	} else if strings.IndexByte(s.Src, 0) >= 0 {
		p.add("src", "src contains a NUL byte")
	}
	if s.Delete && !templated(s.Path) && path.Clean(s.Path) == "/" {
		p.add("delete", "refusing delete = true with path = \"/\": it would remove everything src does not have")
	}
	p.mode("file_mode", s.Mode)
	p.mode("dir_mode", s.DirMode)
	if s.Owner != "" {
		p.name("owner", "owner", s.Owner)
	}
	if s.Group != "" {
		p.name("group", "group", s.Group)
	}
	for _, e := range s.Exclude {
		if e == "" {
			p.add("exclude", "an exclude pattern is empty")
			continue
		}
		if _, err := path.Match(e, ""); err != nil {
			p.add("exclude", "exclude pattern %q is not a valid glob: %v", e, err)
		}
	}
	if s.ValidateCmd != "" {
		p.validateCmd(s.ValidateCmd)
	}
	s.seKeys.validate(&p)
	return p.err()
}

// treeProvider implements `tree`.
type treeProvider struct{}

func (treeProvider) labels(s *TreeSpec) errLabels {
	return errLabels{Probe: "tree " + s.Path, Check: "tree " + s.Path, Apply: "tree " + s.Path}
}

// treeEntry is one file or directory of the local tree.
type treeEntry struct {
	Rel  string // slash-separated, relative to src; "." for src itself
	Dir  bool
	Mode uint32 // permission bits in src
	Size int64
	Sum  string // files: sha256 hex (filled by Check)
}

// localTree lists src's entries (directories first by path order), with
// the excluded paths left out. Symlinks and special files are refused.
// The listing (or its error) is kept in req.Memo: src is walked once per
// instance.
func localTree(req *Request, s *TreeSpec) ([]treeEntry, error) {
	if req != nil && req.Memo != nil && req.Memo.tree != nil {
		return req.Memo.tree.ents, req.Memo.tree.err
	}
	ents, err := walkTree(req, s)
	if req != nil && req.Memo != nil && req.Open != nil {
		req.Memo.tree = &memoTree{ents: ents, err: err}
	}
	return ents, err
}

// memoTree is a walk of src kept in Request.Memo, so that Probe, Check,
// Apply and the re-check of one instance walk src once.
type memoTree struct {
	ents []treeEntry
	err  error
}

// walkTree lists src (see localTree).
func walkTree(req *Request, s *TreeSpec) ([]treeEntry, error) {
	if req == nil || req.Open == nil {
		return nil, fmt.Errorf("src %s: no local file access in this context", s.Src)
	}
	rc, _, err := req.Open(s.Src)
	if err != nil {
		return nil, fmt.Errorf("src %s: %w", s.Src, err)
	}
	defer rc.Close()
	f, ok := rc.(interface{ Name() string })
	if !ok {
		return nil, fmt.Errorf("src %s: cannot list a directory in this context", s.Src)
	}
	root := f.Name()
	fi, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("src %s: %w", s.Src, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("src %s is not a directory: use a file resource to copy one file", s.Src)
	}
	var out []treeEntry
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if rel != "." && excluded(s.Exclude, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("src %s has a symlink %s: tree copies only files and directories (replace it with what it points to, exclude it, or manage it with a link resource)", s.Src, displayName(rel))
		case info.IsDir():
			out = append(out, treeEntry{Rel: rel, Dir: true, Mode: uint32(info.Mode().Perm())})
		case info.Mode().IsRegular():
			out = append(out, treeEntry{Rel: rel, Mode: uint32(info.Mode().Perm()), Size: info.Size()})
		default:
			return fmt.Errorf("src %s has %s, which is neither a file nor a directory (a device, fifo or socket): exclude it", s.Src, displayName(rel))
		}
		return nil
	})
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("src %s: %w", s.Src, err)
		}
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

// hostPrune returns find expressions (ending in -o) that skip, on the host,
// what excluded leaves out, for the patterns find's -name matches exactly
// as path.Match does: ones without a slash made of plain characters, `*`
// and `?`. Patterns with a slash or a bracket or backslash (whose classes
// and escapes differ between Go and fnmatch) are not pruned on the host;
// excluded filters them from the listing on the controller.
func hostPrune(patterns []string) string {
	var names []string
	for _, pat := range patterns {
		pat = strings.TrimPrefix(strings.TrimSuffix(pat, "/"), "./")
		if pat == "" || strings.ContainsAny(pat, "/[]\\") {
			continue
		}
		names = append(names, "-name "+shell.Quote(pat))
	}
	if len(names) == 0 {
		return ""
	}
	return "! -path . \\( " + strings.Join(names, " -o ") + " \\) -prune -o "
}

// excluded reports whether rel (or one of its parent directories) matches
// a pattern: one with a slash against the whole relative path, one
// without against each name.
func excluded(patterns []string, rel string) bool {
	for _, pat := range patterns {
		pat = strings.TrimPrefix(strings.TrimSuffix(pat, "/"), "./")
		if strings.Contains(pat, "/") {
			for p := rel; p != "."; p = path.Dir(p) {
				if ok, _ := path.Match(pat, p); ok {
					return true
				}
			}
			continue
		}
		for _, name := range strings.Split(rel, "/") {
			if ok, _ := path.Match(pat, name); ok {
				return true
			}
		}
	}
	return false
}

// displayName renders a relative path for messages and fields: as it is
// when printable UTF-8, else Go-quoted.
func displayName(rel string) string {
	if !utf8.ValidString(rel) || strings.IndexFunc(rel, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(rel)
	}
	return rel
}

// treeHashChunk bounds the bytes of names one find command is given, well
// under any host's argument limit.
const treeHashChunk = 64 << 10

// Probe lists everything under path in one command (type, size, mode,
// owner and group), then hashes the wanted files that exist there, with
// sha256sum or shasum given the names themselves so that the output is
// parsed against names known here (names with newlines are listed in
// hex, see treeListScript).
func (treeProvider) Probe(s *TreeSpec, req *Request) (string, error) {
	var ents []treeEntry
	if req != nil && req.Open != nil {
		// Without local access (a policy checked on its own) the probe
		// only lists; Check, which needs src, says what is missing.
		var err error
		if ents, err = localTree(req, s); err != nil {
			return "", err
		}
	}
	// The wanted files' sums, kept in the memo'd listing for Check, and
	// the sum of the hash tool's whole answer as it would read when every
	// file matches: the host then prints one line instead of one per file.
	// Names the tools would escape (a backslash, newline or carriage
	// return) get no such shortcut.
	agg := sha256.New()
	aggOK := false
	buf := make([]byte, 32<<10)
	for i, e := range ents {
		if e.Dir {
			continue
		}
		if e.Sum == "" {
			sum, err := localSum(req, path.Join(s.Src, e.Rel), buf)
			if err != nil {
				return "", fmt.Errorf("src %s: %w", path.Join(s.Src, e.Rel), err)
			}
			ents[i].Sum = sum
		}
		if strings.ContainsAny(e.Rel, "\\\n\r") {
			agg = nil
		}
		if agg != nil {
			aggOK = true
			fmt.Fprintf(agg, "%s  ./%s\n", ents[i].Sum, e.Rel)
		}
	}
	// The answer is gathered and printed in one write, after the hashing:
	// printed as it comes, the listing and the sums would reach the
	// controller as separate bursts, with its SSH window adjustments in
	// between.
	var b strings.Builder
	b.WriteString("o=$(\np=" + shell.Quote(s.Path) + "\n")
	list := strings.ReplaceAll(treeListScript, "find . ", "find . "+hostPrune(s.Exclude))
	if s.seKeys.set() {
		b.WriteString(treeSEOnScript)
		list = strings.Replace(list, "echo end-list=\n", "echo end-list=\n"+treeSEContextScript(ents), 1)
	}
	b.WriteString(list)
	var chunk strings.Builder
	flush := func() {
		if chunk.Len() > 0 {
			b.WriteString("find" + chunk.String() + " -prune -type f -exec $H {} + 2>/dev/null\n")
			chunk.Reset()
		}
	}
	b.WriteString("if [ -n \"$H\" ]; then\n")
	if aggOK && agg != nil {
		b.WriteString("s=$(\n")
	} else {
		b.WriteString("echo sums=\n")
	}
	for _, e := range ents {
		if e.Dir {
			continue
		}
		if chunk.Len() > treeHashChunk {
			flush()
		}
		chunk.WriteString(" " + shell.Quote("./"+e.Rel))
	}
	flush()
	if aggOK && agg != nil {
		fmt.Fprintf(&b, ")\nif [ \"$(printf '%%s\\n' \"$s\" | $H)\" = '%x  -' ]; then echo sums=same; else echo sums=; [ -z \"$s\" ] || printf '%%s\\n' \"$s\"; echo end-sums=; fi\n", agg.Sum(nil))
	} else {
		b.WriteString("echo end-sums=\n")
	}
	b.WriteString("fi\nfi\nr=$?\necho .\nexit $r\n)\nr=$?\nprintf %s \"${o%.}\"\nexit $r\n")
	return b.String(), nil
}

// treeSEOnScript prints selinux=1|0 (see seProbeScript) and leaves it
// in $se.
const treeSEOnScript = `se=${__opsmop_se-}
if [ -z "$se" ]; then if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled >/dev/null 2>&1; then se=1; else se=0; fi; fi
echo selinux=$se
`

// treeSEContextScript is the probe fragment, run in path, that prints
// the SELinux contexts of path and of the wanted entries (those of ents)
// that exist, between secontexts= and end-secontexts=, when $se is 1:
// `CONTEXT ./NAME` lines from ls -Zd given many names at once (in any
// order; missing names print nothing), and for a name that ls might
// print otherwise than as given (control characters, backslashes, bytes
// that are not printable UTF-8) `#N CONTEXT` from one ls each, N its
// index among those names (treeOddNames).
func treeSEContextScript(ents []treeEntry) string {
	var b strings.Builder
	b.WriteString("if [ \"$se\" = 1 ]; then\necho secontexts=\n")
	var plain []string
	for _, e := range ents {
		if !treeOddName(e.Rel) {
			plain = append(plain, treeRelArg(e.Rel))
		}
	}
	treeArgs(&b, "ls -Zd --", plain, " 2>/dev/null || :")
	if odd := treeOddNames(ents); len(odd) > 0 {
		b.WriteString("i=0\nfor f in")
		for _, r := range odd {
			b.WriteString(" " + shell.Quote(treeRelArg(r)))
		}
		b.WriteString("; do if c=$(ls -Zd -- \"$f\" 2>/dev/null) && [ -n \"$c\" ]; then printf '#%s %s\\n' \"$i\" \"${c%% *}\"; fi; i=$((i+1)); done\n")
	}
	b.WriteString("echo end-secontexts=\nfi\n")
	return b.String()
}

// treeRelArg is the argument naming rel in path: "." or "./rel".
func treeRelArg(rel string) string {
	if rel == "." {
		return "."
	}
	return "./" + rel
}

// treeOddName reports whether ls might print name otherwise than as
// given: a control character, a backslash, a space at its end, or bytes
// that are not printable UTF-8.
func treeOddName(rel string) bool {
	if !utf8.ValidString(rel) || strings.HasSuffix(rel, " ") {
		return true
	}
	for _, r := range rel {
		if r == '\\' || !unicode.IsPrint(r) && r != ' ' {
			return true
		}
	}
	return false
}

// treeOddNames are the relative paths of ents that treeOddName picks, in
// ents' order.
func treeOddNames(ents []treeEntry) []string {
	var odd []string
	for _, e := range ents {
		if treeOddName(e.Rel) {
			odd = append(odd, e.Rel)
		}
	}
	return odd
}

// treeListScript prints root=TYPE and, for a directory, one line per
// entry under it between list= and end-list=: the stat fields
// `%f %s %u %g %U %G` then the name; a name holding a newline is printed
// as `X FIELDS HEXNAME` instead. It leaves $H the hash command (empty:
// none) and stays in path (cd) for the hashing.
const treeListScript = `if [ -L "$p" ]; then echo root=link; elif [ -d "$p" ]; then echo root=directory; elif [ -e "$p" ]; then echo root=other; else echo root=absent; fi
if [ -d "$p" ] && [ ! -L "$p" ] && cd -- "$p" 2>/dev/null; then
nl='
'
echo list=
find . ! -path "*$nl*" -exec stat -c '%f %s %u %g %U %G %n' {} + 2>/dev/null
find . -path "*$nl*" -exec sh -c 'for f do printf "X %s " "$(stat -c "%f %s %u %g %U %G" "$f")"; printf %s "$f" | od -An -v -tx1 | tr -d " \n"; echo; done' sh {} + 2>/dev/null
echo end-list=
H=
if command -v sha256sum >/dev/null 2>&1; then H=sha256sum; elif command -v shasum >/dev/null 2>&1; then H='shasum -a 256'; else echo hashtool=0; fi
`

// remoteEntry is one entry under path on the host.
type remoteEntry struct {
	Type  string // file, directory, link, other
	Size  int64
	Mode  uint32
	UID   string
	GID   string
	User  string
	Group string
	Sum   string
}

func (e remoteEntry) stat() statInfo {
	return statInfo{Mode: e.Mode, UID: e.UID, GID: e.GID, User: e.User, Group: e.Group, Size: e.Size}
}

// treeProbe is a parsed tree probe.
type treeProbe struct {
	Root     string
	Entries  map[string]*remoteEntry // by relative path ("." is path)
	HashTool bool
	// SELinux is "1" or "0" when the probe asked (se* keys given), else "".
	SELinux string
	// Contexts are the SELinux contexts of the wanted entries that exist,
	// by relative path, when SELinux is "1".
	Contexts map[string]string
}

// parseTreeProbe parses the probe's output; files are the wanted files in
// the order the probe hashed them, sums their local sums (sums=same, the
// host's answer when every file has its wanted sum, takes them), odd the
// names whose contexts come by index (treeOddNames).
func parseTreeProbe(out []byte, files, sums, odd []string) (*treeProbe, error) {
	tp := &treeProbe{Entries: map[string]*remoteEntry{}, HashTool: true}
	line := func() (string, bool) {
		i := bytes.IndexByte(out, '\n')
		if i < 0 {
			return "", false
		}
		l := string(out[:i])
		out = out[i+1:]
		return l, true
	}
	for {
		l, ok := line()
		if !ok {
			break
		}
		if r, ok := strings.CutPrefix(l, "root="); ok {
			tp.Root = r
			continue
		}
		if r, ok := strings.CutPrefix(l, "selinux="); ok {
			tp.SELinux = r
			continue
		}
		if l == "list=" {
			break
		}
	}
	if tp.Root == "" {
		return nil, fmt.Errorf("malformed probe output: no root type")
	}
	if tp.Root != "directory" {
		return tp, nil
	}
	for {
		l, ok := line()
		if !ok {
			return nil, fmt.Errorf("malformed probe output: listing not terminated")
		}
		if l == "end-list=" {
			break
		}
		hexName := false
		if r, ok := strings.CutPrefix(l, "X "); ok {
			l, hexName = r, true
		}
		f := strings.SplitN(l, " ", 7)
		if len(f) != 7 {
			return nil, fmt.Errorf("malformed probe output: listing line %q", l)
		}
		raw, err1 := strconv.ParseUint(f[0], 16, 32)
		size, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("malformed probe output: listing line %q", l)
		}
		name := f[6]
		if hexName {
			b, err := hex.DecodeString(name)
			if err != nil {
				return nil, fmt.Errorf("malformed probe output: hex name %q", name)
			}
			name = string(b)
		}
		e := &remoteEntry{Size: size, Mode: uint32(raw) & 0o7777, UID: f[2], GID: f[3], User: f[4], Group: f[5]}
		switch raw & 0o170000 {
		case 0o100000:
			e.Type = "file"
		case 0o040000:
			e.Type = "directory"
		case 0o120000:
			e.Type = "link"
		default:
			e.Type = "other"
		}
		switch {
		case name == ".":
		case strings.HasPrefix(name, "./"):
			name = name[2:]
		default:
			return nil, fmt.Errorf("malformed probe output: name %q", name)
		}
		if slices.Contains(strings.Split(name, "/"), "..") {
			// find never prints one; delete must never act outside path.
			return nil, fmt.Errorf("malformed probe output: name %q", name)
		}
		tp.Entries[name] = e
	}
	if bytes.HasPrefix(out, []byte("secontexts=\n")) {
		if err := tp.parseContexts(&out, odd); err != nil {
			return nil, err
		}
	}
	rest := string(out)
	if strings.HasPrefix(rest, "hashtool=0\n") {
		tp.HashTool = false
		return tp, nil
	}
	if rest == "sums=same\n" {
		if len(sums) != len(files) {
			return nil, fmt.Errorf("malformed probe output: sums=same without local sums")
		}
		if slices.Contains(sums, "") {
			return nil, fmt.Errorf("malformed probe output: sums=same without local sums")
		}
		for i, name := range files {
			e := tp.Entries[name]
			if e == nil || e.Type != "file" {
				return nil, fmt.Errorf("malformed probe output: sums=same but %s is not a file in the listing (did the tree change during the probe? run again)", displayName(name))
			}
			e.Sum = sums[i]
		}
		return tp, nil
	}
	rest, ok := strings.CutPrefix(rest, "sums=\n")
	if !ok {
		return nil, fmt.Errorf("malformed probe output: no sums")
	}
	for _, name := range files {
		e := tp.Entries[name]
		if e == nil || e.Type != "file" {
			continue
		}
		sum, n := matchSumLine(rest, "./"+name)
		if n == 0 {
			continue // not hashed (unreadable, or gone since the listing)
		}
		e.Sum, rest = sum, rest[n:]
	}
	if rest != "end-sums=\n" {
		return nil, fmt.Errorf("malformed probe output: unexpected hash output %q (did the tree change during the probe? run again)", firstLines([]byte(rest), 2))
	}
	return tp, nil
}

// parseContexts reads the secontexts section at the start of *out (see
// treeSEContextScript) and leaves *out after it.
func (tp *treeProbe) parseContexts(out *[]byte, odd []string) error {
	tp.Contexts = map[string]string{}
	rest := string((*out)[len("secontexts=\n"):])
	for {
		l, r, ok := strings.Cut(rest, "\n")
		if !ok {
			return fmt.Errorf("malformed probe output: SELinux contexts not terminated")
		}
		rest = r
		if l == "end-secontexts=" {
			break
		}
		ctx, name, _ := strings.Cut(l, " ")
		if i, ok := strings.CutPrefix(ctx, "#"); ok {
			n, err := strconv.Atoi(i)
			if err != nil || n < 0 || n >= len(odd) {
				return fmt.Errorf("malformed probe output: SELinux context line %q", l)
			}
			tp.Contexts[odd[n]] = name
			continue
		}
		switch {
		case name == ".":
		case strings.HasPrefix(name, "./"):
			name = name[2:]
		default:
			// Not a name given (e.g. an old ls printing another format):
			// the entry then has no context, which Check reports.
			continue
		}
		tp.Contexts[name] = ctx
	}
	*out = []byte(rest)
	return nil
}

// matchSumLine matches the sha256sum (or shasum) line of name at the
// start of s: `HEX  NAME\n`, or, as GNU coreutils writes a name with a
// backslash, newline or carriage return, `\HEX  ESCAPED\n`. It returns
// the sum and the line's length, or 0 when the line is not name's.
func matchSumLine(s, name string) (string, int) {
	esc := strings.HasPrefix(s, "\\")
	t := s
	if esc {
		t = s[1:]
	}
	if len(t) < 66 || !isSum(t[:64]) || t[64] != ' ' || (t[65] != ' ' && t[65] != '*') {
		return "", 0
	}
	sum, t := t[:64], t[66:]
	want := name
	if esc {
		want = strings.NewReplacer("\\", "\\\\", "\n", "\\n", "\r", "\\r").Replace(name)
	}
	if !strings.HasPrefix(t, want+"\n") {
		if esc && strings.HasPrefix(t, strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(name)+"\n") {
			want = strings.NewReplacer("\\", "\\\\", "\n", "\\n").Replace(name)
		} else {
			return "", 0
		}
	}
	return sum, len(s) - len(t) + len(want) + 1
}

// treePlan is what Apply does.
type treePlan struct {
	Path     string
	Src      string
	MkRoot   bool
	Uploads  []treeUpload
	Mkdirs   []treeAttr // new directories, parents first
	Attrs    []treeAttr // existing entries whose mode/owner/group change
	Deletes  []string   // removed first (rm -rf)
	Validate string
	// SE is the SELinux context parts to set (chcon), after the writes,
	// on SERels (relative paths; "." is path).
	SE     seChange
	SERels []string
}

// treeUpload is a file to write.
type treeUpload struct {
	Rel   string
	Size  int64
	Sum   string
	Mode  uint32
	Owner string
	Group string
}

// treeAttr is a directory to create or an entry to re-attribute.
type treeAttr struct {
	Rel   string
	Mode  uint32 // 0: unchanged
	Owner string
	Group string
}

// localSum returns the sha256 of a file of src; buf is the copy buffer,
// shared by the calls of one check.
func localSum(req *Request, rel string, buf []byte) (string, error) {
	if req.Sum != nil {
		sum, _, err := req.Sum(rel)
		return sum, err
	}
	rc, _, err := req.Open(rel)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, struct{ io.Reader }{rc}, buf); err != nil { // no WriteTo: use buf
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Check compares the local tree with the probed one.
func (treeProvider) Check(s *TreeSpec, req *Request, probe connection.Result) (*Change, error) {
	if probe.ExitCode != 0 {
		return nil, fmt.Errorf("probe failed with exit status %d: %s", probe.ExitCode, firstLines(probe.Stderr, 5))
	}
	ents, err := localTree(req, s)
	if err != nil {
		return nil, err
	}
	var files, sums []string
	for _, e := range ents {
		if !e.Dir {
			files = append(files, e.Rel)
			sums = append(sums, e.Sum)
		}
	}
	tp, err := parseTreeProbe(probe.Stdout, files, sums, treeOddNames(ents))
	if err != nil {
		return nil, err
	}
	if s.seKeys.set() && tp.SELinux != "1" {
		return nil, s.seKeys.offError()
	}
	switch tp.Root {
	case "absent", "directory":
	case "link":
		return nil, fmt.Errorf("path is a symlink: point path at the real directory, or remove the link")
	default:
		return nil, fmt.Errorf("path exists and is not a directory: remove it first")
	}
	if tp.Root == "directory" && !tp.HashTool {
		return nil, fmt.Errorf("the host has no sha256sum or shasum to compare the tree's files: install coreutils (sha256sum) or perl (shasum)")
	}
	fileMode, _ := parseMode(s.Mode)
	dirMode, _ := parseMode(s.DirMode)
	pl := treePlan{Path: s.Path, Src: s.Src, MkRoot: tp.Root == "absent", Validate: s.ValidateCmd}
	_, pl.SE = s.seKeys.diff(seContext{}, false)
	ch := &Change{Action: Update}
	if pl.MkRoot {
		ch.Action = Create
	}
	add := func(rel, before, after string) {
		name := displayName(rel)
		if rel == "." {
			name = "."
		}
		ch.Fields = append(ch.Fields, Field{Name: name, Before: before, After: after})
	}
	// withSE adds to an entry's before and after texts the SELinux
	// context parts that change (every given part for a new entry) and
	// plans their chcon; need says whether there are any.
	withSE := func(rel string, exists bool, before, after string) (string, string, bool, error) {
		if !s.seKeys.set() {
			return before, after, false, nil
		}
		var cur seContext
		if exists {
			c, ok := tp.Contexts[rel]
			if !ok {
				return "", "", false, fmt.Errorf("%s: the probe got no SELinux context for it (ls -Zd printed none): check that ls -Zd works on the host, and run again", treeRelName(rel))
			}
			if cur, err = parseSEContext(c); err != nil {
				return "", "", false, fmt.Errorf("%s: %w", treeRelName(rel), err)
			}
		}
		fields, _ := s.seKeys.diff(cur, exists)
		if len(fields) == 0 {
			return before, after, false, nil
		}
		join := func(a, b string) string {
			if a == "" || b == "" {
				return a + b
			}
			return a + ", " + b
		}
		for _, f := range fields {
			if f.Before != "" {
				before = join(before, f.Name+" "+f.Before)
			}
			after = join(after, f.Name+" "+f.After)
		}
		pl.SERels = append(pl.SERels, rel)
		return before, after, true, nil
	}
	var nAdd, nChange, nDelete int
	var rootSE string // the new path's SELinux parts, for its field
	buf := make([]byte, 32<<10)
	deleted := map[string]bool{}
	for _, e := range ents {
		want := e.Mode
		if e.Dir && s.DirMode != "" {
			want = dirMode
		}
		if !e.Dir && s.Mode != "" {
			want = fileMode
		}
		r := tp.Entries[e.Rel]
		if e.Rel == "." && r != nil && s.DirMode == "" {
			// An existing path keeps its mode (as Ansible's copy leaves
			// dest alone): src's own mode is often only its checkout's.
			want = r.Mode
		}
		if r != nil && ((e.Dir && r.Type != "directory") || (!e.Dir && r.Type != "file" && r.Type != "link")) {
			if !s.Delete {
				return nil, fmt.Errorf("%s is a %s on the host where src has a %s: remove it, or set delete = true to replace it", displayName(e.Rel), r.Type, map[bool]string{true: "directory", false: "file"}[e.Dir])
			}
			pl.Deletes = append(pl.Deletes, e.Rel)
			deleted[e.Rel] = true
			add(e.Rel, r.Type, "removed, to be replaced")
			r = nil
		}
		if e.Dir {
			if r == nil {
				if e.Rel != "." {
					pl.Mkdirs = append(pl.Mkdirs, treeAttr{Rel: e.Rel, Mode: want, Owner: s.Owner, Group: s.Group})
					before, after, _, err := withSE(e.Rel, false, "absent", "directory "+fmtMode(want))
					if err != nil {
						return nil, err
					}
					add(e.Rel+"/", before, after)
					nAdd++
				} else {
					pl.Attrs = append(pl.Attrs, treeAttr{Rel: ".", Mode: want, Owner: s.Owner, Group: s.Group})
					if _, rootSE, _, err = withSE(".", false, "", ""); err != nil {
						return nil, err
					}
				}
				continue
			}
			a, diff := attrChange(r, want, s)
			before, after, seNeed, err := withSE(e.Rel, true, diff[0], diff[1])
			if err != nil {
				return nil, err
			}
			if a != nil {
				a.Rel = e.Rel
				pl.Attrs = append(pl.Attrs, *a)
			}
			if a != nil || seNeed {
				add(dirName(e.Rel), before, after)
				nChange++
			}
			continue
		}
		sum := e.Sum
		if sum == "" {
			if sum, err = localSum(req, path.Join(s.Src, e.Rel), buf); err != nil {
				return nil, fmt.Errorf("src %s: %w", path.Join(s.Src, e.Rel), err)
			}
		}
		up := treeUpload{Rel: e.Rel, Size: e.Size, Sum: sum, Mode: want, Owner: s.Owner, Group: s.Group}
		switch {
		case r == nil || r.Type == "link":
			// A file replacing a link is new to SELinux too: the link's
			// context is not the file's.
			pl.Uploads = append(pl.Uploads, up)
			before := "absent"
			if r != nil {
				before = "link"
				nChange++
			} else {
				nAdd++
			}
			before, after, _, err := withSE(e.Rel, false, before, fmt.Sprintf("file %s, %s", fmtMode(want), shortSum(sum)))
			if err != nil {
				return nil, err
			}
			add(e.Rel, before, after)
		case r.Sum != sum:
			// Replaced files keep their owner and group unless given.
			if up.Owner == "" {
				up.Owner = r.UID
			}
			if up.Group == "" {
				up.Group = r.GID
			}
			pl.Uploads = append(pl.Uploads, up)
			before := "content " + shortSum(r.Sum)
			if r.Sum == "" {
				before = "content unknown (unreadable)"
			}
			after := "content " + shortSum(sum)
			if r.Mode != want {
				before += ", mode " + fmtMode(r.Mode)
				after += ", mode " + fmtMode(want)
			}
			// The new file keeps the old one's context, then gets the
			// given parts.
			if before, after, _, err = withSE(e.Rel, true, before, after); err != nil {
				return nil, err
			}
			add(e.Rel, before, after)
			nChange++
		default:
			a, diff := attrChange(r, want, s)
			before, after, seNeed, err := withSE(e.Rel, true, diff[0], diff[1])
			if err != nil {
				return nil, err
			}
			if a != nil {
				a.Rel = e.Rel
				pl.Attrs = append(pl.Attrs, *a)
			}
			if a != nil || seNeed {
				add(e.Rel, before, after)
				nChange++
			}
		}
	}
	if s.Delete && tp.Root == "directory" {
		wanted := map[string]bool{}
		for _, e := range ents {
			wanted[e.Rel] = true
		}
		var extra []string
		for rel := range tp.Entries {
			if rel == "." || wanted[rel] || excluded(s.Exclude, rel) {
				continue
			}
			extra = append(extra, rel)
		}
		sort.Strings(extra)
		for _, rel := range extra {
			// Only the topmost of a removed subtree is listed.
			top := true
			for p := path.Dir(rel); p != "."; p = path.Dir(p) {
				if !wanted[p] {
					top = false
					break
				}
			}
			if !top || deleted[rel] {
				continue
			}
			pl.Deletes = append(pl.Deletes, rel)
			what := tp.Entries[rel].Type
			name := rel
			if what == "directory" {
				name = rel + "/"
				n := 0
				for o := range tp.Entries {
					if strings.HasPrefix(o, rel+"/") {
						n++
					}
				}
				if n > 0 {
					what = fmt.Sprintf("directory and the %d entries in it", n)
				}
			}
			add(name, what, "absent")
			nDelete++
		}
	}
	if len(ch.Fields) == 0 && len(pl.Attrs) == 0 && len(pl.SERels) == 0 {
		return &Change{Action: None}, nil
	}
	if pl.MkRoot {
		root := Field{Name: ".", Before: "absent", After: "directory"}
		for _, a := range pl.Attrs {
			if a.Rel == "." {
				root.After += " " + fmtMode(a.Mode)
			}
		}
		if rootSE != "" {
			root.After += ", " + rootSE
		}
		ch.Fields = append([]Field{root}, ch.Fields...)
	}
	ch.Message = fmt.Sprintf("%d added, %d changed, %d removed", nAdd, nChange, nDelete)
	if s.ValidateCmd != "" && len(pl.Uploads) > 0 {
		ch.Message = joinMessage(ch.Message, "not validated yet: apply runs validate ("+s.ValidateCmd+") on each new file before any is moved into place")
	}
	ch.Plan = pl
	return ch, nil
}

// treeRelName shows an entry's relative path in messages ("." for path).
func treeRelName(rel string) string {
	if rel == "." {
		return "."
	}
	return displayName(rel)
}

// dirName shows a directory's relative path with a trailing slash.
func dirName(rel string) string {
	if rel == "." {
		return "."
	}
	return displayName(rel) + "/"
}

// attrChange compares an existing entry's attributes with the wanted
// ones: nil when they agree, else what to set and the field's before and
// after.
func attrChange(r *remoteEntry, mode uint32, s *TreeSpec) (*treeAttr, [2]string) {
	var a treeAttr
	var before, after []string
	st := r.stat()
	if r.Mode != mode {
		a.Mode = mode
		before, after = append(before, "mode "+fmtMode(r.Mode)), append(after, "mode "+fmtMode(mode))
	}
	if s.Owner != "" && !st.ownerIs(s.Owner) {
		a.Owner = s.Owner
		before, after = append(before, "owner "+st.owner()), append(after, "owner "+s.Owner)
	}
	if s.Group != "" && !st.groupIs(s.Group) {
		a.Group = s.Group
		before, after = append(before, "group "+st.group()), append(after, "group "+s.Group)
	}
	if len(before) == 0 {
		return nil, [2]string{}
	}
	if a.Mode == 0 && a.Owner == "" && a.Group == "" {
		return nil, [2]string{}
	}
	return &a, [2]string{strings.Join(before, ", "), strings.Join(after, ", ")}
}

// Apply writes the tree: the new and changed files travel in one tar
// archive (one upload), then one script unpacks them into a private
// staging directory inside path, sets their modes and owners, runs
// validate on each, and only then removes what goes, creates the new
// directories and renames the files into place (one mv per directory).
func (treeProvider) Apply(ctx context.Context, h Host, s *TreeSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[treePlan](ch, "tree")
	if err != nil {
		return nil, err
	}
	if pl.MkRoot {
		if _, err := run(ctx, h, "create "+pl.Path, "mkdir -p -- "+shell.Quote(pl.Path), nil); err != nil {
			return nil, err
		}
	}
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	stage := ".opsmop-tree." + hex.EncodeToString(tok[:])
	tarName := stage + ".tar"
	if len(pl.Uploads) > 0 {
		data, err := treeTar(req, pl)
		if err != nil {
			return nil, err
		}
		opts := connection.UploadOptions{Mode: 0o600}
		if req != nil {
			opts.Progress = req.Progress
		}
		if err := h.Upload(ctx, path.Join(pl.Path, tarName), bytes.NewReader(data), int64(len(data)), opts); err != nil {
			return nil, err
		}
	}
	script, err := treeScript(pl, stage, tarName)
	if err != nil {
		return nil, err
	}
	// The script names every file: it travels as sh's stdin, not as an
	// argument (a local host's `sh -c SCRIPT` has a 128 KiB limit).
	res, err := h.Run(ctx, "exec sh", strings.NewReader(script))
	if err != nil {
		return nil, fmt.Errorf("write tree: %w", err)
	}
	if res.ExitCode == 3 {
		// validate refused a file: stderr says which (opsmop-validate=N).
		first, rest, _ := strings.Cut(string(res.Stderr), "\n")
		idx, _ := strconv.Atoi(strings.TrimPrefix(first, "opsmop-validate="))
		name := "a file"
		if idx >= 0 && idx < len(pl.Uploads) {
			name = displayName(pl.Uploads[idx].Rel)
		}
		return nil, fmt.Errorf("validate (%s) failed for %s, so no file of the tree was replaced: %s", pl.Validate, name, strings.TrimSpace(lastLines([]byte(rest), 20)))
	}
	if res.ExitCode != 0 {
		return nil, &CommandError{What: "write tree", ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 10)}
	}
	return &Outcome{}, nil
}

// treeTar packs the files to upload, named by their relative paths,
// verifying that each still has the sum Check saw.
func treeTar(req *Request, pl treePlan) ([]byte, error) {
	if req == nil || req.Open == nil {
		return nil, fmt.Errorf("src %s: no local file access in this context", pl.Src)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now() // the files' mtime: the time they are written

	for _, u := range pl.Uploads {
		src := path.Join(pl.Src, u.Rel)
		rc, size, err := req.Open(src)
		if err != nil {
			return nil, fmt.Errorf("src %s: %w", src, err)
		}
		if size != u.Size {
			rc.Close()
			return nil, fmt.Errorf("src %s: changed since check (%d bytes, was %d): run again", src, size, u.Size)
		}
		hdr := &tar.Header{Name: u.Rel, Mode: 0o600, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatGNU, ModTime: now}
		if err := tw.WriteHeader(hdr); err != nil {
			rc.Close()
			return nil, fmt.Errorf("src %s: %w", src, err)
		}
		vr := &verifyReader{r: rc, h: sha256.New(), want: u.Sum, name: src}
		_, err = io.Copy(tw, vr)
		rc.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// treeArgs writes cmd once per group of at most treeHashChunk bytes of
// quoted arguments.
func treeArgs(b *strings.Builder, cmd string, args []string, suffix string) {
	var cur strings.Builder
	for _, a := range args {
		if cur.Len() > treeHashChunk {
			b.WriteString(cmd + cur.String() + suffix + "\n")
			cur.Reset()
		}
		cur.WriteString(" " + shell.Quote(a))
	}
	if cur.Len() > 0 {
		b.WriteString(cmd + cur.String() + suffix + "\n")
	}
}

// treeScript is Apply's one script (see Apply), run in path.
func treeScript(pl treePlan, stage, tarName string) (string, error) {
	var b strings.Builder
	b.WriteString("set -e\ncd -- " + shell.Quote(pl.Path) + "\numask 077\n")
	st := "./" + stage
	if len(pl.Uploads) > 0 {
		b.WriteString("trap 'rm -rf -- " + st + " ./" + tarName + "' EXIT\n")
		b.WriteString("mkdir -- " + st + "\ntar -x -o -f ./" + tarName + " -C " + st + "\n")
		// Modes and owners, grouped so that each is one command.
		byMode := map[uint32][]string{}
		byOwner := map[[2]string][]string{}
		for _, u := range pl.Uploads {
			byMode[u.Mode] = append(byMode[u.Mode], st+"/"+u.Rel)
			if u.Owner != "" || u.Group != "" {
				k := [2]string{u.Owner, u.Group}
				byOwner[k] = append(byOwner[k], st+"/"+u.Rel)
			}
		}
		for _, k := range sortedKeys(byOwner) {
			treeArgs(&b, shell.Chown(k[0], k[1], false), byOwner[k], "")
		}
		for _, m := range sortedKeys(byMode) {
			treeArgs(&b, "chmod "+fmtMode(m)+" --", byMode[m], "")
		}
		if pl.Validate != "" {
			for i, u := range pl.Uploads {
				cmd, err := validateCommand(pl.Validate, path.Join(pl.Path, stage, u.Rel))
				if err != nil {
					return "", err
				}
				fmt.Fprintf(&b, "if ! out=$( (%s) </dev/null 2>&1); then printf 'opsmop-validate=%d\\n%%s\\n' \"$out\" >&2; exit 3; fi\n", cmd, i)
			}
		}
	}
	treeArgs(&b, "rm -rf --", prefixed(pl.Deletes), "")
	for _, d := range pl.Mkdirs {
		b.WriteString("mkdir -- " + shell.Quote("./"+d.Rel) + "\n")
	}
	// Files into place: one mv per directory.
	byDir := map[string][]string{}
	for _, u := range pl.Uploads {
		d := path.Dir(u.Rel)
		byDir[d] = append(byDir[d], st+"/"+u.Rel)
	}
	// Where SELinux is on, each file keeps the context of the one it
	// replaces, a new one gets the policy default, and so do new
	// directories (connection.SELinuxRename, one file at a time).
	if len(pl.Uploads) > 0 || len(pl.Mkdirs) > 0 {
		b.WriteString("[ -n \"${__opsmop_se-}\" ] || { __opsmop_se=0; if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled >/dev/null 2>&1; then __opsmop_se=1; fi; }\nif [ \"$__opsmop_se\" = 1 ]; then\n")
		mk := make([]string, len(pl.Mkdirs))
		for i, d := range pl.Mkdirs {
			mk[i] = "./" + d.Rel
		}
		treeArgs(&b, "restorecon --", mk, " || { echo 'SELinux is on but restorecon could not give the new directories their policy default context: install policycoreutils' >&2; exit 1; }")
		if len(pl.Uploads) > 0 {
			b.WriteString("for f in")
			for _, u := range pl.Uploads {
				b.WriteString(" " + shell.Quote(u.Rel))
			}
			b.WriteString("; do " + connection.SELinuxRename(`"`+st+`/$f"`, `"./$f"`) + " || exit 1; done\n")
		}
		b.WriteString("else\n:\n")
	}
	for _, d := range sortedKeys(byDir) {
		treeArgs(&b, "mv -f --", byDir[d], " "+shell.Quote("./"+d+"/"))
	}
	if len(pl.Uploads) > 0 || len(pl.Mkdirs) > 0 {
		b.WriteString("fi\n")
	}
	// The given SELinux context parts, once every entry is in place.
	if !pl.SE.empty() {
		treeArgs(&b, pl.SE.command(), prefixed(pl.SERels), "")
	}
	// Attributes of existing entries and of new directories (last, so a
	// read-only dir_mode does not stop the writes into it).
	attrs := append(append([]treeAttr(nil), pl.Attrs...), pl.Mkdirs...)
	byMode := map[uint32][]string{}
	byOwner := map[[2]string][]string{}
	for _, a := range attrs {
		if a.Owner != "" || a.Group != "" {
			k := [2]string{a.Owner, a.Group}
			byOwner[k] = append(byOwner[k], "./"+a.Rel)
		}
		if a.Mode != 0 {
			byMode[a.Mode] = append(byMode[a.Mode], "./"+a.Rel)
		}
	}
	for _, k := range sortedKeys(byOwner) {
		treeArgs(&b, shell.Chown(k[0], k[1], false), byOwner[k], "")
	}
	for _, m := range sortedKeys(byMode) {
		treeArgs(&b, "chmod "+fmtMode(m)+" --", byMode[m], "")
	}
	return b.String(), nil
}

// prefixed returns each relative path with "./" before it.
func prefixed(rels []string) []string {
	out := make([]string, len(rels))
	for i, r := range rels {
		out[i] = "./" + r
	}
	return out
}

// sortedKeys returns m's keys in a stable order.
func sortedKeys[K comparable, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	return keys
}
