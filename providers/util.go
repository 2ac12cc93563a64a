package providers

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// maxDiffSize is the largest file whose contents a probe sends back for a
// diff (and that Check diffs).
const maxDiffSize = 64 << 10

// probeOutput is a parsed probe result: `key=value` lines, then optionally
// one `blob=N` line followed by exactly N raw bytes (always last).
type probeOutput struct {
	kv      map[string]string
	blob    []byte
	hasBlob bool
}

// get returns the value of key ("" if absent).
func (p *probeOutput) get(key string) string { return p.kv[key] }

// parseProbe parses a probe's stdout. Lines that are not key=value are
// ignored (they cannot be produced by our probes, but a login banner on a
// misconfigured host could). A later key overrides an earlier one.
func parseProbe(out []byte) (*probeOutput, error) {
	p := &probeOutput{kv: map[string]string{}}
	for len(out) > 0 {
		line := out
		rest := []byte(nil)
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, rest = out[:i], out[i+1:]
		}
		out = rest
		k, v, ok := strings.Cut(string(line), "=")
		if !ok {
			continue
		}
		if k == "blob" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 {
				return nil, fmt.Errorf("malformed probe output: bad blob size %q", v)
			}
			if len(rest) < n {
				return nil, fmt.Errorf("malformed probe output: blob of %d bytes announced, %d received (did the file change during the probe? run again)", n, len(rest))
			}
			p.blob = rest[:n]
			p.hasBlob = true
			break
		}
		p.kv[k] = v
	}
	return p, nil
}

// probeResult checks a probe's exit status and parses its output. Our
// probes always exit 0; anything else means the script itself failed (no
// sh, a syntax error on an exotic shell, a permission problem).
func probeResult(res connection.Result) (*probeOutput, error) {
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("probe failed with exit status %d: %s", res.ExitCode, firstLines(res.Stderr, 5))
	}
	return parseProbe(res.Stdout)
}

// pathProbeVars are the variables statScript, hashScript and blobScript
// set: the probes built from them alone (file, template, directory, line,
// link) keep the inline contract of connection.Probe, which
// TestInlineProbes checks in a real sh.
func pathProbeVars() []string { return []string{"p", "t", "st", "size", "s"} }

// statScript is the shell fragment that sets $p to path and prints
// `type=absent|file|directory|link|other` and, when it exists,
// `stat=MODE UID GID USER GROUP SIZE` (of the link itself for a symlink),
// leaving the size in $size. stat runs once (one process): a no-op probe
// costs what creating its processes costs on the host. When a
// ProbePrelude earlier in the batch has already stat'ed the path, its
// line is used and no process is started.
func statScript(p string) string {
	k := preludeKey(p)
	return "p=" + shell.Quote(p) + `
if [ -L "$p" ]; then t=link; elif [ -d "$p" ]; then t=directory; elif [ -f "$p" ]; then t=file; elif [ -e "$p" ]; then t=other; else t=absent; fi
printf 'type=%s\n' "$t"
if [ "$t" != absent ]; then if [ -n "${opsmop_s_` + k + `-}" ]; then st=$opsmop_s_` + k + `; else st=$(stat -c '%a %u %g %U %G %s' -- "$p" 2>/dev/null) || st=; fi
if [ -n "$st" ]; then printf 'stat=%s\n' "$st"; size=${st##* }; else echo stat=error; fi; fi
`
}

// hashTools are the host's tools hashScript tries, in order: each is the
// tool's name and the shell command whose output starts (sha256sum,
// shasum) or ends (openssl: "SHA2-256(stdin)= HEX") with the hex sha256
// of the file $p.
func hashTools() [][2]string {
	return [][2]string{
		{"sha256sum", `sha256sum < "$p"`},
		{"openssl", `openssl dgst -sha256 < "$p"`},
		{"shasum", `shasum -a 256 < "$p"`},
	}
}

// hashChain is the shell code that sets $s, unless it is already set, with
// the first of hashTools that exists and succeeds (a tool that fails
// leaves $s empty for the next one).
func hashChain() string {
	var b strings.Builder
	for _, t := range hashTools() {
		cut := `${s%% *}`
		if t[0] == "openssl" {
			cut = `${s##*= }`
		}
		b.WriteString(`[ -n "$s" ] || ! command -v ` + t[0] + ` >/dev/null 2>&1 || { s=$(` + t[1] + `) && s=` + cut + " || s=; }\n")
	}
	return b.String()
}

// hashScript is the shell fragment that prints `sha256=HEX` of the regular
// file $p, path (empty when no hash tool exists or works, or it is
// unreadable), and `readable=0` when it cannot be read; like statScript,
// it uses the sum a ProbePrelude computed when there is one. $s is left
// empty when there is no sum: readBackScript then sends the contents to
// be hashed here.
func hashScript(p string) string {
	k := preludeKey(p)
	return `if [ -r "$p" ]; then
s=${opsmop_h_` + k + `-}
` + hashChain() + `printf 'sha256=%s\n' "$s"
else s=; echo readable=0; fi
`
}

