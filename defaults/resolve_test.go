package defaults

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/secret"
)

// builtin is what Resolve gives host "web1" for user "me" when nothing is
// configured.
func builtin() Settings {
	return Settings{
		Host: "web1", Address: "web1", Port: 22, User: "me",
		CheckHostKeys: true, Connection: "ssh",
		ConnectTimeout: 10 * time.Second, CommandTimeout: 10 * time.Minute, Forks: 20,
		Source: map[string]string{
			"address": "builtin", "port": "builtin", "user": "builtin", "sudo": "builtin",
			"check_host_keys": "builtin", "identities_only": "builtin", "connection": "builtin",
			"connect_timeout": "builtin", "command_timeout": "builtin", "forks": "builtin",
			// Settings only an ssh connection has (the ssh config may set them).
			"identity_agent": "builtin", "auth_methods": "builtin", "accept_new_host_keys": "builtin",
			"known_hosts": "builtin", "global_known_hosts": "builtin", "hash_known_hosts": "builtin",
			"address_family": "builtin", "keepalive": "builtin", "keepalive_max": "builtin",
		},
	}
}

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func secretp(s string) *secret.Secret { v := secret.New(s); return &v }

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	sudoPwFile := write(t, dir, "sudo_pw", "sudo-from-file\n")
	homeFile := write(t, dir, "home/.opsmop/defaults.toml", fmt.Sprintf(`[ssh]
username = "homeuser"
password = "env:HOME_PW"
port = 2200
private_key = "~/.ssh/id_home"
check_host_keys = false
[sudo]
username = "homesudo"
password = "file:%s"
[tuning]
forks = 5
connect_timeout = "3s"
command_timeout = "1m"
`, sudoPwFile))
	homeTuningOnly := write(t, dir, "home2/.opsmop/defaults.toml", "[tuning]\nforks = 7\n")
	etcFile := write(t, dir, "etc/opsmop/defaults.toml", "[ssh]\nusername = \"etcuser\"\nport = 2300\n")
	load := func(home, etc string) *File {
		f, _, err := LoadFrom(home, etc)
		if err != nil {
			t.Fatalf("LoadFrom(%s, %s): %v", home, etc, err)
		}
		return f
	}
	full := load(homeFile, etcFile)
	environ := env(map[string]string{"HOME": "/home/me", "HOME_PW": "home-pw", "INV_PW": "inv-pw", "ROLE_PW": "role-pw"})

	// allInventory sets every magic variable.
	allInventory := map[string]any{
		"opsmop_host": "10.0.0.5", "opsmop_port": 2222, "opsmop_ssh_username": "invuser",
		"opsmop_ssh_password": "env:INV_PW", "opsmop_ssh_private_key": "~/inv_key",
		"opsmop_sudo": true, "opsmop_sudo_username": "postgres", "opsmop_sudo_password": "inv-sudo-pw",
		"opsmop_check_host_keys": true, "opsmop_via": "bastion", "opsmop_connection": "ssh",
		"unrelated": 5,
	}

	cases := []struct {
		name string
		in   Inputs
		want func(s *Settings)
	}{
		{
			name: "builtin only",
			in:   Inputs{Host: "web1", CurrentUser: "me"},
			want: func(s *Settings) {},
		},
		{
			name: "home defaults file",
			in:   Inputs{Host: "web1", CurrentUser: "me", Defaults: full},
			want: func(s *Settings) {
				s.User, s.Source["user"] = "homeuser", homeFile
				s.Password, s.Source["password"] = secret.New("home-pw"), homeFile
				s.Port, s.Source["port"] = 2200, homeFile
				s.PrivateKey, s.Source["private_key"] = "/home/me/.ssh/id_home", homeFile
				s.CheckHostKeys, s.Source["check_host_keys"] = false, homeFile
				s.SudoUser, s.Source["sudo_user"] = "homesudo", homeFile
				s.Forks, s.Source["forks"] = 5, homeFile
				s.ConnectTimeout, s.Source["connect_timeout"] = 3*time.Second, homeFile
				s.CommandTimeout, s.Source["command_timeout"] = time.Minute, homeFile
			},
		},
		{
			name: "home file exists, so /etc is ignored",
			in:   Inputs{Host: "web1", CurrentUser: "me", Defaults: load(homeTuningOnly, etcFile)},
			want: func(s *Settings) {
				s.Forks, s.Source["forks"] = 7, homeTuningOnly
			},
		},
		{
			name: "no home file: /etc defaults",
			in:   Inputs{Host: "web1", CurrentUser: "me", Defaults: load(filepath.Join(dir, "missing.toml"), etcFile)},
			want: func(s *Settings) {
				s.User, s.Source["user"] = "etcuser", etcFile
				s.Port, s.Source["port"] = 2300, etcFile
			},
		},
		{
			name: "inventory beats defaults file",
			in:   Inputs{Host: "web1", CurrentUser: "me", Defaults: full, Vars: allInventory},
			want: func(s *Settings) {
				s.Address, s.Source["address"] = "10.0.0.5", "inventory"
				s.Port, s.Source["port"] = 2222, "inventory"
				s.User, s.Source["user"] = "invuser", "inventory"
				s.Password, s.Source["password"] = secret.New("inv-pw"), "inventory"
				s.PrivateKey, s.Source["private_key"] = "/home/me/inv_key", "inventory"
				s.Sudo, s.Source["sudo"] = true, "inventory"
				s.SudoUser, s.Source["sudo_user"] = "postgres", "inventory"
				s.SudoPassword, s.Source["sudo_password"] = secret.New("inv-sudo-pw"), "inventory"
				s.CheckHostKeys, s.Source["check_host_keys"] = true, "inventory"
				s.Via, s.Source["via"] = "bastion", "inventory"
				s.Connection, s.Source["connection"] = "ssh", "inventory"
				s.Forks, s.Source["forks"] = 5, homeFile
				s.ConnectTimeout, s.Source["connect_timeout"] = 3*time.Second, homeFile
				s.CommandTimeout, s.Source["command_timeout"] = time.Minute, homeFile
			},
		},
		{
			name: "role beats inventory",
			in: Inputs{Host: "web1", CurrentUser: "me", Defaults: full, Vars: allInventory, Role: Role{
				SSHUser: "roleuser", SSHPassword: "env:ROLE_PW", SSHPrivateKey: "/role_key",
				Sudo: boolp(true), SudoUser: "www-data", SudoPassword: "role-sudo", CheckHostKeys: boolp(false),
			}},
			want: func(s *Settings) {
				s.Address, s.Source["address"] = "10.0.0.5", "inventory"
				s.Port, s.Source["port"] = 2222, "inventory"
				s.User, s.Source["user"] = "roleuser", "role"
				s.Password, s.Source["password"] = secret.New("role-pw"), "role"
				s.PrivateKey, s.Source["private_key"] = "/role_key", "role"
				s.Sudo, s.Source["sudo"] = true, "role"
				s.SudoUser, s.Source["sudo_user"] = "www-data", "role"
				s.SudoPassword, s.Source["sudo_password"] = secret.New("role-sudo"), "role"
				s.CheckHostKeys, s.Source["check_host_keys"] = false, "role"
				s.Via, s.Source["via"] = "bastion", "inventory"
				s.Connection, s.Source["connection"] = "ssh", "inventory"
				s.Forks, s.Source["forks"] = 5, homeFile
				s.ConnectTimeout, s.Source["connect_timeout"] = 3*time.Second, homeFile
				s.CommandTimeout, s.Source["command_timeout"] = time.Minute, homeFile
			},
		},
		{
			name: "role value left out falls through to inventory, defaults file and builtin",
			in: Inputs{Host: "web1", CurrentUser: "me", Defaults: load(homeTuningOnly, etcFile),
				Vars: map[string]any{"opsmop_ssh_password": "inv-literal"},
				Role: Role{SSHUser: "roleuser"}},
			want: func(s *Settings) {
				s.User, s.Source["user"] = "roleuser", "role"
				s.Password, s.Source["password"] = secret.New("inv-literal"), "inventory"
				s.Forks, s.Source["forks"] = 7, homeTuningOnly
			},
		},
		{
			name: "role sudo false beats inventory sudo true",
			in:   Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_sudo": true, "opsmop_sudo_password": "env:UNSET"}, Role: Role{Sudo: boolp(false)}},
			want: func(s *Settings) {
				s.Source["sudo"] = "role" // sudo off: the sudo password is not resolved
			},
		},
		{
			name: "-k and -K beat role passwords",
			in: Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_sudo": true},
				Role:             Role{SSHPassword: "role-pw", SudoPassword: "role-sudo"},
				AskedSSHPassword: secretp("typed-ssh"), AskedSudoPassword: secretp("typed-sudo")},
			want: func(s *Settings) {
				s.Password, s.Source["password"] = secret.New("typed-ssh"), "-k"
				s.Sudo, s.Source["sudo"] = true, "inventory"
				s.SudoUser, s.Source["sudo_user"] = "root", "builtin"
				s.SudoPassword, s.Source["sudo_password"] = secret.New("typed-sudo"), "-K"
			},
		},
		{
			name: "-K beats the defaults file's sudo password",
			in:   Inputs{Host: "web1", CurrentUser: "me", Defaults: full, Role: Role{Sudo: boolp(true)}, AskedSudoPassword: secretp("typed")},
			want: func(s *Settings) {
				s.User, s.Source["user"] = "homeuser", homeFile
				s.Password, s.Source["password"] = secret.New("home-pw"), homeFile
				s.Port, s.Source["port"] = 2200, homeFile
				s.PrivateKey, s.Source["private_key"] = "/home/me/.ssh/id_home", homeFile
				s.CheckHostKeys, s.Source["check_host_keys"] = false, homeFile
				s.Sudo, s.Source["sudo"] = true, "role"
				s.SudoUser, s.Source["sudo_user"] = "homesudo", homeFile
				s.SudoPassword, s.Source["sudo_password"] = secret.New("typed"), "-K"
				s.Forks, s.Source["forks"] = 5, homeFile
				s.ConnectTimeout, s.Source["connect_timeout"] = 3*time.Second, homeFile
				s.CommandTimeout, s.Source["command_timeout"] = time.Minute, homeFile
			},
		},
		{
			name: "sudo password from file: reference",
			in:   Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_sudo": true, "opsmop_sudo_password": "file:" + sudoPwFile}},
			want: func(s *Settings) {
				s.Sudo, s.Source["sudo"] = true, "inventory"
				s.SudoUser, s.Source["sudo_user"] = "root", "builtin"
				s.SudoPassword, s.Source["sudo_password"] = secret.New("sudo-from-file"), "inventory"
			},
		},
		{
			name: "local connection needs no user and does not resolve the SSH password",
			in:   Inputs{Host: "web1", Vars: map[string]any{"opsmop_connection": "local", "opsmop_ssh_password": "env:UNSET"}},
			want: func(s *Settings) {
				s.Connection, s.Source["connection"] = "local", "inventory"
				s.User = ""
				for _, k := range []string{"user", "identity_agent", "auth_methods", "accept_new_host_keys", "known_hosts", "global_known_hosts", "hash_known_hosts", "address_family", "keepalive", "keepalive_max"} {
					delete(s.Source, k) // ssh settings: a local connection has none
				}
			},
		},
		{
			name: "empty inventory strings count as not set",
			in:   Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_host": "", "opsmop_ssh_username": ""}},
			want: func(s *Settings) {},
		},
		{
			name: "port from a JSON number",
			in:   Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_port": 2222.0}},
			want: func(s *Settings) { s.Port, s.Source["port"] = 2222, "inventory" },
		},
		{
			name: "tilde alone and explicit Home",
			in:   Inputs{Host: "web1", CurrentUser: "me", Home: "/h", Vars: map[string]any{"opsmop_ssh_private_key": "~"}},
			want: func(s *Settings) { s.PrivateKey, s.Source["private_key"] = "/h", "inventory" },
		},
		{
			name: "tilde user is not expanded",
			in:   Inputs{Host: "web1", CurrentUser: "me", Vars: map[string]any{"opsmop_ssh_private_key": "~bob/key"}},
			want: func(s *Settings) { s.PrivateKey, s.Source["private_key"] = "~bob/key", "inventory" },
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.in.Getenv == nil {
				c.in.Getenv = environ
			}
			got, err := Resolve(c.in)
			if err != nil {
				t.Fatalf("Resolve: got error %v; want nil", err)
			}
			want := builtin()
			c.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Resolve:\ngot  %s\nwant %s", dump(got), dump(want))
			}
		})
	}
}

