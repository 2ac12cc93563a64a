package connection

// Uploads on hosts where SFTP is hard (issue 14, points 2 and 5): login
// dotfiles that print on stdout and stderr (bash, fish, tcsh), sshd
// MaxSessions 1 and 2, no sftp-server at all, an sftp-server that is not
// one, and a login shell that runs nothing.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
)

// wildSubnet is TestWildSFTP's lab block (127.22.0.0/16).
const wildSubnet = 22

// noiseScript makes every lab user's login print on stdout and stderr:
// root and deploy through bash's .bashrc (Debian's bash reads it for
// commands run over SSH), ops with fish, app with tcsh.
const noiseScript = `set -e
for u in root deploy; do
  d=$(getent passwd $u | cut -d: -f6)
  { printf '%s\n' 'echo "hello from $USER .bashrc"' 'printf "bin\001\002\003 noise\n"' 'echo "stderr noise from .bashrc" >&2'; cat "$d/.bashrc" 2>/dev/null || :; } >"$d/.bashrc.new"
  mv "$d/.bashrc.new" "$d/.bashrc"; chown $u "$d/.bashrc"
done
chsh -s /usr/bin/fish ops
mkdir -p /home/ops/.config/fish
printf '%s\n' 'echo hi from fish' 'echo fish noise on stderr >&2' >/home/ops/.config/fish/config.fish
chown -R ops /home/ops/.config
chsh -s /usr/bin/tcsh app
printf '%s\n' 'echo tcsh noise' 'echo tcsh noise on stderr > /dev/stderr' >/home/app/.tcshrc
chown app /home/app/.tcshrc
mkdir -p /srv/wild && chmod 755 /srv/wild
`

// fakeSFTP is an "sftp-server" that is not one.
const fakeSFTP = `#!/bin/sh
echo "this is not an sftp server"
cat >/dev/null
`

// sftpBinaries are where sftp_server.sh looks; the nosftp host has none.
const sftpBinaries = "/usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server /usr/libexec/ssh/sftp-server /usr/libexec/sftp-server /usr/lib/sftp-server /usr/local/libexec/sftp-server /usr/local/lib/sftp-server /usr/sbin/sftp-server"

func TestWildSFTP(t *testing.T) {
	l := &testLab{t: t, Lab: labtest.Start(t, lab.Config{Subnet: wildSubnet, Hosts: []lab.HostSpec{
		{Name: "noisy"},
		{Name: "max1", SSHDOptions: []string{"MaxSessions 1"}},
		{Name: "max2", SSHDOptions: []string{"MaxSessions 2"}},
		{Name: "nosftp", SSHDOptions: []string{"Subsystem sftp /nonexistent/sftp-server"}},
		{Name: "garbage", SSHDOptions: []string{"Subsystem sftp /usr/local/bin/fake-sftp"}},
		{Name: "subsys", SSHDOptions: []string{"Subsystem sftp /opt/sftp/sftp-server"}},
	}})}
	for _, name := range []string{"noisy", "max1", "nosftp", "garbage", "subsys"} {
		l.exec(t, name, noiseScript)
	}
	// subsys: sftp-server only where sshd's Subsystem line says, so the
	// login user's SFTP goes through the subsystem (and its noise).
	l.exec(t, "subsys", "mkdir -p /opt/sftp && cp /usr/lib/openssh/sftp-server /opt/sftp/ && for f in "+sftpBinaries+"; do rm -f $f; done")
	l.exec(t, "max2", "mkdir -p /srv/wild && chmod 755 /srv/wild")
	l.exec(t, "nosftp", "for f in "+sftpBinaries+"; do rm -f $f; done")
	l.exec(t, "garbage", "for f in /usr/local/bin/fake-sftp /usr/lib/openssh/sftp-server; do printf '%s' "+shell.Quote(fakeSFTP)+" >$f; chmod 755 $f; done")
	// The noise reaches what sshd runs through each login shell: checked
	// once, so the tests below test what they claim to.
	for _, c := range []struct{ user, want string }{{"root", "hello from root .bashrc"}, {"deploy", "hello from deploy .bashrc"}, {"ops", "hi from fish"}, {"app", "tcsh noise"}} {
		if out := l.loginOutput(t, "noisy", c.user); !strings.Contains(out, c.want) || !strings.Contains(out, "stderr") {
			t.Fatalf("login of %s on noisy printed %q; want it to contain %q and stderr noise", c.user, out, c.want)
		}
	}

	t.Run("Uploads", func(t *testing.T) { testWildUploads(t, l) })
	t.Run("Failures", func(t *testing.T) { testWildFailures(t, l) })
	t.Run("NothingWorks", func(t *testing.T) { testWildNothingWorks(t, l) })
	t.Run("MaxSessions1TwoIdentities", func(t *testing.T) { testWildMax1TwoIdentities(t, l) })
	t.Run("MaxSessions1Busy", func(t *testing.T) { testWildMax1Busy(t, l) })
	t.Run("MaxSessions2", func(t *testing.T) { testWildMax2(t, l) })
	t.Run("Throughput", func(t *testing.T) { testWildThroughput(t, l) })
	t.Run("ShellPathBashAsSh", func(t *testing.T) { testWildBashAsSh(t, l) })
}

