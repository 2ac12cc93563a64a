package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// runStep performs ch through the provider's step form on h: ApplyStep
// must offer one, its script runs with the step's stdin, and StepDone
// turns the result into Apply's. It returns the step and StepDone's
// error.
func runStep(t *testing.T, ctx context.Context, h Host, p Provider, req *Request, ch *Change) (Step, error) {
	t.Helper()
	sp := p.(Stepper)
	st, ok, err := sp.ApplyStep(req, ch)
	if err != nil || !ok {
		t.Fatalf("ApplyStep: got ok %v, err %v; want a step", ok, err)
	}
	res, err := runStepOn(ctx, h, st)
	if err != nil {
		t.Fatalf("run the step: %v", err)
	}
	_, err = sp.StepDone(req, st, res)
	return st, err
}

// runStepOn runs st on h as the engine sends it, one step of a batch
// (RunSteps); on a test host that runs no batches (the namespace lab
// host), a step without WriteTo runs with its stdin.
func runStepOn(ctx context.Context, h Host, st Step) (connection.Result, error) {
	cst := connection.Step{Script: st.Script, Stdin: st.Stdin, Temp: st.Temp, WriteTo: st.WriteTo, WriteMode: st.WriteMode}
	switch h := h.(type) {
	case *connection.Local, *connection.SSHHost:
		rs, err := h.(interface {
			RunSteps(context.Context, []connection.Step) ([]connection.Result, error)
		}).RunSteps(ctx, []connection.Step{cst})
		if err != nil {
			return connection.Result{}, err
		}
		return rs[0], nil
	default:
		// Test hosts with a Run of their own (another user, the
		// namespace lab host) run it one at a time.
		script, in := connection.StepScript(cst)
		var stdin io.Reader
		if in != nil {
			stdin = bytes.NewReader(in)
		}
		return h.Run(ctx, script, stdin)
	}
}

// backupName matches the timestamp of a backup's name.
var backupName = regexp.MustCompile(`\.[0-9]{8}T[0-9]{6}~`)

// fsState describes every entry below dir without times: path (backup
// timestamps blanked), type and mode, owner, link target and contents,
// for comparing what Apply and a step made of the same start.
func fsState(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d:%d", backupName.ReplaceAllString(rel, ".BACKUP~"), fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %s", strings.ReplaceAll(tg, dir, "DIR"))
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %q", c)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatalf("state of %s: %v", dir, err)
	}
	return b.String()
}

