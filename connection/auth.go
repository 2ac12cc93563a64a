package connection

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"

	"github.com/opsmop/opsmop/internal/homedir"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// authSet is the auth methods for one dial, tried once each in order:
// public keys (agent first, then key files, loaded lazily so that a
// passphrase is only asked when the agent did not do), password,
// keyboard-interactive answered with the password.
type authSet struct {
	methods []ssh.AuthMethod
	agentMu sync.Mutex
	agentC  net.Conn
	notes   []string // why default keys were skipped, for the auth error
	err     error    // a key that could not be loaded
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

func (p *Pool) authMethods(t Target) *authSet {
	a := &authSet{}
	// All signers go into ONE publickey method: x/crypto tries each
	// method name once, so a second publickey method would never be used.
	signers := func() ([]ssh.Signer, error) {
		var out []ssh.Signer
		if p.cfg.UseAgent {
			if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
				if c, err := net.Dial("unix", sock); err == nil {
					a.agentMu.Lock()
					a.agentC = c
					a.agentMu.Unlock()
					if s, err := agent.NewClient(c).Signers(); err == nil {
						out = append(out, s...)
					} else {
						a.notes = append(a.notes, "ssh-agent: "+err.Error())
					}
				} else {
					a.notes = append(a.notes, "ssh-agent at SSH_AUTH_SOCK unreachable: "+err.Error())
				}
			}
		}
		ks, err := p.keySigners(t, a)
		if err != nil {
			a.err = err
		}
		out = append(out, ks...)
		return out, nil
	}
	a.methods = append(a.methods, ssh.PublicKeysCallback(signers))
	if !t.Password.IsZero() {
		pw := t.Password
		a.methods = append(a.methods,
			ssh.PasswordCallback(func() (string, error) { return pw.Reveal(), nil }),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				ans := make([]string, len(questions))
				for i := range ans {
					ans[i] = pw.Reveal()
				}
				return ans, nil
			}))
	}
	return a
}

// keySigners loads Target.PrivateKey, or the default key files that exist.
// An explicit key that cannot be used is an error; an encrypted default
// key without a Passphrase function is skipped with a note.
func (p *Pool) keySigners(t Target, a *authSet) ([]ssh.Signer, error) {
	if t.PrivateKey != "" {
		home, _ := os.UserHomeDir() // "" on error: the path stays as written
		path := homedir.Expand(t.PrivateKey, home)
		s, err := p.loadKey(path)
		if err != nil {
			return nil, err
		}
		return []ssh.Signer{s}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return nil, nil
	}
	var out []ssh.Signer
	for _, name := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
		path := filepath.Join(home, ".ssh", name)
		if _, err := os.Stat(path); err != nil {
			continue
		}
		s, err := p.loadKey(path)
		if err != nil {
			a.notes = append(a.notes, err.Error())
			continue
		}
		out = append(out, s)
	}
	return out, nil
}

func (p *Pool) loadKey(path string) (ssh.Signer, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(pem)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		if p.cfg.Passphrase == nil {
			return nil, fmt.Errorf("private key %s is encrypted and no passphrase can be asked: load it into ssh-agent (ssh-add) or run interactively", path)
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
