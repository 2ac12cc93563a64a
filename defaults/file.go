// Package defaults holds the user's connection defaults (the defaults
// file) and Resolve, the one function that decides every connection
// setting of a host from role, inventory, defaults file and built-in
// values.
package defaults

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"

	"github.com/opsmop/opsmop/internal/srcpos"
)

// EtcFile is the system-wide defaults file, read only when the user's
// ~/.opsmop/defaults.toml does not exist.
const EtcFile = "/etc/opsmop/defaults.toml"

// File is the content of a defaults file:
//
//	[ssh]
//	username = "deploy"
//	password = "env:DEPLOY_PW"       # or a literal, or file:PATH
//	port = 22
//	private_key = "~/.ssh/id_ed25519"
//	check_host_keys = true
//	[sudo]
//	username = "root"
//	password = "file:~/.sudo_pw"
//	[tuning]
//	forks = 20
//	connect_timeout = "10s"
//	command_timeout = "10m"
//	max_handshakes = 32
//	connect_retries = 2
//
// Every key is optional; a zero value (or nil pointer) means "not set".
type File struct {
	SSH    SSH    `toml:"ssh"`
	Sudo   Sudo   `toml:"sudo"`
	Tuning Tuning `toml:"tuning"`
	// Path is the file this was read from (set by LoadFrom; it is
	// what Settings.Source names).
	Path string `toml:"-"`
}

// SSH is the [ssh] table.
type SSH struct {
	Username string `toml:"username"`
	// Password is a literal or an env:NAME / file:PATH reference; it is
	// resolved only when it is the value that wins.
	Password      string `toml:"password"`
	Port          int    `toml:"port"`
	PrivateKey    string `toml:"private_key"`
	CheckHostKeys *bool  `toml:"check_host_keys"`
	// IdentitiesOnly offers only the key files at login, no other agent
	// key (OpenSSH's IdentitiesOnly).
	IdentitiesOnly *bool `toml:"identities_only"`
}

// Sudo is the [sudo] table. It sets who sudo runs as and with which
// password; whether sudo is used at all is decided by roles and the
// opsmop_sudo inventory variable.
type Sudo struct {
	Username string `toml:"username"`
	Password string `toml:"password"`
}

// Tuning is the [tuning] table. Timeouts are written as Go duration
// strings ("10s", "5m", "1h30m").
type Tuning struct {
	Forks          int           `toml:"forks"`
	ConnectTimeout time.Duration `toml:"-"`
	CommandTimeout time.Duration `toml:"-"`
	// MaxHandshakes bounds the TCP connects plus SSH handshakes in flight
	// at once, apart from forks; 0 means no bound, nil not set (the
	// connection pool's default, connection.DefaultMaxHandshakes).
	MaxHandshakes *int `toml:"max_handshakes"`
	// ConnectRetries is how many times a connect that failed for a
	// transient cause is tried again, 0 to MaxConnectRetries; nil not set
	// (DefaultConnectRetries).
	ConnectRetries *int `toml:"connect_retries"`
}

// DefaultConnectRetries is what an unset tuning.connect_retries means.
const DefaultConnectRetries = 2

// MaxConnectRetries is the largest tuning.connect_retries accepted (the
// same as connection.MaxConnectRetries).
const MaxConnectRetries = 10

// rawFile is File as decoded: timeouts as strings, so that a bare integer
// (which would be nanoseconds) is a type error with a line number.
type rawFile struct {
	SSH    SSH       `toml:"ssh"`
	Sudo   Sudo      `toml:"sudo"`
	Tuning rawTuning `toml:"tuning"`
}

type rawTuning struct {
	Forks          int    `toml:"forks"`
	ConnectTimeout string `toml:"connect_timeout"`
	CommandTimeout string `toml:"command_timeout"`
	MaxHandshakes  *int   `toml:"max_handshakes"`
	ConnectRetries *int   `toml:"connect_retries"`
}

// HomeFile returns the user's defaults file path: HOME/.opsmop/defaults.toml.
func HomeFile(home string) string { return filepath.Join(home, ".opsmop", "defaults.toml") }

// LoadFrom reads homeFile, or only if it does not exist (or homeFile is "")
// etcFile. A file that exists but cannot be read or decoded is an error,
// never a reason to fall back. Decoding is strict: an unknown key, a wrong
// type, a port outside 1-65535, forks below 1, a bad duration,
// max_handshakes below 0 or connect_retries outside 0-MaxConnectRetries
// is an error naming file:line and the key. It returns (nil, "", nil) when
// neither file exists.
func LoadFrom(homeFile, etcFile string) (*File, string, error) {
	for _, p := range []string{homeFile, etcFile} {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, "", fmt.Errorf("defaults file: %w", err)
		}
		f, err := parse(p, b)
		if err != nil {
			return nil, "", err
		}
		return f, p, nil
	}
	return nil, "", nil
}

