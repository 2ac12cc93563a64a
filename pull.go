package main

// opsmop pull: the host fetches its policy from git and applies it to
// itself through the local connection (as ansible-pull), from cron or a
// systemd timer. See docs/cli.md "pull".

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/providers"
)

// Defaults of pull's directories: for root, and (under the home
// directory) for any other user.
const (
	pullRootDir         = "/var/lib/opsmop/pull"
	pullRootLogDir      = "/var/log/opsmop/pull"
	pullUserDir         = ".opsmop/pull"
	pullUserLogDir      = ".opsmop/pull-logs"
	pullKeepLogs        = 50                  // newest .json logs kept
	pullLastGoodFile    = "opsmop-last-good"  // in the checkout's .git
	pullRecapFile       = "recap.log"         // in the log directory
	pullLockFile        = ".opsmop-pull.lock" // in the log directory
	pullLogTimeLayout   = "20060102T150405.000Z"
	pullRecapTimeLayout = "2006-01-02T15:04:05Z"
)

// PullOptions are the inputs of `opsmop pull`.
type PullOptions struct {
	// Repo is --repo: a git URL, scp-like address or local path (made
	// absolute by the flag layer).
	Repo string
	// Ref is --ref: a branch, tag or commit ("": the remote's default
	// branch).
	Ref string
	// Dir is --dir, the checkout ("": pullDefaultDir).
	Dir string
	// Name is --name, this host's inventory name ("": by hostname).
	Name string
	// LogDir is --log-dir ("": pullDefaultLogDir).
	LogDir string
	// Check only checks: nothing on the host changes (the checkout is
	// still updated).
	Check bool
	// Policy is the POLICY argument, relative to the checkout's root.
	Policy string
}

// pullOptions reads pull's command line. It refuses a missing or
// malformed --repo or --ref, and a POLICY that is missing, not a policy
// file, absolute or outside the checkout.
func pullOptions(c *cli.Context) (PullOptions, error) {
	if c.Args().Len() > 1 {
		return PullOptions{}, invalid(fmt.Errorf("pull: unexpected arguments %q after the policy %s: opsmop pull takes one POLICY (see opsmop pull --help)", c.Args().Tail(), c.Args().First()))
	}
	o := PullOptions{
		Repo: c.String(flagRepo), Ref: c.String(flagRef), Dir: c.String(flagDir),
		Name: c.String(flagName), LogDir: c.String(flagLogDir), Check: c.Bool(flagCheck),
		Policy: c.Args().First(),
	}
	if err := o.validate(); err != nil {
		return PullOptions{}, invalid(err)
	}
	if isLocalRepo(o.Repo) && !filepath.IsAbs(o.Repo) {
		abs, err := filepath.Abs(o.Repo)
		if err != nil {
			return PullOptions{}, invalid(fmt.Errorf("pull: --repo %s: %w", o.Repo, err))
		}
		o.Repo = abs
	}
	return o, nil
}

// validate checks the options that need no file: every error says what
// to give instead; none shows a password.
func (o PullOptions) validate() error {
	if o.Repo == "" {
		return errors.New("pull: missing --repo URL: the git repository holding the policy (a URL, user@host:path or a path)")
	}
	if err := checkPullRepo(o.Repo); err != nil {
		return fmt.Errorf("pull: --repo: %w", err)
	}
	if o.Ref != "" {
		if err := checkPullRef(o.Ref); err != nil {
			return fmt.Errorf("pull: --ref %q: %w", o.Ref, err)
		}
	}
	switch p := o.Policy; {
	case p == "":
		return errors.New("pull: missing POLICY argument: opsmop pull --repo URL POLICY (the policy file's path inside the repository, such as site.toml)")
	case !isPolicyFile(p):
		return fmt.Errorf("pull: %s is not a policy file (name it .toml, .yaml, .yml or .json)", p)
	case filepath.IsAbs(p):
		return fmt.Errorf("pull: POLICY %s is absolute: give its path relative to the repository's root", p)
	case !filepath.IsLocal(p):
		return fmt.Errorf("pull: POLICY %s is outside the repository: give its path relative to the repository's root", p)
	}
	if o.Name != "" && strings.IndexFunc(o.Name, func(c rune) bool { return c <= 0x20 || c == 0x7f }) >= 0 {
		return fmt.Errorf("pull: --name %q contains a space or control character: give this host's inventory name", o.Name)
	}
	for _, d := range []struct{ flag, v string }{{flagDir, o.Dir}, {flagLogDir, o.LogDir}} {
		if d.v != "" && strings.ContainsRune(d.v, 0) {
			return fmt.Errorf("pull: --%s contains a NUL byte", d.flag)
		}
	}
	return nil
}

