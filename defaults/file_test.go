package defaults

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func boolp(b bool) *bool { return &b }

func intp(n int) *int { return &n }

func TestLoadFrom(t *testing.T) {
	const full = `[ssh]
username = "deploy"
password = "env:PW"
port = 2222
private_key = "~/.ssh/id_ed25519"
check_host_keys = false
[sudo]
username = "admin"
password = "file:/pw"
[tuning]
forks = 5
connect_timeout = "3s"
command_timeout = "1m30s"
max_handshakes = 8
connect_retries = 0
`
	dir := t.TempDir()
	home := write(t, dir, "home/.opsmop/defaults.toml", full)
	homeMinimal := write(t, dir, "home2/.opsmop/defaults.toml", "[ssh]\nusername = \"fromhome\"\n")
	etc := write(t, dir, "etc/opsmop/defaults.toml", "[ssh]\nusername = \"frometc\"\nport = 2300\n")
	missing := filepath.Join(dir, "nope", "defaults.toml")

	cases := []struct {
		name      string
		home, etc string
		wantPath  string
		want      *File
	}{
		{"full home file", home, etc, home, &File{
			SSH:    SSH{Username: "deploy", Password: "env:PW", Port: 2222, PrivateKey: "~/.ssh/id_ed25519", CheckHostKeys: boolp(false)},
			Sudo:   Sudo{Username: "admin", Password: "file:/pw"},
			Tuning: Tuning{Forks: 5, ConnectTimeout: 3 * time.Second, CommandTimeout: 90 * time.Second, MaxHandshakes: intp(8), ConnectRetries: intp(0)},
			Path:   home,
		}},
		{"home file exists, so /etc is ignored entirely", homeMinimal, etc, homeMinimal, &File{SSH: SSH{Username: "fromhome"}, Path: homeMinimal}},
		{"no home file: /etc is read", missing, etc, etc, &File{SSH: SSH{Username: "frometc", Port: 2300}, Path: etc}},
		{"no home given: /etc is read", "", etc, etc, &File{SSH: SSH{Username: "frometc", Port: 2300}, Path: etc}},
		{"neither exists", missing, missing + "2", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, path, err := LoadFrom(c.home, c.etc)
			if err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			if path != c.wantPath {
				t.Errorf("LoadFrom path: got %q; want %q", path, c.wantPath)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("LoadFrom: got %+v; want %+v", got, c.want)
			}
		})
	}
}

func TestLoadFromHomeFile(t *testing.T) {
	home := t.TempDir()
	p := write(t, home, ".opsmop/defaults.toml", "[tuning]\nforks = 3\n")
	f, path, err := LoadFrom(HomeFile(home), EtcFile)
	if err != nil {
		t.Fatalf("LoadFrom(HomeFile(%q), EtcFile): %v", home, err)
	}
	if path != p || f == nil || f.Tuning.Forks != 3 {
		t.Errorf("LoadFrom(HomeFile(%q), EtcFile): got %+v, %q; want forks 3 from %q", home, f, path, p)
	}
	if HomeFile(home) != p {
		t.Errorf("HomeFile(%q): got %q; want %q", home, HomeFile(home), p)
	}
}

