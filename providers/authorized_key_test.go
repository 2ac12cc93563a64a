package providers

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

// authorizedKeyDocs is the docs page of `authorized_key` (typeDocs).
func authorizedKeyDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- The file is always `~USER/.ssh/authorized_keys`, the home directory taken from the host's passwd database (`getent passwd`, else `/etc/passwd` on hosts without getent). A user that does not exist is an error naming the user; so is a home directory that does not exist (create it with `user`'s `create_home`). `opsmop check` cannot see a user that an earlier resource of the same run would create: it reports the error, `apply` (which checks each resource after the ones before it ran) does not.\n" +
			"- One probe per resource, in the host's one-round-trip probe batch, reads the passwd entry, the type and stat of `~/.ssh` and of the file, and the file itself; the keys are parsed and compared **locally** (golang.org/x/crypto/ssh), the new contents computed here and shown as a diff, with one field per key (`key ssh-ed25519 SHA256:… alice@laptop: absent -> present`).\n" +
			"- A key is known by its type and blob (its SHA256 fingerprint), whatever its options and comment. With `state = \"present\"`, a line holding the key is left alone when its options are the wanted ones and its comment too (a key written without a comment keeps the line's comment); otherwise the line is rewritten in place. Options are compared as written (`from=\"10.0.0.0/8\",no-pty` and `no-pty,from=\"10.0.0.0/8\"` differ). Missing keys are appended at the end, in the order given.\n" +
			"- A second line holding the same key is removed: sshd tries every line whose key matches, so an unrestricted duplicate would lift the restrictions (`from=`, `command=`) of the managed line.\n" +
			"- Every other line (other keys, comments, blank lines, lines opsmop cannot parse) is kept as it is, in order, unless `exclusive = true`: then every line that is not a listed key, a comment or blank is removed, including lines opsmop cannot parse (a key type it does not know would still let someone in). `exclusive` needs `state = \"present\"`; with several `authorized_key` resources for one user, only one may be exclusive and it must list every key.\n" +
			"- `state = \"absent\"` removes every line holding one of the keys, whatever its options; the file keeps its mode and owner, and is left in place (even empty). A missing home directory, `~/.ssh` or file is nothing to do; a missing user is still an error (as in Ansible).\n" +
			"- With `state = \"present\"`, `~/.ssh` is created when missing and kept at mode 0700, and the file at mode 0600, both owned by the user and their primary group (from passwd), as Ansible's `manage_dir` does; a different mode or owner is drift, shown and repaired.\n" +
			"- Apply first reads the file again: when it changed since the check (a key added by hand or by another tool in between), nothing is written and the resource fails, saying to run again; so no key is lost to a race. Then it writes the whole file in one command, the contents on stdin: it enters the home directory, creates `~/.ssh` if needed, makes sure the directory it entered is `HOME/.ssh` itself (`pwd -P`), writes a temp file there, sets owner and mode, and renames it over `authorized_keys`. A symlink at `~/.ssh` or `~/.ssh/authorized_keys` is refused at check and again at apply: as root, opsmop never writes through links a user could point anywhere (`/root/.ssh`).\n" +
			"- Writing another user's file needs root: when the connection's user is neither root nor the user, check fails with `run with sudo = true` before anything is written; so does a `~/.ssh` this user cannot read.\n" +
			"- Keys are validated strictly, before any host is contacted: each must parse as `[options] type base64 [comment]` with the declared type matching the blob; a line with a control character other than tab (NUL, escape, a carriage return inside it), invalid UTF-8 or more than 16 KiB is refused; only options sshd knows are accepted (a misspelt option makes sshd ignore the whole line, locking the key out silently), each with a double-quoted value where it takes one; the same key given twice is an error. One `key` item may hold several lines (the contents of a `.pub` file or of a whole authorized_keys file): blank lines and `#` comments in it are skipped, a trailing carriage return is dropped.\n" +
			"- Not supported: Ansible's `key` as a URL (keys come from the policy, so check shows what apply writes), `path` (another AuthorizedKeysFile: use `line` or `file`), `key_options` (write the options in the key) and `follow`.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `user` that is not a valid name; a `key` that is empty or does not parse as above, naming the item, the line within it and the start of the offending text (`key 2 \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3\": not a public key …`; `key 1, line 3 …` for an item of several lines); `exclusive` with `state = \"absent\"`. A value written as a template (`{{ ... }}`) is checked once rendered for each host.",
		toml: `[[roles.resources]]
type = "authorized_key"
user = "deploy"
key = [
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1",
  'from="10.0.0.0/8",no-agent-forwarding ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOf6PzU04yf4/KRiRMPo2JbvFkCM3Bz6QoVWedo0cmhm ci@build',
]

[[roles.resources]]
type = "authorized_key"
user = "root"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1"
exclusive = true

[[roles.resources]]
type = "authorized_key"
user = "deploy"
key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOf6PzU04yf4/KRiRMPo2JbvFkCM3Bz6QoVWedo0cmhm"
state = "absent"`,
		yaml: `- type: authorized_key
  user: deploy
  key:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1
    - from="10.0.0.0/8",no-agent-forwarding ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOf6PzU04yf4/KRiRMPo2JbvFkCM3Bz6QoVWedo0cmhm ci@build
- type: authorized_key
  user: root
  key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1
  exclusive: true
- type: authorized_key
  user: deploy
  key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOf6PzU04yf4/KRiRMPo2JbvFkCM3Bz6QoVWedo0cmhm
  state: absent`,
	}
}

