package sshconfig

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// writeConf writes text to dir/name (0644) and returns its path.
func writeConf(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseQuery is a fixed local identity for unit tests.
func baseQuery(host string) Query {
	return Query{Host: host, LocalUser: "me", Home: "/home/me", UID: "1000", LocalHost: "box.example.org",
		Getenv: func(k string) string {
			if k == "AGENT_DIR" {
				return "/run/agent"
			}
			return ""
		}}
}

// lookupText loads text as a required user file and looks q up.
func lookupText(t *testing.T, text string, q Query) (*Result, string, error) {
	t.Helper()
	dir := t.TempDir()
	p := writeConf(t, dir, "config", text)
	c, err := Load([]Source{{Path: p, Required: true}}, dir)
	if err != nil {
		return nil, p, err
	}
	r, err := c.Lookup(q)
	return r, p, err
}

// wantError checks err is an *Error whose text contains each of subs
// (with "@" replaced by the config path).
func wantError(t *testing.T, err error, path string, subs ...string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v (%T); want *Error", err, err)
	}
	for _, s := range subs {
		s = strings.ReplaceAll(s, "@", path)
		if !strings.Contains(err.Error(), s) {
			t.Errorf("got %q; want it to contain %q", err, s)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	tests := []struct {
		name, text, host string
		want             []string // nil: no error
	}{
		{"exec not reached", "Match host other exec \"true\"\n  User x\n", "h", nil},
		{"exec reached", "\nMatch host h exec \"true\"\n  User x\n", "h", []string{"host h: @:2: Match exec is not supported by opsmop"}},
		{"exec first", "Match exec \"true\" host other\n  User x\n", "h", []string{"@:1: Match exec is not supported by opsmop"}},
		{"localnetwork reached", "Match localnetwork 10.0.0.0/8\n  User x\n", "h", []string{"@:1: Match localnetwork is not supported by opsmop"}},
		{"tagged reached", "Match tagged foo\n  User x\n", "h", []string{"@:1: Match tagged is not supported"}},
		{"tagged not reached", "Match !all\nMatch originalhost zz tagged foo\n", "h", nil},
		{"proxycommand applies", "Host h\n  ProxyCommand nc %h %p\n", "h", []string{"@:2: ProxyCommand is not supported by opsmop: use ProxyJump (or opsmop_via in the inventory) for jump hosts"}},
		{"proxycommand elsewhere", "Host other\n  ProxyCommand nc %h %p\n", "h", nil},
		{"proxycommand none", "Host h\n  ProxyCommand none\n", "h", nil},
		{"proxycommand after proxyjump", "Host h\n  ProxyJump b\n  ProxyCommand nc %h %p\n", "h", nil},
		{"proxycommand before proxyjump", "Host h\n  ProxyCommand nc %h %p\n  ProxyJump b\n", "h", []string{"@:2: ProxyCommand"}},
		{"hostkeyalias", "HostKeyAlias foo\n", "h", []string{"@:1: HostKeyAlias is not supported"}},
		{"canonicalize no", "CanonicalizeHostname no\n", "h", nil},
		{"canonicalize yes", "CanonicalizeHostname yes\n", "h", []string{"@:1: CanonicalizeHostname is not supported"}},
		{"canonicalize first wins", "Host h\n  CanonicalizeHostname no\nCanonicalizeHostname always\n", "h", nil},
		{"tunnel", "Tunnel point-to-point\n", "h", []string{"@:1: Tunnel is not supported"}},
		{"pkcs11 none", "PKCS11Provider none\n", "h", nil},
		{"bindaddress", "Host h\n  BindAddress 10.0.0.1\n", "h", []string{"@:2: BindAddress"}},
		{"knownhostscommand", "KnownHostsCommand /bin/kh %H\n", "h", []string{"@:1: KnownHostsCommand"}},
		{"controlmaster ignored", "ControlMaster auto\nControlPath ~/.ssh/%C\nControlPersist 1m\n", "h", nil},
		{"unknown token hostname", "Host h\n  HostName %x.example\n", "h", []string{"@:2: HostName: unknown token %x"}},
		{"unknown token identityfile", "IdentityFile ~/.ssh/%q\n", "h", []string{"@:1: IdentityFile", "unknown token %q"}},
		{"percent at end", "IdentityFile ~/.ssh/x%\n", "h", []string{"@:1: IdentityFile"}},
		{"unset env", "IdentityFile ${NOPE_NOT_SET}/k\n", "h", []string{"@:1:", "${NOPE_NOT_SET} has no value"}},
		{"ignoreunknown inactive", "Host other\n  IgnoreUnknown Frob\nFrob 1\n", "h", []string{"@:3: Bad configuration option: frob"}},
		{"ignoreunknown active", "Host other\n  IgnoreUnknown Frob\nFrob 1\n", "other", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p, err := lookupText(t, tt.text, baseQuery(tt.host))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got error %v; want none", err)
				}
				return
			}
			wantError(t, err, p, tt.want...)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"unknown keyword", "\nFrobnicate yes\n", []string{"@:2: Bad configuration option: frobnicate"}},
		{"ignoreunknown covers", "IgnoreUnknown frob*\nFrobnicate yes\n", nil},
		{"ignoreunknown after", "Frobnicate yes\nIgnoreUnknown frob*\n", []string{"@:1: Bad configuration option"}},
		{"bad port", "Host x\n  Port 0\n", []string{"@:2: Port: bad port"}},
		{"bad bool", "IdentitiesOnly perhaps\n", []string{"@:1: IdentitiesOnly: unsupported value"}},
		{"bad time", "ConnectTimeout 5x\n", []string{"@:1: ConnectTimeout: invalid time value"}},
		{"extra args", "User a b\n", []string{"@:1: User: extra arguments"}},
		{"missing arg", "User #x\n", []string{"@:1: User: missing argument"}},
		{"jump empty user", "ProxyJump @h\n", []string{"@:1: ProxyJump: invalid ProxyJump"}},
		{"jump bad port", "ProxyJump h:99999\n", []string{"@:1: ProxyJump"}},
		{"jump empty hop", "ProxyJump a,,b\n", []string{"@:1: ProxyJump"}},
		{"jump uri path", "ProxyJump ssh://h/path\n", []string{"@:1: ProxyJump"}},
		{"jump uri bad host", "ProxyJump ssh://-h\n", []string{"@:1: ProxyJump"}},
		{"jump bracket", "ProxyJump [::1\n", []string{"@:1: ProxyJump"}},
		{"jump slash", "ProxyJump h/x\n", []string{"@:1: ProxyJump"}},
		{"match no criteria", "Match\n", []string{`@:1: no argument after keyword "match"`}},
		{"match missing arg", "Match host\n", []string{"@:1: Match: missing argument for Match 'host'"}},
		{"match unknown attr", "Match colour red\n", []string{"@:1: Match: unsupported Match attribute colour"}},
		{"match all combined", "Match all user x\n", []string{"@:1: Match: 'all' cannot be combined"}},
		{"host empty", "Host \"\"\n", []string{"@:1: Host: empty pattern"}},
		{"known hosts none not alone", "UserKnownHostsFile a none\n", []string{"@:1: UserKnownHostsFile"}},
		{"agent bad env", "IdentityAgent ${X\n", []string{"@:1: IdentityAgent: invalid environment expansion"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := writeConf(t, dir, "config", tt.text)
			_, err := Load([]Source{{Path: p, Required: true}}, dir)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got error %v; want none", err)
				}
				return
			}
			wantError(t, err, p, tt.want...)
		})
	}
}

