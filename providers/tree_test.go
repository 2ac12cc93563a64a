package providers

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// treeSubnet is the lab subnet of the tree tests.
const treeSubnet = 35

// treeDocs is the tree entry of typeDocs: the Behaviour section and the
// examples of docs/resources/tree.md.
func treeDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- Like Ansible's `copy` of a directory (with `delete` as in `synchronize`'s `delete: yes`), `src` is copied *into* `path`: `src = \"files/app\"`, `path = \"/etc/app\"` makes `files/app/conf.d/x.conf` `/etc/app/conf.d/x.conf`. `path` and missing parents are created.\n" +
			"- One probe for the whole tree, in the host's one-round-trip probe batch: one `find` lists type, size, mode, owner and group of everything under `path` (`stat -c` for many names per process), and one `sha256sum` (or `shasum -a 256`) process per few thousand names hashes every wanted file that exists there. The hash tool is given the names opsmop expects, so its output is parsed against names known on the controller; names holding a newline are listed in hex. Every wanted file is hashed, whatever its size: with a few processes for the whole tree, reading small files costs less than one more process per size. The probe also carries the sha256 of the hash tool's whole answer as it reads when every file is as wanted; when the host's answer matches it, the host prints `sums=same` instead of a line per file (names with a backslash, newline or carriage return, which the tools escape, turn this off for the tree), so a no-op check of 2,000 files brings back the listing and one line. The answer is printed in one write at the end. A host without sha256sum and shasum fails the check saying what to install.\n" +
			"- The change names each entry: an added file (`absent -> file 0644, sha256:…`), a changed one (`content sha256:… -> sha256:…`, mode when it changes too), an attribute change (`mode 0644 -> 0755`, `owner`, `group`) and, with `delete = true`, each removed entry (a removed directory once, with the count of entries in it). The message counts them (`3 added, 1 changed, 0 removed`). Contents are not diffed line by line (use `file` for a file whose diff you want to see).\n" +
			"- Apply sends all new and changed files in **one** upload (a tar archive, over SFTP or, where SFTP cannot start, through the persistent shell; under sudo as for `file`), then runs **one** script: it unpacks into a private staging directory inside `path` (so every rename is atomic, on the same file system), sets modes and owners (one `chmod`/`chown` per distinct value), runs `validate` on each file, and only when all passed removes what goes, creates new directories and renames the files into place (one `mv` per directory). If `validate` fails for any file, nothing under `path` changes and the error names the file and shows the command's output. The host needs `tar` (GNU or busybox), `find`, `stat`, `od`.\n" +
			"- Modes follow src (the exec bit survives; umask plays no part) unless `file_mode`/`dir_mode` is given; `dir_mode` applies to `path` itself as well (without it a new `path` gets src's mode and an existing one keeps its own, as Ansible's `copy` leaves `dest` alone). `owner`/`group` apply to every entry, `path` included; unset, new entries belong to the user opsmop writes as (the sudo user), and a replaced file keeps its owner and group (as with `file`).\n" +
			"- Symlinks in src are refused (the check names them): a link could point out of src, and following it silently would copy what the policy does not show. Replace the link by what it points to, exclude it, or create it on the host with a `link` resource. Devices, fifos and sockets in src are refused too. On the host, a symlink where src has a file is replaced by the file (the link's target is left alone); a directory where src has a file (or the reverse) is an error unless `delete = true`, which replaces it. `path` itself must be a directory, not a symlink to one.\n" +
			"- `exclude`: patterns with `*`, `?` and `[...]` (Go's path.Match). A pattern without `/` matches any single name at any depth (`*.log`, `.git`); one with `/` matches the path relative to src (`cache/tmp`). An excluded directory excludes everything beneath. Excluded paths are left alone on both sides: not copied, not compared, and never removed by `delete`.\n" +
			"- `delete = true` removes what src does not have (Ansible's `synchronize` with `delete: yes`); refused with `path = \"/\"`. Without it, extra files on the host are kept and not shown.\n" +
			"- `opsmop validate` reports, at the key's line: a missing `src`, a relative `path`, a bad `file_mode`/`dir_mode`, owner or group, an invalid exclude pattern, and a `validate` without a bare `%s`. A src that is missing, not a directory, or holds a symlink is reported by check, naming the host and the resource.\n" +
			"- SELinux: `seuser`, `serole`, `setype` and `selevel` set those parts of the context (`chcon`, one process per few thousand names) of `path` and of every entry copied from src; entries src does not have and excluded ones keep their own. Where SELinux is on, a replaced file first keeps the context of the file it replaces and a new entry gets the policy default (`restorecon`), as for `file`; the given parts are set after that. The probe reads the contexts in the same round trip, only when a key is given (`ls -Zd` given many names per process; a name that `ls` might print otherwise, with control characters, a backslash or bytes that are not printable UTF-8, gets its own `ls`), and the change names each entry whose context differs (`sub/b.conf: setype etc_t -> setype httpd_sys_content_t`). On a host where SELinux is off an se* key fails the resource, as for `file`.\n" +
			"- The tree is read into memory for the upload: keep trees that are large in bytes (not in files) in a package or an archive (`unarchive`).\n- Limits: the probe names every wanted file (for the hash tool). On a `--local` run a script travels as `sh` arguments, at most about 2 MiB in all on Linux (a quarter of the stack limit), so a tree of more than about 30,000 files with long names fails the probe with \"argument list too long\"; over SSH scripts travel as files and there is no such limit. Excluded names are pruned by the host's `find` (not listed at all) when the pattern has no slash and only plain characters, `*` and `?`; other patterns (a slash, brackets, backslashes, whose meaning differs between Go's path.Match and find's fnmatch) are listed and filtered on the controller.",
		toml: `[[roles.resources]]
type = "tree"
src = "files/nginx"
path = "/etc/nginx"
delete = true
exclude = ["*.swp", "modules-enabled"]
owner = "root"
group = "root"
dir_mode = "0755"
validate = "test -r %s"

[[roles.resources]]
type = "tree"
src = "files/scripts"
path = "/opt/app/bin"`,
		yaml: `- type: tree
  src: files/nginx
  path: /etc/nginx
  delete: true
  exclude: ["*.swp", modules-enabled]
  owner: root
  group: root
  dir_mode: "0755"
  validate: test -r %s
- type: tree
  src: files/scripts
  path: /opt/app/bin`,
	}
}

func TestTreeValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"minimal", &TreeSpec{Src: "files/app", Path: "/etc/app"}, nil},
		{"everything", &TreeSpec{Src: "files/app", Path: "/etc/app", Delete: true, Mode: "0640", DirMode: "0750", Owner: "root", Group: "0", Exclude: []string{"*.log", "cache/tmp"}, ValidateCmd: "test -r %s"}, nil},
		{"no src", &TreeSpec{Path: "/etc/app"}, []string{"src: src is required"}},
		{"relative path", &TreeSpec{Src: "a", Path: "etc/app"}, []string{"path: "}},
		{"delete root", &TreeSpec{Src: "a", Path: "/", Delete: true}, []string{"delete: refusing delete = true with path = \"/\""}},
		{"bad modes", &TreeSpec{Src: "a", Path: "/x", Mode: "rwx", DirMode: "0999"}, []string{"file_mode: ", "dir_mode: "}},
		{"bad owner", &TreeSpec{Src: "a", Path: "/x", Owner: "a:b"}, []string{"owner: "}},
		{"bad exclude", &TreeSpec{Src: "a", Path: "/x", Exclude: []string{"[", ""}}, []string{"exclude: exclude pattern \"[\" is not a valid glob", "exclude: an exclude pattern is empty"}},
		{"validate without %s", &TreeSpec{Src: "a", Path: "/x", ValidateCmd: "true"}, []string{"validate: validate has no %s"}},
	})
}

func TestTreeExcluded(t *testing.T) {
	for _, tc := range []struct {
		pats []string
		rel  string
		want bool
	}{
		{[]string{"*.log"}, "a/b/x.log", true},
		{[]string{"*.log"}, "a/b/x.txt", false},
		{[]string{"cache"}, "cache/x/y", true},
		{[]string{"a/cache"}, "cache/x", false},
		{[]string{"a/cache"}, "a/cache/x", true},
		{[]string{"./a/cache/"}, "a/cache", true},
	} {
		t.Run(fmt.Sprint(tc.pats, tc.rel), func(t *testing.T) {
			if got := excluded(tc.pats, tc.rel); got != tc.want {
				t.Errorf("got %v; want %v", got, tc.want)
			}
		})
	}
}

