package providers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/policy"
)

// gitDocs is the git entry of typeDocs: the Behaviour section and the
// examples of docs/resources/git.md.
func gitDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- The probe (one per resource, in the host's one-round-trip probe batch) reads the clone at `path`: its HEAD commit, its branch, its `origin` URL, whether it is shallow, and its local changes (`git status --porcelain --untracked-files=no`, with `GIT_OPTIONAL_LOCKS=0` so that git does not even refresh the index: check writes nothing); and it resolves `version` on the remote with `git ls-remote` (run on the host, so the host needs access to the repository, not the machine running opsmop). The resource is unchanged when the commit checked out is the one `version` resolves to (and, for a branch, that branch is checked out) and nothing is modified. A full 40-hex commit needs no `ls-remote`: an unchanged clone at a commit costs no network at all.\n" +
			"- `version`: a branch is looked up first, then a tag (as Ansible's git does). A **branch** is checked out as a local branch of that name, reset to the remote's commit and tracking `origin/BRANCH` (`git checkout -B`), so `git pull` works there; when the branch moves upstream, the next check shows `commit: OLD -> NEW` and the message `BRANCH: OLD..NEW`, and apply moves to it. A **tag** (an annotated tag resolves to the commit it points at) and a **full commit id** are checked out as a detached HEAD; for them only the commit is compared (a branch that happens to be at that commit is left as it is). Unset, or `HEAD`: the remote's default branch (the branch its HEAD names, as `git clone` picks), tracked like any branch. An **abbreviated commit** (`3f2a9c1`) that is no branch or tag name is an error: a remote cannot resolve it without a fetch, and a short id can turn ambiguous; give the full 40-hex id. A commit the clone does not have yet (a shallow clone, a commit on another branch) is fetched by id: git's protocol v2 (the default since git 2.26; GitHub and GitLab speak it) serves any commit reachable from one of the remote's branches or tags (the lab test fetches a commit of `main` into a shallow clone of `dev`); a commit reachable from none cannot be fetched, and apply fails saying that the commit is not on the remote.\n" +
			"- Apply clones (`git clone --no-checkout`, with `--branch` for a branch or tag and `--depth` when given) into a missing `path` (parents created) or an empty directory, or fetches only what the version needs into an existing clone (`git fetch origin +refs/heads/BRANCH:refs/remotes/origin/BRANCH`, the tag, or the commit), then checks out the commit the check resolved: should the branch move again between check and apply, apply still checks out what the check showed, and the next check shows the newer commit. Without `force`, apply first makes sure no local change appeared since the check.\n" +
			"- `depth`: the clone is shallow (`--depth N`); fetches into a shallow clone keep that depth. An existing full clone is never made shallow (nor a shallow one deepened); `depth` is not compared by the check. Remove the clone to change it.\n" +
			"- **Local changes** (modified, added or deleted tracked files) are an error naming the path and the files (up to ten), as in Ansible, even when the commit is the wanted one: opsmop never throws work away unasked. `force = true` discards them (`git reset --hard`, `git checkout -f`): the change shows the `local changes` field (`FILES -> discarded`) and says so in its message. **Untracked files** are not local changes (Ansible ignores them too): they are never reported and never removed, even with `force` (use a `directory` resource with `state = \"absent\"` for a fresh tree); one in the way of a checkout makes the checkout fail with git's message unless `force`.\n" +
			"- `path` must be missing, an empty directory, or a clone (a directory holding `.git`). A file there, or a non-empty directory that is not a clone, is an error: opsmop never removes it, even with `force` (Ansible's git fails there too). A clone whose `origin` is another repository (compared without any user:password) is an error naming both; `force = true` points `origin` at `repo` (the `origin` field shows it) and goes on. A bare repository at `path` is not a clone.\n" +
			"- The host needs `git` (package git on Debian/Ubuntu, Fedora/RHEL, Alpine, Arch): without it check fails saying so. git runs as the connection's user, or the become user with `sudo = true`: that user owns a new clone. Since git 2.35.2, git refuses a clone owned by another user (\"detected dubious ownership\"); opsmop does not override that (it protects against hooks and config planted by that user), and check fails with git's message and says so: keep the clone owned by the user opsmop runs git as. For the same reason an existing empty directory at `path` owned by another user (say one a `directory` resource made for `app`) is an error in check, before anything is cloned: chown it to the user git runs as, or let the `git` resource create it.\n" +
			"- Never waiting for a prompt: every git command runs with `GIT_TERMINAL_PROMPT=0` and `GIT_SSH_COMMAND='ssh -o BatchMode=yes'`, so a missing credential, an unknown host key or a passphrase-protected key fails at once with git's message instead of hanging; and every command, `ls-remote` in the probe included, is bounded by the host's `command_timeout`. For ssh URLs, the git server's host key must already be in the known_hosts of the user running git (manage it with a `file` or `line` resource); opsmop does not accept new keys (Ansible's `accept_hostkey` has no equivalent).\n" +
			"- **Credentials** in an http(s) URL (`https://user:token@host/repo.git`): opsmop takes the user and password out of the URL, gives git the URL without them, and hands them to git through a credential helper that reads them from the environment of that one git process (`-c credential.helper=` first, so the host's own helpers are not asked). So the password is never on a command line on the host (not in `ps`, not in git's argv), **never stored in the clone's `.git/config`** (unlike Ansible, whose `origin` keeps the URL as given), and never shown: every field, message and error (and so `--json`) shows `user:xxxxx@`. It travels in the script opsmop sends over the connection; on a host where opsmop's persistent shell cannot start and commands run through the login shell's command line, that script (and so the password) is on that command line for the time of the command. Later runs need the credentials in `repo` again (origin holds none). Other URLs (ssh, git, file) are passed as they are; a password in them is still never shown.\n" +
			"- Not supported (write it down before migrating): Ansible's `update = false` (use a `shell` with `creates`), `bare`, `recursive` submodules (run `git submodule update --init` in a `shell` resource notified by this one), `separate_git_dir`, `key_file`/`ssh_opts`/`accept_hostkey` (configure ssh for the user on the host), `archive`, `single_branch`, `refspec`, `verify_commit`, `umask`.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `repo` that is empty, holds a control character, starts with `-`, uses a transport helper (`ext::...`, which runs commands), is a URL with another scheme than https, http, ssh, git or file, or is a relative path; a `path` that is not absolute or is `/`; a `version` that is no valid branch or tag name (a space, `~ ^ : ? * [ \\`, `..`, `@{`, a leading `-`, an empty component, a component starting with a dot or ending in `.lock`); a `depth` below 1. A value written as a template (`{{ ... }}`) is checked once rendered for each host.",
		toml: `[[roles.resources]]
type = "git"
repo = "https://github.com/example/app.git"
path = "/srv/app"
version = "main"
notify = ["restart app"]

[[roles.resources]]
type = "git"
repo = "git@github.com:example/tools.git"
path = "/opt/tools"
version = "v2.4.1"
depth = 1

[[roles.resources]]
type = "git"
repo = "/srv/mirror/config.git"
path = "/etc/app/config"
version = "3f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c"
force = true`,
		yaml: `- type: git
  repo: https://github.com/example/app.git
  path: /srv/app
  version: main
  notify: [restart app]
- type: git
  repo: git@github.com:example/tools.git
  path: /opt/tools
  version: v2.4.1
  depth: 1
- type: git
  repo: /srv/mirror/config.git
  path: /etc/app/config
  version: 3f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c
  force: true`,
	}
}

