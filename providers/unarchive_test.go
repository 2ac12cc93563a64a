package providers

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ulikunitz/xz"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

// unarchiveSubnet is the lab block of TestUnarchiveLab (127.38.0.0/16).
const unarchiveSubnet = 38

// unarchiveDocs is the unarchive entry of typeDocs: the Behaviour section
// and the examples of docs/resources/unarchive.md.
func unarchiveDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- The archive is read and checked **on the controller** (Go's archive/tar, archive/zip, gzip and xz readers), for check and apply alike, also with `remote_src` (see below): the format comes from the name (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.zip`). Archives up to 1 GiB, expanded, are supported (they are held in memory).\n" +
			"- Before anything is extracted, every entry is checked; one bad entry refuses the whole archive, naming it (`archive entry \"../evil\" refused: ...; nothing was extracted`): absolute names, `..` components, backslashes and control characters in names; entries below a symlink of the archive (`link/file`, written through the link); symlinks whose target is absolute, climbs out of `path` or goes through another symlink of the archive; hardlinks to anything but an earlier regular file of the archive; device nodes, fifos and other special entries (refused, not skipped). `./` prefixes and the `.` entry are dropped.\n" +
			"- What is extracted is exactly what was checked: for a local `src`, opsmop writes the checked entries as a new tar stream (gzip-compressed when the host has `gzip`), uploads it into `path` as `.opsmop-unarchive-NAME.upload` (mode 0600, the connection's atomic upload; removed after extraction) and extracts it with the host's `tar -xof` (`-xozf` compressed). So the host needs only `tar` (GNU or busybox), never `unzip` or `xz`; without `tar` check fails naming it. The price: a `.zip` or `.tar.xz` travels as a gzip'd tar, not in its own compression.\n" +
			"- Idempotence: after extracting, the archive's sha256 is written to the marker file `PATH/.opsmop-unarchive-NAME.sha256` (NAME is src's file name, characters other than letters, digits, `.`, `_`, `-` replaced by `_`). A check extracts again when the marker is missing or holds another sum (a new archive). Drift is detected too: every entry of the archive must exist with its type (directory, file, symlink; a symlink where a file should be is a change), every regular file must have the archive's size, and, with `owner`/`group`, every regular file must have them. Not detected: contents changed with the same size, modes, and owner/group of directories and symlinks. Any change extracts the whole archive again (existing files are overwritten; files the archive does not have are left alone, nothing is deleted).\n" +
			"- `creates`: when that path exists on the host, nothing is checked or extracted (as Ansible's `creates`), whatever the archive.\n" +
			"- `path` is created (`mkdir -p`) when missing, owned by the user opsmop runs as (unlike Ansible, which requires it to exist). A non-directory or symlink at `path` is an error.\n" +
			"- Ownership: tar runs with `-o`, so entries belong to the user opsmop runs as on the host (the become user with sudo), not to the uids stored in the archive; `owner`/`group` are then applied to every entry (`chown -h`, links themselves). Modes come from the archive (the extracting user's umask applies as tar applies it).\n" +
			"- Sudo works as for every resource: the upload goes through the connection's upload path and the extraction runs as the become user.\n" +
			"- Symlinks already on the host: `path` itself must not be a symlink, and no directory an entry is extracted through (`app` and `app/bin` for `app/bin/run`) may be a symlink on the host; check fails naming it (`/opt/app/app is a symlink on the host and archive entries would be extracted through it`), since tar would follow it out of `path`. What remains is a race: a user who can write in `path` could plant such a link between the check and the extraction, so `path` should be writable only by trusted users.\n" +
			"- A local `src`: check reads the archive twice (for the probe and for the check, on the controller) and fails with `src ... changed between the probe and the check: run again` when it changed in between; apply refuses likewise when it changed since the check.\n" +
			"- `remote_src = true`: `src` is an absolute path **on the host** (an archive already there, e.g. fetched by a `download` resource); nothing local is needed and `opsmop validate` looks for no local file. The probe stays one round trip: it stats `src`, computes its sha256 on the host (sha256sum, else `openssl dgst -sha256`, else `shasum -a 256`) and reads the marker. When the marker holds that sum, the archive is not transferred: the marker of a `remote_src` also lists the entries (one `KIND SIZE NAME` line each after the sum), and drift is checked against that list as above. Otherwise the probe sends the archive back (up to 1 GiB; a larger one is an error naming its size) and check inspects it with the **same checks as a local archive**: a hostile archive on the host fails the check naming the entry, with nothing extracted, and the diff shows `archive: sha256:OLD… -> sha256:NEW… (N entries)`. Unlike Ansible (which lists and extracts with the host's unzip or gtar), what decides is opsmop's own reading of the bytes.\n" +
			"- Extracting a `remote_src`: when the host has a hash tool and the format's tools (`tar`, plus `gzip` for .tar.gz, `xz` for .tar.xz), the archive is extracted **from the host's own file, without an upload**: `src` is copied to a private `PATH/.opsmop-unarchive-NAME.src` (umask 077; it needs room for the archive once more in `path`'s file system), the copy's sha256 is verified against the checked archive's (else `src ... changed since the check (its sha256 is no longer ...): nothing extracted; run again`), then extracted with `tar -xof` (`-xozf`, `-xoJf`) and removed. A `.zip` is never handed to the host's unzip (busybox's refuses compressed symlinks, Info-ZIP's cannot replace a directory by a symlink): it, and a tar archive on a host without a hash tool or without the decompressor, travels as the tar stream of the checked entries exactly as for a local `src`, so the host still needs only `tar`. The change's message says which way is taken. In that stream mode, an archive changed on the host between check and apply is not refused: the checked version is extracted and recorded, and the next run sees the new sum.\n" +
			"- When only drift triggers the extraction of a `remote_src` (the archive's sum matches the marker, but an entry is missing or changed), check did not read the archive; apply reads it back, checks it again and compares its sum with the checked one before extracting anything. A host with no hash tool at all has its archive read back by every check (that is how its sum is compared), so keep such archives small or install coreutils. A damaged marker is an error asking to remove it (opsmop then extracts again).\n" +
			"- `src` missing on the host: `src /srv/dl/app.tgz does not exist on host web1: put the archive there first ...`; a directory, device or fifo: `... is not a regular file`; unreadable for the user opsmop runs as: an error saying so. These are check errors, labelled with the resource (`unarchive /opt/app: ...`).\n" +
			"- Directories an entry is extracted through are checked again in the extraction script, just before tar runs (a symlink there fails with nothing extracted), for a local `src` and `remote_src` alike.\n" +
			"- Not supported (yet): `exclude`/`include`, `list_files`, `extra_opts`, `keep_newer`, `mode`, a `remote_src` given as a template (`{{ ... }}`; offline validation then treats `src` as local).\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a missing `src` or one whose name is not a supported archive; with `remote_src`, a `src` that is not absolute; `path` or `creates` not absolute; `owner`/`group` that are not valid names. A missing local `src` is reported naming the file looked for.",
		toml: `[[roles.resources]]
type = "unarchive"
src = "files/app-1.4.tar.gz"
path = "/opt/app"
owner = "app"
group = "app"

[[roles.resources]]
type = "unarchive"
src = "files/tools.zip"
path = "/opt/tools"
creates = "/opt/tools/bin/tool"

[[roles.resources]]
type = "unarchive"
src = "/srv/downloads/node-v22.tar.xz"
remote_src = true
path = "/opt/node"`,
		yaml: `- type: unarchive
  src: files/app-1.4.tar.gz
  path: /opt/app
  owner: app
  group: app
- type: unarchive
  src: files/tools.zip
  path: /opt/tools
  creates: /opt/tools/bin/tool
- type: unarchive
  src: /srv/downloads/node-v22.tar.xz
  remote_src: true
  path: /opt/node`,
	}
}

