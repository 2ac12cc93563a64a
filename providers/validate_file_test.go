package providers

// validate on file and template: the command runs on the uploaded temp
// file before the rename (connection.UploadOptions.Validate), over SFTP,
// through the persistent shell, and on Local; a refusal leaves the old
// file and no temp file.

import (
	"context"
	"errors"
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

// validateSubnet is TestWriteValidateLab's lab block (127.34.0.0/16).
const validateSubnet = 34

// hostilePath is a directory name with every character sh treats
// specially in a word.
const hostilePath = `/srv/it's a "dir" $(touch /srv/pwned) ` + "`touch /srv/pwned2`" + ` ;&|<>*?[x]\ #~`

func TestValidateCommand(t *testing.T) {
	tests := []struct {
		name, tmpl, tmp string
		want            string // "" with an error
		err             string // part of the error
	}{
		{"visudo", "visudo -cf %s", "/etc/sudoers.d/.opsmop-1.tmp", "visudo -cf /etc/sudoers.d/.opsmop-1.tmp", ""},
		{"quoted path", "test -s %s", "/srv/a b/it's", `test -s '/srv/a b/it'\''s'`, ""},
		{"twice", "cmp %s %s.orig", "/x/y", "cmp /x/y /x/y.orig", ""},
		{"literal percent", "date +%%Y >/dev/null && test -s %s", "/x", "date +%Y >/dev/null && test -s /x", ""},
		{"percent in single quotes", "printf '%%d\\n' 1; test -s %s", "/x", "printf '%d\\n' 1; test -s /x", ""},
		{"escaped quote", `echo \' && test -s %s`, "/x", `echo \' && test -s /x`, ""},
		{"escaped double quote inside", `echo "a\"b" %s`, "/x", `echo "a\"b" /x`, ""},
		{"no placeholder", "visudo -c", "/x", "", "has no %s"},
		{"only a literal", "echo %%s", "/x", "", "has no %s"},
		{"single-quoted", "visudo -cf '%s'", "/x", "", "inside single quotes"},
		{"double-quoted", `visudo -cf "%s"`, "/x", "", "inside double quotes"},
		{"other verb", "visudo -cf %d", "/x", "", `"%d"`},
		{"lone percent", "visudo -cf %s 100%", "/x", "", "lone %"},
		{"unterminated", "visudo -cf %s 'oops", "/x", "", "unterminated single quote"},
		{"nul", "visudo -cf %s\x00", "/x", "", "NUL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := validateCommand(tt.tmpl, tt.tmp)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("validateCommand(%q): got %q, %v; want an error containing %q", tt.tmpl, got, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("validateCommand(%q, %q): got %q, %v; want %q", tt.tmpl, tt.tmp, got, err, tt.want)
			}
		})
	}

	// The path reaches the command as exactly one word, whatever it holds.
	t.Run("sh", func(t *testing.T) {
		for _, p := range []string{"/x", hostilePath + "/.f.tmp", "/a\nb/c", "/-n", "/ä/€"} {
			cmd, err := validateCommand(`printf "[%%s]" %s`, p)
			if err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("sh", "-c", cmd).Output()
			if err != nil || string(out) != "["+p+"]" {
				t.Errorf("sh -c %q: got %q, %v; want %q", cmd, out, err, "["+p+"]")
			}
		}
	})
}

// FuzzValidateCommand: the result does not depend on the path but
// through its quoted form: a template valid for one path is valid for
// any, holds the path as shell.Quote writes it, and never a NUL byte
// (TestValidateCommand/sh runs such commands).
func FuzzValidateCommand(f *testing.F) {
	for _, s := range []string{"visudo -cf %s", "cmp %s %s.orig", "printf '%%d' %s", `echo "%s"`, "a %", "'%s", `\%s`, "x %d %s", "%%%s%%"} {
		f.Add(s, "/etc/x/.opsmop-1.tmp")
	}
	f.Fuzz(func(t *testing.T, tmpl, tmp string) {
		if strings.IndexByte(tmp, 0) >= 0 {
			return
		}
		got, err := validateCommand(tmpl, tmp)
		_, err2 := validateCommand(tmpl, "/p")
		if (err == nil) != (err2 == nil) {
			t.Fatalf("validateCommand(%q): %v with path %q, %v with /p", tmpl, err, tmp, err2)
		}
		if err != nil {
			return
		}
		if !strings.Contains(got, shell.Quote(tmp)) {
			t.Fatalf("validateCommand(%q, %q) = %q: the quoted path is missing", tmpl, tmp, got)
		}
		if strings.IndexByte(got, 0) >= 0 {
			t.Fatalf("validateCommand(%q, %q) = %q: a NUL byte", tmpl, tmp, got)
		}
	})
}

