package connection

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// embeddedScripts lists every embedded .sh file with its name.
func embeddedScripts() map[string]string {
	return map[string]string{
		"shell_init.sh":       shellInitFile,
		"shell_run.sh":        shellRunFile,
		"shell_run_stdin.sh":  shellRunStdinFile,
		"shell_run_inline.sh": shellRunInlineFile,
		"shell_frame.sh":      shellFrameFile,
		"shell_run_exec.sh":   shellRunExecFile,
		"watchdog_kill.sh":    watchdogKillFile,
		"sftp_server.sh":      sftpServerFile,
	}
}

// TestScriptFiles checks the layout every embedded script keeps (see
// scripts.go): a header of comment lines up to the first empty line, then
// a body with no comment line (it would be sent to every host), and that
// every .sh file of the package is embedded (so the files `make lint`
// checks are the scripts that run).
func TestScriptFiles(t *testing.T) {
	scripts := embeddedScripts()
	files, err := filepath.Glob("*.sh")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range scripts {
		names = append(names, n)
	}
	slices.Sort(names)
	if !slices.Equal(files, names) {
		t.Fatalf("got .sh files %v; want the embedded scripts %v", files, names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			file := scripts[name]
			header, _, ok := strings.Cut(file, "\n\n")
			if !ok {
				t.Fatalf("got no empty line; want a header, an empty line, then the script")
			}
			for _, l := range strings.Split(header, "\n") {
				if !strings.HasPrefix(l, "#") {
					t.Fatalf("got header line %q; want only comment lines before the first empty line", l)
				}
			}
			body := scriptBody(file)
			if strings.TrimSpace(body) == "" {
				t.Fatal("got an empty script; want one after the header")
			}
			for _, l := range strings.Split(body, "\n") {
				if strings.HasPrefix(strings.TrimSpace(l), "#") {
					t.Fatalf("got comment line %q in the script; want comments in the header only (the script is sent as is)", l)
				}
			}
		})
	}
	t.Run("sftp_server.sh is one line", func(t *testing.T) {
		// It passes through the login shell, which may reject a newline
		// inside quotes.
		if body := scriptBody(sftpServerFile); strings.Contains(body, "\n") {
			t.Fatalf("got %q; want one line", body)
		}
	})
}

// TestRenderedScriptsParse checks the scripts as Go sends them (with the
// lines Go puts before them or the commands it appends) with `-n` under
// each POSIX shell there is: the machine's sh (dash on Debian), bash
// --posix and busybox ash. `make lint` checks the files themselves.
func TestRenderedScriptsParse(t *testing.T) {
	render := func(c command) string {
		var b strings.Builder
		writeCommand(&b, c)
		return b.String()
	}
	rendered := []struct {
		name, script string
	}{
		{"init", initScript([]byte("0123456789abcdef0123456789abcdef"))},
		{"command", render(command{script: "echo hi"})},
		{"command with stdin", render(command{script: "cat", stdin: []byte("x\x00y"), hasStdin: true})},
		{"inline probe", render(command{script: "a=1", inline: true})},
		{"inline probe with vars", render(command{script: "a=1 b=2", inline: true, vars: []string{"a", "b"}})},
		{"kill helper", killScript(4242, "opsmop-0123abcd")},
		{"exec command", execScript(command{script: "echo hi"}, "S0", "E0")},
		{"exec command with stdin", execScript(command{script: "cat", stdin: []byte("x\x00y%\\"), hasStdin: true}, "S0", "E0")},
		{"sftp server", scriptBody(sftpServerFile)},
	}
	shells := [][]string{{"sh", "-n"}, {"bash", "--posix", "-n"}, {"busybox", "ash", "-n"}}
	for _, sh := range shells {
		if _, err := exec.LookPath(sh[0]); err != nil {
			if os.Getenv("CI") != "" {
				t.Errorf("%s not installed: CI must check every script with it (.ci/deps installs it)", sh[0])
				continue
			}
			t.Logf("%s not installed: not checked with it (make deps installs it)", sh[0])
			continue
		}
		for _, r := range rendered {
			t.Run(sh[0]+"/"+r.name, func(t *testing.T) {
				cmd := exec.Command(sh[0], sh[1:]...)
				cmd.Stdin = strings.NewReader(r.script)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("got %v: %s; want the script to parse:\n%s", err, out, r.script)
				}
			})
		}
	}
}
