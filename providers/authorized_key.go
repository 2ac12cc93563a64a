package providers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// AuthorizedKeySpec is the `authorized_key` resource: public keys in a
// user's ~/.ssh/authorized_keys, like Ansible's authorized_key. Keys are
// parsed and compared locally (golang.org/x/crypto/ssh); a key is known by
// its type and blob, whatever its options and comment.
type AuthorizedKeySpec struct {
	User      string   `opsmop:"user" required:"true" doc:"the user whose ~/.ssh/authorized_keys is managed (home directory from the host's passwd database: getent passwd, else /etc/passwd); the user must exist"`
	Key       []string `opsmop:"key" required:"true" list1:"true" doc:"one or more public keys as authorized_keys lines: [options] type base64 [comment], e.g. the contents of id_ed25519.pub; one item may hold several lines (blank lines and # comments in it are skipped)"`
	State     string   `opsmop:"state" enum:"present|absent" default:"present" doc:"present: each key is in the file with exactly its options (and its comment when it has one); absent: no line holds any of the keys"`
	Exclusive bool     `opsmop:"exclusive" doc:"with state present: remove every other key line (and every line that is not a key, a comment or blank); comments and blank lines stay"`
}

// maxKeyLine is the longest key line accepted (an RSA key of 16384 bits
// with options takes about 3 KiB).
const maxKeyLine = 16 << 10

// maxAuthorizedKeys is the largest authorized_keys file the probe reads.
const maxAuthorizedKeys = 16 << 20

// Validate checks the rules of an authorized_key that need no host (see
// Validator): user is a valid name; state is present or absent; every
// key parses strictly (see parseWantedKeys); no key is given twice;
// exclusive goes with state present only.
func (s *AuthorizedKeySpec) Validate() error {
	var p problems
	p.name("user", "user", s.User)
	p.enum("state", s.State, "present", "absent")
	if len(s.Key) == 0 {
		p.add("key", "key is empty: give at least one public key")
	}
	if !slices.ContainsFunc(s.Key, templated) {
		if _, err := parseWantedKeys(s.Key); err != nil {
			p.add("key", "%v", err)
		}
	}
	if s.Exclusive && s.State == "absent" {
		p.add("exclusive", "exclusive removes every key but the listed ones, which state absent removes: use exclusive with state present")
	}
	return p.err()
}

// authKey is one key line: parsed from the policy or from the file.
type authKey struct {
	pub     ssh.PublicKey
	id      string   // the key's wire form: type and blob, its identity
	options []string // as written, without the commas between them
	comment string
}

// line renders the key as an authorized_keys line.
func (k authKey) line() string {
	var b strings.Builder
	if len(k.options) > 0 {
		b.WriteString(strings.Join(k.options, ",") + " ")
	}
	b.Write(bytes.TrimSuffix(ssh.MarshalAuthorizedKey(k.pub), []byte("\n")))
	if k.comment != "" {
		b.WriteString(" " + k.comment)
	}
	return b.String()
}

// label is how the key is shown: type, SHA256 fingerprint and comment.
func (k authKey) label() string {
	l := k.pub.Type() + " " + ssh.FingerprintSHA256(k.pub)
	if k.comment != "" {
		l += " " + k.comment
	}
	return l
}

// keyOptions are the options sshd (OpenSSH 9) understands in
// authorized_keys, matched without regard to case: true for those that
// take a quoted value. sshd ignores a line with any other option, so a
// misspelt one would lock the key out without a word.
func keyOptions() map[string]bool {
	return map[string]bool{
		"agent-forwarding": false, "cert-authority": false, "no-agent-forwarding": false,
		"no-port-forwarding": false, "no-pty": false, "no-user-rc": false, "no-x11-forwarding": false,
		"port-forwarding": false, "pty": false, "restrict": false, "user-rc": false, "x11-forwarding": false,
		"no-touch-required": false, "touch-required": false, "verify-required": false,
		"command": true, "environment": true, "expiry-time": true, "from": true, "permitlisten": true,
		"permitopen": true, "principals": true, "tunnel": true,
	}
}