func TestValidateRules(t *testing.T) {
	content := "x\n"
	tests := []struct {
		name string
		spec Validator
		want string // "" for valid; else part of the message for key validate
	}{
		{"file ok", &FileSpec{Path: "/etc/sudoers.d/app", Content: &content, ValidateCmd: "visudo -cf %s"}, ""},
		{"template ok", &TemplateSpec{Path: "/etc/x", Src: "x.tmpl", ValidateCmd: "nginx -t -c %s"}, ""},
		{"templated value", &FileSpec{Path: "/etc/x", Content: &content, ValidateCmd: "{{ checker }}"}, ""},
		{"absent", &FileSpec{Path: "/etc/x", State: "absent", ValidateCmd: "visudo -cf %s"}, `state = "absent" writes none`},
		{"attributes only", &FileSpec{Path: "/etc/x", Mode: "0440", ValidateCmd: "visudo -cf %s"}, "give content, src or template"},
		{"no placeholder", &FileSpec{Path: "/etc/x", Content: &content, ValidateCmd: "visudo -c"}, "has no %s"},
		{"template quoted", &TemplateSpec{Path: "/etc/x", Src: "x.tmpl", ValidateCmd: "visudo -cf '%s'"}, "inside single quotes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("got %v; want valid", err)
				}
				return
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %v; want a *SpecError", err)
			}
			for _, p := range se.Problems {
				if p.Key == "validate" && strings.Contains(p.Msg, tt.want) {
					return
				}
			}
			t.Fatalf("got %v; want a problem at key validate containing %q", err, tt.want)
		})
	}
}

// validatedHost is a host to run the validate cases on, and how.
type validatedHost struct {
	name string
	h    Host
	// root runs a script as root on the host, for set-up and assertions.
	root func(t *testing.T, script string) string
}

// TestWriteValidateLab runs file and template with validate over the real SSH
// connection as ops under sudo, on a host with SFTP and one without (the
// upload goes through the persistent shell), and on Local: a sudoers
// file checked with visudo -cf %s converges, bad contents are refused
// with visudo's message, the old file intact and no temp file left, drift
// is repaired; the path with every special character reaches the command
// as one word; the command runs as the become user; a command with a
// syntax error is a refusal and the shell goes on.
func TestWriteValidateLab(t *testing.T) {
	if _, err := exec.LookPath("visudo"); err != nil {
		t.Fatalf("visudo: %v (install sudo)", err)
	}
	l := labtest.Start(t, lab.Config{Subnet: validateSubnet, Hosts: []lab.HostSpec{{Name: "sftp"}, noSFTPSpec("nosftp")}})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	k := newLabKit(t, ctx, l)
	// nosftp: uploads go through the shell.
	k.root("nosftp")(t, removeSFTPServers)
	local := t.TempDir()
	cases := []validatedHost{
		{"sftp", k.connect(t, "sftp", "ops", "root"), k.root("sftp")},
		{"shell", k.connect(t, "nosftp", "ops", "root"), k.root("nosftp")},
		{"local", &connection.Local{CommandTimeout: 30 * time.Second}, localRoot(ctx)},
		{"local-sudo", &connection.Local{Sudo: true, SudoUser: "root", CommandTimeout: 30 * time.Second}, localRoot(ctx)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base := "/srv/validate"
			if strings.HasPrefix(c.name, "local") {
				base = filepath.Join(local, c.name)
			}
			testValidateSudoers(t, ctx, c, base)
			testValidateHostile(t, ctx, c, base)
			testValidateTemplate(t, ctx, c, base)
			testValidateSyntax(t, ctx, c, base)
			testValidateCost(t, ctx, c, base)
		})
	}
	t.Run("become", func(t *testing.T) {
		// Under sudo the command runs as the become user: app here.
		for _, name := range []string{"sftp", "nosftp"} {
			t.Run(name, func(t *testing.T) {
				root := k.root(name)
				root(t, "mkdir -p /srv/app && chown app: /srv/app")
				h := k.connect(t, name, "ops", "app")
				good := "ok\n"
				spec := &FileSpec{Path: "/srv/app/conf", Content: &good, ValidateCmd: `test "$(id -un)" = app && test -O %s && grep -qx ok %s`}
				converge(t, h, mustProvider("file"), newReq(spec, "", nil, nil), root2snap(t, root, "/srv/app"), Create)
				bad := "not ok\n"
				spec = &FileSpec{Path: "/srv/app/conf", Content: &bad, ValidateCmd: `echo "checked by $(id -un)" >&2; echo out; exit 3 # %s`}
				err := applyOnce(t, ctx, h, mustProvider("file"), newReq(spec, "", nil, nil))
				var ve *connection.ValidateError
				if !errors.As(err, &ve) {
					t.Fatalf("apply: got %v; want a *connection.ValidateError", err)
				}
				if ve.ExitCode != 3 || ve.Stderr != "checked by app" || ve.Stdout != "out" || ve.Host != name || ve.Path != "/srv/app/conf" {
					t.Errorf("got %+v; want exit status 3, stderr %q, stdout %q, host %s", *ve, "checked by app", "out", name)
				}
				if got := root(t, "cat /srv/app/conf; ls -A /srv/app"); got != "ok\nconf\n" {
					t.Errorf("after the refusal: got %q; want the old contents and no temp file", got)
				}
			})
		}
	})
}

