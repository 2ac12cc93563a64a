package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

func TestTarget(t *testing.T) {
	tests := []struct {
		in       string
		wantAddr string
		wantPort int
		wantErr  string
	}{
		{in: "127.85.0.1:2222", wantAddr: "127.85.0.1", wantPort: 2222},
		{in: "[::1]:22", wantAddr: "::1", wantPort: 22},
		{in: "127.85.0.1", wantErr: "want ADDR:PORT"},
		{in: "127.85.0.1:0", wantErr: "port must be 1-65535"},
		{in: "127.85.0.1:x", wantErr: "port must be 1-65535"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := target(tt.in, "root", "/k", time.Second)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got error %v; want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("got error %v; want none", err)
			}
			if got.Address != tt.wantAddr || got.Port != tt.wantPort || !got.CheckHostKeys || got.User != "root" || got.PrivateKey != "/k" {
				t.Errorf("got %+v; want address %s port %d, root, key /k, host keys checked", got, tt.wantAddr, tt.wantPort)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	var errb bytes.Buffer
	if code := run(t.Context(), []string{"-key", "k"}, &errb); code != 2 {
		t.Errorf("got exit %d; want 2", code)
	}
}

// TestConnectLab connects to a real sshd: it works with the lab's
// known_hosts, and is refused when the host key is unknown.
func TestConnectLab(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 89, Hosts: []lab.HostSpec{{Name: "c1"}}})
	h := l.Host("c1")
	addr := net.JoinHostPort(h.Addr, strconv.Itoa(h.Port))
	empty := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		knownHosts string
		wantCode   int
		wantErr    string
	}{
		{"known key", l.KnownHosts, 0, ""},
		{"unknown key", empty, 1, "unknown host key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var errb bytes.Buffer
			code := run(t.Context(), []string{"-key", l.ClientKey, "-known-hosts", tt.knownHosts, addr}, &errb)
			if code != tt.wantCode || !strings.Contains(errb.String(), tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, errb.String(), tt.wantCode, tt.wantErr)
			}
		})
	}
}
