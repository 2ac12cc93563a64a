package sshconfig

import (
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// testEnvVar is the variable the corpus uses in ${VAR}; the test sets it
// for ssh and for Query.Getenv.
const testEnvVar = "OPSMOP_SSHCONFIG_TEST"

// corpusCase is one testdata/diff/*.conf file made ready to read.
type corpusCase struct {
	name     string
	path     string     // the file written into the temp dir
	queries  [][]string // ssh arguments before the host, then the host
	sshFails bool
}

// needSSH returns the ssh binary or skips (fails under CI=true).
func needSSH(t *testing.T) string {
	t.Helper()
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("ssh (OpenSSH client) is not installed; the differential test needs it under CI")
		}
		t.Skip("ssh (OpenSSH client) is not installed: skipping the differential test against ssh -G")
	}
	return ssh
}

// writeCorpus copies testdata/diff into dir, replacing @DIR@ with dir and
// turning "-crlf" files into CRLF files.
func writeCorpus(t *testing.T, dir string) []corpusCase {
	t.Helper()
	var cases []corpusCase
	err := filepath.WalkDir("testdata/diff", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata/diff", p)
		text := strings.ReplaceAll(string(data), "@DIR@", dir)
		if strings.Contains(rel, "-crlf") {
			text = strings.ReplaceAll(text, "\n", "\r\n")
		}
		out := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			return err
		}
		if filepath.Dir(rel) == "." {
			cases = append(cases, parseCorpusHeader(rel, out, text))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

// parseCorpusHeader reads the "# query:" and "# ssh-fails" comments.
func parseCorpusHeader(name, path, text string) corpusCase {
	c := corpusCase{name: name, path: path}
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		if q, ok := strings.CutPrefix(l, "# query:"); ok {
			c.queries = append(c.queries, strings.Fields(q))
		}
		if l == "# ssh-fails" {
			c.sshFails = true
		}
	}
	return c
}

// testIdentity is the local side of every query.
func testIdentity(t *testing.T) Query {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return Query{LocalUser: u.Username, Home: u.HomeDir, UID: u.Uid, LocalHost: host}
}

// queryFor builds the Query for ssh arguments like "-l u -p 22 host".
func queryFor(t *testing.T, base Query, args []string, envDir string) Query {
	t.Helper()
	q := base
	q.Getenv = func(k string) string {
		if k == testEnvVar {
			return envDir
		}
		return os.Getenv(k)
	}
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "-l":
			i++
			q.User = args[i]
		case "-p":
			i++
			q.Port, _ = strconv.Atoi(args[i])
		default:
			q.Host = args[i]
		}
	}
	return q
}

// sshG runs ssh -G and returns its settings (key → values in order).
func sshG(t *testing.T, ssh, conf string, args []string, envDir string) (map[string][]string, error) {
	t.Helper()
	cmd := exec.Command(ssh, append([]string{"-G", "-F", conf}, args...)...)
	cmd.Env = append(os.Environ(), testEnvVar+"="+envDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, &exec.ExitError{Stderr: stderr.Bytes()}
	}
	m := map[string][]string{}
	for _, l := range strings.Split(string(out), "\n") {
		k, v, ok := strings.Cut(l, " ")
		if ok {
			m[k] = append(m[k], v)
		}
	}
	return m, nil
}

func TestDifferentialSSHG(t *testing.T) {
	ssh := needSSH(t)
	dir := t.TempDir()
	cases := writeCorpus(t, dir)
	if len(cases) < 15 {
		t.Fatalf("got %d corpus files; want at least 15", len(cases))
	}
	base := testIdentity(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, loadErr := Load([]Source{{Path: c.path, Required: true}}, base.Home)
			for _, args := range c.queries {
				t.Run(strings.Join(args, "_"), func(t *testing.T) {
					q := queryFor(t, base, args, dir)
					want, sshErr := sshG(t, ssh, c.path, args, dir)
					var res *Result
					err := loadErr
					if err == nil {
						res, err = cfg.Lookup(q)
					}
					checkBothFail(t, c.sshFails, sshErr, err)
					if err == nil && sshErr == nil {
						compareWithSSH(t, q, res, want)
					}
				})
			}
		})
	}
}