// root2snap lists dir (names, modes, owners, times, checksums) as root.
func root2snap(t *testing.T, root func(*testing.T, string) string, dir string) func() string {
	return func() string {
		return root(t, "cd "+shell.Quote(dir)+" && ls -lA --time-style=full-iso && for f in * .[!.]*; do [ -f \"$f\" ] && cksum \"$f\"; done; true")
	}
}

// applyOnce checks req on h and applies the change, which must be one,
// and returns apply's error.
func applyOnce(t *testing.T, ctx context.Context, h Host, p Provider, req *Request) error {
	t.Helper()
	ch, err := check(t, ctx, h, p, req)
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	if !ch.Changed() {
		t.Fatalf("check: no change; want one")
	}
	if !strings.Contains(ch.Message, "not validated yet: apply runs validate") {
		t.Errorf("check message %q does not say that apply validates", ch.Message)
	}
	_, err = p.Apply(ctx, h, req, ch)
	return err
}

// wantRefused asserts that err is a validate refusal whose output
// contains want.
func wantRefused(t *testing.T, err error, want string) *connection.ValidateError {
	t.Helper()
	var ve *connection.ValidateError
	if !errors.As(err, &ve) {
		t.Fatalf("apply: got %v; want a *connection.ValidateError", err)
	}
	if ve.ExitCode == 0 || !strings.Contains(ve.Stderr+ve.Stdout, want) {
		t.Errorf("got %+v; want a non-zero exit status and %q in the output", *ve, want)
	}
	for _, w := range []string{"validate refused the new contents", "the file is unchanged", want} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	return ve
}

// noTemp asserts that dir holds nothing but names.
func noTemp(t *testing.T, c validatedHost, dir string, names ...string) {
	t.Helper()
	got := strings.Fields(c.root(t, "ls -A "+shell.Quote(dir)))
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %q; want only %q (a temp file left?)", dir, got, names)
	}
}

