package providers

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// GitSpec is the `git` resource: a clone of a git repository at path,
// checked out at version (like Ansible's git module). It is idempotent
// by comparing the commit checked out with the one version resolves to
// on the remote (git ls-remote, in the probe).
type GitSpec struct {
	Repo    string `opsmop:"repo" required:"true" doc:"the repository: a URL (https://, http://, ssh://, git://, file://), scp-like user@host:path, or an absolute path on the host; a user:password in an http(s) URL is never shown and never stored in the clone (see Behaviour)"`
	Path    string `opsmop:"path" required:"true" doc:"absolute path of the clone (its work tree) on the host; created with its parents when missing; an existing empty directory is cloned into"`
	Version string `opsmop:"version" doc:"a branch (checked out as a local branch tracking origin), a tag or a full 40-hex commit (both checked out as a detached HEAD); unset (or HEAD): the remote's default branch (the branch its HEAD names)"`
	Depth   *int   `opsmop:"depth" doc:"a shallow clone with this many commits (git clone --depth); later fetches of a shallow clone keep the depth; unset: the full history"`
	Force   bool   `opsmop:"force" doc:"discard local changes to tracked files (git reset --hard) and point origin at repo when the clone has another origin; unset: either is an error naming the path (untracked files are never touched)"`
}

// Validate checks the rules of a git resource that need no host (see
// Validator): repo is a URL, an scp-like address or an absolute path;
// path is absolute; version is a valid ref name or a full commit; depth
// is at least 1.
func (s *GitSpec) Validate() error {
	var p problems
	if !templated(s.Repo) {
		p.addErr("repo", checkGitRepo(s.Repo))
	}
	p.path("path", s.Path)
	if s.Path == "/" {
		p.add("path", "path \"/\": a clone needs its own directory")
	}
	if s.Version != "" && !templated(s.Version) {
		if err := checkGitVersion(s.Version); err != nil {
			p.add("version", "version %q: %v", s.Version, err)
		}
	}
	if s.Depth != nil && *s.Depth < 1 {
		p.add("depth", "depth %d: want a number of commits from 1 (leave depth out for the full history)", *s.Depth)
	}
	return p.err()
}

