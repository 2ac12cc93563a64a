package connection

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/shell"
)

// newKey returns a fresh ed25519 private key.
func newKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// writeKey writes k as an unencrypted OpenSSH private key file dir/name.
func writeKey(t *testing.T, dir, name string, k any) string {
	t.Helper()
	blk, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pemEncode(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// readRawKey parses the private key file at path.
func readRawKey(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := ssh.ParseRawPrivateKey(b)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// keys returns n fresh keys no lab host authorizes, after first.
func keys(t *testing.T, n int, first ...any) []any {
	out := append([]any(nil), first...)
	for range n {
		out = append(out, newKey(t))
	}
	return out
}

// serveAgent serves an in-memory agent holding keys, in this order, on a
// unix socket and points SSH_AUTH_SOCK at it; it returns the socket.
func serveAgent(t *testing.T, keys []any) string {
	t.Helper()
	kr := agent.NewKeyring()
	for _, k := range keys {
		if err := kr.Add(agent.AddedKey{PrivateKey: k}); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", sock)
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
			go func() {
				defer c.Close()
				_ = agent.ServeAgent(kr, c)
			}()
		}
	}()
	t.Setenv("SSH_AUTH_SOCK", sock)
	return sock
}

// certFor writes PATH-cert.pub next to the key file at path: a user
// certificate for principal, signed by ca.
func certFor(t *testing.T, path string, ca ssh.Signer, principal string) {
	t.Helper()
	s, err := ssh.NewSignerFromKey(readRawKey(t, path))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: s.PublicKey(), CertType: ssh.UserCert, KeyId: "opsmop-test",
		ValidPrincipals: []string{principal}, ValidBefore: ssh.CertTimeInfinity}
	if err := cert.SignCert(rand.Reader, ca); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+"-cert.pub", ssh.MarshalAuthorizedKey(cert), 0o644); err != nil {
		t.Fatal(err)
	}
}

