package providers

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/labtest"
)

func statOf(t *testing.T, p string) (os.FileMode, uint32, uint32, uint64) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return fi.Mode(), st.Uid, st.Gid, st.Ino
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return string(b)
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestFileConverges(t *testing.T) {
	labtest.RequireRoot(t)
	big := make([]byte, 100<<10)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		// setup prepares the target (and local sources in src).
		setup  func(t *testing.T, d *localDir, src string)
		spec   func(d *localDir) *FileSpec
		action Action
		// fields are the change's field names (sorted).
		fields []string
		// diff, if set, must occur in the change's diff.
		diff string
		// verify inspects the result.
		verify func(t *testing.T, d *localDir, ch *Change)
	}{
		{
			name: "create from content with mode",
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("motd"), Content: ptr("hello\n"), Mode: "0640"}
			},
			action: Create, fields: []string{"content", "mode", "state"}, diff: "+hello",
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if got := readFile(t, d.path("motd")); got != "hello\n" {
					t.Errorf("content: got %q; want %q", got, "hello\n")
				}
				if m, _, _, _ := statOf(t, d.path("motd")); m.Perm() != 0o640 {
					t.Errorf("mode: got %v; want 0640", m.Perm())
				}
			},
		},
		{
			name: "create empty file",
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("empty"), Content: ptr("")}
			},
			action: Create, fields: []string{"content", "state"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if m, _, _, _ := statOf(t, d.path("empty")); m.Perm() != 0o644 {
					t.Errorf("default mode of a new file: got %v; want 0644", m.Perm())
				}
			},
		},
		{
			name: "replace content keeps mode and owner",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("conf"), "a\nb\nc\n", 0o600)
				if err := os.Chown(d.path("conf"), 65534, 65534); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("conf"), Content: ptr("a\nB\nc\n")}
			},
			action: Update, fields: []string{"content"}, diff: "-b\n+B\n",
			verify: func(t *testing.T, d *localDir, ch *Change) {
				m, uid, gid, _ := statOf(t, d.path("conf"))
				if m.Perm() != 0o600 || uid != 65534 || gid != 65534 {
					t.Errorf("attributes: got %v %d:%d; want -rw------- 65534:65534", m.Perm(), uid, gid)
				}
				if got := readFile(t, d.path("conf")); got != "a\nB\nc\n" {
					t.Errorf("content: got %q", got)
				}
			},
		},
		{
			name: "attributes only, no upload",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("attr"), "same\n", 0o600)
			},
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("attr"), Content: ptr("same\n"), Mode: "0644", Owner: "nobody", Group: "nogroup"}
			},
			action: Update, fields: []string{"group", "mode", "owner"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				m, uid, gid, _ := statOf(t, d.path("attr"))
				if m.Perm() != 0o644 || uid != 65534 || gid != 65534 {
					t.Errorf("attributes: got %v %d:%d; want -rw-r--r-- 65534:65534", m.Perm(), uid, gid)
				}
				if pl := ch.Plan.(filePlan); pl.Upload {
					t.Errorf("plan uploads for an attribute-only change")
				}
			},
		},
		{
			name: "attributes of an existing file without content",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("attr2"), "x", 0o644)
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("attr2"), Mode: "0755", Group: "65534"} },
			action: Update, fields: []string{"group", "mode"},
		},
		{
			name: "small src",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, filepath.Join(src, "files/app.conf"), "port = 1\n", 0o644)
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("app.conf"), Src: "files/app.conf"} },
			action: Create, fields: []string{"content", "state"}, diff: "+port = 1",
		},
		{
			name: "large binary src",
			setup: func(t *testing.T, d *localDir, src string) {
				if err := os.WriteFile(filepath.Join(src, "files/blob"), big, 0o644); err != nil {
					t.Fatal(err)
				}
				// An older version on the target, also binary and large.
				old := append([]byte(nil), big...)
				old[0]++
				if err := os.WriteFile(d.path("blob"), old, 0o644); err != nil {
					t.Fatal(err)
				}
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("blob"), Src: "files/blob"} },
			action: Update, fields: []string{"content"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if ch.Diff != "" || !strings.Contains(ch.Message, "no diff") {
					t.Errorf("got diff %q, message %q; want no diff and a message saying so", ch.Diff, ch.Message)
				}
				if got, _ := os.ReadFile(d.path("blob")); !bytes.Equal(got, big) {
					t.Errorf("uploaded content differs from src")
				}
			},
		},
		{
			name: "template",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, filepath.Join(src, "files/t.tmpl"), "port = {{ .port }}\n", 0o644)
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("t.conf"), Template: "files/t.tmpl"} },
			action: Create, fields: []string{"content", "state"}, diff: "+port = 8080",
		},
		{
			name: "absent removes",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("gone"), "x", 0o644)
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("gone"), State: "absent"} },
			action: Delete, fields: []string{"state"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if _, err := os.Lstat(d.path("gone")); !os.IsNotExist(err) {
					t.Errorf("file still there: %v", err)
				}
			},
		},
		{
			name:   "absent when missing",
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("never"), State: "absent"} },
			action: None,
		},
		{
			name: "backup keeps the previous version",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("b.conf"), "old\n", 0o644)
			},
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("b.conf"), Content: ptr("new\n"), Backup: true}
			},
			action: Update, fields: []string{"content"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				m, _ := filepath.Glob(d.path("b.conf.*~"))
				if len(m) != 1 {
					t.Fatalf("backups: got %v; want one b.conf.TIMESTAMP~", m)
				}
				if got := readFile(t, m[0]); got != "old\n" {
					t.Errorf("backup content: got %q; want %q", got, "old\n")
				}
			},
		},
		{
			name: "sensitive shows no contents",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("secret"), "old-secret\n", 0o600)
			},
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("secret"), Content: ptr("new-secret\n"), Sensitive: true}
			},
			action: Update, fields: []string{"content"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if !ch.Sensitive || ch.Diff != "" {
					t.Errorf("got sensitive=%v diff=%q; want sensitive and no diff", ch.Sensitive, ch.Diff)
				}
				for _, f := range ch.Fields {
					if strings.Contains(f.Before+f.After, "secret") || strings.Contains(f.Before+f.After, "sha256") {
						t.Errorf("field %v reveals the contents or their hash", f)
					}
				}
			},
		},
		{
			name: "a symlink is replaced by a file",
			setup: func(t *testing.T, d *localDir, src string) {
				writeFile(t, d.path("real"), "x\n", 0o644)
				if err := os.Symlink("real", d.path("ln")); err != nil {
					t.Fatal(err)
				}
			},
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("ln"), Content: ptr("x\n")} },
			action: Update, fields: []string{"content", "type"},
			verify: func(t *testing.T, d *localDir, ch *Change) {
				if m, _, _, _ := statOf(t, d.path("ln")); !m.IsRegular() {
					t.Errorf("got mode %v; want a regular file", m)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			src := t.TempDir()
			if err := os.MkdirAll(filepath.Join(src, "files"), 0o755); err != nil {
				t.Fatal(err)
			}
			if tc.setup != nil {
				tc.setup(t, d, src)
			}
			req := newReq(tc.spec(d), src, map[string]any{"port": 8080}, nil)
			ch := converge(t, d.h, mustProvider("file"), req, func() string { return d.snapshot(t) }, tc.action)
			if got, want := strings.Join(sortedFieldNames(ch), ","), strings.Join(tc.fields, ","); got != want {
				t.Errorf("fields: got %s; want %s (%v)", got, want, ch.Fields)
			}
			if tc.diff != "" && !strings.Contains(ch.Diff, tc.diff) {
				t.Errorf("diff: got %q; want it to contain %q", ch.Diff, tc.diff)
			}
			if tc.verify != nil {
				tc.verify(t, d, ch)
			}
		})
	}
}

