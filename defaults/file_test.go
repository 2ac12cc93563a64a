package defaults

import (
	"os"
	"path/filepath"
	"reflect"
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
			Tuning: Tuning{Forks: 5, ConnectTimeout: 3 * time.Second, CommandTimeout: 90 * time.Second},
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
