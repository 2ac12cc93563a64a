package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/inventory"
	"github.com/opsmop/opsmop/policy"
)

// testEnv is an Env with its own home, no /etc defaults, no environment
// variables but vars, and buffers for stdout and stderr.
func testEnv(t *testing.T, vars map[string]string) (Env, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	return Env{
		Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr,
		Getenv:      func(k string) string { return vars[k] },
		Home:        t.TempDir(),
		EtcDefaults: filepath.Join(t.TempDir(), "none.toml"), EtcSSHConfig: filepath.Join(t.TempDir(), "none.toml") + ".no-ssh-config",
	}, &stdout, &stderr
}

// parseWith adapts a command's flag layer to return its options as any.
func parseWith[O any](f func(*cli.Context) (O, error)) func(*cli.Context) (any, error) {
	return func(c *cli.Context) (any, error) { return f(c) }
}

// TestFlagLayerFillsOptions runs the app on a command line with the
// command's run function replaced, and checks the options its flag layer
// made, or the error it gave. Nothing here reads a file or contacts a
// host: the flag layer only parses.
func TestFlagLayerFillsOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		parse   func(*cli.Context) (any, error)
		want    any
		wantErr string // a part of stderr; the exit code is then exitInvalid
	}{
		{
			name: "check, every flag after the policy",
			args: []string{"check", "site.toml", "-l", "web,!db", "-i", "inv.toml", "-f", "3", "--json",
				"-e", "a=1", "-e", "servers=x,y", "-k", "-K", "--local", "-v", "-t", "a, b,", "--skip-tags", "c",
				"--accept-new-host-keys", "--retry-failed", "--detailed-exitcode", "--force-handlers"},
			parse: parseWith(checkOptions),
			want: RunOptions{
				Check: true, Policy: "site.toml", Inventory: "inv.toml", Limit: "web,!db", Forks: 3, JSON: true,
				ExtraVars: []string{"a=1", "servers=x,y"}, AskPass: true, AskSudoPass: true, Local: true, Verbose: true,
				Tags: []string{"a", "b"}, SkipTags: []string{"c"}, AcceptNewHostKeys: true, RetryFailed: true, DetailedExitcode: true,
				ForceHandlers: true,
			},
		},
		{
			name:  "apply --force-handlers",
			args:  []string{"apply", "site.toml", "--force-handlers"},
			parse: parseWith(applyOptions),
			want:  RunOptions{Policy: "site.toml", ForceHandlers: true},
		},
		{
			name:    "--force-handlers with --list-hosts would be ignored",
			args:    []string{"apply", "site.toml", "--list-hosts", "--force-handlers"},
			parse:   parseWith(applyOptions),
			wantErr: "error: apply: --list-hosts connects to nothing and runs nothing, so --force-handlers would be ignored: drop --force-handlers",
		},
		{
			name:  "apply, flags before the policy",
			args:  []string{"apply", "-l", "web", "--forks", "7", "site.yaml"},
			parse: parseWith(applyOptions),
			want:  RunOptions{Policy: "site.yaml", Limit: "web", Forks: 7},
		},
		{
			name:  "check without a policy leaves it to the run function",
			args:  []string{"check", "--local"},
			parse: parseWith(checkOptions),
			want:  RunOptions{Check: true, Local: true},
		},
		{
			name:    "check with two policies",
			args:    []string{"check", "a.toml", "b.toml"},
			parse:   parseWith(checkOptions),
			wantErr: `error: check: unexpected arguments ["b.toml"] after the policy a.toml`,
		},
		{
			name:    "apply given an inventory as the policy",
			args:    []string{"apply", "hosts.ini"},
			parse:   parseWith(applyOptions),
			wantErr: "error: apply: hosts.ini is not a policy file",
		},
		{
			name:  "validate",
			args:  []string{"validate", "site.toml", "-i", "inv.toml", "-e", `{"port": 80}`},
			parse: parseWith(validateOptions),
			want:  ValidateOptions{Policy: "site.toml", Inventory: "inv.toml", ExtraVars: []string{`{"port": 80}`}},
		},
		{
			name:    "validate without a policy",
			args:    []string{"validate", "-i", "inv.toml"},
			parse:   parseWith(validateOptions),
			wantErr: "error: missing POLICY argument: opsmop validate POLICY",
		},
		{
			name:  "inventory --list is --json",
			args:  []string{"inventory", "-i", "inv.toml", "--list"},
			parse: parseWith(inventoryOptions),
			want:  InventoryOptions{Inventory: "inv.toml", JSON: true},
		},
		{
			name:  "inventory with empty --host and --limit still gives them",
			args:  []string{"inventory", "site.toml", "--host", "", "-l", ""},
			parse: parseWith(inventoryOptions),
			want:  InventoryOptions{Policy: "site.toml", HostGiven: true, LimitGiven: true},
		},
		{
			name:  "facts with a policy and hosts",
			args:  []string{"facts", "site.toml", "web1", "web2", "-l", "web", "--json", "--local", "-k", "--accept-new-host-keys"},
			parse: parseWith(factsOptions),
			want: FactsOptions{Policy: "site.toml", Hosts: []string{"web1", "web2"}, Limit: "web", JSON: true,
				Local: true, AskPass: true, AcceptNewHostKeys: true},
		},
		{
			name:  "facts with hosts only",
			args:  []string{"facts", "-i", "inv.toml", "web1"},
			parse: parseWith(factsOptions),
			want:  FactsOptions{Hosts: []string{"web1"}, Inventory: "inv.toml"},
		},
		{
			name: "run with a policy and --",
			args: []string{"run", "site.toml", "-s", "-f", "4", "-e", "x=1", "-k", "-K", "--json", "--local",
				"--accept-new-host-keys", "--", "ls", "-l", "/"},
			parse: parseWith(adhocOptions),
			want: AdhocOptions{Policy: "site.toml", Command: []string{"ls", "-l", "/"}, Login: LoginOptions{Become: true}, Forks: 4,
				ExtraVars: []string{"x=1"}, AskPass: true, AskSudoPass: true, JSON: true, Local: true, AcceptNewHostKeys: true},
		},
		{
			name:  "check with every login override",
			args:  []string{"check", "site.toml", "-u", "deploy", "--private-key", "~/.ssh/k", "-T", "5", "-b", "--sudo-user", "app"},
			parse: parseWith(checkOptions),
			want: RunOptions{Check: true, Policy: "site.toml", Login: LoginOptions{User: "deploy", PrivateKey: "~/.ssh/k",
				ConnectTimeout: 5 * time.Second, Become: true, SudoUser: "app"}},
		},
		{
			name:  "apply with long login overrides and --become-user",
			args:  []string{"apply", "--user", "deploy", "--timeout", "30", "--become", "--become-user", "app", "site.toml"},
			parse: parseWith(applyOptions),
			want:  RunOptions{Policy: "site.toml", Login: LoginOptions{User: "deploy", ConnectTimeout: 30 * time.Second, Become: true, SudoUser: "app"}},
		},
		{
			name:  "run: -b and --become are --sudo",
			args:  []string{"run", "-i", "inv.toml", "--become", "-u", "ops", "--", "id"},
			parse: parseWith(adhocOptions),
			want:  AdhocOptions{Inventory: "inv.toml", Command: []string{"id"}, Login: LoginOptions{Become: true, User: "ops"}},
		},
		{
			name:  "facts with login overrides",
			args:  []string{"facts", "-i", "inv.toml", "-u", "ops", "-b", "--become-user", "root", "-T", "2"},
			parse: parseWith(factsOptions),
			want:  FactsOptions{Hosts: []string{}, Inventory: "inv.toml", Login: LoginOptions{User: "ops", Become: true, SudoUser: "root", ConnectTimeout: 2 * time.Second}},
		},
		{
			name:  "inventory --host with login overrides",
			args:  []string{"inventory", "-i", "inv.toml", "--host", "h", "-u", "ops", "--private-key", "k"},
			parse: parseWith(inventoryOptions),
			want:  InventoryOptions{Inventory: "inv.toml", Host: "h", HostGiven: true, Login: LoginOptions{User: "ops", PrivateKey: "k"}},
		},
		{
			name:    "a zero --timeout",
			args:    []string{"check", "site.toml", "-T", "0"},
			parse:   parseWith(checkOptions),
			wantErr: "error: check: --timeout must be a positive number of seconds",
		},
		{
			name:    "-u with --local",
			args:    []string{"run", "--local", "-u", "x", "--", "id"},
			parse:   parseWith(adhocOptions),
			wantErr: "error: run: --local uses no SSH, so --user would be ignored",
		},
		{
			name:    "an empty --user",
			args:    []string{"apply", "site.toml", "-u", ""},
			parse:   parseWith(applyOptions),
			wantErr: "error: apply: --user is empty",
		},
		{
			name:  "run without --: every argument is the command",
			args:  []string{"run", "-i", "inv.toml", "echo", "hi"},
			parse: parseWith(adhocOptions),
			want:  AdhocOptions{Inventory: "inv.toml", Command: []string{"echo", "hi"}},
		},
		{
			name:  "run without --: the words after a policy are the command",
			args:  []string{"run", "site.toml", "uptime"},
			parse: parseWith(adhocOptions),
			want:  AdhocOptions{Policy: "site.toml", Command: []string{"uptime"}},
		},
		{
			name:    "run without a command",
			args:    []string{"run", "-i", "inv.toml"},
			parse:   parseWith(adhocOptions),
			wantErr: "error: missing command: opsmop run",
		},
		{
			name:    "run with two policies",
			args:    []string{"run", "a.toml", "b.toml", "--", "true"},
			parse:   parseWith(adhocOptions),
			wantErr: `error: unexpected arguments ["b.toml"] before --`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, _, stderr := testEnv(t, nil)
			app := newApp(env)
			cmd := app.Command(tt.args[0])
			if cmd == nil {
				t.Fatalf("no command %q", tt.args[0])
			}
			var got any
			ran := false
			cmd.Action = func(c *cli.Context) error {
				ran = true
				var err error
				got, err = tt.parse(c)
				return err
			}
			code := runApp(context.Background(), app, append([]string{"opsmop"}, tt.args...), env)
			if !ran {
				t.Fatalf("the command did not run: exit %d, stderr %q", code, stderr.String())
			}
			if tt.wantErr != "" {
				if code != exitInvalid || !strings.Contains(stderr.String(), tt.wantErr) {
					t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, stderr.String(), exitInvalid, tt.wantErr)
				}
				return
			}
			if code != exitOK {
				t.Fatalf("got exit %d, stderr %q; want %d", code, stderr.String(), exitOK)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got options\n%#v\nwant\n%#v", got, tt.want)
			}
		})
	}
}

