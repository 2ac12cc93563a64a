package providers

import (
	"os"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/labtest"
)

func TestDirectoryConverges(t *testing.T) {
	labtest.RequireRoot(t)
	tests := []struct {
		name   string
		setup  func(t *testing.T, d *localDir)
		spec   func(d *localDir) *DirectorySpec
		action Action
		fields string
		verify func(t *testing.T, d *localDir)
	}{
		{
			name: "create nested with attributes",
			spec: func(d *localDir) *DirectorySpec {
				return &DirectorySpec{Path: d.path("a/b/c"), Mode: "0750", Owner: "nobody", Group: "nogroup"}
			},
			action: Create, fields: "group,mode,owner,state",
			verify: func(t *testing.T, d *localDir) {
				m, uid, gid, _ := statOf(t, d.path("a/b/c"))
				if !m.IsDir() || m.Perm() != 0o750 || uid != 65534 || gid != 65534 {
					t.Errorf("got %v %d:%d; want drwxr-x--- 65534:65534", m, uid, gid)
				}
			},
		},
		{
			name: "create with a mode only (mkdir -m), setgid kept",
			spec: func(d *localDir) *DirectorySpec {
				return &DirectorySpec{Path: d.path("x/y"), Mode: "2775"}
			},
			action: Create, fields: "mode,state",
			verify: func(t *testing.T, d *localDir) {
				m, _, _, _ := statOf(t, d.path("x/y"))
				if !m.IsDir() || m.Perm() != 0o775 || m&os.ModeSetgid == 0 {
					t.Errorf("got %v; want drwxrwsr-x", m)
				}
			},
		},
		{
			name:   "create plain",
			spec:   func(d *localDir) *DirectorySpec { return &DirectorySpec{Path: d.path("plain")} },
			action: Create, fields: "state",
		},
		{
			name:   "existing, mode only",
			setup:  func(t *testing.T, d *localDir) { mkdir(t, d.path("m"), 0o700) },
			spec:   func(d *localDir) *DirectorySpec { return &DirectorySpec{Path: d.path("m"), Mode: "0755"} },
			action: Update, fields: "mode",
		},
		{
			name: "recurse fixes what is beneath",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("r/sub"), 0o755)
				writeFile(t, d.path("r/sub/f"), "x", 0o644)
				for _, p := range []string{"r", "r/sub"} {
					if err := os.Chown(d.path(p), 65534, 65534); err != nil {
						t.Fatal(err)
					}
				}
				// Only the file beneath is owned by root.
			},
			spec: func(d *localDir) *DirectorySpec {
				return &DirectorySpec{Path: d.path("r"), Owner: "nobody", Group: "nogroup", Recurse: true}
			},
			action: Update, fields: "beneath",
			verify: func(t *testing.T, d *localDir) {
				if _, uid, gid, _ := statOf(t, d.path("r/sub/f")); uid != 65534 || gid != 65534 {
					t.Errorf("file beneath: got %d:%d; want 65534:65534", uid, gid)
				}
			},
		},
		{
			name: "without recurse, beneath is left alone",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("n/sub"), 0o755)
			},
			spec:   func(d *localDir) *DirectorySpec { return &DirectorySpec{Path: d.path("n"), Owner: "nobody"} },
			action: Update, fields: "owner",
			verify: func(t *testing.T, d *localDir) {
				if _, uid, _, _ := statOf(t, d.path("n/sub")); uid != 0 {
					t.Errorf("sub: got uid %d; want 0", uid)
				}
			},
		},
		{
			name: "absent removes recursively",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("x/y"), 0o755)
				writeFile(t, d.path("x/y/f"), "x", 0o644)
			},
			spec:   func(d *localDir) *DirectorySpec { return &DirectorySpec{Path: d.path("x"), State: "absent"} },
			action: Delete, fields: "state",
			verify: func(t *testing.T, d *localDir) {
				if _, err := os.Lstat(d.path("x")); !os.IsNotExist(err) {
					t.Errorf("still there: %v", err)
				}
			},
		},
		{
			name:   "absent when missing",
			spec:   func(d *localDir) *DirectorySpec { return &DirectorySpec{Path: d.path("none"), State: "absent"} },
			action: None,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			if tc.setup != nil {
				tc.setup(t, d)
			}
			req := newReq(tc.spec(d), "", nil, nil)
			ch := converge(t, d.h, mustProvider("directory"), req, func() string { return d.snapshot(t) }, tc.action)
			if got := strings.Join(sortedFieldNames(ch), ","); got != tc.fields {
				t.Errorf("fields: got %s; want %s (%v)", got, tc.fields, ch.Fields)
			}
			if tc.verify != nil {
				tc.verify(t, d)
			}
		})
	}
}

