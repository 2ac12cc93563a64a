package lab

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/pelletier/go-toml/v2"
)

func TestPlan(t *testing.T) {
	three := []HostSpec{{Name: "web1", Group: "webservers"}, {Name: "bastion", Group: "bastions"}, {Name: "db1", Group: "dbservers", Via: "bastion"}}
	chain := []HostSpec{{Name: "b1"}, {Name: "b2", Via: "b1"}, {Name: "db", Via: "b2"}, {Name: "web"}}
	tests := []struct {
		name      string
		cfg       Config
		wantAddr  []string
		wantNetns []bool
		wantAcc   []bool
		wantErr   string // substring; "" = no error
		wantField string
	}{
		{name: "three hosts", cfg: Config{Subnet: 10, Hosts: three},
			wantAddr:  []string{"127.10.0.1", "127.10.0.2", "10.10.0.2"},
			wantNetns: []bool{false, true, true}, wantAcc: []bool{false, true, false}},
		{name: "two-hop chain", cfg: Config{Subnet: 7, Hosts: chain},
			wantAddr:  []string{"127.7.0.1", "10.7.0.2", "10.7.1.2", "127.7.0.2"},
			wantNetns: []bool{true, true, true, false}, wantAcc: []bool{true, false, false, false}},
		{name: "subnet zero", cfg: Config{Hosts: three}, wantErr: "must be 1-255", wantField: "Subnet"},
		{name: "no hosts", cfg: Config{Subnet: 1}, wantErr: "no hosts", wantField: "Hosts"},
		{name: "bad port", cfg: Config{Subnet: 1, Port: 70000, Hosts: three}, wantErr: "not a TCP port", wantField: "Port"},
		{name: "bad name", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "Web_1"}}}, wantErr: "not a valid host name", wantField: "Hosts[0].Name"},
		{name: "duplicate", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "a"}, {Name: "a"}}}, wantErr: "listed twice", wantField: "Hosts[1].Name"},
		{name: "group all", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "a", Group: "all"}}}, wantErr: "not a valid group", wantField: "Hosts[0].Group"},
		{name: "unknown via", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "a", Via: "nope"}}}, wantErr: `"nope", which is not in Hosts`, wantField: "Hosts[0].Via"},
		{name: "self via", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "a", Via: "a"}}}, wantErr: "via itself", wantField: "Hosts[0].Via"},
		{name: "cycle", cfg: Config{Subnet: 1, Hosts: []HostSpec{{Name: "a", Via: "b"}, {Name: "b", Via: "a"}}}, wantErr: "cycle: a -> b -> a", wantField: "Hosts[0].Via"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := plan(tc.cfg)
			if tc.wantErr != "" {
				var ce *ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.wantErr) || ce.Field != tc.wantField {
					t.Fatalf("got error %v; want a *ConfigError on %s containing %q", err, tc.wantField, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			var addr []string
			var netns, acc []bool
			for _, p := range ps {
				addr = append(addr, p.addr)
				netns = append(netns, p.netns)
				acc = append(acc, p.acceptor)
			}
			if !reflect.DeepEqual(addr, tc.wantAddr) {
				t.Errorf("got addresses %v; want %v", addr, tc.wantAddr)
			}
			if !reflect.DeepEqual(netns, tc.wantNetns) {
				t.Errorf("got netns %v; want %v", netns, tc.wantNetns)
			}
			if !reflect.DeepEqual(acc, tc.wantAcc) {
				t.Errorf("got acceptor %v; want %v", acc, tc.wantAcc)
			}
		})
	}
}

