package providers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/policy"
)

// downloadDocs is the download entry of typeDocs: the Behaviour section
// and the examples of docs/resources/download.md.
func downloadDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- Where the file is fetched: on the host, with `curl` when it has it, else `wget` (whichever exists; the probe looks). With neither, check fails naming both and suggesting `via_controller = true`. With `via_controller = true` opsmop fetches the file itself, with Go's net/http on the machine running opsmop (its `HTTP_PROXY`/`HTTPS_PROXY`/`NO_PROXY` and CA certificates), and uploads it over the host's connection (SFTP, or the shell when SFTP cannot start): for hosts without a route to the server, or without curl and wget. On the host, the tools use the host's proxy environment and CA certificates.\n" +
			"- Idempotent by checksum. With `sha256`, every check compares the file's sha256, computed **on the host** (sha256sum, openssl or shasum, as for `file`), with it: the same sum is nothing to do; another sum (the file was changed by hand, or `sha256` and `url` moved to a new release) is a download, shown as `content: sha256:old… -> sha256:new…`. Without `sha256`, as Ansible's `get_url` without `checksum`: an existing file is left as it is (only `mode`/`owner`/`group` are managed) and a missing file is downloaded; a changed `url` alone does not download again. Give `sha256` whenever you can: it is the only way a check can know the contents.\n" +
			"- `force = true` without `sha256`, as Ansible's `force: yes`: the file is downloaded on every apply and replaces the file only when its contents differ. Check cannot know (it never downloads) and reports the resource as `run` every time, with a note; apply reports it unchanged when the download equals the file (the file is then not touched). With `sha256`, `force` changes nothing: the sum decides.\n" +
			"- Hosts without a hash tool (no sha256sum, openssl or shasum): with `sha256` (or `force`) and the download on the host, check fails saying what to install, or to use `via_controller`, since the host could not verify the download. With `via_controller = true` the download is verified on the controller, and later checks read the existing file back (up to 64 MiB, as `file` does) and hash it here; above that, check fails naming the tools. Without `sha256` and `force`, no hash is needed.\n" +
			"- Check never downloads and never contacts the server: it reads only the path's type, attributes and (with `sha256` or `force`) sha256 on the host, whether its directory exists and which of curl and wget the host has. A missing file always checks as `create` (`state: absent -> present`, the URL and the expected sha256 shown); whether the server has it is known only at apply.\n" +
			"- Apply downloads into a new temp file `.opsmop-download.XXXXXX` (mode 0600) **in the destination's directory**, computes its sha256 there, and, when `sha256` is given and differs, removes it and fails with `sha256 mismatch for URL: expected …, got …` (the file at `path` is unchanged). Then owner and group (`chown`), then the mode (`chmod`), then `mv` over `path` (a rename in one directory: atomic, no half file is ever visible). On any failure, or if the command is interrupted (HUP, INT, TERM), the temp file is removed; only a download killed with SIGKILL (`command_timeout`) can leave it behind. `via_controller` does the same on the controller: the download goes to a local temp file, is verified there, and only then uploaded (the upload is itself a temp file in the destination's directory, renamed into place).\n" +
			"- Without `mode`, a new file gets 0644 and a replaced file keeps its mode; without `owner`/`group`, a new file belongs to the user opsmop runs as on the host (the become user with sudo) and a replaced one keeps its owner and group. The directory of `path` must exist (check fails otherwise: create it with a `directory` resource first). A symlink at `path` is replaced by the file (the change shows `type: link -> file`); a directory or device there is an error.\n" +
			"- Redirects are followed, at most 10 (curl `--max-redirs`, GNU wget `--max-redirect`, Go's client; busybox wget has its own, lower limit); curl is limited to http and https (`--proto-redir`), Go's client knows no other. A status other than 2xx after the redirects is a failure, never a saved error page: `HTTP 404 Not Found from URL: nothing written` (401 and 403 add `check the credentials in the URL`). A server that cannot be reached fails with the tool's message.\n" +
			"- Credentials: `https://user:password@host/file` is used for HTTP basic auth, and the password is never shown: the URL appears as `https://user:xxxxx@host/file` in the change, messages, errors, `--json` events and logs, and the tools' own messages are redacted the same way. It is never on a command line on the host either (where `ps` would show it to every user): curl reads the URL from a config on stdin (`curl -K -`), GNU wget from a URL list on stdin (`wget -i -`); over SSH the command's stdin travels in opsmop's session and sits, while the command runs, in a file of opsmop's private 0700 directory on the host. A wget that is not GNU wget (busybox) takes the URL only as an argument: with credentials in the URL check fails and says to install curl or GNU wget, or to use `via_controller`; without credentials the URL is passed as an argument. curl sends the credentials to the URL's host only, not to the hosts it is redirected to; so does Go's client. Query-string tokens (presigned URLs) are not credentials to opsmop: they are shown. One exception, stated honestly: on a host where opsmop's persistent shell cannot run and each command goes through the login shell's command line (the exec fallback, see docs/ssh.md), a command's stdin is part of that command line, so there the URL is in `ps` for the time of the download; use `via_controller = true` for such hosts.\n" +
			"- Sudo: the download runs as the become user (root with `sudo = true`), so the temp file is created with that user's rights in the destination's directory. `owner`/`group` of another user need root.\n" +
			"- Not supported (yet): Ansible's `headers`, `url_username`/`url_password` keys (put the credentials in the URL), `checksum` with algorithms other than sha256, `dest` as a directory (give the file name), `validate_certs: no`, `backup`, `timeout` (the command's timeout, `command_timeout`, applies), `tmp_dest`. Protocols other than http and https (ftp, file) are refused.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `url` that is empty, not `http://` or `https://`, has no host, holds a control character, a space or a double quote; a `path` that is not absolute or ends in `/`; a `sha256` that is not 64 hex digits (a `sha256:` prefix and upper case are accepted); a `mode` that is not octal; an `owner` or `group` that is not a name or numeric id. A value written as a template (`{{ ... }}`) is checked once rendered for each host.",
		toml: `[[roles.resources]]
type = "download"
url = "https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz"
path = "/opt/node_exporter-1.8.2.linux-amd64.tar.gz"
sha256 = "6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66"
mode = "0644"

[[roles.resources]]
type = "download"
url = "https://{{ .repo_user }}:{{ .repo_password }}@repo.example.com/app/app-{{ .release }}.bin"
path = "/usr/local/bin/app"
sha256 = "{{ .app_sha256 }}"
mode = "0755"
owner = "root"
group = "root"
via_controller = true

[[roles.resources]]
type = "download"
url = "https://example.com/GeoLite2-Country.mmdb"
path = "/var/lib/geoip/GeoLite2-Country.mmdb"
force = true`,
		yaml: `- type: download
  url: https://github.com/prometheus/node_exporter/releases/download/v1.8.2/node_exporter-1.8.2.linux-amd64.tar.gz
  path: /opt/node_exporter-1.8.2.linux-amd64.tar.gz
  sha256: 6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66
  mode: "0644"
- type: download
  url: "https://{{ .repo_user }}:{{ .repo_password }}@repo.example.com/app/app-{{ .release }}.bin"
  path: /usr/local/bin/app
  sha256: "{{ .app_sha256 }}"
  mode: "0755"
  owner: root
  group: root
  via_controller: true
- type: download
  url: https://example.com/GeoLite2-Country.mmdb
  path: /var/lib/geoip/GeoLite2-Country.mmdb
  force: true`,
	}
}