// checkBothFail checks that ssh and Load/Lookup agree on failing.
func checkBothFail(t *testing.T, wantFail bool, sshErr, err error) {
	t.Helper()
	if wantFail && sshErr == nil {
		t.Fatalf("ssh -G succeeded; the corpus file says it fails")
	}
	if (sshErr != nil) != (err != nil) {
		t.Fatalf("got error %v; want failure=%v like ssh -G (%v)", err, sshErr != nil, sshErr)
	}
	if err != nil {
		t.Logf("both fail: ours: %v", err)
		if _, ok := err.(*Error); !ok {
			t.Fatalf("got error of type %T; want *Error", err)
		}
	}
}

// yesNo renders a bool setting as ssh -G does, with def when unset.
func yesNo(s Setting[bool], def bool) string {
	v := def
	if s.Set {
		v = s.Value
	}
	if v {
		return "yes"
	}
	return "no"
}

// normalizeSSH maps ssh -G's spellings onto ours.
func normalizeSSH(key, v string) string {
	switch key {
	case "stricthostkeychecking", "pubkeyauthentication", "identitiesonly", "hashknownhosts",
		"batchmode", "passwordauthentication", "kbdinteractiveauthentication":
		switch v {
		case "true", "unbound", "host-bound":
			return "yes"
		case "false":
			return "no"
		}
	}
	return v
}

// debianSSH reports whether the installed ssh carries Debian's patches
// (ssh -V prints "Debian").
func debianSSH() bool {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	return bytes.Contains(out, []byte("Debian"))
}

// scalarsAsSSH renders the one-line settings of res with ssh's defaults for
// unset values.
func scalarsAsSSH(q Query, r *Result) map[string]string {
	host := strings.ToLower(q.Host)
	if r.HostName.Set {
		host = r.HostName.Value
	}
	user, port := q.LocalUser, "22"
	if r.User.Set {
		user = r.User.Value
	}
	if r.Port.Set {
		port = strconv.Itoa(r.Port.Value)
	}
	strict, af := "ask", "any"
	if r.StrictHostKeyChecking.Set {
		strict = r.StrictHostKeyChecking.Value
	}
	if r.AddressFamily.Set {
		af = r.AddressFamily.Value
	}
	ct, sai, sacm := "none", "0", "3"
	if r.ConnectTimeout.Set {
		ct = strconv.Itoa(int(r.ConnectTimeout.Value.Seconds()))
	}
	if r.ServerAliveInterval.Set {
		sai = strconv.Itoa(int(r.ServerAliveInterval.Value.Seconds()))
	} else if r.BatchMode.Set && r.BatchMode.Value && debianSSH() {
		sai = "300" // Debian's patched client defaults to 300 in batch mode
	}
	if r.ServerAliveCountMax.Set {
		sacm = strconv.Itoa(r.ServerAliveCountMax.Value)
	}
	return map[string]string{
		"hostname": host, "user": user, "port": port,
		"stricthostkeychecking": strict, "addressfamily": af,
		"connecttimeout": ct, "serveraliveinterval": sai, "serveralivecountmax": sacm,
		"identitiesonly":               yesNo(r.IdentitiesOnly, false),
		"hashknownhosts":               yesNo(r.HashKnownHosts, false),
		"batchmode":                    yesNo(r.BatchMode, false),
		"passwordauthentication":       yesNo(r.PasswordAuthentication, true),
		"pubkeyauthentication":         yesNo(r.PubkeyAuthentication, true),
		"kbdinteractiveauthentication": yesNo(r.KbdInteractiveAuthentication, true),
		"userknownhostsfile":           knownHostsAsSSH(r.UserKnownHostsFiles, q.Home+"/.ssh/known_hosts "+q.Home+"/.ssh/known_hosts2"),
	}
}

// knownHostsAsSSH renders a known-hosts list as ssh -G does.
func knownHostsAsSSH(s Setting[[]string], def string) string {
	if !s.Set {
		return def
	}
	if len(s.Value) == 0 {
		return "none"
	}
	return strings.Join(s.Value, " ")
}