// testPub returns the authorized_keys form ("ssh-ed25519 BASE64", no
// newline) of a fixed ed25519 key made from seed n.
func testPub(t testing.TB, n byte) string {
	t.Helper()
	seed := bytes.Repeat([]byte{n}, ed25519.SeedSize)
	pub, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(seed).Public())
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(ssh.MarshalAuthorizedKey(pub)), "\n")
}

func TestAuthorizedKeyValidate(t *testing.T) {
	k1, k2 := testPub(t, 1), testPub(t, 2)
	blob := strings.Fields(k1)[1]
	tests := []struct {
		name string
		spec AuthorizedKeySpec
		want string // "" valid, else a part of the error
	}{
		{"one key", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " alice@laptop"}}, ""},
		{"options and comment", AuthorizedKeySpec{User: "deploy", Key: []string{`from="10.0.0.1,10.0.0.2",no-pty,command="echo hi, there" ` + k1 + " ci"}}, ""},
		{"options in any case", AuthorizedKeySpec{User: "deploy", Key: []string{`No-Pty,FROM="::1" ` + k1}}, ""},
		{"several lines in one item", AuthorizedKeySpec{User: "deploy", Key: []string{"# team keys\n" + k1 + " a\r\n\n" + k2 + " b\n"}}, ""},
		{"exclusive", AuthorizedKeySpec{User: "deploy", Key: []string{k1}, Exclusive: true}, ""},
		{"templated key", AuthorizedKeySpec{User: "deploy", Key: []string{"{{ .key }}"}}, ""},
		{"no key", AuthorizedKeySpec{User: "deploy"}, "key is empty"},
		{"bad user", AuthorizedKeySpec{User: "a:b", Key: []string{k1}}, `user "a:b" is not a valid name`},
		{"garbage", AuthorizedKeySpec{User: "deploy", Key: []string{"hello world"}}, `key 1 "hello world": not a public key`},
		{"truncated blob", AuthorizedKeySpec{User: "deploy", Key: []string{k1, "ssh-ed25519 " + blob[:len(blob)-8]}}, "key 2 "},
		{"type and blob disagree", AuthorizedKeySpec{User: "deploy", Key: []string{"ssh-rsa " + blob}}, "not a public key"},
		{"private key pasted", AuthorizedKeySpec{User: "deploy", Key: []string{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"}}, "key 1, line 1 \"-----BEGIN OPENSSH PRIVATE KEY-----\": not a public key"},
		{"second line bad", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + "\nxyz"}}, `key 1, line 2 "xyz"`},
		{"only comments", AuthorizedKeySpec{User: "deploy", Key: []string{"# nothing\n\n"}}, "key 1 holds no public key"},
		{"NUL", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " a\x00b"}}, `control character "\x00"`},
		{"escape in comment", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " \x1b[31mred"}}, `control character "\x1b"`},
		{"invalid UTF-8", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " \xff"}}, "not valid UTF-8"},
		{"too long", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " " + strings.Repeat("x", maxKeyLine)}}, "bytes long"},
		{"unknown option", AuthorizedKeySpec{User: "deploy", Key: []string{"no-ptty " + k1}}, `unknown key option "no-ptty"`},
		{"option needs a value", AuthorizedKeySpec{User: "deploy", Key: []string{"from " + k1}}, "key option from needs a value"},
		{"option value missing", AuthorizedKeySpec{User: "deploy", Key: []string{"no-pty,from " + k1}}, `key option from needs a value`},
		{"option takes no value", AuthorizedKeySpec{User: "deploy", Key: []string{`no-pty="x" ` + k1}}, "key option no-pty takes no value"},
		{"unquoted value", AuthorizedKeySpec{User: "deploy", Key: []string{`from=10.0.0.1 ` + k1}}, "must be in double quotes"},
		{"unterminated quote", AuthorizedKeySpec{User: "deploy", Key: []string{`command="ls ` + k1}}, "not a public key"},
		{"same key twice", AuthorizedKeySpec{User: "deploy", Key: []string{k1 + " a", "no-pty " + k1 + " b"}}, "is given twice"},
		{"exclusive and absent", AuthorizedKeySpec{User: "deploy", Key: []string{k1}, State: "absent", Exclusive: true}, "use exclusive with state present"},
		{"bad state", AuthorizedKeySpec{User: "deploy", Key: []string{k1}, State: "gone"}, `state "gone": want one of present, absent`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("got %v; want valid", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			var se *SpecError
			if err != nil && (!errors.As(err, &se) || se.Problems[0].Key == "") {
				t.Errorf("got %T %v; want a *SpecError naming its key", err, err)
			}
		})
	}
}