const dlSum = "6809dd0b3ec45fd6e992c19071d6b5253aed3ead7bf0686885a51d85c6643c66"

func TestDownloadValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid", &DownloadSpec{URL: "https://u:p@example.com/a?b=c", Path: "/opt/a", SHA256: "SHA256:" + strings.ToUpper(dlSum), Mode: "0755", Owner: "app", Group: "0"}, nil},
		{"templated", &DownloadSpec{URL: "{{ .u }}", Path: "{{ .p }}", SHA256: "{{ .s }}"}, nil},
		{"empty url", &DownloadSpec{Path: "/opt/a"}, []string{"url: url is empty"}},
		{"ftp", &DownloadSpec{URL: "ftp://example.com/a", Path: "/opt/a"}, []string{`url: url "ftp://example.com/a": want an http:// or https:// URL`}},
		{"relative url", &DownloadSpec{URL: "example.com/a", Path: "/opt/a"}, []string{"url: want an http:// or https://"}},
		{"no host", &DownloadSpec{URL: "http:///a", Path: "/opt/a"}, []string{"url: url \"http:///a\" has no host"}},
		{"newline", &DownloadSpec{URL: "http://h/a\nurl = \"http://evil/\"", Path: "/opt/a"}, []string{"url: url contains a control character"}},
		{"quote", &DownloadSpec{URL: `http://h/a"b`, Path: "/opt/a"}, []string{"url: contains a space or double quote"}},
		{"password redacted", &DownloadSpec{URL: "ftp://me:hunter22@h/a", Path: "/opt/a"}, []string{`url: url "ftp://me:xxxxx@h/a"`}},
		{"relative path", &DownloadSpec{URL: "http://h/a", Path: "opt/a"}, []string{"path: is not absolute"}},
		{"directory path", &DownloadSpec{URL: "http://h/a", Path: "/opt/"}, []string{"path: names a directory"}},
		{"bad sum", &DownloadSpec{URL: "http://h/a", Path: "/opt/a", SHA256: "md5:abc"}, []string{"sha256: want 64 hex digits"}},
		{"bad attrs", &DownloadSpec{URL: "http://h/a", Path: "/opt/a", Mode: "999", Owner: "-x"}, []string{"mode: want an octal mode", "owner: "}},
	})
	// A password never reaches a message.
	err := (&DownloadSpec{URL: "ftp://me:hunter22@h/a", Path: "/opt/a"}).Validate()
	if err == nil || strings.Contains(err.Error(), "hunter22") {
		t.Errorf("got %v; want an error without the password", err)
	}
}

// TestDownloadValidateAtKeyLine: the problems map to the key's file:line.
func TestDownloadValidateAtKeyLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.toml")
	src := "[[roles]]\nname = \"r\"\n\n[[roles.resources]]\ntype = \"download\"\nurl = \"ftp://u:secretpw@h/x\"\npath = \"/opt/x\"\nsha256 = \"abc\"\n"
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
		`site.toml:6: url "ftp://u:xxxxx@h/x": want an http:// or https:// URL`,
		`site.toml:8: sha256 "abc": want 64 hex digits (optionally prefixed sha256:)`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRedactText(t *testing.T) {
	raw := "https://alice:p%40ss@h.example/x"
	for _, tc := range []struct{ in, want string }{
		{"GET " + raw + " failed", "GET https://alice:xxxxx@h.example/x failed"},
		{"auth alice:p%40ss@h.example", "auth alice:xxxxx@h.example"},
		{"said p@ss", "said xxxxx"},
		{"nothing here", "nothing here"},
	} {
		if got := redactText(tc.in, raw); got != tc.want {
			t.Errorf("redactText(%q): got %q; want %q", tc.in, got, tc.want)
		}
	}
	if got := redactURL("http://h/x"); got != "http://h/x" {
		t.Errorf("redactURL without credentials: got %q", got)
	}
}