// TestFlagForksDefaultShownOnce: the help of check, apply and run shows
// the default of --forks once, the one that applies.
func TestFlagForksDefaultShownOnce(t *testing.T) {
	for _, name := range []string{"check", "apply", "run"} {
		t.Run(name, func(t *testing.T) {
			env, stdout, stderr := testEnv(t, nil)
			if code := run(context.Background(), []string{"opsmop", name, "--help"}, env); code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var line string
			for _, l := range strings.Split(stdout.String(), "\n") {
				if strings.Contains(l, "--forks") {
					line = l
				}
			}
			if got, want := strings.Count(line, "(default:"), 1; got != want || !strings.HasSuffix(line, "(default: tuning.forks, else 20)") {
				t.Errorf("got --forks help %q; want one default, (default: tuning.forks, else 20), at its end", line)
			}
		})
	}
}

// TestArgsReorder: reorderArgs moves positional arguments after the
// command's flags, keeping a value with the flag that takes it (as the
// command defines it) and leaving everything after -- alone.
func TestArgsReorder(t *testing.T) {
	tests := []struct {
		name string
		args string
		want string
	}{
		{"flags after the policy", "opsmop apply site.toml --limit web* -v", "opsmop apply --limit web* -v -- site.toml"},
		{"short value flag", "opsmop check site.toml -f 3 --json", "opsmop check -f 3 --json -- site.toml"},
		{"flag=value keeps the next word positional", "opsmop check --limit=web site.toml", "opsmop check --limit=web -- site.toml"},
		{"bool flag takes no value", "opsmop check --local site.toml", "opsmop check --local -- site.toml"},
		{"--host is a value flag of inventory", "opsmop inventory --host web1 site.toml", "opsmop inventory --host web1 -- site.toml"},
		{"-s of run is a bool", "opsmop run -s site.toml -- id", "opsmop run -s -- site.toml -- id"},
		{"-T takes a value, -b does not", "opsmop check site.toml -T 5 -b -u ops", "opsmop check -T 5 -b -u ops -- site.toml"},
		{"--become-user takes a value", "opsmop apply --become-user app site.toml", "opsmop apply --become-user app -- site.toml"},
		{"after -- nothing moves", "opsmop run -i inv.toml -- ls -l", "opsmop run -i inv.toml -- ls -l"},
		{"global flags stay before the command", "opsmop --help check", "opsmop --help check"},
		{"no command", "opsmop --version", "opsmop --version"},
		{"unknown command: no value flags", "opsmop bogus -i x y", "opsmop bogus -i -- x y"},
	}
	app := newApp(Env{Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Join(reorderArgs(app, strings.Fields(tt.args)), " ")
			if got != tt.want {
				t.Errorf("reorderArgs(%q) = %q; want %q", tt.args, got, tt.want)
			}
		})
	}
}