// TestStepMatchesApply performs each change of the file-system types
// twice from the same start, in two directories of this machine: once
// with Apply, once with the step's script run by the host (stdin the
// step's); the two end states must be equal (contents byte for byte,
// mode, owner, group, link targets, backups), no temp file may be left,
// and a second probe and check after the step must be clean.
func TestStepMatchesApply(t *testing.T) {
	labtest.RequireRoot(t)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "motd.tmpl"), []byte("hello {{.name}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := "a\x00b\x00\xff\xfe\n\x00"
	tests := []struct {
		name  string
		typ   string
		setup func(t *testing.T, d *localDir)
		spec  func(d *localDir) any
		want  Action
	}{
		{name: "directory create nested with attributes", typ: "directory",
			spec: func(d *localDir) any {
				return &DirectorySpec{Path: d.path("a/b/c"), Mode: "0750", Owner: "nobody", Group: "nogroup"}
			}, want: Create},
		{name: "directory create with mode only", typ: "directory",
			spec: func(d *localDir) any { return &DirectorySpec{Path: d.path("x/y"), Mode: "2775"} }, want: Create},
		{name: "directory existing mode", typ: "directory",
			setup: func(t *testing.T, d *localDir) { mkdir(t, d.path("m"), 0o700) },
			spec:  func(d *localDir) any { return &DirectorySpec{Path: d.path("m"), Mode: "0755"} }, want: Update},
		{name: "directory recurse beneath", typ: "directory",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("r/sub"), 0o755)
				writeFile(t, d.path("r/sub/f"), "x", 0o600)
			},
			spec: func(d *localDir) any {
				return &DirectorySpec{Path: d.path("r"), Owner: "nobody", Mode: "0755", Recurse: true}
			}, want: Update},
		{name: "directory absent", typ: "directory",
			setup: func(t *testing.T, d *localDir) { mkdir(t, d.path("gone/sub"), 0o755) },
			spec:  func(d *localDir) any { return &DirectorySpec{Path: d.path("gone"), State: "absent"} }, want: Delete},
		{name: "link create", typ: "link",
			spec: func(d *localDir) any { return &LinkSpec{Path: d.path("l"), Target: "../some where"} }, want: Create},
		{name: "link retarget a link to a directory", typ: "link",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("dir"), 0o755)
				if err := os.Symlink(d.path("dir"), d.path("l")); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) any { return &LinkSpec{Path: d.path("l"), Target: "/etc"} }, want: Update},
		{name: "link replaces a file with force", typ: "link",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("l"), "x", 0o644) },
			spec:  func(d *localDir) any { return &LinkSpec{Path: d.path("l"), Target: "t", Force: true} }, want: Update},
		{name: "link absent", typ: "link",
			setup: func(t *testing.T, d *localDir) {
				if err := os.Symlink("t", d.path("l")); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) any { return &LinkSpec{Path: d.path("l"), State: "absent"} }, want: Delete},
		{name: "file create, default mode", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("hi\n")} }, want: Create},
		{name: "file create with attributes", typ: "file",
			spec: func(d *localDir) any {
				return &FileSpec{Path: d.path("f"), Content: ptr("secret\n"), Mode: "0640", Owner: "nobody", Group: "nogroup"}
			}, want: Create},
		{name: "file create setuid", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("#!/bin/sh\n"), Mode: "4755"} }, want: Create},
		{name: "file replace keeps attributes", typ: "file",
			setup: func(t *testing.T, d *localDir) {
				writeFile(t, d.path("f"), "old\n", 0o604)
				if err := os.Chown(d.path("f"), 65534, 65534); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("new\n")} }, want: Update},
		{name: "file replace with backup", typ: "file",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "old\n", 0o600) },
			spec: func(d *localDir) any {
				return &FileSpec{Path: d.path("f"), Content: ptr("new\n"), Backup: true}
			}, want: Update},
		{name: "file replaces a symlink", typ: "file",
			setup: func(t *testing.T, d *localDir) {
				writeFile(t, d.path("target"), "t\n", 0o644)
				if err := os.Symlink("target", d.path("f")); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("own\n")} }, want: Update},
		{name: "file NUL bytes", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("bin"), Content: ptr(bin)} }, want: Create},
		{name: "file no trailing newline", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("no newline")} }, want: Create},
		{name: "file empty contents", typ: "file",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "was here\n", 0o644) },
			spec:  func(d *localDir) any { return &FileSpec{Path: d.path("f"), Content: ptr("")} }, want: Update},
		{name: "file create empty", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("e"), Content: ptr("")} }, want: Create},
		{name: "file name with quotes and spaces", typ: "file",
			spec: func(d *localDir) any { return &FileSpec{Path: d.path("it's a $(file) `x`"), Content: ptr("q\n")} }, want: Create},
		{name: "file attributes only", typ: "file",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "x\n", 0o644) },
			spec: func(d *localDir) any {
				return &FileSpec{Path: d.path("f"), Mode: "0600", Owner: "nobody"}
			}, want: Update},
		{name: "file absent", typ: "file",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "x\n", 0o644) },
			spec:  func(d *localDir) any { return &FileSpec{Path: d.path("f"), State: "absent"} }, want: Delete},
		{name: "file absent with backup", typ: "file",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "x\n", 0o640) },
			spec:  func(d *localDir) any { return &FileSpec{Path: d.path("f"), State: "absent", Backup: true} }, want: Delete},
		{name: "template create", typ: "template",
			spec: func(d *localDir) any { return &TemplateSpec{Src: "motd.tmpl", Path: d.path("motd"), Mode: "0644"} }, want: Create},
		{name: "template replace with backup", typ: "template",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("motd"), "old\n", 0o600) },
			spec:  func(d *localDir) any { return &TemplateSpec{Src: "motd.tmpl", Path: d.path("motd"), Backup: true} }, want: Update},
		{name: "line add keeps attributes", typ: "line",
			setup: func(t *testing.T, d *localDir) {
				writeFile(t, d.path("hosts"), "127.0.0.1 localhost\n", 0o600)
				if err := os.Chown(d.path("hosts"), 65534, 0); err != nil {
					t.Fatal(err)
				}
			},
			spec: func(d *localDir) any { return &LineSpec{Path: d.path("hosts"), Line: "10.0.0.1 db"} }, want: Update},
		{name: "line replace without trailing newline", typ: "line",
			setup: func(t *testing.T, d *localDir) { writeFile(t, d.path("conf"), "a=1\nb=2", 0o644) },
			spec:  func(d *localDir) any { return &LineSpec{Path: d.path("conf"), Regexp: "^b=", Line: "b=3"} }, want: Update},
		{name: "line create with parents", typ: "line",
			spec: func(d *localDir) any { return &LineSpec{Path: d.path("new/dir/conf"), Line: "x=1", Create: true} }, want: Create},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := mustProvider(tc.typ)
			var states [2]string
			var changes [2]*Change
			for i, viaStep := range []bool{false, true} {
				d := newLocalDir(t)
				if tc.setup != nil {
					tc.setup(t, d)
				}
				req := newReq(tc.spec(d), src, map[string]any{"name": "world"}, nil)
				ch, err := check(t, ctx, d.h, p, req)
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				if ch.Action != tc.want {
					t.Fatalf("check: got action %q (fields %v); want %q", ch.Action, ch.Fields, tc.want)
				}
				changes[i] = ch
				if !viaStep {
					if _, err := p.Apply(ctx, d.h, req, ch); err != nil {
						t.Fatalf("apply: %v", err)
					}
				} else {
					st, err := runStep(t, ctx, d.h, p, req, ch)
					if err != nil {
						t.Fatalf("step: got %v; want success\nscript:\n%s", err, st.Script)
					}
					for _, tmp := range st.Temp {
						if !strings.HasPrefix(filepath.Base(tmp), ".opsmop-") || !strings.HasSuffix(tmp, ".tmp") || len(filepath.Base(tmp)) != len(".opsmop-.tmp")+16 {
							t.Errorf("temp file %q: got that name; want .opsmop-<16 hex>.tmp", tmp)
						}
						if _, err := os.Lstat(tmp); !os.IsNotExist(err) {
							t.Errorf("temp file %s: got it left behind (%v); want it gone", tmp, err)
						}
					}
					again, err := check(t, ctx, d.h, p, newReq(tc.spec(d), src, map[string]any{"name": "world"}, nil))
					if err != nil {
						t.Fatalf("second check: %v", err)
					}
					if again.Action != None {
						t.Errorf("second check after the step: got %q (fields %v, diff %q); want none", again.Action, again.Fields, again.Diff)
					}
				}
				states[i] = fsState(t, d.dir)
			}
			if states[0] != states[1] {
				t.Errorf("end state: got (step)\n%s\nwant (apply)\n%s", states[1], states[0])
			}
			if got, want := strings.Join(sortedFieldNames(changes[1]), ","), strings.Join(sortedFieldNames(changes[0]), ","); got != want {
				t.Errorf("fields: got %s; want %s", got, want)
			}
		})
	}
}

