package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/internal/testutil"
)

// TestLocalPathsConfined: a policy reads local files (include, template
// src, file template and src, package src) only under its own directory;
// a relative path that leaves it with ".." is refused, also when it is
// built by a template, and never read; an absolute path is taken as
// given. Literal paths are refused by validate (exit 3, nothing
// contacted), templated ones when the resource is checked.
func TestLocalPathsConfined(t *testing.T) {
	root := t.TempDir()
	const secret = "outside-the-policy-dir-5d1c"
	testutil.WriteTree(t, root, map[string]string{
		"outside.txt":         secret + "\n",
		"outside.tmpl":        secret + "\n",
		"outside-role.toml":   "name = \"outside\"\n",
		"policy/files/ok.txt": "ok\n",
	})
	target := filepath.Join(root, "target.txt")
	abs := filepath.Join(root, "outside.txt")
	cases := []struct {
		name     string
		body     string // role keys and resources
		cmd      string // validate or check
		extra    []string
		wantCode int
		want     string
	}{
		{"include with ..", "include = \"../outside-role.toml\"\n", "validate", nil, exitInvalid, `"../outside-role.toml" is outside the policy directory`},
		{"template src with ..", res("template", `src = "../outside.tmpl"`), "validate", nil, exitInvalid, `local path "../outside.tmpl" escapes the policy directory`},
		{"file template with ..", res("file", `template = "../outside.tmpl"`), "validate", nil, exitInvalid, `local path "../outside.tmpl" escapes the policy directory`},
		{"file src with ..", res("file", `src = "../outside.txt"`), "validate", nil, exitInvalid, `local path "../outside.txt" escapes the policy directory`},
		{"file src with .. inside", res("file", `src = "files/../../outside.txt"`), "validate", nil, exitInvalid, `local path "files/../../outside.txt" escapes the policy directory`},
		{"package src with ..", "[[resources]]\ntype = \"package\"\nname = \"x\"\nsrc = \"../x.deb\"\n", "validate", nil, exitInvalid, `local path "../x.deb" escapes the policy directory`},
		{"templated file src with ..", res("file", `src = "{{ .p }}"`), "check", []string{"-e", "p=../outside.txt"}, exitFailed, `local path "../outside.txt" escapes the policy directory`},
		{"templated template src with ..", res("template", `src = "{{ .p }}"`), "check", []string{"-e", "p=../outside.tmpl"}, exitFailed, `local path "../outside.tmpl" escapes the policy directory`},
		{"file src inside", res("file", `src = "files/ok.txt"`), "check", nil, exitOK, "would create"},
		{"absolute file src", res("file", `src = "`+abs+`"`), "check", nil, exitOK, "would create"},
		{"absolute include", "include = \"" + filepath.Join(root, "outside-role.toml") + "\"\n", "validate", nil, exitOK, "ok (1 roles)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			os.Remove(target)
			pol := "[[roles]]\nname = \"r\"\nhosts = \"localhost\"\n" + strings.ReplaceAll(c.body, "[[resources]]", "[[roles.resources]]")
			if strings.Contains(c.body, "include") {
				pol = "[[roles]]\nhosts = \"localhost\"\n" + c.body
			}
			pol = strings.ReplaceAll(pol, "TARGET", target)
			testutil.WriteTree(t, root, map[string]string{"policy/site.toml": pol})
			args := []string{c.cmd, filepath.Join(root, "policy", "site.toml")}
			if c.cmd == "check" {
				args = append(args, "--local")
			}
			env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(root, "no-etc-defaults"), EtcSSHConfig: filepath.Join(root, "no-etc-defaults") + ".no-ssh-config", Getenv: func(string) string { return "" }}
			code, out, errOut := opsmop(t, env, append(args, c.extra...)...)
			if code != c.wantCode || !strings.Contains(out+errOut, c.want) {
				t.Errorf("%s: exit %d; want %d and output containing %q\nstdout:\n%s\nstderr:\n%s", c.cmd, code, c.wantCode, c.want, out, errOut)
			}
			if c.wantCode != exitOK && strings.Contains(out+errOut, secret) {
				t.Errorf("the outside file's contents appear in the output of a refused run")
			}
			if _, err := os.Stat(target); err == nil {
				t.Errorf("%s changed %s", c.cmd, target)
			}
		})
	}
}

// res is one resource of type typ writing TARGET, with the given keys.
func res(typ, keys string) string {
	return "[[resources]]\ntype = \"" + typ + "\"\npath = \"TARGET\"\n" + keys + "\n"
}

