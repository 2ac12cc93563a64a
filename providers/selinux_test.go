package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/policy"
)

// selinuxSubnet is the lab subnet of TestSELinuxLab.
const selinuxSubnet = 28

// selinuxDocNote is the Behaviour note on SELinux of the file, template
// and directory pages (typeDocs); kind is the type.
func selinuxDocNote(kind string) string {
	what := "the file"
	if kind == "directory" {
		what = "the directory"
	}
	note := "\n- SELinux: `seuser`, `serole`, `setype` and `selevel` set those parts of " + what + "'s context (`chcon -u/-r/-t/-l`), each on its own: unset parts are left as they are, as in Ansible. The probe reads the context with `ls -Zd` in the same round trip (only when a key is given) and check shows one field per part that differs (`setype: etc_t -> httpd_config_t`). Whether SELinux is on (`selinuxenabled` exits 0) is learned once per connection, when opsmop's shell starts. **On a host where SELinux is off** (or has no `selinuxenabled`) an se* key fails the resource, naming the keys and saying what to do, where Ansible ignores them silently: a context that a policy asks for is never silently missing; use a `when` condition to give the keys only to SELinux hosts. `_default` (Ansible's \"policy default\") is not supported: leave the key unset. `opsmop validate` reports, at the key's line, a user, role or type that is not letters, digits and `_`, and a level that is not a sensitivity with optional categories or a range of two (`s0`, `s0:c1,c2`, `s0-s0:c0.c1023`)."
	if kind == "directory" {
		return note + " With `recurse`, the se* keys still apply to the directory itself only (use `chcon -R` or `restorecon -R` in a `shell` resource for a tree)."
	}
	return note + "\n- Where SELinux is on, a replaced file keeps its context: the new temp file gets the old file's context (`chcon --reference`) before the rename, and a new file gets the policy default (`restorecon`) after it, as Ansible's copy does; the se* keys are applied after that. This holds for every file opsmop writes (file, template, line, tree, download, authorized_key). On a host without SELinux it costs nothing: no process per file. If `chcon` or `restorecon` is missing or fails on an SELinux host the write fails with a message saying so."
}

// selinuxDocTOML and selinuxDocYAML are the SELinux example added to the
// file page.
const (
	selinuxDocTOML = `

[[roles.resources]]
type = "file"
path = "/var/www/html/index.html"
src = "files/index.html"
setype = "httpd_sys_content_t"`
	selinuxDocYAML = `
- type: file
  path: /var/www/html/index.html
  src: files/index.html
  setype: httpd_sys_content_t`
)

func TestSELinuxValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"all valid", &FileSpec{Path: "/a", Content: ptr("x"), seKeys: seKeys{SEUser: "system_u", SERole: "object_r", SEType: "httpd_config_t", SELevel: "s0-s0:c0.c1023"}}, nil},
		{"level with categories", &FileSpec{Path: "/a", Content: ptr("x"), seKeys: seKeys{SELevel: "s0:c1,c2"}}, nil},
		{"templated", &DirectorySpec{Path: "/a", seKeys: seKeys{SEType: "{{ .t }}", SELevel: "{{ .l }}"}}, nil},
		{"hostile type", &FileSpec{Path: "/a", Content: ptr("x"), seKeys: seKeys{SEType: "etc_t; rm -rf /"}}, []string{`setype: setype = "etc_t; rm -rf /" is not an SELinux type name: letters, digits and _ only (e.g. "etc_t")`}},
		{"user with colon", &TemplateSpec{Src: "t", Path: "/a", seKeys: seKeys{SEUser: "system_u:object_r"}}, []string{`seuser: seuser = "system_u:object_r" is not an SELinux user name`}},
		{"bad role", &DirectorySpec{Path: "/a", seKeys: seKeys{SERole: "-r"}}, []string{`serole: serole = "-r" is not an SELinux role name`}},
		{"bad level", &DirectorySpec{Path: "/a", seKeys: seKeys{SELevel: "s0-c1"}}, []string{`selevel: selevel = "s0-c1" is not an SELinux level`}},
		{"level with option", &FileSpec{Path: "/a", seKeys: seKeys{SELevel: "--reference=/etc"}}, []string{`selevel: is not an SELinux level`}},
		{"_default", &FileSpec{Path: "/a", seKeys: seKeys{SEType: "_default"}}, []string{`setype: setype = "_default" (Ansible's policy default) is not supported`}},
		{"absent file", &FileSpec{Path: "/a", State: "absent", seKeys: seKeys{SEType: "etc_t"}}, []string{`state: state = "absent" removes the file: remove seuser, serole, setype and selevel`}},
		{"absent directory", &DirectorySpec{Path: "/a", State: "absent", seKeys: seKeys{SEType: "etc_t"}}, []string{`state: state = "absent" removes the directory`}},
	})
}

