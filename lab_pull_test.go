package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

// pullPolicy is the policy pushed to the lab's bare repository: the web
// role (p1 and p2) writes a directory and a template, the p2 role a file
// only p2 gets; extra is more TOML appended (more roles or resources).
func pullPolicy(extra string) string {
	return `inventory = "inventory.toml"

[[roles]]
name = "web"
groups = "web"
  [[roles.resources]]
  type = "directory"
  path = "/srv/pulled"
  [[roles.resources]]
  type = "template"
  src = "templates/motd.tmpl"
  path = "/srv/pulled/motd"
  mode = "0644"

[[roles]]
name = "p2only"
hosts = "p2"
  [[roles.resources]]
  type = "file"
  path = "/srv/pulled/p2-only"
  content = "p2\n"
` + extra
}

// pullInventory lists p1 and p2 in group web, with the SSH settings a
// push would use: pull ignores them (local connection).
const pullInventory = `[groups.web.hosts]
"p1" = "opsmop_host=192.0.2.1"
"p2" = "opsmop_host=192.0.2.2"
`

// TestLabPull runs opsmop pull inside a lab host against a bare
// repository on that host: the first pull applies only the host's roles
// and writes its logs (0600, in a 0700 directory) and a recap line; the
// second changes nothing; a commit that changes the policy is applied;
// broken commits (an unknown key next to a valid change, a TOML syntax
// error) exit 3, change nothing and are named in the recap with the last
// good commit; the fix applies; --check changes nothing; --name chooses
// another inventory host, and a name not in the inventory exits 3.
func TestLabPull(t *testing.T) {
	binDir, err := os.MkdirTemp("/tmp", "opsmop-pull-bin-") // the hosts see this machine's /tmp
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(binDir) })
	bin := filepath.Join(binDir, "opsmop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	l := labtest.Start(t, lab.Config{Subnet: 66, Hosts: []lab.HostSpec{{Name: "p1", Group: "web"}, {Name: "p2", Group: "web"}}})
	ctx := context.Background()
	p1 := l.Host("p1")
	sh := func(script string) string {
		t.Helper()
		out, err := p1.Exec(ctx, script)
		if err != nil {
			t.Fatalf("p1: %s: %v\n%s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	sh("git init -q --bare -b main /srv/repo.git && git init -q -b main /srv/work && git -C /srv/work config user.name t && git -C /srv/work config user.email t@t")
	// commit writes files into /srv/work, commits, pushes to main and
	// returns the commit's id.
	commit := func(files map[string]string) string {
		t.Helper()
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		var b strings.Builder
		b.WriteString("set -e; cd /srv/work\n")
		for _, n := range names {
			fmt.Fprintf(&b, "mkdir -p \"$(dirname %s)\"\ncat > %s <<'OPSMOP_EOF'\n%sOPSMOP_EOF\n", n, n, files[n])
		}
		b.WriteString("git add -A && git commit -qm change && git push -q /srv/repo.git HEAD:main && git rev-parse HEAD\n")
		return sh(b.String())
	}
	// pull runs opsmop pull inside p1 and returns its exit code and
	// output.
	pull := func(args ...string) (int, string) {
		t.Helper()
		q := make([]string, len(args))
		for i, a := range args {
			q[i] = "'" + a + "'"
		}
		out := sh("cd / && " + bin + " pull --repo /srv/repo.git " + strings.Join(q, " ") + " site.toml 2>&1; echo \"rc=$?\"")
		i := strings.LastIndex(out, "rc=")
		code, err := strconv.Atoi(out[i+3:])
		if err != nil {
			t.Fatalf("pull %q: no exit code in %q", args, out)
		}
		return code, out[:i]
	}
	// lastRecap is the last line of recap.log.
	lastRecap := func() string {
		t.Helper()
		return sh("tail -n 1 /var/log/opsmop/pull/recap.log")
	}
	motd := func() string { return sh("cat /srv/pulled/motd 2>&1 || true") }
	jsonLogs := func() int { return len(strings.Fields(sh("ls /var/log/opsmop/pull/ | grep '\\.json$' || true"))) }
	want := func(what, got string, res ...string) {
		t.Helper()
		for _, r := range res {
			if !regexp.MustCompile(r).MatchString(got) {
				t.Errorf("%s: got %q; want it to match %q", what, got, r)
			}
		}
	}

	c1 := commit(map[string]string{
		"site.toml":           pullPolicy(""),
		"inventory.toml":      pullInventory,
		"templates/motd.tmpl": "v1 on {{ .host.name }}\n",
	})
	code, out := pull()
	if code != 0 {
		t.Fatalf("first pull: exit %d; want 0\n%s", code, out)
	}
	want("first pull output", out, `commit `+c1[:12]+`, host p1, apply`, `p1 +ok=0 changed=2 failed=0`)
	if got := motd(); got != "v1 on p1" {
		t.Errorf("motd: got %q; want %q", got, "v1 on p1")
	}
	if got := sh("test -e /srv/pulled/p2-only && echo present || echo absent"); got != "absent" {
		t.Errorf("p2's file on p1: got %s; want absent (only p1's roles run)", got)
	}
	want("log permissions", sh("stat -c '%a %n' /var/log/opsmop/pull /var/log/opsmop/pull/recap.log /var/log/opsmop/pull/*.json"),
		`(?m)^700 /var/log/opsmop/pull$`, `(?m)^600 /var/log/opsmop/pull/recap.log$`, `(?m)^600 /var/log/opsmop/pull/[0-9T.]+Z-`+c1[:12]+`\.json$`)
	want("first JSON log", sh("cat /var/log/opsmop/pull/*.json"), `"type":"run_start"`, `"type":"summary"`, `/srv/pulled/motd`)
	want("first recap", lastRecap(), ` commit=`+c1+` host=p1 mode=apply exit=0 ok=0 changed=2 `, `last_good=`+c1)

	code, out = pull()
	if code != 0 {
		t.Fatalf("second pull: exit %d; want 0\n%s", code, out)
	}
	want("second recap", lastRecap(), ` commit=`+c1+` host=p1 mode=apply exit=0 ok=2 changed=0 failed=0 `)

	c2 := commit(map[string]string{"site.toml": pullPolicy(`
[[roles]]
name = "extra"
groups = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/pulled/new"
  content = "new\n"
`)})
	code, out = pull()
	if code != 0 || sh("cat /srv/pulled/new") != "new" {
		t.Fatalf("pull of a new resource: exit %d, /srv/pulled/new %q; want 0 and new\n%s", code, sh("cat /srv/pulled/new 2>&1 || true"), out)
	}
	want("third recap", lastRecap(), ` commit=`+c2+` .* changed=1 `, `last_good=`+c2)

	// Broken: a valid change to the template next to an unknown key.
	c3 := commit(map[string]string{
		"templates/motd.tmpl": "v2 on {{ .host.name }}\n",
		"site.toml": pullPolicy(`
[[roles]]
name = "extra"
groups = "web"
  [[roles.resources]]
  type = "file"
  path = "/srv/pulled/new"
  content = "new\n"
  bogus = 1
`),
	})
	logsBefore := jsonLogs()
	code, out = pull()
	if code != exitInvalid {
		t.Fatalf("pull of an unknown key: exit %d; want 3\n%s", code, out)
	}
	want("unknown key output", out, `commit `+c3[:12]+` is invalid, nothing was run \(last good commit: `+c2+`\)`, `bogus`)
	want("unknown key recap", lastRecap(), ` commit=`+c3+` host=- mode=apply exit=3 last_good=`+c2+` error=".*bogus`)
	if got := motd(); got != "v1 on p1" {
		t.Errorf("motd after a broken commit: got %q; want it unchanged, v1 on p1", got)
	}
	if got := jsonLogs(); got != logsBefore {
		t.Errorf("JSON logs after a broken commit: got %d; want %d (no run)", got, logsBefore)
	}
	// Broken: TOML syntax.
	c4 := commit(map[string]string{"site.toml": pullPolicy("[[roles]\nname = \"x\"\n")})
	code, out = pull()
	if code != exitInvalid {
		t.Fatalf("pull of a syntax error: exit %d; want 3\n%s", code, out)
	}
	want("syntax error recap", lastRecap(), ` commit=`+c4+` .*exit=3 last_good=`+c2+` `)
	if got := motd(); got != "v1 on p1" {
		t.Errorf("motd after a syntax error: got %q; want it unchanged, v1 on p1", got)
	}
	if got := sh("git -C /var/lib/opsmop/pull/srv-repo-* rev-parse HEAD"); got != c4 {
		t.Errorf("checkout after a broken commit: got %s; want it at the broken commit %s", got, c4)
	}

	// The fix applies, the template change with it.
	c5 := commit(map[string]string{"site.toml": pullPolicy("")})
	code, out = pull()
	if code != 0 || motd() != "v2 on p1" {
		t.Fatalf("pull of the fix: exit %d, motd %q; want 0 and v2 on p1\n%s", code, motd(), out)
	}
	want("fix recap", lastRecap(), ` commit=`+c5+` .*exit=0 .*changed=1 `, `last_good=`+c5)

	// --check changes nothing and records no last good commit.
	c6 := commit(map[string]string{"templates/motd.tmpl": "v3 on {{ .host.name }}\n"})
	code, out = pull("--check")
	if code != 0 || motd() != "v2 on p1" {
		t.Fatalf("pull --check: exit %d, motd %q; want 0 and v2 on p1 unchanged\n%s", code, motd(), out)
	}
	want("check output", out, `v3 on p1`)
	want("check recap", lastRecap(), ` commit=`+c6+` host=p1 mode=check exit=0 .*changed=1 `, `last_good=`+c5)

	// --name chooses p2's roles (checked here, on p1: nothing changes).
	code, out = pull("--check", "--name", "p2")
	if code != 0 {
		t.Fatalf("pull --check --name p2: exit %d; want 0\n%s", code, out)
	}
	want("--name p2 output", out, `host p2, check`, `/srv/pulled/p2-only`)
	if got := sh("test -e /srv/pulled/p2-only && echo present || echo absent"); got != "absent" {
		t.Errorf("p2's file after --check: got %s; want absent", got)
	}
	code, out = pull("--name", "p9")
	if code != exitInvalid {
		t.Fatalf("pull --name p9: exit %d; want 3\n%s", code, out)
	}
	want("--name p9 output", out, `--name p9 is not a host of the policy's inventory`)
	want("--name p9 recap", lastRecap(), ` commit=`+c6+` host=- mode=apply exit=3 `)
	if got := motd(); got != "v2 on p1" {
		t.Errorf("motd after --name p9: got %q; want v2 on p1", got)
	}
}