// TestOversizedInputRefused gives the CLI a 100 MB inventory (sparse: the
// refusal must come from its size, before it is read): opsmop fails with
// exit 3 and an error naming the file and the limit, in well under a
// second and without reading it.
func TestOversizedInputRefused(t *testing.T) {
	dir := t.TempDir()
	huge := func(name string) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := f.Truncate(100 << 20); err != nil {
			t.Fatal(err)
		}
		return p
	}
	inv, pol := huge("huge.toml"), huge("huge-site.toml")
	env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none"), EtcSSHConfig: filepath.Join(dir, "none") + ".no-ssh-config", Getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"inventory", []string{"inventory", "-i", inv},
			"error: inventory " + inv + ": 100.0 MiB is larger than the limit of 32 MiB; split it, or generate hosts with an inventory script\n"},
		{"policy", []string{"validate", pol},
			"error: read policy: " + pol + " is larger than the limit of 16 MiB for a policy file; move data into inventory variables or split it into included files\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			code, out, errOut := opsmop(t, env, tc.args...)
			took := time.Since(start)
			if code != exitInvalid || errOut != tc.want || out != "" {
				t.Errorf("opsmop %s: exit %d, stdout %q, stderr %q; want %d and %q", strings.Join(tc.args, " "), code, out, errOut, exitInvalid, tc.want)
			}
			if took > time.Second {
				t.Errorf("took %v; want the size limit to refuse it at once", took)
			}
		})
	}
}

// hostile is a value with every character a shell, a glob or a command
// line parser treats specially (but no slash, so that it is one path
// component). Tests append non-UTF-8 bytes, newlines and NULs through
// templates ({{ "\xff" }}), which TOML cannot hold. Were the commands in
// it run, files named pwned1 and pwned2 would appear somewhere.
const hostile = "q'uo\"te $(touch pwned1) `touch pwned2` ${HOME} *?[a] \\ ;&|<> -rf --help\ttab"

// literalPolicy writes hostile into every kind of value: paths of a
// directory, a file (with a newline in its name), a link and its target,
// file contents (with NUL and non-UTF-8 bytes), a template's output, a
// line, a shell command's argument and environment, a user's comment. It
// logs in as ops and works through sudo: the values also pass through the
// sudo'd shell and the sudo'd SFTP server. (passwd fields cannot hold
// control characters, and opsmop refuses them: in a comment the tab
// becomes a space.)
const literalPolicy = `
[vars]
hostile = "q'uo\"te $(touch pwned1) ` + "`touch pwned2`" + ` ${HOME} *?[a] \\ ;&|<> -rf --help\ttab"
[[roles]]
name = "literal"
groups = "fleet"
ssh_as = { username = "ops" }
sudo = true
  [[roles.resources]]
  type = "directory"
  path = '''/srv/lit/d {{ .hostile }}{{ "\xfe" }}'''
  [[roles.resources]]
  type = "file"
  path = '''/srv/lit/d {{ .hostile }}{{ "\xfe" }}/f {{ .hostile }}{{ "\n\xff" }}'''
  content = '''{{ .hostile }}{{ "\n\xff\x00 end" }}'''
  [[roles.resources]]
  type = "link"
  path = '''/srv/lit/l {{ .hostile }}'''
  target = '''/srv/lit/d {{ .hostile }}{{ "\xfe" }}'''
  [[roles.resources]]
  type = "template"
  src = "hostile.tmpl"
  path = '''/srv/lit/t {{ .hostile }}'''
  [[roles.resources]]
  type = "line"
  path = "/srv/lit/lines"
  line = '''{{ .hostile }}{{ "\xff" }}'''
  create = true
  [[roles.resources]]
  type = "shell"
  cmd = '''printf '%s' {{ printf "%s\xff" .hostile | shquote }} > /srv/lit/cmd-out'''
  creates = "/srv/lit/cmd-out"
  [[roles.resources]]
  type = "shell"
  cmd = '''printf '%s' "$HOSTILE" > /srv/lit/env-out'''
  env = { HOSTILE = '''{{ .hostile }}{{ "\n\xff" }}''' }
  creates = "/srv/lit/env-out"
  [[roles.resources]]
  type = "user"
  name = "litusr"
  comment = '''{{ .hostile | replace "\t" " " }}{{ "\xff" }}'''
  create_home = false
`

