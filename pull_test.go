package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/testutil"
)

// parsePull runs pull's flag layer on args (flags first, as reorderArgs
// leaves them) and returns its options or error.
func parsePull(t *testing.T, args ...string) (PullOptions, error) {
	t.Helper()
	var got PullOptions
	var perr error
	app := &cli.App{
		Writer: io.Discard, ErrWriter: io.Discard,
		Commands: []*cli.Command{{Name: "pull", Flags: pullFlags(), Action: func(c *cli.Context) error {
			got, perr = pullOptions(c)
			return nil
		}}},
	}
	if err := app.Run(append([]string{"opsmop", "pull"}, args...)); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return got, perr
}

func TestPullOptions(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ok := []struct {
		name string
		args []string
		want PullOptions
	}{
		{"url and policy", []string{"--repo", "https://git.example.com/ops/site.git", "site.toml"},
			PullOptions{Repo: "https://git.example.com/ops/site.git", Policy: "site.toml"}},
		{"every flag", []string{"--repo", "/srv/repo.git", "--ref", "release/1.2", "--dir", "/tmp/co", "--name", "web1", "--log-dir", "/tmp/logs", "--check", "policies/site.yaml"},
			PullOptions{Repo: "/srv/repo.git", Ref: "release/1.2", Dir: "/tmp/co", Name: "web1", LogDir: "/tmp/logs", Check: true, Policy: "policies/site.yaml"}},
		{"relative repo path made absolute", []string{"--repo", "repo.git", "site.toml"},
			PullOptions{Repo: filepath.Join(cwd, "repo.git"), Policy: "site.toml"}},
		{"scp-like kept", []string{"--repo", "git@github.com:ops/site.git", "site.toml"},
			PullOptions{Repo: "git@github.com:ops/site.git", Policy: "site.toml"}},
	}
	for _, c := range ok {
		t.Run(c.name, func(t *testing.T) {
			got, err := parsePull(t, c.args...)
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
	bad := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no repo", []string{"site.toml"}, "missing --repo"},
		{"no policy", []string{"--repo", "/srv/r.git"}, "missing POLICY"},
		{"two policies", []string{"--repo", "/srv/r.git", "a.toml", "b.toml"}, "unexpected arguments"},
		{"not a policy", []string{"--repo", "/srv/r.git", "inventory.ini"}, "not a policy file"},
		{"absolute policy", []string{"--repo", "/srv/r.git", "/etc/site.toml"}, "is absolute"},
		{"policy outside", []string{"--repo", "/srv/r.git", "../site.toml"}, "outside the repository"},
		{"policy outside deeper", []string{"--repo", "/srv/r.git", "a/../../site.toml"}, "outside the repository"},
		{"repo option", []string{"--repo", "--upload-pack=x", "site.toml"}, "starts with -"},
		{"transport helper", []string{"--repo", "ext::sh -c id", "site.toml"}, "transport helper"},
		{"control char", []string{"--repo", "/srv/r.git\nx", "site.toml"}, "control character"},
		{"bad scheme", []string{"--repo", "gopher://h/r.git", "site.toml"}, "unknown URL scheme"},
		{"ref dots", []string{"--repo", "/srv/r.git", "--ref", "a..b", "site.toml"}, "contains .."},
		{"ref option", []string{"--repo", "/srv/r.git", "--ref", "-x", "site.toml"}, "starts with -"},
		{"ref expression", []string{"--repo", "/srv/r.git", "--ref", "main~1", "site.toml"}, "~ ^"},
		{"ref HEAD", []string{"--repo", "/srv/r.git", "--ref", "HEAD", "site.toml"}, "leave --ref out"},
		{"ref space", []string{"--repo", "/srv/r.git", "--ref", "a b", "site.toml"}, "space"},
		{"name space", []string{"--repo", "/srv/r.git", "--name", "a b", "site.toml"}, "--name"},
		{"password never shown", []string{"--repo", "https://deploy:hunter2@git.example.com/r.git", "--ref", "x..y", "site.toml"}, "contains .."},
		{"password never shown in a bad URL", []string{"--repo", "gopher://deploy:hunter2@h/r.git", "site.toml"}, "deploy:xxxxx@"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			got, err := parsePull(t, c.args...)
			if err == nil {
				t.Fatalf("got %+v, nil; want an error with %q", got, c.want)
			}
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitInvalid {
				t.Errorf("got error %v; want an exit %d error", err, exitInvalid)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %q; want it to contain %q", err, c.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("got %q; want the password left out", err)
			}
		})
	}
}

func TestPullDirName(t *testing.T) {
	safe := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	cases := []struct {
		repo, prefix string
	}{
		{"https://git.example.com/ops/site.git", "git.example.com-ops-site-"},
		{"https://deploy:hunter2@git.example.com/ops/site.git", "git.example.com-ops-site-"},
		{"ssh://git@git.example.com:2222/ops/site.git", "git.example.com-2222-ops-site-"},
		{"git@github.com:ops/site.git", "github.com-ops-site-"},
		{"/srv/repo.git", "srv-repo-"},
		{"/srv/../etc/my repo/", "etc-my-repo-"},
		{"/..", "repo-"},
		{"/srv/a..b/.hidden/", "srv-a-b-hidden-"},
		{"file:///srv/repo.git?x=1#frag", "srv-repo-"},
		{"https://h/" + strings.Repeat("x", 200), "h-" + strings.Repeat("x", 62) + "-"},
	}
	for _, c := range cases {
		t.Run(c.repo, func(t *testing.T) {
			got := pullDirName(c.repo)
			if !strings.HasPrefix(got, c.prefix) || !regexp.MustCompile(`-[0-9a-f]{8}$`).MatchString(got) {
				t.Errorf("got %q; want %q followed by 8 hex digits", got, c.prefix)
			}
			if !safe.MatchString(got) || strings.Contains(got, "..") || len(got) > 64+9 {
				t.Errorf("got %q; want safe characters only, no .., at most 73 characters", got)
			}
			for _, secret := range []string{"hunter2", "deploy"} {
				if strings.Contains(got, secret) {
					t.Errorf("got %q; want no %q (credentials) in it", got, secret)
				}
			}
		})
	}
	same := [][2]string{
		{"https://git.example.com/ops/site.git", "https://deploy:hunter2@git.example.com/ops/site.git"},
		{"git@github.com:ops/site.git", "github.com:ops/site.git"},
	}
	for _, p := range same {
		if a, b := pullDirName(p[0]), pullDirName(p[1]); a != b {
			t.Errorf("pullDirName(%q) = %q, pullDirName(%q) = %q; want the same directory", p[0], a, p[1], b)
		}
	}
	differ := [][2]string{{"/srv/a/b", "/srv/a-b"}, {"https://h/x.git", "https://g/x.git"}}
	for _, p := range differ {
		if a, b := pullDirName(p[0]), pullDirName(p[1]); a == b {
			t.Errorf("pullDirName(%q) = pullDirName(%q) = %q; want different directories", p[0], p[1], a)
		}
	}
	if got, want := pullDefaultDir("/srv/repo.git", 0, "/home/x"), filepath.Join(pullRootDir, pullDirName("/srv/repo.git")); got != want {
		t.Errorf("pullDefaultDir as root: got %q; want %q", got, want)
	}
	if got, want := pullDefaultDir("/srv/repo.git", 1000, "/home/x"), filepath.Join("/home/x/.opsmop/pull", pullDirName("/srv/repo.git")); got != want {
		t.Errorf("pullDefaultDir as a user: got %q; want %q", got, want)
	}
	if got := pullDefaultLogDir(0, "/home/x"); got != "/var/log/opsmop/pull" {
		t.Errorf("pullDefaultLogDir as root: got %q; want /var/log/opsmop/pull", got)
	}
	if got := pullDefaultLogDir(1000, "/home/x"); got != "/home/x/.opsmop/pull-logs" {
		t.Errorf("pullDefaultLogDir as a user: got %q; want /home/x/.opsmop/pull-logs", got)
	}
}

func TestPullHostName(t *testing.T) {
	inv := map[string]bool{"web1": true, "db1.example.com": true, "localhost": true}
	has := func(n string) bool { return inv[n] }
	cases := []struct {
		name, flag, hostname string
		implicit             bool
		want, err            string
	}{
		{"flag", "db1.example.com", "web1", false, "db1.example.com", ""},
		{"flag not in inventory", "web9", "web1", false, "", "--name web9 is not a host"},
		{"hostname", "", "web1", false, "web1", ""},
		{"full hostname first", "", "db1.example.com", false, "db1.example.com", ""},
		{"short hostname", "", "web1.example.com", false, "web1", ""},
		{"not in inventory", "", "app7.example.com", false, "", `this host (app7.example.com) is not in the policy's inventory (looked up neither as "app7.example.com" nor as "app7")`},
		{"not in inventory, short", "", "app7", false, "", `looked up as "app7"): give --name`},
		{"implicit inventory", "", "app7", true, "localhost", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pullHostName(c.flag, c.hostname, c.implicit, has)
			switch {
			case c.err == "" && (err != nil || got != c.want):
				t.Errorf("got %q, %v; want %q", got, err, c.want)
			case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
				t.Errorf("got %q, %v; want an error with %q", got, err, c.err)
			}
		})
	}
}

