package providers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/testutil"
)

const aptInstall = "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "

// TestPackageCommands drives every package manager against the fake host
// and asserts the exact probe and apply commands.
func TestPackageCommands(t *testing.T) {
	tests := []struct {
		name   string
		facts  string // pkg_manager fact
		spec   PackageSpec
		probe  string // the probe script must contain this
		out    string // canned probe stdout
		action Action
		fields map[string]string
		apply  string // the exact apply script ("" = no apply)
	}{
		{
			name: "apt install missing ones in one transaction", facts: "apt",
			spec:   PackageSpec{Name: []string{"nginx", "curl", "git"}, UpdateCache: true},
			probe:  "LC_ALL=C dpkg-query -W -f '${Package} ${Status} ${Version}\\n' nginx curl git 2>/dev/null",
			out:    "nginx install ok installed 1.22.1-9\ncurl deinstall ok config-files 7.88\n",
			action: Update,
			fields: map[string]string{"curl": "absent -> present", "git": "absent -> present"},
			apply:  "set -e\nDEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\napt-get update -q\n" + aptInstall + "curl git\n",
		},
		{
			name: "apt all installed", facts: "apt",
			spec:   PackageSpec{Name: []string{"nginx"}, UpdateCache: true},
			out:    "nginx install ok installed 1.22.1-9\n",
			action: None,
		},
		{
			name: "apt version pin", facts: "apt",
			spec:   PackageSpec{Name: []string{"nginx"}, Version: "1.24.0-1"},
			out:    "nginx install ok installed 1.22.1-9\n",
			action: Update,
			fields: map[string]string{"nginx": "1.22.1-9 -> 1.24.0-1"},
			apply:  "set -e\nDEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\n" + aptInstall + "'nginx=1.24.0-1'\n",
		},
		{
			name: "apt version prefix matches", facts: "apt",
			spec:   PackageSpec{Name: []string{"nginx"}, Version: "1.22.1"},
			out:    "nginx install ok installed 1.22.1-9\n",
			action: None,
		},
		{
			name: "apt latest", facts: "apt",
			spec:  PackageSpec{Name: []string{"nginx", "curl", "vim"}, State: "latest"},
			probe: "echo --opsmop-updates--\nLC_ALL=C apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= policy nginx curl vim 2>/dev/null",
			out: "nginx install ok installed 1.22.1-9\ncurl install ok installed 7.88\n--opsmop-updates--\n" +
				"nginx:\n  Installed: 1.22.1-9\n  Candidate: 1.22.1-10\n  Version table:\n" +
				"curl:\n  Installed: 7.88\n  Candidate: 7.88\n" +
				"vim:\n  Installed: (none)\n  Candidate: 9.0\n",
			action: Update,
			fields: map[string]string{"nginx": "1.22.1-9 -> 1.22.1-10", "vim": "absent -> latest"},
			apply:  "set -e\nDEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\n" + aptInstall + "vim nginx\n",
		},
		{
			name: "apt absent", facts: "apt",
			spec:   PackageSpec{Name: []string{"telnet", "rsh-client"}, State: "absent"},
			out:    "telnet install ok installed 0.17\n",
			action: Delete,
			fields: map[string]string{"telnet": "0.17 -> absent"},
			apply:  "set -e\nDEBIAN_FRONTEND=noninteractive; export DEBIAN_FRONTEND\napt-get remove -y -q telnet\n",
		},
		{
			name: "dnf install, all missing", facts: "dnf",
			spec:   PackageSpec{Name: []string{"httpd", "mod_ssl"}, UpdateCache: true},
			probe:  "rpm -q --qf '%{NAME} %{VERSION}-%{RELEASE}\\n' httpd mod_ssl 2>/dev/null",
			out:    "package httpd is not installed\npackage mod_ssl is not installed\n",
			action: Create,
			fields: map[string]string{"httpd": "absent -> present", "mod_ssl": "absent -> present"},
			apply:  "set -e\ndnf makecache -q\ndnf install -y httpd mod_ssl\n",
		},
		{
			name: "dnf latest", facts: "dnf",
			spec:   PackageSpec{Name: []string{"httpd", "git"}, State: "latest"},
			probe:  "echo --opsmop-updates--\ndnf -q check-update httpd git 2>/dev/null",
			out:    "httpd 2.4.57-5.el9\n--opsmop-updates--\n\nhttpd.x86_64    2.4.57-8.el9    appstream\n",
			action: Update,
			fields: map[string]string{"httpd": "2.4.57-5.el9 -> 2.4.57-8.el9", "git": "absent -> latest"},
			apply:  "set -e\ndnf install -y git\ndnf upgrade -y httpd\n",
		},
		{
			name: "yum version pin", facts: "yum",
			spec:   PackageSpec{Name: []string{"httpd"}, Version: "2.4.6"},
			out:    "httpd 2.4.5-1\n",
			action: Update,
			apply:  "set -e\nyum install -y httpd-2.4.6\n",
		},
		{
			name: "yum absent", facts: "yum",
			spec:   PackageSpec{Name: []string{"httpd"}, State: "absent"},
			out:    "httpd 2.4.5-1\n",
			action: Delete,
			apply:  "set -e\nyum remove -y httpd\n",
		},
		{
			name: "apk", facts: "apk",
			spec:   PackageSpec{Name: []string{"nginx", "curl"}, UpdateCache: true},
			probe:  "for n in nginx curl; do if apk info -e \"$n\" >/dev/null 2>&1; then printf '%s installed\\n' \"$n\"; fi; done",
			out:    "curl installed\n",
			action: Update,
			apply:  "set -e\napk update -q\napk add nginx\n",
		},
		{
			name: "apk latest", facts: "apk",
			spec:   PackageSpec{Name: []string{"curl"}, State: "latest"},
			probe:  "apk version -l '<' curl",
			out:    "curl installed\n--opsmop-updates--\nInstalled:                                Available:\ncurl-8.5.0-r0           < 8.9.1-r0\n",
			action: Update,
			fields: map[string]string{"curl": "installed -> 8.9.1-r0"},
			apply:  "set -e\napk add -u curl\n",
		},
		{
			name: "apk absent", facts: "apk",
			spec:   PackageSpec{Name: []string{"curl"}, State: "absent"},
			out:    "curl installed\n",
			action: Delete,
			apply:  "set -e\napk del curl\n",
		},
		{
			name: "pacman", facts: "pacman",
			spec:   PackageSpec{Name: []string{"nginx", "git"}, UpdateCache: true},
			probe:  "pacman -Q nginx git 2>/dev/null",
			out:    "git 2.45.1-1\n",
			action: Update,
			apply:  "set -e\npacman -Sy --noconfirm\npacman -S --noconfirm --needed nginx\n",
		},
		{
			name: "pacman latest", facts: "pacman",
			spec:   PackageSpec{Name: []string{"git"}, State: "latest"},
			probe:  "pacman -Qu git 2>/dev/null",
			out:    "git 2.45.1-1\n--opsmop-updates--\ngit 2.45.1-1 -> 2.46.0-1\n",
			action: Update,
			fields: map[string]string{"git": "2.45.1-1 -> 2.46.0-1"},
			apply:  "set -e\npacman -S --noconfirm git\n",
		},
		{
			name: "pacman absent", facts: "pacman",
			spec:   PackageSpec{Name: []string{"git"}, State: "absent"},
			out:    "git 2.45.1-1\n",
			action: Delete,
			apply:  "set -e\npacman -R --noconfirm git\n",
		},
		{
			name: "provider overrides the fact", facts: "apt",
			spec:   PackageSpec{Name: []string{"git"}, Provider: "pacman"},
			probe:  "pacman -Q git",
			action: Create,
			apply:  "set -e\npacman -S --noconfirm --needed git\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			req.Facts["pkg_manager"] = tc.facts
			script, err := mustProvider("package").Probe(req)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(script, tc.probe) {
				t.Errorf("probe: got %q; want it to contain %q", script, tc.probe)
			}
			ch, err := mustProvider("package").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("action: got %s (%v); want %s", ch.Action, ch.Fields, tc.action)
			}
			if tc.fields != nil {
				got := fieldMap(ch)
				if len(got) != len(tc.fields) {
					t.Errorf("fields: got %v; want %v", got, tc.fields)
				}
				for k, v := range tc.fields {
					if got[k] != v {
						t.Errorf("field %s: got %q; want %q", k, got[k], v)
					}
				}
			}
			if !ch.Changed() {
				return
			}
			f := &fakeHost{}
			if _, err := mustProvider("package").Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if len(f.scripts) != 1 || f.scripts[0] != tc.apply {
				t.Errorf("apply scripts: got %q; want exactly [%q]", f.scripts, tc.apply)
			}
		})
	}
}

