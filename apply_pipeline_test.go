package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

const pipelinePolicyCLI = `
[[roles]]
name = "local"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d"
  [[roles.resources]]
  type = "file"
  path = "{{ .root }}/d/f"
  content = "f\n"
  [[roles.resources]]
  type = "line"
  path = "{{ .root }}/d/f"
  line = "g"
`

// TestApplyNoPipeline: apply with and without --no-pipeline makes the
// same changes; the pipelined one sends them as apply batches (phase
// events), the other none; check refuses the flag (it applies nothing).
func TestApplyNoPipeline(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": pipelinePolicyCLI})
	env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none"), EtcSSHConfig: filepath.Join(dir, "none"), Getenv: func(string) string { return "" }}
	for _, tc := range []struct {
		name    string
		flags   []string
		batches bool
	}{
		{"pipelined", nil, true},
		{"--no-pipeline", []string{"--no-pipeline"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(dir, strings.TrimLeft(tc.name, "-"))
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			args := append([]string{"apply", filepath.Join(dir, "site.toml"), "--local", "-e", "root=" + root, "--json"}, tc.flags...)
			code, stream, errOut := opsmop(t, env, args...)
			if code != exitOK || strings.Count(stream, `"status":"changed"`) != 3 {
				t.Fatalf("apply: exit %d; want 0 and 3 changes\n%s%s", code, stream, errOut)
			}
			if got := strings.Contains(stream, `"phase":"apply"`); got != tc.batches {
				t.Errorf("apply batches in the stream: got %v; want %v\n%s", got, tc.batches, stream)
			}
			if b, err := os.ReadFile(filepath.Join(root, "d", "f")); err != nil || string(b) != "f\ng\n" {
				t.Errorf("the file: got %q, %v; want %q", b, err, "f\ng\n")
			}
		})
	}
	code, _, errOut := opsmop(t, env, "check", filepath.Join(dir, "site.toml"), "--local", "-e", "root="+dir, "--no-pipeline")
	if code != exitInvalid || !strings.Contains(errOut, "no-pipeline") {
		t.Errorf("check --no-pipeline: exit %d, %q; want %d naming the flag", code, errOut, exitInvalid)
	}
}