// TestStepBytesExact checks that contents arrive byte for byte through a
// step's stdin: NUL bytes, every byte value, no trailing newline, empty,
// exactly MaxStepStdin bytes.
func TestStepBytesExact(t *testing.T) {
	labtest.RequireRoot(t)
	every := make([]byte, 0, 512)
	for i := range 512 {
		every = append(every, byte(i))
	}
	full := bytes.Repeat([]byte("0123456789abcde\n"), MaxStepStdin/16)
	tests := []struct {
		name string
		data string
	}{
		{"NUL bytes", "\x00\x00x\x00"},
		{"every byte value", string(every)},
		{"no trailing newline", "last line"},
		{"empty", ""},
		{"just a newline", "\n"},
		{"MaxStepStdin bytes", string(full)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newLocalDir(t)
			p := mustProvider("file")
			req := newReq(&FileSpec{Path: d.path("f"), Content: ptr(tc.data)}, "", nil, nil)
			ch, err := check(t, ctx, d.h, p, req)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			st, err := runStep(t, ctx, d.h, p, req, ch)
			if err != nil {
				t.Fatalf("step: %v", err)
			}
			if st.Stdin == nil || len(st.Stdin) != len(tc.data) {
				t.Errorf("Stdin: got %d bytes (nil %v); want %d, not nil", len(st.Stdin), st.Stdin == nil, len(tc.data))
			}
			got, err := os.ReadFile(d.path("f"))
			if err != nil || string(got) != tc.data {
				t.Errorf("contents: got %q (%v); want %q", trimQ(got), err, trimQ([]byte(tc.data)))
			}
			if m, _, _, _ := statOf(t, d.path("f")); m.Perm() != 0o644 {
				t.Errorf("mode: got %v; want 0644", m.Perm())
			}
		})
	}
}

// trimQ is b for a message, cut to 80 bytes.
func trimQ(b []byte) []byte {
	if len(b) > 80 {
		return append(b[:80:80], "..."...)
	}
	return b
}

// nobodyHost runs scripts on this machine as nobody:nogroup (setpriv),
// so that a directory of root's is not writable.
type nobodyHost struct{ *connection.Local }

func (h nobodyHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	cmd := exec.CommandContext(ctx, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", script)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := connection.Result{Stdout: out.Bytes(), Stderr: errb.Bytes()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		res.ExitCode = ee.ExitCode()
		err = nil
	}
	return res, err
}