func TestPackageErrors(t *testing.T) {
	tests := []struct {
		name  string
		facts string
		spec  PackageSpec
		want  string
	}{
		{"no manager", "", PackageSpec{Name: []string{"x"}}, "set provider to apt, dnf, yum, apk or pacman"},
		{"unknown manager", "zypper", PackageSpec{Name: []string{"x"}}, `package manager "zypper" is not supported`},
		{"version with two names", "apt", PackageSpec{Name: []string{"a", "b"}, Version: "1"}, "only allowed with a single name"},
		{"version with apk", "apk", PackageSpec{Name: []string{"a"}, Version: "1"}, "version is not supported with apk"},
		{"version with absent", "apt", PackageSpec{Name: []string{"a"}, Version: "1", State: "absent"}, "makes no sense"},
		{"option-like name", "apt", PackageSpec{Name: []string{"--purge"}}, "is not a package name"},
		{"no name", "apt", PackageSpec{}, "name is required"},
		{"src with latest", "apt", PackageSpec{Name: []string{"a"}, Src: "a.deb", State: "latest"}, "src installs a package file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, "", nil, nil)
			if tc.facts != "" {
				req.Facts["pkg_manager"] = tc.facts
			}
			_, err := mustProvider("package").Probe(req)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v; want an error containing %q", err, tc.want)
			}
		})
	}
}