func TestFileErrors(t *testing.T) {
	d := newLocalDir(t)
	if err := os.Mkdir(d.path("adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		spec *FileSpec
		want string
	}{
		{"relative path", &FileSpec{Path: "etc/motd", Content: ptr("x")}, "not absolute"},
		{"two sources", &FileSpec{Path: d.path("f"), Content: ptr("x"), Src: "a"}, "only one of content, src and template"},
		{"absent with content", &FileSpec{Path: d.path("f"), Content: ptr("x"), State: "absent"}, "takes no content"},
		{"bad mode", &FileSpec{Path: d.path("f"), Content: ptr("x"), Mode: "rw-r--r--"}, "want an octal mode"},
		{"bad state", &FileSpec{Path: d.path("f"), State: "gone"}, `state "gone": want one of present, absent`},
		{"missing without source", &FileSpec{Path: d.path("missing")}, "does not exist, and no content"},
		{"directory in the way", &FileSpec{Path: d.path("adir"), Content: ptr("x")}, "is a directory"},
		{"missing src", &FileSpec{Path: d.path("f"), Src: "nope"}, "src nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(tc.spec, t.TempDir(), nil, nil)
			_, err := check(t, testCtx(t), d.h, mustProvider("file"), req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v; want one containing %q", err, tc.want)
			}
		})
	}
}