func TestEditAuthorizedKeys(t *testing.T) {
	k1, k2, k3 := testPub(t, 1), testPub(t, 2), testPub(t, 3)
	want := func(t *testing.T, lines ...string) []authKey {
		t.Helper()
		keys, err := parseWantedKeys(lines)
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	tests := []struct {
		name      string
		before    string
		want      []string
		absent    bool
		exclusive bool
		after     string
		fields    int
	}{
		{"empty file", "", []string{k1 + " a"}, false, false, k1 + " a\n", 1},
		{"already there", "# mine\n" + k1 + " a\n", []string{k1 + " a"}, false, false, "# mine\n" + k1 + " a\n", 0},
		{"no newline at end", k2, []string{k1}, false, false, k2 + "\n" + k1 + "\n", 1},
		{"comment kept when none wanted", k1 + " old comment\n", []string{k1}, false, false, k1 + " old comment\n", 0},
		{"comment changed", k1 + " old\n", []string{k1 + " new"}, false, false, k1 + " new\n", 1},
		{"options changed in place", k2 + "\n" + k1 + " a\n" + k3 + "\n", []string{`from="10.1.1.1" ` + k1}, false, false, k2 + "\n" + `from="10.1.1.1" ` + k1 + " a\n" + k3 + "\n", 1},
		{"options removed", `no-pty ` + k1 + "\n", []string{k1}, false, false, k1 + "\n", 1},
		{"duplicate removed", `from="10.1.1.1" ` + k1 + "\n# x\n" + k1 + "\n", []string{`from="10.1.1.1" ` + k1}, false, false, `from="10.1.1.1" ` + k1 + "\n# x\n", 1},
		{"order of new keys", k3 + "\n", []string{k2, k1}, false, false, k3 + "\n" + k2 + "\n" + k1 + "\n", 2},
		{"junk kept", "garbage line\n\n" + k2 + "\n", []string{k1}, false, false, "garbage line\n\n" + k2 + "\n" + k1 + "\n", 1},
		{"absent removes every copy", "no-pty " + k1 + "\n" + k2 + "\n" + k1 + " x\n", []string{k1}, true, false, k2 + "\n", 2},
		{"absent of a missing key", k2 + "\n", []string{k1}, true, false, k2 + "\n", 0},
		{"absent leaves empty", k1 + "\n", []string{k1}, true, false, "", 1},
		{"exclusive", "# keep\n" + k2 + "\ngarbage\n\n" + k1 + "\n", []string{k1}, false, true, "# keep\n\n" + k1 + "\n", 2},
		{"exclusive already", "# keep\n" + k1 + "\n", []string{k1}, false, true, "# keep\n" + k1 + "\n", 0},
		{"CRLF file", k2 + "\r\n" + k1 + "\r\n", []string{k1}, false, false, k2 + "\r\n" + k1 + "\r\n", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, fields := editAuthorizedKeys([]byte(tc.before), want(t, tc.want...), tc.absent, tc.exclusive)
			if string(got) != tc.after {
				t.Errorf("got\n%s\nwant\n%s", got, tc.after)
			}
			if len(fields) != tc.fields {
				t.Errorf("got %d fields %v; want %d", len(fields), fields, tc.fields)
			}
			again, fields := editAuthorizedKeys(got, want(t, tc.want...), tc.absent, tc.exclusive)
			if !bytes.Equal(again, got) || len(fields) != 0 {
				t.Errorf("second edit: got %q, fields %v; want no change", again, fields)
			}
		})
	}
}

// akProbe builds a probe output for carol (uid 1001), home /home/carol.
func akProbe(runner, dir, dstat, file, fstat string, content *string) connection.Result {
	var b strings.Builder
	fmt.Fprintf(&b, "passwd=carol:x:1001:1001::/home/carol:/bin/sh\nrunner=%s\nhome=directory\ndir=%s\n", runner, dir)
	if dstat != "" {
		fmt.Fprintf(&b, "dstat=%s\n", dstat)
	}
	if dir != "absent" {
		fmt.Fprintf(&b, "file=%s\n", file)
	}
	if fstat != "" {
		fmt.Fprintf(&b, "fstat=%s\n", fstat)
	}
	if content != nil {
		fmt.Fprintf(&b, "blob=%d\n%s", len(*content), *content)
	}
	return connection.Result{Stdout: []byte(b.String())}
}

