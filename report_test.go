package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/testutil"
)

// reportPolicy changes a file (with a hostile name and contents), runs
// a failing command and a handler, on the local host.
const reportPolicy = `
[[roles]]
name = "local"
  [[roles.resources]]
  type = "file"
  path = "{{ .root }}/<img src=x onerror=alert(1)>.conf"
  content = "</script><script>alert(2)</script>\n"
  notify = ["note"]
  [[roles.resources]]
  type = "shell"
  cmd = "echo '<b>bold</b>' >&2; false"
  ignore_errors = true
  [[roles.handlers]]
  name = "note"
  type = "shell"
  cmd = "true"
`

// TestReportCommand: opsmop report writes the page of an apply --json
// stream and prints its path; it refuses a cut stream (exit 3, file and
// line) and a missing argument.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.WriteTree(t, dir, map[string]string{"site.toml": reportPolicy})
	env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none"), EtcSSHConfig: filepath.Join(dir, "none"), Getenv: func(string) string { return "" }}
	code, stream, errOut := opsmop(t, env, "apply", filepath.Join(dir, "site.toml"), "--local", "-e", "root="+root, "--json")
	if code != exitOK || !strings.Contains(stream, `"status":"changed"`) {
		t.Fatalf("apply --json: exit %d; want 0 and a change\n%s%s", code, stream, errOut)
	}
	streamFile := filepath.Join(dir, "run.json")
	if err := os.WriteFile(streamFile, []byte(stream), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "run.html")
	code, stdout, errOut := opsmop(t, env, "report", streamFile, "-o", out)
	if code != exitOK || !strings.Contains(stdout, "written to "+out) {
		t.Fatalf("report: exit %d, %q %s; want 0 and the path %s printed", code, stdout, errOut, out)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	html := string(page)
	for _, want := range []string{"localhost", ">changed<", ">ignored<", "&lt;b&gt;bold&lt;/b&gt;", "&lt;img src=x onerror=alert(1)&gt;.conf", "&lt;/script&gt;&lt;script&gt;alert(2)&lt;/script&gt;", "handler, run"} {
		if !strings.Contains(html, want) {
			t.Errorf("the page does not hold %q", want)
		}
	}
	for _, bad := range []string{"<script>alert", "<img", "<b>bold"} {
		if strings.Contains(html, bad) {
			t.Errorf("the page holds %q unescaped", bad)
		}
	}

	lines := strings.SplitAfter(stream, "\n")
	cut := filepath.Join(dir, "cut.json")
	if err := os.WriteFile(cut, []byte(strings.Join(lines[:len(lines)-2], "")), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"cut stream", []string{"report", cut, "-o", out}, cut + ":"},
		{"no stream", []string{"report"}, "give the --json streams"},
		{"empty -o", []string{"report", streamFile, "-o", ""}, "-o is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := opsmop(t, env, tc.args...)
			if code != exitInvalid || !strings.Contains(errOut, tc.want) {
				t.Errorf("exit %d, %q; want exit %d and %q", code, errOut, exitInvalid, tc.want)
			}
		})
	}
	if !strings.Contains(errOutOf(t, env, "report", cut, "-o", out), "truncated") {
		t.Errorf("a cut stream's error does not say it is truncated")
	}
}

// errOutOf is opsmop's stderr.
func errOutOf(t *testing.T, env Env, args ...string) string {
	t.Helper()
	_, _, errOut := opsmop(t, env, args...)
	return errOut
}
