package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
)

// TestDebInstallsOnHost builds the static binary and its .deb as make
// dist does (packaging/nfpm.yaml through the go.mod tool nfpm), installs
// the .deb with dpkg -i on a lab host and runs opsmop version there.
func TestDebInstallsOnHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 57, Hosts: []lab.HostSpec{{Name: "pkg1"}}})
	dir := t.TempDir()
	bin := filepath.Join(dir, "opsmop")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	if out, err := exec.Command("ldd", bin).CombinedOutput(); err == nil || !strings.Contains(string(out), "not a dynamic executable") {
		t.Errorf("ldd %s: got %q; want a static binary (not a dynamic executable)", bin, out)
	}
	// The manual page and completion scripts, as make dist writes them.
	docs := filepath.Join(dir, "docs")
	if err := os.Mkdir(docs, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string][]string{"opsmop.1": {"man"}, "opsmop.bash": {"completion", "bash"}, "opsmop.zsh": {"completion", "zsh"}, "opsmop.fish": {"completion", "fish"}} {
		out, err := exec.Command(bin, args...).Output()
		if err != nil || len(out) == 0 {
			t.Fatalf("opsmop %v: %v (%d bytes)", args, err, len(out))
		}
		if err := os.WriteFile(filepath.Join(docs, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	pkg := exec.Command("go", "tool", "nfpm", "package", "-f", "packaging/nfpm.yaml", "-p", "deb", "-t", dir)
	pkg.Env = append(os.Environ(), "OPSMOP_VERSION="+Version, "OPSMOP_ARCH=amd64", "OPSMOP_BIN="+bin, "OPSMOP_DOCS="+docs)
	if out, err := pkg.CombinedOutput(); err != nil {
		t.Fatalf("nfpm package: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("nfpm wrote %v; want one .deb", debs)
	}
	f, err := os.Open(debs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := l.Host("pkg1")
	ctx := context.Background()
	// The host's /usr is an overlay of this machine's: nothing may be
	// there before, or the version below would prove nothing.
	if out, err := h.Exec(ctx, "test ! -e /usr/bin/opsmop"); err != nil {
		t.Fatalf("pkg1 has /usr/bin/opsmop before the install (%v %s): remove it from this machine", err, out)
	}
	if out, err := h.ExecInput(ctx, "cat > /tmp/opsmop.deb && dpkg -i /tmp/opsmop.deb && dpkg-query -W -f='${Package} ${Version} ${Architecture}\\n' opsmop", f); err != nil {
		t.Fatalf("dpkg -i on pkg1: %v\n%s", err, out)
	} else if want := "opsmop " + Version + " amd64"; !bytes.Contains(out, []byte(want)) {
		t.Errorf("dpkg-query on pkg1: got %q; want %q", out, want)
	}
	files, err := h.Exec(ctx, "dpkg -L opsmop")
	if err != nil {
		t.Fatalf("dpkg -L opsmop on pkg1: %v", err)
	}
	for _, want := range []string{"/usr/bin/opsmop", "/usr/share/man/man1/opsmop.1", "/usr/share/bash-completion/completions/opsmop", "/usr/share/zsh/vendor-completions/_opsmop", "/usr/share/fish/vendor_completions.d/opsmop.fish"} {
		if !strings.Contains(string(files)+"\n", want+"\n") {
			t.Errorf("the .deb installed %q; want %s among them", files, want)
		}
	}
	out, err := h.Exec(ctx, "/usr/bin/opsmop version")
	if err != nil || !strings.HasPrefix(string(out), "opsmop "+Version) {
		t.Errorf("opsmop version on pkg1: got %q (%v); want it to start with %q", out, err, "opsmop "+Version)
	}
}