// testEntry is an entry of a test archive.
type testEntry struct {
	name, kind, body, link string
}

// makeArchive writes entries as an archive of format.
func makeArchive(t testing.TB, format string, entries []testEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	if format == "zip" {
		zw := zip.NewWriter(&buf)
		for _, e := range entries {
			h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
			body := e.body
			switch e.kind {
			case "dir":
				h.Name = strings.TrimSuffix(e.name, "/") + "/"
				h.SetMode(fs.ModeDir | 0o755)
			case "symlink":
				h.SetMode(fs.ModeSymlink | 0o777)
				body = e.link
			case "fifo":
				h.SetMode(fs.ModeNamedPipe | 0o644)
			default:
				h.SetMode(0o644)
			}
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(body)); err != nil {
				t.Fatal(err)
			}
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body))}
		switch e.kind {
		case "dir":
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		case "symlink":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		case "hardlink":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, e.link, 0
		case "fifo":
			h.Typeflag, h.Size = tar.TypeFifo, 0
		case "char":
			h.Typeflag, h.Size = tar.TypeChar, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	switch format {
	case "tgz":
		zw := gzip.NewWriter(&buf)
		zw.Write(tb.Bytes())
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	case "txz":
		xw, err := xz.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		xw.Write(tb.Bytes())
		if err := xw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	return tb.Bytes()
}

// archiveExt is the file name extension of a test format.
func archiveExt(format string) string {
	return map[string]string{"tar": ".tar", "tgz": ".tar.gz", "txz": ".tar.xz", "zip": ".zip"}[format]
}

func TestUnarchiveValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		spec UnarchiveSpec
		want string
	}{
		{"ok", UnarchiveSpec{Src: "a.tgz", Path: "/opt/a"}, ""},
		{"no src", UnarchiveSpec{Path: "/opt/a"}, "src is required"},
		{"bad ext", UnarchiveSpec{Src: "a.rar", Path: "/opt/a"}, "not a supported archive"},
		{"relative path", UnarchiveSpec{Src: "a.zip", Path: "opt/a"}, "path"},
		{"relative creates", UnarchiveSpec{Src: "a.zip", Path: "/opt/a", Creates: "x"}, "creates"},
		{"bad owner", UnarchiveSpec{Src: "a.tar", Path: "/opt/a", Owner: "a b"}, "not a valid name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v; want an error containing %q", err, c.want)
			}
		})
	}
}

