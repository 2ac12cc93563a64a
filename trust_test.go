package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// failingWriter fails every write, as stdout on a full disk or a closed
// pipe does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestReportWriteFailureFails: when the report (human or --json) cannot
// be written, the run does not exit 0: its caller would take a report
// with holes for the truth.
func TestReportWriteFailureFails(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "site.toml")
	if err := os.WriteFile(pol, []byte("[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"echo\"\nmsg = \"hi\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"json", []string{"opsmop", "check", pol, "--local", "--json"}},
		{"human", []string{"opsmop", "check", pol, "--local"}},
		{"apply json", []string{"opsmop", "apply", pol, "--local", "--json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			env := Env{Stdout: failingWriter{}, Stderr: &stderr, Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none.toml"), EtcSSHConfig: filepath.Join(dir, "none.toml") + ".no-ssh-config", Getenv: func(string) string { return "" }}
			code := run(context.Background(), tc.args, env)
			if code != exitFailed {
				t.Errorf("exit code: got %d; want %d (stderr %q)", code, exitFailed, stderr.String())
			}
			if !strings.Contains(stderr.String(), "report is incomplete") {
				t.Errorf("stderr: got %q; want it to say the report is incomplete", stderr.String())
			}
		})
	}
}
