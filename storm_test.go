package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/defaults"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/testutil"
)

// stormTotalRe is the TOTAL line of a check recap.
var stormTotalRe = regexp.MustCompile(`(?m)^TOTAL +hosts=(\d+) .*unreachable=(\d+)`)

// TestLabStorm is the connection storm of issue 14: OPSMOP_STORM_HOSTS
// lab hosts (default 200) checked at once with --forks equal to the host
// count, on this machine's few cores. Every host must be reached: the
// pool bounds the handshakes in flight (tuning.max_handshakes) and retries
// transient connect failures (tuning.connect_retries). The wall time of
// each run is logged.
//
// It is a long benchmark-like test (starting 200 hosts alone takes a
// while), not part of the normal suite: it runs only with OPSMOP_STORM=1,
//
//	OPSMOP_STORM=1 go test -run TestLabStorm -count=1 -timeout 30m -v .
//
// OPSMOP_STORM_TUNING lists configurations to run one after the other
// against the same lab, separated by ';', each a ','-separated list of
// [tuning] key=value pairs written to the defaults file, e.g.
// "max_handshakes=0,connect_retries=0;max_handshakes=8;max_handshakes=16".
// An empty configuration (the default) writes no defaults file: opsmop's
// built-in settings. Every configuration must reach every host.
//
// OPSMOP_STORM_DIAL, e.g. "0 8 16 32", first measures the connects
// alone: for each number a connection pool of that MaxHandshakes (0: no
// bound) and no retries dials every host at once; the unreachable hosts,
// the wall time and the slowest host are logged (not asserted: 0 is the
// old behaviour, expected to fail hosts).
func TestLabStorm(t *testing.T) {
	if os.Getenv("OPSMOP_STORM") != "1" {
		t.Skip("the storm test is long: run it with OPSMOP_STORM=1 (see docs/benchmarks.md)")
	}
	n := 200
	if s := os.Getenv("OPSMOP_STORM_HOSTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 || v > 250 {
			t.Fatalf("OPSMOP_STORM_HOSTS=%q: want a host count 1-250", s)
		}
		n = v
	}
	configs := strings.Split(os.Getenv("OPSMOP_STORM_TUNING"), ";")

	specs := make([]lab.HostSpec, n)
	for i := range specs {
		specs[i] = lab.HostSpec{Name: fmt.Sprintf("storm%03d", i+1), Group: "storm"}
	}
	start := time.Now()
	l := labtest.Start(t, lab.Config{Subnet: 60, Hosts: specs})
	t.Logf("lab of %d hosts started in %.1fs", n, time.Since(start).Seconds())

	dir := t.TempDir()
	testutil.WriteTree(t, dir, map[string]string{"site.toml": `
[[roles]]
name = "storm"
groups = "storm"
  [[roles.resources]]
  type = "file"
  path = "/srv/storm"
  content = "{{ .host.name }}\n"
`})
	policy := filepath.Join(dir, "site.toml")

	for _, f := range strings.Fields(os.Getenv("OPSMOP_STORM_DIAL")) {
		gate, err := strconv.Atoi(f)
		if err != nil || gate < 0 {
			t.Fatalf("OPSMOP_STORM_DIAL: %q is not a handshake bound (0 or more)", f)
		}
		stormDial(t, l, gate)
	}

	for _, cfg := range configs {
		cfg = strings.TrimSpace(cfg)
		env := labEnv(t, l, nil)
		if cfg != "" {
			var b strings.Builder
			b.WriteString("[tuning]\n")
			for _, kv := range strings.Split(cfg, ",") {
				k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
				if !ok {
					t.Fatalf("OPSMOP_STORM_TUNING: %q is not key=value", kv)
				}
				fmt.Fprintf(&b, "%s = %s\n", strings.TrimSpace(k), strings.TrimSpace(v))
			}
			writeDefaults(t, env, b.String())
		}
		label := cfg
		if label == "" {
			label = "built-in tuning"
		}
		conns0 := stormConnections(t, l)
		start := time.Now()
		code, out, errOut := opsmop(t, env, "check", policy, "-i", l.Inventory, "--forks", strconv.Itoa(n))
		elapsed := time.Since(start)
		conns := stormConnections(t, l) - conns0
		m := stormTotalRe.FindStringSubmatch(out)
		if m == nil {
			t.Errorf("%s: exit %d; no TOTAL line in the recap:\n%s\n%s", label, code, tail(out, 20), tail(errOut, 20))
			continue
		}
		hosts, _ := strconv.Atoi(m[1])
		unreachable, _ := strconv.Atoi(m[2])
		t.Logf("%s: %d hosts, --forks %d: %d unreachable, exit %d, %.2fs, %d connections logged by the hosts' sshds (%d more than hosts: retries, or connections of an earlier run logged late by an overloaded sshd)",
			label, hosts, n, unreachable, code, elapsed.Seconds(), conns, conns-n)
		if hosts != n || unreachable != 0 {
			var why []string
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "UNREACHABLE") && len(why) < 5 {
					why = append(why, line)
				}
			}
			t.Errorf("%s: got hosts=%d unreachable=%d; want hosts=%d unreachable=0; first errors:\n%s", label, hosts, unreachable, n, strings.Join(why, "\n"))
		}
	}
}

// stormConnections is how many connections the sshds of l have logged.
func stormConnections(t *testing.T, l *lab.Lab) int {
	t.Helper()
	sum := 0
	for _, c := range sshConnectionsByHost(t, l) {
		sum += c
	}
	return sum
}

// stormDial connects to every host of l at once through one pool of
// MaxHandshakes gate (0: no bound) without retries, and logs how many
// failed, the wall time and the slowest and median host.
func stormDial(t *testing.T, l *lab.Lab, gate int) {
	t.Helper()
	if gate == 0 {
		gate = -1
	}
	p := connection.NewPool(connection.PoolConfig{KnownHostsFiles: []string{l.KnownHosts}, MaxHandshakes: gate})
	defer p.Close()
	took := make([]time.Duration, len(l.Hosts))
	errs := make([]error, len(l.Hosts))
	var wg sync.WaitGroup
	start := time.Now()
	for i, h := range l.Hosts {
		wg.Go(func() {
			t0 := time.Now()
			_, errs[i] = p.Host(t.Context(), connection.Target{Name: h.Name, Address: h.Addr, Port: h.Port, User: "root",
				PrivateKey: l.ClientKey, IdentitiesOnly: true, CheckHostKeys: true, ConnectTimeout: defaults.DefaultConnectTimeout})
			took[i] = time.Since(t0)
		})
	}
	wg.Wait()
	wall := time.Since(start)
	failed := 0
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	slices.Sort(took)
	t.Logf("connects only, max_handshakes %d: %d hosts, %d unreachable, all done in %.2fs, median host %.2fs, slowest %.2fs (first error: %v)",
		max(gate, 0), len(l.Hosts), failed, wall.Seconds(), took[len(took)/2].Seconds(), took[len(took)-1].Seconds(), first)
}