// TestSELinuxValidateAtKeyLine loads a policy with bad se* keys on file,
// template and directory: the decoder fills the embedded keys, and each
// problem is shown at its key's file:line.
func TestSELinuxValidateAtKeyLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.toml")
	src := "[[roles]]\nname = \"r\"\n\n[[roles.resources]]\ntype = \"file\"\npath = \"/a\"\ncontent = \"x\"\nsetype = \"bad type\"\n\n" +
		"[[roles.resources]]\ntype = \"template\"\nsrc = \"t.tmpl\"\npath = \"/b\"\nseuser = \"system_u\"\nselevel = \"s0:\"\n\n" +
		"[[roles.resources]]\ntype = \"directory\"\npath = \"/c\"\nserole = \"object_r\"\nsetype = \"var_t\"\nselevel = \"s0-s0:c0.c1023\"\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p, Registry())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, res := range pol.Roles[0].Resources {
		var se *SpecError
		if err := res.Spec.(Validator).Validate(); err != nil && !errors.As(err, &se) {
			t.Fatalf("got %v; want a *SpecError", err)
		}
		if se == nil {
			continue
		}
		for _, pr := range se.Problems {
			pos := res.KeyPos(pr.Key)
			got = append(got, fmt.Sprintf("%s:%d: %s", filepath.Base(pos.File), pos.Line, pr.Msg))
		}
	}
	want := []string{
		`site.toml:8: setype = "bad type" is not an SELinux type name: letters, digits and _ only (e.g. "etc_t")`,
		`site.toml:15: selevel = "s0:" is not an SELinux level: a sensitivity with optional categories, or a range of two (e.g. "s0", "s0:c1,c2", "s0-s0:c0.c1023")`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	d := pol.Roles[0].Resources[2].Spec.(*DirectorySpec)
	if d.seKeys != (seKeys{SERole: "object_r", SEType: "var_t", SELevel: "s0-s0:c0.c1023"}) {
		t.Errorf("decoded directory keys: got %+v; want serole, setype and selevel set", d.seKeys)
	}
}

