package sshconfig

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestIncludeRelativeAndPositions(t *testing.T) {
	home := t.TempDir()
	writeConf(t, home, ".ssh/conf.d/10-a.conf", "Host web\n  User from-a\n")
	writeConf(t, home, ".ssh/conf.d/20-b.conf", "\nIdentityFile ~/.ssh/b\n")
	writeConf(t, home, ".ssh/conf.d/.hidden.conf", "User hidden\n")
	writeConf(t, home, ".ssh/conf.d/sub/x.conf", "User dir\n")
	main := writeConf(t, home, ".ssh/config", "Include conf.d/* ~/.ssh/missing-*\nHost *\n  User main\n")
	c, err := Load([]Source{{Path: main}}, home)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Lookup(baseQuery("web"))
	if err != nil {
		t.Fatal(err)
	}
	if r.User.Value != "from-a" {
		t.Errorf("got user %q; want from-a (hidden files and directories skipped)", r.User.Value)
	}
	wantAt := filepath.Join(home, ".ssh/conf.d/20-b.conf") + ":2"
	if len(r.IdentityFiles) != 1 || r.IdentityFiles[0].At.String() != wantAt {
		t.Errorf("got %+v; want one IdentityFile at %s", r.IdentityFiles, wantAt)
	}
}

func TestIncludeInInactiveBlock(t *testing.T) {
	dir := t.TempDir()
	inc := writeConf(t, dir, "inc.conf", "Host *\n  User inc\nMatch exec \"false\"\n  User never\n")
	main := writeConf(t, dir, "config", "Host other\n  Include "+inc+"\nHost *\n  User main\n")
	c, err := Load([]Source{{Path: main, Required: true}}, dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Lookup(baseQuery("h"))
	if err != nil {
		t.Fatalf("got error %v; want none (Match exec in a never-matching include is not reached)", err)
	}
	if r.User.Value != "main" {
		t.Errorf("got user %q; want main (Host * inside an inactive Include never matches)", r.User.Value)
	}
	r, err = c.Lookup(baseQuery("other"))
	if err == nil {
		t.Fatalf("got user %q; want Match exec error for host other", r.User.Value)
	}
	wantError(t, err, inc, "@:3: Match exec is not supported by opsmop")
}

func TestIncludeDepth(t *testing.T) {
	for _, n := range []int{maxIncludeDepth, maxIncludeDepth + 1} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			dir := t.TempDir()
			for i := 0; i < n; i++ {
				next := filepath.Join(dir, "f"+strconv.Itoa(i+1))
				writeConf(t, dir, "f"+strconv.Itoa(i), "Include "+next+"\n")
			}
			writeConf(t, dir, "f"+strconv.Itoa(n), "User deep\n")
			_, err := Load([]Source{{Path: filepath.Join(dir, "f0"), Required: true}}, dir)
			if n <= maxIncludeDepth && err != nil {
				t.Fatalf("got %v; want %d nested Includes accepted", err, n)
			}
			if n > maxIncludeDepth {
				wantError(t, err, "", "Include nesting deeper than 16")
			}
		})
	}
	t.Run("loop", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "self")
		writeConf(t, dir, "self", "Include "+p+"\n")
		_, err := Load([]Source{{Path: p, Required: true}}, dir)
		wantError(t, err, p, "@:1: Include nesting deeper than 16 (an Include loop?)")
	})
}

func TestIncludeRules(t *testing.T) {
	dir := t.TempDir()
	bad := writeConf(t, dir, "writable.conf", "User x\n")
	if err := os.Chmod(bad, 0o666); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		src  Source
		text string
		want string
	}{
		{"group writable", Source{}, "Include " + bad + "\n", "@:1: Include " + bad + ": bad permissions"},
		{"tilde in system file", Source{System: true}, "Include ~/x\n", "@:1: Include: bad include path"},
		{"missing required", Source{Required: true}, "", "cannot read config file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "config")
			if tt.text != "" {
				writeConf(t, filepath.Dir(p), "config", tt.text)
			}
			tt.src.Path = p
			_, err := Load([]Source{tt.src}, dir)
			wantError(t, err, p, tt.want)
		})
	}
	c, err := Load([]Source{{Path: filepath.Join(dir, "absent")}}, dir)
	if err != nil || len(c.files) != 0 {
		t.Errorf("got %v, %d files; want a missing optional file skipped", err, len(c.files))
	}
}