// compareWithSSH compares every setting of res with ssh -G's output.
func compareWithSSH(t *testing.T, q Query, r *Result, want map[string][]string) {
	t.Helper()
	for k, v := range scalarsAsSSH(q, r) {
		if got := normalizeSSH(k, first1(want[k])); got != v {
			t.Errorf("%s: got %q; want %q (ssh -G)", k, v, got)
		}
	}
	compareFiles(t, q, r, "identityfile", r.IdentityFiles, want["identityfile"])
	compareFiles(t, q, r, "certificatefile", r.CertificateFiles, want["certificatefile"])
	compareAgent(t, r, want["identityagent"])
	compareJump(t, r, want["proxyjump"])
	compareGlobal(t, q, r, first1(want["globalknownhostsfile"]))
}

func first1(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

// compareFiles compares IdentityFile/CertificateFile lists. ssh -G (9.2)
// prints them before expanding, so ssh's values are expanded here with the
// package's expander; the list, its order and de-duplication are what is
// compared (tokens are checked through IdentityAgent and
// UserKnownHostsFile, which ssh -G prints expanded).
func compareFiles(t *testing.T, q Query, r *Result, key string, got []Setting[string], sshVals []string) {
	t.Helper()
	if key == "identityfile" && len(got) == 0 {
		if first1(sshVals) != "~/.ssh/id_rsa" {
			t.Errorf("identityfile: got none; want ssh's defaults, ssh -G says %q", sshVals)
		}
		return
	}
	var want []string
	for _, v := range sshVals {
		want = append(want, expandForTest(t, q, r, v))
	}
	var gotVals []string
	for _, s := range got {
		gotVals = append(gotVals, s.Value)
	}
	if !slices.Equal(gotVals, want) {
		t.Errorf("%s: got %q; want %q (ssh -G)", key, gotVals, want)
	}
}

// expandForTest expands a path as Lookup does for r.
func expandForTest(t *testing.T, q Query, r *Result, v string) string {
	t.Helper()
	host := strings.ToLower(q.Host)
	if r.HostName.Set {
		host = r.HostName.Value
	}
	user, port := q.LocalUser, "22"
	if r.User.Set {
		user = r.User.Value
	}
	if r.Port.Set {
		port = strconv.Itoa(r.Port.Value)
	}
	jump := ""
	if n := len(r.ProxyJump.Value); n > 0 {
		jump = r.ProxyJump.Value[n-1].Host
	}
	st := &state{q: q, getenv: lookupEnv(q.Getenv)}
	p, err := st.expandPath(v, clientTokens(q, host, port, user, jump), Pos{}, "test")
	if err != nil {
		t.Fatalf("expanding ssh's %q: %v", v, err)
	}
	return p
}

func compareAgent(t *testing.T, r *Result, sshVals []string) {
	t.Helper()
	want := first1(sshVals)
	got := ""
	if r.IdentityAgent.Set {
		got = r.IdentityAgent.Value
	}
	if got != want {
		t.Errorf("identityagent: got %q; want %q (ssh -G)", got, want)
	}
}

func compareJump(t *testing.T, r *Result, sshVals []string) {
	t.Helper()
	var want []Hop
	if s := first1(sshVals); s != "" {
		for _, part := range strings.Split(s, ",") {
			h, err := parseHop(part)
			if err != nil {
				t.Fatalf("ssh -G printed proxyjump %q: %v", s, err)
			}
			want = append(want, h)
		}
	}
	if !slices.Equal(r.ProxyJump.Value, want) {
		t.Errorf("proxyjump: got %+v; want %+v (ssh -G %q)", r.ProxyJump.Value, want, sshVals)
	}
}

// compareGlobal: ssh -G prints GlobalKnownHostsFile before ~ expansion.
func compareGlobal(t *testing.T, q Query, r *Result, sshVal string) {
	t.Helper()
	var want []string
	for _, f := range strings.Fields(sshVal) {
		p, _ := tildeExpand(f, q.Home)
		want = append(want, p)
	}
	got := []string{"/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2"}
	if r.GlobalKnownHostsFiles.Set {
		got = r.GlobalKnownHostsFiles.Value
	}
	if !slices.Equal(got, want) {
		t.Errorf("globalknownhostsfile: got %q; want %q (ssh -G)", got, want)
	}
}