func testWildBashAsSh(t *testing.T, l *testLab) {
	// /bin/sh is bash (as on RHEL): the persistent shell is bash, which
	// reads its stdin a byte at a time; the shell path still works. Last:
	// it changes max2's /bin/sh.
	l.exec(t, "max2", "ln -sf bash /usr/bin/sh")
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.wildTarget("max2", wildIdentities[4]))
	if got := sshRun(t, h, `[ -n "$BASH_VERSION" ] && echo bash`); string(got.Stdout) != "bash\n" {
		t.Fatalf("persistent shell: got %q; want bash", got.Stdout)
	}
	s := h.sftpSlot()
	s.mu.Lock()
	s.unusable = &unusableError{errors.New("forced by the test")}
	s.mu.Unlock()
	data := randomBytes(2<<20, 11)
	start := time.Now()
	if err := h.Upload(context.Background(), "/srv/wild/bash-sh", bytes.NewReader(data), int64(len(data)), UploadOptions{Mode: 0o640}); err != nil {
		t.Fatal(err)
	}
	d := time.Since(start)
	l.checkFile(t, "max2", "/srv/wild/bash-sh", data, "640", "root")
	t.Logf("2 MiB through the shell with bash as sh: %v (%.1f MiB/s)", d.Round(time.Millisecond), 2/d.Seconds())
}

// loginOutput is what running "true" over a plain exec session as user
// prints (stdout then stderr): the login shell's noise.
func (l *testLab) loginOutput(t *testing.T, host, user string) string {
	t.Helper()
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target(host, user))
	sess, err := h.c.client.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	var o, e bytes.Buffer
	sess.Stdout, sess.Stderr = &o, &e
	if err := sess.Run("true"); err != nil {
		t.Fatalf("true as %s: %v (%s%s)", user, err, o.String(), e.String())
	}
	return o.String() + e.String()
}

// fileModeFromPosix is the os.FileMode of chmod's mode m.
func fileModeFromPosix(m uint32) os.FileMode {
	fm := os.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		fm |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		fm |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		fm |= os.ModeSticky
	}
	return fm
}

// wildIdentity is a login user, maybe with sudo, and where it may write.
type wildIdentity struct {
	name     string
	user     string
	sudo     bool
	password bool // sudo with deploy's password
	dir      string
	owner    string // owner of the files it writes
}

var wildIdentities = []wildIdentity{
	{name: "root bash", user: "root", dir: "/srv/wild", owner: "root"},
	{name: "deploy bash", user: "deploy", dir: "/home/deploy", owner: "deploy"},
	{name: "ops fish", user: "ops", dir: "/home/ops", owner: "ops"},
	{name: "app tcsh", user: "app", dir: "/home/app", owner: "app"},
	{name: "ops fish sudo", user: "ops", sudo: true, dir: "/srv/wild", owner: "root"},
	{name: "deploy bash sudo password", user: "deploy", sudo: true, password: true, dir: "/srv/wild", owner: "root"},
}

func (l *testLab) wildTarget(host string, id wildIdentity) Target {
	tg := l.target(host, id.user)
	tg.Sudo = id.sudo
	if id.password {
		tg.SudoPassword = l.DeployPassword
	}
	return tg
}

// randomBytes returns n deterministic pseudo-random bytes.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{seed})
	_, _ = r.Read(b)
	return b
}

// checkFile checks dst's content (by sha256), mode and owner on host.
func (l *testLab) checkFile(t *testing.T, host, dst string, data []byte, mode, owner string) {
	t.Helper()
	sum := sha256.Sum256(data)
	want := fmt.Sprintf("%s %s %d %s", mode, owner, len(data), hex.EncodeToString(sum[:]))
	got := strings.TrimSpace(l.exec(t, host, "printf '%s ' $(stat -c '%a %U %s' "+dst+"); sha256sum <"+dst+" | cut -d' ' -f1"))
	if got != want {
		t.Fatalf("%s on %s: got %q; want %q (mode owner size sha256)", dst, host, got, want)
	}
}

