package providers

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
)

// validateCase is one spec and the problems its Validate must report:
// each "key: part of the message", in order; none for a valid spec.
type validateCase struct {
	name string
	spec Validator
	want []string
}

func testValidate(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			var got []string
			if err != nil {
				var se *SpecError
				if !errors.As(err, &se) {
					t.Fatalf("got %T %v; want a *SpecError", err, err)
				}
				for _, p := range se.Problems {
					got = append(got, p.Key+": "+p.Msg)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got problems %q; want %d: %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				key, part, _ := strings.Cut(w, ": ")
				if !strings.HasPrefix(got[i], key+": ") || !strings.Contains(got[i], part) {
					t.Errorf("problem %d: got %q; want key %q and a message containing %q", i, got[i], key, part)
				}
			}
		})
	}
}

func TestFileValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"content", &FileSpec{Path: "/etc/motd", Content: ptr("hi\n"), Mode: "0644", Owner: "root", Group: "0", State: "present"}, nil},
		{"attributes only", &FileSpec{Path: "/etc/motd", Mode: "600"}, nil},
		{"src", &FileSpec{Path: "/etc/motd", Src: "files/motd"}, nil},
		{"absent", &FileSpec{Path: "/etc/motd", State: "absent", Backup: true}, nil},
		{"content and src", &FileSpec{Path: "/etc/motd", Content: ptr("x"), Src: "a"}, []string{"src: give only one of content, src and template, not both content and src"}},
		{"empty content and template", &FileSpec{Path: "/etc/motd", Content: ptr(""), Template: "t"}, []string{"template: give only one of content, src and template"}},
		{"src and template", &FileSpec{Path: "/etc/motd", Src: "a", Template: "t"}, []string{"template: not both src and template"}},
		{"absent with src", &FileSpec{Path: "/etc/motd", Src: "a", State: "absent"}, []string{`state: state = "absent" takes no content, src or template: remove src`}},
		{"mode 999", &FileSpec{Path: "/etc/motd", Content: ptr("x"), Mode: "999"}, []string{`mode: mode "999": want an octal mode`}},
		{"mode too large", &FileSpec{Path: "/etc/motd", Mode: "17777"}, []string{`mode: mode "17777"`}},
		{"bad state", &FileSpec{Path: "/etc/motd", State: "gone"}, []string{`state: state "gone": want one of present, absent`}},
		{"relative path", &FileSpec{Path: "etc/motd"}, []string{`path: path "etc/motd" is not absolute`}},
		{"empty path", &FileSpec{}, []string{"path: path is empty"}},
		{"option-like owner", &FileSpec{Path: "/etc/motd", Owner: "-R"}, []string{`owner: owner "-R" is not a valid name`}},
		{"owner:group in group", &FileSpec{Path: "/etc/motd", Group: "a:b"}, []string{`group: group "a:b" is not a valid name`}},
		{"every problem", &FileSpec{Path: "x", Content: ptr("x"), Src: "a", Mode: "9"}, []string{"path: not absolute", "src: only one of", "mode: octal"}},
		// Templates are known only once rendered: their values are not
		// checked, the combination of keys is.
		{"templated values", &FileSpec{Path: "{{ .root }}/motd", Mode: "{{ .mode }}", Owner: "{{ .u }}", State: "{{ .st }}", Content: ptr("x")}, nil},
		{"templated sources", &FileSpec{Path: "/etc/motd", Src: "{{ .a }}", Template: "{{ .b }}"}, []string{"template: only one of"}},
	})
}

func TestTemplateValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &TemplateSpec{Src: "t/app.tmpl", Path: "/etc/app.conf", Mode: "0640", Owner: "root", Group: "app"}, nil},
		{"empty src", &TemplateSpec{Path: "/etc/app.conf"}, []string{"src: src is empty: give the local template"}},
		{"mode 999", &TemplateSpec{Src: "t", Path: "/etc/app.conf", Mode: "999"}, []string{`mode: mode "999"`}},
		{"relative path", &TemplateSpec{Src: "t", Path: "app.conf"}, []string{"path: not absolute"}},
		{"bad owner", &TemplateSpec{Src: "t", Path: "/a", Owner: "a b"}, []string{"owner: is not a valid name"}},
		{"templated", &TemplateSpec{Src: "{{ .t }}", Path: "{{ .p }}", Mode: "{{ .m }}"}, nil},
	})
}

func TestDirectoryValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &DirectorySpec{Path: "/srv/app", Mode: "0755", Owner: "1000", Group: "www-data", Recurse: true}, nil},
		{"root present", &DirectorySpec{Path: "/"}, nil},
		{"remove root", &DirectorySpec{Path: "/", State: "absent"}, []string{"path: refusing to remove /"}},
		{"remove root unclean", &DirectorySpec{Path: "//.", State: "absent"}, []string{"path: refusing to remove /"}},
		{"relative", &DirectorySpec{Path: "srv"}, []string{"path: not absolute"}},
		{"bad mode", &DirectorySpec{Path: "/srv", Mode: "rwx"}, []string{"mode: octal"}},
		{"bad state", &DirectorySpec{Path: "/srv", State: "gone"}, []string{"state: want one of present, absent"}},
		{"bad group", &DirectorySpec{Path: "/srv", Group: "-x"}, []string{"group: not a valid name"}},
		{"templated", &DirectorySpec{Path: "{{ .root }}", State: "absent", Mode: "{{ .m }}"}, nil},
	})
}

func TestLinkValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &LinkSpec{Path: "/usr/local/bin/app", Target: "../lib/app"}, nil},
		{"absent without target", &LinkSpec{Path: "/a", State: "absent"}, nil},
		{"no target", &LinkSpec{Path: "/a"}, []string{"target: target is required when state is present"}},
		{"target with newline", &LinkSpec{Path: "/a", Target: "b\nc"}, []string{"target: contains a NUL byte or newline"}},
		{"root", &LinkSpec{Path: "/", Target: "x"}, []string{"path: path cannot be /"}},
		{"relative", &LinkSpec{Path: "a", Target: "x"}, []string{"path: not absolute"}},
		{"bad state", &LinkSpec{Path: "/a", Target: "x", State: "gone"}, []string{"state: want one of"}},
		{"templated state", &LinkSpec{Path: "/a", State: "{{ .st }}"}, nil},
		{"templated target", &LinkSpec{Path: "{{ .p }}", Target: "{{ .t }}"}, nil},
	})
}

func TestLineValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &LineSpec{Path: "/etc/hosts", Line: "127.0.1.1 web", Regexp: `^127\.0\.1\.1`, InsertAfter: "^127"}, nil},
		{"insert_after EOF", &LineSpec{Path: "/etc/hosts", Line: "x", InsertAfter: "EOF"}, nil},
		{"absent by regexp", &LineSpec{Path: "/etc/hosts", Regexp: "^x", State: "absent"}, nil},
		{"no line", &LineSpec{Path: "/etc/hosts"}, []string{"line: line is required when state is present"}},
		{"absent with nothing", &LineSpec{Path: "/etc/hosts", State: "absent"}, []string{"state: needs regexp or line"}},
		{"two lines", &LineSpec{Path: "/etc/hosts", Line: "a\nb"}, []string{"line: give one line"}},
		{"bad regexp", &LineSpec{Path: "/etc/hosts", Line: "x", Regexp: "("}, []string{`regexp: regexp "("`}},
		{"bad insert_after", &LineSpec{Path: "/etc/hosts", Line: "x", InsertAfter: "["}, []string{`insert_after: insert_after "["`}},
		{"relative", &LineSpec{Path: "hosts", Line: "x"}, []string{"path: not absolute"}},
		{"templated", &LineSpec{Path: "{{ .p }}", Line: "{{ .l }}", Regexp: "{{ .r }}("}, nil},
		{"templated state", &LineSpec{Path: "/etc/hosts", State: "{{ .st }}"}, nil},
	})
}

func TestShellValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &ShellSpec{Cmd: "make install", Env: map[string]string{"A_1": "x"}, Chdir: "/src"}, nil},
		{"blank cmd", &ShellSpec{Cmd: "  \n"}, []string{"cmd: cmd is empty"}},
		{"templated cmd", &ShellSpec{Cmd: "{{ .cmd }}"}, nil},
		{"bad env names, sorted", &ShellSpec{Cmd: "x", Env: map[string]string{"b-c": "", "1A": ""}}, []string{`env: env "1A"`, `env: env "b-c": not a valid variable name`}},
	})
}

func TestPackageValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &PackageSpec{Name: []string{"nginx", "curl"}, State: "latest", UpdateCache: true}, nil},
		{"version", &PackageSpec{Name: []string{"nginx"}, Version: "1.2"}, nil},
		{"version, manager from the host", &PackageSpec{Name: []string{"nginx"}, Version: "1.2", Provider: ""}, nil},
		{"src", &PackageSpec{Name: []string{"app"}, Src: "app.deb"}, nil},
		{"no name", &PackageSpec{}, []string{"name: name is required"}},
		{"option-like name", &PackageSpec{Name: []string{"-y"}}, []string{`name: name "-y" is not a package name`}},
		{"templated name", &PackageSpec{Name: []string{"{{ .pkg }}"}}, nil},
		{"version with two names", &PackageSpec{Name: []string{"a", "b"}, Version: "1"}, []string{"version: only allowed with a single name"}},
		{"version with absent", &PackageSpec{Name: []string{"a"}, Version: "1", State: "absent"}, []string{`version: version makes no sense with state = "absent"`}},
		{"version with apk", &PackageSpec{Name: []string{"a"}, Version: "1", Provider: "apk"}, []string{"version: version is not supported with apk"}},
		{"src with two names", &PackageSpec{Name: []string{"a", "b"}, Src: "a.deb"}, []string{"src: give the one name"}},
		{"src with latest", &PackageSpec{Name: []string{"a"}, Src: "a.deb", State: "latest"}, []string{"src: src installs a package file"}},
		{"bad state", &PackageSpec{Name: []string{"a"}, State: "installed"}, []string{"state: want one of present, latest, absent"}},
		{"bad provider", &PackageSpec{Name: []string{"a"}, Provider: "zypper"}, []string{`provider: provider "zypper"`}},
	})
}

func TestServiceValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &ServiceSpec{Service: "nginx", State: "started", Enabled: ptr(true), Provider: "systemd"}, nil},
		{"enabled only", &ServiceSpec{Service: "nginx", Enabled: ptr(false)}, nil},
		{"option-like", &ServiceSpec{Service: "--status-all"}, []string{`service: service "--status-all" is not a service name`}},
		{"path", &ServiceSpec{Service: "a/b"}, []string{"service: is not a service name"}},
		{"bad state", &ServiceSpec{Service: "a", State: "running"}, []string{"state: want one of started, stopped, restarted, reloaded"}},
		{"bad provider", &ServiceSpec{Service: "a", Provider: "upstart"}, []string{"provider: want one of systemd, sysv"}},
		{"templated", &ServiceSpec{Service: "{{ .svc }}", State: "{{ .st }}"}, nil},
	})
}

func TestUserValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &UserSpec{Name: "alice", UID: ptr(1000), Group: "users", Groups: []string{"sudo"}, Home: "/home/alice", Shell: "/bin/sh", Comment: "Alice", Password: "$6$salt$hash"}, nil},
		{"option-like name", &UserSpec{Name: "-rf"}, []string{`name: user "-rf" is not a valid name`}},
		{"bad state", &UserSpec{Name: "a", State: "gone"}, []string{"state: want one of present, absent"}},
		{"negative uid", &UserSpec{Name: "a", UID: ptr(-1)}, []string{"uid: uid -1 is negative"}},
		{"bad group", &UserSpec{Name: "a", Group: "a b"}, []string{`group: group "a b" is not a valid name`}},
		{"bad groups", &UserSpec{Name: "a", Groups: []string{"ok", "x,y"}}, []string{`groups: groups: group "x,y"`}},
		{"colon in comment, newline in home", &UserSpec{Name: "a", Comment: "x:y", Home: "/h\n"}, []string{`home: home contains "\n" at byte 2`, `comment: comment contains ":" at byte 1`}},
		{"password never shown", &UserSpec{Name: "a", Password: "secret:value"}, []string{"password: password contains a colon"}},
		{"templated", &UserSpec{Name: "{{ .u }}", Comment: "{{ .c }}:", Groups: []string{"{{ .g }}"}}, nil},
	})
	err := (&UserSpec{Name: "a", Password: "secret:value"}).Validate()
	if err == nil || strings.Contains(err.Error(), "secret:value") {
		t.Errorf("got %v; want an error that does not show the password", err)
	}
}

func TestGroupValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &GroupSpec{Name: "app", GID: ptr(4100), System: true, State: "present"}, nil},
		{"option-like name", &GroupSpec{Name: "--help"}, []string{`name: group "--help" is not a valid name`}},
		{"negative gid", &GroupSpec{Name: "a", GID: ptr(-5)}, []string{"gid: gid -5 is negative"}},
		{"bad state", &GroupSpec{Name: "a", State: "gone"}, []string{"state: want one of present, absent"}},
		{"templated", &GroupSpec{Name: "{{ .g }}"}, nil},
	})
}

func TestEchoValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"message", &EchoSpec{Msg: "hello"}, nil},
		{"empty message", &EchoSpec{}, nil},
	})
}

func TestAssertValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &AssertSpec{That: []string{"facts.cpus > 1", "true"}, Msg: "x"}, nil},
		{"no expression", &AssertSpec{}, []string{"that: that is empty: give at least one expression"}},
		{"empty expression", &AssertSpec{That: []string{"true", " "}}, []string{"that: that contains an empty expression"}},
	})
}

