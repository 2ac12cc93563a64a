package sshconfig

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzLoad(f *testing.F) {
	for _, s := range []string{
		"Host web\n  HostName %h.example.com\n  User u\n  Port 22\n",
		"Match host a,!b user c\n  IdentityFile ~/.ssh/%r\n",
		"ProxyJump ssh://u@[::1]:2,b\nUser \"a b\" # c\n",
		"Match final\nHost *\n  UserKnownHostsFile ${HOME}/k none\n",
	} {
		f.Add(s, "web")
	}
	f.Fuzz(func(t *testing.T, text, host string) {
		if strings.Contains(strings.ToLower(text), "include") {
			t.Skip("Include would read files outside the test directory")
		}
		dir := t.TempDir()
		p := filepath.Join(dir, "config")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := Load([]Source{{Path: p, Required: true}}, dir)
		if err == nil {
			_, err = c.Lookup(baseQuery(host))
		}
		var e *Error
		if err != nil && !errors.As(err, &e) {
			t.Fatalf("got error %v (%T); want *Error", err, err)
		}
	})
}