// TestStepFailures runs upload steps that fail at each stage: the
// destination must be as it was, no temp file left, and StepDone's error
// labeled as Apply's ("file PATH: ...") and saying what failed.
func TestStepFailures(t *testing.T) {
	labtest.RequireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Fatalf("setpriv (util-linux) is needed to run a step as nobody: %v", err)
	}
	tests := []struct {
		name string
		// spec is the file; before changes the directory between check
		// and step.
		spec   func(d *localDir) *FileSpec
		before func(t *testing.T, d *localDir)
		host   func(d *localDir) Host
		// script, when set, is what runs instead of the step (on the host, no stdin).
		script func(st Step) string
		want   []string
		// apply: Apply from the same state fails too, its error starting
		// alike.
		apply bool
	}{
		{
			name: "destination became a directory",
			spec: func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("f"), Content: ptr("x\n")} },
			before: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("f"), 0o755)
				writeFile(t, d.path("f/keep"), "k", 0o644)
			},
			want:  []string{"upload " + "PATH failed with exit status 9", "rename into place: the destination is a directory"},
			apply: true,
		},
		{
			name: "directory missing",
			spec: func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("f"), Content: ptr("x\n")} },
			before: func(t *testing.T, d *localDir) {
				if err := os.Rename(d.dir, d.dir+".moved"); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Rename(d.dir+".moved", d.dir) })
			},
			want:  []string{"create temp file in DIR (the directory does not exist): no such directory"},
			apply: true,
		},
		{
			name: "directory not writable",
			spec: func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("f"), Content: ptr("x\n")} },
			before: func(t *testing.T, d *localDir) {
				writeFile(t, d.path("f"), "old\n", 0o666)
				// t.TempDir's parent is 0700: let nobody reach d.
				if err := os.Chmod(filepath.Dir(d.dir), 0o755); err != nil {
					t.Fatal(err)
				}
			},
			host: func(d *localDir) Host { return nobodyHost{d.h} },
			want: []string{"create temp file in DIR (nobody cannot write there): permission denied"},
		},
		{
			name:   "directory not reachable",
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("f"), Content: ptr("x\n")} },
			before: func(t *testing.T, d *localDir) {},
			host:   func(d *localDir) Host { return nobodyHost{d.h} },
			want:   []string{"create temp file in DIR (the directory does not exist, or nobody cannot reach it): no such directory"},
		},
		{
			name: "owner that does not exist",
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("f"), Content: ptr("new\n"), Owner: "opsmop-nosuchuser"}
			},
			before: func(t *testing.T, d *localDir) {},
			want:   []string{"set owner/group: failed"},
			apply:  true,
		},
		{
			// The shell's write of the contents failed half-way (a full
			// disk): it says so in opsmop_written, leaving what it wrote.
			name:   "contents not all written",
			spec:   func(d *localDir) *FileSpec { return &FileSpec{Path: d.path("f"), Content: ptr("twelve bytes")} },
			before: func(t *testing.T, d *localDir) {},
			script: func(st Step) string {
				return "printf twelve >" + shell.Quote(st.WriteTo) + "; opsmop_written=1\n" + st.Script
			},
			want: []string{"write: could not write the temp file (is the disk full?)"},
		},
		{
			name: "backup of a file gone",
			spec: func(d *localDir) *FileSpec {
				return &FileSpec{Path: d.path("f"), Content: ptr("new\n"), Backup: true}
			},
			before: func(t *testing.T, d *localDir) {
				if err := os.Remove(d.path("f")); err != nil {
					t.Fatal(err)
				}
			},
			want:  []string{"backup: could not copy PATH aside"},
			apply: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newLocalDir(t)
			if tc.name != "destination became a directory" && tc.name != "directory missing" {
				writeFile(t, d.path("f"), "old\n", 0o644)
			}
			p := mustProvider("file")
			req := newReq(tc.spec(d), "", nil, nil)
			ch, err := check(t, ctx, d.h, p, req)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			tc.before(t, d)
			var h Host = d.h
			if tc.host != nil {
				h = tc.host(d)
			}
			dir := d.dir
			if tc.name == "directory missing" {
				dir = d.dir + ".moved"
			}
			snap := fsState(t, dir)
			sp := p.(Stepper)
			st, ok, err := sp.ApplyStep(req, ch)
			if err != nil || !ok {
				t.Fatalf("ApplyStep: got ok %v, err %v; want a step", ok, err)
			}
			var res connection.Result
			if tc.script != nil {
				res, err = h.Run(ctx, tc.script(st), nil)
			} else {
				res, err = runStepOn(ctx, h, st)
			}
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			_, serr := sp.StepDone(req, st, res)
			if serr == nil {
				t.Fatalf("step: got success; want a failure\nscript:\n%s", st.Script)
			}
			msg := serr.Error()
			if want := "file " + d.path("f") + ": upload " + d.path("f") + " failed with exit status "; !strings.HasPrefix(msg, want) {
				t.Errorf("error: got %q; want it to start with %q", msg, want)
			}
			for _, w := range tc.want {
				w = strings.ReplaceAll(strings.ReplaceAll(w, "PATH", d.path("f")), "DIR", d.dir)
				if !strings.Contains(msg, w) {
					t.Errorf("error: got %q; want it to say %q", msg, w)
				}
			}
			if got := fsState(t, dir); got != snap {
				t.Errorf("after the failed step: got\n%s\nwant it unchanged\n%s", got, snap)
			}
			if tc.apply {
				_, aerr := p.Apply(ctx, d.h, req, ch)
				if aerr == nil || !strings.HasPrefix(aerr.Error(), "file "+d.path("f")+": ") {
					t.Errorf("apply from the same state: got %v; want an error starting %q", aerr, "file "+d.path("f")+": ")
				}
			}
		})
	}
}

// TestStepRefusals lists the changes without a step form: ApplyStep
// reports ok false (and no error), so the engine uses Apply.
func TestStepRefusals(t *testing.T) {
	labtest.RequireRoot(t)
	big := strings.Repeat("x", MaxStepStdin+1)
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "large"), bytes.Repeat([]byte("y"), maxDiffSize+1), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		typ  string
		spec func(d *localDir) any
	}{
		{"validate command", "file", func(d *localDir) any {
			return &FileSpec{Path: d.path("sudoers"), Content: ptr("x\n"), ValidateCmd: "test -s %s"}
		}},
		{"template with validate command", "template", func(d *localDir) any {
			return &TemplateSpec{Path: d.path("t"), Src: "large", ValidateCmd: "test -s %s"}
		}},
		{"contents over MaxStepStdin", "file", func(d *localDir) any { return &FileSpec{Path: d.path("big"), Content: &big} }},
		{"src file streamed from disk", "file", func(d *localDir) any { return &FileSpec{Path: d.path("large"), Src: "large"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			d := newLocalDir(t)
			p := mustProvider(tc.typ)
			req := newReq(tc.spec(d), src, nil, nil)
			ch, err := check(t, ctx, d.h, p, req)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if !ch.Changed() {
				t.Fatalf("check: got no change; want one")
			}
			st, ok, err := p.(Stepper).ApplyStep(req, ch)
			if ok || err != nil {
				t.Errorf("ApplyStep: got ok %v, err %v, script %q; want ok false, no error", ok, err, st.Script)
			}
		})
	}
}

