package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// TestSecretsNeverShown plants four secrets: deploy's SSH password (login
// by password), root's password as the sudo password (sudoers rootpw, so
// the two differ), the contents of a sensitive file and a wrong sudo
// password for a second host, written literally into the inventory. None
// may appear in check -v, apply -v, apply --json, error messages, diffs,
// `opsmop inventory` output, ~/.opsmop, leftover files on the host, or the
// argv of any process on the host while opsmop runs a sudo'd command
// there. Files under ~/.opsmop are private (0600, directories 0700); the
// shells' temporary directories on the host are 0700 while in use and
// removed afterwards.
func TestSecretsNeverShown(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 56, Hosts: []lab.HostSpec{{Name: "s1"}, {Name: "s2"}}})
	const (
		sshPW     = "ssh-pw-Q7vN2kx9"
		sudoPW    = "sudo-pw-Jr4m8Wz1"
		content   = "sensitive-content-Hb6t3Lp0"
		wrongPW   = "wrong-pw-Xc5e7Rn2"
		otherText = "other-text-not-secret"
	)
	secrets := []string{sshPW, sudoPW, content, wrongPW}
	s1 := l.Host("s1")
	ctx := context.Background()
	if out, err := s1.ExecInput(ctx, "chpasswd && echo 'Defaults:deploy rootpw' > /etc/sudoers.d/zz-rootpw", strings.NewReader("deploy:"+sshPW+"\nroot:"+sudoPW+"\n")); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	inv := labInventory(t, l, "fleet", map[string]string{
		"s1": "opsmop_ssh_username=deploy opsmop_ssh_private_key='' opsmop_ssh_password=env:SSH_PW opsmop_sudo=true opsmop_sudo_password=env:SUDO_PW",
		"s2": "opsmop_ssh_username=deploy opsmop_sudo=true opsmop_sudo_password=" + wrongPW,
	})
	env := labEnv(t, l, map[string]string{"SSH_PW": sshPW, "SUDO_PW": sudoPW})
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"files/secret.key": content + "\n",
		"site.toml": `
[[roles]]
name = "secrets"
groups = "fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/sec/key"
  src = "files/secret.key"
  mode = "0600"
  sensitive = true
  [[roles.resources]]
  type = "shell"
  cmd = "sleep 3"
  [[roles.resources]]
  type = "shell"
  cmd = "echo failing on purpose >&2; false"
  ignore_errors = true
  [[roles.resources]]
  type = "file"
  path = "/srv/sec/plain"
  content = "` + otherText + `\n"
`})
	if out, err := s1.Exec(ctx, "mkdir -p /srv/sec"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	policy := filepath.Join(dir, "site.toml")
	var outputs []string
	record := func(what string, code int, out, errOut string) {
		outputs = append(outputs, "== "+what+fmt.Sprintf(" (exit %d)\n", code)+out+errOut)
	}

	code, out, errOut := opsmop(t, env, "check", policy, "-i", inv, "-v")
	record("check -v", code, out, errOut)
	if !strings.Contains(out, "s1: file[/srv/sec/key]: would create") || !strings.Contains(out, "(content is sensitive: not shown)") {
		t.Errorf("check -v: the sensitive file's pending change is not shown as such:\n%s", out)
	}

	// A saved plan, and show's printing of it, hold no secret either.
	planPath := filepath.Join(dir, "site.plan")
	code, out, errOut = opsmop(t, env, "check", policy, "-i", inv, "-o", planPath)
	record("check -o", code, out, errOut)
	planData, err := os.ReadFile(planPath)
	if err != nil || !strings.Contains(string(planData), `"id": "secrets/resources/0"`) {
		t.Fatalf("check -o: plan %q, %v; want s1's resources in it", planData, err)
	}
	record("the plan file", 0, string(planData), "")
	code, out, errOut = opsmop(t, env, "show", planPath, "-v")
	record("show -v", code, out, errOut)

	// apply -v, watching the argv of every process on s1 meanwhile.
	res, done := startOpsmop(env, "apply", policy, "-i", inv, "-v")
	var argv []string
	var tempModes string
	sawSleep := false
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		ps, err := s1.Exec(ctx, "ps -eo args")
		if err == nil {
			argv = append(argv, string(ps))
			if strings.Contains(string(ps), "sleep 3") && !sawSleep {
				sawSleep = true
				// The shells' private directories and files, while in use:
				// in the host's own layer of /tmp (the lower layer is the
				// machine's /tmp).
				tempModes = listModes(t, filepath.Join(s1.Upper, "tmp"))
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	record("apply -v", res.code, res.stdout.String(), res.stderr.String())
	if !sawSleep {
		t.Errorf("never saw the sudo'd `sleep 3` in ps on s1: the argv check proves little")
	}
	// The first command under sudo meets the wrong password: the first
	// resource's check (the policy reads no facts, so none are gathered).
	if !regexp.MustCompile(`s2: [^\n]*: FAILED: check: wrong sudo password for deploy on s2`).MatchString(res.stdout.String()) {
		t.Errorf("apply -v: s2's wrong sudo password is not reported:\n%s", res.stdout)
	}
	if !strings.Contains(res.stdout.String(), "failing on purpose") {
		t.Errorf("apply -v: the failing command's stderr is not shown (so the check below is weak):\n%s", res.stdout)
	}
	t.Logf("temp files on s1 during a command:\n%s", tempModes)
	if !strings.Contains(tempModes, "drwx------") {
		t.Errorf("no private directory of the persistent shell found on s1 during a command: the mode check proves nothing")
	}
	// Every temp directory is private, and every file in it 0600.
	if !strings.Contains(tempModes, "-rw-------") {
		t.Errorf("no file of the persistent shell found on s1 during a command: the mode check proves little")
	}
	for _, line := range strings.Split(strings.TrimSpace(tempModes), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] != "drwx------" && f[0] != "-rw-------" {
			t.Errorf("temp path %s on s1 has mode %s; want drwx------ or -rw-------", f[1], f[0])
		}
	}
	if left := listModes(t, filepath.Join(s1.Upper, "tmp")); left != "" {
		t.Errorf("temp files left on s1 after the run:\n%s", left)
	}

	// A sensitive file that changes on the host: apply --json shows no diff.
	if out, err := s1.Exec(ctx, "echo "+otherText+"-changed > /srv/sec/key"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	code, out, errOut = opsmop(t, env, "apply", policy, "-i", inv, "--json")
	record("apply --json", code, out, errOut)
	if !strings.Contains(out, `"resource":"file[/srv/sec/key]"`) || !strings.Contains(out, `"sensitive":true`) {
		t.Errorf("apply --json: no event for the changed sensitive file:\n%s", out)
	}
	// The report page of that stream.
	streamFile, reportFile := filepath.Join(dir, "apply.json"), filepath.Join(dir, "report.html")
	if err := os.WriteFile(streamFile, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = opsmop(t, env, "report", streamFile, "-o", reportFile)
	page, err := os.ReadFile(reportFile)
	if code != 0 || err != nil || !strings.Contains(string(page), "file[/srv/sec/key]") {
		t.Errorf("report: exit %d, %v; want the page, with the sensitive file's change:\n%s%s", code, err, out, errOut)
	}
	record("report", code, out, errOut)
	record("the report page", 0, string(page), "")
	for _, args := range [][]string{{"inventory", "-i", inv, "--host", "s1"}, {"inventory", "-i", inv, "--host", "s2"}, {"inventory", "-i", inv, "--json"}} {
		code, out, errOut = opsmop(t, env, args...)
		record(strings.Join(args, " "), code, out, errOut)
	}
	if !strings.Contains(outputs[len(outputs)-2], "opsmop_sudo_password = \"<redacted>\"") {
		t.Errorf("inventory --host s2 does not show the password as <redacted>:\n%s", outputs[len(outputs)-2])
	}

	// Everything opsmop printed, the host's processes, ~/.opsmop and the
	// host's files outside the target.
	var opsmopFiles strings.Builder
	err = filepath.Walk(filepath.Join(env.Home, ".opsmop"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		want := os.FileMode(0o600)
		if fi.IsDir() {
			want = 0o700
		}
		if p != filepath.Join(env.Home, ".opsmop", "defaults.toml") && fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v; want %v", p, fi.Mode().Perm(), want)
		}
		if !fi.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			opsmopFiles.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Copies of the content on s1: every file the runs wrote is in the
	// host's own layer.
	var hostFiles strings.Builder
	err = filepath.Walk(s1.Upper, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !fi.Mode().IsRegular() || p == filepath.Join(s1.Upper, "srv/sec/key") {
			return err
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(content)) {
			fmt.Fprintf(&hostFiles, "%s\n", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	secDir, _ := s1.Exec(ctx, "ls -A /srv/sec")
	places := map[string]string{
		"opsmop output":                    strings.Join(outputs, "\n"),
		"argv of the processes on s1":      strings.Join(argv, "\n"),
		"files under ~/.opsmop":            opsmopFiles.String(),
		"files on s1 (other than the key)": hostFiles.String(),
	}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("secret %q appears in %s", s, where)
			}
		}
	}
	if got := strings.TrimSpace(string(secDir)); got != "key\nplain" {
		t.Errorf("s1: /srv/sec holds %q; want only key and plain", got)
	}
	if got, _ := hostFile(t, s1, "/srv/sec/key"); got != content+"\n" {
		t.Errorf("s1: /srv/sec/key = %q; want the sensitive content (the runs did their job)", got)
	}
	if t.Failed() {
		t.Logf("outputs:\n%s", strings.Join(outputs, "\n"))
	}
}

// listModes lists every path under dir (not dir itself) as "MODE PATH"
// lines, ls -l style modes; "" when dir is empty or missing.
func listModes(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	_ = filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return nil
		}
		fmt.Fprintf(&b, "%s %s\n", fi.Mode(), strings.TrimPrefix(p, dir))
		return nil
	})
	return b.String()
}
