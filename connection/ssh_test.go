package connection

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/shell"
)

// labSubnet is this package's lab block (127.20.0.0/16).
const labSubnet = 20

// testLab is one lab shared by the subtests of TestSSH.
type testLab struct {
	*lab.Lab
	t *testing.T
}

func startLab(t *testing.T) *testLab {
	t.Helper()
	l := labtest.Start(t, lab.Config{Subnet: labSubnet, Hosts: []lab.HostSpec{
		{Name: "web1", Group: "web"},
		{Name: "web2", Group: "web"},
		{Name: "bastion", Group: "bastions"},
		{Name: "db1", Group: "db", Via: "bastion"},
		{Name: "db2", Group: "db", Via: "db1"},
	}})
	return &testLab{Lab: l, t: t}
}

// target returns the Target for host name as user, with the lab key and
// known_hosts checking on; Via is filled in along the chain.
func (l *testLab) target(name, user string) Target {
	h := l.Host(name)
	if h == nil {
		l.t.Fatalf("no lab host %s", name)
	}
	t := Target{Name: name, Address: h.Addr, Port: h.Port, User: user, PrivateKey: l.ClientKey,
		CheckHostKeys: true, ConnectTimeout: 10 * time.Second, CommandTimeout: 30 * time.Second}
	if h.Via != "" {
		v := l.target(h.Via, user)
		t.Via = &v
	}
	return t
}

func (l *testLab) pool(t *testing.T, cfg PoolConfig) *Pool {
	t.Helper()
	if cfg.KnownHostsFiles == nil {
		cfg.KnownHostsFiles = []string{l.KnownHosts}
	}
	p := NewPool(cfg)
	t.Cleanup(func() { p.Close() })
	return p
}

func (l *testLab) host(t *testing.T, p *Pool, tg Target) *SSHHost {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h, err := p.Host(ctx, tg)
	if err != nil {
		t.Fatalf("Host(%s): %v", tg.Name, err)
	}
	return h
}

func (l *testLab) exec(t *testing.T, name, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := l.Host(name).Exec(ctx, script)
	if err != nil {
		t.Fatalf("lab exec on %s: %v: %s", name, err, out)
	}
	return string(out)
}

func sshRun(t *testing.T, h *SSHHost, script string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r, err := h.Run(ctx, script, nil)
	if err != nil {
		t.Fatalf("Run(%q): %v", script, err)
	}
	return r
}

// acceptedLogins counts successful logins in a lab host's sshd log.
func (l *testLab) acceptedLogins(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile(l.Host(name).Log)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "Accepted publickey") + strings.Count(string(b), "Accepted password")
}

func hostKeyFingerprint(t *testing.T, authorized string) string {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(authorized))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.FingerprintSHA256(k)
}

func TestSSH(t *testing.T) {
	l := startLab(t)
	t.Run("Login", func(t *testing.T) { testLogin(t, l) })
	t.Run("AuthOrder", func(t *testing.T) { testAuthOrder(t, l) })
	t.Run("HostKeys", func(t *testing.T) { testHostKeys(t, l) })
	t.Run("Output", func(t *testing.T) { testOutput(t, l) })
	t.Run("Stdin", func(t *testing.T) { testStdin(t, l) })
	t.Run("Batch", func(t *testing.T) { testBatch(t, l) })
	t.Run("InlineProbes", func(t *testing.T) { testInlineProbes(t, l) })
	t.Run("Timeout", func(t *testing.T) { testTimeout(t, l) })
	t.Run("Sudo", func(t *testing.T) { testSudo(t, l) })
	t.Run("SudoPasswordHidden", func(t *testing.T) { testSudoPasswordHidden(t, l) })
	t.Run("Via", func(t *testing.T) { testVia(t, l) })
	t.Run("OneConnection", func(t *testing.T) { testOneConnection(t, l) })
	t.Run("Upload", func(t *testing.T) { testUpload(t, l) })
	t.Run("UploadSudo", func(t *testing.T) { testUploadSudo(t, l) })
	t.Run("UploadLarge", func(t *testing.T) { testUploadLarge(t, l) })
	t.Run("Keepalive", func(t *testing.T) { testKeepalive(t, l) })
	t.Run("CloseWhileRunning", func(t *testing.T) { testCloseWhileRunning(t, l) })
	t.Run("RemoveOnExit", func(t *testing.T) { testRemoveOnExit(t, l) })
	t.Run("OpenSessionFrozen", func(t *testing.T) { testOpenSessionFrozen(t, l) })
	t.Run("NoShell", func(t *testing.T) { testNoShell(t, l) })
	t.Run("Steps", func(t *testing.T) { testSteps(t, l, l.target("web1", "deploy")) })
	t.Run("StartRoundTrips", func(t *testing.T) { testStartRoundTrips(t, l) })
}

// testNoShell logs in as a user whose login shell cannot host opsmop's
// shell (it runs its -c argument with a PATH that holds nothing and
// without stdin; the password field is "*", not the "!" of a locked
// account, which sshd refuses without PAM): the persistent shell ends at
// once, which the first run learns from the init frame it reads (the
// commands were sent behind the init script), and every command then runs
// in its own exec channel, proven by its markers, the first run's
// included, each exactly once.
func testNoShell(t *testing.T, l *testLab) {
	const loginShell = "/usr/local/bin/opsmop-nosh"
	l.exec(t, "web2", `set -e
printf '%s\n' '#!/bin/bash' '[ "$1" = -c ] || exit 1' 'PATH=/nonexistent' 'eval "$2" </dev/null' >`+loginShell+`
chmod 755 `+loginShell+`
id -u nosh >/dev/null 2>&1 || useradd -m -p '*' -s `+loginShell+` nosh
mkdir -p ~nosh/.ssh && cp ~app/.ssh/authorized_keys ~nosh/.ssh/ && chown -R nosh: ~nosh/.ssh`)
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target("web2", "nosh"))
	tests := []struct {
		name    string
		scripts []string
		want    []string
	}{
		{"first run", []string{"echo $((6*7)) >>/tmp/nosh-count; echo first"}, []string{"first\n"}},
		{"batch", []string{"echo a", "echo b >&2; exit 3"}, []string{"a\n", ""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := h.RunBatch(context.Background(), tc.scripts)
			if err != nil {
				t.Fatalf("RunBatch: %v", err)
			}
			for i, r := range rs {
				if string(r.Stdout) != tc.want[i] {
					t.Fatalf("result %d: got stdout %q; want %q", i, r.Stdout, tc.want[i])
				}
			}
			if !h.slot().execMode {
				t.Fatal("the shell slot is not in exec mode")
			}
		})
	}
	t.Run("steps", func(t *testing.T) { testSteps(t, l, l.target("web2", "nosh")) })
	if got := l.exec(t, "web2", "cat /tmp/nosh-count; rm -f /tmp/nosh-count"); got != "42\n" {
		t.Fatalf("the first command's side effect: got %q; want it once (%q)", got, "42\n")
	}

	// A login shell that prints more than the junk limit before running
	// its command: sh starts and may run the first command, whose run
	// fails (it is not run a second time); later runs use exec channels.
	t.Run("junk before the init frame", func(t *testing.T) {
		const noisy = "/usr/local/bin/opsmop-noisy"
		l.exec(t, "web2", `set -e
printf '%s\n' '#!/bin/bash' '[ "$1" = -c ] || exit 1' 'head -c 3000000 /dev/zero' 'eval "$2"' >`+noisy+`
chmod 755 `+noisy+`
id -u noisy >/dev/null 2>&1 || useradd -m -p '*' -s `+noisy+` noisy
mkdir -p ~noisy/.ssh && cp ~app/.ssh/authorized_keys ~noisy/.ssh/ && chown -R noisy: ~noisy/.ssh`)
		h := l.host(t, p, l.target("web2", "noisy"))
		_, err := h.Run(context.Background(), "echo x >>/tmp/noisy-count", nil)
		if !errors.Is(err, errShellAlive) {
			t.Fatalf("first Run: got %v; want errShellAlive", err)
		}
		r := sshRun(t, h, "echo second")
		if !bytes.HasSuffix(r.Stdout, []byte("second\n")) || !h.slot().execMode {
			t.Fatalf("second Run: got %q (exec mode %v); want it to end in %q, in exec mode", sshTrunc(r.Stdout), h.slot().execMode, "second\n")
		}
		if got := l.exec(t, "web2", "cat /tmp/noisy-count 2>/dev/null; rm -f /tmp/noisy-count"); got != "" && got != "x\n" {
			t.Fatalf("the first command ran more than once: %q", got)
		}
	})
}