// TestRunFunctionsWithOptions calls each command's run function with
// options built by hand, without the flag layer, on this machine.
func TestRunFunctionsWithOptions(t *testing.T) {
	dir := t.TempDir()
	root := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{
		"site.toml": `
inventory = "inv.toml"
[[roles]]
name = "r"
  [[roles.resources]]
  type = "directory"
  path = "{{ .root }}/d"
`,
		"inv.toml": `
[groups.web]
hosts = ["localhost"]
[hosts.localhost.vars]
opsmop_connection = "local"
`,
	})
	pol := filepath.Join(dir, "site.toml")
	inv := filepath.Join(dir, "inv.toml")
	tests := []struct {
		name     string
		run      func(ctx context.Context, env Env) error
		wantCode int
		stdout   func(t *testing.T, out string)
	}{
		{
			name: "validate",
			run: func(ctx context.Context, env Env) error {
				return runValidate(ctx, env, ValidateOptions{Policy: pol, ExtraVars: []string{"root=" + root}})
			},
			stdout: func(t *testing.T, out string) {
				if want := pol + ": ok (1 roles)\n"; out != want {
					t.Errorf("got stdout %q; want %q", out, want)
				}
			},
		},
		{
			name: "inventory",
			run: func(ctx context.Context, env Env) error {
				return runInventory(ctx, env, InventoryOptions{Inventory: inv, Limit: "web"})
			},
			stdout: func(t *testing.T, out string) {
				if want := "localhost  all,web\n"; out != want {
					t.Errorf("got stdout %q; want %q", out, want)
				}
			},
		},
		{
			name: "check with detailed exit code",
			run: func(ctx context.Context, env Env) error {
				return runPolicy(ctx, env, RunOptions{Check: true, Policy: pol, ExtraVars: []string{"root=" + root}, DetailedExitcode: true})
			},
			wantCode: exitPending,
			stdout: func(t *testing.T, out string) {
				if !strings.Contains(out, "localhost") {
					t.Errorf("got stdout %q; want a report on localhost", out)
				}
				if _, err := os.Stat(filepath.Join(root, "d")); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after check, stat %s/d: got %v; want it not to exist", root, err)
				}
			},
		},
		{
			name: "facts",
			run: func(ctx context.Context, env Env) error {
				return runFacts(ctx, env, FactsOptions{Local: true, JSON: true})
			},
			stdout: func(t *testing.T, out string) {
				var m map[string]map[string]any
				if err := json.Unmarshal([]byte(out), &m); err != nil {
					t.Fatalf("got stdout %q; want JSON: %v", out, err)
				}
				if _, ok := m["localhost"]["os_family"]; !ok {
					t.Errorf("got facts %v; want localhost's, with os_family", m)
				}
			},
		},
		{
			name: "run",
			run: func(ctx context.Context, env Env) error {
				return runAdhoc(ctx, env, AdhocOptions{Inventory: inv, Command: []string{"echo", "hi"}})
			},
			stdout: func(t *testing.T, out string) {
				if !strings.Contains(out, "localhost | hi\n") {
					t.Errorf("got stdout %q; want localhost | hi", out)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, stdout, stderr := testEnv(t, nil)
			err := tt.run(context.Background(), env)
			code := exitOK
			var ee *exitError
			switch {
			case errors.As(err, &ee):
				code = ee.code
			case err != nil:
				t.Fatalf("got error %v; want an *exitError or nil", err)
			}
			if code != tt.wantCode {
				t.Fatalf("got exit %d (%v, stderr %q); want %d", code, err, stderr.String(), tt.wantCode)
			}
			tt.stdout(t, stdout.String())
		})
	}
}