// parseKeyLine parses one authorized_keys line strictly: no control
// character but tab, valid UTF-8, at most maxKeyLine bytes, a key type
// and blob x/crypto/ssh knows that agree, and only options sshd knows,
// each with a quoted value where it takes one.
func parseKeyLine(line string) (authKey, error) {
	if len(line) > maxKeyLine {
		return authKey{}, fmt.Errorf("the line is %d bytes long: a public key line is at most %d", len(line), maxKeyLine)
	}
	if !utf8.ValidString(line) {
		return authKey{}, errors.New("the line is not valid UTF-8")
	}
	if i := strings.IndexFunc(line, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }); i >= 0 {
		return authKey{}, fmt.Errorf("the line holds the control character %q at byte %d", line[i:i+1], i)
	}
	pub, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return authKey{}, fmt.Errorf("not a public key (want [options] type base64 [comment], as in id_ed25519.pub): %v", strings.TrimPrefix(err.Error(), "ssh: "))
	}
	known := keyOptions()
	for _, o := range options {
		name, val, hasVal := strings.Cut(o, "=")
		takes, ok := known[strings.ToLower(name)]
		switch {
		case !ok:
			names := make([]string, 0, len(known))
			for n, v := range known {
				if v {
					n += "=\"...\""
				}
				names = append(names, n)
			}
			slices.Sort(names)
			return authKey{}, fmt.Errorf("unknown key option %q: sshd would ignore the whole line (known: %s)", name, strings.Join(names, ", "))
		case takes && !hasVal:
			return authKey{}, fmt.Errorf("key option %s needs a value: %s=\"...\"", name, name)
		case !takes && hasVal:
			return authKey{}, fmt.Errorf("key option %s takes no value", name)
		case takes && (len(val) < 2 || val[0] != '"' || val[len(val)-1] != '"'):
			return authKey{}, fmt.Errorf("key option %s: the value must be in double quotes: %s=\"...\"", name, name)
		}
	}
	return authKey{pub: pub, id: string(pub.Marshal()), options: options, comment: comment}, nil
}

// excerpt is the start of a line, for an error message.
func excerpt(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strconv.Quote(s)
}

// parseWantedKeys parses the key values: every non-blank line of each
// that is not a # comment must be a key (parseKeyLine), and no key may
// come twice. A trailing carriage return (a file with CRLF line ends) is
// dropped.
func parseWantedKeys(values []string) ([]authKey, error) {
	var keys []authKey
	seen := map[string]int{}
	for i, v := range values {
		lines := strings.Split(v, "\n")
		n := 0
		for j, l := range lines {
			l = strings.TrimSuffix(l, "\r")
			t := strings.TrimSpace(l)
			if t == "" || t[0] == '#' {
				continue
			}
			where := fmt.Sprintf("key %d", i+1)
			if len(lines) > 1 {
				where += fmt.Sprintf(", line %d", j+1)
			}
			k, err := parseKeyLine(t)
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", where, excerpt(t), err)
			}
			if at, dup := seen[k.id]; dup {
				return nil, fmt.Errorf("%s: the key %s is given twice (also as key number %d in the list): give each key once, with its options", where, ssh.FingerprintSHA256(k.pub), at)
			}
			seen[k.id] = len(keys) + 1
			keys = append(keys, k)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("key %d holds no public key", i+1)
		}
	}
	return keys, nil
}

// akLine is one line of an authorized_keys file.
type akLine struct {
	text string
	key  *authKey // nil: blank, comment or not a key
	// other: not blank, not a comment and not a key this parser knows.
	other bool
}

// parseAuthorizedKeys splits a file into lines (the last one's newline,
// if any, dropped) and parses each.
func parseAuthorizedKeys(content []byte) []akLine {
	if len(content) == 0 {
		return nil
	}
	text := strings.TrimSuffix(string(content), "\n")
	var out []akLine
	for _, l := range strings.Split(text, "\n") {
		t := strings.TrimSpace(l)
		al := akLine{text: l}
		if t != "" && t[0] != '#' {
			if pub, comment, options, _, err := ssh.ParseAuthorizedKey([]byte(l)); err == nil {
				al.key = &authKey{pub: pub, id: string(pub.Marshal()), options: options, comment: comment}
			} else {
				al.other = true
			}
		}
		out = append(out, al)
	}
	return out
}