// dump shows settings with passwords revealed, for test failures only.
func dump(s Settings) string {
	return fmt.Sprintf("%+v password=%q sudo_password=%q", s, s.Password.Reveal(), s.SudoPassword.Reveal())
}

func TestResolveErrors(t *testing.T) {
	cases := []struct {
		name    string
		in      Inputs
		want    []string
		varErr  bool
		mustNot []string
	}{
		{"port not a number", Inputs{Vars: map[string]any{"opsmop_port": "abc"}}, []string{"host web1", "opsmop_port", `string "abc"`, "port number"}, true, nil},
		{"port out of range", Inputs{Vars: map[string]any{"opsmop_port": 70000}}, []string{"host web1", "opsmop_port", "70000"}, true, nil},
		{"port zero", Inputs{Vars: map[string]any{"opsmop_port": 0}}, []string{"opsmop_port"}, true, nil},
		{"port fractional", Inputs{Vars: map[string]any{"opsmop_port": 22.5}}, []string{"opsmop_port", "22.5"}, true, nil},
		{"check_host_keys string", Inputs{Vars: map[string]any{"opsmop_check_host_keys": "yes"}}, []string{"opsmop_check_host_keys", "true or false", `string "yes"`}, true, nil},
		{"sudo string", Inputs{Vars: map[string]any{"opsmop_sudo": "true"}}, []string{"opsmop_sudo", "true or false"}, true, nil},
		{"host not a string", Inputs{Vars: map[string]any{"opsmop_host": 5}}, []string{"opsmop_host", "a string", "integer 5"}, true, nil},
		{"user is a list", Inputs{Vars: map[string]any{"opsmop_ssh_username": []any{"a"}}}, []string{"opsmop_ssh_username", "a list"}, true, nil},
		{"connection unknown", Inputs{Vars: map[string]any{"opsmop_connection": "winrm"}}, []string{"opsmop_connection", `"ssh" or "local"`, `"winrm"`}, true, nil},
		{"password not a string is not shown", Inputs{Vars: map[string]any{"opsmop_ssh_password": 987654}}, []string{"opsmop_ssh_password", "must be a string", "integer"}, true, []string{"987654"}},
		{"sudo password not a string is not shown", Inputs{Vars: map[string]any{"opsmop_sudo_password": 987654}}, []string{"opsmop_sudo_password"}, true, []string{"987654"}},
		{"env password unset", Inputs{Vars: map[string]any{"opsmop_ssh_password": "env:NOPE"}}, []string{"host web1", "SSH password from inventory", "NOPE"}, false, nil},
		{"file password missing", Inputs{Role: Role{SudoPassword: "file:/nonexistent/pw", Sudo: boolp(true)}}, []string{"host web1", "sudo password from role", "/nonexistent/pw"}, false, nil},
		{"via itself", Inputs{Vars: map[string]any{"opsmop_via": "web1"}}, []string{"host web1", "opsmop_via", "itself"}, false, nil},
		{"no user for ssh", Inputs{CurrentUser: "-"}, []string{"host web1", "no SSH user", "opsmop_ssh_username"}, false, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Host = "web1"
			switch c.in.CurrentUser {
			case "":
				c.in.CurrentUser = "me"
			case "-":
				c.in.CurrentUser = ""
			}
			c.in.Getenv = env(nil)
			got, err := Resolve(c.in)
			if err == nil {
				t.Fatalf("Resolve: got %s, nil; want an error containing %q", dump(got), c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Resolve error: got %q; want it to contain %q", err, w)
				}
			}
			for _, w := range c.mustNot {
				if strings.Contains(err.Error(), w) {
					t.Errorf("Resolve error: got %q; must not contain %q", err, w)
				}
			}
			var ve *VarError
			if got := errors.As(err, &ve); got != c.varErr {
				t.Errorf("Resolve error %q: errors.As *VarError = %v; want %v", err, got, c.varErr)
			}
			if c.varErr && ve.Host != "web1" {
				t.Errorf("VarError.Host: got %q; want web1", ve.Host)
			}
		})
	}
}