func TestTreeMatchSumLine(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, s, file string
		wantN         int
	}{
		{"plain", sum + "  ./a b\nrest", "./a b", len(sum) + 8},
		{"busybox newline", sum + "  ./a\nb\nrest", "./a\nb", len(sum) + 8},
		{"gnu escaped", "\\" + sum + "  ./a\\nb\\\\c\nrest", "./a\nb\\c", 1 + len(sum) + 12},
		{"other file", sum + "  ./c\n", "./a", 0},
		{"not a sum", "hello  ./a\n", "./a", 0},
		{"prefix of a longer name", sum + "  ./ab\n", "./a", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, n := matchSumLine(tc.s, tc.file)
			if n != tc.wantN {
				t.Fatalf("length: got %d; want %d", n, tc.wantN)
			}
			if n > 0 && got != sum {
				t.Errorf("sum: got %q; want %q", got, sum)
			}
		})
	}
}

// treeHostileNames are src file names a tree must carry unharmed.
var treeHostileNames = []string{"-dash", "it's \"quoted\"", "new\nline", "non-utf8-\xff\xfe", "back\\slash", "sp ace $(x) `y` *", "tab\there"}

// makeTreeSrc writes the source tree of the tests under dir/src.
func makeTreeSrc(t *testing.T, dir string) {
	t.Helper()
	files := map[string]string{
		"etc/app.conf":       "listen 80\n",
		"bin/run.sh":         "#!/bin/sh\necho run\n",
		"deep/a/b/c.txt":     "deep\n",
		"empty":              "",
		"skip.log":           "excluded\n",
		"cache/tmp/big.bin":  "excluded too\n",
		"conf.d/x.conf":      "x = 1\n",
		"conf.d/y.conf":      "y = 2\n",
		"-dir/with space/--": "dashes\n",
	}
	for _, n := range treeHostileNames {
		files["hostile/"+n] = "name " + n + "\n"
	}
	for n, c := range files {
		p := filepath.Join(dir, "src", n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(n, ".sh") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(c), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "src", "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "src", "emptydir"), 0o750); err != nil {
		t.Fatal(err)
	}
}

// countingHost counts the round trips (Run, RunProbes, Upload) sent to h.
type countingHost struct {
	h       Host
	runs    int
	uploads int
	last    []byte // the stdout of the last Run
}

func (c *countingHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	c.runs++
	res, err := c.h.Run(ctx, script, stdin)
	c.last = res.Stdout
	return res, err
}

func (c *countingHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	c.runs++
	return c.h.RunProbes(ctx, probes)
}

func (c *countingHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	c.uploads++
	return c.h.Upload(ctx, dst, r, size, opts)
}

func (c *countingHost) reset() { c.runs, c.uploads = 0, 0 }

// treeSnap describes everything under dir on the host (names in hex, type,
// mode, owner, size, mtime and content sum), to prove check wrote nothing.
func treeSnap(t *testing.T, root func(*testing.T, string) string, dir string) func() string {
	return func() string {
		return root(t, "cd "+shell.Quote(dir)+" 2>/dev/null || exit 0; find . -exec sh -c 'for f do printf %s \"$f\" | od -An -tx1 | tr -d \" \\n\"; stat -c \" %F %a %U %G %s %Y\" \"$f\"; [ -f \"$f\" ] && [ ! -L \"$f\" ] && cksum < \"$f\"; done' sh {} + | sort")
	}
}

// treeHost is a host the tree tests run on, and how.
type treeHost struct {
	name string
	h    Host
	root func(t *testing.T, script string) string
	// owner is a user other than the writer that owner may name.
	owner string
}

// TestTreeLab runs tree against real hosts: over SSH as ops under sudo
// with SFTP and without it (uploads through the persistent shell), on
// Local, and on a local busybox-only shell (busybox sh as /bin/sh, only
// busybox's applets on PATH). Each: check shows each added file and
// leaves the host untouched, apply writes the tree (hostile names, exec
// bit, empty dir, excludes) in one upload and one script, a second check
// is clean and costs one round trip; drift (a file edited, a mode changed,
// extra files with delete) is named and repaired; excluded files survive
// delete; file_mode/dir_mode/owner apply; a validate failure changes
// nothing and names the file; bad input is a clear error.
func TestTreeLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: treeSubnet, Hosts: []lab.HostSpec{{Name: "sftp"}, noSFTPSpec("nosftp")}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	k := newLabKit(t, ctx, l)
	k.root("nosftp")(t, removeSFTPServers)
	cases := []treeHost{
		{"sftp", k.connect(t, "sftp", "ops", "root"), k.root("sftp"), "app"},
		{"shell", k.connect(t, "nosftp", "ops", "root"), k.root("nosftp"), "app"},
		{"local", &connection.Local{CommandTimeout: 30 * time.Second}, localRoot(ctx), "nobody"},
		{"busybox", newBusyboxHost(t), localRoot(ctx), "nobody"},
	}
	local := t.TempDir()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := "/srv/tree"
			if c.name == "local" || c.name == "busybox" {
				base = filepath.Join(local, c.name)
			}
			c.root(t, "mkdir -p "+shell.Quote(base))
			testTree(t, ctx, c, base)
		})
	}
}