// testSteps runs a RunSteps batch on tg's host: a failed StepStop step
// stops the steps after it (they leave no trace on the host) but for the
// StepOnStop step right behind it, and the next batch starts afresh.
func testSteps(t *testing.T, l *testLab, tg Target) {
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, tg)
	dir := "/tmp/opsmop-steps-" + randHex(4)
	q := shell.Quote(dir)
	defer l.exec(t, tg.Name, "rm -rf "+q)
	steps := []Step{
		// Absolute paths: the exec-mode test user's PATH holds nothing.
		{Script: "/bin/mkdir " + q + " && echo made"},
		{Script: "/bin/cat >" + q + "/in; /bin/cat " + q + "/in", Stdin: []byte("a\x00b")},
		{Script: "echo probe; exit 3", Mode: StepGo},
		{Script: "echo guard >&2; exit 1"},
		{Script: "echo fresh", Mode: StepOnStop},
		{Script: ": >" + q + "/never"},
		{Script: "echo never", Mode: StepGo},
	}
	type want struct {
		out    string
		code   int
		notRun bool
	}
	wants := []want{{"made\n", 0, false}, {"a\x00b", 0, false}, {"probe\n", 3, false}, {"", 1, false}, {"fresh\n", 0, false}, {"", -1, true}, {"", -1, true}}
	rs, err := h.RunSteps(context.Background(), steps)
	if err != nil {
		t.Fatalf("RunSteps: %v", err)
	}
	if len(rs) != len(wants) {
		t.Fatalf("got %d results; want %d", len(rs), len(wants))
	}
	for i, w := range wants {
		if got := rs[i]; string(got.Stdout) != w.out || got.ExitCode != w.code || got.NotRun != w.notRun {
			t.Errorf("step %d: got %q status %d not run %v; want %q status %d not run %v", i, got.Stdout, got.ExitCode, got.NotRun, w.out, w.code, w.notRun)
		}
	}
	if got := l.exec(t, tg.Name, "ls "+q); got != "in\n" {
		t.Errorf("files on the host: got %q; want only %q (the steps after the stop must not run)", got, "in\n")
	}
	rs, err = h.RunSteps(context.Background(), []Step{{Script: "echo next"}, {Script: "echo no", Mode: StepOnStop}})
	if err != nil {
		t.Fatalf("second RunSteps: %v", err)
	}
	if string(rs[0].Stdout) != "next\n" || !rs[1].NotRun {
		t.Errorf("second batch: got %q and not run %v; want %q and the OnStop step not run", rs[0].Stdout, rs[1].NotRun, "next\n")
	}
	// WriteTo: the contents written by the shell, byte for byte, with the
	// mode asked; a file that cannot be created is not there; the umask
	// of later commands is the shell's.
	data := []byte("-x\x00%s\\\n\xff'")
	f, missing := dir+"/it's new", dir+"/nodir/f"
	rs, err = h.RunSteps(context.Background(), []Step{
		{Script: "echo $opsmop_written; /usr/bin/stat -c %a " + shell.Quote(f) + "; /bin/cat " + shell.Quote(f), WriteTo: f, WriteMode: 0o640, Stdin: data},
		{Script: "[ \"$opsmop_written\" != 0 ] && [ ! -e " + shell.Quote(missing) + " ] && echo absent", WriteTo: missing, WriteMode: 0o600, Stdin: data},
		{Script: "umask"},
	})
	if err != nil {
		t.Fatalf("WriteTo RunSteps: %v", err)
	}
	umask, err := h.Run(context.Background(), "umask", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(rs[0].Stdout), "0\n640\n"+string(data); got != want {
		t.Errorf("WriteTo: got %q; want %q", got, want)
	}
	if got := string(rs[1].Stdout); got != "absent\n" || rs[1].ExitCode != 0 {
		t.Errorf("WriteTo into a missing directory: got %q status %d; want %q", got, rs[1].ExitCode, "absent\n")
	}
	if string(rs[2].Stdout) != string(umask.Stdout) {
		t.Errorf("umask after WriteTo: got %q; want the shell's %q", rs[2].Stdout, umask.Stdout)
	}
}

// testOpenSessionFrozen freezes the sshd process serving a connection:
// opening a session (what the kill helper does) must give up when its
// context ends, not wait for keepalives to declare the connection dead.
func testOpenSessionFrozen(t *testing.T, l *testLab) {
	p := NewPool(PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	defer p.Close()
	h := l.host(t, p, l.target("web1", "deploy"))
	sshRun(t, h, "true")
	sshd := strings.TrimSpace(l.exec(t, "web1", "ps -o ppid= -p "+strconv.Itoa(h.slot().sh.pid)))
	l.exec(t, "web1", "kill -STOP "+sshd)
	defer l.exec(t, "web1", "kill -CONT "+sshd)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	sess, release, err := h.c.openSession(ctx)
	if err == nil {
		release()
		sess.Close()
	}
	if d := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || d > 5*time.Second {
		t.Fatalf("openSession on a frozen connection: got %v after %v; want context.DeadlineExceeded after about 300ms", err, d)
	}
}

// testRemoveOnExit checks that a path registered with removeOnExit is
// removed when the shell ends: at Pool.Close, and when the connection is
// killed on the host side (sshd's process for it), where nothing on our
// side can remove it. A path with a quote, a space and a newline stays
// literal.
func testRemoveOnExit(t *testing.T, l *testLab) {
	for _, how := range []string{"pool closed", "connection killed"} {
		t.Run(how, func(t *testing.T) {
			p := NewPool(PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
			defer p.Close()
			h := l.host(t, p, l.target("web1", "deploy"))
			dir := "/tmp/opsmop-roe-" + randHex(4)
			keep, gone := dir+"/keep", dir+"/it's a\nfile"
			sshRun(t, h, "mkdir "+dir+" && printf 'x\n' >"+shell.Quote(keep))
			defer l.exec(t, "web1", "rm -rf "+dir)
			if err := h.removeOnExit(context.Background(), gone); err != nil {
				t.Fatalf("removeOnExit: %v", err)
			}
			sshRun(t, h, ": >"+shell.Quote(gone))
			if got := strings.TrimSpace(l.exec(t, "web1", "set -- "+dir+"/*; echo $#")); got != "2" {
				t.Fatalf("got %s files in %s before the shell ended; want 2", got, dir)
			}
			switch how {
			case "pool closed":
				if err := p.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
			default:
				pid := strings.TrimSpace(l.exec(t, "web1", "ps -o ppid= -p "+strconv.Itoa(h.slot().sh.pid)))
				l.exec(t, "web1", "kill -KILL "+pid)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				got := l.exec(t, "web1", "ls -A "+dir)
				if got == "keep\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s holds %q 10s after the shell's end; want only keep", dir, got)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func testCloseWhileRunning(t *testing.T, l *testLab) {
	p := NewPool(PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	h := l.host(t, p, l.target("web1", "deploy"))
	idle := l.host(t, p, l.target("web2", "deploy"))
	sshRun(t, idle, "true")
	countDirs := `ls -d /tmp/tmp.* 2>/dev/null | while read d; do stat -c %U "$d"; done | grep -c deploy || true`
	if n := strings.TrimSpace(l.exec(t, "web2", countDirs)); n != "1" {
		t.Fatalf("got %s private dirs of deploy in web2:/tmp; want 1 while its shell runs", n)
	}
	done := make(chan error, 1)
	go func() {
		_, err := h.Run(context.Background(), "sleep 30", nil)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run during Close: got nil; want an error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run still blocked 5s after Pool.Close")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Close took %v; want it not to wait for running commands", d)
	}
	if _, err := p.Host(context.Background(), l.target("web1", "deploy")); err == nil {
		t.Fatal("Host after Close: got nil error; want one")
	}
	// The idle shell was ended politely: its private directory goes away.
	// Close does not wait for the host, so the EXIT trap may still be
	// running.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		left := strings.TrimSpace(l.exec(t, "web2", countDirs))
		if left == "0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %s private dirs of deploy left in web2:/tmp 5s after Close; want 0", left)
		}
	}
}

// emptyHome points HOME at an empty directory so no default key is found.
func emptyHome(t *testing.T) {
	t.Setenv("HOME", t.TempDir())
}

// startAgent serves an in-memory agent holding the key at keyPath on a
// unix socket and points SSH_AUTH_SOCK at it.
func startAgent(t *testing.T, keyPath string) {
	t.Helper()
	serveAgent(t, []any{readRawKey(t, keyPath)})
}

func testLogin(t *testing.T, l *testLab) {
	encKey := filepath.Join(t.TempDir(), "id_enc")
	{
		pemBytes, _ := os.ReadFile(l.ClientKey)
		raw, err := ssh.ParseRawPrivateKey(pemBytes)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := ssh.MarshalPrivateKeyWithPassphrase(raw, "", []byte("s3cret-phrase"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(encKey, pemEncode(blk), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		user    string
		mod     func(t *testing.T, tg *Target, cfg *PoolConfig)
		wantErr string // "" = login works and `id -un` = user
		phase   string
	}{
		{name: "key", user: "root", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {}},
		{name: "key as deploy", user: "deploy", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {}},
		{name: "password", user: "deploy", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			emptyHome(t)
			tg.PrivateKey, tg.Password = "", l.DeployPassword
		}},
		{name: "agent", user: "ops", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			emptyHome(t)
			startAgent(t, l.ClientKey)
			tg.PrivateKey, cfg.UseAgent = "", true
		}},
		{name: "default key file", user: "app", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			home := t.TempDir()
			t.Setenv("HOME", home)
			os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
			b, _ := os.ReadFile(l.ClientKey)
			os.WriteFile(filepath.Join(home, ".ssh", "id_ed25519"), b, 0o600)
			tg.PrivateKey = ""
		}},
		{name: "encrypted key with passphrase", user: "root", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			tg.PrivateKey = encKey
			cfg.Passphrase = func(string) (secret.Secret, error) { return secret.New("s3cret-phrase"), nil }
		}},
		{name: "encrypted key without prompt", user: "root", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			emptyHome(t)
			tg.PrivateKey = encKey
		}, wantErr: "is encrypted", phase: PhaseAuth},
		{name: "wrong password", user: "deploy", mod: func(t *testing.T, tg *Target, cfg *PoolConfig) {
			emptyHome(t)
			tg.PrivateKey, tg.Password = "", secret.New("not-the-password")
		}, wantErr: "unable to authenticate", phase: PhaseAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tg := l.target("web1", tc.user)
			cfg := PoolConfig{}
			tc.mod(t, &tg, &cfg)
			p := l.pool(t, cfg)
			start := time.Now()
			h, err := p.Host(context.Background(), tg)
			if tc.wantErr != "" {
				var ue *UnreachableError
				if !errors.As(err, &ue) || ue.Phase != tc.phase || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got error %v; want *UnreachableError phase %s containing %q", err, tc.phase, tc.wantErr)
				}
				if strings.Contains(err.Error(), "not-the-password") || strings.Contains(err.Error(), "s3cret-phrase") {
					t.Fatalf("error text %q contains a secret", err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Fatalf("auth failure took %v; want well under connect_timeout", d)
				}
				return
			}
			if err != nil {
				t.Fatalf("Host: %v", err)
			}
			if got := strings.TrimSpace(string(sshRun(t, h, "id -un").Stdout)); got != tc.user {
				t.Fatalf("id -un: got %q; want %q", got, tc.user)
			}
		})
	}
}