// noTemps fails if an upload left a temp file in dir on host.
func (l *testLab) noTemps(t *testing.T, host, dir string) {
	t.Helper()
	if left := l.exec(t, host, "ls -A "+dir+" | grep opsmop || true"); left != "" {
		t.Fatalf("temp files left in %s on %s: %q", dir, host, left)
	}
}

// wantPath says which way a host's uploads must go.
type wantPath int

const (
	viaSFTP wantPath = iota
	viaShell
)

// uploadPath reports which way h's last upload went: the identity's SFTP
// client runs (SFTP) or SFTP is known unusable / sshd's limit rules it
// out (shell).
func uploadPath(h *SSHHost) wantPath {
	s := h.sftpSlot()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cl != nil {
		return viaSFTP
	}
	return viaShell
}

func testWildUploads(t *testing.T, l *testLab) {
	small := []byte("small file\n")
	big := randomBytes(5<<20, 7)
	hosts := []struct {
		name     string
		want     wantPath
		wantSudo wantPath // for sudo identities
	}{
		{"noisy", viaSFTP, viaSFTP},
		{"max1", viaShell, viaShell},
		{"nosftp", viaShell, viaShell},
		{"garbage", viaShell, viaShell},
		// The subsystem runs as the login user: under sudo, the shell.
		{"subsys", viaSFTP, viaShell},
	}
	for _, hc := range hosts {
		t.Run(hc.name, func(t *testing.T) {
			p := l.pool(t, PoolConfig{})
			for _, id := range wildIdentities {
				t.Run(id.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					h := l.host(t, p, l.wildTarget(hc.name, id))
					tag := strings.ReplaceAll(id.name, " ", "-")
					// Commands interleaved with uploads: the noise never
					// reaches a command's output.
					if got := sshRun(t, h, "echo before"); string(got.Stdout) != "before\n" || got.ExitCode != 0 {
						t.Fatalf("run before: got %q exit %d; want \"before\\n\" exit 0", got.Stdout, got.ExitCode)
					}
					dst := id.dir + "/small-" + tag
					if err := h.Upload(ctx, dst, bytes.NewReader(small), int64(len(small)), UploadOptions{Mode: 0o640}); err != nil {
						t.Fatalf("upload small: %v", err)
					}
					l.checkFile(t, hc.name, dst, small, "640", id.owner)
					if got := sshRun(t, h, "cat "+shell.Quote(dst)); !bytes.Equal(got.Stdout, small) {
						t.Fatalf("cat after upload: got %q; want %q", got.Stdout, small)
					}
					var last int64
					dst = id.dir + "/big-" + tag
					err := h.Upload(ctx, dst, bytes.NewReader(big), int64(len(big)), UploadOptions{Mode: 0o600, Progress: func(w, _ int64) { last = w }})
					if err != nil {
						t.Fatalf("upload 5 MiB: %v", err)
					}
					l.checkFile(t, hc.name, dst, big, "600", id.owner)
					if last != int64(len(big)) {
						t.Fatalf("progress: got last %d; want %d", last, len(big))
					}
					if got := sshRun(t, h, "false"); got.ExitCode != 1 {
						t.Fatalf("run false: got exit %d; want 1", got.ExitCode)
					}
					want := hc.want
					if id.sudo {
						want = hc.wantSudo
					}
					if got := uploadPath(h); got != want {
						t.Fatalf("upload path: got %v; want %v (0 SFTP, 1 shell)", got, want)
					}
					l.noTemps(t, hc.name, id.dir)
				})
			}
		})
	}
}