func mkdir(t *testing.T, p string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func TestDirectoryRefusals(t *testing.T) {
	d := newLocalDir(t)
	writeFile(t, d.path("file"), "x", 0o644)
	tests := []struct {
		name string
		spec *DirectorySpec
		want string
	}{
		{"root", &DirectorySpec{Path: "/", State: "absent"}, "refusing to remove /"},
		{"root unclean", &DirectorySpec{Path: "//.", State: "absent"}, "refusing to remove /"},
		{"empty", &DirectorySpec{Path: "", State: "absent"}, "path is empty"},
		{"relative", &DirectorySpec{Path: "srv"}, "not absolute"},
		{"file in the way", &DirectorySpec{Path: d.path("file")}, "not a directory"},
		{"absent on a file", &DirectorySpec{Path: d.path("file"), State: "absent"}, "not a directory: refusing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := check(t, testCtx(t), d.h, mustProvider("directory"), newReq(tc.spec, "", nil, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
	// Apply refuses / even with a forged plan.
	f := &fakeHost{}
	forged := &Change{Action: Delete, Plan: directoryPlan{Path: "/", Remove: true}}
	if _, err := mustProvider("directory").Apply(testCtx(t), f, newReq(&DirectorySpec{Path: d.path("x"), State: "absent"}, "", nil, nil), forged); err == nil || !strings.Contains(err.Error(), "refusing to remove it") {
		t.Errorf("apply of a plan removing /: got %v; want a refusal", err)
	}
	if len(f.scripts) != 0 {
		t.Errorf("apply of a plan removing /: got scripts %q; want none run", f.scripts)
	}
}

func TestLinkConverges(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, d *localDir)
		spec   func(d *localDir) *LinkSpec
		action Action
		fields string
		verify func(t *testing.T, d *localDir)
	}{
		{
			name:   "create",
			spec:   func(d *localDir) *LinkSpec { return &LinkSpec{Path: d.path("l"), Target: "/etc/hostname"} },
			action: Create, fields: "target",
			verify: func(t *testing.T, d *localDir) { wantLink(t, d.path("l"), "/etc/hostname") },
		},
		{
			name: "replace a wrong link to a directory",
			setup: func(t *testing.T, d *localDir) {
				mkdir(t, d.path("v1"), 0o755)
				mkdir(t, d.path("v2"), 0o755)
				symlink(t, "v1", d.path("current"))
			},
			spec:   func(d *localDir) *LinkSpec { return &LinkSpec{Path: d.path("current"), Target: "v2"} },
			action: Update, fields: "target",
			verify: func(t *testing.T, d *localDir) {
				wantLink(t, d.path("current"), "v2")
				if _, err := os.Lstat(d.path("v1/v2")); err == nil {
					t.Error("the new link was created inside the old target directory")
				}
			},
		},
		{
			name:   "force replaces a file",
			setup:  func(t *testing.T, d *localDir) { writeFile(t, d.path("f"), "x", 0o644) },
			spec:   func(d *localDir) *LinkSpec { return &LinkSpec{Path: d.path("f"), Target: "/tmp", Force: true} },
			action: Update, fields: "target,type",
			verify: func(t *testing.T, d *localDir) { wantLink(t, d.path("f"), "/tmp") },
		},
		{
			name:   "absent removes a link",
			setup:  func(t *testing.T, d *localDir) { symlink(t, "/nowhere", d.path("dangling")) },
			spec:   func(d *localDir) *LinkSpec { return &LinkSpec{Path: d.path("dangling"), State: "absent"} },
			action: Delete, fields: "target",
		},
		{
			name:   "absent when missing",
			spec:   func(d *localDir) *LinkSpec { return &LinkSpec{Path: d.path("none"), State: "absent"} },
			action: None,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			if tc.setup != nil {
				tc.setup(t, d)
			}
			ch := converge(t, d.h, mustProvider("link"), newReq(tc.spec(d), "", nil, nil), func() string { return d.snapshot(t) }, tc.action)
			if got := strings.Join(sortedFieldNames(ch), ","); got != tc.fields {
				t.Errorf("fields: got %s; want %s (%v)", got, tc.fields, ch.Fields)
			}
			if tc.verify != nil {
				tc.verify(t, d)
			}
		})
	}
}