func testHostKeys(t *testing.T, l *testLab) {
	web2 := l.Host("web2")
	fp := hostKeyFingerprint(t, web2.HostKey)
	addr := net.JoinHostPort(web2.Addr, strconv.Itoa(web2.Port))
	knownLine := func(addr string, authorized string) string {
		host, port, _ := net.SplitHostPort(addr)
		if port != "22" {
			host = "[" + host + "]:" + port
		}
		return host + " " + strings.TrimSpace(authorized) + "\n"
	}
	// A different key for web2's address: web1's.
	otherKey := l.Host("web1").HostKey
	otherFP := hostKeyFingerprint(t, otherKey)

	t.Run("unknown refused", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}})
		_, err := p.Host(context.Background(), l.target("web2", "root"))
		var hk *HostKeyError
		var ue *UnreachableError
		if !errors.As(err, &hk) || !errors.As(err, &ue) || ue.Phase != PhaseHostKey {
			t.Fatalf("got %v; want *UnreachableError{Phase: hostkey} wrapping *HostKeyError", err)
		}
		if hk.Changed || hk.Fingerprint != fp {
			t.Fatalf("got Changed=%v Fingerprint=%s; want false, %s", hk.Changed, hk.Fingerprint, fp)
		}
		want := fmt.Sprintf("host web2 (%s): unknown host key %s; verify it, then run with --accept-new-host-keys to record it in %s, or set check_host_keys = false", addr, fp, kh)
		if err.Error() != want {
			t.Fatalf("got message %q; want %q", err, want)
		}
	})
	t.Run("accept new records", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "sub", "known_hosts")
		p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}, AcceptNewHostKeys: true})
		h := l.host(t, p, l.target("web2", "root"))
		sshRun(t, h, "true")
		b, err := os.ReadFile(kh)
		if err != nil {
			t.Fatal(err)
		}
		if want := knownLine(addr, web2.HostKey); !strings.Contains(string(b), strings.Fields(want)[2]) || !strings.HasPrefix(string(b), strings.Fields(want)[0]+" ") {
			t.Fatalf("known_hosts got %q; want a line like %q", b, want)
		}
		// The recorded file now verifies the host with checking on.
		p2 := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}})
		l.host(t, p2, l.target("web2", "root"))
	})
	changed := func(t *testing.T, check bool, accept bool) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte("# comment\n"+knownLine(addr, otherKey)), 0o600)
		var warn bytes.Buffer
		p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}, AcceptNewHostKeys: accept, Warn: &warn})
		tg := l.target("web2", "root")
		tg.CheckHostKeys = check
		_, err := p.Host(context.Background(), tg)
		var hk *HostKeyError
		if !errors.As(err, &hk) || !hk.Changed {
			t.Fatalf("got %v; want a changed-key *HostKeyError", err)
		}
		want := fmt.Sprintf("host web2 (%s): HOST KEY CHANGED: known_hosts says %s, the host presents %s; this could be an attack. opsmop refuses to connect whatever the settings; if the change is legitimate remove the old line from %s:2", addr, otherFP, fp, kh)
		if err.Error() != want {
			t.Fatalf("got message %q; want %q", err, want)
		}
	}
	t.Run("changed refused", func(t *testing.T) { changed(t, true, false) })
	t.Run("changed refused with checking off", func(t *testing.T) { changed(t, false, false) })
	t.Run("changed refused with accept-new", func(t *testing.T) { changed(t, true, true) })
	t.Run("checking off warns once", func(t *testing.T) {
		kh := filepath.Join(t.TempDir(), "known_hosts")
		var warn bytes.Buffer
		p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}, Warn: &warn})
		for _, name := range []string{"web1", "web2"} {
			tg := l.target(name, "root")
			tg.CheckHostKeys = false
			sshRun(t, l.host(t, p, tg), "true")
		}
		if n := strings.Count(warn.String(), "host key checking disabled"); n != 1 {
			t.Fatalf("got %d warnings (%q); want 1", n, warn.String())
		}
		if b, _ := os.ReadFile(kh); len(b) != 0 {
			t.Fatalf("known_hosts got %q; want nothing recorded without accept-new", b)
		}
	})
}