func TestPullRemote(t *testing.T) {
	cases := []struct {
		repo, remote string
		creds        pullCreds
	}{
		{"https://deploy:hunter2@git.example.com/r.git", "https://deploy@git.example.com/r.git", pullCreds{"deploy", "hunter2"}},
		{"https://:tok%2Fen@git.example.com/r.git", "https://git.example.com/r.git", pullCreds{"", "tok/en"}},
		{"https://git.example.com/r.git", "https://git.example.com/r.git", pullCreds{}},
		{"ssh://git@h/r.git", "ssh://git@h/r.git", pullCreds{}},
		{"/srv/r.git", "/srv/r.git", pullCreds{}},
	}
	for _, c := range cases {
		t.Run(c.repo, func(t *testing.T) {
			remote, creds := pullRemote(c.repo)
			if remote != c.remote || creds != c.creds {
				t.Errorf("got %q, %+v; want %q, %+v", remote, creds, c.remote, c.creds)
			}
		})
	}
	c := pullCreds{User: "u", Password: "p/w"}
	got := c.redact("fatal: https://u:p%2Fw@h/ p/w https://x:other@h/")
	if strings.Contains(got, "p/w") || strings.Contains(got, "p%2Fw") || strings.Contains(got, "other") {
		t.Errorf("redact: got %q; want every password replaced", got)
	}
}