// hostileArchives are archives that must be refused, by the entry named.
func hostileArchives() []struct {
	name    string
	entries []testEntry
	entry   string
} {
	return []struct {
		name    string
		entries []testEntry
		entry   string
	}{
		{"dotdot", []testEntry{{name: "ok", body: "x"}, {name: "../evil", body: "x"}}, "../evil"},
		{"dotdot inside", []testEntry{{name: "a/../../evil", body: "x"}}, "a/../../evil"},
		{"absolute", []testEntry{{name: "/etc/evil", body: "x"}}, "/etc/evil"},
		{"symlink out", []testEntry{{name: "l", kind: "symlink", link: "../../etc"}}, "l"},
		{"symlink absolute", []testEntry{{name: "l", kind: "symlink", link: "/etc"}}, "l"},
		{"through symlink", []testEntry{{name: "l", kind: "symlink", link: "d"}, {name: "d", kind: "dir"}, {name: "l/x", body: "x"}}, "l/x"},
		{"symlink via symlink", []testEntry{{name: "b", kind: "symlink", link: "."}, {name: "c", kind: "symlink", link: "b/x/../.."}}, "c"},
		{"fifo", []testEntry{{name: "f", kind: "fifo"}}, "f"},
	}
}

func TestUnarchiveRefuses(t *testing.T) {
	for _, format := range []string{"tar", "tgz", "txz", "zip"} {
		for _, c := range hostileArchives() {
			t.Run(format+"/"+c.name, func(t *testing.T) {
				_, err := readArchive(makeArchive(t, format, c.entries), format)
				var ae *ArchiveEntryError
				if !errors.As(err, &ae) {
					t.Fatalf("got %v; want an *ArchiveEntryError", err)
				}
				if ae.Entry != c.entry {
					t.Errorf("got entry %q; want %q", ae.Entry, c.entry)
				}
			})
		}
	}
	t.Run("tar hardlink out", func(t *testing.T) {
		_, err := readArchive(makeArchive(t, "tar", []testEntry{{name: "h", kind: "hardlink", link: "/etc/shadow"}}), "tar")
		var ae *ArchiveEntryError
		if !errors.As(err, &ae) || ae.Entry != "h" {
			t.Errorf("got %v; want entry h refused", err)
		}
	})
	t.Run("tar device", func(t *testing.T) {
		_, err := readArchive(makeArchive(t, "tar", []testEntry{{name: "dev", kind: "char"}}), "tar")
		var ae *ArchiveEntryError
		if !errors.As(err, &ae) || ae.Entry != "dev" {
			t.Errorf("got %v; want entry dev refused", err)
		}
	})
	t.Run("inside links accepted", func(t *testing.T) {
		got, err := readArchive(makeArchive(t, "tar", []testEntry{{name: "./d", kind: "dir"}, {name: "d/f", body: "x"}, {name: "l", kind: "symlink", link: "d/f"}, {name: "d/up", kind: "symlink", link: "../l"}, {name: "h", kind: "hardlink", link: "d/f"}}), "tar")
		if err != nil {
			t.Fatalf("got %v; want no error", err)
		}
		if len(got) != 5 || got[0].Name != "d" {
			t.Errorf("got %+v; want 5 entries, d first", got)
		}
	})
}