// TestAuthorizedKeyCheck decides from canned probe outputs, and checks the
// apply script and the stdin it writes with.
func TestAuthorizedKeyCheck(t *testing.T) {
	k1, k2 := testPub(t, 1), testPub(t, 2)
	have := k2 + " other\n"
	good := "700 1001 1001 carol carol 4096"
	tests := []struct {
		name   string
		spec   AuthorizedKeySpec
		probe  connection.Result
		action Action
		fields []string // sorted field names that must be there
		err    string
		apply  []string // parts of the apply script
		stdin  string
	}{
		{name: "fresh", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1 + " a"}},
			probe: akProbe("0", "absent", "", "", "", nil), action: Create,
			apply: []string{"mkdir -m 700 .ssh", "chown 1001:1001 .\nchmod 700 .", `chmod 0600 "$t"`, "mv -f -- \"$t\" authorized_keys"}, stdin: k1 + " a\n"},
		{name: "add to existing", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: akProbe("1001", "directory", good, "file", "600 1001 1001 carol carol 1", &have), action: Update, stdin: have + k1 + "\n"},
		{name: "nothing to do", spec: AuthorizedKeySpec{User: "carol", Key: []string{k2}},
			probe: akProbe("0", "directory", good, "file", "600 1001 1001 carol carol 1", &have), action: None},
		{name: "mode and owner drift", spec: AuthorizedKeySpec{User: "carol", Key: []string{k2}},
			probe: akProbe("0", "directory", "755 0 0 root root 4096", "file", "644 1001 1001 carol carol 1", &have), action: Update,
			fields: []string{"/home/carol/.ssh mode", "/home/carol/.ssh owner", "/home/carol/.ssh/authorized_keys mode"}, stdin: have},
		{name: "absent keeps mode and owner", spec: AuthorizedKeySpec{User: "carol", Key: []string{k2}, State: "absent"},
			probe: akProbe("0", "directory", "755 0 0 root root 4096", "file", "644 0 0 root root 1", &have), action: Update,
			apply: []string{`chown 0:0 "$t"`, `chmod 0644 "$t"`}, stdin: ""},
		{name: "absent without a directory", spec: AuthorizedKeySpec{User: "carol", Key: []string{k2}, State: "absent"},
			probe: akProbe("1005", "absent", "", "", "", nil), action: None},
		{name: "another user without sudo", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: akProbe("1005", "directory", "755 1001 1001 carol carol 4096", "file", "644 1001 1001 carol carol 1", &have), err: "needs root or carol itself (this connection runs as uid 1005): run with sudo = true"},
		{name: "unsearchable .ssh", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: connection.Result{Stdout: []byte("passwd=carol:x:1001:1001::/home/carol:/bin/sh\nrunner=1005\nhome=directory\ndir=directory\ndirsearch=0\ndstat=" + good + "\nfile=absent\n")}, err: "cannot look into /home/carol/.ssh as this connection's user: run with sudo = true"},
		{name: "unreadable file", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: connection.Result{Stdout: []byte("passwd=carol:x:1001:1001::/home/carol:/bin/sh\nrunner=1005\nhome=directory\ndir=directory\ndstat=755 1001 1001 carol carol 1\nfile=file\nfstat=600 1001 1001 carol carol 1\nreadable=0\n")}, err: "cannot read /home/carol/.ssh/authorized_keys"},
		{name: "missing user", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: connection.Result{Stdout: []byte("passwd=\nrunner=0\n")}, err: "user carol does not exist on the host"},
		{name: "missing home", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: connection.Result{Stdout: []byte("passwd=carol:x:1001:1001::/home/carol:/bin/sh\nrunner=0\nhome=absent\n")}, err: "the home directory /home/carol of user carol does not exist"},
		{name: "symlinked .ssh", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: akProbe("0", "link", "777 1001 1001 carol carol 9", "absent", "", nil), err: "/home/carol/.ssh is a symlink"},
		{name: "symlinked file", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: akProbe("0", "directory", good, "link", "777 1001 1001 carol carol 9", nil), err: "authorized_keys is a symlink"},
		{name: "directory as file", spec: AuthorizedKeySpec{User: "carol", Key: []string{k1}},
			probe: akProbe("0", "directory", good, "directory", "700 1001 1001 carol carol 9", nil), err: "exists and is not a regular file"},
		{name: "bad key", spec: AuthorizedKeySpec{User: "carol", Key: []string{"ssh-ed25519 AAAA"}},
			probe: akProbe("0", "absent", "", "", "", nil), err: "authorized_key for carol: key 1 \"ssh-ed25519 AAAA\": not a public key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			p := mustProvider("authorized_key")
			ch, err := p.Check(req, tc.probe)
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
				t.Fatalf("action: got %s %v; want %s", ch.Action, ch.Fields, tc.action)
			}
			names := strings.Join(sortedFieldNames(ch), "|")
			for _, f := range tc.fields {
				if !strings.Contains(names, f) {
					t.Errorf("fields: got %v; want %q among them", names, f)
				}
			}
			if !ch.Changed() {
				return
			}
			// Apply reads the file again (the probe), then writes.
			f := (&fakeHost{}).on("getent passwd", string(tc.probe.Stdout), 0)
			if _, err := p.Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if len(f.scripts) != 2 {
				t.Fatalf("apply ran %d scripts; want 2 (read again, write)", len(f.scripts))
			}
			for _, a := range tc.apply {
				if !strings.Contains(f.scripts[1], a) {
					t.Errorf("apply script:\n%s\nwant it to contain %q", f.scripts[1], a)
				}
			}
			if f.stdins[1] != tc.stdin {
				t.Errorf("stdin: got %q; want %q", f.stdins[1], tc.stdin)
			}
			// A file changed since the check is not written.
			for _, now := range []string{"", k1 + " added meanwhile\n"} {
				out := akProbe("0", "directory", good, "file", "600 1001 1001 carol carol 1", &now)
				f := (&fakeHost{}).on("getent passwd", string(out.Stdout), 0)
				if _, err := p.Apply(testCtx(t), f, req, ch); err == nil || !strings.Contains(err.Error(), "changed since the check: nothing written; run again") || len(f.scripts) != 1 {
					t.Errorf("apply after the file became %q: got %v after %d scripts; want a refusal after reading", now, err, len(f.scripts))
				}
			}
		})
	}
}