func TestPullRecapLine(t *testing.T) {
	when := time.Date(2026, 12, 6, 3, 4, 5, 0, time.UTC)
	got := pullRecap{when: when, commit: "abc", host: "p1", mode: "apply", code: 0,
		total: &engine.Stats{OK: 3, Changed: 1}, lastGood: "abc", log: "/var/log/x/20261206T030405.000Z-abc.json"}.String()
	want := "2026-12-06T03:04:05Z commit=abc host=p1 mode=apply exit=0 ok=3 changed=1 failed=0 skipped=0 unreachable=0 ignored=0 last_good=abc log=20261206T030405.000Z-abc.json"
	if got != want {
		t.Errorf("got  %q;\nwant %q", got, want)
	}
	got = pullRecap{when: when, mode: "check", code: 1, err: "git fetch:\nfatal: \"x\""}.String()
	want = `2026-12-06T03:04:05Z commit=- host=- mode=check exit=1 last_good=- error="git fetch: fatal: \"x\""`
	if got != want {
		t.Errorf("got  %q;\nwant %q", got, want)
	}
}

func TestPullPrune(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"recap.log": "", "notes.json": "", "20990101T000000.000Z-zzz.json": ""}
	for i := range 55 {
		files[fmt.Sprintf("20261206T0300%02d.000Z-abc.json", i)] = ""
	}
	testutil.WriteTree(t, dir, files)
	if err := pullPrune(dir, 50); err != nil {
		t.Fatal(err)
	}
	for i := range 55 {
		_, err := os.Stat(filepath.Join(dir, fmt.Sprintf("20261206T0300%02d.000Z-abc.json", i)))
		if kept := err == nil; kept != (i >= 5) {
			t.Errorf("log %d kept: got %v; want %v", i, kept, i >= 5)
		}
	}
	for _, f := range []string{"recap.log", "notes.json", "20990101T000000.000Z-zzz.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s: got %v; want it left alone", f, err)
		}
	}
}

