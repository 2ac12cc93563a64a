// Package secret holds passwords in a type that never prints itself.
package secret

import (
	"fmt"
	"os"
	"strings"

	"github.com/opsmop/opsmop/internal/homedir"
)

// Redacted is what every printing of a Secret shows.
const Redacted = "<redacted>"

// Secret is a password or passphrase. Every way Go prints or encodes it
// (fmt verbs, JSON, text) yields "<redacted>"; Reveal returns the value for
// the one place that needs it (writing it to sudo's stdin or an SSH auth).
type Secret struct{ v string }

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the plain value.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether no secret is set.
func (s Secret) IsZero() bool { return s.v == "" }

// String returns "<redacted>" for a set secret and "" for an empty one.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// Format keeps every fmt verb from printing the value.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// MarshalText encodes the secret as "<redacted>".
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// RefError is a password reference (env:NAME, file:PATH) that cannot be
// resolved on this machine now. It names the reference, never a value.
type RefError struct {
	Ref string
	Err error
}

func (e *RefError) Error() string { return fmt.Sprintf("password reference %q: %v", e.Ref, e.Err) }
func (e *RefError) Unwrap() error { return e.Err }

// Resolve turns a configured password into a Secret. "env:NAME" reads the
// environment variable NAME, "file:PATH" reads the file PATH (a leading ~
// is the user's home directory; one trailing newline removed); anything
// else is the password itself. The error, a
// *RefError, names the reference, never the value.
func Resolve(ref string, getenv func(string) string) (Secret, error) {
	switch {
	case strings.HasPrefix(ref, "env:"):
		name := strings.TrimPrefix(ref, "env:")
		v := getenv(name)
		if v == "" {
			return Secret{}, &RefError{Ref: ref, Err: fmt.Errorf("environment variable %s is not set or empty", name)}
		}
		return New(v), nil
	case strings.HasPrefix(ref, "file:"):
		home, _ := os.UserHomeDir() // "" on error: ~ stays as written
		p := homedir.Expand(strings.TrimPrefix(ref, "file:"), home)
		b, err := os.ReadFile(p)
		if err != nil {
			return Secret{}, &RefError{Ref: ref, Err: err}
		}
		return New(strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")), nil
	}
	return New(ref), nil
}