func testValidateSudoers(t *testing.T, ctx context.Context, c validatedHost, base string) {
	dir := base + "/sudoers.d"
	c.root(t, "mkdir -p "+shell.Quote(dir)+" && chmod 750 "+shell.Quote(dir))
	p := dir + "/app"
	snap := root2snap(t, c.root, dir)
	good := "app ALL=(root) NOPASSWD: /usr/bin/true\n"
	spec := func(content string) *Request {
		return newReq(&FileSpec{Path: p, Content: &content, Mode: "0440", Owner: "root", ValidateCmd: "visudo -cf %s"}, "", nil, nil)
	}
	// With backup: a refused upload leaves no backup either.
	backupSpec := func(content string) *Request {
		return newReq(&FileSpec{Path: p, Content: &content, Mode: "0440", Owner: "root", ValidateCmd: "visudo -cf %s", Backup: true}, "", nil, nil)
	}
	ch := converge(t, c.h, mustProvider("file"), spec(good), snap, Create)
	if !strings.Contains(ch.Message, "not validated yet: apply runs validate (visudo -cf %s)") {
		t.Errorf("check message %q does not say that apply validates", ch.Message)
	}
	if got := c.root(t, "visudo -cf "+shell.Quote(p)+" >/dev/null && stat -c %a "+shell.Quote(p)+" && cat "+shell.Quote(p)); got != "440\n"+good {
		t.Errorf("after apply: got %q; want mode 440 and the contents", got)
	}

	// Bad contents: refused, the old file intact, no temp file and no
	// backup; the check still wants the change (the host does not have
	// it).
	bad := "app ALL=(root) NOPASSWD /usr/bin/true (\n"
	before := snap()
	start := time.Now()
	err := applyOnce(t, ctx, c.h, mustProvider("file"), backupSpec(bad))
	t.Logf("%s: refused upload took %v: %v", c.name, time.Since(start), err)
	ve := wantRefused(t, err, "syntax error")
	if !strings.Contains(ve.Command, "visudo -cf ") || !strings.Contains(ve.Command, "/.") {
		t.Errorf("command %q: want visudo -cf on the temp file", ve.Command)
	}
	if after := snap(); after != before {
		t.Errorf("a refused upload changed %s:\nbefore:\n%s\nafter:\n%s", dir, before, after)
	}
	noTemp(t, c, dir, "app")

	// Sensitive: visudo quotes the offending line, which is not shown.
	err = applyOnce(t, ctx, c.h, mustProvider("file"), newReq(&FileSpec{Path: p, Content: &bad, ValidateCmd: "visudo -cf %s", Sensitive: true}, "", nil, nil))
	if !errors.As(err, &ve) || !ve.Hidden || ve.Stderr != "" || ve.Stdout != "" {
		t.Fatalf("sensitive: got %v; want a *connection.ValidateError with the output hidden", err)
	}
	for _, w := range []string{"its output is not shown: the contents are sensitive", "the file is unchanged", "upload " + p} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("sensitive: error %q does not contain %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "NOPASSWD /usr/bin/true (") {
		t.Errorf("sensitive: error %q shows the contents", err)
	}
	noTemp(t, c, dir, "app")
	if ch, err := check(t, ctx, c.h, mustProvider("file"), spec(bad)); err != nil || ch.Action != Update {
		t.Errorf("check after the refusal: got %v, %v; want update", ch, err)
	}
	if ch, err := check(t, ctx, c.h, mustProvider("file"), spec(good)); err != nil || ch.Changed() {
		t.Errorf("check of the good contents after the refusal: got %v, %v; want no change", ch, err)
	}

	// Drift (an edit by hand that is valid): found and repaired, validated.
	c.root(t, "echo 'app ALL=(root) NOPASSWD: /usr/bin/false' >>"+shell.Quote(p))
	converge(t, c.h, mustProvider("file"), spec(good), snap, Update)
	if got := c.root(t, "cat "+shell.Quote(p)); got != good {
		t.Errorf("after repair: got %q; want %q", got, good)
	}
	noTemp(t, c, dir, "app")
}

func testValidateHostile(t *testing.T, ctx context.Context, c validatedHost, base string) {
	dir := base + hostilePath
	c.root(t, "mkdir -p "+shell.Quote(dir))
	p := dir + "/conf"
	snap := root2snap(t, c.root, dir)
	vcmd := "test -f %s && grep -qx hello %s && case %s in *'/.'*) ;; *) exit 9;; esac"
	good := "hello\n"
	converge(t, c.h, mustProvider("file"), newReq(&FileSpec{Path: p, Content: &good, ValidateCmd: vcmd}, "", nil, nil), snap, Create)
	bad := "goodbye\n"
	err := applyOnce(t, ctx, c.h, mustProvider("file"), newReq(&FileSpec{Path: p, Content: &bad, ValidateCmd: vcmd + " || { printf 'no hello in %%s\\n' %s >&2; exit 1; }"}, "", nil, nil))
	ve := wantRefused(t, err, "no hello in "+dir+"/.")
	if ve.ExitCode != 1 {
		t.Errorf("exit status: got %d; want 1", ve.ExitCode)
	}
	if got := c.root(t, "cat "+shell.Quote(p)); got != good {
		t.Errorf("after the refusal: got %q; want %q", got, good)
	}
	noTemp(t, c, dir, "conf")
	if got := c.root(t, "ls /srv/pwned /srv/pwned2 2>&1 || true"); strings.Count(got, "No such file") != 2 {
		t.Errorf("the path was run as a command: %s", got)
	}
}

func testValidateTemplate(t *testing.T, ctx context.Context, c validatedHost, base string) {
	dir := base + "/tmpl"
	c.root(t, "mkdir -p "+shell.Quote(dir))
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "sudoers.tmpl"), []byte("{{.user}} ALL=(root) NOPASSWD: /usr/bin/true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := dir + "/app"
	snap := root2snap(t, c.root, dir)
	req := func(user string) *Request {
		return newReq(&TemplateSpec{Path: p, Src: "sudoers.tmpl", Mode: "0440", ValidateCmd: "visudo -cf %s"}, src, map[string]any{"user": user}, nil)
	}
	converge(t, c.h, mustProvider("template"), req("app"), snap, Create)
	err := applyOnce(t, ctx, c.h, mustProvider("template"), req("bad user ("))
	wantRefused(t, err, "syntax error")
	if got := c.root(t, "cat "+shell.Quote(p)); got != "app ALL=(root) NOPASSWD: /usr/bin/true\n" {
		t.Errorf("after the refusal: got %q", got)
	}
	noTemp(t, c, dir, "app")
	converge(t, c.h, mustProvider("template"), req("ops"), snap, Update)
}

func testValidateSyntax(t *testing.T, ctx context.Context, c validatedHost, base string) {
	// A command sh cannot parse is a refusal (sh's exit status 2 and its
	// message), and the connection's shell goes on.
	dir := base + "/syntax"
	c.root(t, "mkdir -p "+shell.Quote(dir))
	content := "x\n"
	err := applyOnce(t, ctx, c.h, mustProvider("file"), newReq(&FileSpec{Path: dir + "/f", Content: &content, ValidateCmd: "test -s %s; ( exit"}, "", nil, nil))
	ve := wantRefused(t, err, "")
	if ve.ExitCode != 2 || ve.Stderr == "" {
		t.Errorf("got %+v; want exit status 2 and sh's message", *ve)
	}
	noTemp(t, c, dir)
	res, err := c.h.Run(ctx, "echo still here", nil)
	if err != nil || string(res.Stdout) != "still here\n" {
		t.Errorf("after the refusal: got %q, %v; want the shell to run commands", res.Stdout, err)
	}
	// exit in the command ends only its subshell.
	err = applyOnce(t, ctx, c.h, mustProvider("file"), newReq(&FileSpec{Path: dir + "/f", Content: &content, ValidateCmd: "test -s %s && exit 0"}, "", nil, nil))
	if err != nil {
		t.Fatalf("apply with exit 0 in validate: %v", err)
	}
	if got := c.root(t, "cat "+shell.Quote(path.Join(dir, "f"))); got != content {
		t.Errorf("got %q; want %q", got, content)
	}
}

// testValidateCost logs what validate adds to an apply that replaces a
// file (the median of 7): over SSH one round trip for the command (two
// through the shell, whose rename is then a command of its own).
func testValidateCost(t *testing.T, ctx context.Context, c validatedHost, base string) {
	dir := base + "/cost"
	c.root(t, "mkdir -p "+shell.Quote(dir))
	median := func(vcmd string) time.Duration {
		var d []time.Duration
		for i := range 7 {
			content := strings.Repeat("x", i+1)
			req := newReq(&FileSpec{Path: dir + "/f", Content: &content, ValidateCmd: vcmd}, "", nil, nil)
			ch, err := check(t, ctx, c.h, mustProvider("file"), req)
			if err != nil || !ch.Changed() {
				t.Fatalf("check: got %v, %v; want a change", ch, err)
			}
			start := time.Now()
			if _, err := mustProvider("file").Apply(ctx, c.h, req, ch); err != nil {
				t.Fatalf("apply: %v", err)
			}
			d = append(d, time.Since(start))
		}
		slices.Sort(d)
		return d[len(d)/2]
	}
	without, with := median(""), median("test -s %s")
	t.Logf("%s: apply of a replaced file: %v without validate, %v with validate = \"test -s %%s\"", c.name, without.Round(10*time.Microsecond), with.Round(10*time.Microsecond))
}
