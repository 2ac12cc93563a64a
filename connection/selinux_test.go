package connection

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/shell"
)

// selinuxStandin installs ../providers/testdata/selinux-standin.sh into a
// temp bin directory as selinuxenabled, chcon, restorecon and ls, with its
// state (contexts as user.selinux_standin xattrs of the files, the policy
// table, the log) in a temp directory; it returns the environment that
// puts them first in PATH and the paths of the enabled flag and the log.
func selinuxStandin(t *testing.T, enabled bool, table string) (env []string, etc, log string) {
	t.Helper()
	dir := t.TempDir()
	bin, etc := filepath.Join(dir, "bin"), filepath.Join(dir, "etc")
	for _, d := range []string{bin, etc} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("../providers/testdata/selinux-standin.sh")
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "selinux-standin.sh")
	if err := os.WriteFile(src, b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"selinuxenabled", "chcon", "restorecon", "ls"} {
		if err := os.Symlink(src, filepath.Join(bin, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(etc, "file_contexts"), []byte(table), 0o644); err != nil {
		t.Fatal(err)
	}
	if enabled {
		if err := os.WriteFile(filepath.Join(etc, "enabled"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	log = filepath.Join(dir, "log")
	env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "SELINUX_STANDIN_ETC=" + etc, "SELINUX_STANDIN_LOG=" + log}
	return env, etc, log
}

// standinCall runs one stand-in command (chcon, ls -Zd) with env, not
// logged.
func standinCall(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(append(os.Environ(), env...), "SELINUX_STANDIN_LOG=/dev/null")
	// The stand-in's name must be found in its PATH, not the test's.
	cmd.Path = filepath.Join(strings.TrimPrefix(strings.Split(env[0], ":")[0], "PATH="), args[0])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", args, err, out)
	}
	return string(out)
}

func contextOf(t *testing.T, env []string, p string) string {
	t.Helper()
	c, _, _ := strings.Cut(standinCall(t, env, "ls", "-Zd", "--", p), " ")
	return c
}

// TestSELinuxRenameShells runs SELinuxRename (the code every writer's
// rename is) in dash, bash --posix and busybox ash against the stand-in,
// as a script without opsmop's persistent shell (Local, exec channels)
// runs it: a replaced file keeps its context, a new one gets the policy
// default, paths with quotes and spaces are one word; with SELinux off
// it is a plain mv, no chcon or restorecon.
func TestSELinuxRenameShells(t *testing.T) {
	for _, sh := range [][]string{{"dash"}, {"bash", "--posix"}, {"busybox", "ash"}} {
		t.Run(sh[0], func(t *testing.T) {
			if _, err := exec.LookPath(sh[0]); err != nil {
				t.Fatalf("%s: %v (bash .ci/deps installs it)", sh[0], err)
			}
			dir := t.TempDir()
			env, _, log := selinuxStandin(t, true, dir+"/new.* system_u:object_r:var_t:s0\n")
			run := func(script string) (string, error) {
				cmd := exec.Command(sh[0], append(sh[1:], "-c", script)...)
				cmd.Env = append(os.Environ(), env...)
				out, err := cmd.CombinedOutput()
				return string(out), err
			}
			old := filepath.Join(dir, "it's old")
			for _, f := range []string{old, old + ".tmp", filepath.Join(dir, "new.tmp")} {
				if err := os.WriteFile(f, []byte(f), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			standinCall(t, env, "chcon", "-t", "special_t", "--", old)
			q := shell.Quote
			if out, err := run(SELinuxRename(q(old+".tmp"), q(old)) + " && echo ok"); err != nil || out != "ok\n" {
				t.Fatalf("replace: got %q, %v; want ok", out, err)
			}
			if out, err := run(SELinuxRename(q(dir+"/new.tmp"), q(dir+"/new.conf")) + " && echo ok"); err != nil || out != "ok\n" {
				t.Fatalf("new file: got %q, %v; want ok", out, err)
			}
			if got := contextOf(t, env, old); got != "system_u:object_r:special_t:s0" {
				t.Errorf("replaced: got %q; want the old context", got)
			}
			if b, _ := os.ReadFile(old); string(b) != old+".tmp" {
				t.Errorf("replaced: contents %q; want the new file's", b)
			}
			if got := contextOf(t, env, dir+"/new.conf"); got != "system_u:object_r:var_t:s0" {
				t.Errorf("new: got %q; want the policy default", got)
			}
			// chcon failing (here: the old file's context cannot be read)
			// leaves the old file and says why.
			if out, err := run(SELinuxRename(q(dir+"/missing.tmp"), q(old))); err == nil || !strings.Contains(out, "SELinux is on but chcon could not give the new file the context of "+old) {
				t.Errorf("failed chcon: got %q, %v; want the message", out, err)
			}
			// SELinux off: selinuxenabled once, nothing else.
			if err := os.Remove(filepath.Join(filepath.Dir(log), "etc", "enabled")); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(log, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dir+"/a.tmp", nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := run(SELinuxRename(q(dir+"/a.tmp"), q(dir+"/a")) + " && " + SELinuxRename(q(dir+"/a"), q(dir+"/b"))); err != nil {
				t.Fatalf("SELinux off: %v: %s", err, out)
			}
			if b, _ := os.ReadFile(log); string(b) != "selinuxenabled \n" {
				t.Errorf("SELinux off: stand-in calls %q; want one selinuxenabled for two renames", b)
			}
			// The persistent shell's __opsmop_se: no process at all.
			if err := os.WriteFile(log, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := run("__opsmop_se=0; " + SELinuxRename(q(dir+"/b"), q(dir+"/c"))); err != nil {
				t.Fatalf("__opsmop_se=0: %v: %s", err, out)
			}
			if b, _ := os.ReadFile(log); len(b) != 0 {
				t.Errorf("__opsmop_se=0: stand-in calls %q; want none", b)
			}
		})
	}
}

// TestLocalUploadSELinux: Local's direct upload (a Go rename) keeps the
// context of the file it replaces and gives a new one the policy
// default, where the stand-in says SELinux is on.
func TestLocalUploadSELinux(t *testing.T) {
	dir := t.TempDir()
	env, _, _ := selinuxStandin(t, true, dir+"/.* system_u:object_r:var_t:s0\n")
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		t.Setenv(k, v)
	}
	l := &Local{}
	ctx := t.Context()
	p := filepath.Join(dir, "conf")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	standinCall(t, env, "chcon", "-t", "special_t", "-l", "s0:c3", "--", p)
	if err := l.Upload(ctx, p, bytes.NewReader([]byte("new")), 3, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := contextOf(t, env, p); got != "system_u:object_r:special_t:s0:c3" {
		t.Errorf("replaced: got %q; want the old context", got)
	}
	n := filepath.Join(dir, "new")
	if err := l.Upload(ctx, n, bytes.NewReader([]byte("x")), 1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := contextOf(t, env, n); got != "system_u:object_r:var_t:s0" {
		t.Errorf("new: got %q; want the policy default", got)
	}
	if b, _ := os.ReadFile(p); string(b) != "new" {
		t.Errorf("contents: got %q", b)
	}
}