// checkGitRepo checks a repo value; its messages never show a password.
func checkGitRepo(r string) error {
	shown := redactGitURL(r)
	switch {
	case strings.TrimSpace(r) == "":
		return fmt.Errorf("repo is empty: give a URL or an absolute path")
	case strings.IndexFunc(r, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0:
		return fmt.Errorf("repo %q contains a control character (newline, tab, NUL...)", shown)
	case strings.HasPrefix(r, "-"):
		return fmt.Errorf("repo %q starts with -: git would take it for an option", shown)
	case strings.Contains(r, "::"):
		return fmt.Errorf("repo %q uses a transport helper (TRANSPORT::ADDRESS, such as ext::, which runs commands): give a URL or a path", shown)
	}
	if i := strings.Index(r, "://"); i >= 0 {
		u, err := url.Parse(r)
		if err != nil {
			return fmt.Errorf("repo %q is not a valid URL: %v", shown, redactGitURL(err.Error()))
		}
		switch u.Scheme {
		case "http", "https", "ssh", "git", "file", "git+ssh", "ssh+git", "ftp", "ftps":
		default:
			return fmt.Errorf("repo %q: unknown URL scheme %q: want https, http, ssh, git or file", shown, u.Scheme)
		}
		if u.Scheme != "file" && u.Host == "" {
			return fmt.Errorf("repo %q has no host", shown)
		}
		return nil
	}
	if strings.HasPrefix(r, "/") {
		return nil
	}
	// scp-like: [user@]host:path, a colon before any slash.
	if c := strings.IndexByte(r, ':'); c > 0 && !strings.Contains(r[:c], "/") {
		return nil
	}
	return fmt.Errorf("repo %q is a relative path: give an absolute path on the host, or a URL", shown)
}

// checkGitVersion checks a version as git check-ref-format would a
// branch or tag name (a full commit passes too, being one).
func checkGitVersion(v string) error {
	switch {
	case strings.IndexFunc(v, func(c rune) bool { return c <= 0x20 || c == 0x7f }) >= 0:
		return fmt.Errorf("contains a space or control character: not a branch, tag or commit")
	case strings.ContainsAny(v, "~^:?*[\\"):
		return fmt.Errorf("contains one of ~ ^ : ? * [ \\, which no branch or tag name has (write the commit's full 40-hex id instead of an expression)")
	case strings.HasPrefix(v, "-"):
		return fmt.Errorf("starts with -")
	case strings.Contains(v, ".."), strings.Contains(v, "@{"), v == "@":
		return fmt.Errorf("contains .. or @{, or is @: not a branch or tag name (write the commit's full 40-hex id)")
	case strings.HasPrefix(v, "/"), strings.HasSuffix(v, "/"), strings.Contains(v, "//"):
		return fmt.Errorf("has an empty path component (a leading, trailing or double /)")
	case strings.HasSuffix(v, "."):
		return fmt.Errorf("ends with a dot")
	}
	for _, c := range strings.Split(v, "/") {
		if strings.HasPrefix(c, ".") || strings.HasSuffix(c, ".lock") {
			return fmt.Errorf("component %q starts with a dot or ends with .lock", c)
		}
	}
	return nil
}

// gitProvider implements `git`.
type gitProvider struct{}

// gitPlan is what Apply does: clone (or fetch into the existing clone),
// then check out Commit, as branch Branch or detached.
type gitPlan struct {
	Path string
	// Remote is repo as git sees it: an http(s) URL without its
	// user:password, which travel in Creds.
	Remote string
	Creds  gitCreds
	Clone  bool
	// Fetch is what to fetch: a ref (refs/heads/B, refs/tags/T) or Commit.
	Fetch  string
	Commit string
	// Branch is the local branch to check out; "" is a detached HEAD.
	Branch string
	// Depth is --depth for clone and fetch (0: none).
	Depth int
	// SetOrigin points origin at Remote first (force, another origin).
	SetOrigin bool
	// Discard resets local changes (force).
	Discard bool
}

// gitCreds are the user and password of an http(s) repo URL.
type gitCreds struct{ User, Password string }

// labels names the instance by its path.
func (gitProvider) labels(s *GitSpec) errLabels {
	l := "git " + s.Path
	return errLabels{Probe: l, Check: l, Apply: l}
}

// gitRemote splits repo into what git is given (an http(s) URL without
// user:password) and those credentials.
func gitRemote(repo string) (string, gitCreds) {
	if !strings.Contains(repo, "://") {
		return repo, gitCreds{}
	}
	u, err := url.Parse(repo)
	if err != nil || u.User == nil {
		return repo, gitCreds{}
	}
	pw, ok := u.User.Password()
	if !ok || (u.Scheme != "http" && u.Scheme != "https") {
		return repo, gitCreds{}
	}
	c := gitCreds{User: u.User.Username(), Password: pw}
	u.User = nil
	return u.String(), c
}

// gitURLCreds matches the user:password part of a URL.
var gitURLCreds = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^/@\s:]*):([^/@\s]*)@`)

// redactGitURL replaces the password of every URL in s with xxxxx.
func redactGitURL(s string) string {
	return gitURLCreds.ReplaceAllString(s, "${1}${2}:xxxxx@")
}

// redact removes c's password from s (as written, and URL-escaped), and
// the password of any URL in s.
func (c gitCreds) redact(s string) string {
	if c.Password != "" {
		for _, pw := range []string{c.Password, url.PathEscape(c.Password), url.QueryEscape(c.Password), url.UserPassword("", c.Password).String()[1:]} {
			if pw != "" {
				s = strings.ReplaceAll(s, pw, "xxxxx")
			}
		}
	}
	return redactGitURL(s)
}

// gitEnv is the shell code every git script starts with: no prompt for
// a credential (git and ssh fail instead of waiting), no optional lock
// (git status does not refresh the index, so a probe writes nothing),
// and, when the URL carried credentials, a credential helper that gives
// them to git from the environment (never on a command line). g runs
// git with that helper.
func gitEnv(c gitCreds) string {
	var b strings.Builder
	b.WriteString("export GIT_TERMINAL_PROMPT=0 GIT_OPTIONAL_LOCKS=0 LC_ALL=C GCM_INTERACTIVE=never\n")
	b.WriteString("GIT_SSH_COMMAND='ssh -o BatchMode=yes'; export GIT_SSH_COMMAND\n")
	if c.Password == "" {
		b.WriteString("g() { git \"$@\"; }\n")
		return b.String()
	}
	b.WriteString("OPSMOP_GIT_USER=" + shell.Quote(c.User) + "; OPSMOP_GIT_PASSWORD=" + shell.Quote(c.Password) + "; export OPSMOP_GIT_USER OPSMOP_GIT_PASSWORD\n")
	helper := `!f() { test "$1" = get && printf 'username=%s\npassword=%s\n' "$OPSMOP_GIT_USER" "$OPSMOP_GIT_PASSWORD"; }; f`
	b.WriteString("g() { git -c credential.helper= -c credential.helper=" + shell.Quote(helper) + " \"$@\"; }\n")
	return b.String()
}

// isCommitID reports whether v is a full (40-hex, sha1) commit id.
func isCommitID(v string) bool {
	if len(v) != 40 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// isHexAbbrev reports whether v could be an abbreviated commit id.
func isHexAbbrev(v string) bool {
	if len(v) < 4 || len(v) >= 40 {
		return false
	}
	for _, c := range v {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// version is the spec's version, "" for the remote's default branch.
func (s *GitSpec) version() string {
	if s.Version == "HEAD" {
		return ""
	}
	return s.Version
}

// Probe prints `git=missing` without git; else the state of path
// (`path=absent|notdir|empty|notclone|clone`) and, for a clone, `repoerr=`
// (git cannot read it), `head=`, `branch=` (the full ref, empty when
// detached), `origin=`, `shallow=` and one `change=` line per changed
// tracked file (git status --porcelain); then, unless version is a full
// commit, `lsrc=` (git ls-remote's exit status) and its output, one
// `ls=` line each. It writes nothing on the host.
func (gitProvider) Probe(s *GitSpec, req *Request) (string, error) {
	remote, creds := gitRemote(s.Repo)
	var b strings.Builder
	b.WriteString("if ! command -v git >/dev/null 2>&1; then echo git=missing; exit 0; fi\n")
	b.WriteString(gitEnv(creds))
	b.WriteString("p=" + shell.Quote(s.Path) + "\nr=" + shell.Quote(remote) + "\n")
	b.WriteString(`oneline() { tr '\n' ' '; }