func testTree(t *testing.T, ctx context.Context, c treeHost, base string) {
	src := t.TempDir()
	makeTreeSrc(t, src)
	dst := base + "/app"
	snap := treeSnap(t, c.root, base)
	ch := &countingHost{h: c.h}
	spec := &TreeSpec{Src: "src", Path: dst, Exclude: []string{"*.log", "cache"}}
	req := func() *Request { return newReq(spec, src, nil, nil) }
	p := mustProvider("tree")

	first := converge(t, ch, p, req(), snap, Create)
	fm := fieldMap(first)
	for name, want := range map[string]string{
		"bin/run.sh":          "absent -> file 0755, ",
		"emptydir/":           "absent -> directory 0750",
		`"hostile/new\nline"`: "absent -> file 0644, ",
		"hostile/-dash":       "absent -> file 0644, ",
	} {
		if !strings.HasPrefix(fm[name], want) {
			t.Errorf("field %s: got %q; want prefix %q (fields %v)", name, fm[name], want, sortedFieldNames(first))
		}
	}
	for _, n := range []string{"skip.log", "cache/"} {
		if _, ok := fm[n]; ok {
			t.Errorf("excluded %s is in the change", n)
		}
	}
	// The files arrived as they are.
	for _, n := range treeHostileNames {
		if got := c.root(t, "cat "+shell.Quote(dst+"/hostile/"+n)); got != "name "+n+"\n" {
			t.Errorf("hostile/%q: got %q", n, got)
		}
	}
	if got := c.root(t, "cd "+shell.Quote(dst)+" && stat -c '%a' bin/run.sh etc/app.conf emptydir './-dir/with space/--' && ls -A | grep -c opsmop || true"); got != "755\n644\n750\n644\n0\n" {
		t.Errorf("modes and leftovers: got %q", got)
	}

	// A no-op check: one round trip (the probe), nothing changes.
	ch.reset()
	if c2, err := check(t, ctx, ch, p, req()); err != nil || c2.Changed() {
		t.Fatalf("re-check: got %v, %v; want no change", c2, err)
	}
	if ch.runs != 1 || ch.uploads != 0 {
		t.Errorf("no-op check: got %d runs and %d uploads; want 1 and 0", ch.runs, ch.uploads)
	}
	// Without names the hash tools escape (hostile/ has a backslash and a
	// newline), the host answers a no-op with one line for all the sums,
	// and a changed file with every sum, so the change is still seen.
	plain := &TreeSpec{Src: "src", Path: dst, Exclude: []string{"*.log", "cache", "hostile"}}
	if c2, err := check(t, ctx, ch, p, newReq(plain, src, nil, nil)); err != nil || c2.Changed() {
		t.Fatalf("re-check without hostile/: got %v, %v; want no change", c2, err)
	}
	if !bytes.HasSuffix(ch.last, []byte("\nsums=same\n")) {
		t.Errorf("no-op probe answer: got %q; want it to end in sums=same", firstLines(ch.last, 3))
	}
	c.root(t, "cd "+shell.Quote(dst)+" && echo drift >> etc/app.conf")
	c2, err := check(t, ctx, ch, p, newReq(plain, src, nil, nil))
	if err != nil || fieldMap(c2)["etc/app.conf"] == "" || len(c2.Fields) != 1 {
		t.Fatalf("check after etc/app.conf changed: got %v, %v; want a change of etc/app.conf only", c2, err)
	}
	if !bytes.Contains(ch.last, []byte("\nsums=\n")) {
		t.Errorf("probe answer with a changed file: got %q; want every sum", firstLines(ch.last, 3))
	}
	converge(t, ch, p, newReq(plain, src, nil, nil), snap, Update)
	ch.reset()

	// Drift: edited, chmodded, extra files; excluded files on the host.
	c.root(t, "cd "+shell.Quote(dst)+" && echo edited >> etc/app.conf && chmod 600 bin/run.sh && echo stray > stray && mkdir -p olddir/sub && echo x > olddir/sub/x && mkdir -p cache && echo keep > cache/keep && echo keep > keep.log")
	spec.Delete = true
	ch.reset()
	drift := converge(t, ch, p, req(), snap, Update)
	fm = fieldMap(drift)
	for name, want := range map[string]string{
		"etc/app.conf": "content sha256:",
		"bin/run.sh":   "mode 0600 -> mode 0755",
		"stray":        "file -> absent",
		"olddir/":      "directory and the 2 entries in it -> absent",
	} {
		if !strings.HasPrefix(fm[name], want) {
			t.Errorf("drift field %s: got %q; want prefix %q (fields %v)", name, fm[name], want, sortedFieldNames(drift))
		}
	}
	if len(drift.Fields) != 4 {
		t.Errorf("drift: got fields %v; want 4", drift.Fields)
	}
	if got := c.root(t, "cd "+shell.Quote(dst)+" && cat etc/app.conf cache/keep keep.log && ls -d stray olddir 2>&1 | grep -c 'No such'"); got != "listen 80\nkeep\nkeep\n2\n" {
		t.Errorf("after repair: got %q", got)
	}
	// Excluded names are pruned on the host: not even listed.
	if c3, err := check(t, ctx, ch, p, req()); err != nil || c3.Changed() {
		t.Fatalf("check after the repair: got %v, %v; want no change", c3, err)
	}
	if bytes.Contains(ch.last, []byte("keep")) || !bytes.Contains(ch.last, []byte("./etc/app.conf")) {
		t.Errorf("listing: got %q; want etc/app.conf without cache/keep and keep.log", ch.last)
	}
	ch.runs--
	// The first check saw the drift (4 fields) but wrote nothing: checked
	// by converge's snapshot. Apply: mkdir-free, one upload, one script.
	if ch.uploads != 1 || ch.runs != 3 { // check, apply script, re-check
		t.Errorf("drift converge: got %d runs and %d uploads; want 3 and 1", ch.runs, ch.uploads)
	}

	// file_mode, dir_mode, owner and group.
	spec.Mode, spec.DirMode, spec.Owner, spec.Group = "0640", "0711", c.owner, "0"
	converge(t, ch, p, req(), snap, Update)
	if got := c.root(t, "cd "+shell.Quote(dst)+" && find . ! -name keep ! -name keep.log ! -path ./cache \\( ! -user "+c.owner+" -o ! -group 0 -o \\( -type f ! -perm 0640 \\) -o \\( -type d ! -perm 0711 \\) \\) -print | head -5"); got != "" {
		t.Errorf("entries without owner %s, group 0, mode 0640/0711: %q", c.owner, got)
	}
	spec.Mode, spec.DirMode, spec.Owner, spec.Group = "", "", "", ""

	// validate: a refused file changes nothing, and the error names it.
	spec.ValidateCmd = "! grep -q BAD %s"
	if err := os.WriteFile(filepath.Join(src, "src/conf.d/y.conf"), []byte("BAD\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "src/conf.d/new.conf"), []byte("fine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The staging directory was created and removed in path: only path's
	// own mtime may change.
	contentSnap := func() string {
		return c.root(t, "cd "+shell.Quote(dst)+" && find . ! -path . -exec sh -c 'for f do printf %s \"$f\" | od -An -tx1 | tr -d \" \\n\"; stat -c \" %F %a %U %G %s %Y\" \"$f\"; [ -f \"$f\" ] && cksum < \"$f\"; done' sh {} + | sort")
	}
	before := contentSnap()
	vc, err := check(t, ctx, ch, p, req())
	if err != nil || !vc.Changed() {
		t.Fatalf("check before validate: %v, %v", vc, err)
	}
	_, err = p.Apply(ctx, ch, req(), vc)
	if err == nil || !strings.Contains(err.Error(), "conf.d/y.conf") || !strings.Contains(err.Error(), "no file of the tree was replaced") {
		t.Errorf("validate failure: got %v; want an error naming conf.d/y.conf", err)
	}
	if after := contentSnap(); after != before {
		t.Errorf("a refused validate changed the host:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if err := os.WriteFile(filepath.Join(src, "src/conf.d/y.conf"), []byte("good\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	converge(t, ch, p, req(), snap, Update)
	spec.ValidateCmd = ""

	// Bad input: a missing src, a symlink in src, path a file.
	for _, tc := range []struct {
		name string
		spec *TreeSpec
		want string
	}{
		{"missing src", &TreeSpec{Src: "nope", Path: dst}, "src nope: "},
		{"src a file", &TreeSpec{Src: "src/empty", Path: dst}, "is not a directory"},
		{"path a file", &TreeSpec{Src: "src", Path: dst + "/etc/app.conf"}, "path exists and is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(t, ctx, ch, p, newReq(tc.spec, src, nil, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v; want an error with %q", err, tc.want)
			}
		})
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "src/conf.d/link")); err != nil {
		t.Fatal(err)
	}
	_, err = check(t, ctx, ch, p, req())
	if err == nil || !strings.Contains(err.Error(), "symlink conf.d/link") {
		t.Errorf("symlink in src: got %v; want a refusal naming it", err)
	}
	os.Remove(filepath.Join(src, "src/conf.d/link"))
	c.root(t, "rm -rf "+shell.Quote(dst))
}

