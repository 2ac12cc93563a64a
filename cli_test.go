package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/policy"
)

// TestOptionsLoginPrecedence: the command line's login overrides beat the
// role, the inventory and the defaults file for the hosts the command
// works on, and leave jump hosts alone.
func TestOptionsLoginPrecedence(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"inv.toml": `
[groups.web.hosts]
"web1" = "opsmop_ssh_username=alice opsmop_via=bastion opsmop_sudo=true"
"bastion" = "opsmop_ssh_username=jumper"
`,
	})
	f := false
	role := &policy.Role{Name: "r", SSHAs: &policy.Login{Username: "roleuser", PrivateKey: "/role/key"}, Sudo: &f}
	tests := []struct {
		name     string
		login    LoginOptions
		role     *policy.Role
		user     string
		userSrc  string
		key      string
		sudo     bool
		sudoUser string
		timeout  time.Duration
	}{
		{name: "no overrides, no role: inventory", user: "alice", userSrc: "inventory", sudo: true, sudoUser: "root", timeout: 10 * time.Second},
		{name: "no overrides: the role", role: role, user: "roleuser", userSrc: "role", key: "/role/key", timeout: 10 * time.Second},
		{name: "the command line beats the role", role: role,
			login: LoginOptions{User: "cli", PrivateKey: "/cli/key", ConnectTimeout: 3 * time.Second, Become: true, SudoUser: "app"},
			user:  "cli", userSrc: "command line", key: "/cli/key", sudo: true, sudoUser: "app", timeout: 3 * time.Second},
		{name: "--sudo-user without -b keeps the role's sudo off", role: role, login: LoginOptions{SudoUser: "app"},
			user: "roleuser", userSrc: "role", key: "/role/key", sudoUser: "app", timeout: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, _ := testEnv(t, nil)
			s, err := load(context.Background(), env, loadOptions{Command: "check", Inventory: filepath.Join(dir, "inv.toml"), Login: tt.login})
			if err != nil {
				t.Fatal(err)
			}
			hc, err := s.resolve(tt.role, "web1")
			if err != nil {
				t.Fatal(err)
			}
			st := hc.settings
			if st.User != tt.user || st.Source["user"] != tt.userSrc || st.PrivateKey != tt.key || st.Sudo != tt.sudo || st.SudoUser != tt.sudoUser || st.ConnectTimeout != tt.timeout {
				t.Errorf("got user %q (%s), key %q, sudo %v as %q, timeout %v; want %q (%s), %q, %v as %q, %v",
					st.User, st.Source["user"], st.PrivateKey, st.Sudo, st.SudoUser, st.ConnectTimeout,
					tt.user, tt.userSrc, tt.key, tt.sudo, tt.sudoUser, tt.timeout)
			}
			if hc.target.Via == nil || hc.target.Via.User != "jumper" {
				t.Errorf("jump host target %+v; want user jumper (the overrides are not for jump hosts)", hc.target.Via)
			}
		})
	}
}

// TestRunListConnectsNothing: --list-hosts and --list-resources exit 0 at
// once although every host is unreachable (a closed port, an address that
// does not answer): they connect to nothing.
func TestRunListConnectsNothing(t *testing.T) {
	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"inv.toml": `
[groups.web.hosts]
"closed" = "opsmop_host=127.0.0.1 opsmop_port=1"
"silent" = "opsmop_host=10.255.255.1 opsmop_port=22"
`,
		"site.toml": `
inventory = "inv.toml"
[[roles]]
name = "web"
  [[roles.resources]]
  type = "shell"
  cmd = "uptime"
`,
	})
	for _, args := range [][]string{
		{"check", "--list-hosts"},
		{"apply", "--list-resources"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			env, stdout, stderr := testEnv(t, nil)
			start := time.Now()
			code := run(context.Background(), append([]string{"opsmop"}, append(args, filepath.Join(dir, "site.toml"))...), env)
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("took %v; want an immediate answer (no connection)", d)
			}
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q; want 0", code, stderr)
			}
			for _, h := range []string{"closed", "silent"} {
				if !strings.Contains(stdout.String(), h) {
					t.Errorf("stdout %q does not name host %s", stdout, h)
				}
			}
		})
	}
}

