package connection

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/skeema/knownhosts"
	"golang.org/x/crypto/ssh"
	xknownhosts "golang.org/x/crypto/ssh/knownhosts"
)

// hostKeyCheck verifies one hop's host key against the pool's known_hosts
// files. err records why a key was refused, for the caller to report.
type hostKeyCheck struct {
	pool *Pool
	t    Target
	addr string
	err  error
}

// callback returns the HostKeyCallback and the host key algorithms to
// offer (those known_hosts holds for the host, so that a host with keys of
// several types is checked against the type we know; nil when none known).
func (hk *hostKeyCheck) callback() (ssh.HostKeyCallback, []string) {
	p := hk.pool
	kh := p.knownHosts(hk.t)
	p.khMu.Lock()
	db, loadErr := loadKnownHosts(kh.Files)
	p.khMu.Unlock()
	var algos []string
	if loadErr == nil {
		algos = db.HostKeyAlgorithms(hk.addr)
	}
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		if loadErr != nil {
			hk.err = loadErr
			return loadErr
		}
		err := db.HostKeyCallback()(hostname, remote, key)
		if err == nil {
			return nil
		}
		fp := ssh.FingerprintSHA256(key)
		var ke *xknownhosts.KeyError
		switch {
		case knownhosts.IsHostKeyChanged(err) && errors.As(err, &ke):
			w := ke.Want[0]
			hk.err = &HostKeyError{Host: hk.t.Name, Addr: hk.addr, Fingerprint: fp, Changed: true,
				Known: ssh.FingerprintSHA256(w.Key), KnownHostsFile: fmt.Sprintf("%s:%d", w.Filename, w.Line)}
			return hk.err
		case knownhosts.IsHostUnknown(err):
			if p.cfg.AcceptNewHostKeys || hk.t.AcceptNewHostKeys {
				if werr := p.recordHostKey(kh, hostname, key); werr != nil {
					hk.err = fmt.Errorf("host %s (%s): recording new host key %s: %w", hk.t.Name, hk.addr, fp, werr)
					return hk.err
				}
				return nil
			}
			if !hk.t.CheckHostKeys {
				return nil
			}
			hk.err = &HostKeyError{Host: hk.t.Name, Addr: hk.addr, Fingerprint: fp, KnownHostsFile: displayPath(kh.recordOrFirst())}
			return hk.err
		}
		hk.err = fmt.Errorf("host %s (%s): checking host key %s: %w", hk.t.Name, hk.addr, fp, err)
		return hk.err
	}
	return cb, algos
}

// loadKnownHosts reads the files that exist (a missing file is simply
// empty).
func loadKnownHosts(files []string) (*knownhosts.HostKeyDB, error) {
	var existing []string
	for _, f := range files {
		if _, err := os.Stat(f); err == nil {
			existing = append(existing, f)
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("known_hosts %s: %w", f, err)
		}
	}
	db, err := knownhosts.NewDB(existing...)
	if err != nil {
		return nil, fmt.Errorf("reading known_hosts: %w", err)
	}
	return db, nil
}

// knownHosts is t's known_hosts files: its own (Target.KnownHosts), else
// the pool's, new keys going into the first.
func (p *Pool) knownHosts(t Target) KnownHosts {
	if t.KnownHosts != nil {
		return *t.KnownHosts
	}
	kh := KnownHosts{Files: p.cfg.KnownHostsFiles}
	if len(kh.Files) > 0 {
		kh.Record = kh.Files[0]
	}
	return kh
}

// recordOrFirst names the file a new key belongs in, for messages.
func (kh KnownHosts) recordOrFirst() string {
	switch {
	case kh.Record != "":
		return kh.Record
	case len(kh.Files) > 0:
		return kh.Files[0]
	}
	return "~/.ssh/known_hosts"
}

// recordHostKey appends the key to kh.Record (creating it 0600, its
// directory 0700), its host name hashed when kh.Hash, serialised with
// every other known_hosts access of the pool.
func (p *Pool) recordHostKey(kh KnownHosts, hostname string, key ssh.PublicKey) error {
	p.khMu.Lock()
	defer p.khMu.Unlock()
	file := kh.Record
	if file == "" {
		return errors.New("no known_hosts file to record it in (UserKnownHostsFile none): name one, or add the key yourself")
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	name := knownhosts.Normalize(hostname)
	if kh.Hash {
		name = xknownhosts.HashHostname(name)
	}
	line := knownhosts.Line([]string{name}, key) + "\n"
	if _, err := f.WriteString(line); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// displayPath shows paths under the home directory with ~.
func displayPath(p string) string {
	if home, err := os.UserHomeDir(); err == nil && home != "" && home != "/" && strings.HasPrefix(p, home+"/") {
		return "~" + p[len(home):]
	}
	return p
}
