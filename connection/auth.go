package connection

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/opsmop/opsmop/internal/homedir"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authSet is the auth methods for one dial, tried once each in order: one
// publickey method offering the keys in the order of Pool.signers, then
// password and keyboard-interactive answered with the password. It records
// what it offered, for the *AuthError of a failed login.
type authSet struct {
	methods []ssh.AuthMethod
	agentMu sync.Mutex
	agentC  net.Conn

	mu        sync.Mutex
	started   bool     // the server asked for credentials (key exchange done)
	keyFiles  []string // key files and certificates offered, in order
	agentKeys int      // agent keys offered
	password  bool     // the password was sent
	notes     []string // keys skipped and why, for the auth error
	err       error    // the explicit key could not be loaded
}

// close closes the agent socket (after the handshake).
func (a *authSet) close() {
	a.agentMu.Lock()
	defer a.agentMu.Unlock()
	if a.agentC != nil {
		a.agentC.Close()
		a.agentC = nil
	}
}

// authError is the *AuthError for t's failed login with cause err.
func (a *authSet) authError(t Target, addr string, err error) *AuthError {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &AuthError{Host: t.Name, Addr: addr, User: t.User,
		KeyFiles: a.keyFiles, AgentKeys: a.agentKeys, Password: a.password,
		Notes: a.notes, KeyErr: a.err, Err: err}
}

// authStarted reports whether the server asked for credentials.
func (a *authSet) authStarted() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.started
}

func (a *authSet) note(s string) {
	a.mu.Lock()
	a.notes = append(a.notes, s)
	a.mu.Unlock()
}

func (p *Pool) authMethods(t Target) *authSet {
	a := &authSet{}
	// All signers go into ONE publickey method: x/crypto tries each
	// method name once, so a second publickey method would never be used.
	signers := func() ([]ssh.Signer, error) {
		a.mu.Lock()
		a.started = true
		a.mu.Unlock()
		return p.signers(t, a), nil
	}
	if !t.NoPubkey {
		a.methods = append(a.methods, ssh.PublicKeysCallback(signers))
	}
	if t.Password.IsZero() {
		return a
	}
	pw := t.Password
	sent := func() {
		a.mu.Lock()
		a.started, a.password = true, true
		a.mu.Unlock()
	}
	if !t.NoPassword {
		a.methods = append(a.methods, ssh.PasswordCallback(func() (string, error) { sent(); return pw.Reveal(), nil }))
	}
	if !t.NoKeyboardInteractive {
		a.methods = append(a.methods, ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
			ans := make([]string, len(questions))
			for i := range ans {
				ans[i] = pw.Reveal()
			}
			if len(questions) > 0 {
				sent()
			}
			return ans, nil
		}))
	}
	return a
}

// offer is one key to offer and where it comes from.
type offer struct {
	s    ssh.Signer
	path string // key or certificate file; "" for an agent key
}

// signers returns the keys to offer, in this order, each public key once:
//
//  1. Target.PrivateKey, then Target.IdentityFiles: for each, its
//     certificate PATH-cert.pub if there is one (signed by the key
//     itself), then the key; an encrypted key the agent holds is used
//     through the agent without asking a passphrase;
//  2. with neither: the default key files that exist (~/.ssh/id_ed25519,
//     id_ecdsa, id_rsa), each the same way;
//  3. unless Target.IdentitiesOnly: the agent's other keys (Target's
//     IdentityAgent, else PoolConfig.UseAgent's), in the agent's order.
//
// A certificate of Target.CertificateFiles goes just before the key it
// certifies (a key file's, or an agent key's even with IdentitiesOnly).
// Key files come first so that sshd's MaxAuthTries (6 by default, every
// rejected key counts) cannot be used up by agent keys before them; OpenSSH
// offers agent keys first, which is why `ssh -i KEY` fails with many agent
// keys unless IdentitiesOnly=yes.
// A configured key that cannot be loaded is recorded in a.err (the first)
// or a note; the other keys are still offered.
func (p *Pool) signers(t Target, a *authSet) []ssh.Signer {
	agentKeys := p.agentSigners(t, a)
	home, _ := os.UserHomeDir() // "" on error: paths stay as written
	var files []offer
	seenPath := map[string]bool{}
	addFile := func(path string, explicit bool) {
		path = homedir.Expand(path, home)
		if seenPath[path] {
			return
		}
		seenPath[path] = true
		s, err := p.loadKey(path, agentKeys, t.BatchMode)
		if err != nil {
			a.keyErr(err, explicit)
			return
		}
		if cs, certPath := certSigner(path, s, a); cs != nil {
			files = append(files, offer{cs, certPath})
		}
		files = append(files, offer{s, path})
	}
	if t.PrivateKey != "" {
		addFile(t.PrivateKey, true)
	}
	for _, f := range t.IdentityFiles {
		addFile(f, false)
	}
	if t.PrivateKey == "" && len(t.IdentityFiles) == 0 && home != "" {
		for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
			path := filepath.Join(home, ".ssh", name)
			if _, err := os.Stat(path); err == nil {
				addFile(path, false)
			}
		}
	}
	var agent []offer
	for _, s := range agentKeys {
		agent = append(agent, offer{s: s})
	}
	return a.ordered(files, agent, loadCerts(t.CertificateFiles, home, a), t.IdentitiesOnly)
}

