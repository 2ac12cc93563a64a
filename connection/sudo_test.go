package connection

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fakeSudo is a sudo stand-in for sudoLine's tests: like sudo with
// requiretty it refuses when it has no controlling terminal; it prints the
// -p prompt to stderr and reads a line from stdin unless -n is given, then
// runs what follows "--".
const fakeSudo = `#!/bin/sh
if ! (: </dev/tty) 2>/dev/null; then echo "sudo: sorry, you must have a tty to run sudo" >&2; exit 1; fi
prompt= nopw=
while [ "$1" != "--" ]; do
  case $1 in -p) prompt=$2; shift ;; -n) nopw=1 ;; esac
  shift
done
shift
if [ -z "$nopw" ]; then printf '%s' "$prompt" >&2; IFS= read -r pw; [ "$pw" = secret ] || { echo "sudo: 1 incorrect password attempt" >&2; exit 1; }; fi
exec "$@"
`

// TestSudoLineTTY runs sudoLine's output through /bin/sh -c (as a login
// shell would), without a controlling terminal, against fakeSudo: without
// tty the stand-in refuses as requiretty does and requiresTTY recognises
// its message; with tty the password reaches sudo's stdin, the prompt and
// ready marker arrive on stderr, and the inner script's stdin, stdout and
// exit status are the session's.
func TestSudoLineTTY(t *testing.T) {
	if _, err := exec.LookPath("script"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("script(1) missing: %v (.ci/deps installs util-linux)", err)
		}
		t.Skip("script(1) missing")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sudo"), []byte(fakeSudo), 0o755); err != nil {
		t.Fatal(err)
	}
	id := identity{sudo: true, user: "root"}
	const prompt, ready = "[p] ", "READY"
	inner := `read -r x; printf 'got %s\n' "$x"; exit 3`
	run := func(t *testing.T, login string, havePw, tty bool, stdin string) (string, string, int) {
		line, err := sudoLine(id, havePw, tty, prompt, ready, inner)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(login, "-c", line)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
		cmd.Stdin = strings.NewReader(stdin)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err = cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	t.Run("no tty refused", func(t *testing.T) {
		_, e, code := run(t, "/bin/sh", false, false, "hello\n")
		if code == 0 || !requiresTTY(e) {
			t.Fatalf("got exit %d stderr %q; want a requiretty refusal", code, e)
		}
	})
	for _, tc := range []struct {
		name    string
		havePw  bool
		stdin   string
		wantErr string
	}{
		{"nopasswd", false, "hello\n", ready},
		{"password", true, "secret\nhello\n", prompt + ready},
	} {
		for _, login := range []string{"/bin/sh", "fish", "tcsh"} {
			if _, err := exec.LookPath(login); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("login shell %s missing: %v (.ci/deps installs it)", login, err)
				}
				continue
			}
			t.Run(tc.name+"/"+filepath.Base(login), func(t *testing.T) {
				o, e, _ := run(t, login, tc.havePw, true, tc.stdin)
				if o != "got hello\n" {
					t.Errorf("stdout: got %q; want %q (stderr %q)", o, "got hello\n", e)
				}
				if e != tc.wantErr {
					t.Errorf("stderr: got %q; want %q", e, tc.wantErr)
				}
				if strings.Contains(o+e, "secret") {
					t.Errorf("the password was echoed: stdout %q stderr %q", o, e)
				}
			})
		}
	}
}