// TestStepScriptIsApplys checks, on a host that records what it runs,
// that the step of the types whose Apply is one script (package and
// service, which need a package manager or an init system this machine
// may not have, user and group) is that script, with the same stdin and
// the same error, and which plans have no step form.
func TestStepScriptIsApplys(t *testing.T) {
	const alice = "passwd=alice:x:1001:1001:Alice:/home/alice:/bin/sh\npgroup=alice\ngroups=alice adm\n"
	tests := []struct {
		name   string
		typ    string
		spec   any
		facts  map[string]any
		probe  string
		noStep bool
	}{
		{name: "apt install with cache update", typ: "package", spec: &PackageSpec{Name: []string{"curl", "jq"}, UpdateCache: true},
			facts: map[string]any{"pkg_manager": "apt"}, probe: "curl install ok installed 7.88\n"},
		{name: "apt remove", typ: "package", spec: &PackageSpec{Name: []string{"curl"}, State: "absent"},
			facts: map[string]any{"pkg_manager": "apt"}, probe: "curl install ok installed 7.88\n"},
		{name: "dnf install", typ: "package", spec: &PackageSpec{Name: []string{"curl"}},
			facts: map[string]any{"pkg_manager": "dnf"}, probe: ""},
		// A package file over MaxStepStdin is uploaded by Apply (smaller
		// ones travel in the step: TestLabEveryResourceTypeOverSSH).
		{name: "package from a large src", typ: "package", spec: &PackageSpec{Name: []string{"opsmop-test"}, Src: "x.rpm"},
			facts: map[string]any{"pkg_manager": "dnf"}, probe: "", noStep: true},
		{name: "systemd start enable", typ: "service", spec: &ServiceSpec{Service: "nginx", State: "started", Enabled: ptr(true)},
			facts: map[string]any{"init_system": "systemd"}, probe: "load=loaded\nactive=inactive\nenabled=disabled\n"},
		{name: "sysv restart", typ: "service", spec: &ServiceSpec{Service: "nginx", State: "restarted"},
			facts: map[string]any{"init_system": "sysv"}, probe: "exists=1\nstatus=0\nenabled=1\nentool=update-rc.d\n"},
		{name: "useradd", typ: "user", spec: &UserSpec{Name: "bob", Shell: "/bin/sh"}, probe: "passwd=\n"},
		{name: "usermod", typ: "user", spec: &UserSpec{Name: "alice", Shell: "/bin/bash"}, probe: alice},
		{name: "password only", typ: "user", spec: &UserSpec{Name: "alice", Password: testHash}, probe: alice + "shadow=$6$old$xyz\n"},
		{name: "useradd and password", typ: "user", spec: &UserSpec{Name: "bob", Password: testHash}, probe: "passwd=\n", noStep: true},
		{name: "userdel", typ: "user", spec: &UserSpec{Name: "alice", State: "absent"}, probe: alice},
		{name: "groupadd", typ: "group", spec: &GroupSpec{Name: "web", GID: ptr(4100), System: true}, probe: "group=\n"},
		{name: "groupmod", typ: "group", spec: &GroupSpec{Name: "web", GID: ptr(4101)}, probe: "group=web:x:4100:\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := mustProvider(tc.typ)
			dir := t.TempDir()
			if ps, ok := tc.spec.(*PackageSpec); ok && ps.Src != "" {
				writeFile(t, filepath.Join(dir, ps.Src), strings.Repeat("x", MaxStepStdin+1), 0o644)
			}
			req := newReq(tc.spec, dir, nil, nil)
			if tc.facts != nil {
				req.Facts = tc.facts
			}
			ch, err := p.Check(req, connection.Result{Stdout: []byte(tc.probe)})
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if !ch.Changed() {
				t.Fatalf("check: got no change (%v); want one", ch.Message)
			}
			st, ok, err := p.(Stepper).ApplyStep(req, ch)
			if err != nil {
				t.Fatalf("ApplyStep: %v", err)
			}
			if tc.noStep {
				if ok {
					t.Errorf("ApplyStep: got a step %q; want ok false", st.Script)
				}
				return
			}
			if !ok {
				t.Fatalf("ApplyStep: got ok false; want a step")
			}
			f := &fakeHost{}
			f.on("", "", 3)
			f.rules[0].res.Stderr = []byte("boom")
			_, aerr := p.Apply(ctx, f, req, ch)
			if len(f.scripts) != 1 {
				t.Fatalf("apply ran %d scripts; want 1", len(f.scripts))
			}
			if st.Script != f.scripts[0] {
				t.Errorf("step script: got\n%s\nwant (apply's)\n%s", st.Script, f.scripts[0])
			}
			if string(st.Stdin) != f.stdins[0] {
				t.Errorf("step stdin: got %q; want %q", st.Stdin, f.stdins[0])
			}
			_, serr := p.(Stepper).StepDone(req, st, connection.Result{ExitCode: 3, Stderr: []byte("boom")})
			if aerr == nil || serr == nil || serr.Error() != aerr.Error() {
				t.Errorf("failure: got %v; want apply's %v", serr, aerr)
			}
			if out, err := p.(Stepper).StepDone(req, st, connection.Result{}); err != nil || out == nil {
				t.Errorf("success: got %v, %v; want an outcome", out, err)
			}
		})
	}
}