// TestPullExamples keeps examples/pull from rotting: the opsmop command
// of the systemd service and of the cron line parse with pull's flags
// (as the docs sweep checks the docs' command lines) and give valid
// options; the timer runs every 30 minutes with a random delay; the cron
// line sleeps at random and takes a lock.
func TestPullExamples(t *testing.T) {
	app := sweepApp(t)
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.Name == "pull" {
			cmd = c
		}
	}
	if cmd == nil {
		t.Fatal("the app has no pull command")
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("examples", "pull", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	// commandOf returns the words of the opsmop command in a shell line
	// (after "&&", flock and the like); "" when there is none.
	commandOf := func(line string) []string {
		for _, part := range strings.Split(line, "&&") {
			words, err := sweepShellWords(strings.TrimSpace(part))
			if err != nil {
				t.Fatalf("%q: %v", part, err)
			}
			for i, w := range words {
				if filepath.Base(w) == "opsmop" {
					return append([]string{"opsmop"}, words[i+1:]...)
				}
			}
		}
		return nil
	}
	var lines [][]string
	sc := bufio.NewScanner(strings.NewReader(read("opsmop-pull.service")))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "ExecStart="); ok {
			lines = append(lines, commandOf(v))
		}
	}
	cron := 0
	sc = bufio.NewScanner(strings.NewReader(read("crontab")))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") || regexp.MustCompile(`^[A-Z_]+=`).MatchString(l) {
			continue
		}
		f := strings.Fields(l)
		if len(f) < 7 || f[5] != "root" {
			t.Fatalf("crontab line %q: want 5 time fields, the user root and a command", l)
		}
		if !strings.Contains(l, "sleep $(shuf") || !strings.Contains(l, "flock -n") {
			t.Errorf("crontab line %q: want a random sleep and flock -n", l)
		}
		lines = append(lines, commandOf(strings.Join(f[6:], " ")))
		cron++
	}
	if len(lines) != 2 || cron != 1 {
		t.Fatalf("got %d opsmop command lines (%d from crontab); want one ExecStart and one cron line", len(lines), cron)
	}
	for _, words := range lines {
		if len(words) < 2 || words[1] != "pull" {
			t.Errorf("command %q: want opsmop pull", words)
			continue
		}
		for _, p := range sweepCheckLine(app, words, true) {
			t.Errorf("command %q: %s", words, p)
		}
		args := reorderArgs(app, words)
		if _, err := parsePull(t, args[2:]...); err != nil {
			t.Errorf("command %q: %v", words, err)
		}
	}
	timer := read("opsmop-pull.timer")
	for _, want := range []string{"OnUnitActiveSec=30min", "RandomizedDelaySec=", "WantedBy=timers.target"} {
		if !strings.Contains(timer, want) {
			t.Errorf("opsmop-pull.timer: want %q in it", want)
		}
	}
}

// pullRepo is a bare repository with a work tree to commit to, for the
// in-process tests; git must be installed.
type pullRepo struct {
	t          *testing.T
	bare, work string
}

// newPullRepo creates it under dir.
func newPullRepo(t *testing.T, dir string) *pullRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git is not installed: %v", err)
	}
	r := &pullRepo{t: t, bare: filepath.Join(dir, "repo.git"), work: filepath.Join(dir, "work")}
	r.git("", "init", "-q", "--bare", "-b", "main", r.bare)
	r.git("", "init", "-q", "-b", "main", r.work)
	return r
}

func (r *pullRepo) git(dir string, args ...string) {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
	if out, err := cmd.CombinedOutput(); err != nil {
		r.t.Fatalf("git %q: %v\n%s", args, err, out)
	}
}

