package providers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// DownloadSpec is the `download` resource: a file fetched from a URL, on
// the host with curl or wget, or on the controller and uploaded
// (via_controller), verified against sha256 before it is moved into
// place.
type DownloadSpec struct {
	URL    string `opsmop:"url" required:"true" doc:"http or https URL to fetch; user:password@ in it is used for basic auth and never shown (output, errors, --json) nor put on a command line"`
	Path   string `opsmop:"path" required:"true" doc:"absolute path of the file on the host (not a directory); its directory must exist"`
	SHA256 string `opsmop:"sha256" doc:"expected sha256 of the contents (64 hex digits, optionally prefixed sha256:): the download is verified against it before it replaces the file, and the file is compared with it on every check (a different file is downloaded again)"`
	Mode   string `opsmop:"mode" doc:"octal permissions as a quoted string, e.g. \"0755\"; unset: 0644 for a new file, unchanged for an existing one"`
	Owner  string `opsmop:"owner" doc:"owner (user name or numeric uid); unset: unchanged (the connecting or become user for a new file)"`
	Group  string `opsmop:"group" doc:"group (name or numeric gid); unset: unchanged"`
	Force  bool   `opsmop:"force" doc:"without sha256: download again on every run and replace the file when the contents differ (as Ansible's get_url force); without it an existing file is left as it is"`
	// ViaController is the via_controller key.
	ViaController bool `opsmop:"via_controller" doc:"fetch on the machine running opsmop (Go's net/http, the controller's proxy settings) and upload the file: for hosts without internet access or without curl and wget"`
}

// maxRedirects is how many redirects a download follows.
const maxRedirects = 10

// Validate checks the rules of a download that need no host (see
// Validator): url is an absolute http or https URL with a host and no
// control characters; path is absolute and names a file; sha256 is 64
// hex digits; mode is octal; owner and group are names or numeric ids.
func (s *DownloadSpec) Validate() error {
	var p problems
	if !templated(s.URL) {
		p.addErr("url", checkDownloadURL(s.URL))
	}
	p.path("path", s.Path)
	if !templated(s.Path) && s.Path != "" && (strings.HasSuffix(s.Path, "/") || path.Clean(s.Path) == "/") {
		p.add("path", "path %q names a directory: give the file's full path (e.g. /opt/app/app.tar.gz)", s.Path)
	}
	if s.SHA256 != "" && !templated(s.SHA256) {
		if _, err := normalSHA256(s.SHA256); err != nil {
			p.addErr("sha256", err)
		}
	}
	p.attrs(s.Mode, s.Owner, s.Group)
	return p.err()
}

// checkDownloadURL checks a url value; its errors show it redacted.
func checkDownloadURL(raw string) error {
	if raw == "" {
		return fmt.Errorf("url is empty: give the http or https URL to download")
	}
	if strings.IndexFunc(raw, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return fmt.Errorf("url contains a control character (newline, tab, NUL...): encode it (%%0A)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q does not parse: %v", redactURL(raw), redactText(errors.Unwrap(err), raw))
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url %q: want an http:// or https:// URL", redactURL(raw))
	case !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://"):
		// url.Parse lowercases the scheme; busybox wget matches it as written.
		return fmt.Errorf("url %q: write the scheme in lower case (http:// or https://)", redactURL(raw))
	case u.Host == "":
		return fmt.Errorf("url %q has no host", redactURL(raw))
	case strings.ContainsAny(raw, " \""):
		return fmt.Errorf("url %q contains a space or double quote: encode it (%%20, %%22)", redactURL(raw))
	}
	return nil
}

// normalSHA256 returns a sha256 value in lower case without its
// optional sha256: prefix, or an error.
func normalSHA256(v string) (string, error) {
	s := strings.ToLower(strings.TrimSpace(v))
	s = strings.TrimPrefix(s, "sha256:")
	if !isSum(s) {
		return "", fmt.Errorf("sha256 %q: want 64 hex digits (optionally prefixed sha256:)", v)
	}
	return s, nil
}

// redactURL is raw with the password of its user info replaced by
// xxxxx (url.URL.Redacted), or raw itself when it has none or does not
// parse.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	return u.Redacted()
}