// buildDeb builds a tiny package with dpkg-deb into dir and returns its
// file name.
func buildDeb(t *testing.T, dir, name, version, compress string) string {
	t.Helper()
	file := name + "_" + version + "_" + compress + ".deb"
	testutil.BuildDeb(t, filepath.Join(dir, file), compress, map[string]string{
		"DEBIAN/control": "Package: " + name + "\nVersion: " + version +
			"\nArchitecture: all\nMaintainer: opsmop tests <tests@opsmop.invalid>\nDescription: opsmop test package\n",
		"usr/share/" + name + "/hello.txt": "hello from " + name + " " + version + "\n",
	})
	return file
}

func TestDebControl(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		compress string
		version  string
		err      error
	}{{"gzip", "1.2-3", nil}, {"none", "0.1", nil}, {"xz", "", errDebUnreadable}} {
		t.Run(tc.compress, func(t *testing.T) {
			v := tc.version
			if v == "" {
				v = "9.9"
			}
			f, err := os.Open(filepath.Join(dir, buildDeb(t, dir, "opsmop-test", v, tc.compress)))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			name, version, err := debControl(f)
			if err != tc.err {
				t.Fatalf("got error %v; want %v", err, tc.err)
			}
			if tc.err == nil && (name != "opsmop-test" || version != tc.version) {
				t.Errorf("got %s %s; want opsmop-test %s", name, version, tc.version)
			}
		})
	}
	if _, _, err := debControl(strings.NewReader("not an archive")); err == nil {
		t.Error("garbage: got no error")
	}
}

func TestPackageSrcFake(t *testing.T) {
	dir := t.TempDir()
	deb := buildDeb(t, dir, "opsmop-test", "2.0", "gzip")
	tests := []struct {
		name   string
		spec   PackageSpec
		out    string
		action Action
		want   string // error
	}{
		{"older installed", PackageSpec{Name: []string{"opsmop-test"}, Src: deb}, "opsmop-test install ok installed 1.0\n", Update, ""},
		{"same installed", PackageSpec{Name: []string{"opsmop-test"}, Src: deb}, "opsmop-test install ok installed 2.0\n", None, ""},
		{"wrong name", PackageSpec{Name: []string{"other"}, Src: deb}, "", None, `holds package "opsmop-test", not "other"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.spec
			req := newReq(&s, dir, nil, nil)
			req.Facts["pkg_manager"] = "apt"
			ch, err := mustProvider("package").Check(req, connection.Result{Stdout: []byte(tc.out)})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v; want an error containing %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ch.Action != tc.action {
				t.Fatalf("got %s %v; want %s", ch.Action, ch.Fields, tc.action)
			}
			if !ch.Changed() {
				return
			}
			f := (&fakeHost{}).on("mktemp -d", "/tmp/opsmop.abc\n", 0)
			if _, err := mustProvider("package").Apply(testCtx(t), f, req, ch); err != nil {
				t.Fatal(err)
			}
			if len(f.uploads) != 1 || f.uploads[0].dst != "/tmp/opsmop.abc/"+deb {
				t.Fatalf("uploads: got %+v; want one to /tmp/opsmop.abc/%s", f.uploads, deb)
			}
			joined := strings.Join(f.scripts, "\n---\n")
			if !strings.Contains(joined, "apt-get install -y -q --allow-downgrades -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold /tmp/opsmop.abc/"+deb) {
				t.Errorf("scripts: got %q; want apt-get install of the uploaded file", f.scripts)
			}
			if last := f.scripts[len(f.scripts)-1]; last != "rm -rf -- /tmp/opsmop.abc" {
				t.Errorf("last script: got %q; want the temp dir removed", last)
			}
		})
	}
}