// commit writes files into the work tree, commits and pushes them to
// main.
func (r *pullRepo) commit(files map[string]string) {
	r.t.Helper()
	testutil.WriteTree(r.t, r.work, files)
	r.git(r.work, "add", "-A")
	r.git(r.work, "commit", "-qm", "change")
	r.git(r.work, "push", "-q", r.bare, "HEAD:main")
}

// TestPullErrors runs pull in-process against a local bare repository
// (no lab): the cases that stop before anything is applied, with their
// exit codes and recap lines.
func TestPullErrors(t *testing.T) {
	dir := t.TempDir()
	r := newPullRepo(t, dir)
	out := filepath.Join(dir, "out")
	r.commit(map[string]string{
		"site.toml":      "inventory = \"inventory.toml\"\n[[roles]]\nname = \"a\"\nhosts = \"h1\"\n  [[roles.resources]]\n  type = \"file\"\n  path = \"" + out + "\"\n  content = \"x\\n\"\n",
		"inventory.toml": "[groups.all]\nhosts = [\"h1\", \"h2\"]\n",
	})
	env := Env{Home: t.TempDir(), EtcDefaults: filepath.Join(dir, "none.toml"), EtcSSHConfig: filepath.Join(dir, "none"), Getenv: func(string) string { return "" }}
	logs := filepath.Join(dir, "logs")
	notGit := filepath.Join(dir, "notgit")
	testutil.WriteTree(t, notGit, map[string]string{"x": "y"})
	other := newPullRepo(t, filepath.Join(dir, "other"))
	other.commit(map[string]string{"site.toml": ""})
	otherCo := filepath.Join(dir, "otherco")
	other.git("", "clone", "-q", other.bare, otherCo)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not in inventory", []string{"--name", "h9"}, exitInvalid, "--name h9 is not a host of the policy's inventory"},
		{"unknown ref", []string{"--name", "h1", "--ref", "nope"}, exitFailed, "--ref nope is no branch, tag or commit"},
		{"missing policy file", []string{"--name", "h1", "nope.toml"}, exitInvalid, "is invalid, nothing was run"},
		{"dir not a checkout", []string{"--name", "h1", "--dir", notGit}, exitInvalid, "exists and is not a git checkout"},
		{"dir of another repo", []string{"--name", "h1", "--dir", otherCo}, exitInvalid, "is a checkout of " + other.bare + ", not of " + r.bare},
		{"unreachable repo", []string{"--name", "h1", "--repo", "https://deploy:hunter2@127.0.0.1:1/r.git", "--dir", filepath.Join(dir, "co2")}, exitFailed, "https://deploy@127.0.0.1:1/r.git"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"pull", "--repo", r.bare, "--dir", filepath.Join(dir, "co"), "--log-dir", logs}
			args = append(args, c.args...)
			if !isPolicyFile(args[len(args)-1]) {
				args = append(args, "site.toml")
			}
			code, stdout, stderr := opsmop(t, env, args...)
			if code != c.code || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q\n%s", code, stderr, c.code, c.msg, stdout)
			}
			recap, err := os.ReadFile(filepath.Join(logs, "recap.log"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(recap)), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, fmt.Sprintf(" exit=%d ", c.code)) {
				t.Errorf("recap line %q; want exit=%d", last, c.code)
			}
			if strings.Contains(stdout+stderr+string(recap), "hunter2") {
				t.Errorf("the password is shown:\n%s%s%s", stdout, stderr, recap)
			}
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("%s exists; want nothing applied", out)
			}
		})
	}
}

func TestPullLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), pullLockFile)
	unlock, err := pullLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pullLock(path); err == nil || !strings.Contains(err.Error(), "another opsmop pull is running") {
		t.Errorf("second lock: got %v; want another opsmop pull is running", err)
	}
	unlock()
	again, err := pullLock(path)
	if err != nil {
		t.Fatalf("lock after unlock: got %v; want it taken", err)
	}
	again()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file: got mode %v; want 0600", fi.Mode().Perm())
	}
}