func testOutput(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target("web1", "root"))
	var all bytes.Buffer
	for i := 0; i < 256; i++ {
		all.WriteByte(byte(i))
	}
	allOctal := ""
	for i := 0; i < 256; i++ {
		allOctal += fmt.Sprintf("\\%03o", i)
	}
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	tests := []struct {
		name       string
		script     string
		wantOut    string
		wantErr    string
		wantStatus int
	}{
		{"empty", "true", "", "", 0},
		{"no trailing newline", "printf abc; printf def >&2", "abc", "def", 0},
		{"trailing newline", "echo abc; echo def >&2; exit 3", "abc\n", "def\n", 3},
		{"all bytes stdout", "printf '" + allOctal + "'", all.String(), "", 0},
		{"all bytes stderr", "printf '" + allOctal + "' >&2; exit 255", "", all.String(), 255},
		{"sentinel-like text", `printf 'R0\nE\nI123\n%s' "$(printf '%032dR0')"`, "R0\nE\nI123\n" + strings.Repeat("0", 32) + "R0", "", 0},
		{"big", "i=0; while [ $i -lt 65536 ]; do printf 0123456789abcdef; i=$((i+1)); done", big, "", 0},
		{"exit and cd do not leak", "cd /; exit 7", "", "", 7},
		{"killed by signal", "kill -9 $$", "", "", 137},
		{"kill 0 ends the command, not the shell", "sleep 30 & kill 0; echo after", "", "", 143},
		{"background child keeps running", "sleep 0.1 & echo started", "started\n", "", 0},
		{"single quotes and newlines", "echo 'it'\\''s'\necho \"two\"", "it's\ntwo\n", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sshRun(t, h, tc.script)
			if string(r.Stdout) != tc.wantOut || string(r.Stderr) != tc.wantErr || r.ExitCode != tc.wantStatus {
				t.Fatalf("got stdout %q stderr %q status %d; want %q %q %d",
					sshTrunc(r.Stdout), sshTrunc(r.Stderr), r.ExitCode, sshTrunc([]byte(tc.wantOut)), sshTrunc([]byte(tc.wantErr)), tc.wantStatus)
			}
		})
	}
	t.Run("a command that kills the persistent shell", func(t *testing.T) {
		// $$ passed to another program names the persistent shell (see
		// docs/ssh.md): the command fails, the next one gets a new shell.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := h.Run(ctx, `sh -c "kill -9 $$"`, nil)
		if err == nil || errors.As(err, new(*UnreachableError)) {
			t.Fatalf("got %v; want an error that is not *UnreachableError", err)
		}
		if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
			t.Fatalf("after the shell was killed got %q; want %q", got, "ok\n")
		}
	})
	t.Run("shell state is per command", func(t *testing.T) {
		sshRun(t, h, "cd /tmp; X=1; export Y=2")
		if got := string(sshRun(t, h, `pwd; echo "${X:-unset} ${Y:-unset}"`).Stdout); got == "/tmp\n1 2\n" {
			t.Fatalf("got %q; want state not carried over", got)
		}
	})
}

func sshTrunc(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%q...(%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%q", b)
}

func testStdin(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target("web1", "deploy"))
	var all bytes.Buffer
	for i := 0; i < 256; i++ {
		all.WriteByte(byte(i))
	}
	tests := []struct {
		name  string
		stdin io.Reader
		want  string
	}{
		{"nil stdin is empty", nil, ""},
		{"empty", strings.NewReader(""), ""},
		{"text", strings.NewReader("hello\nworld"), "hello\nworld"},
		{"all bytes", bytes.NewReader(all.Bytes()), all.String()},
		{"quotes and percent", strings.NewReader(`'%s' "$x" \n %% \\`), `'%s' "$x" \n %% \\`},
		{"large", strings.NewReader(strings.Repeat("x\x00y", 100000)), strings.Repeat("x\x00y", 100000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r, err := h.Run(ctx, "cat", tc.stdin)
			if err != nil {
				t.Fatal(err)
			}
			if string(r.Stdout) != tc.want || r.ExitCode != 0 {
				t.Fatalf("got %s status %d; want %s 0", sshTrunc(r.Stdout), r.ExitCode, sshTrunc([]byte(tc.want)))
			}
		})
	}
}

func testInlineProbes(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	tg := l.target("web1", "ops")
	tg.CommandTimeout = 2 * time.Second
	h := l.host(t, p, tg)
	ctx := context.Background()
	// `read` is a builtin: /proc/self/stat is the pid of the shell that
	// runs the script, $$ is always the persistent shell's.
	const whoRuns = `read -r me _ </proc/self/stat; [ "$me" = "$$" ] && echo shell || echo subshell`
	cases := []struct {
		name  string
		probe Probe
		want  string
		rc    int
	}{
		{"inline runs in the shell", Probe{Script: whoRuns, Inline: true, Vars: []string{"me"}}, "shell\n", 0},
		{"not inline runs in a subshell", Probe{Script: whoRuns}, "subshell\n", 0},
		{"inline with a bad variable name runs in a subshell", Probe{Script: whoRuns, Inline: true, Vars: []string{"me", "__opsmop_K"}}, "subshell\n", 0},
		{"exit status kept", Probe{Script: "echo x; false", Inline: true}, "x\n", 1},
		{"stdin is /dev/null", Probe{Script: "cat; echo end", Inline: true}, "end\n", 0},
		{"variables unset afterwards", Probe{Script: "echo ${v1-unset}; v1=1", Inline: true, Vars: []string{"v1"}}, "unset\n", 0},
	}
	var probes []Probe
	for _, c := range cases {
		probes = append(probes, c.probe)
	}
	// Twice in one batch: the second round sees what the first left.
	rs, err := h.RunProbes(ctx, append(probes, probes...))
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		c := cases[i%len(cases)]
		if string(r.Stdout) != c.want || r.ExitCode != c.rc {
			t.Errorf("%s (run %d): got %q status %d; want %q status %d", c.name, i/len(cases)+1, r.Stdout, r.ExitCode, c.want, c.rc)
		}
	}
	// Later commands do not see an inline probe's variables.
	if _, err := h.RunProbes(ctx, []Probe{{Script: "v2=leak; v3=leak", Inline: true, Vars: []string{"v2", "v3"}}}); err != nil {
		t.Fatal(err)
	}
	if got := string(sshRun(t, h, `echo "${v2-unset} ${v3-unset}"`).Stdout); got != "unset unset\n" {
		t.Fatalf("after an inline probe: got %q; want %q", got, "unset unset\n")
	}
	// A hung inline probe is killed at the timeout like any command (its
	// child, the sleep, is the shell's), and the shell goes on.
	start := time.Now()
	_, err = h.RunProbes(ctx, []Probe{{Script: "sleep 60", Inline: true}})
	var te *TimeoutError
	if !errors.As(err, &te) {
		t.Fatalf("got %v; want *TimeoutError", err)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("timeout took %v; want about 2s plus a kill", d)
	}
	if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
		t.Fatalf("after a timed-out inline probe: got %q; want %q", got, "ok\n")
	}
}

func testBatch(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	h := l.host(t, p, l.target("web1", "ops"))
	var scripts []string
	for i := 0; i < 50; i++ {
		scripts = append(scripts, fmt.Sprintf("echo out%d; printf err%d >&2; exit %d", i, i, i%4))
	}
	ctx := context.Background()
	rs, err := h.RunBatch(ctx, scripts)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(scripts) {
		t.Fatalf("got %d results; want %d", len(rs), len(scripts))
	}
	for i, r := range rs {
		if want := fmt.Sprintf("out%d\n", i); string(r.Stdout) != want || string(r.Stderr) != fmt.Sprintf("err%d", i) || r.ExitCode != i%4 {
			t.Fatalf("result %d: got %q %q %d; want %q %q %d", i, r.Stdout, r.Stderr, r.ExitCode, want, fmt.Sprintf("err%d", i), i%4)
		}
	}
	// Every script runs in a subshell of the persistent shell (a fork, no
	// exec of a new sh): $$ is the shell's pid in all of them.
	pids, err := h.RunBatch(ctx, []string{"echo $$", "echo $$", "echo $$"})
	if err != nil {
		t.Fatal(err)
	}
	slot := h.slot()
	slot.mu.Lock()
	want := fmt.Sprintf("%d\n", slot.sh.pid)
	slot.mu.Unlock()
	for i, r := range pids {
		if string(r.Stdout) != want {
			t.Fatalf("script %d: $$ is %q; want the persistent shell's pid %q", i, r.Stdout, want)
		}
	}
	// The shell stays usable after a batch.
	if got := string(sshRun(t, h, "echo after").Stdout); got != "after\n" {
		t.Fatalf("got %q; want %q", got, "after\n")
	}
	// A batch costs one round trip, not N: compare with N single runs.
	start := time.Now()
	if _, err := h.RunBatch(ctx, scripts); err != nil {
		t.Fatal(err)
	}
	batch := time.Since(start)
	start = time.Now()
	for _, s := range scripts {
		if _, err := h.Run(ctx, s, nil); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("50 commands: RunBatch %v, 50 x Run %v", batch, time.Since(start))

	t.Run("one round trip", func(t *testing.T) {
		// Through a proxy adding 100ms each way, a batch of 20 must cost
		// about one round trip more than the same batch on loopback, not
		// 20 (the commands' own run time on the host is the same in both).
		const oneWay = 100 * time.Millisecond
		rtt := 2 * oneWay
		web1 := l.Host("web1")
		addr := startDelayProxy(t, net.JoinHostPort(web1.Addr, strconv.Itoa(web1.Port)), oneWay)
		host, port, _ := net.SplitHostPort(addr)
		kh := filepath.Join(t.TempDir(), "known_hosts")
		os.WriteFile(kh, []byte("["+host+"]:"+port+" "+web1.HostKey+"\n"), 0o600)
		p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}})
		tg := l.target("web1", "ops")
		tg.Address = host
		tg.Port, _ = strconv.Atoi(port)
		far := l.host(t, p, tg)
		sshRun(t, far, "true")
		scripts := make([]string, 20)
		for i := range scripts {
			scripts[i] = fmt.Sprintf("test -e /etc/passwd-%d; echo $?", i)
		}
		// Alternate near and far and keep the best of each, so load on
		// the machine affects both alike.
		near, far2 := time.Duration(1<<62), time.Duration(1<<62)
		for k := 0; k < 3; k++ {
			for _, x := range []*SSHHost{h, far} {
				start := time.Now()
				rs, err := x.RunBatch(ctx, scripts)
				if err != nil || len(rs) != len(scripts) {
					t.Fatalf("got %d results, %v; want %d, nil", len(rs), err, len(scripts))
				}
				if x == h {
					near = min(near, time.Since(start))
				} else {
					far2 = min(far2, time.Since(start))
				}
			}
		}
		start := time.Now()
		sshRun(t, far, "true")
		single := time.Since(start)
		t.Logf("RunBatch of 20: %v on loopback, %v with RTT %v (+%.1f RTT); one Run: %v",
			near, far2, rtt, float64(far2-near)/float64(rtt), single)
		if single < rtt {
			t.Fatalf("a single run took %v, less than the RTT: the proxy does not delay", single)
		}
		if far2-near > 3*rtt {
			t.Fatalf("the RTT added %v to a batch of 20; want about one RTT (%v), certainly under 3", far2-near, rtt)
		}
	})
}

