package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// hostStarts returns the hosts of the host_start events in --json output,
// in order.
func hostStarts(t *testing.T, out string) []string {
	t.Helper()
	var hosts []string
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e struct{ Type, Host string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("--json line %q: %v", sc.Text(), err)
		}
		if e.Type == "host_start" {
			hosts = append(hosts, e.Host)
		}
	}
	return hosts
}

// TestLabFleet runs a 10-host role in batches of 3 with one host made to
// fail: the batches run in order and the failure threshold stops the role;
// --retry-failed then runs only the failed host; `opsmop run` prints each
// host's name; --tags selects.
func TestLabFleet(t *testing.T) {
	var specs []lab.HostSpec
	for i := 1; i <= 10; i++ {
		specs = append(specs, lab.HostSpec{Name: fmt.Sprintf("web%02d", i), Group: "web"})
	}
	l := labtest.Start(t, lab.Config{Subnet: 42, Hosts: specs})
	env := labEnv(t, l, nil)
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[vars]
fixed = false
[[roles]]
name = "rolling"
groups = "web"
serial = 3
max_fail_percentage = 20
  [[roles.resources]]
  type = "file"
  path = "/srv/deployed"
  content = "v1\n"
  tags = ["conf"]
  [[roles.resources]]
  type = "assert"
  that = "host.name != 'web05' || fixed"
  msg = "web05 is broken"
`})
	policy := filepath.Join(dir, "site.toml")

	code, out, errOut := opsmop(t, env, "apply", policy, "-i", l.Inventory, "--json")
	if code != exitFailed {
		t.Fatalf("apply: exit %d; want %d\n%s\n%s", code, exitFailed, out, errOut)
	}
	starts := hostStarts(t, out)
	batch := func(names []string) string {
		s := append([]string(nil), names...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		return strings.Join(s, " ")
	}
	if len(starts) != 6 || batch(starts[:3]) != "web01 web02 web03" || batch(starts[3:]) != "web04 web05 web06" {
		t.Fatalf("hosts started: got %v; want batch web01-03 then web04-06, then the role stopped", starts)
	}
	if !strings.Contains(out, `max_fail_percentage 20%`) || !strings.Contains(out, "not run: web07, web08, web09, web10") {
		t.Errorf("the recap does not say why the role stopped:\n%s", out)
	}
	lf, err := os.ReadFile(lastFailedPath(env.Home, policy))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(lastFailedPath(env.Home, policy)); fi.Mode().Perm() != 0o600 {
		t.Errorf("last-failed mode: got %v; want 0600", fi.Mode().Perm())
	}
	if got := strings.Fields(strings.SplitN(string(lf), "\n", 2)[1]); strings.Join(got, " ") != "web05" {
		t.Errorf("last-failed: got %q; want web05 only", got)
	}

	code, out, errOut = opsmop(t, env, "apply", policy, "-i", l.Inventory, "--json", "--retry-failed", "-e", "fixed=true")
	if code != exitOK {
		t.Fatalf("apply --retry-failed: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := hostStarts(t, out); strings.Join(got, " ") != "web05" {
		t.Errorf("--retry-failed ran %v; want only web05", got)
	}

	code, out, errOut = opsmop(t, env, "run", "-i", l.Inventory, "--limit", "web*", "--", "uname", "-n")
	if code != exitOK {
		t.Fatalf("run: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, s := range specs {
		if !strings.Contains(out, s.Name+" | "+s.Name+"\n") {
			t.Errorf("run output lacks %q:\n%s", s.Name+" | "+s.Name, out)
		}
	}

	// Tags: only the tagged file resource is checked.
	code, out, _ = opsmop(t, env, "check", policy, "-i", l.Inventory, "--tags", "conf", "--limit", "web07", "-v")
	if code != exitOK || !strings.Contains(out, "file[/srv/deployed]: would create") || strings.Contains(out, "assert[") {
		t.Errorf("check --tags conf: exit %d; want only the tagged resource:\n%s", code, out)
	}
	code, out, _ = opsmop(t, env, "check", policy, "-i", l.Inventory, "--skip-tags", "conf", "--limit", "web07", "-v")
	if code != exitOK || strings.Contains(out, "file[/srv/deployed]") || !strings.Contains(out, "assert[") {
		t.Errorf("check --skip-tags conf: exit %d; want the tagged resource skipped:\n%s", code, out)
	}
}

// peakRSS returns this process's peak resident set size in KiB.
func peakRSS(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatal("no VmHWM in /proc/self/status")
	}
	var kb int
	fmt.Sscan(string(m[1]), &kb)
	return kb
}

// TestLabFiftyHosts applies a small policy to 50 hosts at --forks 50,
// then checks it again: everything converges, no goroutine is left
// behind, and the wall time and peak memory are logged.
func TestLabFiftyHosts(t *testing.T) {
	var specs []lab.HostSpec
	for i := 1; i <= 50; i++ {
		specs = append(specs, lab.HostSpec{Name: fmt.Sprintf("node%02d", i), Group: "fleet"})
	}
	l := labtest.Start(t, lab.Config{Subnet: 43, Hosts: specs})
	env := labEnv(t, l, nil)
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "fleet"
groups = "fleet"
  [[roles.resources]]
  type = "directory"
  path = "/srv/fleet"
  [[roles.resources]]
  type = "file"
  path = "/srv/fleet/id"
  content = "{{ .host.name }}\n"
  [[roles.resources]]
  type = "file"
  path = "/srv/fleet/motd"
  content = "fleet member\n"
  [[roles.resources]]
  type = "line"
  path = "/etc/hosts"
  line = "10.1.1.1 fleet.internal"
  [[roles.resources]]
  type = "shell"
  cmd = "touch /srv/fleet/once"
  creates = "/srv/fleet/once"
`})
	policy := filepath.Join(dir, "site.toml")
	runtime.GC()
	baseline := runtime.NumGoroutine()
	rss0 := peakRSS(t)

	start := time.Now()
	code, out, errOut := opsmop(t, env, "apply", policy, "-i", l.Inventory, "--forks", "50")
	applyTime := time.Since(start)
	if code != exitOK || !regexp.MustCompile(`TOTAL +hosts=50 ok=0 changed=250 failed=0`).MatchString(out) {
		t.Fatalf("apply: exit %d; want 250 changes on 50 hosts\n%s\n%s", code, tail(out, 20), errOut)
	}
	start = time.Now()
	code, out, errOut = opsmop(t, env, "check", policy, "-i", l.Inventory, "--forks", "50", "--detailed-exitcode")
	checkTime := time.Since(start)
	if code != exitOK || !regexp.MustCompile(`TOTAL +hosts=50 ok=250 pending=0 failed=0`).MatchString(out) {
		t.Fatalf("check after apply: exit %d; want nothing pending\n%s\n%s", code, tail(out, 20), errOut)
	}
	rss := peakRSS(t)

	// Every connection is closed when a run returns: the goroutine count
	// comes back to where it was.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline+2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > baseline+2 {
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d after the runs; want the baseline %d (leak):\n%s", n, baseline, buf[:runtime.Stack(buf, true)])
	}
	t.Logf("50 hosts, --forks 50: apply %.2fs, no-op check %.2fs; peak RSS %d MiB (%.1f MiB above the test's start, %.2f MiB per host)",
		applyTime.Seconds(), checkTime.Seconds(), rss/1024, float64(rss-rss0)/1024, float64(rss-rss0)/1024/50)
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