// TestLiteralValues applies literalPolicy and reads back, byte for byte,
// what the host ended up with; nothing the values spell is executed or
// expanded, and a second check finds nothing to do.
func TestLiteralValues(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 55, Hosts: []lab.HostSpec{{Name: "lit1"}}})
	h := l.Host("lit1")
	inv := labInventory(t, l, "fleet", nil)
	env := labEnv(t, l, nil)
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": literalPolicy, "hostile.tmpl": "{{ .hostile }}\n"})
	ctx := context.Background()
	if out, err := h.Exec(ctx, "mkdir /srv/lit"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, errOut := opsmop(t, env, "apply", filepath.Join(dir, "site.toml"), "-i", inv)
	if code != exitOK {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errOut)
	}
	d := "/srv/lit/d " + hostile + "\xfe"
	read := func(script string) string {
		b, err := h.Exec(ctx, script)
		if err != nil {
			t.Errorf("%s: %v: %q", script, err, b)
		}
		return string(b)
	}
	cases := []struct {
		name, script, want string
	}{
		{"directory path", "test -d " + shell.Quote(d) + " && echo dir", "dir\n"},
		{"file path and contents (newline, NUL, non-UTF-8)", "cat -- " + shell.Quote(d+"/f "+hostile+"\n\xff"), hostile + "\n\xff\x00 end"},
		{"link path and target", "readlink -- " + shell.Quote("/srv/lit/l "+hostile), d + "\n"},
		{"template output", "cat -- " + shell.Quote("/srv/lit/t "+hostile), hostile + "\n"},
		{"line", "cat /srv/lit/lines", hostile + "\xff\n"},
		{"shell argument (shquote)", "cat /srv/lit/cmd-out", hostile + "\xff"},
		{"shell env value", "cat /srv/lit/env-out", hostile + "\n\xff"},
		{"user comment (tab made a space)", "getent passwd litusr | cut -d: -f5", strings.ReplaceAll(hostile, "\t", " ") + "\xff\n"},
		{"nothing else was created", "ls -A /srv/lit | od -An -c | tr -s ' '", ""},
		{"no command in a value ran", "find / -xdev -name 'pwned*' 2>/dev/null; find /home /root /tmp /srv /var -name 'pwned*'", ""},
	}
	// Expected directory listing, in ls's (C locale) order.
	names := []string{"d " + hostile + "\xfe", "l " + hostile, "t " + hostile, "cmd-out", "env-out", "lines"}
	listing, _ := h.ExecInput(ctx, "printf '%s\\n' "+shell.Join(names...)+" | LC_ALL=C sort | od -An -c | tr -s ' '", nil)
	cases[8].want = string(listing)
	for _, c := range cases {
		if got := read(c.script); got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, got, c.want)
		}
	}
	code, out, errOut = opsmop(t, env, "check", filepath.Join(dir, "site.toml"), "-i", inv, "--detailed-exitcode")
	if code != exitOK {
		t.Errorf("check after apply: exit %d; want 0 (nothing to do)\n%s%s", code, out, errOut)
	}

	// Names that would read as options, and NUL bytes, are refused with
	// an error naming the value; nothing runs. Written literally, validate
	// refuses them before any host is contacted (checked below); written
	// as templates, they reach the host-side checks.
	refused := `
[[roles]]
name = "refused"
groups = "fleet"
ssh_as = { username = "ops" }
sudo = true
  [[roles.resources]]
  type = "user"
  name = '{{ "-rf" }}'
  ignore_errors = true
  [[roles.resources]]
  type = "group"
  name = '{{ "--help" }}'
  ignore_errors = true
  [[roles.resources]]
  type = "package"
  name = '{{ "-y" }}'
  ignore_errors = true
  [[roles.resources]]
  type = "service"
  service = '{{ "--status-all" }}'
  state = "started"
  ignore_errors = true
  [[roles.resources]]
  type = "file"
  path = '/srv/lit/nul{{ "\x00" }}byte'
  content = "x"
  ignore_errors = true
  [[roles.resources]]
  type = "directory"
  path = '{{ "--help" }}'
  ignore_errors = true
`
	// literal.toml: the same names written as plain strings.
	literal := strings.NewReplacer(`'{{ "-rf" }}'`, `"-rf"`, `'{{ "--help" }}'`, `"--help"`, `'{{ "-y" }}'`, `"-y"`, `'{{ "--status-all" }}'`, `"--status-all"`).Replace(refused)
	testutil.WriteTree(t, dir, map[string]string{"refused.toml": refused, "literal.toml": literal})
	code, _, errOut = opsmop(t, env, "validate", filepath.Join(dir, "literal.toml"), "-i", inv)
	for _, want := range []string{`"-rf" is not a valid name`, `"--help" is not a valid name`, `"-y" is not a package name`, `"--status-all" is not a service name`, `"--help" is not absolute`} {
		if code != exitInvalid || !strings.Contains(errOut, want) {
			t.Errorf("validate literal.toml: exit %d; want %d and %q in\n%s", code, exitInvalid, want, errOut)
		}
	}
	code, out, errOut = opsmop(t, env, "apply", filepath.Join(dir, "refused.toml"), "-i", inv)
	if code != exitOK || !strings.Contains(out, "ignored=6") {
		t.Errorf("apply refused.toml: exit %d; want 0 with the 6 resources failed (ignored)\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`user[-rf]: FAILED (ignored): user -rf: user "-rf" is not a valid name`,
		`group[--help]: FAILED (ignored): group: group "--help" is not a valid name`,
		`package[-y]: FAILED (ignored): package -y: name "-y" is not a package name`,
		`service[--status-all]: FAILED (ignored): service --status-all: service "--status-all" is not a service name`,
		`FAILED (ignored): file: path "/srv/lit/nul\x00byte" contains a NUL byte`,
		`directory[--help]: FAILED (ignored): directory --help: path "--help" is not absolute: remote paths must start with /`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("apply refused.toml: output lacks %q", want)
		}
	}
	if got := read("getent passwd -- -rf; getent group -- --help; ls -A /srv/lit | grep -c nul; true"); got != "0\n" {
		t.Errorf("after the refused resources: got %q; want no user -rf, no group --help, no file", got)
	}
	if t.Failed() {
		t.Logf("output:\n%s", out)
	}
}