// TestRunCompletionParses: `opsmop completion SHELL` prints a script the
// shell parses (bash must be installed; zsh and fish are checked when
// they are), and the bash script completes commands, flags and the
// shells of completion.
func TestRunCompletionParses(t *testing.T) {
	tests := []struct {
		shell string
		check []string // the syntax check: the program and its flag
	}{
		{"bash", []string{"bash", "-n"}},
		{"zsh", []string{"zsh", "-n"}},
		{"fish", []string{"fish", "-n"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			env, stdout, stderr := testEnv(t, nil)
			if code := run(context.Background(), []string{"opsmop", "completion", tt.shell}, env); code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			path, err := exec.LookPath(tt.check[0])
			if err != nil {
				if tt.shell == "bash" || os.Getenv("CI") == "true" {
					t.Fatalf("%s is needed to check its completion script (CI installs it: .ci/deps): %v", tt.shell, err)
				}
				t.Skipf("%s is not installed: its completion script is not checked (not under CI)", tt.shell)
			}
			file := filepath.Join(t.TempDir(), "opsmop."+tt.shell)
			if err := os.WriteFile(file, stdout.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(path, tt.check[1], file).CombinedOutput(); err != nil {
				t.Fatalf("%s %s: %v\n%s\nscript:\n%s", tt.check[0], tt.check[1], err, out, stdout)
			}
		})
	}

	env, stdout, _ := testEnv(t, nil)
	if code := run(context.Background(), []string{"opsmop", "completion", "bash"}, env); code != exitOK {
		t.Fatal("completion bash failed")
	}
	file := filepath.Join(t.TempDir(), "opsmop.bash")
	if err := os.WriteFile(file, stdout.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := []struct {
		line string // the words typed, the last one being completed
		want []string
	}{
		{"opsmop ch", []string{"check"}},
		{"opsmop check --list-h", []string{"--list-hosts"}},
		{"opsmop run --bec", []string{"--become", "--become-user"}},
		{"opsmop completion f", []string{"fish"}},
		{"opsmop help inv", []string{"inventory"}},
	}
	for _, tt := range complete {
		t.Run("bash: "+tt.line, func(t *testing.T) {
			words := strings.Fields(tt.line)
			script := fmt.Sprintf("source %s\nCOMP_WORDS=(%s)\nCOMP_CWORD=%d\n_opsmop\nprintf '%%s\\n' \"${COMPREPLY[@]}\"\n",
				shSingle(file), strings.Join(words, " "), len(words)-1)
			out, err := exec.Command("bash", "-c", script).CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			if got := strings.Fields(string(out)); !slices.Equal(got, tt.want) {
				t.Errorf("completing %q: got %q; want %q", tt.line, got, tt.want)
			}
		})
	}
}

// TestRunVersionText: the version names the release, the commit (short,
// and whether the tree was modified) and the Go version.
func TestRunVersionText(t *testing.T) {
	plat := runtime.GOOS + "/" + runtime.GOARCH
	tests := []struct {
		name string
		bi   *debug.BuildInfo
		want string
	}{
		{"no build info", nil, "0.1.0 (commit unknown; " + runtime.Version() + " " + plat + ")"},
		{"no VCS info", &debug.BuildInfo{GoVersion: "go1.26.1"}, "0.1.0 (commit unknown; go1.26.1 " + plat + ")"},
		{"clean commit", &debug.BuildInfo{GoVersion: "go1.26.1", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "false"}}},
			"0.1.0 (commit 0123456789ab; go1.26.1 " + plat + ")"},
		{"modified tree", &debug.BuildInfo{GoVersion: "go1.26.1", Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"}, {Key: "vcs.modified", Value: "true"}}},
			"0.1.0 (commit 0123456789ab, modified; go1.26.1 " + plat + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := versionText(tt.bi); got != tt.want {
				t.Errorf("versionText = %q; want %q", got, tt.want)
			}
		})
	}
}