// FuzzAuthorizedKeys: any file contents edited with any of a few key sets
// never panic, a second edit changes nothing, the wanted keys end up
// present exactly once (or absent), and without exclusive every line that
// is not one of the keys is kept, in order.
func FuzzAuthorizedKeys(f *testing.F) {
	k1, k2, k3 := testPub(f, 1), testPub(f, 2), testPub(f, 3)
	f.Add([]byte(k1+"\n# c\n"+k2+" x\n"), uint8(0), false, false)
	f.Add([]byte("garbage\n\n"+`from="a,b" `+k1+" c\n"), uint8(1), true, false)
	f.Add([]byte(k3+"\r\n"+k1), uint8(2), false, true)
	sets := [][]string{{k1}, {`no-pty,from="10.0.0.1" ` + k1 + " c", k2}, {k2 + " d", "restrict " + k3}}
	f.Fuzz(func(t *testing.T, content []byte, set uint8, absent, exclusive bool) {
		if absent {
			exclusive = false
		}
		want, err := parseWantedKeys(sets[int(set)%len(sets)])
		if err != nil {
			t.Fatal(err)
		}
		once, _ := editAuthorizedKeys(content, want, absent, exclusive)
		twice, fields := editAuthorizedKeys(once, want, absent, exclusive)
		if !bytes.Equal(once, twice) || len(fields) != 0 {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", content, once, twice, fields)
		}
		count := map[string]int{}
		var kept []string
		for _, l := range parseAuthorizedKeys(once) {
			if l.key != nil {
				count[l.key.id]++
			}
		}
		for _, k := range want {
			if n := count[k.id]; (absent && n != 0) || (!absent && n != 1) {
				t.Fatalf("key %s is in %q %d times", k.label(), once, n)
			}
		}
		if exclusive {
			return
		}
		isWanted := func(l akLine) bool {
			for _, k := range want {
				if l.key != nil && l.key.id == k.id {
					return true
				}
			}
			return false
		}
		for _, l := range parseAuthorizedKeys(content) {
			if !isWanted(l) {
				kept = append(kept, l.text)
			}
		}
		var gotKept []string
		for _, l := range parseAuthorizedKeys(once) {
			if !isWanted(l) {
				gotKept = append(gotKept, l.text)
			}
		}
		if strings.Join(kept, "\n") != strings.Join(gotKept, "\n") {
			t.Fatalf("other lines changed: %q -> %q", kept, gotKept)
		}
	})
}

// FuzzParseKeyLine: any line either is refused or gives a key whose line
// parses back to the same key, options and comment, with no newline.
func FuzzParseKeyLine(f *testing.F) {
	k1 := testPub(f, 1)
	f.Add(k1 + " a b")
	f.Add(`from="x,y",no-pty ` + k1)
	f.Add(`command="a\"b" ` + k1)
	f.Add("ssh-rsa AAAA")
	f.Fuzz(func(t *testing.T, line string) {
		k, err := parseKeyLine(line)
		if err != nil {
			return
		}
		out := k.line()
		if strings.ContainsAny(out, "\n\r\x00") {
			t.Fatalf("%q renders as %q", line, out)
		}
		k2, err := parseKeyLine(out)
		if err != nil {
			t.Fatalf("%q renders as %q, which does not parse: %v", line, out, err)
		}
		if k2.id != k.id || strings.Join(k2.options, ",") != strings.Join(k.options, ",") || k2.comment != k.comment {
			t.Fatalf("%q -> %q -> %+v; want %+v", line, out, k2, k)
		}
	})
}