// isLocalRepo reports whether repo is a path rather than a URL or an
// scp-like address.
func isLocalRepo(repo string) bool {
	if strings.Contains(repo, "://") {
		return false
	}
	if c := strings.IndexByte(repo, ':'); c > 0 && !strings.Contains(repo[:c], "/") {
		return false // scp-like [user@]host:path
	}
	return true
}

// checkPullRepo checks a --repo value; its messages never show a
// password.
func checkPullRepo(r string) error {
	shown := redactURLs(r)
	switch {
	case strings.TrimSpace(r) == "":
		return errors.New("the repository is empty: give a URL or a path")
	case strings.IndexFunc(r, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0:
		return fmt.Errorf("%q contains a control character (newline, tab, NUL...)", shown)
	case strings.HasPrefix(r, "-"):
		return fmt.Errorf("%q starts with -: git would take it for an option", shown)
	case strings.Contains(r, "::"):
		return fmt.Errorf("%q uses a transport helper (TRANSPORT::ADDRESS, such as ext::, which runs commands): give a URL or a path", shown)
	}
	if strings.Contains(r, "://") {
		u, err := url.Parse(r)
		if err != nil {
			return fmt.Errorf("%q is not a valid URL: %v", shown, redactURLs(err.Error()))
		}
		switch u.Scheme {
		case "http", "https", "ssh", "git", "file", "git+ssh", "ssh+git":
		default:
			return fmt.Errorf("%q: unknown URL scheme %q: want https, http, ssh, git or file", shown, u.Scheme)
		}
		if u.Scheme != "file" && u.Host == "" {
			return fmt.Errorf("%q has no host", shown)
		}
	}
	return nil
}

// checkPullRef checks a --ref as git check-ref-format would a branch or
// tag name (a commit id passes too).
func checkPullRef(v string) error {
	switch {
	case strings.IndexFunc(v, func(c rune) bool { return c <= 0x20 || c == 0x7f }) >= 0:
		return errors.New("contains a space or control character: not a branch, tag or commit")
	case strings.ContainsAny(v, "~^:?*[\\"):
		return errors.New("contains one of ~ ^ : ? * [ \\, which no branch or tag name has (give the commit's id instead of an expression)")
	case strings.HasPrefix(v, "-"):
		return errors.New("starts with -")
	case strings.Contains(v, ".."), strings.Contains(v, "@{"), v == "@", v == "HEAD":
		return errors.New("contains .. or @{, or is @ or HEAD: not a branch or tag name (leave --ref out for the remote's default branch)")
	case strings.HasPrefix(v, "/"), strings.HasSuffix(v, "/"), strings.Contains(v, "//"):
		return errors.New("has an empty path component (a leading, trailing or double /)")
	case strings.HasSuffix(v, "."):
		return errors.New("ends with a dot")
	}
	for _, c := range strings.Split(v, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return fmt.Errorf("component %q starts with a dot or ends with .lock", c)
		}
	}
	return nil
}

