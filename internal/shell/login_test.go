package shell

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// loginShells are the login shells LoginLine must work through, as sshd
// runs them: SHELL -c LINE.
var loginShells = [][]string{
	{"/bin/sh", "-c"}, {"dash", "-c"}, {"bash", "-c"}, {"zsh", "-c"},
	{"busybox", "ash", "-c"}, {"fish", "-c"}, {"tcsh", "-c"}, {"csh", "-c"},
}

// loginScripts are scripts with every kind of byte the encoding handles.
var loginScripts = []string{
	"echo hello",
	"printf '%s\\n' \"$HOME\" | wc -c >/dev/null; echo 'single' \"double\" `echo back` $((1+2))",
	"x='a\\b\\\\c'; printf '%s|' \"$x\"; echo",
	"cat <<'EOF'\nline 1 $HOME `x` \\ \\\\\nline 2 !history !!\nEOF\necho done",
	"for i in 1 2 3; do\n  echo \"$i\"\ndone; exit 3",
	"echo '~user' {a,b} *.none [x] \"#not a comment\" # a comment\necho ;echo\techo",
	"printf '\\303\\251\\n'; echo é ü € \x01\x7f",
	"false",
}

// TestLoginLine runs each script through every login shell found on this
// machine with LoginLine and compares stdout and the exit status with sh
// running it directly. Under CI=true every shell must be installed.
func TestLoginLine(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	scripts := append([]string{}, loginScripts...)
	for range 40 {
		var b strings.Builder
		b.WriteString("printf '%s' '")
		for range r.IntN(60) {
			c := byte(r.IntN(255) + 1)
			if c == '\'' {
				b.WriteString(`'\''`)
				continue
			}
			b.WriteByte(c)
		}
		b.WriteString("'")
		scripts = append(scripts, b.String())
	}
	for _, sh := range loginShells {
		if _, err := exec.LookPath(sh[0]); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("login shell %s is not installed (.ci/deps installs it)", sh[0])
			}
			t.Logf("skipping login shell %s: not installed", sh[0])
			continue
		}
		t.Run(strings.Join(sh[:len(sh)-1], " "), func(t *testing.T) {
			for i, s := range scripts {
				line, err := LoginLine(s)
				if err != nil {
					t.Fatal(err)
				}
				if strings.ContainsAny(line, "\n'\"$`!") && strings.Count(line, "'") != 2 {
					t.Fatalf("script %d: line %q has more than the two quotes", i, line)
				}
				wantOut, wantCode := runShell(t, []string{"/bin/sh", "-c"}, strings.TrimRight(s, "\n"))
				gotOut, gotCode := runShell(t, sh, line)
				if !bytes.Equal(gotOut, wantOut) || gotCode != wantCode {
					t.Errorf("script %d %q through %s: got %q, exit %d; want %q, exit %d", i, s, sh[0], gotOut, gotCode, wantOut, wantCode)
				}
			}
		})
	}
	if _, err := LoginLine(strings.Repeat("$", MaxLoginLine/4+1)); err == nil {
		t.Errorf("a script encoding to more than MaxLoginLine: got no error; want one")
	}
}

// runShell runs argv plus arg and returns stdout and the exit status.
func runShell(t *testing.T, argv []string, arg string) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(argv[0], append(argv[1:], arg)...)
	cmd.Env = []string{"HOME=/nonexistent-home", "PATH=/usr/bin:/bin", "LC_ALL=C"}
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return out, code
}