// keyErr records why a key file could not be used: the first configured
// key's error is the AuthError's KeyErr, the others are notes.
func (a *authSet) keyErr(err error, explicit bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if explicit && a.err == nil {
		a.err = err
		return
	}
	a.notes = append(a.notes, err.Error())
}

// ordered is files then (unless identitiesOnly) agent keys, each public
// key once, every certificate of certs just before the key it certifies
// (an agent key certified by one is offered even with identitiesOnly). It
// records what it offers in a.
func (a *authSet) ordered(files, agent []offer, certs []certFile, identitiesOnly bool) []ssh.Signer {
	var out []ssh.Signer
	var keyFiles []string
	agentN := 0
	seen := map[string]bool{}
	add := func(o offer) bool {
		k := string(o.s.PublicKey().Marshal())
		if seen[k] {
			return false
		}
		seen[k] = true
		out = append(out, o.s)
		if o.path != "" {
			keyFiles = append(keyFiles, o.path)
		}
		return true
	}
	used := make([]bool, len(certs))
	withCerts := func(o offer) bool {
		certified := false
		for i, c := range certs {
			if bytes.Equal(c.cert.Key.Marshal(), o.s.PublicKey().Marshal()) {
				if cs, err := ssh.NewCertSigner(c.cert, o.s); err == nil && add(offer{cs, c.path}) {
					used[i], certified = true, true
				}
			}
		}
		return certified
	}
	for _, o := range files {
		withCerts(o)
		add(o)
	}
	for _, o := range agent {
		certified := withCerts(o)
		if (!identitiesOnly || certified) && add(o) {
			agentN++
		}
	}
	for i, c := range certs {
		if !used[i] {
			a.note(fmt.Sprintf("certificate %s: none of the keys offered is its key", c.path))
		}
	}
	a.mu.Lock()
	a.keyFiles, a.agentKeys = keyFiles, agentN
	a.mu.Unlock()
	return out
}

// certFile is a parsed certificate file.
type certFile struct {
	path string
	cert *ssh.Certificate
}

// loadCerts reads certificate files; one that cannot be read or is no
// certificate is a note in a.
func loadCerts(paths []string, home string, a *authSet) []certFile {
	var out []certFile
	for _, path := range paths {
		path = homedir.Expand(path, home)
		b, err := os.ReadFile(path)
		if err != nil {
			a.note(fmt.Sprintf("certificate %s: %v", path, err))
			continue
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
		if err != nil {
			a.note(fmt.Sprintf("certificate %s: %v", path, err))
			continue
		}
		cert, ok := pub.(*ssh.Certificate)
		if !ok {
			a.note(fmt.Sprintf("certificate %s: not a certificate but a plain public key", path))
			continue
		}
		out = append(out, certFile{path, cert})
	}
	return out
}

// agentSigners returns the keys of t's agent (Target.IdentityAgent, else
// $SSH_AUTH_SOCK when PoolConfig.UseAgent), keeping the socket open in a
// until close; an unreachable agent is a note.
func (p *Pool) agentSigners(t Target, a *authSet) []ssh.Signer {
	sock, what := t.IdentityAgent, "IdentityAgent "+t.IdentityAgent
	switch sock {
	case IdentityAgentNone:
		return nil
	case "":
		if !p.cfg.UseAgent {
			return nil
		}
		sock, what = os.Getenv("SSH_AUTH_SOCK"), "SSH_AUTH_SOCK"
		if sock == "" {
			return nil
		}
	}
	c, err := net.Dial("unix", sock)
	if err != nil {
		a.note("ssh-agent at " + what + " unreachable: " + err.Error())
		return nil
	}
	a.agentMu.Lock()
	a.agentC = c
	a.agentMu.Unlock()
	s, err := agent.NewClient(c).Signers()
	if err != nil {
		a.note("ssh-agent: " + err.Error())
		return nil
	}
	return s
}

// certSigner returns the certificate signer for key s from PATH-cert.pub
// next to the key file at path, and the certificate's path; nil when there
// is no such file. A certificate that cannot be used is a note in a.
func certSigner(path string, s ssh.Signer, a *authSet) (ssh.Signer, string) {
	certPath := path + "-cert.pub"
	if _, err := os.Stat(certPath); errors.Is(err, os.ErrNotExist) {
		return nil, ""
	}
	cs := loadCerts([]string{certPath}, "", a)
	if len(cs) == 0 {
		return nil, ""
	}
	signer, err := ssh.NewCertSigner(cs[0].cert, s)
	if err != nil {
		a.note(fmt.Sprintf("certificate %s: %v (not issued for %s)", certPath, err, path))
		return nil, ""
	}
	return signer, certPath
}

// loadKey reads the private key file at path. An encrypted key whose
// public key one of agentKeys has is that agent key (no passphrase is
// asked); otherwise its passphrase is asked with PoolConfig.Passphrase,
// unless batch.
func (p *Pool) loadKey(path string, agentKeys []ssh.Signer, batch bool) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if missing.PublicKey != nil {
			want := missing.PublicKey.Marshal()
			for _, as := range agentKeys {
				if bytes.Equal(as.PublicKey().Marshal(), want) {
					return as, nil
				}
			}
		}
		if p.cfg.Passphrase == nil || batch {
			return nil, fmt.Errorf("private key %s is encrypted and no passphrase can be asked (no terminal, or BatchMode yes in the ssh config): load it into ssh-agent (ssh-add) or run interactively", path)
		}
		pass, perr := p.cfg.Passphrase(path)
		if perr != nil {
			return nil, fmt.Errorf("private key %s: passphrase: %w", path, perr)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass.Reveal()))
		if err != nil {
			return nil, fmt.Errorf("private key %s: wrong passphrase or unreadable key: %w", path, err)
		}
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return s, nil
}