// urlCreds matches the user:password part of a URL.
var urlCreds = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@`)

// redactURLs replaces the password of every URL in s with xxxxx.
func redactURLs(s string) string { return urlCreds.ReplaceAllString(s, "${1}${2}:xxxxx@") }

// pullCreds are the user and password of an http(s) --repo URL: git is
// given the URL without them (so they are never stored in the checkout's
// config) and gets them from a credential helper reading the
// environment.
type pullCreds struct{ User, Password string }

// redact removes the password from s (as written and URL-escaped), and
// the password of any URL in s.
func (c pullCreds) redact(s string) string {
	if c.Password != "" {
		for _, pw := range []string{c.Password, url.PathEscape(c.Password), url.QueryEscape(c.Password), url.UserPassword("", c.Password).String()[1:]} {
			if pw != "" {
				s = strings.ReplaceAll(s, pw, "xxxxx")
			}
		}
	}
	return redactURLs(s)
}

// pullRemote splits repo into the remote git is given (an http(s) URL
// without user:password; anything else as it is) and those credentials.
func pullRemote(repo string) (string, pullCreds) {
	if !strings.Contains(repo, "://") {
		return repo, pullCreds{}
	}
	u, err := url.Parse(repo)
	if err != nil || u.User == nil {
		return repo, pullCreds{}
	}
	pw, ok := u.User.Password()
	if !ok || (u.Scheme != "http" && u.Scheme != "https") {
		return repo, pullCreds{}
	}
	c := pullCreds{User: u.User.Username(), Password: pw}
	u.User = url.User(c.User)
	if c.User == "" {
		u.User = nil
	}
	return u.String(), c
}

// pullDirName is the checkout's directory name derived from repo: its
// host and path without any user or password, scheme, query or .git
// suffix, with every character but letters, digits, '.', '_' and '-'
// replaced by '-', never "." or "..", at most 64 characters, followed by
// 8 hex digits of the address's sha256 so that two repositories whose
// names clean up alike get different directories.
func pullDirName(repo string) string {
	addr := repo
	if strings.Contains(addr, "://") {
		if u, err := url.Parse(addr); err == nil {
			addr = u.Host + "/" + u.Path
		} else {
			addr = addr[strings.Index(addr, "://")+3:]
			if at := strings.LastIndexByte(addr, '@'); at >= 0 {
				addr = addr[at+1:]
			}
		}
	} else if isLocalRepo(addr) {
		addr = filepath.Clean(addr)
	} else if at := strings.IndexByte(addr, '@'); at >= 0 && at < strings.IndexByte(addr, ':') {
		addr = addr[at+1:] // scp-like user@host:path
	}
	sum := sha256.Sum256([]byte(addr))
	addr = strings.TrimSuffix(strings.TrimSuffix(addr, "/"), ".git")
	name := regexp.MustCompile(`[^A-Za-z0-9._]+`).ReplaceAllString(addr, "-")
	name = regexp.MustCompile(`\.\.+`).ReplaceAllString(name, "-") // never ".."
	name = regexp.MustCompile(`[.-]*-[.-]*`).ReplaceAllString(name, "-")
	name = strings.Trim(name, ".-")
	if len(name) > 64 {
		name = strings.Trim(name[:64], ".-")
	}
	h := hex.EncodeToString(sum[:4])
	if name == "" {
		return "repo-" + h
	}
	return name + "-" + h
}

// pullDefaultDir is the checkout of repo when --dir is not given: under
// /var/lib/opsmop/pull for root, else under ~/.opsmop/pull.
func pullDefaultDir(repo string, euid int, home string) string {
	if euid == 0 {
		return filepath.Join(pullRootDir, pullDirName(repo))
	}
	return filepath.Join(home, pullUserDir, pullDirName(repo))
}

// pullDefaultLogDir is the log directory when --log-dir is not given.
func pullDefaultLogDir(euid int, home string) string {
	if euid == 0 {
		return pullRootLogDir
	}
	return filepath.Join(home, pullUserLogDir)
}

// pullHostName chooses this host's inventory name: name (--name) when
// given, which must be in the inventory; else the inventory host named
// like the hostname, else like the short hostname (before the first
// dot); else, when the policy has no inventory (implicit), localhost. has
// reports whether the inventory has a host.
func pullHostName(name, hostname string, implicit bool, has func(string) bool) (string, error) {
	if name != "" {
		if has(name) {
			return name, nil
		}
		return "", fmt.Errorf("--name %s is not a host of the policy's inventory: give the name this host has there", name)
	}
	short, _, _ := strings.Cut(hostname, ".")
	for _, n := range []string{hostname, short} {
		if n != "" && has(n) {
			return n, nil
		}
	}
	if implicit && has("localhost") {
		return "localhost", nil
	}
	as := fmt.Sprintf("as %q", hostname)
	if short != hostname {
		as = fmt.Sprintf("neither as %q nor as %q", hostname, short)
	}
	return "", fmt.Errorf("this host (%s) is not in the policy's inventory (looked up %s): give --name with its inventory name", hostname, as)
}

// pullGit runs git for one pull: in dir (when set), without prompts,
// with the credentials of an http(s) URL given by a helper reading the
// environment (never on a command line, never stored), output redacted.
type pullGit struct {
	dir   string
	creds pullCreds
}

// run runs git args and returns its stdout, trimmed; a failure's error
// holds git's stderr, redacted.
func (g pullGit) run(ctx context.Context, args ...string) (string, error) {
	var full []string
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "LC_ALL=C", "GCM_INTERACTIVE=never")
	if os.Getenv("GIT_SSH_COMMAND") == "" && os.Getenv("GIT_SSH") == "" {
		env = append(env, "GIT_SSH_COMMAND=ssh -o BatchMode=yes")
	}
	if g.creds.Password != "" {
		helper := `!f() { test "$1" = get && printf 'username=%s\npassword=%s\n' "$OPSMOP_GIT_USER" "$OPSMOP_GIT_PASSWORD"; }; f`
		full = append(full, "-c", "credential.helper=", "-c", "credential.helper="+helper)
		env = append(env, "OPSMOP_GIT_USER="+g.creds.User, "OPSMOP_GIT_PASSWORD="+g.creds.Password)
	}
	if g.dir != "" {
		full = append(full, "-C", g.dir)
	}
	full = append(full, args...)
	cmd := exec.CommandContext(ctx, "git", full...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return "", fmt.Errorf("git %s: %s", args[0], g.creds.redact(msg))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// pullSync brings the checkout dir to ref of remote: it clones when dir
// is missing or empty, else fetches (dir must be a checkout of remote:
// otherwise an invalid-invocation error), then checks out the ref's
// commit, detached, discarding local changes and untracked files. It
// returns the commit's id. Git failures are exit 1 errors.
func pullSync(ctx context.Context, remote string, creds pullCreds, dir, ref string) (string, error) {
	g := pullGit{dir: dir, creds: creds}
	shownRemote := creds.redact(remote)
	fail := func(err error) error { return &exitError{code: exitFailed, err: fmt.Errorf("pull: %w", err)} }
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist) || err == nil && len(entries) == 0:
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return "", fail(fmt.Errorf("create the checkout's parent: %w", err))
		}
		if _, err := (pullGit{creds: creds}).run(ctx, "clone", "--quiet", "--no-checkout", "--", remote, dir); err != nil {
			return "", fail(fmt.Errorf("clone %s into %s: %w", shownRemote, dir, err))
		}
	case err != nil:
		return "", invalid(fmt.Errorf("pull: --dir %s: %w", dir, err))
	default:
		top, err := g.run(ctx, "rev-parse", "--show-toplevel")
		if err != nil || filepath.Clean(top) != filepath.Clean(mustAbs(dir)) {
			return "", invalid(fmt.Errorf("pull: %s exists and is not a git checkout: remove it or give another --dir", dir))
		}
		origin, _ := g.run(ctx, "config", "--get", "remote.origin.url")
		if origin != remote {
			return "", invalid(fmt.Errorf("pull: %s is a checkout of %s, not of %s: remove it or give another --dir", dir, orNone(creds.redact(origin)), shownRemote))
		}
		if _, err := g.run(ctx, "fetch", "--quiet", "--prune", "--tags", "--force", "origin", "+refs/heads/*:refs/remotes/origin/*"); err != nil {
			return "", fail(fmt.Errorf("fetch %s into %s: %w", shownRemote, dir, err))
		}
		if ref == "" {
			if _, err := g.run(ctx, "remote", "set-head", "origin", "--auto"); err != nil {
				return "", fail(fmt.Errorf("find the default branch of %s: %w", shownRemote, err))
			}
		}
	}
	commit, err := pullResolve(ctx, g, ref)
	if err != nil {
		return "", fail(fmt.Errorf("%s: %w", shownRemote, err))
	}
	if _, err := g.run(ctx, "checkout", "--quiet", "--force", "--detach", commit); err != nil {
		return "", fail(fmt.Errorf("check out %s in %s: %w", commit, dir, err))
	}
	if _, err := g.run(ctx, "clean", "-ffdxq"); err != nil {
		return "", fail(fmt.Errorf("remove untracked files in %s: %w", dir, err))
	}
	return commit, nil
}

// pullResolve returns the commit ref names after a fetch: the remote's
// default branch for "", else a branch, else a tag, else a commit id.
func pullResolve(ctx context.Context, g pullGit, ref string) (string, error) {
	var cands []string
	if ref == "" {
		cands = []string{"refs/remotes/origin/HEAD"}
	} else {
		cands = []string{"refs/remotes/origin/" + ref, "refs/tags/" + ref}
		if regexp.MustCompile(`^[0-9a-fA-F]{4,64}$`).MatchString(ref) {
			cands = append(cands, ref)
		}
	}
	for _, c := range cands {
		if id, err := g.run(ctx, "rev-parse", "--verify", "--quiet", "--end-of-options", c+"^{commit}"); err == nil && id != "" {
			return id, nil
		}
	}
	if ref == "" {
		return "", errors.New("has no default branch (is it empty?): push a commit, or give --ref")
	}
	return "", fmt.Errorf("--ref %s is no branch, tag or commit of the repository", ref)
}

// mustAbs is p made absolute (p when that fails).
func mustAbs(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		if r, err := filepath.EvalSymlinks(a); err == nil {
			return r
		}
		return a
	}
	return p
}

// orNone is s, or "(no origin)" when empty.
func orNone(s string) string {
	if s == "" {
		return "(no origin)"
	}
	return s
}

// pullRecap is one line of recap.log.
type pullRecap struct {
	when     time.Time
	commit   string
	host     string
	mode     string
	code     int
	total    *engine.Stats
	lastGood string
	log      string
	err      string
}

// String formats the line: space-separated key=value fields, the error
// last and quoted.
func (r pullRecap) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s commit=%s host=%s mode=%s exit=%d", r.when.UTC().Format(pullRecapTimeLayout), orDash(r.commit), orDash(r.host), r.mode, r.code)
	if t := r.total; t != nil {
		fmt.Fprintf(&b, " ok=%d changed=%d failed=%d skipped=%d unreachable=%d ignored=%d", t.OK, t.Changed, t.Failed, t.Skipped, t.Unreachable, t.Ignored)
	}
	fmt.Fprintf(&b, " last_good=%s", orDash(r.lastGood))
	if r.log != "" {
		fmt.Fprintf(&b, " log=%s", filepath.Base(r.log))
	}
	if r.err != "" {
		msg := strings.Join(strings.Fields(r.err), " ")
		if len(msg) > 500 {
			msg = msg[:500] + "..."
		}
		fmt.Fprintf(&b, " error=%q", msg)
	}
	return b.String()
}

// orDash is s, or "-" when empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runPull is `opsmop pull`: lock the log directory, bring the checkout
// to the ref's commit, load and validate the whole policy, choose this
// host, run its roles through the local connection (check with --check),
// write the JSON log and the recap line, record the commit as the last
// good one when it applied cleanly, and return the exit status.
func runPull(ctx context.Context, env Env, o PullOptions) error {
	euid := os.Geteuid()
	if o.Dir == "" {
		o.Dir = pullDefaultDir(o.Repo, euid, env.Home)
	}
	if o.LogDir == "" {
		o.LogDir = pullDefaultLogDir(euid, env.Home)
	}
	if _, err := os.Stat(o.LogDir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(o.LogDir, 0o700); err != nil {
			return &exitError{code: exitFailed, err: fmt.Errorf("pull: create the log directory: %w", err)}
		}
	}
	unlock, err := pullLock(filepath.Join(o.LogDir, pullLockFile))
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("pull: %w", err)}
	}
	defer unlock()
	mode := "apply"
	if o.Check {
		mode = "check"
	}
	remote, creds := pullRemote(o.Repo)
	rec := pullRecap{when: time.Now(), mode: mode, lastGood: pullLastGood(o.Dir)}
	fmt.Fprintf(env.Stdout, "pull: %s into %s\n", creds.redact(remote), o.Dir)
	commit, err := pullSync(ctx, remote, creds, o.Dir, o.Ref)
	if err == nil {
		rec.commit = commit
		err = pullApply(ctx, env, o, commit, &rec)
	}
	var ee *exitError
	switch {
	case err == nil:
		rec.code = exitOK
	case ctx.Err() != nil:
		rec.code, err = exitInterrupted, &exitError{code: exitInterrupted, err: err}
	case errors.As(err, &ee):
		rec.code = ee.code
	default:
		rec.code, err = exitFailed, &exitError{code: exitFailed, err: err}
	}
	if err != nil && errors.As(err, &ee) && ee.err != nil {
		rec.err = ee.err.Error()
	}
	if rec.code == exitOK && !o.Check {
		if werr := os.WriteFile(filepath.Join(o.Dir, ".git", pullLastGoodFile), []byte(commit+"\n"), 0o600); werr != nil {
			fmt.Fprintf(env.Stderr, "warning: pull: record the last good commit: %v\n", werr)
		}
		rec.lastGood = commit
	}
	if werr := appendFile(filepath.Join(o.LogDir, pullRecapFile), rec.String()+"\n"); werr != nil && err == nil {
		err = &exitError{code: exitFailed, err: fmt.Errorf("pull: the run went on, but its recap line was not written: %w", werr)}
	}
	if perr := pullPrune(o.LogDir, pullKeepLogs); perr != nil {
		fmt.Fprintf(env.Stderr, "warning: pull: %v\n", perr)
	}
	return err
}

// pullApply loads the policy of the checkout at commit, validates all of
// it, chooses this host and runs its roles here (as apply --local
// --limit NAME, or check), showing the run on stdout and writing its
// JSON events to a new log file. It fills rec's host, totals and log.
func pullApply(ctx context.Context, env Env, o PullOptions, commit string, rec *pullRecap) error {
	short := commit[:min(12, len(commit))]
	broken := func(err error) error {
		return invalid(fmt.Errorf("pull: commit %s is invalid, nothing was run (last good commit: %s):\n%w", short, orDash(rec.lastGood), err))
	}
	s, err := load(ctx, env, loadOptions{Command: "pull", Policy: filepath.Join(o.Dir, o.Policy), NeedPolicy: true, Local: true})
	if err != nil {
		var ee *exitError
		if errors.As(err, &ee) && ee.err != nil {
			err = ee.err
		}
		return broken(err)
	}
	if errs := validateSession(s); len(errs) > 0 {
		return broken(joinErrors(errs))
	}
	hostname, _ := os.Hostname()
	name, err := pullHostName(o.Name, hostname, s.pol.Inventory == "", func(n string) bool { _, ok := s.inv.Host(n); return ok })
	if err != nil {
		return invalid(fmt.Errorf("pull: %w (inventory %s)", err, s.inv.Source()))
	}
	rec.host = name
	s.retry = map[string]bool{name: true} // by name: a host name is no pattern
	rp, err := s.plans()
	if err != nil {
		return broken(err)
	}
	logPath := filepath.Join(o.LogDir, rec.when.UTC().Format(pullLogTimeLayout)+"-"+short+".json")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return &exitError{code: exitFailed, err: fmt.Errorf("pull: create the log: %w", err)}
	}
	rec.log = logPath
	fmt.Fprintf(env.Stdout, "pull: commit %s, host %s, %s; log %s\n", short, name, rec.mode, logPath)
	tty := env.isTerminal(env.Stdout)
	human := view.New(view.KindHuman, env.Stdout, view.Options{Color: tty && env.Getenv("NO_COLOR") == "", Status: tty, Width: env.termWidth})
	jsonView := view.New(view.KindJSON, f, view.Options{})
	conn := s.newConnector(rp.hosts, false)
	defer conn.Close()
	sum := engine.Run(ctx, engine.Options{
		Policy: s.pol, Registry: s.reg, Lookup: providers.Lookup, Plans: rp.plans,
		Check: o.Check, Forks: rp.forks, ExtraVars: s.extra,
		Connector: conn, Hooks: engine.Tee{human, jsonView},
		Info: s.runInfo(),
	})
	total := sum.Total
	rec.total = &total
	cerr := f.Close()
	switch {
	case jsonView.Err() != nil || cerr != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("pull: the log %s is incomplete, although the run went on: %w", logPath, errors.Join(jsonView.Err(), cerr))}
	case human.Err() != nil:
		return &exitError{code: exitFailed, err: fmt.Errorf("%w: the run's report is incomplete, although the run went on (its log is %s)", human.Err(), logPath)}
	case sum.Interrupted:
		return &exitError{code: exitInterrupted}
	case sum.Failed():
		return &exitError{code: exitFailed, err: fmt.Errorf("pull: commit %s failed on %s (log %s)", short, name, logPath)}
	}
	return nil
}

// pullLastGood is the last commit that applied cleanly in the checkout
// dir ("" when none is recorded).
func pullLastGood(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, ".git", pullLastGoodFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// pullLock takes an exclusive lock on path (created 0600), without
// waiting: a pull already running with the same log directory is an
// error. The returned function releases it.
func pullLock(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another opsmop pull is running with the log directory %s (lock %s): this run does nothing", filepath.Dir(path), path)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// appendFile appends text to path (created 0600).
func appendFile(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pullLogName matches the name of a run's JSON log.
var pullLogName = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}\.[0-9]{3}Z-[0-9a-f]+\.json$`)

// pullPrune removes all but the keep newest JSON logs of dir (by name,
// which starts with the run's time); other files are left alone.
func pullPrune(dir string, keep int) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("prune the logs: %w", err)
	}
	var logs []string
	for _, e := range entries {
		if e.Type().IsRegular() && pullLogName.MatchString(e.Name()) {
			logs = append(logs, e.Name())
		}
	}
	sort.Strings(logs)
	var errs []error
	for len(logs) > keep {
		if err := os.Remove(filepath.Join(dir, logs[0])); err != nil {
			errs = append(errs, err)
		}
		logs = logs[1:]
	}
	if len(errs) > 0 {
		return fmt.Errorf("prune the logs: %w", errors.Join(errs...))
	}
	return nil
}