// TestStepOnLabHost performs the user, group and (sysv) service changes
// on two fresh lab hosts from the same start, with Apply on one and the
// step on the other: the accounts and the service must end alike, and a
// second check after the step is clean. Files are tested over SSH too
// (testStepFilesSSH).
func TestStepOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 68, Hosts: []lab.HostSpec{{Name: "sa"}, {Name: "sb"}, {Name: "se"}}})
	ha, hb := &labHost{pid: l.Host("sa").PID}, &labHost{pid: l.Host("sb").PID}
	t.Run("files over SSH", func(t *testing.T) { testStepFilesSSH(t, l) })
	facts := map[string]any{"init_system": "sysv"}
	for _, h := range []*labHost{ha, hb} {
		h.exec(t, "cat > /etc/init.d/opsmop-svc <<'EOF'\n"+initScript+"EOF\nchmod 755 /etc/init.d/opsmop-svc\nrm -f /var/lib/opsmop-svc.log")
	}
	const hash = "$6$opsmopsalt$BXHAfHi.A4T5XkUDmJCMb42EibNJuyj6aX0siA6V7R4.g93Oq1euNRDvBDHkYdMWF5Oav89B/g3szLF75rM7q0"
	accounts := "getent group opsg1 opsg2 || true; getent passwd alice || true; getent shadow alice | cut -d: -f1,2 || true; id -Gn alice 2>/dev/null || true; ls -ld /home/alice 2>/dev/null | cut -d' ' -f1,3,4 || true"
	service := "/etc/init.d/opsmop-svc status >/dev/null 2>&1 && echo running || echo stopped; ls /etc/rc2.d | grep opsmop || true; cat /var/lib/opsmop-svc.log 2>/dev/null || true"
	// In order: each starts where the one before left both hosts.
	steps := []struct {
		name  string
		typ   string
		spec  any
		state string
	}{
		{"groupadd", "group", &GroupSpec{Name: "opsg1", GID: ptr(4300)}, accounts},
		{"groupadd system", "group", &GroupSpec{Name: "opsg2", System: true}, accounts},
		{"groupmod", "group", &GroupSpec{Name: "opsg1", GID: ptr(4301)}, accounts},
		{"useradd", "user", &UserSpec{Name: "alice", UID: ptr(4400), Groups: []string{"opsg1"}, Shell: "/bin/sh", Comment: "Alice Example"}, accounts},
		{"password", "user", &UserSpec{Name: "alice", Password: hash}, accounts},
		{"usermod", "user", &UserSpec{Name: "alice", Shell: "/bin/bash", Groups: []string{"opsg1", "opsg2"}}, accounts},
		{"userdel", "user", &UserSpec{Name: "alice", State: "absent"}, accounts},
		{"groupdel", "group", &GroupSpec{Name: "opsg2", State: "absent"}, accounts},
		{"service start enable", "service", &ServiceSpec{Service: "opsmop-svc", State: "started", Enabled: ptr(true)}, service},
		{"service restart", "service", &ServiceSpec{Service: "opsmop-svc", State: "restarted"}, service},
		{"service stop disable", "service", &ServiceSpec{Service: "opsmop-svc", State: "stopped", Enabled: ptr(false)}, service},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := mustProvider(s.typ)
			req := func() *Request {
				r := newReq(s.spec, "", nil, nil)
				r.Facts = facts
				return r
			}
			var got [2]string
			for i, h := range []*labHost{ha, hb} {
				r := req()
				ch, err := check(t, ctx, h, p, r)
				if err != nil {
					t.Fatalf("check: %v", err)
				}
				if !ch.Changed() {
					t.Fatalf("check: got no change; want one")
				}
				if i == 0 {
					if _, err := p.Apply(ctx, h, r, ch); err != nil {
						t.Fatalf("apply: %v", err)
					}
				} else {
					if _, err := runStep(t, ctx, h, p, r, ch); err != nil {
						t.Fatalf("step: %v", err)
					}
					again, err := check(t, ctx, h, p, req())
					if err != nil {
						t.Fatalf("second check: %v", err)
					}
					if again.Changed() && s.name != "service restart" {
						t.Errorf("second check after the step: got %q (fields %v); want none", again.Action, again.Fields)
					}
				}
				got[i] = h.exec(t, s.state)
			}
			if got[0] != got[1] {
				t.Errorf("end state: got (step)\n%s\nwant (apply)\n%s", got[1], got[0])
			}
		})
	}
	t.Run("a failing step reads like apply", func(t *testing.T) {
		ctx := testCtx(t)
		p := mustProvider("group")
		var msgs [2]string
		for i, h := range []*labHost{ha, hb} {
			r := newReq(&GroupSpec{Name: "opsg3", GID: ptr(4301)}, "", nil, nil)
			ch, err := check(t, ctx, h, p, r)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			if i == 0 {
				_, err = p.Apply(ctx, h, r, ch)
			} else {
				_, err = runStep(t, ctx, h, p, r, ch)
			}
			if err == nil {
				t.Fatalf("gid 4301 is taken: got success; want a failure")
			}
			msgs[i] = err.Error()
		}
		if msgs[0] != msgs[1] {
			t.Errorf("error: got (step) %q; want (apply) %q", msgs[1], msgs[0])
		}
	})
}

