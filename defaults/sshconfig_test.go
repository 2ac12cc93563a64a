package defaults

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/sshconfig"
)

// testSSHConfig is the ssh config of TestResolveSSHConfig; its line
// numbers are part of the expectations.
const testSSHConfig = `Host web-a
  HostName 10.0.0.5
  User cfguser
  Port 2200
  IdentityFile ~/.ssh/web_%r
  IdentityFile ~/.ssh/other
  CertificateFile ~/.ssh/web-cert.pub
  IdentitiesOnly yes
  IdentityAgent none
  ProxyJump jumper@bastion:2222,inner
  UserKnownHostsFile ~/.ssh/kh_web
  StrictHostKeyChecking accept-new
  ConnectTimeout 7
  ServerAliveInterval 5
  ServerAliveCountMax 2
  HashKnownHosts yes
  AddressFamily inet
  PasswordAuthentication no
Host proxied
  ProxyCommand nc %h %p
Host *
  User star
`

// TestResolveSSHConfig checks where the ssh config sits in the precedence:
// below every opsmop level (command line, role, inventory, defaults
// file), above the built-in values, looked up under the address opsmop
// would dial (opsmop_host, else the inventory name), with each value's
// source naming its file:line.
func TestResolveSSHConfig(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, ".ssh", "config")
	if err := os.MkdirAll(filepath.Dir(cfgPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, []byte(testSSHConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := sshconfig.Load([]sshconfig.Source{{Path: cfgPath}}, home)
	if err != nil {
		t.Fatal(err)
	}
	at := func(line int) string { return "ssh config " + cfgPath + ":" + strconv.Itoa(line) }
	resolve := func(t *testing.T, host string, vars map[string]any, mod func(*Inputs)) Settings {
		t.Helper()
		in := Inputs{Host: host, Vars: vars, CurrentUser: "me", Home: home, SSHConfig: cfg, Getenv: func(string) string { return "" }}
		if mod != nil {
			mod(&in)
		}
		st, err := Resolve(in)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	t.Run("config fills what opsmop leaves to its built-ins", func(t *testing.T) {
		st := resolve(t, "web-a", nil, nil)
		checks := []struct {
			key, got, want, src string
		}{
			{"address", st.Address, "10.0.0.5", at(2)},
			{"user", st.User, "cfguser", at(3)},
			{"port", strconv.Itoa(st.Port), "2200", at(4)},
			{"identities_only", strconv.FormatBool(st.IdentitiesOnly), "true", at(8)},
			{keyIdentityAgent, st.IdentityAgent, "none", at(9)},
			{"via", st.ProxyJumpAt, at(10), at(10)},
			{keyAcceptNew, strconv.FormatBool(st.AcceptNewHostKeys), "true", at(12)},
			{"connect_timeout", st.ConnectTimeout.String(), "7s", at(13)},
			{keyKeepalive, st.Keepalive.String(), "5s", at(14)},
			{keyKeepaliveMax, strconv.Itoa(st.KeepaliveMax), "2", at(15)},
			{keyHashKnownHosts, strconv.FormatBool(st.HashKnownHosts), "true", at(16)},
			{keyAddressFamily, st.AddressFamily, "inet", at(17)},
			{keyAuthMethods, st.authMethods(), "publickey, keyboard-interactive", at(18)},
		}
		for _, c := range checks {
			if c.got != c.want || st.Source[c.key] != c.src {
				t.Errorf("%s: got %q from %q; want %q from %q", c.key, c.got, st.Source[c.key], c.want, c.src)
			}
		}
		// %r is the user ssh would log in as: the config's own User.
		wantKeys := []string{filepath.Join(home, ".ssh", "web_cfguser"), filepath.Join(home, ".ssh", "other")}
		if !reflect.DeepEqual(st.IdentityFiles, wantKeys) {
			t.Errorf("identity files: got %q; want %q", st.IdentityFiles, wantKeys)
		}
		if want := []string{filepath.Join(home, ".ssh", "web-cert.pub")}; !reflect.DeepEqual(st.CertificateFiles, want) {
			t.Errorf("certificate files: got %q; want %q", st.CertificateFiles, want)
		}
		if want := []string{filepath.Join(home, ".ssh", "kh_web")}; !st.KnownHostsFilesSet || !reflect.DeepEqual(st.KnownHostsFiles, want) {
			t.Errorf("known hosts: got %q (set %v); want %q", st.KnownHostsFiles, st.KnownHostsFilesSet, want)
		}
		if want := []Jump{{Host: "bastion", User: "jumper", Port: 2222}, {Host: "inner"}}; !reflect.DeepEqual(st.ProxyJump, want) {
			t.Errorf("proxy jump: got %+v; want %+v", st.ProxyJump, want)
		}
		if st.PrivateKey != "" {
			t.Errorf("private key: got %q; want none (the config's files are identity_files)", st.PrivateKey)
		}
	})

	t.Run("every opsmop level beats the config", func(t *testing.T) {
		tests := []struct {
			name     string
			vars     map[string]any
			mod      func(*Inputs)
			key      string
			get      func(Settings) string
			want     string
			wantFrom string
		}{
			{"command line user", nil, func(in *Inputs) { in.CommandLine.SSHUser = "cli" }, "user", func(s Settings) string { return s.User }, "cli", SourceCommandLine},
			{"role user", nil, func(in *Inputs) { in.Role.SSHUser = "roleu" }, "user", func(s Settings) string { return s.User }, "roleu", SourceRole},
			{"inventory user", map[string]any{VarSSHUsername: "invu"}, nil, "user", func(s Settings) string { return s.User }, "invu", SourceInventory},
			{"defaults file user", nil, func(in *Inputs) { in.Defaults = &File{Path: "d.toml", SSH: SSH{Username: "dfu"}} }, "user", func(s Settings) string { return s.User }, "dfu", "d.toml"},
			{"inventory port", map[string]any{VarPort: 22}, nil, "port", func(s Settings) string { return strconv.Itoa(s.Port) }, "22", SourceInventory},
			{"defaults file port", nil, func(in *Inputs) { in.Defaults = &File{Path: "d.toml", SSH: SSH{Port: 2022}} }, "port", func(s Settings) string { return strconv.Itoa(s.Port) }, "2022", "d.toml"},
			{"inventory identities_only", map[string]any{VarSSHIdentitiesOnly: false}, nil, "identities_only", func(s Settings) string { return strconv.FormatBool(s.IdentitiesOnly) }, "false", SourceInventory},
			{"command line timeout", nil, func(in *Inputs) { in.CommandLine.ConnectTimeout = 3 * time.Second }, "connect_timeout", func(s Settings) string { return s.ConnectTimeout.String() }, "3s", SourceCommandLine},
			{"inventory via", map[string]any{VarVia: "gw"}, nil, "via", func(s Settings) string { return s.Via + jumps(s.ProxyJump) }, "gw", SourceInventory},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				st := resolve(t, "web-a", tc.vars, tc.mod)
				if got := tc.get(st); got != tc.want || st.Source[tc.key] != tc.wantFrom {
					t.Errorf("%s: got %q from %q; want %q from %q", tc.key, got, st.Source[tc.key], tc.want, tc.wantFrom)
				}
			})
		}
	})

	t.Run("explicit user is %r", func(t *testing.T) {
		st := resolve(t, "web-a", map[string]any{VarSSHUsername: "deploy"}, nil)
		if want := filepath.Join(home, ".ssh", "web_deploy"); len(st.IdentityFiles) == 0 || st.IdentityFiles[0] != want {
			t.Errorf("identity files: got %q; want %q first", st.IdentityFiles, want)
		}
	})

	t.Run("looked up under opsmop_host", func(t *testing.T) {
		st := resolve(t, "db", map[string]any{VarHost: "web-a"}, nil)
		if st.Address != "10.0.0.5" || st.Source["address"] != at(2) {
			t.Errorf("address: got %q from %q; want 10.0.0.5 from %s", st.Address, st.Source["address"], at(2))
		}
		st = resolve(t, "web-a", map[string]any{VarHost: "192.0.2.9"}, nil)
		if st.Address != "192.0.2.9" || st.User != "star" {
			t.Errorf("opsmop_host 192.0.2.9: got address %q user %q; want 192.0.2.9 and the Host * user star", st.Address, st.User)
		}
	})

	t.Run("a ProxyJump hop's user and port win", func(t *testing.T) {
		st := resolve(t, "web-a", map[string]any{VarSSHUsername: "inv", VarPort: 22}, func(in *Inputs) {
			in.Jump = &JumpSpec{User: "hopper", Port: 2022, At: "PJ"}
		})
		if st.User != "hopper" || st.Port != 2022 || st.Source["user"] != "PJ" || st.Source["port"] != "PJ" {
			t.Errorf("got %s@:%d from %q/%q; want hopper@:2022 from PJ", st.User, st.Port, st.Source["user"], st.Source["port"])
		}
	})

	t.Run("local connection reads no ssh config", func(t *testing.T) {
		st := resolve(t, "web-a", map[string]any{VarConnection: ConnectionLocal}, nil)
		if st.Address != "web-a" || st.User != "me" {
			t.Errorf("got address %q user %q; want web-a and me", st.Address, st.User)
		}
	})

	t.Run("unsupported directive fails the host with its line", func(t *testing.T) {
		_, err := Resolve(Inputs{Host: "proxied", CurrentUser: "me", Home: home, SSHConfig: cfg})
		if err == nil || !strings.Contains(err.Error(), cfgPath+":20") || !strings.Contains(err.Error(), "ProxyCommand") || !strings.HasPrefix(err.Error(), "host proxied: ") {
			t.Fatalf("got %v; want host proxied: ... %s:20 ... ProxyCommand", err, cfgPath)
		}
		// opsmop_via replaces the config's jump: ProxyCommand is not consulted.
		if _, err := Resolve(Inputs{Host: "proxied", Vars: map[string]any{VarVia: "gw"}, CurrentUser: "me", Home: home, SSHConfig: cfg}); err != nil {
			t.Fatalf("with opsmop_via: got %v; want no error", err)
		}
	})
}

func jumps(js []Jump) string {
	var s []string
	for _, j := range js {
		s = append(s, j.Host)
	}
	return strings.Join(s, ",")
}

// TestResolveSSHConfigAgentVariable checks that IdentityAgent
// SSH_AUTH_SOCK means the agent of $SSH_AUTH_SOCK (Settings.IdentityAgent
// ""), not a socket named SSH_AUTH_SOCK.
func TestResolveSSHConfigAgentVariable(t *testing.T) {
	home := t.TempDir()
	cfgPath := filepath.Join(home, "config")
	if err := os.WriteFile(cfgPath, []byte("Host *\n  IdentityAgent SSH_AUTH_SOCK\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := sshconfig.Load([]sshconfig.Source{{Path: cfgPath}}, home)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Resolve(Inputs{Host: "h", CurrentUser: "me", Home: home, SSHConfig: cfg, Getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if st.IdentityAgent != "" || st.Source[keyIdentityAgent] != "ssh config "+cfgPath+":2" {
		t.Errorf("got agent %q from %q; want \"\" ($SSH_AUTH_SOCK) from %s:2", st.IdentityAgent, st.Source[keyIdentityAgent], cfgPath)
	}
}