func TestJumpParse(t *testing.T) {
	tests := []struct {
		in   string
		want []Hop
		none bool
	}{
		{"b", []Hop{{Host: "b"}}, false},
		{"u@b:2022", []Hop{{User: "u", Host: "b", Port: 2022}}, false},
		{"a@x@b", []Hop{{User: "a@x", Host: "b"}}, false},
		{"ssh://u%40x@b:22", []Hop{{User: "u@x", Host: "b", Port: 22}}, false},
		{"ssh://u;fp=x@b", []Hop{{User: "u", Host: "b"}}, false},
		{"[2001:db8::1]:22,c", []Hop{{Host: "2001:db8::1", Port: 22}, {Host: "c"}}, false},
		{"NONE", nil, true},
		{"b # comment", []Hop{{Host: "b"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			hops, none, err := parseJump(tt.in)
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if none != tt.none || !slices.Equal(hops, tt.want) {
				t.Errorf("got %+v none=%v; want %+v none=%v", hops, none, tt.want, tt.none)
			}
		})
	}
}

func TestLookupValues(t *testing.T) {
	text := `Host web
  HostName %h.Example.COM
  User deploy
  Port 2200
  IdentityFile ~/.ssh/%r@%h-%p
  IdentityAgent ${AGENT_DIR}/%L.sock
  UserKnownHostsFile ~/kh/%C
  ConnectTimeout 1m30s
  ProxyJump j1,u@j2:2
Host *
  IdentityFile %d/.ssh/id_%u
`
	r, p, err := lookupText(t, text, baseQuery("web"))
	if err != nil {
		t.Fatal(err)
	}
	hash := connHash("box.example.org", "web.example.com", "2200", "deploy")
	checks := []struct{ name, got, want string }{
		{"HostName", r.HostName.Value, "web.example.com"},
		{"HostName.At", r.HostName.At.String(), p + ":2"},
		{"User", r.User.Value, "deploy"},
		{"Port", strconv.Itoa(r.Port.Value), "2200"},
		{"IdentityFiles[0]", r.IdentityFiles[0].Value, "/home/me/.ssh/deploy@web.example.com-2200"},
		{"IdentityFiles[1]", r.IdentityFiles[1].Value, "/home/me/.ssh/id_me"},
		{"IdentityFiles[1].At", r.IdentityFiles[1].At.String(), p + ":11"},
		{"IdentityAgent", r.IdentityAgent.Value, "/run/agent/box.sock"},
		{"UserKnownHostsFiles", strings.Join(r.UserKnownHostsFiles.Value, " "), "/home/me/kh/" + hash},
		{"ConnectTimeout", r.ConnectTimeout.Value.String(), (90 * time.Second).String()},
		{"ProxyJump", strings.Join(hopStrings(r.ProxyJump.Value), ","), "j1:0,u@j2:2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %q; want %q", c.name, c.got, c.want)
		}
	}
	if r.StrictHostKeyChecking.Set || r.BatchMode.Set {
		t.Errorf("got unset settings marked Set: %+v %+v; want Set false", r.StrictHostKeyChecking, r.BatchMode)
	}
}