if [ ! -e "$p" ]; then echo path=absent
elif [ ! -d "$p" ]; then echo path=notdir
elif [ -e "$p/.git" ]; then
  echo path=clone
  if e=$(git -C "$p" rev-parse --git-dir 2>&1 >/dev/null); then
    printf 'head=%s\n' "$(git -C "$p" rev-parse -q --verify 'HEAD^{commit}' 2>/dev/null)"
    printf 'branch=%s\n' "$(git -C "$p" symbolic-ref -q HEAD 2>/dev/null)"
    printf 'origin=%s\n' "$(git -C "$p" config --get remote.origin.url 2>/dev/null)"
    printf 'shallow=%s\n' "$(git -C "$p" rev-parse --is-shallow-repository 2>/dev/null)"
    if o=$(git -C "$p" status --porcelain --untracked-files=no 2>&1); then
      [ -z "$o" ] || printf '%s\n' "$o" | sed 's/^/change=/'
    else printf 'repoerr=git status: %s\n' "$(printf '%s' "$o" | oneline)"; fi
  else printf 'repoerr=%s\n' "$(printf '%s' "$e" | oneline)"; fi
elif [ -z "$(ls -A "$p" 2>/dev/null)" ]; then echo path=empty; printf 'owner=%s\nme=%s\n' "$(stat -c %u -- "$p" 2>/dev/null)" "$(id -u)"
else echo path=notclone; fi
`)
	if v := s.version(); !isCommitID(v) {
		pats := "HEAD"
		if v != "" {
			pats = shell.Quote("refs/heads/"+v) + " " + shell.Quote("refs/tags/"+v) + " " + shell.Quote("refs/tags/"+v+"^{}")
		}
		b.WriteString(`o=$(g ls-remote --symref -- "$r" ` + pats + ` 2>&1); printf 'lsrc=%s\n' "$?"