// TestFileHashFallbacks runs the probe with only openssl, or only shasum,
// on PATH and checks that an identical file is recognised as unchanged.
func TestFileHashFallbacks(t *testing.T) {
	tools := []string{"stat", "cut", "sed", "wc", "tr", "head"}
	for _, hasher := range []string{"openssl", "shasum", "perl"} {
		if _, err := os.Stat("/usr/bin/" + hasher); err != nil {
			t.Fatalf("/usr/bin/%s is missing: install it (apt-get install openssl perl)", hasher)
		}
	}
	for _, tc := range []struct{ name, tool string }{{"openssl", "openssl"}, {"shasum", "shasum"}} {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			bin := t.TempDir()
			links := append(append([]string(nil), tools...), tc.tool)
			if tc.tool == "shasum" {
				links = append(links, "perl")
			}
			for _, n := range links {
				if err := os.Symlink("/usr/bin/"+n, filepath.Join(bin, n)); err != nil {
					t.Fatal(err)
				}
			}
			writeFile(t, d.path("f"), "content\n", 0o644)
			spec := &FileSpec{Path: d.path("f"), Content: ptr("content\n")}
			req := newReq(spec, t.TempDir(), nil, nil)
			script, err := mustProvider("file").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.h.Run(testCtx(t), "PATH="+bin+"; export PATH\n"+script, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseProbe(res.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := p.get("sha256"), sha256Hex([]byte("content\n")); got != want {
				t.Fatalf("sha256 via %s: got %q; want %q (stderr %s)", tc.tool, got, want, res.Stderr)
			}
			ch, err := mustProvider("file").Check(req, res)
			if err != nil {
				t.Fatal(err)
			}
			if ch.Changed() {
				t.Errorf("got %s %v; want no change", ch.Action, ch.Fields)
			}
		})
	}
}

// TestFileProbeWithoutHashTool: without any hash tool the small file's contents are
// hashed locally; an identical file is still unchanged.
func TestFileProbeWithoutHashTool(t *testing.T) {
	ch, err := mustProvider("file").Check(newReq(&FileSpec{Path: "/x", Content: ptr("hi\n")}, "", nil, nil),
		connection.Result{Stdout: []byte("type=file\nstat=644 0 0 root root 3\nsha256=\nblob=3\nhi\n")})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Changed() {
		t.Errorf("got %s %v; want no change", ch.Action, ch.Fields)
	}
}

// TestFileUploadOptions: Apply is never reached for identical
// contents, and an update goes through exactly one atomic Upload with the
// kept attributes.
func TestFileUploadOptions(t *testing.T) {
	f := &fakeHost{}
	req := newReq(&FileSpec{Path: "/etc/app.conf", Content: ptr("new\n")}, "", nil, nil)
	probe := connection.Result{Stdout: []byte("type=file\nstat=2750 0 50 root staff 4\nsha256=" + sha256Hex([]byte("old\n")) + "\nblob=4\nold\n")}
	ch, err := mustProvider("file").Check(req, probe)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mustProvider("file").Apply(testCtx(t), f, req, ch); err != nil {
		t.Fatal(err)
	}
	if len(f.uploads) != 1 || len(f.scripts) != 0 {
		t.Fatalf("got %d uploads and scripts %q; want one upload and no script", len(f.uploads), f.scripts)
	}
	u := f.uploads[0]
	// The old attributes are carried over as numeric ids (set over SFTP,
	// no chown on the host).
	want := connection.UploadOptions{Mode: fileMode(0o2750), Owner: "0", Group: "50"}
	if u.dst != "/etc/app.conf" || string(u.data) != "new\n" || u.opts.Mode != want.Mode || u.opts.Owner != want.Owner || u.opts.Group != want.Group {
		t.Errorf("got upload %s %q %+v; want /etc/app.conf %q %+v", u.dst, u.data, u.opts, "new\n", want)
	}
	same := connection.Result{Stdout: []byte("type=file\nstat=644 0 0 root root 4\nsha256=" + sha256Hex([]byte("new\n")) + "\n")}
	ch, err = mustProvider("file").Check(req, same)
	if err != nil || ch.Changed() {
		t.Errorf("identical contents (no blob): got %v, %v; want no change", ch, err)
	}
}