// editAuthorizedKeys returns the file's new contents and one Field per
// key added, changed or removed. With present: the first line holding
// each wanted key becomes it when its options differ, or its comment
// does and the wanted key has one (a key written without a comment keeps
// the line's); later lines holding the same key are removed (sshd tries
// every matching line, so a second one could lift the first one's
// restrictions); missing keys are appended in the order given. With
// absent: every line holding a wanted key is removed. With exclusive,
// every other line but blanks and comments is removed. Other lines are
// kept as they are, in order.
func editAuthorizedKeys(content []byte, want []authKey, absent, exclusive bool) ([]byte, []Field) {
	lines := parseAuthorizedKeys(content)
	wanted := map[string]int{}
	for i, k := range want {
		wanted[k.id] = i
	}
	done := make([]bool, len(want))
	var out []string
	var fields []Field
	for n, l := range lines {
		if l.key == nil {
			if l.other && exclusive {
				fields = append(fields, Field{Name: fmt.Sprintf("line %d", n+1), Before: excerpt(l.text), After: "removed (exclusive)"})
				continue
			}
			out = append(out, l.text)
			continue
		}
		i, ok := wanted[l.key.id]
		switch {
		case !ok && exclusive:
			fields = append(fields, Field{Name: "key " + l.key.label(), Before: "present", After: "absent (exclusive)"})
		case !ok:
			out = append(out, l.text)
		case absent:
			fields = append(fields, Field{Name: "key " + l.key.label(), Before: "present", After: "absent"})
		case done[i]:
			fields = append(fields, Field{Name: "key " + l.key.label(), Before: fmt.Sprintf("also on line %d", n+1), After: "once"})
		default:
			done[i] = true
			w := want[i]
			if w.comment == "" {
				w.comment = l.key.comment
			}
			if slices.Equal(w.options, l.key.options) && w.comment == l.key.comment {
				out = append(out, l.text)
				continue
			}
			out = append(out, w.line())
			fields = append(fields, Field{Name: "key " + w.label(), Before: describeKey(*l.key), After: describeKey(w)})
		}
	}
	if !absent {
		for i, k := range want {
			if !done[i] {
				out = append(out, k.line())
				fields = append(fields, Field{Name: "key " + k.label(), Before: "absent", After: "present"})
			}
		}
	}
	if len(out) == 0 {
		return []byte{}, fields
	}
	return []byte(strings.Join(out, "\n") + "\n"), fields
}

// describeKey shows a key line's options and comment, for a Field.
func describeKey(k authKey) string {
	o := "no options"
	if len(k.options) > 0 {
		o = "options " + strings.Join(k.options, ",")
	}
	if k.comment == "" {
		return o
	}
	return o + ", comment " + strconv.Quote(k.comment)
}

// authorizedKeyProvider implements `authorized_key`.
type authorizedKeyProvider struct{}

// authorizedKeyPlan is what Apply does: in the home directory Home,
// create .ssh when missing, set its owner and mode (MakeDir), and replace
// .ssh/authorized_keys with Data, owned UID:GID with Mode.
type authorizedKeyPlan struct {
	User     string
	Home     string
	UID, GID string
	MakeDir  bool // present: create ~/.ssh if missing, chown it UID:GID, chmod 0700
	Data     []byte
	// Before is the file as check read it (nil: there was none): apply
	// reads it again first and writes only when it is unchanged.
	Before  []byte
	Mode    uint32
	FileUID string
	FileGID string
}

// labels names the instance by its user in the errors of Check and
// Apply; the errors of Probe name only the type.
func (authorizedKeyProvider) labels(s *AuthorizedKeySpec) errLabels {
	l := "authorized_key for " + s.User
	return errLabels{Probe: "authorized_key", Check: l, Apply: l}
}