func testWildFailures(t *testing.T, l *testLab) {
	// Through the shell (nosftp) and over SFTP (noisy): the same errors,
	// the same modes, nothing left behind.
	for _, host := range []string{"nosftp", "noisy"} {
		t.Run(host, func(t *testing.T) {
			p := l.pool(t, PoolConfig{})
			ctx := context.Background()
			root := l.host(t, p, l.target(host, "root"))
			deploy := l.host(t, p, l.target(host, "deploy"))
			sshRun(t, root, "mkdir -p /srv/wild/dir /srv/wild/f && chmod 755 /srv/wild/f && chown deploy /srv/wild/f")
			modes := []struct {
				name     string
				h        *SSHHost
				dst      string
				opts     UploadOptions
				wantStat string
			}{
				{"default mode", deploy, "/srv/wild/f/a", UploadOptions{}, "644 deploy deploy"},
				{"owner and group by name", root, "/srv/wild/f/b", UploadOptions{Mode: 0o600, Owner: "app", Group: "ops"}, "600 app ops"},
				{"numeric ids and setuid", root, "/srv/wild/f/c", UploadOptions{Mode: 0o4755, Owner: "65534", Group: "65534"}, "4755 nobody nogroup"},
				{"group only and setgid sticky", root, "/srv/wild/f/d", UploadOptions{Mode: 0o3750, Group: "app"}, "3750 root app"},
			}
			for _, tc := range modes {
				t.Run(tc.name, func(t *testing.T) {
					if err := tc.h.Upload(ctx, tc.dst, strings.NewReader("x"), 1, tc.opts); err != nil {
						t.Fatal(err)
					}
					if got := strings.TrimSpace(l.exec(t, host, "stat -c '%a %U %G' "+tc.dst)); got != tc.wantStat {
						t.Fatalf("stat: got %q; want %q", got, tc.wantStat)
					}
				})
			}
			failures := []struct {
				name    string
				h       *SSHHost
				dst     string
				r       io.Reader
				size    int64
				opts    UploadOptions
				wantErr string
			}{
				{"short source", deploy, "/srv/wild/f/short", strings.NewReader("abc"), 10, UploadOptions{}, "source ended after 3 of 10 bytes"},
				{"no permission", deploy, "/root/x", strings.NewReader("x"), 1, UploadOptions{}, "use sudo"},
				{"missing dir", deploy, "/srv/nope/x", strings.NewReader("x"), 1, UploadOptions{}, "does not exist"},
				{"unknown owner", root, "/srv/wild/f/own", strings.NewReader("x"), 1, UploadOptions{Owner: "nobody-such"}, "set owner/group"},
				{"failing reader", root, "/srv/wild/f/fail", io.MultiReader(strings.NewReader("abc"), sshErrReader{}), 10, UploadOptions{}, "boom"},
				{"destination is a directory", root, "/srv/wild/dir", strings.NewReader("x"), 1, UploadOptions{}, "rename into place"},
			}
			for _, tc := range failures {
				t.Run(tc.name, func(t *testing.T) {
					err := tc.h.Upload(ctx, tc.dst, tc.r, tc.size, tc.opts)
					if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
						t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
					}
					l.noTemps(t, host, "/srv/wild/f")
					l.noTemps(t, host, "/srv/wild")
				})
			}
		})
	}
}

func testWildNothingWorks(t *testing.T, l *testLab) {
	// A login shell that runs nothing: SFTP cannot start, the shell
	// cannot carry the file, and the error says both, never success.
	l.exec(t, "garbage", "useradd -m -s /bin/false nothing && mkdir -p /home/nothing/.ssh && cp /home/app/.ssh/authorized_keys /home/nothing/.ssh/ && chown -R nothing /home/nothing && sed -i 's/^nothing:!/nothing:*/' /etc/shadow")
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target("garbage", "nothing"))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := h.Upload(ctx, "/home/nothing/f", strings.NewReader("x"), 1, UploadOptions{})
	if err == nil {
		t.Fatal("upload with /bin/false as login shell: got success; want an error")
	}
	t.Logf("error: %v", err)
	for _, want := range []string{"SFTP cannot start", "the login shell did not run opsmop's sftp-server starter", "and through the persistent shell: create temp file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got error %q; want it to contain %q", err, want)
		}
	}
	if got := strings.TrimSpace(l.exec(t, "garbage", "ls -A /home/nothing")); strings.Contains(got, "f") && strings.Contains(got, "opsmop") {
		t.Fatalf("files left: %q", got)
	}
}