func TestTemplateConverges(t *testing.T) {
	labtest.RequireRoot(t)
	d := newLocalDir(t)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "app.tmpl"), "name = {{ .name }}\n", 0o644)
	spec := &TemplateSpec{Src: "app.tmpl", Path: d.path("app.conf"), Mode: "0600", Owner: "nobody"}
	req := newReq(spec, src, map[string]any{"name": "web1"}, nil)
	ch := converge(t, d.h, mustProvider("template"), req, func() string { return d.snapshot(t) }, Create)
	if !strings.Contains(ch.Diff, "+name = web1") {
		t.Errorf("diff: got %q; want it to contain %q", ch.Diff, "+name = web1")
	}
	if got := readFile(t, d.path("app.conf")); got != "name = web1\n" {
		t.Errorf("content: got %q", got)
	}
	m, uid, _, _ := statOf(t, d.path("app.conf"))
	if m.Perm() != 0o600 || uid != 65534 {
		t.Errorf("got %v uid %d; want -rw------- uid 65534", m.Perm(), uid)
	}
	// A changed variable changes the file.
	req2 := newReq(spec, src, map[string]any{"name": "web2"}, nil)
	converge(t, d.h, mustProvider("template"), req2, func() string { return d.snapshot(t) }, Update)
	// A template error names the template.
	req3 := newReq(spec, src, map[string]any{}, nil)
	if _, err := check(t, testCtx(t), d.h, mustProvider("template"), req3); err == nil || !strings.Contains(err.Error(), "app.tmpl") {
		t.Errorf("got %v; want an error naming app.tmpl", err)
	}
}

// TestFileProbeFetchesContentsOnlyForADiff runs file probes locally: the
// current contents travel back only when they differ from the wanted
// ones and a diff can be shown, so a no-op probe costs stat and sha256sum
// and nothing more.
func TestFileProbeFetchesContentsOnlyForADiff(t *testing.T) {
	d := newLocalDir(t)
	src := t.TempDir()
	writeFile(t, d.path("f"), "current\n", 0o644)
	big := strings.Repeat("x", maxDiffSize+1)
	writeFile(t, filepath.Join(src, "big"), big, 0o644)
	writeFile(t, filepath.Join(src, "small"), "current\n", 0o644)
	for _, tc := range []struct {
		name     string
		spec     *FileSpec
		wantBlob bool
		wantHash bool
	}{
		{"same content", &FileSpec{Path: d.path("f"), Content: ptr("current\n")}, false, true},
		{"other content", &FileSpec{Path: d.path("f"), Content: ptr("wanted\n")}, true, true},
		{"same small src", &FileSpec{Path: d.path("f"), Src: "small"}, false, true},
		{"large src: no diff possible", &FileSpec{Path: d.path("f"), Src: "big"}, false, true},
		{"template that fails to render", &FileSpec{Path: d.path("f"), Template: "missing.tmpl"}, true, true},
		{"attributes only", &FileSpec{Path: d.path("f"), Mode: "0644"}, false, false},
		{"sensitive", &FileSpec{Path: d.path("f"), Content: ptr("wanted\n"), Sensitive: true}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := newReq(tc.spec, src, nil, nil)
			script, err := mustProvider("file").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.h.Run(testCtx(t), script, nil)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseProbe(res.Stdout)
			if err != nil {
				t.Fatal(err)
			}
			if p.hasBlob != tc.wantBlob {
				t.Errorf("blob fetched: got %v; want %v\n%s", p.hasBlob, tc.wantBlob, res.Stdout)
			}
			if got := p.get("sha256") != ""; got != tc.wantHash {
				t.Errorf("sha256 printed: got %v; want %v\n%s", got, tc.wantHash, res.Stdout)
			}
		})
	}
}