func TestGitValidate(t *testing.T) {
	const sha = "3f2a9c1d0e5b7a8c9d0e1f2a3b4c5d6e7f8a9b0c"
	testValidate(t, []validateCase{
		{"https", &GitSpec{Repo: "https://user:tok@github.com/x/y.git", Path: "/srv/a", Version: "main", Depth: ptr(1)}, nil},
		{"scp-like", &GitSpec{Repo: "git@github.com:x/y.git", Path: "/srv/a", Version: "release/1.2"}, nil},
		{"path and commit", &GitSpec{Repo: "/srv/r.git", Path: "/srv/a", Version: sha}, nil},
		{"file url", &GitSpec{Repo: "file:///srv/r.git", Path: "/srv/a"}, nil},
		{"templated", &GitSpec{Repo: "{{ .r }}", Path: "{{ .p }}", Version: "{{ .v }}"}, nil},
		{"missing", &GitSpec{}, []string{"repo: repo is empty", "path: path is empty"}},
		{"relative repo", &GitSpec{Repo: "repo.git", Path: "/srv/a"}, []string{`repo: repo "repo.git" is a relative path`}},
		{"option repo", &GitSpec{Repo: "--upload-pack=touch /tmp/x", Path: "/srv/a"}, []string{"repo: starts with -"}},
		{"ext transport", &GitSpec{Repo: "ext::sh -c touch% /tmp/pwned", Path: "/srv/a"}, []string{"repo: transport helper"}},
		{"bad scheme, password hidden", &GitSpec{Repo: "gopher://u:hunter2@h/x", Path: "/srv/a"}, []string{`repo: repo "gopher://u:xxxxx@h/x": unknown URL scheme "gopher"`}},
		{"newline in repo", &GitSpec{Repo: "https://h/x\nrm -rf /", Path: "/srv/a"}, []string{"repo: control character"}},
		{"relative path", &GitSpec{Repo: "/r", Path: "srv/a"}, []string{"path: not absolute"}},
		{"root path", &GitSpec{Repo: "/r", Path: "/"}, []string{"path: needs its own directory"}},
		{"bad versions", &GitSpec{Repo: "/r", Path: "/a", Version: "main~1"}, []string{`version: version "main~1": contains one of ~ ^`}},
		{"dotdot", &GitSpec{Repo: "/r", Path: "/a", Version: "a..b"}, []string{"version: contains .."}},
		{"option version", &GitSpec{Repo: "/r", Path: "/a", Version: "-b"}, []string{"version: starts with -"}},
		{"lock", &GitSpec{Repo: "/r", Path: "/a", Version: "x/y.lock"}, []string{"version: ends with .lock"}},
		{"space", &GitSpec{Repo: "/r", Path: "/a", Version: "a b"}, []string{"version: space"}},
		{"depth 0", &GitSpec{Repo: "/r", Path: "/a", Depth: ptr(0)}, []string{"depth: depth 0: want a number of commits from 1"}},
	})
}