// TestFlagEnvVars: OPSMOP_INVENTORY, OPSMOP_LIMIT, OPSMOP_FORKS,
// OPSMOP_USER and OPSMOP_PRIVATE_KEY give their flags' values when the
// command line does not; the command line wins; an empty variable is
// unset; a variable is not applied where its flag would be refused.
func TestFlagEnvVars(t *testing.T) {
	all := map[string]string{
		"OPSMOP_INVENTORY": "env.toml", "OPSMOP_LIMIT": "web*", "OPSMOP_FORKS": "7",
		"OPSMOP_USER": "envuser", "OPSMOP_PRIVATE_KEY": "/env/key",
	}
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		parse   func(*cli.Context) (any, error)
		want    any
		wantErr string
	}{
		{
			name: "check from the environment", vars: all,
			args: []string{"check", "site.toml"}, parse: parseWith(checkOptions),
			want: RunOptions{Check: true, Policy: "site.toml", Inventory: "env.toml", Limit: "web*", Forks: 7,
				Login: LoginOptions{User: "envuser", PrivateKey: "/env/key", UserFromEnv: true, PrivateKeyFromEnv: true}},
		},
		{
			name: "the command line beats the environment", vars: all,
			args:  []string{"apply", "site.toml", "-i", "cli.toml", "-l", "db", "-f", "2", "-u", "cliuser", "--private-key", "/cli/key"},
			parse: parseWith(applyOptions),
			want: RunOptions{Policy: "site.toml", Inventory: "cli.toml", Limit: "db", Forks: 2,
				Login: LoginOptions{User: "cliuser", PrivateKey: "/cli/key"}},
		},
		{
			name: "empty variables are unset", vars: map[string]string{"OPSMOP_USER": "", "OPSMOP_FORKS": ""},
			args: []string{"run", "-i", "inv.toml", "--", "id"}, parse: parseWith(adhocOptions),
			want: AdhocOptions{Inventory: "inv.toml", Command: []string{"id"}},
		},
		{
			name: "--list-hosts does not take the run's variables", vars: all,
			args: []string{"check", "site.toml", "--list-hosts"}, parse: parseWith(checkOptions),
			want: RunOptions{Check: true, Policy: "site.toml", Inventory: "env.toml", Limit: "web*", ListHosts: true},
		},
		{
			name: "inventory --host does not take OPSMOP_LIMIT", vars: all,
			args: []string{"inventory", "--host", "h"}, parse: parseWith(inventoryOptions),
			want: InventoryOptions{Inventory: "env.toml", Host: "h", HostGiven: true,
				Login: LoginOptions{User: "envuser", PrivateKey: "/env/key", UserFromEnv: true, PrivateKeyFromEnv: true}},
		},
		{
			name: "inventory without --host does not take the login variables", vars: all,
			args: []string{"inventory"}, parse: parseWith(inventoryOptions),
			want: InventoryOptions{Inventory: "env.toml", Limit: "web*", LimitGiven: true},
		},
		{
			name: "--local does not take the login variables", vars: all,
			args: []string{"facts", "--local"}, parse: parseWith(factsOptions),
			want: FactsOptions{Hosts: []string{}, Inventory: "env.toml", Limit: "web*", Local: true},
		},
		{
			name: "a bad OPSMOP_FORKS", vars: map[string]string{"OPSMOP_FORKS": "many"},
			args: []string{"run", "-i", "x,", "--", "id"}, parse: parseWith(adhocOptions),
			wantErr: `error: run: environment variable OPSMOP_FORKS="many" is not a valid --forks`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, stderr := testEnv(t, tt.vars)
			app := newApp(env)
			cmd := app.Command(tt.args[0])
			var got any
			cmd.Action = action(env, func(c *cli.Context) (any, error) { return tt.parse(c) }, func(_ context.Context, _ Env, o any) error {
				got = o
				return nil
			})
			code := runApp(context.Background(), app, append([]string{"opsmop"}, tt.args...), env)
			if tt.wantErr != "" {
				if code != exitInvalid || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, stderr, exitInvalid, tt.wantErr)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got options\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// TestRunManPage: opsmop man prints a manual page in section 1 that names
// every command, and groff reads it without a warning.
func TestRunManPage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	env := Env{Stdout: &stdout, Stderr: &stderr, Home: t.TempDir(), EtcDefaults: filepath.Join(t.TempDir(), "none.toml"), EtcSSHConfig: filepath.Join(t.TempDir(), "none.toml") + ".no-ssh-config", Getenv: func(string) string { return "" }}
	if code := run(context.Background(), []string{"opsmop", "man"}, env); code != exitOK {
		t.Fatalf("opsmop man: exit %d, stderr %q", code, stderr.String())
	}
	page := stdout.String()
	if !strings.Contains(page, ".TH opsmop 1") {
		t.Errorf("man page: got %.80q...; want section 1 (.TH opsmop 1)", page)
	}
	for _, cmd := range newApp(env).Commands {
		if !strings.Contains(page, cmd.Name) {
			t.Errorf("man page does not name the command %s", cmd.Name)
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("groff is needed to check the manual page under CI (.ci/deps installs it): %v", err)
		}
		t.Skip("groff is not installed: the manual page is not rendered (not under CI)")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	cmd.Stdin = strings.NewReader(page)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("groff -man -ww: %v\n%s", err, out)
	}
}