// TestEveryTypeValidates: every registered type's spec is a Validator,
// and its provider's Probe refuses what Validate refuses (one place for
// each rule).
func TestEveryTypeValidates(t *testing.T) {
	invalid := map[string]any{
		"file":           &FileSpec{Path: "/a", Content: ptr("x"), Src: "b"},
		"unarchive":      &UnarchiveSpec{Src: "a.rar", Path: "/a"}, // unarchive_test.go
		"template":       &TemplateSpec{Path: "/a"},
		"directory":      &DirectorySpec{Path: "/", State: "absent"},
		"link":           &LinkSpec{Path: "/a"},
		"line":           &LineSpec{Path: "/a"},
		"shell":          &ShellSpec{Cmd: " "},
		"package":        &PackageSpec{Name: []string{"a"}, Version: "1", Provider: "apk"},
		"service":        &ServiceSpec{Service: "-x"},
		"user":           &UserSpec{Name: "a", UID: ptr(-1)},
		"group":          &GroupSpec{Name: "a", GID: ptr(-1)},
		"assert":         &AssertSpec{},
		"authorized_key": &AuthorizedKeySpec{User: "a", Key: []string{"not a key"}},
		"cron":           &CronSpec{Name: "a", Minute: "61", Job: "true"},
		"git":            &GitSpec{Repo: "/srv/r.git", Path: "relative"},
		"download":       &DownloadSpec{URL: "ftp://example.com/x", Path: "/a"},
		"tree":           &TreeSpec{Src: "files", Path: "relative"},
	}
	for name, rt := range Registry() {
		t.Run(name, func(t *testing.T) {
			v, ok := rt.New().(Validator)
			if !ok {
				t.Fatalf("%T is not a Validator", rt.New())
			}
			_ = v.Validate() // a zero spec must not panic
			spec, ok := invalid[name]
			if !ok {
				if name != "echo" {
					t.Fatalf("no invalid example for %s", name)
				}
				return
			}
			want := spec.(Validator).Validate()
			if want == nil {
				t.Fatalf("Validate accepted the invalid example %+v", spec)
			}
			_, err := mustProvider(name).Probe(newReq(spec, "", nil, nil))
			if err == nil || !strings.Contains(err.Error(), want.Error()) {
				t.Errorf("probe: got %v; want an error containing %q", err, want)
			}
		})
	}
}

func TestLocalFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec any
		want []LocalFile
	}{
		{"file src", &FileSpec{Path: "/a", Src: "files/a"}, []LocalFile{{Key: "src", Path: "files/a"}}},
		{"file template", &FileSpec{Path: "/a", Template: "t/a.tmpl"}, []LocalFile{{Key: "template", Path: "t/a.tmpl", Template: true}}},
		{"both, in key order", &FileSpec{Path: "/a", Src: "s", Template: "t"}, []LocalFile{{Key: "src", Path: "s"}, {Key: "template", Path: "t", Template: true}}},
		{"template src", &TemplateSpec{Path: "/a", Src: "t/a.tmpl"}, []LocalFile{{Key: "src", Path: "t/a.tmpl", Template: true}}},
		{"package src", &PackageSpec{Name: []string{"a"}, Src: "a.deb"}, []LocalFile{{Key: "src", Path: "a.deb"}}},
		{"templated left out", &FileSpec{Path: "/a", Src: "{{ .f }}"}, nil},
		{"none", &FileSpec{Path: "/a", Content: ptr("x")}, nil},
		{"other type", &LinkSpec{Path: "/a", Target: "b"}, nil},
		{"not a struct", "x", nil},
		{"nil", (*FileSpec)(nil), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := LocalFiles(tc.spec); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

func TestLocalFileCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "ok.txt"), "x", 0o644)
	if err := os.Symlink("ok.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		f    LocalFile
		want string // "" = fine
	}{
		{"regular", LocalFile{Key: "src", Path: "ok.txt"}, ""},
		{"symlink to a file", LocalFile{Key: "src", Path: "link.txt"}, ""},
		{"missing", LocalFile{Key: "src", Path: "nope.txt"}, `local file "nope.txt" does not exist (looked for ` + filepath.Join(dir, "nope.txt") + `): create it, or correct src`},
		{"missing template", LocalFile{Key: "template", Path: "nope.tmpl", Template: true}, `template "nope.tmpl" does not exist`},
		{"directory", LocalFile{Key: "src", Path: "sub"}, `local file "sub" is a directory`},
		{"fifo", LocalFile{Key: "src", Path: "fifo"}, `local file "fifo" is not a regular file`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.f.Check(filepath.Join(dir, tc.f.Path))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want no error", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