// TestDownloadCommands drives the provider with canned probe results:
// the change shows the URL redacted (also in JSON), the URL with its
// password is only on stdin, never in the script, and the tool chosen
// is what the host has.
func TestDownloadCommands(t *testing.T) {
	p := mustProvider("download")
	const secretURL = "https://dl:s3cretpw@repo.example/app.bin"
	s := &DownloadSpec{URL: secretURL, Path: "/opt/app.bin", SHA256: dlSum}
	req := newReq(s, "", nil, nil)
	script, err := p.Probe(req)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(script, "s3cretpw") || strings.Contains(script, "repo.example") {
		t.Errorf("probe mentions the URL: %q", script)
	}
	absent := func(tools string) connection.Result {
		return connection.Result{Stdout: []byte("type=absent\ndir=1\n" + tools)}
	}
	for _, tc := range []struct {
		name, tools, tool, wantErr string
		spec                       *DownloadSpec
	}{
		{"curl preferred", "curl=1\nwget=gnu\n", "curl", "", s},
		{"gnu wget", "wget=gnu\n", "wget", "", s},
		{"busybox wget, no credentials", "wget=other\n", "busybox", "", &DownloadSpec{URL: "http://h/a", Path: "/opt/a"}},
		{"busybox wget with credentials", "wget=other\n", "", "not GNU wget (busybox?), which takes the URL only on its command line", s},
		{"neither", "", "", "the host has neither curl nor wget to download https://dl:xxxxx@repo.example/app.bin: install one of them, or set via_controller = true", s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := p.Check(newReq(tc.spec, "", nil, nil), absent(tc.tools))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || strings.Contains(err.Error(), "s3cretpw") {
					t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ch.Plan.(downloadPlan).Tool; got != tc.tool {
				t.Errorf("tool: got %q; want %q", got, tc.tool)
			}
		})
	}

	ch, err := p.Check(req, absent("curl=1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := fieldMap(ch); ch.Action != Create || got["url"] != " -> https://dl:xxxxx@repo.example/app.bin" || got["sha256"] != " -> "+shortSum(dlSum) {
		t.Errorf("got %s %v; want create showing the redacted URL and the sum", ch.Action, got)
	}
	js, _ := json.Marshal(ch)
	if bytes.Contains(js, []byte("s3cretpw")) || !strings.Contains(ch.Message, "fetched on the host with curl from https://dl:xxxxx@") {
		t.Errorf("change JSON %s, message %q: want no password, the redacted URL", js, ch.Message)
	}
	f := (&fakeHost{}).on("curl", "http_status=200\ngot="+dlSum+"\n", 0)
	if _, err := p.Apply(testCtx(t), f, req, ch); err != nil {
		t.Fatal(err)
	}
	if len(f.scripts) != 1 || strings.Contains(f.scripts[0], "s3cretpw") || !strings.Contains(f.scripts[0], "curl -q -sS --fail -L --max-redirs 10") ||
		f.stdins[0] != `url = "`+secretURL+`"`+"\n" {
		t.Errorf("apply: script %q stdin %q; want curl -K - with the URL on stdin only", f.scripts, f.stdins)
	}
	// The tools' messages are redacted too.
	f = (&fakeHost{rules: []fakeRule{{"curl", connection.Result{ExitCode: dlFetch, Stdout: []byte("http_status=000\n"), Stderr: []byte("curl: (6) could not resolve dl:s3cretpw@repo.example")}}}})
	if _, err := p.Apply(testCtx(t), f, req, ch); err == nil || strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "dl:xxxxx@repo.example") {
		t.Errorf("got %v; want the tool's message, redacted", err)
	}
	// A checksum mismatch and an HTTP error are typed.
	f = (&fakeHost{rules: []fakeRule{{"curl", connection.Result{ExitCode: dlMismatch, Stdout: []byte("http_status=200\ngot=" + emptySum + "\n")}}}})
	var ce *ChecksumError
	if _, err := p.Apply(testCtx(t), f, req, ch); !errors.As(err, &ce) || ce.Got != emptySum || ce.Want != dlSum {
		t.Errorf("got %v; want a *ChecksumError", err)
	}
	f = (&fakeHost{rules: []fakeRule{{"wget", connection.Result{ExitCode: dlFetch, Stderr: []byte("  HTTP/1.1 302 Found\n  HTTP/1.1 500 Internal Server Error\nhttps://dl:*password*@repo.example/app.bin:\nERROR 500")}}}})
	wch, _ := p.Check(req, absent("wget=gnu\n"))
	var he *DownloadHTTPError
	if _, err := p.Apply(testCtx(t), f, req, wch); !errors.As(err, &he) || he.Status != 500 || err.Error() != "download /opt/app.bin: HTTP 500 Internal Server Error from https://dl:xxxxx@repo.example/app.bin: nothing written" {
		t.Errorf("got %v; want HTTP 500 with the redacted URL", err)
	}
	if f.stdins[0] != secretURL+"\n" || strings.Contains(f.scripts[0], "s3cretpw") || !strings.Contains(f.scripts[0], "-i -") {
		t.Errorf("wget: script %q stdin %q; want the URL on stdin only", f.scripts[0], f.stdins[0])
	}

	// Existing files: same sum nothing; another sum an update; no sum
	// kept; force runs; a directory is an error.
	file := func(sum string) connection.Result {
		return connection.Result{Stdout: []byte("type=file\nstat=644 0 0 root root 5\ndir=1\nsha256=" + sum + "\ncurl=1\n")}
	}
	if ch, err := p.Check(req, file(dlSum)); err != nil || ch.Changed() {
		t.Errorf("same sum: got %v, %v; want no change", ch, err)
	}
	if ch, err := p.Check(req, file(emptySum)); err != nil || ch.Action != Update || fieldMap(ch)["content"] != shortSum(emptySum)+" -> "+shortSum(dlSum) {
		t.Errorf("other sum: got %v, %v; want an update of content", ch, err)
	}
	nosum := newReq(&DownloadSpec{URL: "http://h/a", Path: "/opt/app.bin"}, "", nil, nil)
	if ch, err := p.Check(nosum, file("")); err != nil || ch.Changed() {
		t.Errorf("no sum, file exists: got %v, %v; want no change", ch, err)
	}
	force := newReq(&DownloadSpec{URL: "http://h/a", Path: "/opt/app.bin", Force: true}, "", nil, nil)
	if ch, err := p.Check(force, file(emptySum)); err != nil || ch.Action != Run || ch.Plan.(downloadPlan).Cur != emptySum {
		t.Errorf("force: got %v, %v; want run with the current sum", ch, err)
	}
	if _, err := p.Check(req, connection.Result{Stdout: []byte("type=directory\nstat=755 0 0 root root 5\ndir=1\n")}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: got %v", err)
	}
	if _, err := p.Check(req, connection.Result{Stdout: []byte("type=absent\ndir=0\ncurl=1\n")}); err == nil || !strings.Contains(err.Error(), "directory /opt does not exist") {
		t.Errorf("no directory: got %v", err)
	}
	if _, err := p.Check(req, connection.Result{Stdout: []byte("type=file\nstat=644 0 0 root root 5\ndir=1\nsha256=\nhashtool=0\ncurl=1\n")}); err == nil || !strings.Contains(err.Error(), "no working sha256sum") {
		t.Errorf("no hash tool: got %v", err)
	}
}