// Probe prints `passwd=` (the user's passwd entry, empty when there is
// none: getent passwd, else a read of /etc/passwd for hosts without
// getent), `runner=` (the uid running the probe), and, when the user
// exists, `home=`, `dir=` and `file=` (type of the home directory, of
// ~/.ssh and of ~/.ssh/authorized_keys: absent, directory, file, link or
// other; `homesearch=0`/`dirsearch=0` when the runner cannot search
// them), `dstat=`/`fstat=` (stat of the last two) and the file as the
// probe's blob (or `readable=0`, `toolarge=1`).
func (authorizedKeyProvider) Probe(s *AuthorizedKeySpec, req *Request) (string, error) {
	return "u=" + shell.Quote(s.User) + `
e=
if command -v getent >/dev/null 2>&1; then e=$(getent passwd "$u" 2>/dev/null) || e=; fi
if [ -z "$e" ] && [ -r /etc/passwd ]; then
while IFS= read -r l || [ -n "$l" ]; do case $l in "$u":*) e=$l; break;; esac; done < /etc/passwd
fi
printf 'passwd=%s\nrunner=%s\n' "$e" "$(id -u)"
if [ -n "$e" ]; then
ty() { if [ -L "$1" ]; then t='link'; elif [ -d "$1" ]; then t='directory'; elif [ -f "$1" ]; then t='file'; elif [ -e "$1" ]; then t='other'; else t='absent'; fi; }
h=${e#*:*:*:*:*:}; h=${h%%:*}
d=$h/.ssh; f=$d/authorized_keys
ty "$h"; printf 'home=%s\n' "$t"
if [ "$t" = directory ] && [ ! -x "$h" ]; then echo homesearch=0; fi
ty "$d"; printf 'dir=%s\n' "$t"
if [ "$t" = directory ] && [ ! -x "$d" ]; then echo dirsearch=0; fi
if [ "$t" != absent ]; then st=$(stat -c '%a %u %g %U %G %s' -- "$d" 2>/dev/null) || st=error; printf 'dstat=%s\n' "$st"; fi
ty "$f"; printf 'file=%s\n' "$t"
if [ "$t" != absent ]; then st=$(stat -c '%a %u %g %U %G %s' -- "$f" 2>/dev/null) || st=error; printf 'fstat=%s\n' "$st"; fi
if [ "$t" = file ] && [ "$st" != error ]; then
size=${st##* }
if [ ! -r "$f" ]; then echo readable=0
elif [ "$size" -gt ` + strconv.Itoa(maxAuthorizedKeys) + ` ]; then echo toolarge=1
else printf 'blob=%s\n' "$size"; head -c "$size" < "$f"; fi
fi
fi
`, nil
}

// akStat parses a dstat= or fstat= value (see parseStat).
func akStat(p *probeOutput, key, what string) (statInfo, error) {
	v := p.get(key)
	if v == "error" {
		return statInfo{}, fmt.Errorf("cannot stat %s as this connection's user: run with sudo = true", what)
	}
	st, _, err := parseStat(&probeOutput{kv: map[string]string{"stat": v}})
	return st, err
}