// testStepFilesSSH performs file, template and line changes over SSH (ops
// under sudo), the step run by the host's persistent shell, on a host
// without SELinux and on one with the SELinux stand-in: each change is
// made in /srv/se/a with Apply (an upload) and in /srv/se/b with the step
// from the same start, and both directories must end alike (contents,
// mode, owner, group, SELinux context on "se", backups), with no temp
// file left; a second check after the step is clean. A step whose
// destination became a directory fails, leaving no temp file.
func testStepFilesSSH(t *testing.T, l *lab.Lab) {
	ctx := testCtx(t)
	k := newLabKit(t, ctx, l)
	installSELinuxStandin(t, ctx, l.Host("se"), true)
	tmpl := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmpl, "site.tmpl"), []byte("server {{.name}};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := "\x00\x01binary\xff\x00 no newline"
	tests := []struct {
		name  string
		setup string // run in each directory first
		spec  func(dir string) any
		se    bool // only where SELinux is on
	}{
		{name: "new binary file with attributes", spec: func(dir string) any {
			return &FileSpec{Path: dir + "/bin", Content: &bin, Mode: "0600", Owner: "app", Group: "app"}
		}},
		{name: "empty file", spec: func(dir string) any { return &FileSpec{Path: dir + "/empty", Content: ptr("")} }},
		{name: "replace with backup keeps attributes", setup: "printf 'old\\n' > keep && chown app:app keep && chmod 640 keep",
			spec: func(dir string) any { return &FileSpec{Path: dir + "/keep", Content: ptr("new\n"), Backup: true} }},
		{name: "replace keeps the context", setup: "printf 'old\\n' > ctx && /usr/local/bin/chcon -t special_t -l s0:c7 -- ctx",
			spec: func(dir string) any { return &FileSpec{Path: dir + "/ctx", Content: ptr("new\n")} }, se: true},
		{name: "new file with setype", spec: func(dir string) any {
			return &FileSpec{Path: dir + "/typed", Content: ptr("t\n"), seKeys: seKeys{SEType: "etc_t"}}
		}, se: true},
		{name: "template in a directory named with a quote", setup: "mkdir \"it's\"",
			spec: func(dir string) any { return &TemplateSpec{Src: "site.tmpl", Path: dir + "/it's/site.conf"} }},
		{name: "line", setup: "printf 'a\\nb\\n' > lines && chmod 600 lines",
			spec: func(dir string) any { return &LineSpec{Path: dir + "/lines", Regexp: "^b", Line: "c"} }},
		{name: "attributes only", setup: "printf 'x\\n' > attrs",
			spec: func(dir string) any { return &FileSpec{Path: dir + "/attrs", Mode: "0604", Group: "app"} }},
		{name: "absent with backup", setup: "printf 'x\\n' > gone",
			spec: func(dir string) any { return &FileSpec{Path: dir + "/gone", State: "absent", Backup: true} }},
	}
	for _, host := range []string{"sa", "se"} {
		h := k.connect(t, host, "ops", "root")
		r := k.root(host)
		state := func(t *testing.T, dir string) string {
			t.Helper()
			out := r(t, "cd "+dir+" && for f in $(ls -A | sort); do printf '%s ' \"$f\"; stat -c '%F %a %U %G %s' -- \"$f\"; if [ -f \"$f\" ]; then cksum < \"$f\"; fi; done; "+
				"if [ -x /usr/local/bin/ls ]; then SELINUX_STANDIN_LOG=/dev/null /usr/local/bin/ls -Zd -- * 2>/dev/null | sed 's/ .*//'; fi; true")
			return backupName.ReplaceAllString(out, ".BACKUP~")
		}
		for _, tc := range tests {
			if tc.se && host != "se" {
				continue
			}
			t.Run(host+" "+tc.name, func(t *testing.T) {
				p := mustProvider(map[bool]string{true: "template", false: "file"}[strings.Contains(tc.name, "template")])
				if tc.name == "line" {
					p = mustProvider("line")
				}
				var states [2]string
				for i, dir := range []string{"/srv/se/a", "/srv/se/b"} {
					r(t, "rm -rf "+dir+" && mkdir -p "+dir+" && cd "+dir+" && true "+map[bool]string{true: "&& " + tc.setup, false: ""}[tc.setup != ""])
					req := newReq(tc.spec(dir), tmpl, map[string]any{"name": "web1"}, nil)
					ch, err := check(t, ctx, h, p, req)
					if err != nil {
						t.Fatalf("check: %v", err)
					}
					if !ch.Changed() {
						t.Fatalf("check: got no change; want one")
					}
					if i == 0 {
						if _, err := p.Apply(ctx, h, req, ch); err != nil {
							t.Fatalf("apply: %v", err)
						}
					} else {
						st, err := runStep(t, ctx, h, p, req, ch)
						if err != nil {
							t.Fatalf("step: %v\nscript:\n%s", err, st.Script)
						}
						again, err := check(t, ctx, h, p, newReq(tc.spec(dir), tmpl, map[string]any{"name": "web1"}, nil))
						if err != nil {
							t.Fatalf("second check: %v", err)
						}
						if again.Changed() {
							t.Errorf("second check after the step: got %q (fields %v); want none", again.Action, again.Fields)
						}
					}
					states[i] = state(t, dir)
				}
				if states[0] != states[1] {
					t.Errorf("end state: got (step)\n%s\nwant (apply)\n%s", states[1], states[0])
				}
				if strings.Contains(states[1], ".opsmop-") {
					t.Errorf("temp file left:\n%s", states[1])
				}
			})
		}
		t.Run(host+" destination became a directory", func(t *testing.T) {
			r(t, "rm -rf /srv/se/b && mkdir -p /srv/se/b")
			p := mustProvider("file")
			req := newReq(&FileSpec{Path: "/srv/se/b/f", Content: ptr("x\n")}, "", nil, nil)
			ch, err := check(t, ctx, h, p, req)
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			r(t, "mkdir /srv/se/b/f && touch /srv/se/b/f/keep")
			before := state(t, "/srv/se/b")
			_, err = runStep(t, ctx, h, p, req, ch)
			want := "file /srv/se/b/f: upload /srv/se/b/f failed with exit status 9: rename into place: the destination is a directory"
			if err == nil || err.Error() != want {
				t.Errorf("step: got %v; want %q", err, want)
			}
			if got := state(t, "/srv/se/b"); got != before {
				t.Errorf("after the failed step: got\n%s\nwant it unchanged\n%s", got, before)
			}
		})
	}
}