// TestAuthorizedKeyLab runs the provider against a real lab host: as
// root (nsenter) for a fresh user, drift and odd files; then over SSH as
// ops with sudo and a fish login shell, and as app without sudo.
func TestAuthorizedKeyLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 32, Hosts: []lab.HostSpec{{Name: "k1"}}})
	h := &labHost{pid: l.Host("k1").PID}
	h.exec(t, "useradd -m -s /bin/sh carol && useradd -M -d /home/nohome nohome")
	k1, k2, k3 := testPub(t, 1), testPub(t, 2), testPub(t, 3)
	const file = "/home/carol/.ssh/authorized_keys"
	snap := h.snap(t, "stat -c '%n %a %U %y' /home/carol; ls -lA --time-style=full-iso /home/carol /home/carol/.ssh 2>&1; cat "+file+" 2>&1; true")
	p := mustProvider("authorized_key")
	req := func(s AuthorizedKeySpec) *Request { return newReq(&s, "", nil, nil) }
	attrs := func() string {
		return h.exec(t, "stat -c '%a %U %G' /home/carol/.ssh "+file)
	}

	t.Run("create", func(t *testing.T) {
		ch := converge(t, h, p, req(AuthorizedKeySpec{User: "carol", Key: []string{k1 + " alice@laptop", `from="10.0.0.0/8",no-pty ` + k2 + " ci"}}), snap, Create)
		if !strings.Contains(ch.Diff, "+"+k1+" alice@laptop") {
			t.Errorf("diff: got %q; want the new line", ch.Diff)
		}
		if got, want := attrs(), "700 carol carol\n600 carol carol\n"; got != want {
			t.Errorf("attributes: got %q; want %q", got, want)
		}
		if got, want := h.exec(t, "cat "+file), k1+" alice@laptop\n"+`from="10.0.0.0/8",no-pty `+k2+" ci\n"; got != want {
			t.Errorf("file: got %q; want %q", got, want)
		}
		if left := h.exec(t, "ls -A /home/carol/.ssh"); left != "authorized_keys\n" {
			t.Errorf("files left in .ssh: %q", left)
		}
	})

	t.Run("other lines kept", func(t *testing.T) {
		h.exec(t, "printf '# by hand\\n%s hand\\nnot a key\\n' '"+k3+"' >> "+file)
		before := h.exec(t, "cat "+file)
		converge(t, h, p, req(AuthorizedKeySpec{User: "carol", Key: []string{k1}}), snap, None)
		if got := h.exec(t, "cat "+file); got != before {
			t.Errorf("file changed: got %q; want %q", got, before)
		}
	})

	t.Run("drift repaired", func(t *testing.T) {
		h.exec(t, "chmod 755 /home/carol/.ssh && chmod 644 "+file+" && chown root "+file+" && sed -i 's/^from=\"10.0.0.0\\/8\",no-pty /no-pty /' "+file+" && printf '%s dup\\n' '"+k2+"' >> "+file)
		ch := converge(t, h, p, req(AuthorizedKeySpec{User: "carol", Key: []string{`from="10.0.0.0/8",no-pty ` + k2}}), snap, Update)
		names := strings.Join(sortedFieldNames(ch), "|")
		for _, w := range []string{"/home/carol/.ssh mode", file + " mode", file + " owner", "key ssh-ed25519 "} {
			if !strings.Contains(names, w) {
				t.Errorf("fields: got %s; want %q", names, w)
			}
		}
		if got, want := attrs(), "700 carol carol\n600 carol carol\n"; got != want {
			t.Errorf("attributes: got %q; want %q", got, want)
		}
		want := k1 + " alice@laptop\n" + `from="10.0.0.0/8",no-pty ` + k2 + " ci\n# by hand\n" + k3 + " hand\nnot a key\n"
		if got := h.exec(t, "cat "+file); got != want {
			t.Errorf("file: got %q; want %q", got, want)
		}
	})

	t.Run("exclusive", func(t *testing.T) {
		converge(t, h, p, req(AuthorizedKeySpec{User: "carol", Key: []string{k1 + " alice@laptop"}, Exclusive: true}), snap, Update)
		if got, want := h.exec(t, "cat "+file), k1+" alice@laptop\n# by hand\n"; got != want {
			t.Errorf("file: got %q; want %q", got, want)
		}
	})

	t.Run("absent", func(t *testing.T) {
		h.exec(t, "printf '%s\\n' '"+k3+"' >> "+file+" && chmod 640 "+file)
		converge(t, h, p, req(AuthorizedKeySpec{User: "carol", Key: []string{k1}, State: "absent"}), snap, Update)
		if got, want := h.exec(t, "cat "+file), "# by hand\n"+k3+"\n"; got != want {
			t.Errorf("file: got %q; want %q", got, want)
		}
		if got := h.exec(t, "stat -c '%a %U' "+file); got != "640 carol\n" {
			t.Errorf("absent changed the file's attributes: got %q; want 640 carol", got)
		}
	})

	t.Run("changed between check and apply", func(t *testing.T) {
		ctx := testCtx(t)
		r := req(AuthorizedKeySpec{User: "carol", Key: []string{k2}})
		ch, err := check(t, ctx, h, p, r)
		if err != nil || ch.Action != Update {
			t.Fatalf("check: got %v, %v; want update", ch, err)
		}
		h.exec(t, "echo '# added meanwhile' >> "+file)
		before := snap()
		if _, err := p.Apply(ctx, h, r, ch); err == nil || !strings.Contains(err.Error(), file+" changed since the check: nothing written; run again") {
			t.Errorf("apply: got %v; want a refusal", err)
		}
		if snap() != before {
			t.Error("apply wrote a file that changed since the check")
		}
		converge(t, h, p, r, snap, Update)
		if got, want := h.exec(t, "cat "+file), "# by hand\n"+k3+"\n# added meanwhile\n"+k2+"\n"; got != want {
			t.Errorf("file: got %q; want %q", got, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		ctx := testCtx(t)
		for _, tc := range []struct {
			name, setup, user, want string
		}{
			{"missing user", "", "nosuchuser", "user nosuchuser does not exist on the host"},
			{"missing home", "", "nohome", "the home directory /home/nohome of user nohome does not exist"},
			{"symlinked authorized_keys", "mv " + file + " /home/carol/.ssh/real && ln -s real " + file, "carol", file + " is a symlink"},
			{"symlinked .ssh", "rm -rf /home/carol/.ssh && mkdir -p /root/.ssh && ln -s /root/.ssh /home/carol/.ssh", "carol", "/home/carol/.ssh is a symlink"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if tc.setup != "" {
					h.exec(t, tc.setup)
				}
				rootKeys := h.exec(t, "ls -la --time-style=full-iso /root/.ssh; cat /root/.ssh/authorized_keys 2>/dev/null; true")
				before := snap()
				_, err := check(t, ctx, h, p, req(AuthorizedKeySpec{User: tc.user, Key: []string{k1}}))
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v; want an error containing %q", err, tc.want)
				}
				if snap() != before || h.exec(t, "ls -la --time-style=full-iso /root/.ssh; cat /root/.ssh/authorized_keys 2>/dev/null; true") != rootKeys {
					t.Error("check changed the host")
				}
			})
		}
		// Apply refuses a link swapped in after check, and writes nothing
		// through it.
		h.exec(t, "rm -f /home/carol/.ssh && mkdir -m 700 /home/carol/.ssh && chown carol: /home/carol/.ssh")
		r := req(AuthorizedKeySpec{User: "carol", Key: []string{k1}})
		ch, err := check(t, ctx, h, p, r)
		if err != nil || ch.Action != Create {
			t.Fatalf("check: got %v, %v; want create", ch, err)
		}
		rootKeys := h.exec(t, "ls -la --time-style=full-iso /root/.ssh")
		// The link appears after apply read the file again, before it writes.
		swap := &hookHost{Host: h, after: func() { h.exec(t, "rmdir /home/carol/.ssh && ln -s /root/.ssh /home/carol/.ssh") }}
		if _, err := p.Apply(ctx, swap, r, ch); err == nil || !strings.Contains(err.Error(), "/home/carol/.ssh is a symlink: refusing to follow it") {
			t.Errorf("apply through a swapped-in link: got %v; want a refusal", err)
		}
		if got := h.exec(t, "ls -la --time-style=full-iso /root/.ssh"); got != rootKeys {
			t.Errorf("apply wrote through the link: /root/.ssh was\n%s\nnow\n%s", rootKeys, got)
		}
		h.exec(t, "rm -f /home/carol/.ssh")
		// A bad key is an error before the probe.
		if _, err := p.Probe(req(AuthorizedKeySpec{User: "carol", Key: []string{"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"}})); err == nil || !strings.Contains(err.Error(), "key 1 \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI\": not a public key") {
			t.Errorf("bad key: got %v", err)
		}
	})

	t.Run("over ssh", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
		defer cancel()
		h.exec(t, "chsh -s /usr/bin/fish ops && useradd -m dave")
		pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
		t.Cleanup(func() { pool.Close() })
		lh := l.Host("k1")
		connect := func(user string, sudo bool) *connection.SSHHost {
			c, err := pool.Host(ctx, connection.Target{Name: "k1-" + user, Address: lh.Addr, Port: lh.Port, User: user, Sudo: sudo,
				PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
			if err != nil {
				t.Fatalf("connect as %s: %v", user, err)
			}
			return c
		}
		ops, app := connect("ops", true), connect("app", false)
		daveSnap := h.snap(t, "stat -c '%n %a %U %y' /home/dave; ls -lA --time-style=full-iso /home/dave /home/dave/.ssh 2>&1; cat /home/dave/.ssh/authorized_keys 2>&1; true")
		dave := req(AuthorizedKeySpec{User: "dave", Key: []string{k1 + " alice@laptop"}})
		converge(t, ops, p, dave, daveSnap, Create)
		if got := h.exec(t, "stat -c '%a %U %G' /home/dave/.ssh /home/dave/.ssh/authorized_keys"); got != "700 dave dave\n600 dave dave\n" {
			t.Errorf("attributes: got %q", got)
		}

		// app has no sudo: dave's keys are out of reach, and check says so.
		if _, err := check(t, ctx, app, p, req(AuthorizedKeySpec{User: "dave", Key: []string{k2}})); err == nil || !strings.Contains(err.Error(), "run with sudo = true") {
			t.Errorf("app for dave: got %v; want an error asking for sudo", err)
		}
		h.exec(t, "chmod 755 /home/dave/.ssh")
		if _, err := check(t, ctx, app, p, req(AuthorizedKeySpec{User: "dave", Key: []string{k2}})); err == nil || !strings.Contains(err.Error(), "cannot read /home/dave/.ssh/authorized_keys as this connection's user: run with sudo = true") {
			t.Errorf("app for dave, .ssh readable: got %v; want an error asking for sudo", err)
		}
		h.exec(t, "chmod 644 /home/dave/.ssh/authorized_keys")
		if _, err := check(t, ctx, app, p, req(AuthorizedKeySpec{User: "dave", Key: []string{k2}})); err == nil || !strings.Contains(err.Error(), "needs root or dave itself") {
			t.Errorf("app for dave, file readable: got %v; want an error asking for sudo", err)
		}
		// The drift is repaired over SSH with sudo.
		converge(t, ops, p, dave, daveSnap, Update)
		// app manages its own keys without sudo, keeping the lab's key (its
		// own login) and logging in again afterwards.
		appSnap := h.snap(t, "ls -la --time-style=full-iso /home/app/.ssh; cat /home/app/.ssh/authorized_keys")
		labKeys := h.exec(t, "cat /home/app/.ssh/authorized_keys")
		converge(t, app, p, req(AuthorizedKeySpec{User: "app", Key: []string{k3 + " extra"}}), appSnap, Update)
		if got := h.exec(t, "cat /home/app/.ssh/authorized_keys"); got != labKeys+k3+" extra\n" {
			t.Errorf("app's file: got %q; want the lab's lines and the new key", got)
		}
		if got := h.exec(t, "stat -c '%a %U' /home/app/.ssh /home/app/.ssh/authorized_keys"); got != "700 app\n600 app\n" {
			t.Errorf("app's attributes: got %q", got)
		}
		pool2 := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
		t.Cleanup(func() { pool2.Close() })
		c2, err := pool2.Host(ctx, connection.Target{Name: "k1-app2", Address: lh.Addr, Port: lh.Port, User: "app",
			PrivateKey: l.ClientKey, CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 60 * time.Second})
		if err != nil {
			t.Fatalf("log in as app after the change: %v", err)
		}
		if res, err := c2.Run(ctx, "id -un", nil); err != nil || string(res.Stdout) != "app\n" {
			t.Errorf("app after the change: got %q, %v", res.Stdout, err)
		}

		// A no-op check over SSH: five resources in one probe batch, timed
		// beside five user resources (the same passwd lookup, fewer files).
		timeBatch := func(p Provider, spec func() any) time.Duration {
			t.Helper()
			var b Batch
			var reqs []*Request
			for i := range 5 {
				r := newReq(spec(), "", nil, nil)
				script, err := p.Probe(r)
				if err != nil {
					t.Fatal(err)
				}
				b.Add(p, r, script+"# "+fmt.Sprint(i)+"\n")
				reqs = append(reqs, r)
			}
			const rounds = 10
			start := time.Now()
			for range rounds {
				sent, err := ops.RunProbes(ctx, b.Probes())
				if err != nil {
					t.Fatal(err)
				}
				res, err := b.Results(sent)
				if err != nil {
					t.Fatal(err)
				}
				for i, r := range reqs {
					ch, err := p.Check(r, res[i])
					if err != nil || ch.Changed() {
						t.Fatalf("no-op check %d: got %v, %v", i, ch, err)
					}
				}
			}
			return time.Since(start) / rounds
		}
		ak := timeBatch(p, func() any { return &AuthorizedKeySpec{User: "dave", Key: []string{k1 + " alice@laptop"}} })
		us := timeBatch(mustProvider("user"), func() any { return &UserSpec{Name: "dave"} })
		t.Logf("no-op check of 5 resources in one probe batch over SSH with sudo: authorized_key %v, user %v per batch", ak, us)
	})
}

// hookHost is a Host that calls after once, after its first Run.
type hookHost struct {
	Host
	after func()
	ran   bool
}

func (h *hookHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	res, err := h.Host.Run(ctx, script, stdin)
	if !h.ran {
		h.ran = true
		h.after()
	}
	return res, err
}