// redactText is the text of v (an error or string) with every form of
// the credentials in raw replaced: raw itself by redactURL(raw), the
// user info as written, and the decoded password.
func redactText(v any, raw string) string {
	var s string
	switch x := v.(type) {
	case nil:
		return ""
	case error:
		s = x.Error()
	case string:
		s = x
	default:
		s = fmt.Sprint(x)
	}
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		if i := strings.LastIndex(raw, "@"); i >= 0 {
			// Unparsable: hide everything up to the last @.
			return strings.ReplaceAll(s, raw[:i], "xxxxx")
		}
		return s
	}
	s = strings.ReplaceAll(s, raw, u.Redacted())
	if pw, ok := u.User.Password(); ok && pw != "" {
		s = strings.ReplaceAll(s, u.User.String(), u.User.Username()+":xxxxx")
		if len(pw) >= 3 {
			s = strings.ReplaceAll(s, pw, "xxxxx")
		}
	}
	return s
}

// redactErr is err when its text holds none of raw's credentials (its
// chain kept for errors.As: DownloadHTTPError, ChecksumError), else an
// error with the redacted text only.
func redactErr(err error, raw string) error {
	if msg := redactText(err, raw); msg != err.Error() {
		return errors.New(msg)
	}
	return err
}

// hasCredentials reports whether raw holds a user info part.
func hasCredentials(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// downloadProvider implements `download`.
type downloadProvider struct{}

// downloadPlan is what Apply does.
type downloadPlan struct {
	// URL is the URL as given, credentials included: never shown.
	URL  string
	Path string
	// Fetch downloads and replaces the file; otherwise only the
	// attributes below change.
	Fetch bool
	// Want is the expected sha256 ("" for none); Cur the current file's
	// ("" when it does not exist): with force, a download equal to it is
	// not moved into place.
	Want, Cur string
	Via       bool
	// Tool is what fetches on the host: curl, wget (GNU) or busybox
	// (another wget, which takes the URL only as an argument).
	Tool  string
	Mode  uint32 // 0: 0644
	Owner string
	Group string
	// Attribute-only changes.
	Chmod      bool
	ChownOwner string
	ChownGroup string
}

// labels names the instance by its path.
func (downloadProvider) labels(s *DownloadSpec) errLabels {
	l := "download " + s.Path
	return errLabels{Probe: "download", Check: l, Apply: l}
}

// Probe reports the path's type and attributes, whether its directory
// exists, (unless via_controller) which of curl and wget the host has,
// and, when a sum is to be compared, whether the host has a hash tool
// and the file's sha256 (without a tool, the file itself, up to
// readBackMax, for Check to hash). It fetches nothing.
func (downloadProvider) Probe(s *DownloadSpec, req *Request) (string, error) {
	script := statScript(s.Path) + "s=\n"
	script += "if [ -d " + shell.Quote(path.Dir(s.Path)) + " ]; then echo dir=1; else echo dir=0; fi\n"
	sum := s.SHA256 != "" || s.Force
	if sum {
		// hashtool=0 is asked only when the file gave no sum: a
		// converged file costs no more processes.
		script += "if [ \"$t\" = file ]; then\n" + hashScript(s.Path) + "fi\nif [ -z \"$s\" ]; then\n" + noHashToolScript() + "fi\n"
	}
	if !s.ViaController {
		// The tools matter only when the file is to be fetched: a
		// converged file costs no more processes.
		cond := "[ \"$t\" != file ]"
		switch want, err := normalSHA256(s.SHA256); {
		case s.SHA256 == "" && s.Force:
			cond = "true"
		case s.SHA256 != "" && err == nil:
			cond += " || [ \"$s\" != " + want + " ]"
		case s.SHA256 != "":
			cond = "true"
		}
		script += "if " + cond + "; then\n" +
			"if command -v curl >/dev/null 2>&1; then echo curl=1; fi\n" +
			"if command -v wget >/dev/null 2>&1; then if wget --version 2>/dev/null | grep -q 'GNU Wget'; then echo wget=gnu; else echo wget=other; fi; fi\nfi\n"
	}
	if sum {
		// Without a hash tool, a file up to readBackMax is read back
		// for Check to hash (as file's probe does): the blob is last.
		script += "if [ \"$t\" = file ] && [ -z \"$s\" ] && [ -r \"$p\" ] && [ \"$size\" -le " + strconv.Itoa(readBackMax) + " ]; then\n" + readBackScript() + "fi\n"
	}
	return script, nil
}

// Check decides from the probe: a missing file is fetched; with sha256,
// a file with another sum is fetched again; without it, an existing file
// is kept unless force. Mode, owner and group are compared as for file.
func (downloadProvider) Check(s *DownloadSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	typ := p.get("type")
	st, _, err := parseStat(p)
	if err != nil {
		return nil, err
	}
	switch typ {
	case "absent", "file", "link":
	case "directory":
		return nil, fmt.Errorf("is a directory: path names the file to write, not its directory")
	case "other":
		return nil, fmt.Errorf("exists and is not a regular file (a device, fifo or socket): refusing to replace it")
	default:
		return nil, fmt.Errorf("malformed probe output: type=%q", typ)
	}
	want := ""
	if s.SHA256 != "" {
		if want, err = normalSHA256(s.SHA256); err != nil {
			return nil, err
		}
	}
	shown := redactURL(s.URL)
	pl := downloadPlan{URL: s.URL, Path: s.Path, Want: want, Via: s.ViaController}
	ch := &Change{}
	cur := ""
	if typ == "file" && (want != "" || s.Force) {
		if p.get("readable") == "0" {
			return nil, fmt.Errorf("cannot read the file to compare its sha256: run as a user that can (sudo = true)")
		}
		cur = p.get("sha256")
		if cur == "" && p.hasBlob && int64(len(p.blob)) == st.Size {
			// No hash tool: the probe sent the file back.
			cur = sha256Hex(p.blob)
		}
		if cur == "" {
			return nil, fmt.Errorf("%s has no working sha256sum, openssl or shasum to compare the file's sha256, and the file is larger than the %s opsmop reads back to hash itself: install coreutils (sha256sum), openssl or perl (shasum) there", hostOr(req), byteSize(readBackMax))
		}
		if !isSum(cur) {
			return nil, fmt.Errorf("the host's hash tool printed %q, not a sha256: fix or remove it", cur)
		}
	}
	switch {
	case typ == "absent":
		pl.Fetch = true
		ch.Action = Create
		ch.Fields = append(ch.Fields, Field{Name: "state", Before: "absent", After: "present"})
	case typ == "link":
		pl.Fetch = true
		ch.Action = Update
		ch.Fields = append(ch.Fields, Field{Name: "type", Before: "link", After: "file"})
	case want != "" && cur != want:
		pl.Fetch = true
		ch.Action = Update
		ch.Fields = append(ch.Fields, Field{Name: "content", Before: shortSum(cur), After: shortSum(want)})
	case want == "" && s.Force:
		// Nothing here can tell whether it changes: like shell, it runs
		// on every apply (no re-check), and reports unchanged when the
		// download equals the file.
		pl.Fetch, pl.Cur = true, cur
		ch.Action = Run
		ch.Fields = append(ch.Fields, Field{Name: "content", Before: shortSum(cur), After: "downloaded again"})
		ch.Message = "force = true without sha256: apply downloads again and replaces the file only if the contents differ"
	}
	if pl.Fetch {
		if typ == "absent" || typ == "link" {
			ch.Fields = append(ch.Fields, Field{Name: "url", After: shown})
		}
		if want != "" && typ != "file" {
			ch.Fields = append(ch.Fields, Field{Name: "sha256", After: shortSum(want)})
		}
		if !s.ViaController && (want != "" || s.Force) && p.get("hashtool") == "0" {
			return nil, fmt.Errorf("%s has no working sha256sum, openssl or shasum to verify the download: install coreutils (sha256sum), openssl or perl (shasum) there, or set via_controller = true (verified on the controller)", hostOr(req))
		}
		if p.get("dir") == "0" {
			return nil, fmt.Errorf("directory %s does not exist: create it first (a directory resource before this one)", path.Dir(s.Path))
		}
		if s.ViaController {
			ch.Message = joinMessage(ch.Message, "fetched on the controller from "+shown+" and uploaded")
		} else {
			switch {
			case p.get("curl") == "1":
				pl.Tool = "curl"
			case p.get("wget") == "gnu":
				pl.Tool = "wget"
			case p.get("wget") == "other":
				if hasCredentials(s.URL) {
					return nil, fmt.Errorf("the host's wget is not GNU wget (busybox?), which takes the URL only on its command line, where other users see it in ps, and the URL holds credentials: install curl or GNU wget there, or set via_controller = true")
				}
				pl.Tool = "busybox"
			default:
				return nil, fmt.Errorf("%s has neither curl nor wget to download %s: install one of them, or set via_controller = true to fetch on the controller and upload", hostOr(req), shown)
			}
			ch.Message = joinMessage(ch.Message, "fetched on the host with "+toolName(pl.Tool)+" from "+shown)
		}
		if want == "" && !s.Force {
			ch.Message = joinMessage(ch.Message, "no sha256: an existing file will be kept as it is on later runs")
		}
	}

	exists := typ == "file"
	wantMode, _ := parseMode(s.Mode)
	modeChanged := s.Mode != "" && (!exists || st.Mode != wantMode)
	ownerChanged := s.Owner != "" && (!exists || !st.ownerIs(s.Owner))
	groupChanged := s.Group != "" && (!exists || !st.groupIs(s.Group))
	if modeChanged {
		ch.Fields = append(ch.Fields, Field{Name: "mode", Before: beforeIf(exists, fmtMode(st.Mode)), After: fmtMode(wantMode)})
	}
	if ownerChanged {
		ch.Fields = append(ch.Fields, Field{Name: "owner", Before: beforeIf(exists, st.owner()), After: s.Owner})
	}
	if groupChanged {
		ch.Fields = append(ch.Fields, Field{Name: "group", Before: beforeIf(exists, st.group()), After: s.Group})
	}
	switch {
	case pl.Fetch:
		// Replacing the contents keeps what the spec leaves unset.
		pl.Mode, pl.Owner, pl.Group = st.replaced(exists, s.Mode, wantMode, s.Owner, s.Group)
		// For a forced download equal to the file: only these change.
		pl.Chmod = modeChanged
		if ownerChanged {
			pl.ChownOwner = s.Owner
		}
		if groupChanged {
			pl.ChownGroup = s.Group
		}
	case modeChanged || ownerChanged || groupChanged:
		ch.Action = Update
		pl.Chmod, pl.Mode = modeChanged, wantMode
		if ownerChanged {
			pl.ChownOwner = s.Owner
		}
		if groupChanged {
			pl.ChownGroup = s.Group
		}
	default:
		return &Change{Action: None}, nil
	}
	ch.Plan = pl
	return ch, nil
}

// hostOr names the request's host for a message: "host NAME", or "the
// host".
func hostOr(req *Request) string {
	if n := hostName(req); n != "" {
		return "host " + n
	}
	return "the host"
}

// Apply downloads (on the host or here) and moves the file into place,
// or sets its attributes, as planned. With force and no sha256, a
// download equal to the current file leaves it untouched and reports
// Outcome.Unchanged.
func (downloadProvider) Apply(ctx context.Context, h Host, s *DownloadSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[downloadPlan](ch, "download")
	if err != nil {
		return nil, err
	}
	if !pl.Fetch {
		fp := filePlan{Path: pl.Path, Chmod: pl.Chmod, Mode: pl.Mode, ChownOwner: pl.ChownOwner, ChownGroup: pl.ChownGroup}
		if err := applyFile(ctx, h, req, fp); err != nil {
			return nil, err
		}
		return &Outcome{}, nil
	}
	var same bool
	if pl.Via {
		same, err = fetchViaController(ctx, h, req, pl)
	} else {
		same, err = fetchOnHost(ctx, h, pl)
	}
	if err != nil {
		return nil, redactErr(err, pl.URL)
	}
	if same && (pl.Chmod || pl.ChownOwner != "" || pl.ChownGroup != "") {
		fp := filePlan{Path: pl.Path, Chmod: pl.Chmod, Mode: pl.Mode, ChownOwner: pl.ChownOwner, ChownGroup: pl.ChownGroup}
		if err := applyFile(ctx, h, req, fp); err != nil {
			return nil, err
		}
		return &Outcome{}, nil
	}
	return &Outcome{Unchanged: same}, nil
}

// toolName is the command a downloadPlan's Tool runs.
func toolName(tool string) string {
	if tool == "busybox" {
		return "wget"
	}
	return tool
}

// Exit statuses of downloadScript.
const (
	dlNoDir    = 3
	dlTemp     = 4
	dlFetch    = 5
	dlMismatch = 6
	dlChown    = 7
	dlChmod    = 8
	dlRename   = 9
	dlNoTool   = 10
	dlNoHash   = 11
)

// downloadScript is the script that fetches pl.URL on the host into a
// temp file in the destination's directory, hashes it, checks it against
// pl.Want, sets owner, group and mode, and renames it over pl.Path. The
// URL is never in the script: curl reads it from a config on stdin (-K
// -), GNU wget as a URL list on stdin (-i -); only busybox's wget, which
// has neither, gets it as an argument (never with credentials: Check
// refuses that), from stdin through a variable. It prints
// `http_status=N` (curl) and `got=SUM`, and `unchanged=1` when the
// download equals pl.Cur.
func downloadScript(pl downloadPlan) string {
	var b strings.Builder
	b.WriteString("p=" + shell.Quote(pl.Path) + "\nd=" + shell.Quote(path.Dir(pl.Path)) + "\n")
	b.WriteString("umask 077\n[ -d \"$d\" ] || exit " + strconv.Itoa(dlNoDir) + "\n")
	b.WriteString("tmp=$(mktemp \"$d/.opsmop-download.XXXXXX\") || exit " + strconv.Itoa(dlTemp) + "\n")
	b.WriteString("trap 'rm -f -- \"$tmp\"' EXIT\ntrap 'exit 1' HUP INT TERM\n")
	r := strconv.Itoa(maxRedirects)
	fetchFail := " || exit " + strconv.Itoa(dlFetch) + "\n"
	switch pl.Tool {
	case "curl":
		b.WriteString("command -v curl >/dev/null 2>&1 || exit " + strconv.Itoa(dlNoTool) + "\n")
		b.WriteString("curl -q -sS --fail -L --max-redirs " + r + " --proto =http,https --proto-redir =http,https -K - -o \"$tmp\" -w 'http_status=%{http_code}\\n'" + fetchFail)
	case "wget":
		b.WriteString("command -v wget >/dev/null 2>&1 || exit " + strconv.Itoa(dlNoTool) + "\n")
		b.WriteString("wget -nv -S --max-redirect=" + r + " -O \"$tmp\" -i -" + fetchFail)
	default:
		b.WriteString("command -v wget >/dev/null 2>&1 || exit " + strconv.Itoa(dlNoTool) + "\n")
		b.WriteString("IFS= read -r u || exit " + strconv.Itoa(dlFetch) + "\nwget -q -O \"$tmp\" -- \"$u\"" + fetchFail)
	}
	b.WriteString("s=$(p=$tmp; s=\n" + hashChain() + "printf '%s' \"$s\")\n")
	if pl.Want != "" || pl.Cur != "" {
		b.WriteString("[ -n \"$s\" ] || exit " + strconv.Itoa(dlNoHash) + "\n")
	}
	b.WriteString("printf 'got=%s\\n' \"$s\"\n")
	if pl.Want != "" {
		b.WriteString("[ \"$s\" = " + pl.Want + " ] || exit " + strconv.Itoa(dlMismatch) + "\n")
	}
	if pl.Cur != "" {
		b.WriteString("if [ \"$s\" = " + pl.Cur + " ]; then echo unchanged=1; exit 0; fi\n")
	}
	if c := shell.Chown(pl.Owner, pl.Group, false); c != "" {
		b.WriteString(c + " \"$tmp\" || exit " + strconv.Itoa(dlChown) + "\n")
	}
	mode := pl.Mode
	if mode == 0 {
		mode = 0o644
	}
	b.WriteString("chmod " + fmtMode(mode) + " \"$tmp\" || exit " + strconv.Itoa(dlChmod) + "\n")
	b.WriteString(connection.SELinuxRename(`"$tmp"`, `"$p"`) + " || exit " + strconv.Itoa(dlRename) + "\ntrap - EXIT\n") // the SELinux context kept
	return b.String()
}

// downloadStdin is what downloadScript reads on stdin: the URL in a curl
// config (a quoted value, backslash and quote escaped), or alone on a
// line for wget.
func downloadStdin(pl downloadPlan) string {
	if pl.Tool == "curl" {
		q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(pl.URL)
		return "url = \"" + q + "\"\n"
	}
	return pl.URL + "\n"
}

// lastHTTPStatus is the status of the last HTTP status line ("HTTP/1.1
// 404 Not Found") in out, as wget -S prints them (one per redirect) and
// busybox wget quotes it ("server returned error: HTTP/1.1 404 Not
// Found"), or "".
func lastHTTPStatus(out []byte) string {
	status := ""
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if strings.HasPrefix(f[i], "HTTP/") && len(f[i+1]) == 3 && isNumeric(f[i+1]) {
				status = f[i+1]
			}
		}
	}
	return status
}