// FuzzUnarchiveEntryName checks that an accepted entry name never leaves
// the extraction directory.
func FuzzUnarchiveEntryName(f *testing.F) {
	for _, s := range []string{"a/b", "../x", "/etc", "./a/./b/", "a/../../b", "a\\..\\b", "..", "."} {
		f.Add(s, "t")
	}
	f.Fuzz(func(t *testing.T, name, link string) {
		out, err := checkEntries([]archiveEntry{{Name: name, Kind: entrySymlink, Link: link}, {Name: name + "/x", Kind: entryFile}})
		if err != nil {
			return
		}
		for _, e := range out {
			if strings.HasPrefix(e.Name, "/") || e.Name == ".." || strings.HasPrefix(e.Name, "../") || strings.Contains(e.Name, "/../") {
				t.Fatalf("accepted name %q", e.Name)
			}
			if e.Kind == entrySymlink {
				if c := filepath.Clean(filepath.Join(filepath.Dir(e.Name), e.Link)); c == ".." || strings.HasPrefix(c, "../") || filepath.IsAbs(e.Link) {
					t.Fatalf("accepted symlink %q -> %q", e.Name, e.Link)
				}
			}
		}
	})
}

func TestUnarchiveLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: unarchiveSubnet, Hosts: []lab.HostSpec{{Name: "ua1"}, {Name: "notar"}}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	k := newLabKit(t, ctx, l)
	connect := func(name string) *connection.SSHHost { return k.connect(t, name, "ops", "root") }
	root := func(name, script string) string { t.Helper(); return k.root(name)(t, script) }
	h := connect("ua1")
	p := mustProvider("unarchive")
	src := t.TempDir()
	entries := []testEntry{
		{name: "app/", kind: "dir"},
		{name: "app/bin/", kind: "dir"},
		{name: "app/bin/run.sh", body: "#!/bin/sh\necho hi\n"},
		{name: "app/README", body: "hello\n"},
		{name: "app/current", kind: "symlink", link: "bin/run.sh"},
	}
	snap := func() string { return root("ua1", "find /srv/ua -printf '%p %y %s %u %g\\n' 2>/dev/null | sort; true") }
	for _, format := range []string{"tar", "tgz", "txz", "zip"} {
		t.Run(format, func(t *testing.T) {
			name := "app" + archiveExt(format)
			if err := os.WriteFile(filepath.Join(src, name), makeArchive(t, format, entries), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := "/srv/ua/" + format
			spec := &UnarchiveSpec{Src: name, Path: dst, Owner: "app", Group: "app"}
			req := newReq(spec, src, nil, map[string]func(map[string]any) any{"host.name": func(map[string]any) any { return "ua1" }})
			converge(t, h, p, req, snap, Create)
			got := root("ua1", "cd "+dst+" && cat app/README && readlink app/current && stat -c '%U:%G' app/bin/run.sh && cat .opsmop-unarchive-"+name+".sha256 | wc -c")
			if want := "hello\nbin/run.sh\napp:app\n65\n"; got != want {
				t.Errorf("extracted: got %q; want %q", got, want)
			}
			// Drift: a deleted file, then a file changed in size, then the
			// owner.
			for _, d := range []struct{ script, field string }{
				{"rm " + dst + "/app/README", "entries"},
				{"echo more >> " + dst + "/app/bin/run.sh", "entries"},
				{"chown root " + dst + "/app/README", "owner"},
			} {
				root("ua1", d.script)
				ch := converge(t, h, p, req, snap, Update)
				if _, ok := fieldMap(ch)[d.field]; !ok {
					t.Errorf("after %q: got fields %v; want %s", d.script, sortedFieldNames(ch), d.field)
				}
			}
		})
	}
	t.Run("creates", func(t *testing.T) {
		spec := &UnarchiveSpec{Src: "app.tar", Path: "/srv/ua/creates", Creates: "/etc/hostname"}
		converge(t, h, p, newReq(spec, src, nil, nil), snap, None)
	})
	t.Run("hostile", func(t *testing.T) {
		for _, c := range hostileArchives() {
			for _, format := range []string{"tgz", "zip"} {
				name := "evil" + archiveExt(format)
				if err := os.WriteFile(filepath.Join(src, name), makeArchive(t, format, c.entries), 0o644); err != nil {
					t.Fatal(err)
				}
				before := snap()
				_, err := check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: name, Path: "/srv/ua/evil"}, src, nil, nil))
				if err == nil || !strings.Contains(err.Error(), "\""+c.entry+"\" refused") {
					t.Errorf("%s %s: got %v; want entry %q refused", c.name, format, err, c.entry)
				}
				if after := snap(); after != before {
					t.Errorf("%s %s: host changed", c.name, format)
				}
			}
		}
	})
	t.Run("host symlink", func(t *testing.T) {
		root("ua1", "mkdir -p /srv/ua/hl /srv/ua/outside && ln -s /srv/ua/outside /srv/ua/hl/app")
		before := snap()
		_, err := check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: "app.tar", Path: "/srv/ua/hl"}, src, nil, nil))
		if err == nil || !strings.Contains(err.Error(), "/srv/ua/hl/app is a symlink on the host") {
			t.Errorf("got %v; want the host's symlink refused", err)
		}
		if after := snap(); after != before {
			t.Errorf("host changed:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	})
	t.Run("no gzip", func(t *testing.T) {
		root("ua1", "for f in /usr/bin/gzip /bin/gzip; do if [ -e $f ] && [ ! -L $f ]; then rm -f $f; fi; done; ! command -v gzip")
		spec := &UnarchiveSpec{Src: "app.zip", Path: "/srv/ua/nogzip"}
		converge(t, h, p, newReq(spec, src, nil, nil), snap, Create)
		if got := root("ua1", "cat /srv/ua/nogzip/app/README"); got != "hello\n" {
			t.Errorf("got %q; want %q", got, "hello\n")
		}
	})
	t.Run("busybox", func(t *testing.T) {
		bb := newBusyboxHost(t)
		base := t.TempDir()
		bsnap := func() string {
			out, err := bb.Run(ctx, "cd "+base+" && find . | sort && ls -lR", nil)
			if err != nil || out.ExitCode != 0 {
				t.Fatalf("snapshot: %v %s", err, out.Stderr)
			}
			return string(out.Stdout)
		}
		for _, format := range []string{"tgz", "zip"} {
			spec := &UnarchiveSpec{Src: "app" + archiveExt(format), Path: filepath.Join(base, format), Owner: "nobody"}
			req := newReq(spec, src, nil, nil)
			converge(t, bb, p, req, bsnap, Create)
			if err := os.Remove(filepath.Join(base, format, "app/README")); err != nil {
				t.Fatal(err)
			}
			converge(t, bb, p, req, bsnap, Update)
			if b, err := os.ReadFile(filepath.Join(base, format, "app/README")); err != nil || string(b) != "hello\n" {
				t.Errorf("%s: got %q, %v; want hello", format, b, err)
			}
		}
	})
	t.Run("no tar", func(t *testing.T) {
		root("notar", "for f in /usr/bin/tar /bin/tar; do if [ -e $f ] && [ ! -L $f ]; then rm -f $f; fi; done; ! command -v tar")
		spec := &UnarchiveSpec{Src: "app.tar", Path: "/srv/ua/x"}
		_, err := check(t, ctx, connect("notar"), p, newReq(spec, src, nil, map[string]func(map[string]any) any{"host.name": func(map[string]any) any { return "notar" }}))
		if err == nil || !strings.Contains(err.Error(), "has no tar") || !strings.Contains(err.Error(), "host notar") {
			t.Errorf("got %v; want the missing tar named", err)
		}
	})
}

// unarchiveRemoteSubnet is the lab block of TestUnarchiveRemoteSrcLab
// (127.36.0.0/16).
const unarchiveRemoteSubnet = 36

func TestUnarchiveRemoteSrcValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		spec UnarchiveSpec
		want string
	}{
		{"ok", UnarchiveSpec{Src: "/srv/a.tgz", RemoteSrc: true, Path: "/opt/a"}, ""},
		{"templated", UnarchiveSpec{Src: "{{ .x }}", RemoteSrc: true, Path: "/opt/a"}, ""},
		{"relative", UnarchiveSpec{Src: "files/a.tgz", RemoteSrc: true, Path: "/opt/a"}, `src "files/a.tgz" is not absolute: remote paths must start with /`},
		{"empty", UnarchiveSpec{RemoteSrc: true, Path: "/opt/a"}, "src is required: the absolute path of the archive on the host"},
		{"bad ext", UnarchiveSpec{Src: "/srv/a.rar", RemoteSrc: true, Path: "/opt/a"}, `src "/srv/a.rar" is not a supported archive`},
		{"nul", UnarchiveSpec{Src: "/srv/a\x00.tar", RemoteSrc: true, Path: "/opt/a"}, "NUL byte"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.spec.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Errorf("got %v; want no error", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("got %v; want an error containing %q", err, c.want)
			}
			var se *SpecError
			if c.want != "" && errors.As(err, &se) && se.Problems[0].Key != "src" {
				t.Errorf("got the problem at key %q; want src", se.Problems[0].Key)
			}
		})
	}
}

func TestUnarchiveRemoteSrcLocalFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		spec *UnarchiveSpec
		want int
	}{
		{"local src is a local file", &UnarchiveSpec{Src: "files/a.tgz", Path: "/opt/a"}, 1},
		{"remote src is not", &UnarchiveSpec{Src: "/srv/a.tgz", RemoteSrc: true, Path: "/opt/a"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := LocalFiles(c.spec); len(got) != c.want {
				t.Errorf("got %v; want %d local files", got, c.want)
			}
		})
	}
}

func TestUnarchiveManifest(t *testing.T) {
	entries, err := readArchive(makeArchive(t, "tar", []testEntry{
		{name: "./d/", kind: "dir"}, {name: "d/a file", body: "hello"}, {name: "d/l", kind: "symlink", link: "a file"}, {name: "h", kind: "hardlink", link: "d/a file"},
	}), "tar")
	if err != nil {
		t.Fatal(err)
	}
	lines := manifest(entries)
	if want := []string{"d 0 d", "f 5 d/a file", "l 0 d/l", "f 5 h"}; strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("manifest: got %q; want %q", lines, want)
	}
	sum := sha256Hex([]byte("x"))
	gotSum, got, err := parseManifest([]byte(sum + "\n" + strings.Join(lines, "\n") + "\n"))
	if err != nil || gotSum != sum || len(got) != 4 || got[1].Name != "d/a file" || got[1].Size != 5 || got[2].Kind != entrySymlink || got[3].Kind != entryFile {
		t.Errorf("parseManifest: got %q %+v %v; want the entries back", gotSum, got, err)
	}
	for _, bad := range []string{"nosum\n", sum + "\nx 0 a\n", sum + "\nf -1 a\n", sum + "\nf 1 ../a\n", sum + "\nf 1 ./a\n", sum + "\nf 1\n"} {
		if _, _, err := parseManifest([]byte(bad)); err == nil {
			t.Errorf("parseManifest(%q): got no error; want one", bad)
		}
	}
}

func TestUnarchiveRemoteSrcLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: unarchiveRemoteSubnet, Hosts: []lab.HostSpec{{Name: "rua1"}, {Name: "rua2"}}})
	ctx, cancel := context.WithTimeout(t.Context(), 8*time.Minute)
	defer cancel()
	k := newLabKit(t, ctx, l)
	connect := func(name string) *connection.SSHHost { return k.connect(t, name, "ops", "root") }
	root := func(name, script string) string { t.Helper(); return k.root(name)(t, script) }
	// put writes data to file on host name (as root).
	put := func(name, file string, data []byte) {
		t.Helper()
		root(name, "mkdir -p "+filepath.Dir(file)+" && printf '%s' "+base64.StdEncoding.EncodeToString(data)+" | base64 -d > "+file)
	}
	named := func(name string) map[string]func(map[string]any) any {
		return map[string]func(map[string]any) any{"host.name": func(map[string]any) any { return name }}
	}
	p := mustProvider("unarchive")
	entries := []testEntry{
		{name: "app/", kind: "dir"},
		{name: "app/bin/", kind: "dir"},
		{name: "app/bin/run.sh", body: "#!/bin/sh\necho hi\n"},
		{name: "app/README", body: "hello\n"},
		{name: "app/current", kind: "symlink", link: "bin/run.sh"},
	}
	v2 := append(append([]testEntry{}, entries[:3]...), testEntry{name: "app/README", body: "hello v2\n"}, entries[4], testEntry{name: "app/NEW", body: "new\n"})
	snapOf := func(name string) func() string {
		return func() string {
			return root(name, "find /srv/rua -printf '%p %y %s %u %g %T@\\n' 2>/dev/null | sort; true")
		}
	}
	for _, hc := range []struct {
		host, how string
		prep      string
	}{
		// rua1 has tar, gzip, xz, unzip and sha256sum: it extracts a
		// verified private copy of src itself.
		{"rua1", "on the host", ""},
		// rua2 has tar but no unzip, xz or hash tool: the archive is read
		// back every check, and extracted from the checked tar stream.
		{"rua2", "sent as a tar stream", "for f in unzip xz sha256sum openssl shasum; do for d in /usr/bin /bin /usr/local/bin; do if [ -e $d/$f ] || [ -L $d/$f ]; then rm -f $d/$f; fi; done; done; ! command -v unzip && ! command -v xz && ! command -v sha256sum && ! command -v openssl && ! command -v shasum"},
	} {
		t.Run(hc.host, func(t *testing.T) {
			if hc.prep != "" {
				root(hc.host, hc.prep)
			}
			h := connect(hc.host)
			snap := snapOf(hc.host)
			for _, format := range []string{"tar", "tgz", "txz", "zip"} {
				t.Run(format, func(t *testing.T) {
					src := "/srv/arch/app" + archiveExt(format)
					put(hc.host, src, makeArchive(t, format, entries))
					dst := "/srv/rua/" + format
					spec := &UnarchiveSpec{Src: src, RemoteSrc: true, Path: dst, Owner: "app", Group: "app"}
					req := newReq(spec, t.TempDir(), nil, named(hc.host))
					ch := converge(t, h, p, req, snap, Create)
					how := hc.how
					if format == "zip" {
						how = "sent as a tar stream (a zip always is)"
					}
					if !strings.Contains(ch.Message, how) {
						t.Errorf("message: got %q; want it to say %q", ch.Message, how)
					}
					if got := fieldMap(ch)["archive"]; !strings.Contains(got, "(5 entries)") {
						t.Errorf("archive field: got %q; want 5 entries", got)
					}
					// The no-op check: one probe, the archive not sent back
					// when the host can hash it.
					script, err := p.Probe(req)
					if err != nil {
						t.Fatal(err)
					}
					start := time.Now()
					res, err := h.Run(ctx, script, nil)
					if err != nil {
						t.Fatal(err)
					}
					took := time.Since(start)
					if ch, err := p.Check(req, res); err != nil || ch.Action != None {
						t.Errorf("no-op check: got %v, %v; want none", ch, err)
					}
					t.Logf("no-op probe: %v, %d bytes of output", took, len(res.Stdout))
					got := root(hc.host, "cd "+dst+" && cat app/README && readlink app/current && stat -c '%U:%G' app/bin/run.sh && head -n1 .opsmop-unarchive-app"+archiveExt(format)+".sha256 | wc -c && ls -a | grep -c opsmop")
					if want := "hello\nbin/run.sh\napp:app\n65\n1\n"; got != want {
						t.Errorf("extracted: got %q; want %q", got, want)
					}
					// Drift of the extraction: a deleted file, a file of
					// another size, another owner.
					for _, d := range []struct{ script, field string }{
						{"rm " + dst + "/app/README", "entries"},
						{"echo more >> " + dst + "/app/bin/run.sh", "entries"},
						{"chown root " + dst + "/app/README", "owner"},
						{"rm " + dst + "/app/current && mkdir " + dst + "/app/current", "entries"},
					} {
						root(hc.host, d.script)
						ch := converge(t, h, p, req, snap, Update)
						if _, ok := fieldMap(ch)[d.field]; !ok {
							t.Errorf("after %q: got fields %v; want %s", d.script, sortedFieldNames(ch), d.field)
						}
					}
					if got := root(hc.host, "cat "+dst+"/app/README; readlink "+dst+"/app/current"); got != "hello\nbin/run.sh\n" {
						t.Errorf("repaired: got %q; want hello and the link", got)
					}
					// Drift of the archive: a new version on the host.
					put(hc.host, src, makeArchive(t, format, v2))
					ch = converge(t, h, p, req, snap, Update)
					if got := fieldMap(ch)["archive"]; !strings.Contains(got, "(6 entries)") {
						t.Errorf("archive field: got %q; want 6 entries", got)
					}
					if got := root(hc.host, "cat "+dst+"/app/README "+dst+"/app/NEW"); got != "hello v2\nnew\n" {
						t.Errorf("new version: got %q; want hello v2 and new", got)
					}
				})
			}
			t.Run("changed after the check", func(t *testing.T) {
				// The check read the archive (a new one); the archive then
				// changes on the host. rua1 verifies its copy of src: apply
				// extracts nothing. rua2 gets the checked archive as a tar
				// stream: it is extracted, and the next check sees the new
				// one.
				src := "/srv/arch/race.tgz"
				put(hc.host, src, makeArchive(t, "tgz", entries))
				req := newReq(&UnarchiveSpec{Src: src, RemoteSrc: true, Path: "/srv/rua/race"}, "", nil, named(hc.host))
				ch, err := check(t, ctx, h, p, req)
				if err != nil {
					t.Fatal(err)
				}
				put(hc.host, src, makeArchive(t, "tgz", v2))
				_, err = p.Apply(ctx, h, req, ch)
				if hc.host == "rua2" {
					if err != nil {
						t.Fatalf("apply: %v", err)
					}
					if got := root(hc.host, "cat /srv/rua/race/app/README"); got != "hello\n" {
						t.Errorf("got %q; want the checked archive's hello", got)
					}
					converge(t, h, p, req, snap, Update)
					return
				}
				if err == nil || !strings.Contains(err.Error(), "changed since the check") || !strings.Contains(err.Error(), "nothing extracted") {
					t.Errorf("got %v; want the change since the check refused", err)
				}
				// Only path itself was created (mkdir -p before the copy).
				if got := root(hc.host, "ls -A /srv/rua/race"); got != "" {
					t.Errorf("extracted despite the change: %q", got)
				}
				// Extracted intact, then drift (a file removed) checked
				// from the marker's entry list; the archive then changes
				// before apply: the read-back refuses too.
				converge(t, h, p, req, snap, Update)
				root(hc.host, "rm /srv/rua/race/app/README")
				ch, err = check(t, ctx, h, p, req)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(ch.Message, "read back and checked again") {
					t.Errorf("message: got %q; want the archive read back at apply", ch.Message)
				}
				put(hc.host, src, makeArchive(t, "tgz", entries))
				before := snap()
				if _, err = p.Apply(ctx, h, req, ch); err == nil || !strings.Contains(err.Error(), "changed since the check") {
					t.Errorf("got %v; want the change since the check refused", err)
				}
				if after := snap(); after != before {
					t.Errorf("host changed:\nbefore:\n%s\nafter:\n%s", before, after)
				}
				converge(t, h, p, req, snap, Update)
			})
			t.Run("hostile", func(t *testing.T) {
				for _, c := range hostileArchives() {
					for _, format := range []string{"tgz", "zip"} {
						src := "/srv/arch/evil" + archiveExt(format)
						put(hc.host, src, makeArchive(t, format, c.entries))
						before := snap()
						_, err := check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: src, RemoteSrc: true, Path: "/srv/rua/evil"}, "", nil, named(hc.host)))
						if err == nil || !strings.Contains(err.Error(), "\""+c.entry+"\" refused") || !strings.Contains(err.Error(), src) {
							t.Errorf("%s %s: got %v; want entry %q of %s refused", c.name, format, err, c.entry, src)
						}
						if after := snap(); after != before {
							t.Errorf("%s %s: host changed", c.name, format)
						}
					}
				}
			})
			t.Run("bad src", func(t *testing.T) {
				root(hc.host, "mkdir -p /srv/arch/dir.tar")
				for _, c := range []struct{ src, want string }{
					{"/srv/arch/missing.tgz", "src /srv/arch/missing.tgz does not exist on host " + hc.host},
					{"/srv/arch/dir.tar", "src /srv/arch/dir.tar on host " + hc.host + " is not a regular file"},
				} {
					before := snap()
					_, err := check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: c.src, RemoteSrc: true, Path: "/srv/rua/bad"}, "", nil, named(hc.host)))
					if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "unarchive /srv/rua/bad") {
						t.Errorf("%s: got %v; want %q, labelled with the resource", c.src, err, c.want)
					}
					if after := snap(); after != before {
						t.Errorf("%s: host changed", c.src)
					}
				}
				put(hc.host, "/srv/arch/junk.tgz", []byte("not gzip"))
				_, err := check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: "/srv/arch/junk.tgz", RemoteSrc: true, Path: "/srv/rua/bad"}, "", nil, named(hc.host)))
				if err == nil || !strings.Contains(err.Error(), "not a readable gzip archive") {
					t.Errorf("junk: got %v; want not a readable gzip archive", err)
				}
				_, err = check(t, ctx, h, p, newReq(&UnarchiveSpec{Src: "files/app.tgz", RemoteSrc: true, Path: "/srv/rua/bad"}, "", nil, named(hc.host)))
				if err == nil || !strings.Contains(err.Error(), "is not absolute") {
					t.Errorf("relative: got %v; want src not absolute", err)
				}
			})
		})
	}
	t.Run("busybox", func(t *testing.T) {
		bb := newBusyboxHost(t)
		base := t.TempDir()
		bsnap := func() string {
			out, err := bb.Run(ctx, "cd "+base+" && find . | sort && ls -lR", nil)
			if err != nil || out.ExitCode != 0 {
				t.Fatalf("snapshot: %v %s", err, out.Stderr)
			}
			return string(out.Stdout)
		}
		arch := t.TempDir()
		for _, format := range []string{"tgz", "txz", "zip"} {
			src := filepath.Join(arch, "app"+archiveExt(format))
			if err := os.WriteFile(src, makeArchive(t, format, entries), 0o644); err != nil {
				t.Fatal(err)
			}
			spec := &UnarchiveSpec{Src: src, RemoteSrc: true, Path: filepath.Join(base, format), Owner: "nobody"}
			req := newReq(spec, "", nil, nil)
			ch := converge(t, bb, p, req, bsnap, Create)
			if format != "zip" && !strings.Contains(ch.Message, "on the host") {
				t.Errorf("%s: message %q; want extracted on the host", format, ch.Message)
			}
			if err := os.Remove(filepath.Join(base, format, "app/README")); err != nil {
				t.Fatal(err)
			}
			converge(t, bb, p, req, bsnap, Update)
			if b, err := os.ReadFile(filepath.Join(base, format, "app/README")); err != nil || string(b) != "hello\n" {
				t.Errorf("%s: got %q, %v; want hello", format, b, err)
			}
			if l, err := os.Readlink(filepath.Join(base, format, "app/current")); err != nil || l != "bin/run.sh" {
				t.Errorf("%s: got link %q, %v; want bin/run.sh", format, l, err)
			}
		}
	})
}