// dlServer is the HTTP server of the lab test, on an address of the
// lab's subnet in the controller's network namespace, which the lab's
// public hosts share.
type dlServer struct {
	url  string
	v1   []byte
	v2   []byte
	mu   sync.Mutex
	hits map[string]int
	// slow is closed to let /slow.bin finish, slow2 /slow2.bin; started
	// receives when either has sent its first bytes.
	slow, slow2 chan struct{}
	started     chan struct{}
}

const (
	dlUser = "fetcher"
	dlPass = "Pa55-w0rd-77"
)

func startDLServer(t *testing.T, addr string) *dlServer {
	t.Helper()
	s := &dlServer{v1: bytes.Repeat([]byte("release one\n"), 1000), v2: []byte("release two\n"), hits: map[string]int{},
		slow: make(chan struct{}), slow2: make(chan struct{}), started: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("/v1.bin", func(w http.ResponseWriter, r *http.Request) { w.Write(s.v1) })
	mux.HandleFunc("/v2.bin", func(w http.ResponseWriter, r *http.Request) { w.Write(s.v2) })
	mux.HandleFunc("/500", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "<html>oops, error page</html>", http.StatusInternalServerError)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/hop2", http.StatusFound) })
	mux.HandleFunc("/hop2", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/v2.bin", http.StatusMovedPermanently)
	})
	mux.HandleFunc("/loop", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/loop", http.StatusFound) })
	mux.HandleFunc("/auth.bin", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != dlUser || p != dlPass {
			w.Header().Set("WWW-Authenticate", `Basic realm="x"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Write(s.v2)
	})
	slow := func(release chan struct{}) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			u, p, ok := r.BasicAuth()
			if !ok || u != dlUser || p != dlPass {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(s.v2)))
			w.Write(s.v2[:3])
			w.(http.Flusher).Flush()
			select {
			case s.started <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
			w.Write(s.v2[3:])
		}
	}
	mux.HandleFunc("/slow.bin", slow(s.slow))
	mux.HandleFunc("/slow2.bin", slow(s.slow2))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.hits[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	s.url = "http://" + ln.Addr().String()
	return s
}

func (s *dlServer) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[p]
}

// authURL is u's URL with the test credentials in it.
func (s *dlServer) authURL(p string) string {
	return strings.Replace(s.url, "http://", "http://"+dlUser+":"+dlPass+"@", 1) + p
}

// TestDownloadOnLabHost runs download against real lab hosts and an HTTP
// server on the controller: curl, GNU wget and busybox wget hosts, a host
// with neither, a private host without a route out (via_controller),
// sudo as a non-root login over SSH, HTTP errors, redirects, basic auth,
// wrong checksums, drift, force, and the password never in ps.
func TestDownloadOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 37, Hosts: []lab.HostSpec{
		{Name: "dl1"}, {Name: "dlcurl"}, {Name: "dlwget"}, {Name: "dlnone"}, {Name: "dlbusy"}, {Name: "dlnohash"},
		{Name: "dlbastion"}, {Name: "dlpriv", Via: "dlbastion"},
	}})
	srv := startDLServer(t, "127.37.200.1:0")
	v1sum, v2sum := sha256Hex(srv.v1), sha256Hex(srv.v2)
	p := mustProvider("download")
	host := func(name string) *labHost { return &labHost{pid: l.Host(name).PID} }
	h := host("dl1")
	for _, n := range []string{"dl1", "dlcurl", "dlwget", "dlnone", "dlbusy", "dlnohash", "dlpriv"} {
		host(n).exec(t, "mkdir -p /srv/dl")
	}
	host("dlcurl").exec(t, "rm -f /usr/bin/wget")
	host("dlwget").exec(t, "rm -f /usr/bin/curl")
	host("dlnone").exec(t, "rm -f /usr/bin/curl /usr/bin/wget")
	host("dlnohash").exec(t, hideHashToolsScript())
	host("dlbusy").exec(t, "rm -f /usr/bin/curl /usr/bin/wget && ln -s /usr/bin/busybox /usr/local/bin/wget")
	snapOf := func(h *labHost) func() string {
		return h.snap(t, "ls -lA --time-style=full-iso /srv/dl; sha256sum /srv/dl/* 2>/dev/null; true")
	}
	noTemp := func(t *testing.T, h *labHost) {
		t.Helper()
		if out := h.exec(t, "ls -A /srv/dl | grep opsmop || true"); out != "" {
			t.Errorf("temp files left: %s", out)
		}
	}
	req := func(s *DownloadSpec) *Request { return newReq(s, "", nil, nil) }

	for _, tc := range []struct{ host, tool string }{{"dl1", "curl"}, {"dlcurl", "curl"}, {"dlwget", "wget"}, {"dlbusy", "wget"}} {
		t.Run("fetch on host "+tc.host, func(t *testing.T) {
			h := host(tc.host)
			snap := snapOf(h)
			dst := "/srv/dl/app.bin"
			s := &DownloadSpec{URL: srv.url + "/v1.bin", Path: dst, SHA256: v1sum, Mode: "0750", Owner: "app", Group: "app"}
			hits := srv.count("/v1.bin")
			ch := converge(t, h, p, req(s), snap, Create)
			if !strings.Contains(ch.Message, "with "+tc.tool) {
				t.Errorf("message %q does not name %s", ch.Message, tc.tool)
			}
			if got := srv.count("/v1.bin") - hits; got != 1 {
				t.Errorf("server hits: got %d; want 1 (checks never download)", got)
			}
			if got := h.exec(t, "stat -c '%a %U %G' "+dst+"; sha256sum < "+dst); got != "750 app app\n"+v1sum+"  -\n" {
				t.Errorf("after apply: got %q", got)
			}
			// Drift: contents changed by hand: downloaded again (attributes kept).
			h.exec(t, "echo tampered >> "+dst)
			ch = converge(t, h, p, req(s), snap, Update)
			if got := fieldMap(ch)["content"]; !strings.HasSuffix(got, " -> "+shortSum(v1sum)) {
				t.Errorf("drift field: got %q", got)
			}
			if got := h.exec(t, "stat -c '%a %U %G' "+dst+"; sha256sum < "+dst); got != "750 app app\n"+v1sum+"  -\n" {
				t.Errorf("after repair: got %q", got)
			}
			// Mode drift alone: chmod, no download.
			h.exec(t, "chmod 600 "+dst)
			hits = srv.count("/v1.bin")
			ch = converge(t, h, p, req(s), snap, Update)
			if got := fieldMap(ch); len(got) != 1 || got["mode"] != "0600 -> 0750" || srv.count("/v1.bin") != hits {
				t.Errorf("mode drift: got %v, %d downloads", got, srv.count("/v1.bin")-hits)
			}
			// A new release (url and sha256 move on), through two redirects.
			s2 := &DownloadSpec{URL: srv.url + "/redirect", Path: dst, SHA256: v2sum}
			converge(t, h, p, req(s2), snap, Update)
			if got := h.exec(t, "stat -c '%a %U %G' "+dst+"; cat "+dst); got != "750 app app\n"+string(srv.v2) {
				t.Errorf("after the redirect: got %q", got)
			}
			noTemp(t, h)
		})
	}

	t.Run("failures leave the file", func(t *testing.T) {
		for _, name := range []string{"dl1", "dlwget", "dlbusy"} {
			h := host(name)
			dst := "/srv/dl/keep.bin"
			h.exec(t, "printf 'old\\n' > "+dst)
			snap := snapOf(h)
			for _, c := range []struct {
				name, url, sum, want string
			}{
				{"404", srv.url + "/nosuch", "", "HTTP 404 Not Found from " + srv.url + "/nosuch: nothing written"},
				{"500", srv.url + "/500", "", "HTTP 500 Internal Server Error from " + srv.url + "/500: nothing written"},
				{"wrong sum", srv.url + "/v2.bin", v1sum, "sha256 mismatch for " + srv.url + "/v2.bin: expected " + v1sum + ", got " + v2sum},
				{"redirect loop", srv.url + "/loop", "", "/loop"},
				{"unreachable", "http://127.37.200.2:9/x", "", "could not fetch http://127.37.200.2:9/x"},
			} {
				t.Run(name+" "+c.name, func(t *testing.T) {
					s := &DownloadSpec{URL: c.url, Path: dst, SHA256: c.sum, Force: c.sum == ""}
					before := snap()
					ch, err := check(t, testCtx(t), h, p, req(s))
					if err != nil {
						t.Fatal(err)
					}
					_, err = p.Apply(testCtx(t), h, req(s), ch)
					if err == nil || !strings.Contains(err.Error(), c.want) {
						t.Errorf("got %v; want an error containing %q", err, c.want)
					}
					if snap() != before {
						t.Errorf("the failed download changed the host:\nbefore:\n%s\nafter:\n%s", before, snap())
					}
				})
			}
			if got := h.exec(t, "cat "+dst); got != "old\n" {
				t.Errorf("%s: %s: got %q; want the old contents", name, dst, got)
			}
		}
	})

	t.Run("no sha256", func(t *testing.T) {
		snap := snapOf(h)
		dst := "/srv/dl/nosum.bin"
		s := &DownloadSpec{URL: srv.url + "/v2.bin", Path: dst}
		ch := converge(t, h, p, req(s), snap, Create)
		if got := h.exec(t, "stat -c %a "+dst); got != "644\n" || !strings.Contains(ch.Message, "no sha256") {
			t.Errorf("mode %q message %q; want 644 and a note about no sha256", got, ch.Message)
		}
		// An existing file is kept, whatever its contents (as get_url).
		h.exec(t, "echo mine > "+dst)
		converge(t, h, p, req(s), snap, None)
		// force: runs every time; replaces only different contents.
		f := &DownloadSpec{URL: srv.url + "/v2.bin", Path: dst, Force: true}
		hits := srv.count("/v2.bin")
		convergeAgain(t, h, p, req(f), snap, Run, Run)
		if got := h.exec(t, "cat "+dst); got != string(srv.v2) {
			t.Errorf("force: got %q", got)
		}
		before := snap()
		ch, err := check(t, testCtx(t), h, p, req(f))
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(testCtx(t), h, req(f), ch)
		if err != nil || !out.Unchanged || snap() != before {
			t.Errorf("force, same contents: got %+v, %v; want unchanged and the file untouched", out, err)
		}
		if got := srv.count("/v2.bin") - hits; got != 2 {
			t.Errorf("force: %d downloads; want 2 (one per apply)", got)
		}
	})

	t.Run("basic auth, password never visible", func(t *testing.T) {
		snap := snapOf(h)
		dst := "/srv/dl/auth.bin"
		bad := &DownloadSpec{URL: strings.Replace(srv.authURL("/auth.bin"), dlPass, "wrong-pass", 1), Path: dst, SHA256: v2sum}
		ch, err := check(t, testCtx(t), h, p, req(bad))
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Apply(testCtx(t), h, req(bad), ch)
		if err == nil || err.Error() != "download "+dst+": HTTP 401 Unauthorized from "+strings.Replace(srv.authURL("/auth.bin"), dlPass, "xxxxx", 1)+": nothing written (check the credentials in the URL)" {
			t.Errorf("wrong password: got %v", err)
		}
		s := &DownloadSpec{URL: srv.authURL("/slow.bin"), Path: dst, SHA256: v2sum}
		ch, err = check(t, testCtx(t), h, p, req(s))
		if err != nil {
			t.Fatal(err)
		}
		js, _ := json.Marshal(ch)
		if strings.Contains(string(js)+ch.Message, dlPass) {
			t.Errorf("the change shows the password: %s %s", js, ch.Message)
		}
		// While the download runs, no process on the host has the
		// password in its command line.
		done := make(chan error, 1)
		go func() {
			_, err := p.Apply(testCtx(t), h, req(s), ch)
			done <- err
		}()
		select {
		case <-srv.started:
		case <-time.After(30 * time.Second):
			t.Fatal("the download did not start")
		}
		ps := h.exec(t, "ps -eo args")
		close(srv.slow)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(ps, "curl -q -sS --fail") || strings.Contains(ps, dlPass) || strings.Contains(ps, "slow.bin") {
			t.Errorf("ps during the download: want curl without the URL:\n%s", ps)
		}
		if got := h.exec(t, "cat "+dst); got != string(srv.v2) {
			t.Errorf("auth download: got %q", got)
		}
		converge(t, h, p, req(s), snap, None)
		// GNU wget takes it on stdin too.
		w := host("dlwget")
		s = &DownloadSpec{URL: srv.authURL("/auth.bin"), Path: dst, SHA256: v2sum}
		converge(t, w, p, req(s), snapOf(w), Create)
		// busybox wget would need it on its command line: refused.
		if _, err := check(t, testCtx(t), host("dlbusy"), p, req(s)); err == nil || !strings.Contains(err.Error(), "not GNU wget") || strings.Contains(err.Error(), dlPass) {
			t.Errorf("busybox with credentials: got %v", err)
		}
	})

	t.Run("neither curl nor wget", func(t *testing.T) {
		n := host("dlnone")
		s := &DownloadSpec{URL: srv.url + "/v1.bin", Path: "/srv/dl/a.bin", SHA256: v1sum}
		if _, err := check(t, testCtx(t), n, p, req(s)); err == nil || err.Error() != "download /srv/dl/a.bin: the host has neither curl nor wget to download "+srv.url+"/v1.bin: install one of them, or set via_controller = true to fetch on the controller and upload" {
			t.Errorf("got %v", err)
		}
		s.ViaController = true
		converge(t, n, p, req(s), snapOf(n), Create)
	})

	t.Run("no hash tool", func(t *testing.T) {
		n := host("dlnohash")
		snap := snapOf(n)
		s := &DownloadSpec{URL: srv.url + "/v1.bin", Path: "/srv/dl/a.bin", SHA256: v1sum}
		if _, err := check(t, testCtx(t), n, p, req(s)); err == nil || !strings.Contains(err.Error(), "the host has no working sha256sum, openssl or shasum to verify the download: install coreutils (sha256sum), openssl or perl (shasum) there, or set via_controller = true") {
			t.Errorf("on the host with sha256: got %v", err)
		}
		// Verified on the controller; later checks read the file back.
		s.ViaController = true
		converge(t, n, p, req(s), snap, Create)
		n.exec(t, "echo x >> /srv/dl/a.bin")
		converge(t, n, p, req(s), snap, Update)
		// Without sha256 no hash is needed.
		converge(t, n, p, req(&DownloadSpec{URL: srv.url + "/v2.bin", Path: "/srv/dl/b.bin"}), snap, Create)
		noTemp(t, n)
	})

	t.Run("via controller, no route out", func(t *testing.T) {
		pv := host("dlpriv")
		snap := snapOf(pv)
		onHost := &DownloadSpec{URL: srv.url + "/v1.bin", Path: "/srv/dl/a.bin", SHA256: v1sum}
		ch, err := check(t, testCtx(t), pv, p, req(onHost))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(testCtx(t), pv, req(onHost), ch); err == nil || !strings.Contains(err.Error(), "could not fetch") {
			t.Errorf("on a host without a route: got %v; want the fetch to fail", err)
		}
		s := &DownloadSpec{URL: srv.authURL("/redirect"), Path: "/srv/dl/a.bin", SHA256: v2sum, Mode: "0640", Owner: "app", ViaController: true}
		ch = converge(t, pv, p, req(s), snap, Create)
		if !strings.Contains(ch.Message, "fetched on the controller") || strings.Contains(ch.Message, dlPass) {
			t.Errorf("message: %q", ch.Message)
		}
		if got := pv.exec(t, "stat -c '%a %U' /srv/dl/a.bin; cat /srv/dl/a.bin"); got != "640 app\n"+string(srv.v2) {
			t.Errorf("after apply: got %q", got)
		}
		pv.exec(t, "echo x >> /srv/dl/a.bin")
		converge(t, pv, p, req(s), snap, Update)
		// Errors from the controller's client: status and URL, redacted.
		for _, c := range []struct{ path, sum, want string }{
			{"/500", "", "HTTP 500 Internal Server Error from " + strings.Replace(srv.authURL("/500"), dlPass, "xxxxx", 1) + ": nothing written"},
			{"/v1.bin", v2sum, "sha256 mismatch for " + strings.Replace(srv.authURL("/v1.bin"), dlPass, "xxxxx", 1) + ": expected " + v2sum + ", got " + v1sum},
			{"/loop", "", "more than 10 redirects"},
		} {
			s := &DownloadSpec{URL: srv.authURL(c.path), Path: "/srv/dl/b.bin", SHA256: c.sum, ViaController: true}
			before := snap()
			ch, err := check(t, testCtx(t), pv, p, req(s))
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Apply(testCtx(t), pv, req(s), ch)
			if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), dlPass) {
				t.Errorf("%s: got %v; want %q", c.path, err, c.want)
			}
			if snap() != before {
				t.Errorf("%s: the host changed", c.path)
			}
		}
		noTemp(t, pv)
		// The same over SSH through the bastion: the real upload path.
		pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
		t.Cleanup(func() { pool.Close() })
		target := func(name string) connection.Target {
			lh := l.Host(name)
			return connection.Target{Name: name, Address: lh.Addr, Port: lh.Port, User: "root",
				PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second}
		}
		pt := target("dlpriv")
		bt := target("dlbastion")
		pt.Via = &bt
		ssh, err := pool.Host(testCtx(t), pt)
		if err != nil {
			t.Fatal(err)
		}
		s = &DownloadSpec{URL: srv.authURL("/v1.bin"), Path: "/srv/dl/c.bin", SHA256: v1sum, Owner: "app", ViaController: true}
		converge(t, ssh, p, req(s), snap, Create)
		if got := pv.exec(t, "stat -c '%a %U' /srv/dl/c.bin; sha256sum < /srv/dl/c.bin"); got != "644 app\n"+v1sum+"  -\n" {
			t.Errorf("through the bastion: got %q", got)
		}
		noTemp(t, pv)
		if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "opsmop-download-*")); len(m) > 0 {
			t.Errorf("controller temp files left: %v", m)
		}
	})

	t.Run("sudo as a non-root login over ssh", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
		t.Cleanup(func() { pool.Close() })
		lh := l.Host("dl1")
		h.exec(t, "mkdir -p /srv/root-only && chmod 700 /srv/root-only")
		snap := h.snap(t, "ls -lA --time-style=full-iso /srv/root-only; cat /srv/root-only/* 2>/dev/null; true")
		for _, via := range []bool{false, true} {
			ops, err := pool.Host(ctx, connection.Target{Name: "dl1-ops", Address: lh.Addr, Port: lh.Port, User: "ops", Sudo: true,
				PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			dst := fmt.Sprintf("/srv/root-only/app-%v.bin", via)
			s := &DownloadSpec{URL: srv.authURL("/v2.bin"), Path: dst, SHA256: v2sum, Owner: "app", Mode: "0600", ViaController: via}
			if !via {
				// Through sudo and the persistent shell, the URL is not
				// on any command line either while curl runs.
				s.URL = srv.authURL("/slow2.bin")
				ch, err := check(t, ctx, ops, p, req(s))
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() {
					_, err := p.Apply(ctx, ops, req(s), ch)
					done <- err
				}()
				select {
				case <-srv.started:
				case <-time.After(30 * time.Second):
					t.Fatal("the download did not start")
				}
				ps := h.exec(t, "ps -eo user,args")
				close(srv.slow2)
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(ps, "curl -q -sS --fail") || strings.Contains(ps, dlPass) || strings.Contains(ps, "slow2.bin") {
					t.Errorf("ps during the download over ssh: want curl without the URL:\n%s", ps)
				}
				h.exec(t, "rm "+dst)
			}
			converge(t, ops, p, req(s), snap, Create)
			if got := h.exec(t, "stat -c '%a %U' "+dst); got != "600 app\n" {
				t.Errorf("via_controller=%v: got %q", via, got)
			}
			h.exec(t, "echo drift > "+dst)
			converge(t, ops, p, req(s), snap, Update)
			// A no-op check over SSH: one probe (stat, sha256sum, tools).
			// Timed beside a file resource with the same contents (the
			// same stat and sha256sum).
			const rounds = 20
			content := string(srv.v2)
			fileReq := req(&DownloadSpec{})
			fileReq.Spec = &FileSpec{Path: dst, Content: &content, Owner: "app", Mode: "0600"}
			var dlTime, fileTime time.Duration
			for range rounds {
				start := time.Now()
				if ch, err := check(t, ctx, ops, p, req(s)); err != nil || ch.Changed() {
					t.Fatalf("no-op check: got %v, %v", ch, err)
				}
				dlTime += time.Since(start)
				start = time.Now()
				if ch, err := check(t, ctx, ops, mustProvider("file"), fileReq); err != nil || ch.Changed() {
					t.Fatalf("no-op file check: got %v, %v", ch, err)
				}
				fileTime += time.Since(start)
			}
			t.Logf("via_controller=%v: no-op check over SSH with sudo: download %v, file %v per check", via, dlTime/rounds, fileTime/rounds)
		}
		// Without sudo the login user cannot write there: a clear error.
		app, err := pool.Host(ctx, connection.Target{Name: "dl1-app", Address: lh.Addr, Port: lh.Port, User: "app",
			PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		s := &DownloadSpec{URL: srv.url + "/v2.bin", Path: "/srv/dl/app-nosudo.bin"}
		h.exec(t, "chmod 755 /srv/dl")
		ch, err := check(t, ctx, app, p, req(s))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Apply(ctx, app, req(s), ch); err == nil || !strings.Contains(err.Error(), "cannot create a temp file in /srv/dl") {
			t.Errorf("without sudo: got %v", err)
		}
	})
}

// TestDownloadControllerTempName: the controller's temp files are not
// /tmp/opsmop.* (which the test suite checks stay absent) and are
// removed after a failed upload.
func TestDownloadControllerTemp(t *testing.T) {
	srv := startDLServer(t, "127.0.0.1:0")
	pl := downloadPlan{URL: srv.url + "/v2.bin", Path: "/x/y", Via: true}
	f := &failUpload{}
	_, err := fetchViaController(testCtx(t), f, nil, pl)
	if err == nil || !strings.Contains(err.Error(), "upload refused") || f.size != int64(len(srv.v2)) {
		t.Errorf("got %v, size %d", err, f.size)
	}
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "opsmop-download-*")); len(m) > 0 {
		t.Errorf("controller temp files left: %v", m)
	}
}

type failUpload struct {
	fakeHost
	size int64
}

func (f *failUpload) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	f.size = size
	return errors.New("upload refused")
}

// FuzzDownloadURL: a URL that validation accepts is safe in a curl
// config line and in wget's URL list (no control character, no quote,
// one line), and its redacted form never holds its password.
func FuzzDownloadURL(f *testing.F) {
	for _, u := range []string{"https://u:p4ssw0rd@h/x", "http://h/a?b=c#d", "http://[::1]:80/", "https://u:%22x%0A@h/", "http://h/a\\b", "http://u:@h/"} {
		f.Add(u)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if checkDownloadURL(raw) != nil {
			return
		}
		if strings.ContainsAny(raw, "\"\n\r\x00 ") {
			t.Fatalf("accepted %q", raw)
		}
		if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
			t.Fatalf("accepted %q: not http(s)", raw)
		}
		cfg := downloadStdin(downloadPlan{URL: raw, Tool: "curl"})
		if strings.Count(cfg, "\n") != 1 || !strings.HasPrefix(cfg, `url = "`) || !strings.HasSuffix(cfg, "\"\n") {
			t.Fatalf("curl config for %q: %q", raw, cfg)
		}
		if u, err := url.Parse(raw); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 3 && strings.Contains(redactText("GET "+raw+" failed: "+pw, raw), pw) {
				t.Fatalf("redacted text of %q holds the password", raw)
			}
		}
	})
}

// FuzzLastHTTPStatus: any tool output parses without a panic to "" or
// three digits.
func FuzzLastHTTPStatus(f *testing.F) {
	f.Add([]byte("  HTTP/1.1 302 Found\n  HTTP/1.1 404 Not Found\n"))
	f.Add([]byte("wget: server returned error: HTTP/1.1 500 Internal Server Error"))
	f.Add([]byte("HTTP/ 12"))
	f.Fuzz(func(t *testing.T, out []byte) {
		if s := lastHTTPStatus(out); s != "" && (len(s) != 3 || !isNumeric(s)) {
			t.Fatalf("got %q", s)
		}
	})
}
