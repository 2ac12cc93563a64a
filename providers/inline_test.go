package providers

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

// TestInlineProbes checks the inline contract (connection.Probe) of every
// provider that claims it with ProbeVars, in a real sh: for each of its
// specs and each state of the path, the probe sourced by the shell itself
// (as the persistent shell runs it) leaves the shell alive, with the same
// variables once ProbeVars are unset, the same options, umask, directory
// and traps, and prints what the same probe prints in its own sh.
func TestInlineProbes(t *testing.T) {
	// The persistent shell is the host's sh: dash here, bash (in POSIX
	// mode) on other systems; each present one is tried.
	var shells [][]string
	if sh, err := exec.LookPath("sh"); err == nil {
		shells = append(shells, []string{sh})
	}
	if bash, err := exec.LookPath("bash"); err == nil {
		shells = append(shells, []string{bash, "--posix"})
	}
	if len(shells) == 0 {
		t.Fatal("no sh on PATH: the probes under test are sh scripts")
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "src.txt"), []byte("from src\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "t.tmpl"), []byte("rendered {{ .x }}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	content := "wanted\n"
	specs := map[string][]func(p string) any{
		"file": {
			func(p string) any { return &FileSpec{Path: p, Content: &content} },
			func(p string) any { return &FileSpec{Path: p, Content: &content, Sensitive: true} },
			func(p string) any { return &FileSpec{Path: p, Src: "src.txt", Mode: "0600"} },
			func(p string) any { return &FileSpec{Path: p, Mode: "0600", Owner: "0"} },
			func(p string) any { return &FileSpec{Path: p, State: "absent"} },
		},
		"template":  {func(p string) any { return &TemplateSpec{Path: p, Src: "t.tmpl"} }},
		"directory": {func(p string) any { return &DirectorySpec{Path: p} }, func(p string) any { return &DirectorySpec{Path: p, Mode: "0700", Owner: "0", Recurse: true} }},
		"link":      {func(p string) any { return &LinkSpec{Path: p, Target: "/tmp"} }},
		"line":      {func(p string) any { return &LineSpec{Path: p, Line: "wanted"} }, func(p string) any { return &LineSpec{Path: p, Regexp: "^w", State: "absent"} }},
	}
	// States of the path; the name holds a quote, a space and a newline.
	states := map[string]func(t *testing.T, p string){
		"absent": func(t *testing.T, p string) {},
		"text":   func(t *testing.T, p string) { testutil.WriteFile(t, p, "old\nwanted\n") },
		"same":   func(t *testing.T, p string) { testutil.WriteFile(t, p, content) },
		"binary": func(t *testing.T, p string) { testutil.WriteFile(t, p, "a\x00b") },
		"directory": func(t *testing.T, p string) {
			if err := os.MkdirAll(filepath.Join(p, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			testutil.WriteFile(t, filepath.Join(p, "sub", "f"), "x")
		},
		"symlink": func(t *testing.T, p string) {
			if err := os.Symlink("/nonexistent", p); err != nil {
				t.Fatal(err)
			}
		},
		"fifo": func(t *testing.T, p string) {
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
	var inline int
	for _, td := range types() {
		ip, ok := td.provider.(interface{ ProbeVars() []string })
		if !ok {
			continue
		}
		inline++
		mk := specs[td.decl.Name]
		if len(mk) == 0 {
			t.Errorf("%s claims inline probes (ProbeVars) but has no specs in this test: add them", td.decl.Name)
			continue
		}
		vars := ip.ProbeVars()
		for i, newSpec := range mk {
			for state, setup := range states {
				for _, shv := range shells {
					sh := func(args ...string) *exec.Cmd { return exec.Command(shv[0], append(shv[1:], args...)...) }
					t.Run(td.decl.Name+"/"+state+"/"+string(rune('a'+i))+"/"+filepath.Base(shv[0]), func(t *testing.T) {
						dir := t.TempDir()
						p := filepath.Join(dir, "it's a\nname")
						setup(t, p)
						req := newReq(newSpec(p), src, map[string]any{"x": 1}, nil)
						script, err := td.provider.Probe(req)
						if err != nil {
							t.Fatal(err)
						}
						probe := filepath.Join(dir, "probe")
						testutil.WriteFile(t, probe, script)
						alone, err := sh(probe).Output()
						if err != nil {
							t.Fatalf("probe alone: %v", err)
						}
						// With a prelude over this path and two others, as the
						// engine sends it. "used" has stat and sha256sum fail
						// when given one path, which only the probe's own
						// fallback does: the prelude must have answered. "short"
						// has them drop a line when given several paths: the
						// prelude must see the mismatch and leave the probe to
						// run its own.
						pp, ok := td.provider.(interface {
							ProbePath(*Request) (ProbedPath, bool)
						}).ProbePath(req)
						if !ok {
							t.Fatal("ProbePath: not ok")
						}
						other := filepath.Join(dir, "other")
						testutil.WriteFile(t, other, "other\n")
						pre, preVars := ProbePrelude([]ProbedPath{pp, {Path: other, Hash: true}, {Path: filepath.Join(dir, "missing"), Hash: true}})
						for _, variant := range []string{"alone", "prelude", "used", "short"} {
							t.Run(variant, func(t *testing.T) {
								preFile := filepath.Join(dir, "pre-"+variant)
								unset := vars
								switch variant {
								case "alone":
									testutil.WriteFile(t, preFile, ":\n")
								default:
									testutil.WriteFile(t, preFile, pre)
									unset = append(append([]string(nil), vars...), preVars...)
								}
								env := `{ umask; pwd; echo "$-"; trap; }`
								harness := `probe=$1 out=$2 pre=$3
set >"$out.vars0"; ` + env + ` >"$out.env0"
{ . "$pre"; } </dev/null >"$out.pre"
{ . "$probe"; } </dev/null >"$out"
echo "status $?" >"$out.status"
unset ` + strings.Join(unset, " ") + `
set >"$out.vars1"; ` + env + ` >"$out.env1"
echo alive`
								out := filepath.Join(dir, "out-"+variant)
								cmd := sh("-c", harness, "sh", probe, out, preFile)
								if variant == "used" || variant == "short" {
									cmd.Env = append(os.Environ(), "PATH="+fakeTools(t, variant)+":"+os.Getenv("PATH"))
								}
								got, err := cmd.CombinedOutput()
								if err != nil || string(got) != "alive\n" {
									t.Fatalf("the shell that sourced the probe did not survive it: %v, output %q\nprobe:\n%s", err, got, script)
								}
								for _, f := range []string{"vars", "env"} {
									before, after := readFile(t, out+"."+f+"0"), readFile(t, out+"."+f+"1")
									if variant == "used" || variant == "short" {
										// PATH differs from the parent's, the same before and after
										before, after = dropLines(before, "PATH="), dropLines(after, "PATH=")
									}
									// bash's own bookkeeping, which every command changes
									for _, v := range []string{"BASH_ARGC=", "BASH_ARGV=", "BASH_LINENO=", "BASH_SOURCE=", "LINENO=", "PIPESTATUS=", "_="} {
										before, after = dropLines(before, v), dropLines(after, v)
									}
									if before != after {
										t.Errorf("%s changed by the probe (unset afterwards: %v):\ngot\n%s\nwant\n%s", f, unset, after, before)
									}
								}
								if s := readFile(t, out+".status"); s != "status 0\n" {
									t.Errorf("got %q; want status 0", s)
								}
								if s := readFile(t, out+".pre"); s != "" {
									t.Errorf("the prelude printed %q; want nothing", s)
								}
								if inl := readFile(t, out); inl != string(alone) {
									t.Errorf("inline output %q; want what the probe prints alone, %q", inl, alone)
								}
							})
						}
					})
				}
			}
		}
	}
	if want := []string{"directory", "file", "line", "link", "template"}; inline != len(want) {
		t.Errorf("got %d providers with inline probes; want %d (%v)", inline, len(want), want)
	}
}

// fakeTools returns a directory with stat and sha256sum wrappers: "used"
// ones fail when given a single path; "short" ones, given several paths,
// print one line fewer than the real tools.
func fakeTools(t *testing.T, kind string) string {
	t.Helper()
	d := t.TempDir()
	for _, tool := range []string{"stat", "sha256sum"} {
		real, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("no %s on PATH: the probes under test call it (coreutils)", tool)
		}
		several := real + ` "$@" | sed 1d`
		one := "exec " + real + ` "$@"`
		if kind == "used" {
			several, one = "exec "+real+` "$@"`, "exit 1"
		}
		// Paths are the absolute arguments (stdin is not one: the
		// probe's own sha256sum reads the file from it).
		script := "#!/bin/sh\nn=0; for a; do case $a in /*) n=$((n+1));; esac; done\nif [ $n -gt 1 ]; then " + several + "; else " + one + "; fi\n"
		if err := os.WriteFile(filepath.Join(d, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func dropLines(s, prefix string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(l, prefix) && !strings.HasPrefix(l, "'"+prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestProbePreludeHashesSmallFilesOnly: the prelude hashes all its files
// within one command's timeout, so it leaves files over preludeMaxHash to
// their own probes.
func TestProbePreludeHashesSmallFilesOnly(t *testing.T) {
	dir := t.TempDir()
	small, large := filepath.Join(dir, "small"), filepath.Join(dir, "large")
	testutil.WriteFile(t, small, "x")
	testutil.WriteFile(t, large, strings.Repeat("y", preludeMaxHash+1))
	pre, _ := ProbePrelude([]ProbedPath{{Path: small, Hash: true}, {Path: large, Hash: true}})
	script := pre + `printf '%s|%s|%s|%s\n' "${opsmop_h_` + preludeKey(small) + `-unset}" "${opsmop_h_` + preludeKey(large) + `-unset}" "${opsmop_s_` + preludeKey(small) + `##* }" "${opsmop_s_` + preludeKey(large) + `##* }"`
	got, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%s|unset|1|%d\n", sha256Hex([]byte("x")), preludeMaxHash+1)
	if string(got) != want {
		t.Errorf("got %q; want %q", got, want)
	}
}
