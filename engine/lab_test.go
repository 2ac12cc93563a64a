package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/internal/view"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// poolConnector connects hosts through one real connection pool, the way
// the CLI does: one SSH connection per host, shared by the roles.
type poolConnector struct {
	l    *lab.Lab
	pool *connection.Pool
}

func (c *poolConnector) Connect(ctx context.Context, role *policy.Role, h *engine.HostInfo) (providers.Host, error) {
	lh := c.l.Host(h.Name)
	return c.pool.Host(ctx, connection.Target{
		Name: h.Name, Address: lh.Addr, Port: lh.Port, User: "root", PrivateKey: c.l.ClientKey,
		CheckHostKeys: true, Sudo: role.Sudo != nil && *role.Sudo,
		ConnectTimeout: 10 * time.Second, CommandTimeout: h.CommandTimeout,
	})
}

const labPolicy = `
[[roles]]
name = "base"
  [[roles.resources]]
  type = "directory"
  path = "/srv/race"
  [[roles.resources]]
  type = "file"
  path = "/srv/race/id"
  content = "{{ .host.name }} {{ .facts.hostname }}\n"
  [[roles.resources]]
  type = "file"
  path = "/srv/race/blob"
  src = "blob.bin"
  notify = ["mark"]
  [[roles.resources]]
  type = "line"
  path = "/srv/race/lines"
  line = "{{ .item }}"
  create = true
  loop = ["one", "two", "three"]
  [[roles.resources]]
  type = "shell"
  cmd = "echo {{ .host.name }} > /srv/race/echo"
  creates = "/srv/race/echo"
  register = "out"
  [[roles.resources]]
  type = "assert"
  that = "out.rc == 0"
  [[roles.handlers]]
  name = "mark"
  type = "shell"
  cmd = "echo ran >> /srv/race/handler"
[[roles]]
name = "second"
  [[roles.resources]]
  type = "link"
  path = "/srv/race/current"
  target = "/srv/race/id"
`

// TestLabThreeHostsConcurrently runs check, apply and check of a policy
// on three lab hosts at once through one real connection pool, with the
// human reporter (live status line and upload progress) and the JSON
// reporter both listening. Under `go test -race` (make test runs the
// engine's tests so) this exercises every shared structure of a real
// run: the pool, the per-host shells and SFTP clients, the runner's
// state, the reporters.
func TestLabThreeHostsConcurrently(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 57, Hosts: []lab.HostSpec{{Name: "r1"}, {Name: "r2"}, {Name: "r3"}}})
	pdir := t.TempDir()
	if err := os.WriteFile(filepath.Join(pdir, "site.toml"), []byte(labPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pdir, "blob.bin"), bytes.Repeat([]byte("opsmop\x00"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := providers.Registry()
	pol, err := policy.Load(filepath.Join(pdir, "site.toml"), reg)
	if err != nil {
		t.Fatal(err)
	}
	if errs := engine.Validate(pol, reg, engine.NewEvaluator(pol.Dir), nil); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	var plans []engine.RoleHosts
	for _, r := range pol.Roles {
		p := engine.RoleHosts{Role: r}
		for _, h := range l.Hosts {
			p.Hosts = append(p.Hosts, &engine.HostInfo{Name: h.Name, Address: h.Addr, Groups: []string{"all"}, Vars: map[string]any{}, CommandTimeout: time.Minute})
		}
		plans = append(plans, p)
	}
	run := func(check bool) (*engine.Summary, string) {
		pool := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}, Keepalive: 5 * time.Second})
		defer pool.Close()
		var human, js testutil.SyncBuffer
		rep := engine.Tee{view.New(view.KindHuman, &human, view.Options{Status: true, Verbose: true}), view.New(view.KindJSON, &js, view.Options{})}
		sum := engine.Run(context.Background(), engine.Options{
			Policy: pol, Registry: reg, Lookup: providers.Lookup, Plans: plans, Check: check, Forks: 3,
			Connector: &poolConnector{l: l, pool: pool}, Hooks: rep,
		})
		return sum, human.String()
	}
	for _, step := range []struct {
		name          string
		check         bool
		changed, fail int
	}{
		{"check", true, 3 * 9, 0},
		{"apply", false, 3 * 9, 0},
		{"check again", true, 0, 0},
	} {
		start := time.Now()
		sum, out := run(step.check)
		t.Logf("%s: %v", step.name, time.Since(start).Round(time.Millisecond))
		if sum.Total.Changed != step.changed || sum.Total.Failed != step.fail || sum.Total.Unreachable != 0 {
			t.Fatalf("%s: got changed=%d failed=%d unreachable=%d; want changed=%d failed=%d\n%s", step.name, sum.Total.Changed, sum.Total.Failed, sum.Total.Unreachable, step.changed, step.fail, out)
		}
	}
	for _, h := range l.Hosts {
		out, err := h.Exec(context.Background(), "cat /srv/race/id /srv/race/lines /srv/race/echo /srv/race/handler; readlink /srv/race/current; wc -c < /srv/race/blob")
		want := fmt.Sprintf("%s %s\none\ntwo\nthree\n%s\nran\n/srv/race/id\n2100000\n", h.Name, h.Name, h.Name)
		if err != nil || string(out) != want {
			t.Errorf("%s: got %q (%v); want %q", h.Name, out, err, want)
		}
	}
}