func TestPlanManyPublicHosts(t *testing.T) {
	hosts := make([]HostSpec, 300)
	for i := range hosts {
		hosts[i] = HostSpec{Name: "h" + strconv.Itoa(i)}
	}
	ps, err := plan(Config{Subnet: 9, Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, p := range ps {
		if seen[p.addr] {
			t.Fatalf("got address %s twice; want unique addresses", p.addr)
		}
		seen[p.addr] = true
	}
	if got, want := ps[255].addr, "127.9.1.0"; got != want {
		t.Errorf("got host 256 at %s; want %s", got, want)
	}
}

func TestCheckDir(t *testing.T) {
	full := t.TempDir() // under /tmp: rejected for that reason, not for content
	nonEmpty, err := os.MkdirTemp("/dev/shm", "opsmop-lab-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(nonEmpty) })
	if err := os.WriteFile(filepath.Join(nonEmpty, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, wantErr string
	}{
		{"relative", "lab", "not an absolute path"},
		{"root", "/", "cannot be a lab directory"},
		{"under etc", "/etc/lab", "under /etc"},
		{"under tmp", full, "under /tmp"},
		{"exactly var", "/var", "under /var"},
		{"var run", "/var/run/lab", "under /var"},
		{"comma", "/run/a,b", "may contain only"},
		{"colon", "/run/a:b", "may contain only"},
		{"fine missing", "/run/opsmop-lab-test-does-not-exist/x", ""},
		{"non-empty", nonEmpty, "is not empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkDir(tc.dir)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v; want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestInventoryTOML(t *testing.T) {
	hosts := []*Host{
		{Name: "web1", Group: "webservers", Addr: "127.20.0.1", Port: 22},
		{Name: "web2", Group: "webservers", Addr: "127.20.0.2", Port: 22},
		{Name: "bastion", Group: "bastions", Addr: "127.20.0.3", Port: 22},
		{Name: "db1", Group: "dbservers", Via: "bastion", Addr: "10.20.0.2", Port: 22},
	}
	b := inventoryTOML(hosts, "/run/opsmop-lab/x/id_ed25519")
	var got map[string]any
	if err := toml.Unmarshal(b, &got); err != nil {
		t.Fatalf("inventory is not valid TOML: %v\n%s", err, b)
	}
	want := map[string]any{"groups": map[string]any{
		"webservers": map[string]any{"hosts": map[string]any{
			"web1": "opsmop_host=127.20.0.1 opsmop_port=22",
			"web2": "opsmop_host=127.20.0.2 opsmop_port=22",
		}},
		"bastions":  map[string]any{"hosts": map[string]any{"bastion": "opsmop_host=127.20.0.3 opsmop_port=22"}},
		"dbservers": map[string]any{"hosts": map[string]any{"db1": "opsmop_host=10.20.0.2 opsmop_port=22 opsmop_via=bastion"}},
		"all": map[string]any{"vars": map[string]any{
			"opsmop_ssh_username":    "root",
			"opsmop_ssh_private_key": "/run/opsmop-lab/x/id_ed25519",
		}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got inventory %#v; want %#v\n%s", got, want, b)
	}
}

func TestKnownHostsLine(t *testing.T) {
	pub := []byte("ssh-ed25519 AAAAkey root@web1\n")
	tests := []struct {
		port int
		want string
	}{
		{22, "127.1.0.1 ssh-ed25519 AAAAkey\n"},
		{2222, "[127.1.0.1]:2222 ssh-ed25519 AAAAkey\n"},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.port), func(t *testing.T) {
			if got := knownHostsLine("127.1.0.1", tc.port, pub); got != tc.want {
				t.Errorf("got %q; want %q", got, tc.want)
			}
		})
	}
}

func TestLockNothing(t *testing.T) {
	upper := t.TempDir()
	if err := os.MkdirAll(filepath.Join(upper, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	in := "root:!:20000:0:99999:7:::\ndeploy:$y$hash:20000:0:99999:7:::\nops:!:20000:0:99999:7:::\n"
	if err := os.WriteFile(filepath.Join(upper, "etc", "shadow"), []byte(in), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := lockNothing(upper, "root", "ops"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(upper, "etc", "shadow"))
	want := "root:*:20000:0:99999:7:::\ndeploy:$y$hash:20000:0:99999:7:::\nops:*:20000:0:99999:7:::\n"
	if string(b) != want {
		t.Errorf("got %q; want %q", b, want)
	}
}

func TestUnescapeMount(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", "/plain": "/plain", `/x\134`: `/x\`} {
		if got := unescapeMount(in); got != want {
			t.Errorf("unescapeMount(%q): got %q; want %q", in, got, want)
		}
	}
}

func TestPlanSSHDOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []string
		wantErr string // substring; "" = valid
	}{
		{name: "max sessions", opts: []string{"MaxSessions 1"}},
		{name: "equals and subsystem", opts: []string{"MaxSessions=2", "Subsystem sftp /nonexistent/sftp-server"}},
		{name: "tab", opts: []string{"MaxSessions\t1"}},
		{name: "no value", opts: []string{"MaxSessions"}, wantErr: "not an sshd_config setting"},
		{name: "empty", opts: []string{""}, wantErr: "not an sshd_config setting"},
		{name: "newline", opts: []string{"MaxSessions 1\nPort 23"}, wantErr: "one setting per entry"},
		{name: "port", opts: []string{"Port 23"}, wantErr: "port is set by the lab"},
		{name: "match", opts: []string{"Match User deploy"}, wantErr: "match is set by the lab"},
		{name: "hostkey", opts: []string{"hostkey /x"}, wantErr: "hostkey is set by the lab"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := plan(Config{Subnet: 1, Hosts: []HostSpec{{Name: "a"}, {Name: "b", SSHDOptions: tc.opts}}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("got error %v; want none", err)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Field != "Hosts[1].SSHDOptions[0]" || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got error %v; want a *ConfigError on Hosts[1].SSHDOptions[0] containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSSHDConfigWith(t *testing.T) {
	base := sshdConfig("/usr/lib/openssh/sftp-server", false)
	got := sshdConfigWith(base, []string{"maxsessions=1", "Subsystem sftp /nonexistent/sftp-server", "Subsystem other /bin/true"})
	for _, want := range []string{"\nmaxsessions=1\n", "\nSubsystem sftp /nonexistent/sftp-server\n", "\nSubsystem other /bin/true\n", "\nPidFile /run/sshd.pid\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("got config\n%s\nwant it to contain %q", got, want)
		}
	}
	if strings.Contains(got, "Subsystem sftp /usr/lib/openssh/sftp-server") {
		t.Errorf("got config\n%s\nwant the lab's Subsystem sftp line replaced", got)
	}
	if n := strings.Count(strings.ToLower(got), "\nsubsystem sftp "); n != 1 {
		t.Errorf("got %d Subsystem sftp lines; want 1 (sshd refuses a subsystem defined twice)", n)
	}
}