// Check computes the file's new contents locally and compares.
func (authorizedKeyProvider) Check(s *AuthorizedKeySpec, req *Request, probe connection.Result) (*Change, error) {
	want, err := parseWantedKeys(s.Key)
	if err != nil {
		return nil, err
	}
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	pw := p.get("passwd")
	if pw == "" {
		return nil, &MissingUserError{User: s.User}
	}
	f := strings.Split(pw, ":")
	if len(f) < 7 {
		return nil, fmt.Errorf("malformed probe output: passwd entry has %d fields", len(f))
	}
	uid, gid, home := f[2], f[3], f[5]
	if !isNumeric(uid) || !isNumeric(gid) {
		return nil, fmt.Errorf("malformed probe output: passwd entry %q", pw)
	}
	if err := checkPath("the home directory", home); err != nil {
		return nil, fmt.Errorf("user %s: %w", s.User, err)
	}
	keysPath := strings.TrimSuffix(home, "/") + "/.ssh/authorized_keys"
	dirPath := strings.TrimSuffix(home, "/") + "/.ssh"
	absent := s.State == "absent"
	runner := p.get("runner")
	needRoot := func() error {
		if runner == "0" || runner == uid {
			return nil
		}
		return fmt.Errorf("changing %s needs root or %s itself (this connection runs as uid %s): run with sudo = true", keysPath, s.User, runner)
	}

	switch p.get("home") {
	case "directory":
	case "absent":
		if absent {
			return &Change{Action: None}, nil
		}
		return nil, fmt.Errorf("the home directory %s of user %s does not exist: create it (user with create_home = true, or a directory resource) before this resource", home, s.User)
	default:
		return nil, fmt.Errorf("the home directory %s of user %s is not a directory", home, s.User)
	}

	// A directory this connection's user cannot search hides what is
	// in it: ~/.ssh or authorized_keys would look absent.
	if p.get("homesearch") == "0" || p.get("dirsearch") == "0" {
		return nil, fmt.Errorf("cannot look into %s as this connection's user: run with sudo = true", dirPath)
	}
	pl := authorizedKeyPlan{User: s.User, Home: home, UID: uid, GID: gid, Mode: 0o600, FileUID: uid, FileGID: gid}
	var fields []Field
	switch p.get("dir") {
	case "absent":
		if absent {
			return &Change{Action: None}, nil
		}
		pl.MakeDir = true
		fields = append(fields, Field{Name: dirPath, Before: "absent", After: "directory 0700 " + s.User})
	case "directory":
		st, err := akStat(p, "dstat", dirPath)
		if err != nil {
			return nil, err
		}
		if !absent {
			pl.MakeDir = true
			if st.Mode != 0o700 {
				fields = append(fields, Field{Name: dirPath + " mode", Before: fmtMode(st.Mode), After: "0700"})
			}
			if st.UID != uid || st.GID != gid {
				fields = append(fields, Field{Name: dirPath + " owner", Before: st.owner() + ":" + st.group(), After: uid + ":" + gid})
			}
		}
	case "link":
		return nil, fmt.Errorf("%s is a symlink: opsmop does not write through links in a user's home (a user could point it anywhere); make it a directory", dirPath)
	default:
		return nil, fmt.Errorf("%s exists and is not a directory", dirPath)
	}

	var before []byte
	isNew := false
	switch p.get("file") {
	case "", "absent":
		if absent {
			return &Change{Action: None}, nil
		}
		isNew = true
		fields = append(fields, Field{Name: keysPath, Before: "absent", After: "file 0600 " + s.User})
	case "file":
		st, err := akStat(p, "fstat", keysPath)
		if err != nil {
			return nil, err
		}
		switch {
		case p.get("toolarge") == "1":
			return nil, fmt.Errorf("%s is over %d MiB: not an authorized_keys file opsmop edits", keysPath, maxAuthorizedKeys>>20)
		case p.get("readable") == "0" || !p.hasBlob:
			return nil, fmt.Errorf("cannot read %s as this connection's user: run with sudo = true", keysPath)
		}
		before = p.blob
		if absent {
			// Removing keys keeps the file's mode and owner.
			pl.Mode, pl.FileUID, pl.FileGID = st.Mode, st.UID, st.GID
			break
		}
		if st.Mode != 0o600 {
			fields = append(fields, Field{Name: keysPath + " mode", Before: fmtMode(st.Mode), After: "0600"})
		}
		if st.UID != uid || st.GID != gid {
			fields = append(fields, Field{Name: keysPath + " owner", Before: st.owner() + ":" + st.group(), After: uid + ":" + gid})
		}
	case "link":
		return nil, fmt.Errorf("%s is a symlink: opsmop does not write through links in a user's home; make it a regular file (or manage the file it points to with line or file)", keysPath)
	default:
		return nil, fmt.Errorf("%s exists and is not a regular file", keysPath)
	}
	if bytes.IndexByte(before, 0) >= 0 {
		return nil, fmt.Errorf("%s contains NUL bytes: not an authorized_keys file opsmop edits", keysPath)
	}
	after, keyFields := editAuthorizedKeys(before, want, absent, s.Exclusive)
	fields = append(fields, keyFields...)
	if len(fields) == 0 {
		return &Change{Action: None}, nil
	}
	if err := needRoot(); err != nil {
		return nil, err
	}
	pl.Data = after
	if !isNew {
		pl.Before = append([]byte{}, before...)
	}
	ch := &Change{Action: Update, Fields: fields, Plan: pl}
	if isNew {
		ch.Action = Create
	}
	if !bytes.Equal(before, after) {
		ch.Diff = unifiedDiff(keysPath, before, after, isNew)
	}
	return ch, nil
}