func TestLinkRefusesNonLink(t *testing.T) {
	d := newLocalDir(t)
	writeFile(t, d.path("f"), "x", 0o644)
	mkdir(t, d.path("dir"), 0o755)
	for _, tc := range []struct {
		name string
		spec *LinkSpec
		want string
	}{
		{"file", &LinkSpec{Path: d.path("f"), Target: "/tmp"}, "is a regular file, not a symlink: refusing to replace it (remove it, or set force = true"},
		{"dir", &LinkSpec{Path: d.path("dir"), Target: "/tmp"}, "is a directory, not a symlink"},
		{"absent on a file", &LinkSpec{Path: d.path("f"), State: "absent"}, "refusing to remove it (set force = true"},
		{"no target", &LinkSpec{Path: d.path("x")}, "target is required"},
		{"root", &LinkSpec{Path: "/", Target: "x", Force: true}, "path cannot be /"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := d.snapshot(t)
			_, err := check(t, testCtx(t), d.h, mustProvider("link"), newReq(tc.spec, "", nil, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
			if after := d.snapshot(t); after != before {
				t.Errorf("target changed")
			}
		})
	}
}

func symlink(t *testing.T, target, p string) {
	t.Helper()
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
}

func wantLink(t *testing.T, p, target string) {
	t.Helper()
	got, err := os.Readlink(p)
	if err != nil || got != target {
		t.Errorf("readlink %s: got %q, %v; want %q", p, got, err, target)
	}
}

func TestLineConverges(t *testing.T) {
	labtest.RequireRoot(t)
	const hosts = "127.0.0.1 localhost\n# comment\n10.0.0.1 old.example\n"
	tests := []struct {
		name    string
		initial *string // nil: file missing
		subdir  string  // the file lives in this (missing) subdirectory
		spec    LineSpec
		action  Action
		want    string // file contents after apply
		diff    string
	}{
		{"append", ptr(hosts), "", LineSpec{Line: "10.0.0.2 web"}, Update, hosts + "10.0.0.2 web\n", "+10.0.0.2 web"},
		{"already there", ptr(hosts), "", LineSpec{Line: "# comment"}, None, hosts, ""},
		{"replace last match", ptr("a=1\nb=2\na=3\n"), "", LineSpec{Line: "a=9", Regexp: `^a=`}, Update, "a=1\nb=2\na=9\n", "-a=3\n+a=9"},
		{"regexp without match appends", ptr("b=2\n"), "", LineSpec{Line: "a=9", Regexp: `^a=`}, Update, "b=2\na=9\n", ""},
		{"insert after", ptr("[main]\nx=1\n[other]\ny=2\n"), "", LineSpec{Line: "z=3", InsertAfter: `^\[main\]$`}, Update, "[main]\nz=3\nx=1\n[other]\ny=2\n", ""},
		{"insert after without match goes to end", ptr("x\n"), "", LineSpec{Line: "z", InsertAfter: `^nomatch$`}, Update, "x\nz\n", ""},
		{"no trailing newline", ptr("x"), "", LineSpec{Line: "y"}, Update, "x\ny\n", ""},
		{"absent by regexp removes all", ptr("keep\nPermitRootLogin yes\nx\n#PermitRootLogin no\n"), "", LineSpec{Regexp: `PermitRootLogin`, State: "absent"}, Update, "keep\nx\n", "-PermitRootLogin yes"},
		{"absent by line", ptr(hosts), "", LineSpec{Line: "# comment", State: "absent"}, Update, "127.0.0.1 localhost\n10.0.0.1 old.example\n", ""},
		{"absent, nothing matches", ptr(hosts), "", LineSpec{Line: "nope", State: "absent"}, None, hosts, ""},
		{"absent, file missing", nil, "", LineSpec{Line: "x", State: "absent"}, None, "", ""},
		{"create", nil, "", LineSpec{Line: "first", Create: true}, Create, "first\n", "+first"},
		{"create with parent directories", nil, "a/b", LineSpec{Line: "first", Create: true}, Create, "first\n", "+first"},
		{"empty file", ptr(""), "", LineSpec{Line: "only"}, Update, "only\n", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := newLocalDir(t)
			p := d.path("f")
			if tc.subdir != "" {
				p = d.path(tc.subdir + "/f")
			}
			if tc.initial != nil {
				writeFile(t, p, *tc.initial, 0o640)
				if err := os.Chown(p, 65534, 65534); err != nil {
					t.Fatal(err)
				}
			}
			s := tc.spec
			s.Path = p
			ch := converge(t, d.h, mustProvider("line"), newReq(&s, "", nil, nil), func() string { return d.snapshot(t) }, tc.action)
			if tc.diff != "" && !strings.Contains(ch.Diff, tc.diff) {
				t.Errorf("diff: got %q; want it to contain %q", ch.Diff, tc.diff)
			}
			if tc.initial == nil && tc.action == None {
				return
			}
			if got := readFile(t, p); got != tc.want {
				t.Errorf("contents: got %q; want %q", got, tc.want)
			}
			if tc.initial != nil {
				if m, uid, gid, _ := statOf(t, p); m.Perm() != 0o640 || uid != 65534 || gid != 65534 {
					t.Errorf("attributes: got %v %d:%d; want -rw-r----- 65534:65534 kept", m.Perm(), uid, gid)
				}
			}
		})
	}
}

func TestLineErrors(t *testing.T) {
	d := newLocalDir(t)
	writeFile(t, d.path("bin"), "a\x00b\n", 0o644)
	for _, tc := range []struct {
		name string
		spec LineSpec
		want string
	}{
		{"missing file", LineSpec{Path: d.path("missing"), Line: "x"}, "set create = true"},
		{"bad regexp", LineSpec{Path: d.path("bin"), Line: "x", Regexp: "("}, "regexp \"(\""},
		{"binary", LineSpec{Path: d.path("bin"), Line: "x"}, "NUL bytes"},
		{"no line", LineSpec{Path: d.path("bin")}, "line is required"},
		{"two lines", LineSpec{Path: d.path("bin"), Line: "a\nb"}, "give one line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			_, err := check(t, testCtx(t), d.h, mustProvider("line"), newReq(&s, "", nil, nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}
