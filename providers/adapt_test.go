package providers

import (
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
)

// TestAdaptedProbers: the registered providers are InlineProbers and
// PathProbers exactly when their typed providers are (the path types), as
// the engine's Batch sees them.
func TestAdaptedProbers(t *testing.T) {
	pathTypes := map[string]bool{"file": true, "template": true, "directory": true, "link": true, "line": true}
	seTypes := map[string]bool{"file": true, "template": true, "directory": true} // the se* keys' probe adds its variables
	for _, td := range types() {
		t.Run(td.decl.Name, func(t *testing.T) {
			want := pathTypes[td.decl.Name]
			ip, inline := td.provider.(InlineProber)
			if inline != want {
				t.Errorf("InlineProber: got %v; want %v", inline, want)
			}
			wantVars := pathProbeVars()
			if seTypes[td.decl.Name] {
				wantVars = append(wantVars, seProbeVars()...)
			}
			if inline && strings.Join(ip.ProbeVars(), " ") != strings.Join(wantVars, " ") {
				t.Errorf("ProbeVars: got %q; want %q", ip.ProbeVars(), wantVars)
			}
			if _, path := td.provider.(PathProber); path != want {
				t.Errorf("PathProber: got %v; want %v", path, want)
			}
		})
	}
}

// TestAdaptedProbePath: ProbePath reads the request's spec, and a request
// with another type's spec has no path.
func TestAdaptedProbePath(t *testing.T) {
	for _, tc := range []struct {
		typ  string
		spec any
		want ProbedPath
		ok   bool
	}{
		{"file", &FileSpec{Path: "/a", Content: ptr("x")}, ProbedPath{Path: "/a", Hash: true}, true},
		{"file", &FileSpec{Path: "/a", Mode: "0600"}, ProbedPath{Path: "/a"}, true},
		{"file", &FileSpec{Path: "/a", State: "absent"}, ProbedPath{Path: "/a"}, true},
		{"template", &TemplateSpec{Path: "/t", Src: "t.tmpl"}, ProbedPath{Path: "/t", Hash: true}, true},
		{"directory", &DirectorySpec{Path: "/d"}, ProbedPath{Path: "/d"}, true},
		{"link", &LinkSpec{Path: "/l", Target: "/x"}, ProbedPath{Path: "/l"}, true},
		{"line", &LineSpec{Path: "/f", Line: "x"}, ProbedPath{Path: "/f"}, true},
		{"file", &LinkSpec{Path: "/l"}, ProbedPath{}, false},
		{"line", nil, ProbedPath{}, false},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			var req *Request
			if tc.spec != nil {
				req = newReq(tc.spec, "", nil, nil)
			}
			got, ok := mustProvider(tc.typ).(PathProber).ProbePath(req)
			if got != tc.want || ok != tc.ok {
				t.Errorf("got %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// TestAdaptedBatch: through the registered providers, a Batch runs path
// probes inline behind one prelude and a shell's probe in a subshell.
func TestAdaptedBatch(t *testing.T) {
	var b Batch
	for _, a := range []struct {
		typ  string
		spec any
	}{
		{"file", &FileSpec{Path: "/a", Content: ptr("x")}},
		{"shell", &ShellSpec{Cmd: "true", Creates: "/c"}},
		{"directory", &DirectorySpec{Path: "/d"}},
	} {
		req := newReq(a.spec, "", nil, nil)
		p := mustProvider(a.typ)
		script, err := p.Probe(req)
		if err != nil {
			t.Fatalf("%s probe: %v", a.typ, err)
		}
		b.Add(p, req, script)
	}
	var got []bool
	for _, p := range b.Probes() {
		got = append(got, p.Inline)
	}
	// prelude, file, shell, directory, unset
	want := []bool{true, true, false, true, true}
	if len(got) != len(want) {
		t.Fatalf("got %d probes %v; want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("probe %d inline: got %v; want %v", i, got[i], want[i])
		}
	}
}

// TestAdaptedErrors pins how errors name an instance, per type and call:
// the caller's misuse (another type's spec, a foreign change) and a false
// assertion read as they are; other errors carry the type's label.
func TestAdaptedErrors(t *testing.T) {
	fail := connection.Result{ExitCode: 1, Stderr: []byte("boom\n")}
	type call func(p Provider) error
	probe := func(spec any) call {
		return func(p Provider) error { _, err := p.Probe(newReq(spec, "", nil, nil)); return err }
	}
	check := func(spec any, res connection.Result) call {
		return func(p Provider) error { _, err := p.Check(newReq(spec, "", nil, nil), res); return err }
	}
	apply := func(spec any, h Host, ch *Change) call {
		return func(p Provider) error { _, err := p.Apply(testCtx(t), h, newReq(spec, "", nil, nil), ch); return err }
	}
	evals := map[string]func(map[string]any) any{"x": func(map[string]any) any { return false }}
	for _, tc := range []struct {
		name string
		typ  string
		call call
		want string
	}{
		{"file probe names only the type", "file", probe(&FileSpec{Path: "/a\x00b", Content: ptr("x")}), `file: path "/a\x00b" contains a NUL byte`},
		{"file check", "file", check(&FileSpec{Path: "/a", Content: ptr("x")}, fail), "file /a: probe failed with exit status 1: boom"},
		{"file apply", "file", apply(&FileSpec{Path: "/a", State: "absent"}, (&fakeHost{}).on("rm -f", "", 1), &Change{Action: Delete, Plan: filePlan{Path: "/a", Remove: true}}), "file /a: remove failed with exit status 1"},
		{"file apply without a change", "file", apply(&FileSpec{Path: "/a"}, &fakeHost{}, nil), "file: apply called without a change"},
		{"template probe", "template", probe(&TemplateSpec{Path: "rel", Src: "t"}), `template rel: path "rel" is not absolute: remote paths must start with /`},
		{"template apply of a foreign change", "template", apply(&TemplateSpec{Path: "/a", Src: "t"}, &fakeHost{}, &Change{Action: Create, Plan: linkPlan{}}), "template: apply given a change with plan providers.linkPlan, not from this provider's check"},
		{"directory probe", "directory", probe(&DirectorySpec{Path: "--help"}), `directory --help: path "--help" is not absolute: remote paths must start with /`},
		{"directory apply names itself", "directory", apply(&DirectorySpec{Path: "/d"}, (&fakeHost{}).on("mkdir", "", 1), &Change{Action: Create, Plan: directoryPlan{Path: "/d", Mkdir: true}}), "directory /d failed with exit status 1"},
		{"link probe names only the type", "link", probe(&LinkSpec{Path: "/l"}), "link: target is required when state is present: give what the link points to"},
		{"link check", "link", check(&LinkSpec{Path: "/l"}, connection.Result{}), "link /l: target is required when state is present: give what the link points to"},
		{"line probe names only the type", "line", probe(&LineSpec{Path: "/f"}), "line: line is required when state is present"},
		{"line check", "line", check(&LineSpec{Path: "/f", Line: "x"}, connection.Result{Stdout: []byte("type=absent\n")}), "line in /f: the file does not exist: create it first, or set create = true"},
		{"shell check", "shell", check(&ShellSpec{Cmd: "true", Unless: "false"}, connection.Result{Stdout: []byte("unless=x\n")}), `shell true: malformed probe output: unless="x"`},
		{"package probe", "package", probe(&PackageSpec{Name: []string{"a", "b"}, Version: "1"}), "package a,b: version is only allowed with a single name"},
		{"service probe", "service", probe(&ServiceSpec{Service: "--status-all"}), `service --status-all: service "--status-all" is not a service name`},
		{"user probe", "user", probe(&UserSpec{Name: "-rf"}), `user -rf: user "-rf" is not a valid name`},
		{"user apply names itself", "user", apply(&UserSpec{Name: "u"}, (&fakeHost{}).on("userdel", "", 1), &Change{Action: Delete, Plan: userPlan{Name: "u", Delete: true}}), "user u: userdel failed with exit status 1"},
		{"group probe names only the type", "group", probe(&GroupSpec{Name: "--help"}), `group: group "--help" is not a valid name`},
		{"group check", "group", check(&GroupSpec{Name: "g"}, fail), "group g: probe failed with exit status 1: boom"},
		{"group check of another type's spec", "group", check(&FileSpec{Path: "/a"}, connection.Result{}), "group: spec is *providers.FileSpec, want *providers.GroupSpec"},
		{"assert probe", "assert", probe(&AssertSpec{}), "assert: that is empty: give at least one expression"},
		{"assert check: the verdict as it is", "assert", func(p Provider) error {
			_, err := p.Check(newReq(&AssertSpec{That: []string{"x"}}, "", nil, evals), connection.Result{})
			return err
		}, "assertion failed: x"},
		{"assert check: an evaluation error", "assert", check(&AssertSpec{That: []string{"y"}}, connection.Result{}), `assert: that "y": test evaluator: unknown expression "y"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call(mustProvider(tc.typ))
			if err == nil || err.Error() != tc.want {
				t.Fatalf("got %v; want %q", err, tc.want)
			}
		})
	}
}

// TestAdaptedShellOutcome: an Apply error comes with the Outcome the
// typed provider returned along with it (register sees a failed shell's
// result).
func TestAdaptedShellOutcome(t *testing.T) {
	f := (&fakeHost{}).on("exit 3", "out\n", 3)
	req := newReq(&ShellSpec{Cmd: "exit 3"}, "", nil, nil)
	ch, err := mustProvider("shell").Check(req, connection.Result{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := mustProvider("shell").Apply(testCtx(t), f, req, ch)
	if err == nil || err.Error() != "shell exit 3: command failed with exit status 3" {
		t.Errorf("got %v; want %q", err, "shell exit 3: command failed with exit status 3")
	}
	if out == nil || out.Result == nil || out.Result.ExitCode != 3 || string(out.Result.Stdout) != "out\n" {
		t.Errorf("got outcome %+v; want the result (exit status 3, stdout %q)", out, "out\n")
	}
}