[ -z "$o" ] || printf '%s\n' "$o" | sed 's/^/ls=/'
`)
	}
	return b.String(), nil
}

// gitProbe is a parsed probe.
type gitProbe struct {
	missing bool
	path    string
	repoErr string
	head    string
	branch  string
	origin  string
	shallow bool
	// owner and me are the uids of an empty directory at path and of
	// the user running git.
	owner, me string
	changes   []string
	lsRC      int
	hasLS     bool
	ls        []string
}

// parseGitProbe parses the probe's output.
func parseGitProbe(res connection.Result) (gitProbe, error) {
	var g gitProbe
	if res.ExitCode != 0 {
		return g, fmt.Errorf("probe failed with exit status %d: %s", res.ExitCode, firstLines(res.Stderr, 5))
	}
	for _, line := range strings.Split(string(res.Stdout), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "git":
			g.missing = v == "missing"
		case "path":
			g.path = v
		case "repoerr":
			g.repoErr = strings.TrimSpace(v)
		case "head":
			g.head = v
		case "branch":
			g.branch = v
		case "origin":
			g.origin = v
		case "owner":
			g.owner = v
		case "me":
			g.me = v
		case "shallow":
			g.shallow = v == "true"
		case "change":
			g.changes = append(g.changes, v)
		case "lsrc":
			n, err := strconv.Atoi(v)
			if err != nil {
				return g, fmt.Errorf("malformed probe output: lsrc=%q", v)
			}
			g.lsRC, g.hasLS = n, true
		case "ls":
			g.ls = append(g.ls, v)
		}
	}
	if !g.missing && g.path == "" {
		return g, fmt.Errorf("malformed probe output: %q", firstLines(res.Stdout, 3))
	}
	return g, nil
}

// gitTarget is what version resolves to on the remote.
type gitTarget struct {
	Commit string
	// Branch is the branch to check out ("" for a tag or commit).
	Branch string
	// Fetch is what Apply fetches.
	Fetch string
	// Shown names the version in the change ("main", "tag v1", ...).
	Shown string
}

// resolveGitVersion finds version (a branch first, then a tag, as
// Ansible does; "" the remote's default branch) in git ls-remote's lines.
func resolveGitVersion(version string, ls []string) (gitTarget, error) {
	refs := map[string]string{}
	headRef := ""
	for _, l := range ls {
		if rest, ok := strings.CutPrefix(l, "ref: "); ok {
			target, name, _ := strings.Cut(rest, "\t")
			if name == "HEAD" {
				headRef = target
			}
			continue
		}
		sha, name, ok := strings.Cut(l, "\t")
		if ok && isCommitID(sha) {
			refs[name] = sha
		}
	}
	if isCommitID(version) {
		return gitTarget{Commit: version, Fetch: version, Shown: "commit " + version}, nil
	}
	if version == "" {
		sha, ok := refs["HEAD"]
		if !ok {
			return gitTarget{}, fmt.Errorf("the remote has no HEAD (an empty repository, or HEAD names a branch that does not exist): give version")
		}
		if b, ok := strings.CutPrefix(headRef, "refs/heads/"); ok {
			return gitTarget{Commit: sha, Branch: b, Fetch: headRef, Shown: b + " (the remote's HEAD)"}, nil
		}
		return gitTarget{Commit: sha, Fetch: sha, Shown: "the remote's detached HEAD"}, nil
	}
	if sha, ok := refs["refs/heads/"+version]; ok {
		return gitTarget{Commit: sha, Branch: version, Fetch: "refs/heads/" + version, Shown: version}, nil
	}
	if sha, ok := refs["refs/tags/"+version+"^{}"]; ok {
		return gitTarget{Commit: sha, Fetch: "refs/tags/" + version, Shown: "tag " + version}, nil
	}
	if sha, ok := refs["refs/tags/"+version]; ok {
		return gitTarget{Commit: sha, Fetch: "refs/tags/" + version, Shown: "tag " + version}, nil
	}
	if isHexAbbrev(version) {
		return gitTarget{}, fmt.Errorf("version %q is neither a branch nor a tag of the remote; an abbreviated commit id cannot be resolved against a remote: give the full 40-hex commit id", version)
	}
	return gitTarget{}, fmt.Errorf("version %q is neither a branch nor a tag of the remote", version)
}

// sameGitRemote reports whether origin (as the clone has it) is repo:
// equal once any user:password is removed from both.
func sameGitRemote(origin, repo string) bool {
	strip := func(s string) string {
		if !strings.Contains(s, "://") {
			return s
		}
		u, err := url.Parse(s)
		if err != nil {
			return s
		}
		u.User = nil
		return u.String()
	}
	return strip(origin) == strip(repo)
}

// Check resolves version from the probe and compares it with the clone.
func (gitProvider) Check(s *GitSpec, req *Request, probe connection.Result) (*Change, error) {
	remote, creds := gitRemote(s.Repo)
	shownRepo := creds.redact(redactGitURL(s.Repo))
	g, err := parseGitProbe(probe)
	if err != nil {
		return nil, fmt.Errorf("%s", creds.redact(err.Error()))
	}
	if g.missing {
		return nil, fmt.Errorf("git is not installed on the host: install the package git (Debian/Ubuntu, Fedora/RHEL, Alpine, Arch: git), e.g. with a package resource before this one")
	}
	switch g.path {
	case "notdir":
		return nil, fmt.Errorf("%s exists and is not a directory: remove it or choose another path (opsmop never removes it, even with force)", s.Path)
	case "notclone":
		return nil, fmt.Errorf("%s exists, is not empty and is not a git clone (no %s/.git): remove it or choose another path (opsmop never removes it, even with force)", s.Path, s.Path)
	}
	if g.repoErr != "" {
		hint := ""
		if strings.Contains(g.repoErr, "dubious ownership") {
			hint = ": the clone belongs to another user than the one git runs as; opsmop does not override git's safe.directory check: chown the clone, or run as its owner"
		}
		return nil, fmt.Errorf("git cannot read the clone at %s: %s%s", s.Path, creds.redact(g.repoErr), hint)
	}
	if g.path == "empty" && g.owner != g.me {
		return nil, fmt.Errorf("%s is an empty directory owned by uid %s, not by uid %s that runs git: git would refuse the clone as of another user (dubious ownership): chown the directory to the user opsmop runs git as, or remove it", s.Path, g.owner, g.me)
	}
	var t gitTarget
	if v := s.version(); isCommitID(v) {
		t, _ = resolveGitVersion(v, nil)
	} else {
		if !g.hasLS {
			return nil, fmt.Errorf("malformed probe output: no git ls-remote result")
		}
		if g.lsRC != 0 {
			return nil, fmt.Errorf("cannot read the remote %s (git ls-remote failed with exit status %d): %s", shownRepo, g.lsRC, creds.redact(firstLines([]byte(strings.Join(g.ls, "\n")), 5)))
		}
		if t, err = resolveGitVersion(v, g.ls); err != nil {
			return nil, fmt.Errorf("%s: %w", shownRepo, err)
		}
	}
	pl := gitPlan{Path: s.Path, Remote: remote, Creds: creds, Fetch: t.Fetch, Commit: t.Commit, Branch: t.Branch}
	if s.Depth != nil {
		pl.Depth = *s.Depth
	}
	if g.path == "absent" || g.path == "empty" {
		pl.Clone = true
		f := []Field{{Name: "repo", After: shownRepo}, {Name: "version", After: t.Shown}, {Name: "commit", After: t.Commit}}
		if pl.Depth > 0 {
			f = append(f, Field{Name: "depth", After: strconv.Itoa(pl.Depth)})
		}
		return &Change{Action: Create, Fields: f, Plan: pl, Message: "clone " + shownRepo + " into " + s.Path + " at " + t.Shown}, nil
	}
	if !g.shallow {
		pl.Depth = 0 // a full clone stays full (see Behaviour)
	}
	var fields []Field
	var notes []string
	if !sameGitRemote(g.origin, remote) {
		if !s.Force {
			return nil, fmt.Errorf("%s is a clone of %s, not of %s: remove it, choose another path, or set force = true to point origin at repo", s.Path, orDefault(creds.redact(g.origin), "(no origin)"), shownRepo)
		}
		pl.SetOrigin = true
		fields = append(fields, Field{Name: "origin", Before: creds.redact(g.origin), After: shownRepo})
	}
	if len(g.changes) > 0 {
		files := gitChangedFiles(g.changes)
		if !s.Force {
			return nil, fmt.Errorf("%s has local changes (%s): commit or discard them, or set force = true to discard them", s.Path, files)
		}
		pl.Discard = true
		fields = append(fields, Field{Name: "local changes", Before: files, After: "discarded"})
		notes = append(notes, "force = true: discards the local changes in "+s.Path+" ("+files+")")
	}
	if g.head != t.Commit {
		fields = append(fields, Field{Name: "commit", Before: orDefault(g.head, "(none)"), After: t.Commit})
		notes = append(notes, t.Shown+": "+shortCommit(g.head)+".."+shortCommit(t.Commit))
	}
	if t.Branch != "" && g.branch != "refs/heads/"+t.Branch {
		fields = append(fields, Field{Name: "branch", Before: orDefault(strings.TrimPrefix(g.branch, "refs/heads/"), "(detached)"), After: t.Branch})
	}
	if len(fields) == 0 {
		return &Change{Action: None}, nil
	}
	return &Change{Action: Update, Fields: fields, Plan: pl, Message: strings.Join(notes, "; ")}, nil
}

// shortCommit is a commit id as shown in a message.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return orDefault(c, "(none)")
}

// gitChangedFiles lists the files of git status --porcelain lines, at
// most ten.
func gitChangedFiles(lines []string) string {
	var f []string
	for i, l := range lines {
		if i == 10 {
			f = append(f, fmt.Sprintf("and %d more", len(lines)-10))
			break
		}
		if len(l) > 3 {
			l = l[3:]
		}
		f = append(f, l)
	}
	return strings.Join(f, ", ")
}

// Apply clones or fetches, then checks out the commit the check
// resolved: a local branch reset to it (tracking origin) or a detached
// HEAD. Without force it first makes sure no local change appeared since
// the check.
func (gitProvider) Apply(ctx context.Context, h Host, s *GitSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[gitPlan](ch, "git")
	if err != nil {
		return nil, err
	}
	res, err := h.Run(ctx, gitApplyScript(pl), nil)
	if err != nil {
		return nil, fmt.Errorf("%s", pl.Creds.redact(err.Error()))
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("%s", pl.Creds.redact((&CommandError{What: "git", ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 10)}).Error()))
	}
	return &Outcome{}, nil
}

// gitApplyScript is the shell script that carries out pl. Each failure
// says on stderr what failed, for CommandError.
func gitApplyScript(pl gitPlan) string {
	var b strings.Builder
	b.WriteString(gitEnv(pl.Creds))
	b.WriteString("p=" + shell.Quote(pl.Path) + "\nr=" + shell.Quote(pl.Remote) + "\nc=" + pl.Commit + "\n")
	b.WriteString("die() { printf 'opsmop: %s\\n' \"$*\" >&2; exit 1; }\n")
	depth := ""
	if pl.Depth > 0 {
		depth = " --depth " + strconv.Itoa(pl.Depth)
	}
	fetch := shell.Quote(pl.Fetch)
	switch {
	case strings.HasPrefix(pl.Fetch, "refs/heads/"):
		fetch = shell.Quote("+" + pl.Fetch + ":refs/remotes/origin/" + strings.TrimPrefix(pl.Fetch, "refs/heads/"))
	case strings.HasPrefix(pl.Fetch, "refs/tags/"):
		fetch = shell.Quote("+" + pl.Fetch + ":" + pl.Fetch)
	}
	if pl.Clone {
		clone := "g clone -q" + depth
		if pl.Branch != "" {
			clone += " --branch " + shell.Quote(pl.Branch)
		} else if strings.HasPrefix(pl.Fetch, "refs/tags/") {
			clone += " --branch " + shell.Quote(strings.TrimPrefix(pl.Fetch, "refs/tags/"))
		}
		b.WriteString(clone + " --no-checkout -- \"$r\" \"$p\" || die \"git clone into $p failed\"\n")
	} else {
		if pl.SetOrigin {
			b.WriteString("git -C \"$p\" remote set-url origin \"$r\" 2>/dev/null || git -C \"$p\" remote add origin \"$r\" || die \"setting origin of $p failed\"\n")
		}
		if !pl.Discard {
			b.WriteString("[ -z \"$(git -C \"$p\" status --porcelain --untracked-files=no)\" ] || die \"$p has local changes made since the check: nothing changed; run again\"\n")
		}
	}
	// Fetch what the check resolved unless the commit is already here.
	// A branch is fetched even when its commit is here, so that
	// origin/BRANCH, which it tracks, is where the check saw it.
	cond := "! git -C \"$p\" cat-file -e \"$c^{commit}\" 2>/dev/null"
	if pl.Branch != "" && !pl.Clone {
		cond = "true"
	}
	b.WriteString("if " + cond + "; then\n")
	b.WriteString("  g -C \"$p\" fetch -q" + depth + " origin " + fetch + " || die \"git fetch in $p failed\"\nfi\n")
	b.WriteString("git -C \"$p\" cat-file -e \"$c^{commit}\" 2>/dev/null || g -C \"$p\" fetch -q" + depth + " origin \"$c\" 2>/dev/null || true\n")
	b.WriteString("git -C \"$p\" cat-file -e \"$c^{commit}\" 2>/dev/null || die \"commit $c (what the check resolved) is not on the remote any more: run again\"\n")
	if pl.Discard {
		b.WriteString("git -C \"$p\" reset -q --hard || die \"git reset --hard in $p failed\"\n")
	}
	force := ""
	if pl.Discard || pl.Clone {
		force = " -f"
	}
	if pl.Branch != "" {
		br := shell.Quote(pl.Branch)
		b.WriteString("git -C \"$p\" checkout -q" + force + " -B " + br + " \"$c\" || die \"git checkout in $p failed\"\n")
		b.WriteString("git -C \"$p\" branch -q --set-upstream-to=" + shell.Quote("origin/"+pl.Branch) + " " + br + " 2>/dev/null || true\n")
	} else {
		b.WriteString("git -C \"$p\" checkout -q" + force + " --detach \"$c\" || die \"git checkout in $p failed\"\n")
	}
	b.WriteString("[ \"$(git -C \"$p\" rev-parse HEAD)\" = \"$c\" ] || die \"HEAD of $p is not $c after the checkout\"\n")
	return b.String()
}