func TestSELinuxParseContext(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want seContext
		err  bool
	}{
		{"system_u:object_r:etc_t:s0", seContext{"system_u", "object_r", "etc_t", "s0"}, false},
		{"unconfined_u:object_r:user_home_t:s0-s0:c0.c1023", seContext{"unconfined_u", "object_r", "user_home_t", "s0-s0:c0.c1023"}, false},
		{"user_u:object_r:tmp_t", seContext{"user_u", "object_r", "tmp_t", ""}, false},
		{"?", seContext{}, true},
		{"", seContext{}, true},
		{"a::c:s0", seContext{}, true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseSEContext(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("got %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestSELinuxCheckFields(t *testing.T) {
	probe := func(s string) *probeOutput {
		p, err := parseProbe([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		keys   seKeys
		probe  string
		exists bool
		want   map[string]string
		chcon  string
		err    string
	}{
		{"type differs", seKeys{SEType: "httpd_config_t", SEUser: "system_u"}, "selinux=1\nsecontext=system_u:object_r:etc_t:s0\n", true,
			map[string]string{"setype": "etc_t -> httpd_config_t"}, "chcon -t httpd_config_t -- '/p'", ""},
		{"all differ", seKeys{SEUser: "u", SERole: "r", SEType: "t", SELevel: "s0:c1,c2"}, "selinux=1\nsecontext=system_u:object_r:etc_t:s0\n", true,
			map[string]string{"seuser": "system_u -> u", "serole": "object_r -> r", "setype": "etc_t -> t", "selevel": "s0 -> s0:c1,c2"}, "chcon -u u -r r -t t -l s0:c1,c2 -- '/p'", ""},
		{"same", seKeys{SEType: "etc_t", SELevel: "s0"}, "selinux=1\nsecontext=system_u:object_r:etc_t:s0\n", true, map[string]string{}, "", ""},
		{"new path", seKeys{SEType: "etc_t"}, "selinux=1\n", false, map[string]string{"setype": " -> etc_t"}, "chcon -t etc_t -- '/p'", ""},
		{"no keys, SELinux off", seKeys{}, "selinux=0\n", true, map[string]string{}, "", ""},
		{"SELinux off", seKeys{SEType: "etc_t", SELevel: "s0"}, "selinux=0\n", true, nil, "",
			`setype = "etc_t", selevel = "s0" given, but SELinux is off on this host (selinuxenabled is missing or exits non-zero): nothing was changed; remove the se* keys for hosts without SELinux (e.g. with a when condition), or enable SELinux`},
		{"unreadable context", seKeys{SEType: "etc_t"}, "selinux=1\nsecontext=?\n", true, nil, "", `ls -Zd printed "?"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fields, ch, err := tc.keys.check(probe(tc.probe), tc.exists)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v; want an error containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := fieldMap(&Change{Fields: fields})
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("fields: got %v; want %v", got, tc.want)
			}
			if s := ch.script("'/p'"); s != tc.chcon {
				t.Errorf("chcon: got %q; want %q", s, tc.chcon)
			}
		})
	}
}

// TestSELinuxOffErrorIsTyped: the check of a file with setype on a host
// without SELinux fails with *SELinuxOffError.
func TestSELinuxOffErrorIsTyped(t *testing.T) {
	spec := &FileSpec{Path: "/etc/x", Content: ptr("x"), seKeys: seKeys{SEType: "etc_t"}}
	_, err := mustProvider("file").Check(newReq(spec, "", nil, nil), connection.Result{Stdout: []byte("type=absent\nselinux=0\n")})
	var off *SELinuxOffError
	if !errors.As(err, &off) || !slices.Equal(off.Keys, []string{`setype = "etc_t"`}) {
		t.Fatalf("got %v; want a *SELinuxOffError naming setype", err)
	}
}

// installSELinuxStandin installs providers/testdata/selinux-standin.sh
// into lab host h as selinuxenabled, chcon, restorecon and ls in
// /usr/local/bin (first in every PATH opsmop's shells get, sudo's
// secure_path too), with the policy default table; enabled makes
// selinuxenabled exit 0.
func installSELinuxStandin(t *testing.T, ctx context.Context, h *lab.Host, enabled bool) {
	t.Helper()
	b, err := os.ReadFile("testdata/selinux-standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	script := `set -e
mkdir -p /usr/local/lib /usr/local/bin /etc/selinux-standin
cat > /usr/local/lib/selinux-standin.sh
chmod 755 /usr/local/lib/selinux-standin.sh
for n in selinuxenabled chcon restorecon ls; do ln -sf /usr/local/lib/selinux-standin.sh /usr/local/bin/$n; done
printf '%s\n' '/srv/se/conf\.d(/.*)? system_u:object_r:httpd_config_t:s0' '/srv/se(/.*)? system_u:object_r:var_t:s0' > /etc/selinux-standin/file_contexts
: > /var/log/selinux-standin.log
chmod 666 /var/log/selinux-standin.log
`
	if enabled {
		script += "touch /etc/selinux-standin/enabled\n"
	}
	if out, err := h.ExecInput(ctx, script, bytes.NewReader(b)); err != nil {
		t.Fatalf("install the SELinux stand-in on %s: %v: %s", h.Name, err, out)
	}
}

// TestSELinuxLab runs the write path and the se* keys against lab hosts
// with the SELinux stand-in (testdata/selinux-standin.sh): "se" uploads
// over SFTP, "senosftp" through the persistent shell (no sftp-server),
// both with SELinux on; "off" has the stand-in with SELinux off; "plain"
// has no selinuxenabled at all.
func TestSELinuxLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: selinuxSubnet, Hosts: []lab.HostSpec{
		{Name: "se"}, noSFTPSpec("senosftp"), {Name: "off"}, {Name: "plain"},
	}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	k := newLabKit(t, ctx, l)
	root := k.root
	root("senosftp")(t, removeSFTPServers)
	installSELinuxStandin(t, ctx, l.Host("se"), true)
	installSELinuxStandin(t, ctx, l.Host("senosftp"), true)
	installSELinuxStandin(t, ctx, l.Host("off"), false)
	for _, n := range []string{"se", "senosftp", "off", "plain"} {
		root(n)(t, "mkdir -p /srv/se/conf.d")
	}
	connect := func(name string) *connection.SSHHost { return k.connect(t, name, "ops", "root") }
	for _, name := range []string{"se", "senosftp"} {
		t.Run(name, func(t *testing.T) {
			h := connect(name)
			r := root(name)
			// The stand-ins are what opsmop's shell finds (not coreutils'
			// chcon), else this test would prove nothing.
			res, err := h.Run(ctx, "for c in chcon restorecon selinuxenabled ls; do command -v $c; done; printf 'se=%s\\n' \"${__opsmop_se-unset}\"", nil)
			if err != nil || string(res.Stdout) != "/usr/local/bin/chcon\n/usr/local/bin/restorecon\n/usr/local/bin/selinuxenabled\n/usr/local/bin/ls\nse=1\n" {
				t.Fatalf("the stand-ins in opsmop's shell: got %q, %v; want the four in /usr/local/bin and se=1", res.Stdout, err)
			}
			testSELinuxKeep(t, h, r)
			testSELinuxKeys(t, h, r)
			testSELinuxTree(t, h, r)
			testSELinuxAuthorizedKey(t, h, r)
		})
	}
	t.Run("off", func(t *testing.T) { testSELinuxOff(t, connect("off"), root("off"), true) })
	t.Run("plain", func(t *testing.T) { testSELinuxOff(t, connect("plain"), root("plain"), false) })
}

// seSnap lists the files under /srv/se with their contents' sums and
// their contexts (the stand-in's attribute), as root.
func seSnap(t *testing.T, r func(*testing.T, string) string) func() string {
	return func() string {
		// The stand-in's attributes read in one process (its ls -Z would
		// start one per file).
		return r(t, `cd /srv/se && find . -printf '%p %y %m %U %G %i %T@\n' | sort; find . -type f -exec cksum {} + | sort; find . -print0 | sort -z | /usr/bin/python3 -c '
import os, sys
for p in sys.stdin.buffer.read().split(b"\0"):
    if p:
        try: v = os.getxattr(p, "user.selinux_standin")
        except OSError: v = b"-"
        print(p, v)'`)
	}
}

// seContextOf is the stand-in's context of p.
func seContextOf(t *testing.T, r func(*testing.T, string) string, p string) string {
	t.Helper()
	out := r(t, "SELINUX_STANDIN_LOG=/dev/null /usr/local/bin/ls -Zd -- "+shell.Quote(p))
	ctx, _, _ := strings.Cut(out, " ")
	return ctx
}

// testSELinuxKeep: a replaced file keeps its context, a new file gets the
// policy default, through Upload (SFTP or the shell, as the host allows).
func testSELinuxKeep(t *testing.T, h Host, r func(*testing.T, string) string) {
	r(t, "printf 'old\\n' > /srv/se/keep.conf && /usr/local/bin/chcon -t special_t -l s0:c7 -- /srv/se/keep.conf")
	if got, want := seContextOf(t, r, "/srv/se/keep.conf"), "system_u:object_r:special_t:s0:c7"; got != want {
		t.Fatalf("stand-in set-up: got %q; want %q", got, want)
	}
	for i := range 3 {
		// Several uploads: the first learns over the shell that SELinux
		// is on, the others rely on it.
		content := fmt.Sprintf("new %d\n", i)
		spec := &FileSpec{Path: "/srv/se/keep.conf", Content: &content}
		converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), seSnap(t, r), Update)
		if got, want := seContextOf(t, r, "/srv/se/keep.conf"), "system_u:object_r:special_t:s0:c7"; got != want {
			t.Errorf("replaced file %d: got context %q; want the old one, %q", i, got, want)
		}
	}
	// A new file: the policy default (var_t under /srv/se, httpd_config_t
	// under conf.d), not its directory's (root_t).
	for _, tc := range []struct{ path, want string }{
		{"/srv/se/new.conf", "system_u:object_r:var_t:s0"},
		{"/srv/se/conf.d/site.conf", "system_u:object_r:httpd_config_t:s0"},
		{"/srv/se/conf.d/it's here.conf", "system_u:object_r:httpd_config_t:s0"},
	} {
		spec := &FileSpec{Path: tc.path, Content: ptr("x\n")}
		converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), seSnap(t, r), Create)
		if got := seContextOf(t, r, tc.path); got != tc.want {
			t.Errorf("new file %s: got context %q; want the policy default %q", tc.path, got, tc.want)
		}
	}
	if out := r(t, "ls -A /srv/se /srv/se/conf.d | grep opsmop || true"); out != "" {
		t.Errorf("temp files left: %q", out)
	}
}

// testSELinuxKeys: se* keys on file, template and directory: check shows
// a field per part and leaves the host untouched, apply sets them, a
// second check is clean, drift is found and repaired.
func testSELinuxKeys(t *testing.T, h Host, r func(*testing.T, string) string) {
	snap := seSnap(t, r)
	t.Run("file", func(t *testing.T) {
		r(t, "printf 'a\\n' > /srv/se/app.conf")
		spec := &FileSpec{Path: "/srv/se/app.conf", seKeys: seKeys{SEType: "httpd_sys_content_t", SELevel: "s0:c1,c2"}}
		ch := converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Update)
		want := map[string]string{"setype": "root_t -> httpd_sys_content_t", "selevel": "s0 -> s0:c1,c2"}
		if got := fieldMap(ch); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("fields: got %v; want %v", got, want)
		}
		if got := seContextOf(t, r, "/srv/se/app.conf"); got != "system_u:object_r:httpd_sys_content_t:s0:c1,c2" {
			t.Errorf("context: got %q", got)
		}
		// Drift: someone relabels the file.
		r(t, "/usr/local/bin/chcon -t etc_t -- /srv/se/app.conf")
		ch = converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Update)
		if got := fieldMap(ch); fmt.Sprint(got) != fmt.Sprint(map[string]string{"setype": "etc_t -> httpd_sys_content_t"}) {
			t.Errorf("drift fields: got %v", got)
		}
		// New contents and a new type at once: the context is kept, then
		// the type set.
		spec = &FileSpec{Path: "/srv/se/app.conf", Content: ptr("b\n"), seKeys: seKeys{SEType: "var_log_t"}}
		converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Update)
		if got := seContextOf(t, r, "/srv/se/app.conf"); got != "system_u:object_r:var_log_t:s0:c1,c2" {
			t.Errorf("context after new contents and setype: got %q; want the level kept and the type set", got)
		}
		// A new file with a user and role.
		spec = &FileSpec{Path: "/srv/se/conf.d/u.conf", Content: ptr("u\n"), seKeys: seKeys{SEUser: "staff_u", SERole: "staff_r"}}
		ch = converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Create)
		if got := fieldMap(ch); got["seuser"] != " -> staff_u" || got["serole"] != " -> staff_r" {
			t.Errorf("new file fields: got %v", got)
		}
		if got := seContextOf(t, r, "/srv/se/conf.d/u.conf"); got != "staff_u:staff_r:httpd_config_t:s0" {
			t.Errorf("new file with seuser/serole: got %q; want them over the policy default", got)
		}
	})
	t.Run("template", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "t.tmpl"), []byte("hello\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		spec := &TemplateSpec{Src: "t.tmpl", Path: "/srv/se/conf.d/t.conf", seKeys: seKeys{SEType: "etc_t"}}
		ch := converge(t, h, mustProvider("template"), newReq(spec, dir, nil, nil), snap, Create)
		if got := fieldMap(ch)["setype"]; got != " -> etc_t" {
			t.Errorf("setype field: got %q", got)
		}
		if got := seContextOf(t, r, "/srv/se/conf.d/t.conf"); got != "system_u:object_r:etc_t:s0" {
			t.Errorf("context: got %q", got)
		}
	})
	t.Run("directory", func(t *testing.T) {
		spec := &DirectorySpec{Path: "/srv/se/www", seKeys: seKeys{SEType: "httpd_sys_content_t"}}
		ch := converge(t, h, mustProvider("directory"), newReq(spec, "", nil, nil), snap, Create)
		if got := fieldMap(ch)["setype"]; got != " -> httpd_sys_content_t" {
			t.Errorf("setype field: got %q", got)
		}
		r(t, "/usr/local/bin/chcon -t tmp_t -- /srv/se/www")
		ch = converge(t, h, mustProvider("directory"), newReq(spec, "", nil, nil), snap, Update)
		if got := fieldMap(ch)["setype"]; got != "tmp_t -> httpd_sys_content_t" {
			t.Errorf("drift: got %q", got)
		}
		if got := seContextOf(t, r, "/srv/se/www"); got != "system_u:object_r:httpd_sys_content_t:s0" {
			t.Errorf("context: got %q", got)
		}
	})
}

