package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// sshConfigPolicy writes one file on every host of the run.
const sshConfigPolicy = `
[[roles]]
name = "cfg"
groups = "all"
  [[roles.resources]]
  type = "file"
  path = "/srv/sshcfg"
  content = "reached {{ .host.name }}\n"
`

// TestLabSSHConfig reaches lab hosts named only in ~/.ssh/config (no
// opsmop_host, user, key or via in the inventory): aliases with HostName
// and Port, a two-hop ProxyJump chain whose jump connections are shared,
// -F FILE and -F none, `inventory --host` naming each setting's file:line,
// StrictHostKeyChecking accept-new recording (hashed) keys into the
// config's UserKnownHostsFile, and a changed key refused even with
// StrictHostKeyChecking no.
func TestLabSSHConfig(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 58, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"}, {Name: "b1", Group: "bastions"},
		{Name: "b2", Group: "bastions", Via: "b1"}, {Name: "db", Group: "db", Via: "b2"},
	}})
	labCfg, err := os.ReadFile(l.SSHConfig)
	if err != nil {
		t.Fatal(err)
	}
	env := labEnv(t, l, nil)
	// No known_hosts of opsmop's own: only the one the lab's config names.
	if err := os.Remove(filepath.Join(env.Home, ".ssh", "known_hosts")); err != nil {
		t.Fatal(err)
	}
	userCfg := filepath.Join(env.Home, ".ssh", "config")
	writeCfg := func(t *testing.T, text string) {
		t.Helper()
		if err := os.WriteFile(userCfg, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeCfg(t, string(labCfg))
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": sshConfigPolicy})
	policy := filepath.Join(dir, "site.toml")
	hosts := "web1,db,"

	t.Run("inventory --host names the config lines", func(t *testing.T) {
		code, out, errOut := opsmop(t, env, "inventory", "-i", hosts, "--host", "db")
		if code != exitOK {
			t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
		}
		db := l.Host("db")
		lines := configLines(t, labCfg)
		for _, want := range []string{
			fmt.Sprintf("address +%s +\\(ssh config %s:%d\\)", regexp.QuoteMeta(db.Addr), regexp.QuoteMeta(userCfg), lines["Host db"]+1),
			fmt.Sprintf("user +root +\\(ssh config %s:%d\\)", regexp.QuoteMeta(userCfg), lines["User root"]),
			`via +b1 -> b2 +\(ssh config ` + regexp.QuoteMeta(userCfg),
			`identities_only +true +\(ssh config `,
		} {
			if !regexp.MustCompile(want).MatchString(out) {
				t.Errorf("inventory --host db lacks /%s/:\n%s", want, out)
			}
		}
	})

	t.Run("apply through the chain, one connection per hop", func(t *testing.T) {
		before := sshConnectionsByHost(t, l)
		code, out, errOut := opsmop(t, env, "apply", policy, "-i", hosts)
		if code != exitOK {
			t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
		}
		after := sshConnectionsByHost(t, l)
		for _, name := range []string{"web1", "b1", "b2", "db"} {
			if d := after[name] - before[name]; d != 1 {
				t.Errorf("%s: %d SSH connections; want 1", name, d)
			}
		}
		for _, name := range []string{"web1", "db"} {
			got, err := l.Host(name).Exec(t.Context(), "cat /srv/sshcfg")
			if err != nil || string(got) != "reached "+name+"\n" {
				t.Errorf("%s: /srv/sshcfg = %q, %v; want reached %s", name, got, err, name)
			}
		}
		code, out, errOut = opsmop(t, env, "check", policy, "-i", hosts, "--detailed-exitcode")
		if code != exitOK {
			t.Fatalf("check after apply: exit %d; want clean\n%s\n%s", code, out, errOut)
		}
	})

	t.Run("-F FILE and -F none", func(t *testing.T) {
		other := labEnv(t, l, nil)
		code, out, errOut := opsmop(t, other, "check", policy, "-i", hosts, "-F", l.SSHConfig, "--detailed-exitcode")
		if code != exitOK {
			t.Fatalf("check -F %s: exit %d\n%s\n%s", l.SSHConfig, code, out, errOut)
		}
		code, out, errOut = opsmop(t, env, "check", policy, "-i", hosts, "-F", "none")
		if code == exitOK || !strings.Contains(out+errOut, "db") {
			t.Fatalf("check -F none: exit %d; want db unreachable (no config names it)\n%s\n%s", code, out, errOut)
		}
		code, _, errOut = opsmop(t, env, "check", policy, "-i", hosts, "-F", filepath.Join(dir, "missing"))
		if code != exitInvalid || !strings.Contains(errOut, "missing") {
			t.Fatalf("check -F missing: exit %d; want %d naming the file\n%s", code, exitInvalid, errOut)
		}
	})

	t.Run("accept-new records hashed keys; a changed key is refused", func(t *testing.T) {
		kh := filepath.Join(env.Home, ".ssh", "kh_new")
		cfg := "Host web1\n  UserKnownHostsFile " + kh + "\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n" + string(labCfg)
		writeCfg(t, cfg)
		defer writeCfg(t, string(labCfg))
		code, out, errOut := opsmop(t, env, "check", policy, "-i", "web1,", "--detailed-exitcode")
		if code != exitOK {
			t.Fatalf("check with accept-new: exit %d\n%s\n%s", code, out, errOut)
		}
		b, err := os.ReadFile(kh)
		if err != nil || !strings.HasPrefix(string(b), "|1|") || strings.Count(string(b), "\n") != 1 {
			t.Fatalf("%s: got %q, %v; want one hashed line", kh, b, err)
		}
		code, out, errOut = opsmop(t, env, "check", policy, "-i", "web1,", "--detailed-exitcode")
		if code != exitOK {
			t.Fatalf("second check: exit %d\n%s\n%s", code, out, errOut)
		}
		// Another host's key under web1's name: a changed key.
		wrong := l.Host("b1").HostKey
		if err := os.WriteFile(kh, []byte(knownHostsName(l.Host("web1"))+" "+wrong+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		writeCfg(t, strings.Replace(cfg, "accept-new", "no", 1))
		code, out, errOut = opsmop(t, env, "check", policy, "-i", "web1,")
		if code == exitOK || !strings.Contains(out+errOut, "HOST KEY CHANGED") {
			t.Fatalf("changed key with StrictHostKeyChecking no: exit %d; want refused (HOST KEY CHANGED)\n%s\n%s", code, out, errOut)
		}
	})
}

// configLines maps each line of an ssh config (trimmed) to its first line
// number.
func configLines(t *testing.T, cfg []byte) map[string]int {
	t.Helper()
	m := map[string]int{}
	for i, line := range strings.Split(string(cfg), "\n") {
		line = strings.TrimSpace(line)
		if _, ok := m[line]; !ok {
			m[line] = i + 1
		}
	}
	return m
}

// knownHostsName is h's name in known_hosts as its address and port.
func knownHostsName(h *lab.Host) string {
	if h.Port == 22 {
		return h.Addr
	}
	return fmt.Sprintf("[%s]:%d", h.Addr, h.Port)
}