// fetchOnHost runs downloadScript on h; same reports a forced download
// equal to the current file.
func fetchOnHost(ctx context.Context, h Host, pl downloadPlan) (same bool, err error) {
	res, err := h.Run(ctx, downloadScript(pl), strings.NewReader(downloadStdin(pl)))
	if err != nil {
		return false, fmt.Errorf("download: %w", err)
	}
	p, _ := parseProbe(res.Stdout)
	shown := redactURL(pl.URL)
	stderr := lastLines(res.Stderr, 5)
	switch res.ExitCode {
	case 0:
		return p.get("unchanged") == "1", nil
	case dlNoDir:
		return false, fmt.Errorf("directory %s does not exist: create it first", path.Dir(pl.Path))
	case dlTemp:
		return false, fmt.Errorf("cannot create a temp file in %s: %s (run as a user that can write there: sudo = true)", path.Dir(pl.Path), stderr)
	case dlFetch:
		status := p.get("http_status")
		if status == "" {
			status = lastHTTPStatus(res.Stderr)
		}
		if n, _ := strconv.Atoi(status); n >= 300 {
			return false, &DownloadHTTPError{URL: shown, Status: n, Detail: stderr}
		}
		return false, fmt.Errorf("%s could not fetch %s: %s", toolName(pl.Tool), shown, stderr)
	case dlMismatch:
		return false, &ChecksumError{URL: shown, Want: pl.Want, Got: p.get("got")}
	case dlChown:
		return false, fmt.Errorf("set owner/group of the download: %s", stderr)
	case dlChmod:
		return false, fmt.Errorf("chmod of the download: %s", stderr)
	case dlRename:
		return false, fmt.Errorf("rename the download into place: %s", stderr)
	case dlNoTool:
		return false, fmt.Errorf("%s is no longer on the host: install curl or wget, or set via_controller = true", toolName(pl.Tool))
	case dlNoHash:
		return false, fmt.Errorf("no working sha256sum, openssl or shasum on the host to verify the download: install coreutils (sha256sum), openssl or perl (shasum) there, or set via_controller = true")
	}
	return false, &CommandError{What: "download", ExitCode: res.ExitCode, Stderr: stderr}
}

