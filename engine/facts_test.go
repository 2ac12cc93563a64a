package engine_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
)

func TestParseFacts(t *testing.T) {
	cases := []struct {
		name, out string
		want      map[string]any
	}{
		{"debian", "hostname=web1\nfqdn=web1.example.com\nos_id=debian\nos_like=\nos_version=12\nkernel=6.1.0\narch=x86_64\ncpus=4\nmemory_mb=2048\npkg=apt-get\ninit=systemd\nuser=root\n",
			map[string]any{"hostname": "web1", "fqdn": "web1.example.com", "os_family": "debian", "distro": "debian", "distro_version": "12", "cpus": 4, "memory_mb": 2048, "pkg_manager": "apt", "init_system": "systemd", "user": "root"}},
		{"ubuntu is debian", "os_id=ubuntu\nos_like=debian\n", map[string]any{"os_family": "debian", "distro": "ubuntu"}},
		{"rocky is redhat", "os_id=rocky\nos_like=rhel centos fedora\npkg=dnf\n", map[string]any{"os_family": "redhat", "pkg_manager": "dnf"}},
		{"alpine", "os_id=alpine\npkg=apk\ninit=openrc\n", map[string]any{"os_family": "alpine", "pkg_manager": "apk", "init_system": "openrc"}},
		{"unknown", "", map[string]any{"os_family": "unknown", "cpus": 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := engine.ParseFacts([]byte(c.out))
			for k, want := range c.want {
				if got := f[k]; got != want {
					t.Errorf("facts[%q] = %v (%T); want %v (%T)", k, got, got, want, want)
				}
			}
		})
	}
}

// TestGatherFactsOnThisMachine runs the facts script for real.
func TestGatherFactsOnThisMachine(t *testing.T) {
	f, err := engine.GatherFacts(context.Background(), &connection.Local{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if f["hostname"] != host {
		t.Errorf("hostname: got %v; want %v", f["hostname"], host)
	}
	for _, k := range []string{"fqdn", "os_family", "distro", "kernel", "arch", "pkg_manager", "init_system", "user"} {
		if s, _ := f[k].(string); strings.TrimSpace(s) == "" {
			t.Errorf("fact %s is empty: %v", k, f)
		}
	}
	if n, _ := f["cpus"].(int); n < 1 {
		t.Errorf("cpus: got %v; want at least 1", f["cpus"])
	}
	if n, _ := f["memory_mb"].(int); n < 64 {
		t.Errorf("memory_mb: got %v; want a plausible amount", f["memory_mb"])
	}
}