// TestRunConnectorUsesPlannedSettings: the connector connects with the
// settings resolved when the run was planned, without resolving them
// again, and refuses a (role, host) that was not planned.
func TestRunConnectorUsesPlannedSettings(t *testing.T) {
	vars := map[string]string{"SUDO_PW": "secret"}
	env, _, _ := testEnv(t, vars)
	inv, err := inventory.New(nil, map[string]map[string]any{
		"box": {"opsmop_connection": "local", "opsmop_sudo": true, "opsmop_sudo_username": "nobody-else", "opsmop_sudo_password": "env:SUDO_PW"},
	})
	if err != nil {
		t.Fatal(err)
	}
	role := &policy.Role{Name: "r"}
	s := &session{env: env, pol: &policy.Policy{Dir: ".", Roles: []*policy.Role{role}}, inv: inv, curUser: "me"}
	rp, err := s.plans()
	if err != nil {
		t.Fatalf("plans: %v", err)
	}
	if len(rp.plans) != 1 || len(rp.plans[0].Hosts) != 1 {
		t.Fatalf("got plans %+v; want one role on one host", rp.plans)
	}
	conn := s.newConnector(rp.hosts, false)
	defer conn.Close()
	// Resolving again now would fail: the password reference is gone.
	delete(vars, "SUDO_PW")
	if _, err := s.settings(role, "box"); err == nil {
		t.Fatal("set-up: resolving box again succeeds without SUDO_PW; want it to fail, or the test shows nothing")
	}
	h, err := conn.Connect(context.Background(), role, rp.plans[0].Hosts[0])
	if err != nil {
		t.Fatalf("Connect: got %v; want the planned settings used", err)
	}
	l, ok := h.(*connection.Local)
	if !ok || !l.Sudo || l.SudoUser != "nobody-else" {
		t.Errorf("Connect: got %#v; want a local host with sudo to nobody-else", h)
	}
	other := &policy.Role{Name: "other"}
	if _, err := conn.Connect(context.Background(), other, &engine.HostInfo{Name: "box"}); err == nil || !strings.Contains(err.Error(), "not in the run's plan") {
		t.Errorf("Connect for an unplanned role: got %v; want an error saying the host is not in the run's plan", err)
	}
}