// testStartRoundTrips counts, through a proxy adding 100ms each way, the
// round trips of a new shell's first command and of Pool.Close: the
// first Run costs three (open the session; exec, answered by sshd's
// window; the init script with the command, answered by the init frame
// and the result), Close none (end of input, then the connection is
// closed without waiting for the shell's exit status). The best of three
// tries is kept, so load on the machine does not decide.
func testStartRoundTrips(t *testing.T, l *testLab) {
	const oneWay = 100 * time.Millisecond
	rtt := 2 * oneWay
	web1 := l.Host("web1")
	addr := startDelayProxy(t, net.JoinHostPort(web1.Addr, strconv.Itoa(web1.Port)), oneWay)
	host, port, _ := net.SplitHostPort(addr)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte("["+host+"]:"+port+" "+web1.HostKey+"\n"), 0o600)
	tests := []struct {
		name string
		user string
		sudo bool
	}{
		{"login user", "deploy", false},
		{"sudo without a password", "ops", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			first, closing := time.Duration(1<<62), time.Duration(1<<62)
			for try := 0; try < 3; try++ {
				p := l.pool(t, PoolConfig{KnownHostsFiles: []string{kh}})
				tg := l.target("web1", tc.user)
				tg.Address = host
				tg.Port, _ = strconv.Atoi(port)
				tg.Sudo = tc.sudo
				h := l.host(t, p, tg)
				start := time.Now()
				if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
					t.Fatalf("got %q; want %q", got, "ok\n")
				}
				first = min(first, time.Since(start))
				start = time.Now()
				if err := p.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				closing = min(closing, time.Since(start))
			}
			t.Logf("RTT %v: first Run %v (%.1f RTT), Pool.Close %v", rtt, first, float64(first)/float64(rtt), closing)
			if first < 3*rtt || first > 3*rtt+rtt/2 {
				t.Errorf("the first Run on a new connection took %v; want 3 round trips (%v) plus the host's work", first, 3*rtt)
			}
			if closing > rtt/2 {
				t.Errorf("Pool.Close took %v; want it not to wait for the host (RTT %v)", closing, rtt)
			}
		})
	}
}

// startDelayProxy forwards TCP connections to target, delaying data in
// each direction by oneWay.
func startDelayProxy(t *testing.T, target string, oneWay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			t.Cleanup(func() { c.Close(); u.Close() })
			go delayCopy(u, c, oneWay)
			go delayCopy(c, u, oneWay)
		}
	}()
	return ln.Addr().String()
}