// testAuthOrder checks against a real sshd (MaxAuthTries at its default,
// 6: every rejected key counts) the order credentials are offered in: key
// files first (a certificate next to the key before it), each public key
// once, then the agent's keys unless IdentitiesOnly, the password last;
// and that a failed login is an *AuthError that says what was offered and
// what the server said, and never blames connect_timeout.
func testAuthOrder(t *testing.T, l *testLab) {
	dir := t.TempDir()
	wrongKey := newKey(t)
	wrong := writeKey(t, dir, "id_wrong", wrongKey)
	right := readRawKey(t, l.ClientKey)
	encRight := filepath.Join(dir, "id_enc")
	blk, err := ssh.MarshalPrivateKeyWithPassphrase(right, "", []byte("s3cret-phrase"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(encRight, pemEncode(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	// app on web1 trusts certificates of a test CA (cert-authority in
	// its authorized_keys); userKey itself is authorized nowhere.
	ca, err := ssh.NewSignerFromKey(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	l.exec(t, "web1", "printf '%s\\n' "+shell.Quote("cert-authority "+strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))))+
		" >>/home/app/.ssh/authorized_keys")
	userKey := newKey(t)
	withCert := writeKey(t, filepath.Join(dir, "cert"), "id_user", userKey)
	certFor(t, withCert, ca, "app")
	noCert := writeKey(t, filepath.Join(dir, "nocert"), "id_user", userKey)

	type want struct {
		keyFiles  []string // AuthError.KeyFiles
		agentKeys int
		password  bool
		tooMany   bool // sshd's MaxAuthTries ended the login
	}
	certOnly := withCert + "-cert.pub" // also as a CertificateFile
	missing := filepath.Join(dir, "id_missing")
	tests := []struct {
		name     string
		user     string
		key      string   // Target.PrivateKey
		files    []string // Target.IdentityFiles
		certs    []string // Target.CertificateFiles
		agent    []any    // the agent's keys; nil: no agent
		sock     string   // Target.IdentityAgent: "" the pool's, "none", or "served": the served agent's socket, the pool using none
		only     bool     // Target.IdentitiesOnly
		noPubkey bool     // Target.NoPubkey
		password secret.Secret
		fail     *want // nil: the login works
	}{
		{name: "explicit key before 8 agent keys", user: "root", key: l.ClientKey, agent: keys(t, 8)},
		{name: "wrong key and 8 agent keys", user: "root", key: wrong, agent: keys(t, 8),
			fail: &want{keyFiles: []string{wrong}, agentKeys: 8, tooMany: true}},
		{name: "agent key after the explicit key", user: "root", key: wrong, agent: keys(t, 2, right)},
		{name: "agent copy of the explicit key offered once", user: "root", key: wrong, agent: keys(t, 2, wrongKey),
			fail: &want{keyFiles: []string{wrong}, agentKeys: 2}},
		{name: "identities only offers no agent key", user: "root", key: wrong, agent: keys(t, 2, right), only: true,
			fail: &want{keyFiles: []string{wrong}}},
		{name: "identities only with the right key", user: "root", key: l.ClientKey, agent: keys(t, 8), only: true},
		{name: "encrypted key through the agent", user: "root", key: encRight, agent: keys(t, 8, right), only: true},
		{name: "password after the keys", user: "deploy", key: wrong, agent: keys(t, 2), password: l.DeployPassword},
		{name: "wrong password", user: "deploy", key: wrong, agent: keys(t, 2), password: secret.New("not-the-password"),
			fail: &want{keyFiles: []string{wrong}, agentKeys: 2, password: true}},
		{name: "certificate next to the key", user: "app", key: withCert, agent: keys(t, 8)},
		{name: "same key without certificate", user: "app", key: noCert,
			fail: &want{keyFiles: []string{noCert}}},
		{name: "identity files after the explicit key", user: "root", key: wrong, files: []string{l.ClientKey}, agent: keys(t, 8), only: true},
		{name: "identity files in order, a missing one skipped", user: "root", files: []string{missing, wrong}, agent: keys(t, 2, right), only: true,
			fail: &want{keyFiles: []string{wrong}}},
		{name: "certificate file for a key file", user: "app", key: noCert, certs: []string{certOnly}},
		{name: "certificate file for an agent key, identities only", user: "app", certs: []string{certOnly}, agent: keys(t, 2, userKey), only: true},
		{name: "identity agent none", user: "root", key: wrong, agent: keys(t, 2, right), sock: IdentityAgentNone,
			fail: &want{keyFiles: []string{wrong}}},
		{name: "identity agent socket", user: "root", key: wrong, agent: keys(t, 2, right), sock: "served"},
		{name: "no public key: password only", user: "deploy", key: l.ClientKey, noPubkey: true, password: secret.New("not-the-password"),
			fail: &want{password: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			emptyHome(t)
			cfg := PoolConfig{}
			tg := l.target("web1", tc.user)
			if tc.agent != nil {
				sock := serveAgent(t, tc.agent)
				cfg.UseAgent = tc.sock != "served"
				tg.IdentityAgent = tc.sock
				if tc.sock == "served" {
					tg.IdentityAgent = sock
					t.Setenv("SSH_AUTH_SOCK", "")
				}
			} else {
				t.Setenv("SSH_AUTH_SOCK", "")
			}
			tg.PrivateKey, tg.IdentitiesOnly, tg.Password = tc.key, tc.only, tc.password
			tg.IdentityFiles, tg.CertificateFiles, tg.NoPubkey = tc.files, tc.certs, tc.noPubkey
			p := l.pool(t, cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			start := time.Now()
			h, err := p.Host(ctx, tg)
			if tc.fail == nil {
				if err != nil {
					t.Fatalf("Host: %v", err)
				}
				if got := strings.TrimSpace(string(sshRun(t, h, "id -un").Stdout)); got != tc.user {
					t.Fatalf("id -un: got %q; want %q", got, tc.user)
				}
				return
			}
			var ue *UnreachableError
			var ae *AuthError
			if !errors.As(err, &ue) || ue.Phase != PhaseAuth || !errors.As(err, &ae) {
				t.Fatalf("got error %v; want an *AuthError in an *UnreachableError with phase auth", err)
			}
			w := *tc.fail
			got := want{keyFiles: ae.KeyFiles, agentKeys: ae.AgentKeys, password: ae.Password, tooMany: ae.TooManyAuthFailures()}
			if fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("offered %+v; want %+v", got, w)
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			for _, s := range []string{"connect_timeout", "not-the-password", "s3cret-phrase", "is it an SSH server"} {
				if strings.Contains(msg, s) {
					t.Errorf("error %q contains %q", msg, s)
				}
			}
			wantText := []string{"host web1 (", "auth: as user " + tc.user}
			if len(w.keyFiles) > 0 {
				wantText = append(wantText, "offered in this order: key file "+strings.Join(w.keyFiles, ", "))
			}
			if w.agentKeys > 1 {
				wantText = append(wantText, fmt.Sprintf("%d ssh-agent keys", w.agentKeys))
			}
			if w.password {
				wantText = append(wantText, "the password")
			}
			if w.tooMany {
				wantText = append(wantText, "Too many authentication failures", "identities_only")
			}
			for _, s := range wantText {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q lacks %q", msg, s)
				}
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("auth failure took %v; want well under connect_timeout", d)
			}
		})
	}
}