// busyboxHost runs scripts with busybox sh, with only busybox's applets
// on PATH, on this machine.
type busyboxHost struct{ bin string }

func newBusyboxHost(t *testing.T) *busyboxHost {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox: %v (bash .ci/deps installs it)", err)
	}
	bin := t.TempDir()
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields(string(out)) {
		if err := os.Symlink(bb, filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	return &busyboxHost{bin: bin}
}

func (b *busyboxHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(b.bin, "sh"), "-c", script)
	cmd.Env = []string{"PATH=" + b.bin, "LC_ALL=C"}
	cmd.Stdin = stdin
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := connection.Result{Stdout: []byte(out.String()), Stderr: []byte(errb.String())}
	if ee, ok := err.(*exec.ExitError); ok {
		res.ExitCode = ee.ExitCode()
		err = nil
	}
	return res, err
}

func (b *busyboxHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	var out []connection.Result
	for _, p := range probes {
		r, err := b.Run(ctx, p.Script, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (b *busyboxHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	script := "set -e\nt=" + shell.Quote(path.Dir(dst)+"/.up.tmp") + "\ncat > \"$t\"\nchmod 600 \"$t\"\nmv -f \"$t\" " + shell.Quote(dst)
	res, err := b.Run(ctx, script, io.LimitReader(r, size))
	if err == nil && res.ExitCode != 0 {
		err = fmt.Errorf("upload %s: exit %d: %s", dst, res.ExitCode, res.Stderr)
	}
	return err
}

func TestTreeHostPrune(t *testing.T) {
	for _, tc := range []struct {
		patterns []string
		want     string
	}{
		{nil, ""},
		{[]string{"*.log", "cache/", "./tmp?"}, `! -path . \( -name '*.log' -o -name cache -o -name 'tmp?' \) -prune -o `},
		{[]string{"a/b", "[ab]c", `x\*`, "/"}, ""},
		{[]string{"it's"}, `! -path . \( -name 'it'\''s' \) -prune -o `},
	} {
		if got := hostPrune(tc.patterns); got != tc.want {
			t.Errorf("hostPrune(%q): got %q; want %q", tc.patterns, got, tc.want)
		}
	}
}

func TestTreeParseProbe(t *testing.T) {
	sum := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name, out string
		files     []string
		want      map[string]string // name -> type/mode/sum
		err       string
		sums      []string // local sums of files (for sums=same)
	}{
		{"absent", "root=absent\n", nil, map[string]string{}, "", nil},
		{"listing and sums", "root=directory\nlist=\n41ed 4096 0 0 root root .\n81a4 3 0 0 root root ./a b\nX 81ed 2 0 0 root root 2e2f610a62\na1ff 1 0 0 root root ./l\nend-list=\nsums=\n" + sum + "  ./a b\n" + sum + "  ./a\nb\nend-sums=\n",
			[]string{"a b", "a\nb", "l", "gone"},
			map[string]string{".": "directory 0755 ", "a b": "file 0644 " + sum, "a\nb": "file 0755 " + sum, "l": "link 0777 "}, "", nil},
		{"unreadable file skipped", "root=directory\nlist=\n81a4 3 0 0 root root ./a\n81a4 3 0 0 root root ./b\nend-list=\nsums=\n" + sum + "  ./b\nend-sums=\n",
			[]string{"a", "b"}, map[string]string{"a": "file 0644 ", "b": "file 0644 " + sum}, "", nil},
		{"no hash tool", "root=directory\nlist=\nend-list=\nhashtool=0\n", nil, map[string]string{}, "", nil},
		{"unterminated", "root=directory\nlist=\n81a4 3 0 0 root root ./a\n", nil, nil, "listing not terminated", nil},
		{"stray hash output", "root=directory\nlist=\n81a4 3 0 0 root root ./a\nend-list=\nsums=\n" + sum + "  ./zzz\nend-sums=\n", []string{"a"}, nil, "unexpected hash output", nil},
		{"bad line", "root=directory\nlist=\nhello\nend-list=\n", nil, nil, "listing line", nil},
		{"all sums as wanted", "root=directory\nlist=\n81a4 3 0 0 root root ./a\n81ed 3 0 0 root root ./b\nend-list=\nsums=same\n",
			[]string{"a", "b"}, map[string]string{"a": "file 0644 " + sum, "b": "file 0755 " + strings.Repeat("1", 64)}, "", []string{sum, strings.Repeat("1", 64)}},
		{"sums=same for a file not listed", "root=directory\nlist=\n81a4 3 0 0 root root ./a\nend-list=\nsums=same\n",
			[]string{"a", "b"}, nil, "b is not a file in the listing", []string{sum, sum}},
		{"sums=same for a directory", "root=directory\nlist=\n41ed 3 0 0 root root ./a\nend-list=\nsums=same\n",
			[]string{"a"}, nil, "a is not a file in the listing", []string{sum}},
		{"sums=same without local sums", "root=directory\nlist=\n81a4 3 0 0 root root ./a\nend-list=\nsums=same\n",
			[]string{"a"}, nil, "without local sums", []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := parseTreeProbe([]byte(tc.out), tc.files, tc.sums, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for n, e := range tp.Entries {
				got[n] = e.Type + " " + fmtMode(e.Mode) + " " + e.Sum
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestTreeParseContexts(t *testing.T) {
	head := "selinux=1\nroot=directory\nlist=\n41ed 4096 0 0 root root .\n81a4 3 0 0 root root ./a b\nX 81a4 3 0 0 root root 2e2f610a62\nend-list=\n"
	odd := []string{"a\nb", "c\\d"}
	for _, tc := range []struct {
		name, out string
		want      string // fmt.Sprint of Contexts
		err       string
	}{
		{"plain and odd names", head + "secontexts=\nu:r:t:s0 .\nu:r:x_t:s0:c1,c2 ./a b\n#0 u:r:y_t\nend-secontexts=\nsums=\nend-sums=\n", "map[.:u:r:t:s0 a\nb:u:r:y_t a b:u:r:x_t:s0:c1,c2]", ""},
		{"another format is no context", head + "secontexts=\n-rw-r--r--. root root u:r:t:s0 ./a b\nend-secontexts=\nsums=\nend-sums=\n", "map[]", ""},
		{"index out of range", head + "secontexts=\n#2 u:r:t\nend-secontexts=\n", "", "SELinux context line"},
		{"bad index", head + "secontexts=\n#x u:r:t\nend-secontexts=\n", "", "SELinux context line"},
		{"not terminated", head + "secontexts=\nu:r:t:s0 .\n", "", "not terminated"},
		{"off: no section", "selinux=0\nroot=directory\nlist=\nend-list=\nsums=\nend-sums=\n", "map[]", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := parseTreeProbe([]byte(tc.out), nil, nil, odd)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(tp.Contexts); got != tc.want && !(tc.want == "map[]" && tp.Contexts == nil) {
				t.Errorf("contexts: got %q; want %q", got, tc.want)
			}
			if tp.SELinux == "" {
				t.Errorf("selinux: got none; want the probe's answer")
			}
		})
	}
}

func TestTreeOddName(t *testing.T) {
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"a.conf", false}, {"dir/a b", false}, {"héllo", false}, {"a\nb", true}, {"tab\tx", true}, {`back\slash`, true},
		{"trailing ", true}, {"bad\xffutf8", true}, {"del\x7f", true}, {"\u200bzero-width", true},
	} {
		if got := treeOddName(tc.name); got != tc.want {
			t.Errorf("treeOddName(%q): got %v; want %v", tc.name, got, tc.want)
		}
	}
}

// TestTreeLargeLocal writes 2,500 files on Local (whose `sh -c` takes at
// most 128 KiB per argument: apply's script, which names every file, goes
// on stdin) and re-checks it in one round trip.
func TestTreeLargeLocal(t *testing.T) {
	src := t.TempDir()
	for i := 0; i < 2500; i++ {
		p := filepath.Join(src, "tree", fmt.Sprintf("dir-%02d", i%25), fmt.Sprintf("a-somewhat-long-file-name-%04d.conf", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := newLocalDir(t)
	ch := &countingHost{h: l.h}
	req := newReq(&TreeSpec{Src: "tree", Path: l.path("out")}, src, nil, nil)
	start := time.Now()
	converge(t, ch, mustProvider("tree"), req, func() string { return l.snapshot(t) }, Create)
	t.Logf("2,500 files: check, apply and re-check in %v (%d runs, %d uploads)", time.Since(start), ch.runs, ch.uploads)
	if ch.runs != 4 || ch.uploads != 1 { // check, mkdir path, apply script, re-check
		t.Errorf("got %d runs and %d uploads; want 4 and 1", ch.runs, ch.uploads)
	}
}

// FuzzTreeProbe: any probe output from a hostile host parses without a
// panic, and every entry it yields has a relative name.
func FuzzTreeProbe(f *testing.F) {
	sum := strings.Repeat("0f", 32)
	f.Add([]byte("selinux=1\nroot=directory\nlist=\n41ed 4096 0 0 root root .\nX 81a4 3 0 0 root root 2e2f610a62\nend-list=\nsecontexts=\nu:r:t:s0 .\n#0 u:r:y_t\nend-secontexts=\nsums=\n"+sum+"  ./a\nb\nend-sums=\n"), "a\nb")
	f.Add([]byte("root=directory\nlist=\n81a4 3 0 0 root root ./a\nend-list=\nsums=same\n"), "a")
	f.Add([]byte("root=absent\n"), "")
	f.Fuzz(func(t *testing.T, out []byte, name string) {
		tp, err := parseTreeProbe(out, []string{name}, []string{sum}, []string{name})
		if err != nil {
			return
		}
		for n := range tp.Entries {
			if n != "." && (strings.HasPrefix(n, "/") || strings.HasPrefix(n, "./") || slices.Contains(strings.Split(n, "/"), "..")) {
				t.Fatalf("entry name %q is not relative", n)
			}
		}
	})
}