// TestGitValidateAtKeyLine: each problem is reported at its key's
// file:line (engine.Validate maps KeyError.Key with KeyPos), and the
// password in repo is never shown.
func TestGitValidateAtKeyLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.toml")
	src := "[[roles]]\nname = \"r\"\n\n[[roles.resources]]\ntype = \"git\"\nrepo = \"gopher://u:s3cret@h/x\"\npath = \"/srv/app\"\nversion = \"a..b\"\ndepth = 0\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p, Registry())
	if err != nil {
		t.Fatal(err)
	}
	res := pol.Roles[0].Resources[0]
	var se *SpecError
	if err := res.Spec.(Validator).Validate(); !errors.As(err, &se) {
		t.Fatalf("got %v; want a *SpecError", err)
	}
	var got []string
	for _, pr := range se.Problems {
		pos := res.KeyPos(pr.Key)
		got = append(got, fmt.Sprintf("%s:%d: %s", filepath.Base(pos.File), pos.Line, pr.Msg))
	}
	want := []string{
		`site.toml:6: repo "gopher://u:xxxxx@h/x": unknown URL scheme "gopher": want https, http, ssh, git or file`,
		`site.toml:8: version "a..b": contains .. or @{, or is @: not a branch or tag name (write the commit's full 40-hex id)`,
		`site.toml:9: depth 0: want a number of commits from 1 (leave depth out for the full history)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestGitResolve(t *testing.T) {
	const a, b, c = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccccccccccccc"
	ls := []string{"ref: refs/heads/main\tHEAD", a + "\tHEAD", a + "\trefs/heads/main", b + "\trefs/heads/v1", c + "\trefs/tags/v1", b + "\trefs/tags/v2", a + "\trefs/tags/v2^{}", "warning: redirecting to https://x/"}
	tests := []struct {
		version string
		ls      []string
		want    gitTarget
		err     string
	}{
		{"", ls, gitTarget{Commit: a, Branch: "main", Fetch: "refs/heads/main", Shown: "main (the remote's HEAD)"}, ""},
		{"main", ls, gitTarget{Commit: a, Branch: "main", Fetch: "refs/heads/main", Shown: "main"}, ""},
		{"v1", ls, gitTarget{Commit: b, Branch: "v1", Fetch: "refs/heads/v1", Shown: "v1"}, ""}, // a branch wins over a tag
		{"v2", ls, gitTarget{Commit: a, Fetch: "refs/tags/v2", Shown: "tag v2"}, ""},            // annotated: peeled
		{c, nil, gitTarget{Commit: c, Fetch: c, Shown: "commit " + c}, ""},
		{"", []string{a + "\tHEAD"}, gitTarget{Commit: a, Fetch: a, Shown: "the remote's detached HEAD"}, ""},
		{"", nil, gitTarget{}, "the remote has no HEAD"},
		{"nosuch", ls, gitTarget{}, `version "nosuch" is neither a branch nor a tag of the remote`},
		{"abc1234", ls, gitTarget{}, "an abbreviated commit id cannot be resolved against a remote: give the full 40-hex commit id"},
	}
	for _, tc := range tests {
		t.Run(tc.version, func(t *testing.T) {
			got, err := resolveGitVersion(tc.version, tc.ls)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestGitRemoteAndRedact(t *testing.T) {
	tests := []struct {
		repo, remote string
		creds        gitCreds
	}{
		{"https://u:p%40ss@h/x.git", "https://h/x.git", gitCreds{"u", "p@ss"}},
		{"http://user:secret@127.0.0.1:1/x", "http://127.0.0.1:1/x", gitCreds{"user", "secret"}},
		{"https://token@h/x.git", "https://token@h/x.git", gitCreds{}},
		{"ssh://git@h/x.git", "ssh://git@h/x.git", gitCreds{}},
		{"git@h:x.git", "git@h:x.git", gitCreds{}},
		{"/srv/r.git", "/srv/r.git", gitCreds{}},
	}
	for _, tc := range tests {
		t.Run(tc.repo, func(t *testing.T) {
			remote, creds := gitRemote(tc.repo)
			if remote != tc.remote || creds != tc.creds {
				t.Errorf("got %q %+v; want %q %+v", remote, creds, tc.remote, tc.creds)
			}
		})
	}
	c := gitCreds{"u", "p@ss"}
	for _, s := range []string{"fatal: https://u:p@ss@h/x", "fatal: https://u:p%40ss@h/x", "a p@ss b", "ftp://x:y@z/"} {
		if got := c.redact(s); strings.Contains(got, "p@ss") || strings.Contains(got, "p%40ss") || strings.Contains(got, ":y@") {
			t.Errorf("redact(%q) = %q: shows a password", s, got)
		}
	}
	if got, want := redactGitURL("clone https://alice:pw@h/x and ssh://b:c@d/e"), "clone https://alice:xxxxx@h/x and ssh://b:xxxxx@d/e"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	// The probe gives git the URL without the password, which reaches
	// git only through the environment of its credential helper.
	script, err := mustProvider("git").Probe(newReq(&GitSpec{Repo: "https://u:s3cret@h/x.git", Path: "/srv/a"}, "", nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(script, "\n") {
		if strings.Contains(l, "s3cret") && !strings.HasPrefix(l, "OPSMOP_GIT_USER=") {
			t.Errorf("probe line %q holds the password outside the helper's environment", l)
		}
	}
	if !strings.Contains(script, "\nr=https://h/x.git\n") {
		t.Errorf("probe: got %q; want the URL without credentials", script)
	}
}

// TestGitCheck covers Check's decisions on canned probe output.
func TestGitCheck(t *testing.T) {
	const a, b = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	ls := "lsrc=0\nls=ref: refs/heads/main\tHEAD\nls=" + b + "\tHEAD\nls=" + b + "\trefs/heads/main\n"
	clone := func(head, branch, origin, changes string) string {
		return "git=present\npath=clone\nhead=" + head + "\nbranch=" + branch + "\norigin=" + origin + "\nshallow=false\n" + changes
	}
	spec := GitSpec{Repo: "/srv/r.git", Path: "/srv/app"}
	tests := []struct {
		name   string
		spec   GitSpec
		out    string
		action Action
		fields map[string]string
		err    string
	}{
		{"absent", spec, "git=present\npath=absent\n" + ls, Create, map[string]string{"commit": " -> " + b, "version": " -> main (the remote's HEAD)"}, ""},
		{"up to date", spec, clone(b, "refs/heads/main", "/srv/r.git", "") + ls, None, nil, ""},
		{"moved", spec, clone(a, "refs/heads/main", "/srv/r.git", "") + ls, Update, map[string]string{"commit": a + " -> " + b}, ""},
		{"detached at the commit", spec, clone(b, "", "/srv/r.git", "") + ls, Update, map[string]string{"branch": "(detached) -> main"}, ""},
		{"local changes", spec, clone(b, "refs/heads/main", "/srv/r.git", "change= M a.txt\nchange=D  b/c\n") + ls, "", nil, "/srv/app has local changes (a.txt, b/c): commit or discard them, or set force = true"},
		{"local changes forced", GitSpec{Repo: "/srv/r.git", Path: "/srv/app", Force: true}, clone(b, "refs/heads/main", "/srv/r.git", "change= M a.txt\n") + ls, Update, map[string]string{"local changes": "a.txt -> discarded"}, ""},
		{"other origin", spec, clone(b, "refs/heads/main", "/srv/other.git", "") + ls, "", nil, "/srv/app is a clone of /srv/other.git, not of /srv/r.git"},
		{"other origin forced", GitSpec{Repo: "/srv/r.git", Path: "/srv/app", Force: true}, clone(b, "refs/heads/main", "/srv/other.git", "") + ls, Update, map[string]string{"origin": "/srv/other.git -> /srv/r.git"}, ""},
		{"not a clone", spec, "git=present\npath=notclone\n" + ls, "", nil, "/srv/app exists, is not empty and is not a git clone"},
		{"a file", spec, "git=present\npath=notdir\n" + ls, "", nil, "/srv/app exists and is not a directory"},
		{"no git", spec, "git=missing\n", "", nil, "git is not installed on the host: install the package git"},
		{"dubious", spec, "git=present\npath=clone\nrepoerr=fatal: detected dubious ownership in repository at '/srv/app'\n" + ls, "", nil, "git cannot read the clone at /srv/app: fatal: detected dubious ownership"},
		{"unreachable", spec, "git=present\npath=absent\nlsrc=128\nls=fatal: '/srv/r.git' does not appear to be a git repository\n", "", nil, "cannot read the remote /srv/r.git (git ls-remote failed with exit status 128): fatal: '/srv/r.git' does not appear"},
		{"commit needs no remote", GitSpec{Repo: "/srv/r.git", Path: "/srv/app", Version: b}, clone(b, "", "/srv/r.git", ""), None, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := mustProvider("git").Check(newReq(&tc.spec, "", nil, nil), connection.Result{Stdout: []byte(tc.out)})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error containing %q", ch, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("got action %s (%v); want %s", ch.Action, ch.Fields, tc.action)
			}
			got := fieldMap(ch)
			for k, v := range tc.fields {
				if got[k] != v {
					t.Errorf("field %s: got %q; want %q (all %v)", k, got[k], v, got)
				}
			}
		})
	}
}

// TestGitVersionAsGit: what checkGitVersion accepts, git check-ref-format
// accepts as a branch name, and the other way round.
func TestGitVersionAsGit(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("no git on this machine: run make deps (.ci/deps installs git)")
	}
	for _, v := range []string{"main", "release/1.2", "v1.0.0", "feature/x-y_z", "ü", "a..b", "a/.b", ".a", "x.lock", "x/y.lock/z", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[", `a\b`, "a@{1}", "@", "a/", "a//b", "a.", "-x", "a\x7f"} {
		t.Run(v, func(t *testing.T) {
			ours := checkGitVersion(v) == nil
			theirs := exec.Command("git", "check-ref-format", "refs/heads/"+v).Run() == nil
			if v == "@" || v == "-x" {
				theirs = false // valid ref names, refused on purpose: @ is git's HEAD shorthand, -x an option to git
			}
			if ours != theirs {
				t.Errorf("checkGitVersion accepts %v; git check-ref-format accepts %v", ours, theirs)
			}
		})
	}
}

// FuzzGitVersion: checking a version never panics, and what it accepts
// is a ref name git would take: no space, control character or special
// character, no .. or @{, no leading - or /.
func FuzzGitVersion(f *testing.F) {
	for _, v := range []string{"main", "release/1.2", "v1.0.0", "a..b", "-x", "x.lock", "@", "a b", "a/.b", "@{-1}", "x/", "ü"} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if checkGitVersion(v) != nil {
			return
		}
		if strings.ContainsAny(v, " ~^:?*[\\\t\n\x00") || strings.Contains(v, "..") || strings.Contains(v, "@{") ||
			strings.HasPrefix(v, "-") || strings.HasPrefix(v, "/") || strings.HasSuffix(v, ".lock") {
			t.Fatalf("accepted %q", v)
		}
	})
}

// FuzzGitProbe: any probe output from a hostile host parses and checks
// without a panic, and no error or field shows the password.
func FuzzGitProbe(f *testing.F) {
	f.Add([]byte("git=present\npath=clone\nhead=x\nlsrc=0\nls=ref: refs/heads/main\tHEAD\n"), "")
	f.Add([]byte("git=present\npath=absent\nlsrc=128\nls=fatal: https://u:s3cret@h/x\n"), "main")
	f.Add([]byte("lsrc=x\n"), "v1")
	f.Fuzz(func(t *testing.T, out []byte, version string) {
		s := &GitSpec{Repo: "https://u:s3cret@h/x.git", Path: "/srv/a", Version: version}
		if s.Validate() != nil {
			return
		}
		ch, err := mustProvider("git").Check(newReq(s, "", nil, nil), connection.Result{Stdout: out})
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Fatalf("error shows the password: %v", err)
		}
		if ch != nil && strings.Contains(fmt.Sprint(ch.Fields, ch.Message), "s3cret") {
			t.Fatalf("change shows the password: %v %s", ch.Fields, ch.Message)
		}
	})
}

// TestGitOnLabHost runs the provider against a real lab host with a bare
// repository on it (branches, a lightweight and an annotated tag):
// clone at the remote's HEAD, a branch moved upstream, tags, a commit, a
// shallow clone of another branch by file:// URL, local changes refused
// and forced away, a path that is no clone, another origin, git missing,
// credentials never shown, and over SSH as ops with sudo.
func TestGitOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 39, Hosts: []lab.HostSpec{{Name: "git1"}}})
	h := &labHost{pid: l.Host("git1").PID}
	if out := h.exec(t, "command -v git || echo none"); !strings.HasSuffix(out, "git\n") {
		t.Fatalf("lab host has no git (got %q): run make deps (.ci/deps installs git)", out)
	}
	p := mustProvider("git")
	// ops over SSH, with sudo (NOPASSWD): opsmop's persistent shell.
	pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	t.Cleanup(func() { pool.Close() })
	lh := l.Host("git1")
	sshCtx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ops, err := pool.Host(sshCtx, connection.Target{Name: "git1-ops", Address: lh.Addr, Port: lh.Port, User: "ops", Sudo: true,
		PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
	if err != nil {
		t.Fatalf("connect as ops: %v", err)
	}
	// The upstream: a bare repository and a work tree that pushes to it.
	h.exec(t, `set -e
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
git init -q --bare -b main /srv/repo.git
git init -q -b main /srv/up && cd /srv/up
git remote add origin /srv/repo.git
echo one > a.txt && git add a.txt && git commit -q -m one && git tag v1
echo two > a.txt && git commit -q -am two && git tag -a v2 -m 'release 2'
echo three > b.txt && git add b.txt && git commit -q -m three
git checkout -q -b dev && echo dev > d.txt && git add d.txt && git commit -q -m dev && echo dev2 >> d.txt && git commit -q -am dev2
git checkout -q main && git push -q origin main dev --tags`)
	rev := func(dir, ref string) string {
		return strings.TrimSpace(h.exec(t, "git -C "+dir+" rev-parse "+ref))
	}
	push := func(msg string) string {
		h.exec(t, "cd /srv/up && echo "+msg+" >> a.txt && git -c user.name=t -c user.email=t@e commit -q -am "+msg+" && git push -q origin main")
		return rev("/srv/up", "main")
	}
	snap := h.snap(t, "find /srv/app /srv/app2 /srv/notclone /srv/file -printf '%p %m %s %T@\\n' 2>/dev/null | sort; find /srv/app/.git -type f -exec sha256sum {} + 2>/dev/null | sort; true")
	req := func(s GitSpec) *Request { return newReq(&s, "", nil, nil) }
	state := func(dir string) string {
		return h.exec(t, "cd "+dir+" && echo $(git rev-parse HEAD) $(git symbolic-ref -q --short HEAD || echo detached) $(git status --porcelain --untracked-files=no | wc -l)")
	}

	t.Run("clone at the remote's HEAD", func(t *testing.T) {
		ch := converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app"}), snap, Create)
		main := rev("/srv/repo.git", "main")
		if got := fieldMap(ch); got["commit"] != " -> "+main || got["version"] != " -> main (the remote's HEAD)" || got["repo"] != " -> /srv/repo.git" {
			t.Errorf("fields: got %v", got)
		}
		if got, want := state("/srv/app"), main+" main 0\n"; got != want {
			t.Errorf("clone: got %q; want %q", got, want)
		}
		if got := h.exec(t, "git -C /srv/app rev-parse --abbrev-ref main@{upstream}; cat /srv/app/b.txt"); got != "origin/main\nthree\n" {
			t.Errorf("tracking and work tree: got %q", got)
		}
	})

	t.Run("branch moved upstream", func(t *testing.T) {
		old := rev("/srv/app", "HEAD")
		moved := push("four")
		ch := converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app", Version: "main"}), snap, Update)
		if got := fieldMap(ch)["commit"]; got != old+" -> "+moved {
			t.Errorf("commit field: got %q; want %q", got, old+" -> "+moved)
		}
		if want := "main: " + old[:12] + ".." + moved[:12]; ch.Message != want {
			t.Errorf("message: got %q; want %q", ch.Message, want)
		}
		if got, want := state("/srv/app"), moved+" main 0\n"; got != want {
			t.Errorf("after apply: got %q; want %q", got, want)
		}
	})

	t.Run("tags and a commit", func(t *testing.T) {
		converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app", Version: "v1"}), snap, Update)
		if got, want := state("/srv/app"), rev("/srv/repo.git", "v1")+" detached 0\n"; got != want {
			t.Errorf("v1: got %q; want %q", got, want)
		}
		converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app", Version: "v2"}), snap, Update)
		if got, want := state("/srv/app"), rev("/srv/repo.git", "v2^{commit}")+" detached 0\n"; got != want {
			t.Errorf("annotated v2: got %q; want %q", got, want)
		}
		dev := rev("/srv/repo.git", "dev~1")
		converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app", Version: dev}), snap, Update)
		if got, want := state("/srv/app"), dev+" detached 0\n"; got != want {
			t.Errorf("commit: got %q; want %q", got, want)
		}
		// Back to the branch: checked out as the branch again.
		converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app"}), snap, Update)
		if got, want := state("/srv/app"), rev("/srv/repo.git", "main")+" main 0\n"; got != want {
			t.Errorf("back on main: got %q; want %q", got, want)
		}
	})

	t.Run("shallow clone of a branch by file URL", func(t *testing.T) {
		converge(t, h, p, req(GitSpec{Repo: "file:///srv/repo.git", Path: "/srv/app2", Version: "dev", Depth: ptr(1)}), snap, Create)
		if got, want := state("/srv/app2"), rev("/srv/repo.git", "dev")+" dev 0\n"; got != want {
			t.Errorf("clone: got %q; want %q", got, want)
		}
		if got := h.exec(t, "git -C /srv/app2 rev-parse --is-shallow-repository; git -C /srv/app2 rev-list --count HEAD"); got != "true\n1\n" {
			t.Errorf("shallow: got %q; want true and 1 commit", got)
		}
		// A commit of another branch, fetched by id into the shallow clone.
		main := rev("/srv/repo.git", "main")
		converge(t, h, p, req(GitSpec{Repo: "file:///srv/repo.git", Path: "/srv/app2", Version: main, Depth: ptr(1)}), snap, Update)
		if got, want := state("/srv/app2"), main+" detached 0\n"; got != want {
			t.Errorf("commit: got %q; want %q", got, want)
		}
	})

	t.Run("local changes", func(t *testing.T) {
		h.exec(t, "echo mine >> /srv/app/a.txt && rm /srv/app/b.txt && echo new > /srv/app/untracked.txt")
		before := snap()
		_, err := check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app"}))
		if err == nil || !strings.Contains(err.Error(), "git /srv/app: /srv/app has local changes (a.txt, b.txt): commit or discard them, or set force = true to discard them") {
			t.Errorf("got %v; want a local-changes error naming the path and files", err)
		}
		if snap() != before {
			t.Error("the refused check changed the host")
		}
		ch := converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app", Force: true}), snap, Update)
		if got := fieldMap(ch)["local changes"]; got != "a.txt, b.txt -> discarded" || !strings.Contains(ch.Message, "discards the local changes in /srv/app") {
			t.Errorf("got field %q message %q", got, ch.Message)
		}
		if got := h.exec(t, "cat /srv/app/untracked.txt /srv/app/b.txt; git -C /srv/app status --porcelain"); got != "new\nthree\n?? untracked.txt\n" {
			t.Errorf("after force: got %q; want the tracked files restored and the untracked one kept", got)
		}
	})

	t.Run("changed between check and apply", func(t *testing.T) {
		ctx := testCtx(t)
		r := req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app"})
		old := rev("/srv/app", "HEAD")
		push("five")
		ch, err := check(t, ctx, h, p, r)
		if err != nil || ch.Action != Update {
			t.Fatalf("check: got %v, %v; want update", ch, err)
		}
		h.exec(t, "echo meanwhile >> /srv/app/a.txt")
		if _, err := p.Apply(ctx, h, r, ch); err == nil || !strings.Contains(err.Error(), "/srv/app has local changes made since the check: nothing changed; run again") {
			t.Errorf("apply: got %v; want a refusal", err)
		}
		if got := h.exec(t, "git -C /srv/app rev-parse HEAD; tail -1 /srv/app/a.txt"); got != old+"\nmeanwhile\n" {
			t.Errorf("after the refusal: got %q; want HEAD and the change as they were", got)
		}
		h.exec(t, "git -C /srv/app checkout -q -- a.txt")
		converge(t, h, p, r, snap, Update)
	})

	t.Run("not a clone, another origin", func(t *testing.T) {
		h.exec(t, "mkdir -p /srv/notclone && echo x > /srv/notclone/f && echo x > /srv/file")
		for _, tc := range []struct{ path, want string }{
			{"/srv/notclone", "git /srv/notclone: /srv/notclone exists, is not empty and is not a git clone (no /srv/notclone/.git): remove it or choose another path"},
			{"/srv/file", "git /srv/file: /srv/file exists and is not a directory"},
		} {
			before := snap()
			if _, err := check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/repo.git", Path: tc.path, Force: true})); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%s: got %v; want %q", tc.path, err, tc.want)
			}
			if snap() != before {
				t.Errorf("%s: check changed the host", tc.path)
			}
		}
		if _, err := check(t, testCtx(t), h, p, req(GitSpec{Repo: "file:///srv/repo.git", Path: "/srv/app"})); err == nil || !strings.Contains(err.Error(), "/srv/app is a clone of /srv/repo.git, not of file:///srv/repo.git: remove it, choose another path, or set force = true to point origin at repo") {
			t.Errorf("other origin: got %v", err)
		}
		ch := converge(t, h, p, req(GitSpec{Repo: "file:///srv/repo.git", Path: "/srv/app", Force: true}), snap, Update)
		if got := fieldMap(ch)["origin"]; got != "/srv/repo.git -> file:///srv/repo.git" {
			t.Errorf("origin field: got %q", got)
		}
		if got := h.exec(t, "git -C /srv/app config remote.origin.url"); got != "file:///srv/repo.git\n" {
			t.Errorf("origin: got %q", got)
		}
	})

	t.Run("bad remote and version", func(t *testing.T) {
		_, err := check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/nosuch.git", Path: "/srv/x"}))
		if err == nil || !strings.Contains(err.Error(), "git /srv/x: cannot read the remote /srv/nosuch.git (git ls-remote failed with exit status 128)") {
			t.Errorf("missing remote: got %v", err)
		}
		_, err = check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/x", Version: "nosuch"}))
		if err == nil || !strings.Contains(err.Error(), `git /srv/x: /srv/repo.git: version "nosuch" is neither a branch nor a tag of the remote`) {
			t.Errorf("missing version: got %v", err)
		}
		if out := h.exec(t, "ls -d /srv/x 2>&1 || true"); !strings.Contains(out, "No such file") {
			t.Errorf("check created /srv/x: %q", out)
		}
		// Hostile values are data, never shell code.
		hostile := "$(touch${IFS}/tmp/pwned)`touch${IFS}/tmp/pwned`"
		_, err = check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/x", Version: hostile}))
		if err == nil || !strings.Contains(err.Error(), "is neither a branch nor a tag of the remote") {
			t.Errorf("hostile version: got %v", err)
		}
		h.exec(t, "cd /srv/up && git tag "+shell.Quote(hostile)+" && git push -q origin "+shell.Quote("refs/tags/"+hostile))
		converge(t, h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/x';touch /tmp/pwned;'", Version: hostile}), snap, Create)
		if out := h.exec(t, "ls /tmp/pwned 2>&1 || true; git -C \"/srv/x';touch /tmp/pwned;'\" describe --tags"); !strings.Contains(out, "No such file") || !strings.HasSuffix(out, hostile+"\n") {
			t.Errorf("hostile version and path: got %q; want no /tmp/pwned and the clone at the tag", out)
		}
	})

	t.Run("credentials never shown", func(t *testing.T) {
		ctx := testCtx(t)
		start := time.Now()
		for _, repo := range []string{"http://user:secret@127.0.0.1:1/x", "https://user:secret@127.0.0.1:1/x.git"} {
			_, err := check(t, ctx, h, p, req(GitSpec{Repo: repo, Path: "/srv/cred"}))
			if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "cannot read the remote "+strings.Replace(repo, "secret", "xxxxx", 1)) {
				t.Errorf("%s: got %v; want an unreachable-remote error without the password", repo, err)
			}
			// A full commit skips ls-remote: the clone itself fails in apply.
			r := req(GitSpec{Repo: repo, Path: "/srv/cred", Version: strings.Repeat("a", 40)})
			ch, err := check(t, ctx, h, p, r)
			if err != nil || ch.Action != Create || strings.Contains(fmt.Sprint(ch.Fields, ch.Message), "secret") {
				t.Fatalf("check: got %v, %v; want a create not showing the password", ch, err)
			}
			if _, err := p.Apply(ctx, h, r, ch); err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "git clone into /srv/cred failed") {
				t.Errorf("apply: got %v; want a clone error without the password", err)
			}
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("unreachable remotes took %v: something waited for a prompt", d)
		}
	})

	t.Run("over ssh as ops with sudo", func(t *testing.T) {
		s3 := h.snap(t, "find /srv/app3 -printf '%p %m %u %s %T@\\n' 2>/dev/null | sort; true")
		converge(t, ops, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app3", Version: "v2"}), s3, Create)
		if got := h.exec(t, "stat -c %U /srv/app3/.git; git -C /srv/app3 describe --tags"); got != "root\nv2\n" {
			t.Errorf("clone under sudo: got %q; want root's clone at v2", got)
		}
		// An existing empty directory is cloned into.
		h.exec(t, "mkdir /srv/app4 && chown app /srv/app4")
		s4 := h.snap(t, "find /srv/app4 -printf '%p %m %u %s %T@\\n' | sort")
		before := s4()
		if _, err := check(t, testCtx(t), ops, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app4"})); err == nil || !strings.Contains(err.Error(), "/srv/app4 is an empty directory owned by uid "+strings.TrimSpace(h.exec(t, "id -u app"))+", not by uid 0 that runs git") {
			t.Errorf("empty directory of app: got %v; want an ownership error", err)
		}
		if s4() != before {
			t.Error("the refused check changed the host")
		}
		h.exec(t, "chown root /srv/app4")
		converge(t, ops, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app4", Version: "dev"}), s4, Create)
		if got, want := state("/srv/app4"), rev("/srv/repo.git", "dev")+" dev 0\n"; got != want {
			t.Errorf("clone into an empty directory: got %q; want %q", got, want)
		}
		// What a no-op check costs over SSH: one probe, in one round trip.
		timeCheck := func(s GitSpec) time.Duration {
			const rounds = 10
			start := time.Now()
			for range rounds {
				ch, err := check(t, testCtx(t), ops, p, req(s))
				if err != nil || ch.Changed() {
					t.Fatalf("no-op check: got %v, %v", ch, err)
				}
			}
			return time.Since(start) / rounds
		}
		branch := timeCheck(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app4", Version: "dev"})
		commit := timeCheck(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app3", Version: rev("/srv/repo.git", "v2^{commit}")})
		t.Logf("no-op check over SSH with sudo: branch (git ls-remote on a local repository) %v, full commit id (no ls-remote) %v", branch, commit)
	})

	t.Run("drift repaired", func(t *testing.T) {
		want := rev("/srv/app", "HEAD")
		h.exec(t, "git -C /srv/app checkout -q --detach HEAD~1")
		ch := converge(t, h, p, req(GitSpec{Repo: "file:///srv/repo.git", Path: "/srv/app"}), snap, Update)
		if got := fieldMap(ch); got["commit"] != rev("/srv/repo.git", "main~1")+" -> "+want || got["branch"] != "(detached) -> main" {
			t.Errorf("fields: got %v", got)
		}
		if got := state("/srv/app"); got != want+" main 0\n" {
			t.Errorf("after repair: got %q", got)
		}
	})

	t.Run("http with credentials", func(t *testing.T) {
		// A smart-HTTP server on the controller (the lab host shares its
		// network) that wants user:pass, in front of git http-backend.
		const user, pass = "deployer", "pa:ss@w/rd-secret"
		root := t.TempDir()
		for _, c := range [][]string{
			{"init", "-q", "--bare", "-b", "main", root + "/r.git"},
			{"init", "-q", "-b", "main", root + "/w"},
			{"-C", root + "/w", "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "one"},
			{"-C", root + "/w", "push", "-q", root + "/r.git", "main"},
		} {
			if out, err := exec.Command("git", c...).CombinedOutput(); err != nil {
				t.Fatalf("git %v: %v: %s", c, err, out)
			}
		}
		backend := &cgi.Handler{Path: "/usr/lib/git-core/git-http-backend", Env: []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"}}
		var asked atomic.Int32
		var psSeen atomic.Value
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if u, pw, ok := r.BasicAuth(); !ok || u != user || pw != pass {
				asked.Add(1)
				w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
				http.Error(w, "auth", http.StatusUnauthorized)
				return
			}
			if psSeen.Load() == nil {
				// git is waiting for this answer: what does ps show?
				res, err := h.Run(context.Background(), "ps -eo user,args", nil)
				psSeen.Store(fmt.Sprintf("%s%v", res.Stdout, err))
			}
			backend.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		u, _ := url.Parse(srv.URL + "/r.git")
		u.User = url.UserPassword(user, pass)
		repo := u.String()
		if !strings.Contains(repo, "%40") {
			t.Fatalf("the test password is not escaped in %q", repo)
		}
		shows := func(s string) bool {
			return strings.Contains(s, "secret") || strings.Contains(s, "pa:ss") || strings.Contains(s, "pa%3Ass")
		}
		cs := h.snap(t, "find /srv/cred -printf '%p %m %s %T@\\n' 2>/dev/null | sort; true")
		// Over SSH as ops with sudo, as opsmop runs: the script reaches
		// the persistent shell inside the session, never a command line.
		ch := converge(t, ops, p, req(GitSpec{Repo: repo, Path: "/srv/cred"}), cs, Create)
		if shows(fmt.Sprint(ch.Fields, ch.Message)) || !strings.Contains(fieldMap(ch)["repo"], "deployer:xxxxx@127.0.0.1") {
			t.Errorf("change: got %v %q; want the password hidden", ch.Fields, ch.Message)
		}
		if got := h.exec(t, "cat /srv/cred/.git/config; git -C /srv/cred log --format=%s"); shows(got) || !strings.Contains(got, "url = "+srv.URL+"/r.git\n") || !strings.HasSuffix(got, "one\n") {
			t.Errorf("clone: got %q; want origin without credentials and the commit", got)
		}
		if ps, _ := psSeen.Load().(string); shows(ps) || !strings.Contains(ps, "remote-http") {
			t.Errorf("ps on the host while git talked to the server: got\n%s\nwant git's processes, without the password", ps)
		}
		if asked.Load() == 0 {
			t.Error("the server never asked for credentials: the test proves nothing")
		}
		// A wrong password: a quick error, without it.
		u.User = url.UserPassword(user, "wrong-secret")
		start := time.Now()
		_, err := check(t, testCtx(t), ops, p, req(GitSpec{Repo: u.String(), Path: "/srv/cred"}))
		if err == nil || shows(err.Error()) || !strings.Contains(err.Error(), "cannot read the remote http://deployer:xxxxx@127.0.0.1") {
			t.Errorf("wrong password: got %v; want an error without the password", err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Errorf("wrong password took %v", d)
		}
	})

	t.Run("a server that never answers", func(t *testing.T) {
		// Accepts and says nothing: git would wait forever; the host's
		// command_timeout ends the probe.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			var held []net.Conn
			for {
				c, err := ln.Accept()
				if err != nil {
					for _, c := range held {
						c.Close()
					}
					return
				}
				held = append(held, c)
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		short, err := pool.Host(sshCtx, connection.Target{Name: "git1-short", Address: lh.Addr, Port: lh.Port, User: "ops", Sudo: true,
			PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 3 * time.Second})
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		start := time.Now()
		_, err = check(t, testCtx(t), short, p, req(GitSpec{Repo: "http://u:hang-secret@" + ln.Addr().String() + "/x.git", Path: "/srv/hang"}))
		if d := time.Since(start); err == nil || d > 20*time.Second || strings.Contains(err.Error(), "hang-secret") {
			t.Errorf("got %v after %v; want a timeout error after about 3s, without the password", err, d)
		}
		t.Logf("silent server: %v", err)
	})

	t.Run("git missing", func(t *testing.T) {
		h.exec(t, "rm -f \"$(command -v git)\"")
		_, err := check(t, testCtx(t), h, p, req(GitSpec{Repo: "/srv/repo.git", Path: "/srv/app"}))
		if err == nil || err.Error() != "git /srv/app: git is not installed on the host: install the package git (Debian/Ubuntu, Fedora/RHEL, Alpine, Arch: git), e.g. with a package resource before this one" {
			t.Errorf("got %v", err)
		}
	})
}
