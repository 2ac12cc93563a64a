package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

func TestParseHosts(t *testing.T) {
	tests := []struct {
		in      string
		want    []lab.HostSpec
		wantErr string
	}{
		{in: defaultHosts, want: []lab.HostSpec{
			{Name: "web1", Group: "webservers"}, {Name: "web2", Group: "webservers"},
			{Name: "bastion", Group: "bastions"}, {Name: "db1", Group: "dbservers", Via: "bastion"}}},
		{in: "a, b@a ,", want: []lab.HostSpec{{Name: "a"}, {Name: "b", Via: "a"}}},
		{in: "a:@b", want: []lab.HostSpec{{Name: "a", Via: "b"}}},
		{in: "", wantErr: "no hosts"},
		{in: ":g", wantErr: "no host name"},
		{in: "a@", wantErr: "empty name after @"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseHosts(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"opsmop-lab"}, 2, "usage:"},
		{[]string{"opsmop-lab", "sideways"}, 2, `unknown command "sideways"`},
		{[]string{"opsmop-lab", "down"}, 2, "either --dir D"},
		{[]string{"opsmop-lab", "down", "--dir", "x", "--all"}, 2, "either --dir D"},
		{[]string{"opsmop-lab", "up", "--subnet", "0"}, 2, "must be 1-255"},
		{[]string{"opsmop-lab", "up", "--hosts", "a@"}, 2, "empty name after @"},
		{[]string{"opsmop-lab", "help"}, 0, "opsmop-lab up"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args[1:], " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, nil, &out, &errb)
			if code != tc.code || !strings.Contains(out.String()+errb.String(), tc.want) {
				t.Errorf("got exit %d, output %q; want exit %d and %q", code, out.String()+errb.String(), tc.code, tc.want)
			}
		})
	}
}

// TestUpDown brings a lab up and down through the command, on port 2222 of
// its own 127.11 block (no other test package uses it).
func TestUpDown(t *testing.T) {
	labtest.Require(t)
	dir := filepath.Join(lab.DefaultBase, "cmd-test-"+strconv.Itoa(os.Getpid()))
	t.Cleanup(func() { _ = lab.StopDir(dir) })
	var out, errb bytes.Buffer
	code := run(t.Context(), []string{"opsmop-lab", "up", "--dir", dir, "--subnet", "11", "--port", "2222", "--hosts", "gw:gateways,inner@gw"}, nil, &out, &errb)
	if code != 0 {
		t.Fatalf("up: exit %d; stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"lab dir:         " + dir, dir + "/inventory.toml", dir + "/known_hosts", dir + "/deploy_password", "127.11.0.1:2222", "via gw"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("up output: got\n%s\nwant it to contain %q", out.String(), want)
		}
	}
	kh, err := os.ReadFile(filepath.Join(dir, "known_hosts"))
	if err != nil || !bytes.HasPrefix(kh, []byte("[127.11.0.1]:2222 ssh-ed25519 ")) {
		t.Errorf("known_hosts: got %q, %v; want [addr]:2222 entries", kh, err)
	}
	out.Reset()
	errb.Reset()
	if code := run(t.Context(), []string{"opsmop-lab", "down", "--dir", dir}, nil, &out, &errb); code != 0 {
		t.Fatalf("down: exit %d; stderr:\n%s", code, errb.String())
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s after down: got %v; want removed", dir, err)
	}
}