func parse(path string, b []byte) (*File, error) {
	var raw rawFile
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, decodeError(path, err)
	}
	f := &File{SSH: raw.SSH, Sudo: raw.Sudo, Path: path,
		Tuning: Tuning{Forks: raw.Tuning.Forks, MaxHandshakes: raw.Tuning.MaxHandshakes, ConnectRetries: raw.Tuning.ConnectRetries}}
	keys := keyLines(b)
	line := func(key string) int { return keys[key] } // 0: not written
	if f.SSH.Port != 0 && (f.SSH.Port < 1 || f.SSH.Port > 65535) {
		return nil, fmt.Errorf("defaults file %s:%d: ssh.port: %d is not a port (1-65535)", path, line("ssh.port"), f.SSH.Port)
	}
	if f.Tuning.Forks < 0 || (f.Tuning.Forks == 0 && line("tuning.forks") > 0) {
		return nil, fmt.Errorf("defaults file %s:%d: tuning.forks: must be at least 1", path, line("tuning.forks"))
	}
	if n := f.Tuning.MaxHandshakes; n != nil && *n < 0 {
		return nil, fmt.Errorf("defaults file %s:%d: tuning.max_handshakes: %d: must be at least 0 (0: no bound)", path, line("tuning.max_handshakes"), *n)
	}
	if n := f.Tuning.ConnectRetries; n != nil && (*n < 0 || *n > MaxConnectRetries) {
		return nil, fmt.Errorf("defaults file %s:%d: tuning.connect_retries: %d: must be 0-%d", path, line("tuning.connect_retries"), *n, MaxConnectRetries)
	}
	for _, d := range []struct {
		key string
		in  string
		out *time.Duration
	}{
		{"tuning.connect_timeout", raw.Tuning.ConnectTimeout, &f.Tuning.ConnectTimeout},
		{"tuning.command_timeout", raw.Tuning.CommandTimeout, &f.Tuning.CommandTimeout},
	} {
		if d.in == "" {
			continue
		}
		v, err := time.ParseDuration(d.in)
		if err != nil {
			return nil, fmt.Errorf("defaults file %s:%d: %s: %q is not a duration (write e.g. \"10s\", \"5m\", \"1h30m\")", path, line(d.key), d.key, d.in)
		}
		if v <= 0 {
			return nil, fmt.Errorf("defaults file %s:%d: %s: %q: a timeout must be positive", path, line(d.key), d.key, d.in)
		}
		*d.out = v
	}
	return f, nil
}

// knownKeys is what the defaults file accepts, for error messages.
const knownKeys = "[ssh] username, password, port, private_key, identities_only, check_host_keys; [sudo] username, password; [tuning] forks, connect_timeout, command_timeout, max_handshakes, connect_retries"

func decodeError(path string, err error) error {
	var sm *toml.StrictMissingError
	if errors.As(err, &sm) {
		msgs := make([]string, 0, len(sm.Errors))
		for _, e := range sm.Errors {
			row, _ := e.Position()
			msgs = append(msgs, fmt.Sprintf("defaults file %s:%d: unknown key %s", path, row, strings.Join(e.Key(), ".")))
		}
		return fmt.Errorf("%s (known keys: %s)", strings.Join(msgs, "; "), knownKeys)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		key := strings.Join(de.Key(), ".")
		msg := friendlyTypeError(key, strings.TrimPrefix(de.Error(), "toml: "))
		if key != "" {
			return fmt.Errorf("defaults file %s:%d: %s: %s", path, row, key, msg)
		}
		return fmt.Errorf("defaults file %s:%d: %s", path, row, msg)
	}
	return fmt.Errorf("defaults file %s: %w", path, err)
}

// keyLines maps each key path of a defaults file ("ssh.port") to the
// line where it is first written.
func keyLines(b []byte) map[string]int {
	lines := map[string]int{}
	srcpos.TOMLKeys(b, func(path []string, line int, _ *unstable.Node) {
		k := strings.Join(path, ".")
		if _, ok := lines[k]; !ok {
			lines[k] = line
		}
	})
	return lines
}

var typeErrRe = regexp.MustCompile(`^cannot decode TOML (\w+) into struct field \S+ of type (\S+)$`)

// friendlyTypeError rewrites go-toml's type mismatch message, which names
// Go types, into one about the file.
func friendlyTypeError(key, msg string) string {
	m := typeErrRe.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	if strings.HasSuffix(key, "_timeout") {
		return fmt.Sprintf("must be a quoted duration such as \"10s\" or \"5m\", not a TOML %s", m[1])
	}
	want := map[string]string{"int": "an integer", "*int": "an integer", "bool": "true or false", "*bool": "true or false", "string": "a quoted string"}[m[2]]
	if want == "" {
		want = "a different type"
	}
	return fmt.Sprintf("must be %s, not a TOML %s", want, m[1])
}