// emptySum is the sha256 of no bytes.
const emptySum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// noHashToolScript prints `hashtool=0` when none of hashTools works on
// the host (hashing /dev/null in a subshell): the probe of a file too
// large to read back asks, so that Check fails before anything is
// written (see NoHashError).
func noHashToolScript() string {
	return "(p=/dev/null; s=\n" + hashChain() + `[ "$s" = ` + emptySum + " ]) || echo hashtool=0\n"
}

// readBackCond is the shell condition under which a file probe reads the
// whole file $p back (readBackScript): no sum ($s empty, see hashScript),
// readable, and exactly want bytes long, the size of the wanted contents
// (a file of another size differs anyway: it is not read back).
func readBackCond(want int64) string {
	return `[ -z "$s" ] && [ -r "$p" ] && [ "$size" -eq ` + strconv.FormatInt(want, 10) + " ]"
}

// readBackScript prints the whole file $p as the probe's blob, for Check
// to hash here when the host has no hash tool. It announces the size stat
// gave ($size): should the file grow in between, parseProbe takes that
// many bytes, and should it shrink, the probe fails (run again). Like
// blobScript it must be the last thing a probe prints.
func readBackScript() string {
	return `printf 'blob=%s\n' "$size"; cat < "$p"
`
}

// blobScript prints the contents of $p as the probe's blob when it is
// readable and at most max bytes, or any size when max < 0; with text set
// only when it has no NUL byte. $size must hold the file's size (set by
// statScript). It must be the last thing a probe prints.
func blobScript(max int, text bool) string {
	var b strings.Builder
	b.WriteString("if [ -r \"$p\" ]; then\n")
	cond := "true"
	if max >= 0 {
		cond = fmt.Sprintf("[ \"$size\" -le %d ]", max)
	}
	if text {
		cond += " && [ $(($(tr -d '\\000' < \"$p\" | wc -c))) -eq \"$size\" ]"
	}
	fmt.Fprintf(&b, "if %s; then printf 'blob=%%s\\n' \"$size\"; head -c \"$size\" < \"$p\"; fi\nfi\n", cond)
	return b.String()
}

// statInfo is the parsed `stat=` line.
type statInfo struct {
	Mode     uint32
	UID, GID string
	User     string
	Group    string
	// Size is the size in bytes (of the link itself for a symlink).
	Size int64
}

// replaced returns the mode, owner and group a file written over this
// one gets: the given ones (mode "" means unset), and for what is unset
// the existing file's (as numeric ids, which an SFTP upload sets without
// a chown on the host), so that replacing contents keeps the attributes.
// Without an existing file (exists false) unset stays unset.
func (s statInfo) replaced(exists bool, mode string, wantMode uint32, owner, group string) (uint32, string, string) {
	if !exists {
		return wantMode, owner, group
	}
	if mode == "" {
		wantMode = s.Mode
	}
	if owner == "" {
		owner = s.UID
	}
	if group == "" {
		group = s.GID
	}
	return wantMode, owner, group
}

// owner is the owner as shown to users: the name, or the uid when the
// host has no name for it.
func (s statInfo) owner() string {
	if s.User == "" || s.User == "UNKNOWN" {
		return s.UID
	}
	return s.User
}

func (s statInfo) group() string {
	if s.Group == "" || s.Group == "UNKNOWN" {
		return s.GID
	}
	return s.Group
}

// ownerIs reports whether want (a name or a numeric id) is the owner.
func (s statInfo) ownerIs(want string) bool { return idMatches(want, s.UID, s.User) }

// groupIs reports whether want (a name or a numeric id) is the group.
func (s statInfo) groupIs(want string) bool { return idMatches(want, s.GID, s.Group) }