func delayCopy(dst, src net.Conn, d time.Duration) {
	type packet struct {
		at time.Time
		b  []byte
	}
	ch := make(chan packet, 4096)
	go func() {
		defer close(ch)
		for {
			b := make([]byte, 32*1024)
			n, err := src.Read(b)
			if n > 0 {
				ch <- packet{time.Now().Add(d), b[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for p := range ch {
		time.Sleep(time.Until(p.at))
		if _, err := dst.Write(p.b); err != nil {
			break
		}
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

func testTimeout(t *testing.T, l *testLab) {
	cases := []struct {
		name, user string
		sudo       bool
		sudoUser   string
		password   secret.Secret
	}{
		{name: "deploy", user: "deploy"},
		{name: "root", user: "root"},
		{name: "sudo", user: "ops", sudo: true},
		{name: "sudo with password", user: "deploy", sudo: true, password: l.DeployPassword},
		{name: "sudo to app", user: "ops", sudo: true, sudoUser: "app"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := l.pool(t, PoolConfig{})
			tg := l.target("web1", tc.user)
			tg.Sudo, tg.SudoUser, tg.SudoPassword = tc.sudo, tc.sudoUser, tc.password
			tg.CommandTimeout = 500 * time.Millisecond
			h := l.host(t, p, tg)
			// Start the shell first. On a machine loaded by other lab
			// tests even `true` has outlasted 500ms once: that is a
			// timeout too, not a failure of this test.
			if _, err := h.Run(context.Background(), "true", nil); err != nil && !errors.As(err, new(*TimeoutError)) {
				t.Fatalf("warm-up: %v", err)
			}
			marker := "opsmop-timeout-" + randHex(4)
			start := time.Now()
			// A grandchild that ignores signals it can and a child.
			script := "(trap '' USR1 TERM HUP INT; sleep 61) & sleep 60 && echo " + marker + "; echo never"
			_, err := h.Run(context.Background(), script, nil)
			var te *TimeoutError
			if !errors.As(err, &te) || te.Timeout != tg.CommandTimeout {
				t.Fatalf("got %v; want *TimeoutError{Timeout: 500ms}", err)
			}
			// The bound separates "killed at the timeout" from "waited
			// for the 60 s sleep": the kill itself (a helper session,
			// under sudo a sudo handshake) took 0.03-0.3 s on a quiet
			// machine and 2.5 s once in CI with other packages' lab
			// tests running beside it, so the margin is wide.
			if d := time.Since(start); d > 15*time.Second {
				t.Fatalf("timeout took %v; want about 0.5s plus a kill, well under the 60s sleep", d)
			} else {
				t.Logf("Run with a 500ms command_timeout returned after %v", d)
			}
			// The next command works on the same shell.
			if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
				t.Fatalf("after timeout got %q; want %q", got, "ok\n")
			}
			// The sleeps (descendants of the killed script) are gone too.
			if ps := l.exec(t, "web1", "ps -eo args"); strings.Contains(ps, "sleep 60") || strings.Contains(ps, "sleep 61") {
				t.Fatalf("sleep still running after timeout:\n%s", ps)
			}
			// ctx deadline works the same way.
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			tg.CommandTimeout = 0
			h2 := l.host(t, p, tg)
			if _, err := h2.Run(ctx, "sleep 60", nil); !errors.As(err, &te) || te.Timeout != 0 {
				t.Fatalf("ctx deadline: got %v; want *TimeoutError", err)
			}
			// ctx cancellation is reported as such.
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(300*time.Millisecond, cancel)
			if _, err := h2.Run(ctx, "sleep 60", nil); !errors.Is(err, context.Canceled) {
				t.Fatalf("cancel: got %v; want context.Canceled", err)
			}
			if got := string(sshRun(t, h2, "echo ok").Stdout); got != "ok\n" {
				t.Fatalf("after cancel got %q; want %q", got, "ok\n")
			}
		})
	}
	t.Run("without setsid", func(t *testing.T) {
		l.exec(t, "web2", "mv /usr/bin/setsid /usr/bin/setsid.off")
		defer l.exec(t, "web2", "mv /usr/bin/setsid.off /usr/bin/setsid")
		for _, user := range []string{"deploy", "ops"} {
			p := l.pool(t, PoolConfig{})
			tg := l.target("web2", user)
			tg.Sudo = user == "ops"
			tg.CommandTimeout = 500 * time.Millisecond
			h := l.host(t, p, tg)
			script := "(trap '' USR1 TERM HUP INT; sleep 71) & sleep 70; echo never"
			if _, err := h.Run(context.Background(), script, nil); !errors.As(err, new(*TimeoutError)) {
				t.Fatalf("%s: got %v; want *TimeoutError", user, err)
			}
			if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
				t.Fatalf("%s: after timeout got %q; want %q", user, got, "ok\n")
			}
			if ps := l.exec(t, "web2", "ps -eo args"); strings.Contains(ps, "sleep 70") || strings.Contains(ps, "sleep 71") {
				t.Fatalf("%s: sleep still running after timeout:\n%s", user, ps)
			}
		}
	})
	t.Run("batch", func(t *testing.T) {
		p := l.pool(t, PoolConfig{})
		tg := l.target("web1", "root")
		tg.CommandTimeout = 500 * time.Millisecond
		h := l.host(t, p, tg)
		rs, err := h.RunBatch(context.Background(), []string{"echo 1", "sleep 60", "echo 3"})
		var te *TimeoutError
		if !errors.As(err, &te) || len(rs) != 1 || string(rs[0].Stdout) != "1\n" {
			t.Fatalf("got %v %v; want 1 result and *TimeoutError", rs, err)
		}
		if got := string(sshRun(t, h, "echo ok").Stdout); got != "ok\n" {
			t.Fatalf("after batch timeout got %q; want %q", got, "ok\n")
		}
	})
}

func testSudo(t *testing.T, l *testLab) {
	tests := []struct {
		name     string
		user     string
		sudoUser string
		password secret.Secret
		wantUser string
		wantKind SudoErrorKind
		wantMsg  string
	}{
		{name: "password", user: "deploy", password: l.DeployPassword, wantUser: "root"},
		{name: "passwordless", user: "ops", wantUser: "root"},
		{name: "passwordless with a password set", user: "ops", password: secret.New("unused"), wantUser: "root"},
		{name: "to a non-root user", user: "ops", sudoUser: "app", wantUser: "app"},
		{name: "password to a non-root user", user: "deploy", sudoUser: "app", password: l.DeployPassword, wantUser: "app"},
		{name: "wrong password", user: "deploy", password: secret.New("wrong-pass-123"), wantKind: SudoWrongPassword,
			wantMsg: "wrong sudo password for deploy on web1"},
		{name: "no password given", user: "deploy", wantKind: SudoPasswordRequired,
			wantMsg: "sudo requires a password for deploy on web1 but none was given: use -K or opsmop_sudo_password"},
		{name: "no sudo rights", user: "app", wantKind: SudoPasswordRequired,
			wantMsg: "sudo requires a password for app on web1 but none was given"},
		{name: "unknown target user", user: "ops", sudoUser: "nosuchuser", wantKind: SudoRefused,
			wantMsg: "sudo to nosuchuser as ops on web1 refused: sudo: unknown user nosuchuser"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := l.pool(t, PoolConfig{})
			tg := l.target("web1", tc.user)
			tg.Sudo, tg.SudoUser, tg.SudoPassword = true, tc.sudoUser, tc.password
			tg.ConnectTimeout = 10 * time.Second
			h := l.host(t, p, tg)
			start := time.Now()
			r, err := h.Run(context.Background(), "id -un", nil)
			if tc.wantKind != 0 {
				var se *SudoError
				if !errors.As(err, &se) || se.Kind != tc.wantKind || !strings.HasPrefix(err.Error(), tc.wantMsg) {
					t.Fatalf("got %v; want *SudoError kind %d %q", err, tc.wantKind, tc.wantMsg)
				}
				if d := time.Since(start); d > tg.ConnectTimeout {
					t.Fatalf("sudo failure took %v; want under connect_timeout %v", d, tg.ConnectTimeout)
				}
				if pw := tc.password.Reveal(); pw != "" && strings.Contains(err.Error(), pw) {
					t.Fatalf("error %q contains the password", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(r.Stdout)); got != tc.wantUser {
				t.Fatalf("id -un: got %q; want %q", got, tc.wantUser)
			}
			// The login user's shell on the same connection is separate.
			plain := l.host(t, p, l.target("web1", tc.user))
			if got := strings.TrimSpace(string(sshRun(t, plain, "id -un").Stdout)); got != tc.user {
				t.Fatalf("unsudoed id -un: got %q; want %q", got, tc.user)
			}
		})
	}
}

func testSudoPasswordHidden(t *testing.T, l *testLab) {
	pw := l.DeployPassword.Reveal()
	p := l.pool(t, PoolConfig{})
	tg := l.target("web1", "deploy")
	tg.Sudo, tg.SudoPassword = true, l.DeployPassword
	tg.CommandTimeout = time.Second
	h := l.host(t, p, tg)
	done := make(chan error, 1)
	go func() {
		_, err := h.Run(context.Background(), "sleep 3", nil)
		done <- err
	}()
	seen := 0
	for deadline := time.Now().Add(2500 * time.Millisecond); time.Now().Before(deadline); {
		ps := l.exec(t, "web1", "ps -eo args; cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' '")
		if strings.Contains(ps, pw) {
			t.Fatalf("the sudo password is visible in the process list:\n%s", ps)
		}
		if strings.Contains(ps, "sleep 3") {
			seen++
		}
		time.Sleep(100 * time.Millisecond)
	}
	err := <-done // the 1s command timeout kills sleep 3
	if err == nil || strings.Contains(err.Error(), pw) || strings.Contains(fmt.Sprintf("%+v %#v", err, err), pw) {
		t.Fatalf("got %v; want a timeout error without the password", err)
	}
	if seen == 0 {
		t.Fatal("never saw the sudo'd sleep in the process list: the check proved nothing")
	}
	if s := fmt.Sprintf("%v %+v %#v %s", tg, tg, tg, tg.SudoPassword); strings.Contains(s, pw) {
		t.Fatalf("printing a Target reveals the password: %s", s)
	}
	// Uploads under sudo with a password (a second sudo) too.
	if err := h.Upload(context.Background(), "/root/pw-test", strings.NewReader("x"), 1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
}

func testVia(t *testing.T, l *testLab) {
	// db2 is reachable only through bastion and db1.
	direct := l.target("db2", "root")
	direct.Via, direct.ConnectTimeout = nil, 3*time.Second
	if _, err := l.pool(t, PoolConfig{}).Host(context.Background(), direct); err == nil {
		t.Fatal("db2 is reachable directly; the test would prove nothing")
	}
	before := l.acceptedLogins(t, "bastion")
	p := l.pool(t, PoolConfig{})
	ctx := context.Background()
	for _, name := range []string{"db2", "db1", "bastion", "db2"} {
		h := l.host(t, p, l.target(name, "root"))
		if got := strings.TrimSpace(string(sshRun(t, h, "hostname").Stdout)); got != name {
			t.Fatalf("hostname through the chain: got %q; want %q", got, name)
		}
	}
	// Sudo and uploads across two hops.
	tg := l.target("db2", "ops")
	tg.Sudo = true
	tg.Via = l.target("db2", "root").Via // same jump connections as root's
	h := l.host(t, p, tg)
	if err := h.Upload(ctx, "/root/via", strings.NewReader("via"), 3, UploadOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if got := l.exec(t, "db2", "cat /root/via"); got != "via" {
		t.Fatalf("uploaded through two hops: got %q; want %q", got, "via")
	}
	if n := l.acceptedLogins(t, "bastion") - before; n != 1 {
		t.Fatalf("bastion got %d logins; want 1 (one parent connection for all its children)", n)
	}
	// A jump host that cannot be reached makes the child unreachable.
	bad := l.target("db1", "root")
	bad.Via.Port = 1
	_, err := l.pool(t, PoolConfig{}).Host(ctx, bad)
	var ue *UnreachableError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "jump host bastion") {
		t.Fatalf("got %v; want *UnreachableError naming the jump host", err)
	}
}

func testOneConnection(t *testing.T, l *testLab) {
	before := l.acceptedLogins(t, "web2")
	p := l.pool(t, PoolConfig{})
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := p.Host(ctx, l.target("web2", "ops"))
			if err != nil {
				t.Error(err)
				return
			}
			for j := 0; j < 10; j++ {
				if _, err := h.Run(ctx, "true", nil); err != nil {
					t.Error(err)
				}
				if err := h.Upload(ctx, fmt.Sprintf("/tmp/one-%d-%d", i, j), strings.NewReader("x"), 1, UploadOptions{}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	tg := l.target("web2", "ops")
	tg.Sudo = true
	h := l.host(t, p, tg)
	sshRun(t, h, "true")
	if err := h.Upload(ctx, "/root/one", strings.NewReader("x"), 1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := l.acceptedLogins(t, "web2") - before; n != 1 {
		t.Fatalf("web2 saw %d logins; want 1 for 40 runs, 40 uploads and a sudo shell", n)
	}
	w2 := l.Host("web2")
	est := l.exec(t, "web2", fmt.Sprintf("ss -Htn state established src %s:%d | wc -l", w2.Addr, w2.Port))
	if n, _ := strconv.Atoi(strings.TrimSpace(est)); n != 1 {
		t.Fatalf("web2 has %s established ssh connections; want 1", strings.TrimSpace(est))
	}
}

func testUpload(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	ctx := context.Background()
	root := l.host(t, p, l.target("web1", "root"))
	sshRun(t, root, "mkdir -p /srv/up && chmod 755 /srv/up && chown deploy /srv/up && echo old >/srv/up/replace")
	deploy := l.host(t, p, l.target("web1", "deploy"))
	tests := []struct {
		name     string
		h        *SSHHost
		dst      string
		data     string
		opts     UploadOptions
		wantStat string
	}{
		{"new default mode", deploy, "/srv/up/a", "hello", UploadOptions{}, "644 deploy deploy 5"},
		{"mode", deploy, "/srv/up/b", "", UploadOptions{Mode: 0o600}, "600 deploy deploy 0"},
		{"replace", root, "/srv/up/replace", "new\n", UploadOptions{Mode: 0o640}, "640 root root 4"},
		{"owner and group", root, "/srv/up/c", "x", UploadOptions{Mode: 0o600, Owner: "app", Group: "ops"}, "600 app ops 1"},
		{"group only", root, "/srv/up/d", "x", UploadOptions{Group: "app"}, "644 root app 1"},
		{"setuid bits", root, "/srv/up/e", "x", UploadOptions{Mode: 0o4755}, "4755 root root 1"},
		{"numeric ids (set over SFTP)", root, "/srv/up/f", "x", UploadOptions{Owner: "65534", Group: "65534"}, "644 nobody nogroup 1"},
		{"numeric ids and setuid bits", root, "/srv/up/g", "x", UploadOptions{Mode: 0o4755, Owner: "65534", Group: "65534"}, "4755 nobody nogroup 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var last int64
			tc.opts.Progress = func(w, total int64) { last = w }
			if err := tc.h.Upload(ctx, tc.dst, strings.NewReader(tc.data), int64(len(tc.data)), tc.opts); err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(l.exec(t, "web1", "stat -c '%a %U %G %s' "+tc.dst)); got != tc.wantStat {
				t.Fatalf("stat: got %q; want %q", got, tc.wantStat)
			}
			if got := l.exec(t, "web1", "cat "+tc.dst); got != tc.data {
				t.Fatalf("content: got %q; want %q", got, tc.data)
			}
			if last != int64(len(tc.data)) && len(tc.data) > 0 {
				t.Fatalf("progress: got last %d; want %d", last, len(tc.data))
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
		{"short source", deploy, "/srv/up/short", strings.NewReader("abc"), 10, UploadOptions{}, "source ended after 3 of 10 bytes"},
		{"no permission", deploy, "/root/x", strings.NewReader("x"), 1, UploadOptions{}, "use sudo"},
		{"missing dir", deploy, "/srv/nope/x", strings.NewReader("x"), 1, UploadOptions{}, "does not exist"},
		{"unknown owner", root, "/srv/up/own", strings.NewReader("x"), 1, UploadOptions{Owner: "nobody-such"}, "set owner/group"},
		{"relative", root, "srv/x", strings.NewReader("x"), 1, UploadOptions{}, "absolute"},
		{"failing reader", root, "/srv/up/fail", io.MultiReader(strings.NewReader("abc"), sshErrReader{}), 10, UploadOptions{}, "boom"},
	}
	for _, tc := range failures {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.h.Upload(ctx, tc.dst, tc.r, tc.size, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
			}
			if left := l.exec(t, "web1", "ls -A /srv/up | grep opsmop || true"); left != "" {
				t.Fatalf("temp files left behind: %q", left)
			}
		})
	}
	t.Run("download", func(t *testing.T) {
		var b bytes.Buffer
		n, err := root.Download(ctx, "/srv/up/a", &b)
		if err != nil || n != 5 || b.String() != "hello" {
			t.Fatalf("got %d %q %v; want 5 \"hello\" nil", n, b.String(), err)
		}
	})
}

type sshErrReader struct{}

func (sshErrReader) Read([]byte) (int, error) { return 0, errors.New("boom") }

func testUploadSudo(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{})
	ctx := context.Background()
	tg := l.target("web1", "ops")
	tg.Sudo = true
	h := l.host(t, p, tg)
	data := "root only\n"
	if err := h.Upload(ctx, "/root/secret.conf", strings.NewReader(data), int64(len(data)), UploadOptions{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(l.exec(t, "web1", "stat -c '%a %U %G' /root/secret.conf; cat /root/secret.conf")); got != "600 root root\nroot only" {
		t.Fatalf("got %q; want %q", got, "600 root root\nroot only")
	}
	if left := l.exec(t, "web1", "ls -A /root | grep opsmop || true"); left != "" {
		t.Fatalf("temp files left in /root: %q", left)
	}
	// sudo to a non-root user writes as that user.
	tg.SudoUser = "app"
	ha := l.host(t, p, tg)
	if err := ha.Upload(ctx, "/home/app/f", strings.NewReader("a"), 1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(l.exec(t, "web1", "stat -c '%U %a' /home/app/f")); got != "app 644" {
		t.Fatalf("got %q; want %q", got, "app 644")
	}
	// The temp file is created 0600: watch the directory during an upload
	// of a slow reader.
	slow := &slowReader{n: 64 * 1024, each: 1024, delay: 2 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- h.Upload(ctx, "/root/slow", slow, 64*1024, UploadOptions{Mode: 0o644}) }()
	var modes string
	for i := 0; i < 200; i++ {
		out := l.exec(t, "web1", "stat -c '%a' /root/.opsmop-*.tmp 2>/dev/null || true")
		modes += out
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			i = 200
		default:
		}
	}
	// 0600 from creation on; the final mode (644) is set on the temp file
	// just before the rename, so it may be seen last.
	if strings.TrimSpace(modes) == "" {
		t.Log("never saw the temp file (upload too fast); mode not checked")
	} else if !tempModesOK(strings.Fields(modes), "644") {
		t.Fatalf("temp file modes seen %q; want 600, then possibly 644 (the final mode, set just before the rename)", modes)
	}
}

// tempModesOK reports whether the modes seen on an upload's temp file are
// 600 from the start, then possibly the final mode, which is set on the
// temp file just before it is renamed into place.
func tempModesOK(seen []string, final string) bool {
	i := 0
	for i < len(seen) && seen[i] == "600" {
		i++
	}
	for i < len(seen) && seen[i] == final {
		i++
	}
	return i == len(seen)
}

type slowReader struct {
	n, each int
	delay   time.Duration
}

func (s *slowReader) Read(p []byte) (int, error) {
	if s.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(s.delay)
	k := min(len(p), s.each, s.n)
	for i := range p[:k] {
		p[i] = 'z'
	}
	s.n -= k
	return k, nil
}

// prngReader streams deterministic pseudo-random bytes.
type prngReader struct {
	r      *rand.ChaCha8
	remain int64
}

func (p *prngReader) Read(b []byte) (int, error) {
	if p.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > p.remain {
		b = b[:p.remain]
	}
	n, _ := p.r.Read(b)
	p.remain -= int64(n)
	return n, nil
}

func testUploadLarge(t *testing.T, l *testLab) {
	const size = 210 << 20
	p := l.pool(t, PoolConfig{})
	ctx := context.Background()
	tg := l.target("web1", "ops")
	tg.Sudo = true
	h := l.host(t, p, tg)
	sshRun(t, h, "true") // warm up the connection and shell
	if err := h.Upload(ctx, "/srv/warm", strings.NewReader("x"), 1, UploadOptions{}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	src := io.TeeReader(&prngReader{r: rand.NewChaCha8([32]byte{1, 2, 3}), remain: size}, sum)
	runtime.GC()
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var progressed atomic.Int64
	start := time.Now()
	err := h.Upload(ctx, "/srv/big", src, size, UploadOptions{Progress: func(w, _ int64) { progressed.Store(w) }})
	elapsed := time.Since(start)
	close(stop)
	<-sampled
	if err != nil {
		t.Fatal(err)
	}
	want := hex.EncodeToString(sum.Sum(nil))
	got := strings.Fields(l.exec(t, "web1", "sha256sum /srv/big; rm -f /srv/big"))[0]
	if got != want {
		t.Fatalf("sha256 on the host: got %s; want %s", got, want)
	}
	if progressed.Load() != size {
		t.Fatalf("progress: got %d; want %d", progressed.Load(), size)
	}
	rss := vmHWM()
	t.Logf("210 MiB upload: %v (%.0f MiB/s), peak HeapInuse %.1f MiB, process peak RSS (VmHWM) %s",
		elapsed, float64(size)/(1<<20)/elapsed.Seconds(), float64(peak.Load())/(1<<20), rss)
	if peak.Load() > 64<<20 {
		t.Fatalf("peak HeapInuse %d MiB; want bounded (< 64 MiB) for a 210 MiB upload", peak.Load()>>20)
	}
}

func vmHWM() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "?"
}

func testKeepalive(t *testing.T, l *testLab) {
	p := l.pool(t, PoolConfig{Keepalive: 200 * time.Millisecond})
	h := l.host(t, p, l.target("web2", "app"))
	sshRun(t, h, "true")
	// Freeze the sshd processes serving our connection (not the listener,
	// pid 1 of the host): the peer stops answering without closing TCP.
	l.exec(t, "web2", `for d in /proc/[0-9]*; do
  [ "${d#/proc/}" = 1 ] && continue
  case "$(cat $d/cmdline 2>/dev/null | tr '\0' ' ')" in "sshd: app"*) kill -STOP "${d#/proc/}";; esac
done`)
	t.Cleanup(func() {
		l.exec(t, "web2", `for d in /proc/[0-9]*; do
  case "$(cat $d/cmdline 2>/dev/null | tr '\0' ' ')" in "sshd: app"*) kill -CONT "${d#/proc/}"; kill -TERM "${d#/proc/}";; esac
done`)
	})
	start := time.Now()
	_, err := h.Run(context.Background(), "true", nil)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Phase != PhaseKeepalive {
		t.Fatalf("got %v; want *UnreachableError{Phase: keepalive}", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("dead peer noticed after %v; want about 3 keepalive intervals", d)
	}
	// Later callers get the same error at once.
	h2, err := p.Host(context.Background(), l.target("web2", "app"))
	if err == nil {
		_, err = h2.Run(context.Background(), "true", nil)
	}
	if !errors.As(err, &ue) {
		t.Fatalf("after death got %v; want *UnreachableError", err)
	}
}

// TestHandshakeTimeout dials a listener that accepts TCP but never speaks
// SSH: connect_timeout must bound the handshake.
func TestHandshakeTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	p := NewPool(PoolConfig{KnownHostsFiles: []string{filepath.Join(t.TempDir(), "kh")}})
	defer p.Close()
	tg := Target{Name: "mute", Address: "127.0.0.1", Port: port, User: "root", CheckHostKeys: true, ConnectTimeout: 300 * time.Millisecond}
	start := time.Now()
	_, err = p.Host(context.Background(), tg)
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Phase != PhaseHandshake {
		t.Fatalf("got %v; want *UnreachableError{Phase: handshake}", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %v; want about connect_timeout (300ms)", d)
	}
	// The failure is remembered: a second caller gets it at once.
	start = time.Now()
	if _, err2 := p.Host(context.Background(), tg); !errors.As(err2, &ue) || time.Since(start) > 100*time.Millisecond {
		t.Fatalf("second Host: got %v after %v; want the remembered error at once", err2, time.Since(start))
	}
	// ctx cancellation also ends a stalled handshake, and is not remembered.
	tg.Port, tg.ConnectTimeout = port, 30*time.Second
	tg.User = "other"
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := p.Host(ctx, tg); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("got %v after %v; want context.DeadlineExceeded quickly", err, time.Since(start))
	}
}

// TestConnectRefused checks the connect phase and its message.
func TestConnectRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	p := NewPool(PoolConfig{KnownHostsFiles: []string{filepath.Join(t.TempDir(), "kh")}})
	defer p.Close()
	_, err = p.Host(context.Background(), Target{Name: "gone", Address: "127.0.0.1", Port: port, User: "root"})
	var ue *UnreachableError
	if !errors.As(err, &ue) || ue.Phase != PhaseConnect || !strings.HasPrefix(err.Error(), fmt.Sprintf("host gone (127.0.0.1:%d): connect: ", port)) {
		t.Fatalf("got %v; want *UnreachableError{Phase: connect} naming the host", err)
	}
}

// reportMedian adds the median of ds (per op, divided by per) to b's
// results as "p50-ms": on a shared machine the mean (ns/op) is dominated
// by other processes' load spikes.
func reportMedian(b *testing.B, ds []time.Duration, per int) {
	if len(ds) == 0 {
		return
	}
	slices.Sort(ds)
	b.ReportMetric(float64(ds[len(ds)/2].Microseconds())/1000/float64(per), "p50-ms")
}

// BenchmarkRunTrivial measures `true` on a warm connection and shell.
func BenchmarkRunTrivial(b *testing.B) {
	l := labtest.Start(b, lab.Config{Subnet: labSubnet, Hosts: []lab.HostSpec{{Name: "bench1"}}})
	h := l.Host("bench1")
	p := NewPool(PoolConfig{KnownHostsFiles: []string{l.KnownHosts}})
	defer p.Close()
	ctx := context.Background()
	sh, err := p.Host(ctx, Target{Name: "bench1", Address: h.Addr, Port: h.Port, User: "root", PrivateKey: l.ClientKey, CheckHostKeys: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := sh.Run(ctx, "true", nil); err != nil {
		b.Fatal(err)
	}
	b.Run("Run", func(b *testing.B) {
		var ds []time.Duration
		for b.Loop() {
			start := time.Now()
			if _, err := sh.Run(ctx, "true", nil); err != nil {
				b.Fatal(err)
			}
			ds = append(ds, time.Since(start))
		}
		reportMedian(b, ds, 1)
	})
	// For comparison: one SSH round trip on the same connection (a
	// keepalive request, no process on the host), and what one fork+exec of
	// sh costs on the host (the floor of a command in a fresh sh).
	b.Run("SSHRoundTrip", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := sh.c.client.SendRequest("keepalive@openssh.com", true, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("HostForkExecSh", func(b *testing.B) {
		script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do sh /dev/null </dev/null & wait $!; i=$((i+1)); done", b.N)
		b.ResetTimer()
		if out, err := h.Exec(ctx, script); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	})
	// The floor of a command in a subshell of the persistent shell: one
	// fork of sh, no exec.
	b.Run("HostSubshell", func(b *testing.B) {
		script := fmt.Sprintf("i=0; while [ $i -lt %d ]; do ( . /dev/null ) </dev/null & wait $!; i=$((i+1)); done", b.N)
		b.ResetTimer()
		if out, err := h.Exec(ctx, script); err != nil {
			b.Fatalf("%v: %s", err, out)
		}
	})
	batch := func(scripts []string) func(b *testing.B) {
		return func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				start := time.Now()
				if _, err := sh.RunBatch(ctx, scripts); err != nil {
					b.Fatal(err)
				}
				ds = append(ds, time.Since(start))
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N*len(scripts)), "ms/script")
			reportMedian(b, ds, len(scripts)) // per script
		}
	}
	trues := make([]string, 20)
	for i := range trues {
		trues[i] = "true"
	}
	b.Run("RunBatch20", batch(trues))
	// What the engine sends: up to 64 read-only probes per batch.
	probes := make([]string, 64)
	for i := range probes {
		probes[i] = fmt.Sprintf("test -e /etc/opsmop-probe-%d; echo $?", i)
	}
	b.Run("RunBatch64Probes", batch(probes))
}

func pemEncode(b *pem.Block) []byte { return pem.EncodeToMemory(b) }
