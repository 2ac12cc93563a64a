package providers

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
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
		notes: "- The archive is read and checked **on the controller** (Go's archive/tar, archive/zip, gzip and xz readers), for check and apply alike: the format comes from the name (`.tar`, `.tar.gz`/`.tgz`, `.tar.xz`/`.txz`, `.zip`). Archives up to 1 GiB, expanded, are supported (they are held in memory).\n" +
			"- Before anything is extracted, every entry is checked; one bad entry refuses the whole archive, naming it (`archive entry \"../evil\" refused: ...; nothing was extracted`): absolute names, `..` components, backslashes and control characters in names; entries below a symlink of the archive (`link/file`, written through the link); symlinks whose target is absolute, climbs out of `path` or goes through another symlink of the archive; hardlinks to anything but an earlier regular file of the archive; device nodes, fifos and other special entries (refused, not skipped). `./` prefixes and the `.` entry are dropped.\n" +
			"- What is extracted is exactly what was checked: opsmop writes the checked entries as a new tar stream (gzip-compressed when the host has `gzip`), uploads it into `path` as `.opsmop-unarchive-NAME.upload` (mode 0600, the connection's atomic upload; removed after extraction) and extracts it with the host's `tar -xof` (`-xozf` compressed). So the host needs only `tar` (GNU or busybox), never `unzip` or `xz`; without `tar` check fails naming it. The price: a `.zip` or `.tar.xz` travels as a gzip'd tar, not in its own compression.\n" +
			"- Idempotence: after extracting, the archive's sha256 is written to the marker file `PATH/.opsmop-unarchive-NAME.sha256` (NAME is src's file name, characters other than letters, digits, `.`, `_`, `-` replaced by `_`). A check extracts again when the marker is missing or holds another sum (a new archive). Drift is detected too: every entry of the archive must exist with its type (directory, file, symlink; a symlink where a file should be is a change), every regular file must have the archive's size, and, with `owner`/`group`, every regular file must have them. Not detected: contents changed with the same size, modes, and owner/group of directories and symlinks. Any change extracts the whole archive again (existing files are overwritten; files the archive does not have are left alone, nothing is deleted).\n" +
			"- `creates`: when that path exists on the host, nothing is checked or extracted (as Ansible's `creates`), whatever the archive.\n" +
			"- `path` is created (`mkdir -p`) when missing, owned by the user opsmop runs as (unlike Ansible, which requires it to exist). A non-directory or symlink at `path` is an error.\n" +
			"- Ownership: tar runs with `-o`, so entries belong to the user opsmop runs as on the host (the become user with sudo), not to the uids stored in the archive; `owner`/`group` are then applied to every entry (`chown -h`, links themselves). Modes come from the archive (the extracting user's umask applies as tar applies it).\n" +
			"- Sudo works as for every resource: the upload goes through the connection's upload path and the extraction runs as the become user.\n" +
			"- Symlinks already on the host: `path` itself must not be a symlink, and no directory an entry is extracted through (`app` and `app/bin` for `app/bin/run`) may be a symlink on the host; check fails naming it (`/opt/app/app is a symlink on the host and archive entries would be extracted through it`), since tar would follow it out of `path`. What remains is a race: a user who can write in `path` could plant such a link between the check and the extraction, so `path` should be writable only by trusted users.\n" +
			"- Check reads the archive twice (for the probe and for the check, on the controller) and fails with `src ... changed between the probe and the check: run again` when it changed in between; apply refuses likewise when it changed since the check.\n" +
			"- Not supported (yet): `remote_src` (an archive already on the host), `exclude`/`include`, `list_files`, `extra_opts`, `keep_newer`, `mode`.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a missing `src` or one whose name is not a supported archive; `path` or `creates` not absolute; `owner`/`group` that are not valid names. A missing local `src` is reported naming the file looked for.",
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
creates = "/opt/tools/bin/tool"`,
		yaml: `- type: unarchive
  src: files/app-1.4.tar.gz
  path: /opt/app
  owner: app
  group: app
- type: unarchive
  src: files/tools.zip
  path: /opt/tools
  creates: /opt/tools/bin/tool`,
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
	pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	t.Cleanup(func() { pool.Close() })
	connect := func(name string) *connection.SSHHost {
		lh := l.Host(name)
		h, err := pool.Host(ctx, connection.Target{Name: name, Address: lh.Addr, Port: lh.Port, User: "ops", Sudo: true, SudoUser: "root",
			PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
		if err != nil {
			t.Fatalf("connect %s: %v", name, err)
		}
		return h
	}
	root := func(name, script string) string {
		t.Helper()
		out, err := l.Host(name).Exec(ctx, script)
		if err != nil {
			t.Fatalf("%s: %s: %v: %s", name, script, err, out)
		}
		return string(out)
	}
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