func testWildMax1TwoIdentities(t *testing.T, l *testLab) {
	// MaxSessions 1, the login user and root through sudo on one
	// connection: each in turn closes the other's idle shell.
	p := l.pool(t, PoolConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	login := l.host(t, p, l.wildTarget("max1", wildIdentities[1]))
	sudo := l.host(t, p, l.wildTarget("max1", wildIdentities[5]))
	data := randomBytes(300<<10, 3)
	for i := range 3 {
		for _, hc := range []struct {
			h     *SSHHost
			dir   string
			owner string
			whoam string
		}{{login, "/home/deploy", "deploy", "deploy"}, {sudo, "/srv/wild", "root", "root"}} {
			if got := sshRun(t, hc.h, "id -un"); strings.TrimSpace(string(got.Stdout)) != hc.whoam {
				t.Fatalf("round %d: id -un: got %q; want %q", i, got.Stdout, hc.whoam)
			}
			dst := fmt.Sprintf("%s/two-%d", hc.dir, i)
			if err := hc.h.Upload(ctx, dst, bytes.NewReader(data), int64(len(data)), UploadOptions{Mode: 0o640}); err != nil {
				t.Fatalf("round %d: upload as %s: %v", i, hc.whoam, err)
			}
			l.checkFile(t, "max1", dst, data, "640", hc.owner)
		}
	}
	if _, limit, _ := login.c.sl.state(); limit != 1 {
		t.Fatalf("learned limit: got %d; want 1", limit)
	}
}

func testWildMax1Busy(t *testing.T, l *testLab) {
	// MaxSessions 1 and the only session busy with a command: another
	// identity's command fails with a *SessionLimitError that names
	// MaxSessions, the kill path is told no helper session can open, and
	// once the command ends the other identity runs.
	p := l.pool(t, PoolConfig{})
	a := l.host(t, p, l.wildTarget("max1", wildIdentities[2])) // ops, fish
	b := l.host(t, p, l.wildTarget("max1", wildIdentities[4])) // ops, sudo to root
	sshRun(t, a, "true")
	if !a.c.sessionAvailable() {
		t.Fatal("sessionAvailable with an idle shell of one identity: got false; want true (it can be closed)")
	}
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		close(started)
		if _, err := a.Run(context.Background(), "sleep 4", nil); err != nil {
			t.Errorf("sleep 4: %v", err)
		}
	}()
	<-started
	time.Sleep(500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := b.Run(ctx, "true", nil)
	var sle *SessionLimitError
	if !errors.As(err, &sle) || !strings.Contains(err.Error(), "MaxSessions") {
		t.Fatalf("run while the only session is busy: got %v; want a *SessionLimitError naming MaxSessions", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("SessionLimitError after %v; want it within 3s", d)
	}
	if a.c.sessionAvailable() {
		t.Fatal("sessionAvailable while the only session is busy: got true; want false")
	}
	wg.Wait()
	if got := sshRun(t, b, "id -un"); strings.TrimSpace(string(got.Stdout)) != "root" {
		t.Fatalf("after the command ended: got %q; want root", got.Stdout)
	}
}

func testWildMax2(t *testing.T, l *testLab) {
	// MaxSessions 2: one identity has its shell and SFTP; a second
	// identity's shell takes the place of the idle SFTP client; with two
	// shells, uploads go through the shell.
	p := l.pool(t, PoolConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	login := l.host(t, p, l.target("max2", "ops"))
	sudo := l.host(t, p, l.wildTarget("max2", wildIdentities[4]))
	appTarget := l.wildTarget("max2", wildIdentities[4])
	appTarget.SudoUser = "app"
	app := l.host(t, p, appTarget)
	data := randomBytes(1<<20, 5)
	if err := login.Upload(ctx, "/tmp/m2-a", bytes.NewReader(data), int64(len(data)), UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := uploadPath(login); got != viaSFTP {
		t.Fatalf("one identity, MaxSessions 2: got path %v; want SFTP (0)", got)
	}
	if got := sshRun(t, sudo, "id -un"); strings.TrimSpace(string(got.Stdout)) != "root" {
		t.Fatalf("second identity: got %q; want root", got.Stdout)
	}
	if err := sudo.Upload(ctx, "/srv/wild/m2-b", bytes.NewReader(data), int64(len(data)), UploadOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	l.checkFile(t, "max2", "/srv/wild/m2-b", data, "600", "root")
	if got := uploadPath(sudo); got != viaShell {
		t.Fatalf("two shells on MaxSessions 2: got path %v; want the shell (1)", got)
	}
	// Three identities on two sessions, interleaved.
	for i := range 2 {
		for _, hc := range []struct {
			h     *SSHHost
			owner string
		}{{login, "ops"}, {sudo, "root"}, {app, "app"}} {
			if got := sshRun(t, hc.h, "id -un"); strings.TrimSpace(string(got.Stdout)) != hc.owner {
				t.Fatalf("round %d: id -un: got %q; want %s", i, got.Stdout, hc.owner)
			}
			dst := fmt.Sprintf("/tmp/m2-%d-%s", i, hc.owner)
			if err := hc.h.Upload(ctx, dst, bytes.NewReader(data), int64(len(data)), UploadOptions{Mode: 0o604}); err != nil {
				t.Fatalf("round %d as %s: %v", i, hc.owner, err)
			}
			l.checkFile(t, "max2", dst, data, "604", hc.owner)
		}
	}
	if _, limit, _ := login.c.sl.state(); limit != 2 {
		t.Fatalf("learned limit: got %d; want 2", limit)
	}
}

func testWildThroughput(t *testing.T, l *testLab) {
	// 50 MiB over SFTP and through the persistent shell, same host (quiet
	// dotfiles), same identity kind.
	const size = 50 << 20
	data := randomBytes(size, 9)
	sum := sha256.Sum256(data)
	for _, way := range []string{"sftp", "shell"} {
		p := l.pool(t, PoolConfig{})
		h := l.host(t, p, l.target("max2", "root"))
		sshRun(t, h, "true")
		if way == "shell" {
			s := h.sftpSlot()
			s.mu.Lock()
			s.unusable = &unusableError{errors.New("forced by the test")}
			s.mu.Unlock()
		} else if err := h.Upload(context.Background(), "/srv/wild/warm", strings.NewReader("x"), 1, UploadOptions{}); err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			start := time.Now()
			if err := h.Upload(context.Background(), "/srv/wild/big50", bytes.NewReader(data), size, UploadOptions{}); err != nil {
				t.Fatalf("%s: %v", way, err)
			}
			d := time.Since(start)
			if got := strings.Fields(l.exec(t, "max2", "sha256sum /srv/wild/big50; rm -f /srv/wild/big50"))[0]; got != hex.EncodeToString(sum[:]) {
				t.Fatalf("%s: sha256 on the host: got %s; want %x", way, got, sum)
			}
			t.Logf("50 MiB upload via %s (#%d on the connection): %v (%.0f MiB/s)", way, i+1, d.Round(time.Millisecond), float64(size)/(1<<20)/d.Seconds())
		}
		p.Close()
	}
}

func TestVersionReader(t *testing.T) {
	version := make([]byte, 9)
	binary.BigEndian.PutUint32(version, 5)
	version[4] = 2
	binary.BigEndian.PutUint32(version[5:], 3)
	rest := []byte("rest of the stream")
	tests := []struct {
		name      string
		in        []byte
		started   bool
		silent    bool   // the server says nothing more after in
		want      []byte // nil: an error
		wantBytes int    // SFTPNoiseError.Bytes; 0 = no noise error
		wantMsg   string
	}{
		{name: "clean", in: append(append([]byte{}, version...), rest...), want: append(append([]byte{}, version...), rest...)},
		{name: "short noise", in: append(append([]byte("hi\n"), version...), rest...), want: append(append([]byte{}, version...), rest...)},
		{name: "noise with binary", in: append(append([]byte("hello\x00\x01\x02\n"), version...), rest...), want: append(append([]byte{}, version...), rest...)},
		{name: "only noise", in: []byte("hello\n"), wantBytes: 6, wantMsg: "dotfiles write to stdout"},
		{name: "not sftp", in: []byte("this is not an sftp server\n"), started: true, wantBytes: 9, wantMsg: "is not an SFTP server"},
		{name: "nothing", in: nil, wantMsg: "ended before it answered"},
		{name: "too much noise", in: append(bytes.Repeat([]byte("x"), maxNoise+10), version...), wantBytes: maxNoise + 1, wantMsg: "dotfiles"},
		{name: "version after the marker not first", in: append([]byte("hi\n"), version...), started: true, wantBytes: 3, wantMsg: "not an SFTP server"},
		{name: "noise then silence", in: []byte("hello\n"), silent: true, wantBytes: 6, wantMsg: "then nothing for"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r io.Reader = iotestOneByte(tc.in)
			if tc.silent {
				pr, pw := io.Pipe()
				defer pw.Close()
				go func() { _, _ = pw.Write(tc.in) }()
				r = pr
			}
			v := &versionReader{r: r, started: tc.started, quiet: 200 * time.Millisecond}
			got, err := io.ReadAll(v)
			if tc.want != nil {
				if err != nil || !bytes.Equal(got, tc.want) {
					t.Fatalf("got %q, %v; want %q, nil", got, err, tc.want)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("got error %v; want one containing %q", err, tc.wantMsg)
			}
			if tc.wantBytes > 0 {
				var ne *SFTPNoiseError
				if !errors.As(err, &ne) || ne.Bytes < tc.wantBytes {
					t.Fatalf("got %v; want an *SFTPNoiseError with Bytes >= %d", err, tc.wantBytes)
				}
			}
		})
	}
}

// iotestOneByte is a reader of b that returns few bytes per Read, as a
// session's stdout may.
func iotestOneByte(b []byte) io.Reader {
	return &chunkReader{b: b, n: 3}
}

type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[k:]
	return k, nil
}

func TestSessionLimits(t *testing.T) {
	type step struct {
		op        string // open, release, refuse, age (forget the last release)
		wantLimit int
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"refused at one", []step{{"open", 0}, {"refuse", 1}}},
		{"refused at two", []step{{"open", 0}, {"open", 0}, {"refuse", 2}}},
		{"a later open proves it higher", []step{{"open", 0}, {"refuse", 1}, {"open", 2}}},
		{"refused with nothing held tells nothing", []step{{"refuse", 0}}},
		{"refused right after a release tells nothing", []step{{"open", 0}, {"open", 0}, {"release", 0}, {"refuse", 0}, {"age", 0}, {"refuse", 1}}},
		{"a lower refusal lowers it", []step{{"open", 0}, {"open", 0}, {"refuse", 2}, {"release", 2}, {"age", 2}, {"refuse", 1}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var l sessionLimits
			for i, s := range tc.steps {
				switch s.op {
				case "open":
					l.opened()
				case "release":
					l.released()
				case "refuse":
					l.refused()
				case "age":
					l.lastRelease = time.Now().Add(-2 * freshRelease)
				}
				if _, got, _ := l.state(); got != s.wantLimit {
					t.Fatalf("step %d (%s): got limit %d; want %d", i, s.op, got, s.wantLimit)
				}
			}
		})
	}
	var l sessionLimits
	unpin := l.pin("sudo:root")
	l.pin("sudo:root")()
	if !l.pinned("sudo:root") || l.pinned("") {
		t.Fatalf("pinned: got %v, %v; want true, false", l.pinned("sudo:root"), l.pinned(""))
	}
	unpin()
	unpin()
	if l.pinned("sudo:root") {
		t.Fatal("pinned after unpin: got true; want false")
	}
}

func TestSessionErrors(t *testing.T) {
	e := &SessionLimitError{Host: "web1", Held: 1, Limit: 1, Purpose: "a session", Err: errors.New(`ssh: rejected: connect failed ("open failed")`)}
	for _, want := range []string{"host web1", "MaxSessions", "holds 1 session", "open failed", "sshd_config"} {
		if !strings.Contains(e.Error(), want) {
			t.Errorf("SessionLimitError: got %q; want it to contain %q", e.Error(), want)
		}
	}
	n := &SFTPNoiseError{Host: "web1", Bytes: 6, Sample: "hello\n"}
	for _, want := range []string{"sftp-server printed 6 bytes before the SFTP version", "dotfiles write to stdout", "status is-interactive"} {
		if !strings.Contains(n.Error(), want) {
			t.Errorf("SFTPNoiseError: got %q; want it to contain %q", n.Error(), want)
		}
	}
	if !errors.Is(&unusableError{n}, errSFTPUnusable) {
		t.Error("unusableError: got errors.Is(errSFTPUnusable) false; want true")
	}
	modes := []struct {
		in   uint32
		want uint32
	}{{0o644, 0o644}, {0o4755, 0o4755}, {0o3750, 0o3750}, {0o1777, 0o1777}}
	for _, m := range modes {
		fm := fileModeFromPosix(m.in)
		if got := posixMode(fm); got != m.want {
			t.Errorf("posixMode(%v): got %04o; want %04o", fm, got, m.want)
		}
	}
}

// TestWritePrintfLeadingDash runs writePrintf's text through the local
// shells opsmop's persistent shell may be: a chunk with a NUL byte that
// starts with '-' (its printf format) was taken for an option and lost.
func TestWritePrintfLeadingDash(t *testing.T) {
	data := append(bytes.Repeat([]byte("a"), 32*1024), []byte("-x\x00y%s\\0015-")...)
	data = append(data, randomBytes(100*1024, 2)...)
	var b strings.Builder
	writePrintf(&b, data)
	for _, sh := range [][]string{{"/bin/sh"}, {"bash", "--posix"}, {"busybox", "ash"}, {"dash"}} {
		if _, err := exec.LookPath(sh[0]); err != nil {
			t.Logf("%s not installed", sh[0])
			continue
		}
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			cmd := exec.Command(sh[0], sh[1:]...)
			cmd.Stdin = strings.NewReader(b.String())
			var e bytes.Buffer
			cmd.Stderr = &e
			out, err := cmd.Output()
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("got %d bytes (equal %v), %v, stderr %q; want the %d bytes", len(out), bytes.Equal(out, data), err, e.String(), len(data))
			}
		})
	}
}