// TestLinePredictProbe: the probe result line predicts after its change
// is what its probe really prints once the step has run (the pipelined
// apply checks the next line in the same file from it); a created file
// is not predicted.
func TestLinePredictProbe(t *testing.T) {
	labtest.RequireRoot(t)
	tests := []struct {
		name    string
		setup   func(t *testing.T, d *localDir)
		spec    func(d *localDir) *LineSpec
		predict bool
	}{
		{"line added, attributes kept", func(t *testing.T, d *localDir) {
			writeFile(t, d.path("hosts"), "127.0.0.1 localhost\n", 0o600)
			if err := os.Chown(d.path("hosts"), 65534, 0); err != nil {
				t.Fatal(err)
			}
		}, func(d *localDir) *LineSpec { return &LineSpec{Path: d.path("hosts"), Line: "10.0.0.1 db"} }, true},
		{"line replaced, no trailing newline", func(t *testing.T, d *localDir) { writeFile(t, d.path("conf"), "a=1\nb=2", 0o644) },
			func(d *localDir) *LineSpec { return &LineSpec{Path: d.path("conf"), Regexp: "^b=", Line: "b=3"} }, true},
		{"line removed", func(t *testing.T, d *localDir) { writeFile(t, d.path("conf"), "a=1\nb=2\n", 0o640) },
			func(d *localDir) *LineSpec { return &LineSpec{Path: d.path("conf"), Line: "a=1", State: "absent"} }, true},
		{"file created", nil,
			func(d *localDir) *LineSpec { return &LineSpec{Path: d.path("new"), Line: "x=1", Create: true} }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			p := mustProvider("line")
			d := newLocalDir(t)
			if tc.setup != nil {
				tc.setup(t, d)
			}
			req := newReq(tc.spec(d), "", nil, nil)
			script, err := p.Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			before, err := d.h.Run(ctx, script, nil)
			if err != nil {
				t.Fatal(err)
			}
			ch, err := p.Check(req, before)
			if err != nil || !ch.Changed() {
				t.Fatalf("check: got %v, %v; want a change", ch, err)
			}
			guess, ok := p.(Predictor).PredictProbe(req, before, ch)
			if ok != tc.predict {
				t.Fatalf("PredictProbe: got ok %v; want %v", ok, tc.predict)
			}
			if _, err := runStep(t, ctx, d.h, p, req, ch); err != nil {
				t.Fatalf("step: %v", err)
			}
			after, err := d.h.Run(ctx, script, nil)
			if err != nil {
				t.Fatal(err)
			}
			if ok && (string(guess.Stdout) != string(after.Stdout) || guess.ExitCode != after.ExitCode) {
				t.Errorf("prediction: got %q (status %d); want what the probe printed, %q (status %d)", guess.Stdout, guess.ExitCode, after.Stdout, after.ExitCode)
			}
		})
	}
}