// MissingUserError is a check of an authorized_key whose user does not
// exist on the host.
type MissingUserError struct {
	User string
}

// Error names the user and says what to do.
func (e *MissingUserError) Error() string {
	return fmt.Sprintf("user %s does not exist on the host: create it first (a user resource before this one; opsmop check cannot see a user that an earlier resource would create)", e.User)
}

// Apply reads the file again and fails, writing nothing, when it changed
// since the check. Then it writes the file in one script, the contents on
// stdin: it enters
// the home directory, refuses a symlinked ~/.ssh or authorized_keys,
// creates ~/.ssh (0700) when missing and makes sure the directory it
// entered is HOME/.ssh itself (so a link swapped in meanwhile is not
// followed), then writes a temp file beside authorized_keys, sets its
// owner and mode and renames it into place.
func (authorizedKeyProvider) Apply(ctx context.Context, h Host, s *AuthorizedKeySpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[authorizedKeyPlan](ch, "authorized_key")
	if err != nil {
		return nil, err
	}
	keysPath := strings.TrimSuffix(pl.Home, "/") + "/.ssh/authorized_keys"
	// Read the file again: a key added by someone else since the check
	// must not be lost.
	probe, err := authorizedKeyProvider{}.Probe(s, req)
	if err != nil {
		return nil, err
	}
	res, err := run(ctx, h, "read "+keysPath, probe, nil)
	if err != nil {
		return nil, err
	}
	now, err := parseProbe(res.Stdout)
	if err != nil {
		return nil, err
	}
	if (pl.Before == nil) != (now.get("file") != "file") || !bytes.Equal(now.blob, pl.Before) {
		return nil, fmt.Errorf("%s changed since the check: nothing written; run again", keysPath)
	}
	var b strings.Builder
	b.WriteString("set -e\nh=" + shell.Quote(pl.Home) + `
fail() { printf '%s\n' "$1" >&2; exit 3; }
cd -P -- "$h"
hp=$(pwd -P)
if [ -L .ssh ]; then fail "$h/.ssh is a symlink: refusing to follow it"; fi
`)
	if pl.MakeDir {
		b.WriteString("[ -d .ssh ] || mkdir -m 700 .ssh\n")
	}
	b.WriteString(`cd -P .ssh
[ "$(pwd -P)" = "${hp%/}/.ssh" ] || fail "$h/.ssh changed while being written (it leads to $(pwd -P)): run again"
`)
	if pl.MakeDir {
		b.WriteString("chown " + pl.UID + ":" + pl.GID + " .\nchmod 700 .\n")
	}
	b.WriteString(`if [ -L authorized_keys ] || { [ -e authorized_keys ] && [ ! -f authorized_keys ]; }; then fail "$h/.ssh/authorized_keys is not a regular file"; fi
t=$(mktemp .authorized_keys.opsmop.XXXXXX)
trap 'rm -f -- "$t"' EXIT
cat > "$t"
`)
	b.WriteString("chown " + pl.FileUID + ":" + pl.FileGID + " \"$t\"\nchmod " + fmtMode(pl.Mode) + " \"$t\"\n")
	b.WriteString(connection.SELinuxRename(`"$t"`, "authorized_keys") + " || exit 3\ntrap - EXIT\n") // the SELinux context kept
	if _, err := run(ctx, h, "write "+keysPath, b.String(), bytes.NewReader(pl.Data)); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}
