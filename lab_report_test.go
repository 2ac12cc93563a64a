package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// reportLabPolicy changes a file the same way on every host (one diff
// for all of them in the report), writes the web hosts' config, notifies
// a handler, and fails on web3.
const reportLabPolicy = `
[[roles]]
name = "base"
groups = "all"
  [[roles.resources]]
  type = "directory"
  path = "/srv/report"
  [[roles.resources]]
  type = "file"
  path = "/srv/report/motd"
  content = "managed by opsmop\nowner = ops\n"
  [[roles.resources]]
  type = "shell"
  cmd = "if [ \"$(hostname)\" = web3 ]; then echo 'disk full on /srv' >&2; exit 1; fi"
  changed_when = "false"
[[roles]]
name = "web"
groups = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/report/app.conf"
  content = "listen = 8080\nworkers = 4\n"
  notify = ["reload app"]
  [[roles.handlers]]
  name = "reload app"
  type = "shell"
  cmd = "true"
`

// chromiumTimeout bounds one chromium run.
const chromiumTimeout = 60 * time.Second

// TestLabReportInChromium: the report of a real run (two slices of
// apply --json over SSH hosts, merged) renders in a real browser: the
// DOM Chromium built holds the hosts, their statuses, the failure's
// message and the diff; a screenshot is a PNG. With
// OPSMOP_UPDATE_REPORT_PNG=1 the screenshot is docs/report.png, the
// example of docs/report.md.
func TestLabReportInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium not found (%v): .ci/deps installs it; CI runs this test", err)
		}
		t.Skipf("chromium not found (%v): apt-get install chromium (or bash .ci/deps) to run this test", err)
	}
	l := labtest.Start(t, lab.Config{Subnet: 67, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "web2", Group: "web"}, {Name: "web3", Group: "web"}, {Name: "db1", Group: "db"},
	}})
	for _, h := range l.Hosts {
		if out, err := h.Exec(t.Context(), "mkdir -p /srv/report && printf 'managed by hand\\nowner = ops\\n' > /srv/report/motd"); err != nil {
			t.Fatalf("%s: %v: %s", h.Name, err, out)
		}
	}
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": reportLabPolicy})
	env := labEnv(t, l, nil)
	var files []string
	for _, k := range []string{"1/2", "2/2"} {
		_, out, errOut := opsmop(t, env, "apply", filepath.Join(dir, "site.toml"), "-i", l.Inventory, "--slice", k, "--json")
		if !strings.Contains(out, `"type":"summary"`) {
			t.Fatalf("apply --slice %s --json: no summary\n%s%s", k, out, errOut)
		}
		f := filepath.Join(dir, "slice"+k[:1]+".json")
		if err := os.WriteFile(f, []byte(out), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	page := filepath.Join(dir, "report.html")
	code, out, errOut := opsmop(t, env, append([]string{"report", "-o", page}, files...)...)
	if code != exitOK || !strings.Contains(out, "report of 4 host(s) written to "+page) {
		t.Fatalf("report: exit %d; want 0 and the path printed\n%s%s", code, out, errOut)
	}

	dom := runChromium(t, chromium, "--dump-dom", "file://"+page)
	text := regexp.MustCompile(`\s+`).ReplaceAllString(dom, " ")
	for _, want := range []string{
		`<td>web1</td><td><span class="st st-changed">changed</span></td>`,
		`<td>db1</td><td><span class="st st-changed">changed</span></td>`,
		`<td>web3</td><td><span class="st st-failed">failed</span></td>`,
		`disk full on /srv`,
		`file[/srv/report/motd] <small>on 4 host(s)</small>`,
		`<span class="dm">-managed by hand</span><span class="dp">+managed by opsmop</span>`,
		`db1, web1, web2, web3`,
		`<form id="filters">`, // the script ran: the filters are shown
	} {
		if !strings.Contains(text, want) {
			t.Errorf("chromium's DOM of the report does not hold %q", want)
		}
	}
	if t.Failed() {
		t.Logf("DOM:\n%s", dom)
	}

	png := filepath.Join(dir, "report.png")
	if os.Getenv("OPSMOP_UPDATE_REPORT_PNG") == "1" {
		png, _ = filepath.Abs(filepath.Join("docs", "report.png"))
	}
	runChromium(t, chromium, "--screenshot="+png, "--window-size=1280,1600", "file://"+page)
	shot, err := os.ReadFile(png)
	if err != nil || !bytes.HasPrefix(shot, []byte("\x89PNG\r\n\x1a\n")) || len(shot) < 10000 {
		t.Errorf("screenshot %s: %d bytes, %v; want a PNG", png, len(shot), err)
	}
}

// runChromium runs headless chromium with args (--no-sandbox: tests run
// as root) and returns its standard output.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), chromiumTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=" + t.TempDir()}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v (after %v)\n%s", strings.Join(args, " "), err, time.Since(began), stderr.String())
	}
	t.Logf("chromium %s: %v", args[0], time.Since(began).Round(time.Millisecond))
	return stdout.String()
}