// DownloadHTTPError is a download the server answered with a status
// other than 2xx (after redirects): nothing is written.
type DownloadHTTPError struct {
	// URL is the URL, credentials redacted.
	URL string
	// Status is the HTTP status code.
	Status int
	// Detail is the fetching tool's message, if any.
	Detail string
}

// Error names the status and the URL.
func (e *DownloadHTTPError) Error() string {
	msg := fmt.Sprintf("HTTP %d %s from %s: nothing written", e.Status, http.StatusText(e.Status), e.URL)
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		msg += " (check the credentials in the URL)"
	}
	return msg
}

// ChecksumError is a download whose sha256 is not the one the spec
// gives: it is removed, the file at path is unchanged.
type ChecksumError struct {
	URL       string // credentials redacted
	Want, Got string
}

// Error gives both sums.
func (e *ChecksumError) Error() string {
	return fmt.Sprintf("sha256 mismatch for %s: expected %s, got %s: the download was removed, the file is unchanged", e.URL, e.Want, e.Got)
}

// fetchViaController downloads pl.URL here with net/http into a local
// temp file, verifies it, and uploads it to pl.Path with its mode, owner
// and group.
func fetchViaController(ctx context.Context, h Host, req *Request, pl downloadPlan) (same bool, err error) {
	shown := redactURL(pl.URL)
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, pl.URL, nil)
	if err != nil {
		return false, fmt.Errorf("url %s: %w", shown, err)
	}
	client := &http.Client{CheckRedirect: func(r *http.Request, via []*http.Request) error {
		if len(via) > maxRedirects {
			return fmt.Errorf("more than %d redirects", maxRedirects)
		}
		return nil
	}}
	resp, err := client.Do(hreq)
	if err != nil {
		return false, fmt.Errorf("fetch %s on the controller: %w", shown, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return false, &DownloadHTTPError{URL: shown, Status: resp.StatusCode}
	}
	f, err := os.CreateTemp("", "opsmop-download-*")
	if err != nil {
		return false, fmt.Errorf("controller temp file: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	hs := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, hs), resp.Body)
	if err != nil {
		return false, fmt.Errorf("fetch %s on the controller: %w", shown, err)
	}
	got := hex.EncodeToString(hs.Sum(nil))
	if pl.Want != "" && got != pl.Want {
		return false, &ChecksumError{URL: shown, Want: pl.Want, Got: got}
	}
	if pl.Cur != "" && got == pl.Cur {
		return true, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	mode := pl.Mode
	if mode == 0 {
		mode = 0o644
	}
	opts := connection.UploadOptions{Mode: fileMode(mode), Owner: pl.Owner, Group: pl.Group}
	if req != nil {
		opts.Progress = req.Progress
	}
	return false, h.Upload(ctx, pl.Path, f, n, opts)
}