func idMatches(want, id, name string) bool {
	if isNumeric(want) {
		return want == id
	}
	return want == name
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// parseStat parses the probe's stat line; ok is false when there is none.
func parseStat(p *probeOutput) (statInfo, bool, error) {
	v := p.get("stat")
	if v == "" {
		return statInfo{}, false, nil
	}
	if v == "error" {
		return statInfo{}, false, fmt.Errorf("cannot stat the path (permission denied?)")
	}
	f := strings.Fields(v)
	if len(f) != 6 {
		return statInfo{}, false, fmt.Errorf("malformed probe output: stat=%q", v)
	}
	m, err := strconv.ParseUint(f[0], 8, 32)
	if err != nil {
		return statInfo{}, false, fmt.Errorf("malformed probe output: stat mode %q", f[0])
	}
	size, err := strconv.ParseInt(f[5], 10, 64)
	if err != nil || size < 0 {
		return statInfo{}, false, fmt.Errorf("malformed probe output: stat size %q", f[5])
	}
	return statInfo{Mode: uint32(m), UID: f[1], GID: f[2], User: f[3], Group: f[4], Size: size}, true, nil
}

// parseMode parses an octal mode string such as "0644" or "755".
func parseMode(s string) (uint32, error) {
	if s == "" {
		return 0, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("mode %q: want an octal mode such as \"0644\" (quote it in the policy)", s)
	}
	return uint32(m), nil
}

// fmtMode formats a mode as four octal digits.
func fmtMode(m uint32) string { return fmt.Sprintf("%04o", m) }

// fileMode converts an octal permission value to an os.FileMode.
func fileMode(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// checkPath validates a remote path: absolute, no NUL, not only slashes.
func checkPath(key, p string) error {
	switch {
	case p == "":
		return fmt.Errorf("%s is empty: give an absolute path", key)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf("%s %q contains a NUL byte", key, p)
	case !path.IsAbs(p):
		return fmt.Errorf("%s %q is not absolute: remote paths must start with /", key, p)
	}
	return nil
}

// oneOf checks an enum value ("" is allowed and means the default).
func oneOf(key, v string, allowed ...string) error {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s %q: want one of %s", key, v, strings.Join(allowed, ", "))
}

// orDefault returns v, or def when v is empty.
func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// sha256Hex returns the hex sha256 of b.
func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// isSum reports whether s is a hex sha256 as the hash tools print it (64
// lower-case hex digits).
func isSum(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// shortSum is how a content hash is shown in a Field.
func shortSum(hexsum string) string {
	if hexsum == "" {
		return ""
	}
	if len(hexsum) > 12 {
		hexsum = hexsum[:12] + "…"
	}
	return "sha256:" + hexsum
}

// isText reports whether b looks like text worth diffing.
func isText(b []byte) bool {
	return len(b) <= maxDiffSize && bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// unifiedDiff returns a unified diff from before to after for path p
// (before nil: a new file).
func unifiedDiff(p string, before, after []byte, isNew bool) string {
	from := p
	if isNew {
		from = "/dev/null"
	}
	return udiff.Unified(from, p, string(before), string(after))
}

// firstLines returns at most n lines of b, trimmed, for error messages.
func firstLines(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = append(lines[:n], "…")
	}
	return strings.Join(lines, "\n")
}

// lastLines returns at most n trailing lines of b, trimmed.
func lastLines(b []byte, n int) string {
	s := strings.TrimSpace(string(b))
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = append([]string{"…"}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// CommandError is a command that a provider ran on the host and that
// failed (non-zero exit status).
type CommandError struct {
	// What says what was being done ("chmod", "apt-get install").
	What     string
	ExitCode int
	Stderr   string
}

// Error renders the failure with the command's last stderr lines.
func (e *CommandError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s failed with exit status %d", e.What, e.ExitCode)
	}
	return fmt.Sprintf("%s failed with exit status %d: %s", e.What, e.ExitCode, e.Stderr)
}

// run runs script on h and turns a non-zero exit into a *CommandError.
func run(ctx context.Context, h Host, what, script string, stdin io.Reader) (connection.Result, error) {
	res, err := h.Run(ctx, script, stdin)
	if err != nil {
		return res, fmt.Errorf("%s: %w", what, err)
	}
	if res.ExitCode != 0 {
		return res, &CommandError{What: what, ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 10)}
	}
	return res, nil
}

// chownCmd returns the complete command that sets the owner and/or group
// of path p (of everything beneath it too with recurse), or "" when
// neither is set. The command is shell.Chown's.
func chownCmd(owner, group string, recurse bool, p string) string {
	c := shell.Chown(owner, group, recurse)
	if c == "" {
		return ""
	}
	return c + " " + shell.Quote(p)
}

// callError is the caller's misuse of the Provider contract: a request
// without a spec of the type, a change that is not from the type's check.
// It names the type, and adapt passes it on without a label.
type callError struct{ msg string }

// Error returns the message.
func (e *callError) Error() string { return e.msg }

func (*callError) selfLabeled() {}

// plan returns ch.Plan as a T or a *callError naming the type: Apply must
// be given the Change that Check of the same provider returned.
func plan[T any](ch *Change, typ string) (T, error) {
	var zero T
	if ch == nil {
		return zero, &callError{fmt.Sprintf("%s: apply called without a change", typ)}
	}
	p, ok := ch.Plan.(T)
	if !ok {
		return zero, &callError{fmt.Sprintf("%s: apply given a change with plan %T, not from this provider's check", typ, ch.Plan)}
	}
	return p, nil
}

// spec returns req.Spec as *T or a *callError naming the type.
func spec[T any](req *Request, typ string) (*T, error) {
	if req == nil {
		return nil, &callError{fmt.Sprintf("%s: nil request", typ)}
	}
	s, ok := req.Spec.(*T)
	if !ok || s == nil {
		var zero T
		return nil, &callError{fmt.Sprintf("%s: spec is %T, want %T", typ, req.Spec, &zero)}
	}
	return s, nil
}