// TestShellUploadScripts runs uploadShell's commands with the local
// shells, as the persistent shell runs them (stdin a file): the temp file
// is created 0600 and exclusively, chunks append, finish checks the size,
// sets the mode and renames; each failure has its exit status.
func TestShellUploadScripts(t *testing.T) {
	for _, sh := range [][]string{{"sh"}, {"bash", "--posix"}, {"busybox", "ash"}} {
		if _, err := exec.LookPath(sh[0]); err != nil {
			if os.Getenv("CI") != "" {
				t.Errorf("%s not installed", sh[0])
			}
			continue
		}
		t.Run(strings.Join(sh, " "), func(t *testing.T) {
			dir := t.TempDir()
			run := func(script string, stdin []byte) (int, string, string) {
				t.Helper()
				cmd := exec.Command(sh[0], append(sh[1:], "-c", script)...)
				cmd.Stdin = bytes.NewReader(stdin)
				var o, e bytes.Buffer
				cmd.Stdout, cmd.Stderr = &o, &e
				err := cmd.Run()
				var ee *exec.ExitError
				if err != nil && !errors.As(err, &ee) {
					t.Fatal(err)
				}
				return cmd.ProcessState.ExitCode(), o.String(), e.String()
			}
			sc := shellUploadScripts{token: "tok", tmp: dir + "/.opsmop-x.tmp", dst: dir + "/it's here"}
			a, b := []byte("first\x00part-"), []byte("-second %s part\n")
			if code, out, errOut := run(sc.create(true), a); code != 0 || out != "tok-ran\n" {
				t.Fatalf("create: got exit %d, stdout %q, stderr %q; want 0, \"tok-ran\\n\"", code, out, errOut)
			}
			if fi, err := os.Stat(sc.tmp); err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("temp file: got %v, %v; want mode 0600", fi, err)
			}
			if code, _, _ := run(sc.create(false), nil); code != shellCreate {
				t.Fatalf("create again: got exit %d; want %d (it exists: noclobber)", code, shellCreate)
			}
			if code, _, errOut := run(sc.appendChunk(), b); code != 0 {
				t.Fatalf("append: got exit %d (%s); want 0", code, errOut)
			}
			want := append(append([]byte{}, a...), b...)
			if code, _, errOut := run(sc.finish(int64(len(want))+1, UploadOptions{}), nil); code != shellShort || !strings.Contains(errOut, fmt.Sprintf("has %d of %d bytes", len(want), len(want)+1)) {
				t.Fatalf("finish with the wrong size: got exit %d (%s); want %d", code, errOut, shellShort)
			}
			if code, _, errOut := run(sc.finish(int64(len(want)), UploadOptions{Mode: 0o4750}), nil); code != 0 {
				t.Fatalf("finish: got exit %d (%s); want 0", code, errOut)
			}
			got, err := os.ReadFile(sc.dst)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("destination: got %q, %v; want %q", got, err, want)
			}
			if fi, _ := os.Stat(sc.dst); fi.Mode() != fileModeFromPosix(0o4750) {
				t.Fatalf("destination mode: got %v; want %v", fi.Mode(), fileModeFromPosix(0o4750))
			}
			if code, _, _ := run(sc.appendChunk(), b); code != shellGone {
				t.Fatalf("append after the rename: got exit %d; want %d", code, shellGone)
			}
			missing := shellUploadScripts{token: "tok", tmp: dir + "/nope/.opsmop-x.tmp", dst: dir + "/nope/f"}
			if code, _, _ := run(missing.create(true), a); code != shellNoDir {
				t.Fatalf("create in a missing directory: got exit %d; want %d", code, shellNoDir)
			}
			if err := os.Mkdir(dir+"/d", 0o755); err != nil {
				t.Fatal(err)
			}
			todir := shellUploadScripts{token: "tok", tmp: dir + "/.opsmop-y.tmp", dst: dir + "/d"}
			run(todir.create(false), nil)
			if code, _, errOut := run(todir.finish(0, UploadOptions{}), nil); code != shellRenameTo || !strings.Contains(errOut, "is a directory") {
				t.Fatalf("finish onto a directory: got exit %d (%s); want %d", code, errOut, shellRenameTo)
			}
		})
	}
}