// AuthError means the host answered but accepted none of the credentials
// offered. It says what was offered, in order, and what the server said;
// it is always inside an *UnreachableError with Phase "auth" (the engine
// counts the host as unreachable) and can be found with errors.As.
type AuthError struct {
	Host string // inventory name
	Addr string // host:port dialled
	User string // login user
	// KeyFiles are the key files offered, in order: a certificate
	// (PATH-cert.pub) before its key, then default key files.
	KeyFiles []string
	// AgentKeys is the number of ssh-agent keys offered (after KeyFiles'
	// explicit key, never one with the same public key).
	AgentKeys int
	// Password is true when the password was sent.
	Password bool
	// Notes say which keys were skipped and why (an encrypted default key,
	// an unreachable agent, an unusable certificate).
	Notes []string
	// KeyErr is why the explicit private key could not be used, or nil.
	KeyErr error
	// Err is the SSH client's error, with the server's last answer.
	Err error
}

// TooManyAuthFailures reports whether sshd ended the login after MaxAuthTries
// rejected credentials.
func (e *AuthError) TooManyAuthFailures() bool {
	return e.Err != nil && strings.Contains(e.Err.Error(), "Too many authentication failures")
}

// Error names the host, the user, what was offered and what the server
// said, and what to do; never a secret.
func (e *AuthError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host %s (%s): auth: as user %s: %v", e.Host, e.Addr, e.User, e.Err)
	if e.KeyErr != nil {
		fmt.Fprintf(&b, ": %v", e.KeyErr)
	}
	var offered []string
	switch len(e.KeyFiles) {
	case 0:
	case 1:
		offered = append(offered, "key file "+e.KeyFiles[0])
	default:
		offered = append(offered, "key files "+strings.Join(e.KeyFiles, ", "))
	}
	switch e.AgentKeys {
	case 0:
	case 1:
		offered = append(offered, "1 ssh-agent key")
	default:
		offered = append(offered, fmt.Sprintf("%d ssh-agent keys", e.AgentKeys))
	}
	if e.Password {
		offered = append(offered, "the password")
	}
	if len(offered) == 0 {
		b.WriteString("; no key or password was offered")
	} else {
		b.WriteString("; offered in this order: " + strings.Join(offered, "; "))
	}
	if len(e.Notes) > 0 {
		b.WriteString(" (" + strings.Join(e.Notes, "; ") + ")")
	}
	if e.TooManyAuthFailures() {
		b.WriteString("; sshd's MaxAuthTries ended the login before all were tried: give the right key (opsmop_ssh_private_key, or private_key in defaults.toml [ssh]) and offer only it (opsmop_ssh_identities_only=true, or identities_only = true in [ssh]), or remove keys from the agent")
	} else {
		b.WriteString("; check the user, that the key's public half is in that user's ~/.ssh/authorized_keys on the host (private_key, ssh-agent), or the password")
	}
	return b.String()
}

// Unwrap returns the SSH client's error.
func (e *AuthError) Unwrap() error { return e.Err }