func hopStrings(hops []Hop) []string {
	var s []string
	for _, h := range hops {
		u := ""
		if h.User != "" {
			u = h.User + "@"
		}
		s = append(s, u+h.Host+":"+strconv.Itoa(h.Port))
	}
	return s
}

func TestLookupExplicitAndJumpChain(t *testing.T) {
	text := "Host web\n  User cfg\n  Port 2200\n  ProxyJump cfgjump\nMatch user cli\n  IdentityFile ~/cli_%r_%p\n"
	q := baseQuery("web")
	q.User, q.Port = "cli", 22
	q.JumpChain = []Hop{{Host: "a"}, {User: "u", Host: "b", Port: 2}}
	r, _, err := lookupText(t, text, q)
	if err != nil {
		t.Fatal(err)
	}
	if r.User.Value != "cli" || r.User.At != (Pos{}) || r.Port.Value != 22 {
		t.Errorf("got user %+v port %+v; want explicit cli, 22 with zero At", r.User, r.Port)
	}
	if len(r.IdentityFiles) != 1 || r.IdentityFiles[0].Value != "/home/me/cli_cli_22" {
		t.Errorf("got %+v; want /home/me/cli_cli_22 (Match user sees the explicit user)", r.IdentityFiles)
	}
	if !slices.Equal(r.ProxyJump.Value, q.JumpChain) {
		t.Errorf("got ProxyJump %+v; want the JumpChain %+v", r.ProxyJump.Value, q.JumpChain)
	}
}