// testSELinuxTree: the tree resource's own renames keep the context of
// the files they replace; new files and directories get the default.
func testSELinuxTree(t *testing.T, h Host, r func(*testing.T, string) string) {
	dir := t.TempDir()
	for p, c := range map[string]string{"files/a.conf": "a1\n", "files/sub/b.conf": "b1\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := &TreeSpec{Src: "files", Path: "/srv/se/tree"}
	converge(t, h, mustProvider("tree"), newReq(spec, dir, nil, nil), seSnap(t, r), Create)
	for p, want := range map[string]string{"/srv/se/tree/a.conf": "system_u:object_r:var_t:s0", "/srv/se/tree/sub": "system_u:object_r:var_t:s0", "/srv/se/tree/sub/b.conf": "system_u:object_r:var_t:s0"} {
		if got := seContextOf(t, r, p); got != want {
			t.Errorf("new %s: got %q; want %q", p, got, want)
		}
	}
	r(t, "/usr/local/bin/chcon -t special_t -- /srv/se/tree/a.conf")
	if err := os.WriteFile(filepath.Join(dir, "files/a.conf"), []byte("a2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	converge(t, h, mustProvider("tree"), newReq(spec, dir, nil, nil), seSnap(t, r), Update)
	if got, want := seContextOf(t, r, "/srv/se/tree/a.conf"), "system_u:object_r:special_t:s0"; got != want {
		t.Errorf("replaced a.conf: got %q; want the old context %q", got, want)
	}
	t.Run("keys", func(t *testing.T) { testSELinuxTreeKeys(t, h, r) })
}

// testSELinuxTreeKeys: tree's se* keys are set on path and every entry
// copied from src (names ls would print otherwise included), never on
// what src does not have; drift on one entry is named and repaired.
func testSELinuxTreeKeys(t *testing.T, h Host, r func(*testing.T, string) string) {
	dir := t.TempDir()
	files := map[string]string{"files/a.conf": "a\n", "files/sub/b.conf": "b\n", "files/odd\nname": "n\n", "files/back\\slash ": "s\n"}
	for p, c := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const want = "system_u:object_r:httpd_sys_content_t:s0:c3"
	all := []string{"", "/a.conf", "/sub", "/sub/b.conf", "/odd\nname", "/back\\slash "}
	spec := &TreeSpec{Src: "files", Path: "/srv/se/keys", seKeys: seKeys{SEType: "httpd_sys_content_t", SELevel: "s0:c3"}}
	snap := seSnap(t, r)
	ch := converge(t, h, mustProvider("tree"), newReq(spec, dir, nil, nil), snap, Create)
	fm := fieldMap(ch)
	if got := fm["."]; got != "absent -> directory 0755, setype httpd_sys_content_t, selevel s0:c3" {
		t.Errorf("new path's field: got %q", got)
	}
	if got := fm["a.conf"]; !strings.HasSuffix(got, ", setype httpd_sys_content_t, selevel s0:c3") {
		t.Errorf("new file's field: got %q; want the se parts after", got)
	}
	for _, p := range all {
		if got := seContextOf(t, r, "/srv/se/keys"+p); got != want {
			t.Errorf("%q: got %q; want %q", p, got, want)
		}
	}
	// Drift on a plain and an odd name, plus a file src does not have:
	// the two are named and repaired, the third left alone.
	r(t, "cd /srv/se/keys && /usr/local/bin/chcon -t etc_t -- sub/b.conf 'odd\n'name && printf x > extra && /usr/local/bin/chcon -t foo_t -- extra")
	ch = converge(t, h, mustProvider("tree"), newReq(spec, dir, nil, nil), snap, Update)
	fm = fieldMap(ch)
	wantFields := map[string]string{"sub/b.conf": "setype etc_t -> setype httpd_sys_content_t", displayName("odd\nname"): "setype etc_t -> setype httpd_sys_content_t"}
	if fmt.Sprint(fm) != fmt.Sprint(wantFields) {
		t.Errorf("drift fields: got %v; want %v", fm, wantFields)
	}
	for _, p := range all {
		if got := seContextOf(t, r, "/srv/se/keys"+p); got != want {
			t.Errorf("after repair %q: got %q; want %q", p, got, want)
		}
	}
	if got := seContextOf(t, r, "/srv/se/keys/extra"); got != "system_u:object_r:foo_t:s0:c3" {
		t.Errorf("a file src does not have: got %q; want its own context kept", got)
	}
	// New contents in a file with its own context: kept, then the type
	// set; the level from the key.
	r(t, "/usr/local/bin/chcon -u staff_u -t etc_t -- /srv/se/keys/a.conf")
	if err := os.WriteFile(filepath.Join(dir, "files/a.conf"), []byte("a2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ch = converge(t, h, mustProvider("tree"), newReq(spec, dir, nil, nil), snap, Update)
	if got := fieldMap(ch)["a.conf"]; !strings.HasSuffix(got, ", setype etc_t -> content "+shortSum(sha256Hex([]byte("a2\n")))+", setype httpd_sys_content_t") {
		t.Errorf("replaced file's field: got %q", got)
	}
	if got := seContextOf(t, r, "/srv/se/keys/a.conf"); got != "staff_u:object_r:httpd_sys_content_t:s0:c3" {
		t.Errorf("replaced file: got %q; want the user kept and the type set", got)
	}
}

// testSELinuxAuthorizedKey: authorized_key's own rename keeps the
// context of the file it replaces.
func testSELinuxAuthorizedKey(t *testing.T, h Host, r func(*testing.T, string) string) {
	const k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1"
	home := strings.TrimSpace(r(t, "getent passwd app | cut -d: -f6"))
	keys := home + "/.ssh/authorized_keys"
	r(t, "mkdir -p "+shell.Quote(home+"/.ssh")+" && : > "+shell.Quote(keys)+" && chown -R app: "+shell.Quote(home+"/.ssh")+" && /usr/local/bin/chcon -t ssh_home_t -- "+shell.Quote(keys))
	spec := &AuthorizedKeySpec{User: "app", Key: []string{k1}}
	snap := func() string {
		return r(t, "cat "+shell.Quote(keys)+"; SELINUX_STANDIN_LOG=/dev/null /usr/local/bin/ls -Zd -- "+shell.Quote(keys))
	}
	converge(t, h, mustProvider("authorized_key"), newReq(spec, "", nil, nil), snap, Update)
	if got := seContextOf(t, r, keys); got != "system_u:object_r:ssh_home_t:s0" {
		t.Errorf("replaced authorized_keys: got %q; want ssh_home_t kept", got)
	}
}

// testSELinuxOff: on a host without SELinux, files are written with no
// SELinux process at all (with the stand-in installed: selinuxenabled
// once per shell, never chcon, restorecon or ls -Z), and an se* key
// fails the resource with the clear error, the host untouched.
func testSELinuxOff(t *testing.T, h *connection.SSHHost, r func(*testing.T, string) string, standin bool) {
	snap := seSnap(t, r)
	for i := range 5 {
		spec := &FileSpec{Path: fmt.Sprintf("/srv/se/f%d.conf", i), Content: ptr("x\n")}
		converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Create)
		spec.Content = ptr("y\n")
		converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), snap, Update)
	}
	spec := &FileSpec{Path: "/srv/se/f0.conf", Content: ptr("z\n"), seKeys: seKeys{SEType: "etc_t"}}
	before := snap()
	_, err := check(t, testCtx(t), h, mustProvider("file"), newReq(spec, "", nil, nil))
	var off *SELinuxOffError
	if !errors.As(err, &off) || !strings.Contains(err.Error(), `setype = "etc_t" given, but SELinux is off on this host`) || !strings.Contains(err.Error(), "remove the se* keys") {
		t.Errorf("check with setype: got %v; want the SELinux-off error", err)
	}
	dspec := &DirectorySpec{Path: "/srv/se/d", seKeys: seKeys{SELevel: "s0"}}
	if _, err := check(t, testCtx(t), h, mustProvider("directory"), newReq(dspec, "", nil, nil)); !errors.As(err, &off) {
		t.Errorf("directory check with selevel: got %v; want the SELinux-off error", err)
	}
	tdir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(tdir, "files"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(tdir, "files/x"), []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/srv/se/t", "/srv/se/conf.d"} {
		tspec := &TreeSpec{Src: "files", Path: p, seKeys: seKeys{SEType: "etc_t"}}
		if _, err := check(t, testCtx(t), h, mustProvider("tree"), newReq(tspec, tdir, nil, nil)); !errors.As(err, &off) || !strings.Contains(err.Error(), `setype = "etc_t" given`) {
			t.Errorf("tree %s check with setype: got %v; want the SELinux-off error", p, err)
		}
	}
	if after := snap(); after != before {
		t.Errorf("the failed checks changed the host:\n%s\n%s", before, after)
	}
	if !standin {
		if got := r(t, "for c in selinuxenabled chcon restorecon; do command -v $c || true; done"); got != "/usr/bin/chcon\n" {
			t.Fatalf("plain host: got %q; want no selinuxenabled or restorecon (coreutils' chcon only)", got)
		}
		return
	}
	// 10 uploads and 12 checks: selinuxenabled ran once, when opsmop's
	// shell started; nothing else of the stand-in ran.
	if got := r(t, "cat /var/log/selinux-standin.log"); got != "selinuxenabled \n" {
		t.Errorf("SELinux processes on a host without SELinux: got %q; want one selinuxenabled", got)
	}
}