func TestSettingsNeverPrintPasswords(t *testing.T) {
	s, err := Resolve(Inputs{Host: "web1", CurrentUser: "me", Getenv: env(nil),
		Role: Role{SSHPassword: "hunter2", Sudo: boolp(true), SudoPassword: "hunter3"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(format, s)
		if strings.Contains(out, "hunter") {
			t.Errorf("fmt %s of Settings: got %q; want no password", format, out)
		}
	}
	for _, kv := range s.Describe() {
		if strings.Contains(kv.Value, "hunter") {
			t.Errorf("Describe %s: got %q; want no password", kv.Key, kv.Value)
		}
	}
}

func TestDescribe(t *testing.T) {
	s, err := Resolve(Inputs{Host: "web1", CurrentUser: "me", Getenv: env(nil), Home: "/home/me",
		Vars: map[string]any{"opsmop_host": "10.0.0.5", "opsmop_via": "bastion", "opsmop_ssh_private_key": "~/k"},
		Role: Role{SSHPassword: "pw", Sudo: boolp(true)}})
	if err != nil {
		t.Fatal(err)
	}
	want := []KV{
		{"address", "10.0.0.5", "inventory"},
		{"port", "22", "builtin"},
		{"user", "me", "builtin"},
		{"password", "<redacted>", "role"},
		{"private_key", "/home/me/k", "inventory"},
		{"identity_files", "(none)", ""},
		{"certificate_files", "(none)", ""},
		{"identity_agent", "$SSH_AUTH_SOCK", "builtin"},
		{"identities_only", "false", "builtin"},
		{"auth_methods", "publickey, password, keyboard-interactive", "builtin"},
		{"sudo", "true", "role"},
		{"sudo_user", "root", "builtin"},
		{"sudo_password", "(none)", ""},
		{"via", "bastion", "inventory"},
		{"check_host_keys", "true", "builtin"},
		{"accept_new_host_keys", "false", "builtin"},
		{"known_hosts", "~/.ssh/known_hosts", "builtin"},
		{"global_known_hosts", "/etc/ssh/ssh_known_hosts", "builtin"},
		{"hash_known_hosts", "false", "builtin"},
		{"connection", "ssh", "builtin"},
		{"address_family", "any", "builtin"},
		{"connect_timeout", "10s", "builtin"},
		{"keepalive", "connect_timeout, at most 15s", "builtin"},
		{"keepalive_max", "3", "builtin"},
		{"command_timeout", "10m0s", "builtin"},
		{"forks", "20", "builtin"},
	}
	if got := s.Describe(); !reflect.DeepEqual(got, want) {
		t.Errorf("Describe():\ngot  %v\nwant %v", got, want)
	}
	got := s.Describe("outer", "bastion")
	if got[13] != (KV{"via", "outer -> bastion", "inventory"}) {
		t.Errorf("Describe(chain) via row: got %v; want {via outer -> bastion inventory}", got[13])
	}
}

func TestViaChain(t *testing.T) {
	cases := []struct {
		name  string
		via   map[string]string
		host  string
		want  []string
		cycle []string
	}{
		{"direct", map[string]string{}, "web1", []string{}, nil},
		{"one hop", map[string]string{"web1": "bastion"}, "web1", []string{"bastion"}, nil},
		{"two hops dial outermost first", map[string]string{"web1": "inner", "inner": "outer"}, "web1", []string{"outer", "inner"}, nil},
		{"cycle", map[string]string{"web1": "a", "a": "b", "b": "a"}, "web1", nil, []string{"a", "b", "a"}},
		{"cycle through the host", map[string]string{"web1": "a", "a": "web1"}, "web1", nil, []string{"web1", "a", "web1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ViaChain(c.host, func(h string) (string, error) { return c.via[h], nil })
			if c.cycle != nil {
				var ve *ViaChainError
				if !errors.As(err, &ve) || !reflect.DeepEqual(ve.Cycle, c.cycle) {
					t.Fatalf("ViaChain: got %v, %v; want *ViaChainError with cycle %v", got, err, c.cycle)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, c.want) {
				t.Errorf("ViaChain: got %v, %v; want %v", got, err, c.want)
			}
		})
	}
	boom := errors.New("boom")
	if _, err := ViaChain("web1", func(string) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Errorf("ViaChain with failing lookup: got %v; want boom", err)
	}
}

// TestResolveIdentitiesOnly: the inventory variable beats the defaults
// file, which beats the built-in "off"; a value that is not a boolean is
// an error naming the variable.
func TestResolveIdentitiesOnly(t *testing.T) {
	dir := t.TempDir()
	on := write(t, dir, "on/.opsmop/defaults.toml", "[ssh]\nidentities_only = true\n")
	df, _, err := LoadFrom(on, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		vars    map[string]any
		df      *File
		want    bool
		wantSrc string
		wantErr string
	}{
		{"builtin", nil, nil, false, SourceBuiltin, ""},
		{"defaults file", nil, df, true, on, ""},
		{"inventory beats the file", map[string]any{VarSSHIdentitiesOnly: false}, df, false, SourceInventory, ""},
		{"inventory", map[string]any{VarSSHIdentitiesOnly: true}, nil, true, SourceInventory, ""},
		{"not a boolean", map[string]any{VarSSHIdentitiesOnly: "yes"}, nil, false, "", VarSSHIdentitiesOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := Resolve(Inputs{Host: "h1", Vars: tc.vars, Defaults: tc.df, CurrentUser: "me", Getenv: func(string) string { return "" }})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v; want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.IdentitiesOnly != tc.want || st.Source["identities_only"] != tc.wantSrc {
				t.Errorf("got %v from %q; want %v from %q", st.IdentitiesOnly, st.Source["identities_only"], tc.want, tc.wantSrc)
			}
		})
	}
}
