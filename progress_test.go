package main

import (
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

// TestProgressOnlyOnTerminals: the live status line (redrawn in place
// with \r and an erase-line sequence) is drawn when stdout is a terminal,
// and never in a pipe or with --json.
func TestProgressOnlyOnTerminals(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "r"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d"
`})
	policy := filepath.Join(dir, "site.toml")
	root := t.TempDir()
	counters := regexp.MustCompile(`\[[01]/1 done\]`)
	for _, c := range []struct {
		name   string
		tty    bool
		args   []string
		status bool
	}{
		{"terminal", true, nil, true},
		{"pipe", false, nil, false},
		{"terminal --json", true, []string{"--json"}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none"), EtcSSHConfig: filepath.Join(dir, "none") + ".no-ssh-config", Getenv: func(k string) string {
				if k == "NO_COLOR" {
					return "1"
				}
				return ""
			}, IsTerminal: func(io.Writer) bool { return c.tty }}
			args := append([]string{"check", policy, "--local", "-e", "root=" + root}, c.args...)
			code, out, errOut := opsmop(t, env, args...)
			if code != exitOK {
				t.Fatalf("exit %d: %s %s", code, out, errOut)
			}
			// The counters on the line may lag behind (redraws are
			// limited to four a second): any done/total will do.
			got := strings.Contains(out, "\r\x1b[K") && counters.MatchString(out)
			if got != c.status {
				t.Errorf("status line drawn: got %v; want %v; output %q", got, c.status, out)
			}
		})
	}
}