func TestLoadFromErrors(t *testing.T) {
	cases := []struct {
		name    string
		content string
		want    []string
	}{
		{"unknown key", "[ssh]\nusername = \"a\"\nusrname = \"b\"\n", []string{"defaults.toml:3:", "unknown key ssh.usrname", "known keys"}},
		{"unknown table", "[ssh]\nusername = \"a\"\n\n[become]\nuser = \"x\"\n", []string{"defaults.toml:4:", "unknown key become "}},
		{"two unknown keys", "[ssh]\nuser = \"a\"\n[tuning]\nfork = 1\n", []string{"defaults.toml:2: unknown key ssh.user", "defaults.toml:4: unknown key tuning.fork"}},
		{"wrong type port", "[ssh]\nport = \"abc\"\n", []string{"defaults.toml:2:", "ssh.port", "must be an integer"}},
		{"wrong type bool", "[ssh]\ncheck_host_keys = \"yes\"\n", []string{"defaults.toml:2:", "ssh.check_host_keys", "must be true or false"}},
		{"port out of range", "[ssh]\nport = 70000\n", []string{"defaults.toml:2:", "70000 is not a port"}},
		{"bad duration", "[tuning]\n\nconnect_timeout = \"soon\"\n", []string{"defaults.toml:3:", "tuning.connect_timeout", `"soon" is not a duration`}},
		{"negative duration", "[tuning]\ncommand_timeout = \"-1s\"\n", []string{"defaults.toml:2:", "must be positive"}},
		{"bare integer timeout", "[tuning]\nconnect_timeout = 10\n", []string{"defaults.toml:2:", "tuning.connect_timeout", `must be a quoted duration such as "10s"`}},
		{"zero forks", "[tuning]\nforks = 0\n", []string{"defaults.toml:2:", "tuning.forks: must be at least 1"}},
		{"negative max_handshakes", "[tuning]\nforks = 2\nmax_handshakes = -1\n", []string{"defaults.toml:3:", "tuning.max_handshakes: -1: must be at least 0"}},
		{"max_handshakes not an integer", "[tuning]\nmax_handshakes = \"8\"\n", []string{"defaults.toml:2:", "tuning.max_handshakes", "must be an integer"}},
		{"negative connect_retries", "[tuning]\nconnect_retries = -1\n", []string{"defaults.toml:2:", "tuning.connect_retries: -1: must be 0-10"}},
		{"too many connect_retries", "[tuning]\n\nconnect_retries = 11\n", []string{"defaults.toml:3:", "tuning.connect_retries: 11: must be 0-10"}},
		{"connect_retries not an integer", "[tuning]\nconnect_retries = true\n", []string{"defaults.toml:2:", "tuning.connect_retries", "must be an integer"}},
		{"syntax", "[ssh\n", []string{"defaults.toml:1:"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			home := write(t, dir, "defaults.toml", c.content)
			etc := write(t, dir, "etc.toml", "[ssh]\nusername = \"fine\"\n")
			f, _, err := LoadFrom(home, etc)
			if err == nil {
				t.Fatalf("LoadFrom: got %+v, nil; want an error (and no fallback to /etc)", f)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadFrom error: got %q; want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadFromUnreadableHomeDoesNotFallBack(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "defaults.toml")
	if err := os.Mkdir(home, 0o755); err != nil { // a directory: read fails
		t.Fatal(err)
	}
	etc := write(t, dir, "etc.toml", "[ssh]\nusername = \"fine\"\n")
	if f, p, err := LoadFrom(home, etc); err == nil {
		t.Errorf("LoadFrom(unreadable home): got %+v from %q; want an error", f, p)
	}
}

// TestTuningLimits accepts the edges of max_handshakes and connect_retries
// and tells an unset key (nil) from one set to 0.
func TestTuningLimits(t *testing.T) {
	cases := []struct {
		name              string
		content           string
		handshakes, tries *int
	}{
		{"unset", "[tuning]\nforks = 2\n", nil, nil},
		{"zero", "[tuning]\nmax_handshakes = 0\nconnect_retries = 0\n", intp(0), intp(0)},
		{"largest retries", "[tuning]\nmax_handshakes = 1000\nconnect_retries = 10\n", intp(1000), intp(MaxConnectRetries)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(t, t.TempDir(), "defaults.toml", c.content)
			f, _, err := LoadFrom(p, "")
			if err != nil {
				t.Fatalf("LoadFrom: %v", err)
			}
			if got, want := f.Tuning.MaxHandshakes, c.handshakes; !reflect.DeepEqual(got, want) {
				t.Errorf("max_handshakes: got %v; want %v", deref(got), deref(want))
			}
			if got, want := f.Tuning.ConnectRetries, c.tries; !reflect.DeepEqual(got, want) {
				t.Errorf("connect_retries: got %v; want %v", deref(got), deref(want))
			}
		})
	}
}

// deref shows an optional int.
func deref(p *int) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(*p)
}
