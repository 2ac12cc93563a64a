package secret

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretNeverPrints(t *testing.T) {
	s := New("hunter2")
	type wrapper struct {
		P Secret
		Q *Secret
	}
	w := wrapper{P: s, Q: &s}
	js, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s %q %x %d", s, s, s, s, s, s, s), fmt.Sprintf("%+v %#v", w, w), string(js), fmt.Errorf("auth with %v failed", s).Error()} {
		if strings.Contains(out, "hunter2") {
			t.Errorf("got %q; want the password redacted", out)
		}
		if !strings.Contains(out, Redacted) && !strings.Contains(out, `\u003credacted\u003e`) {
			t.Errorf("got %q; want %q in it", out, Redacted)
		}
	}
	if s.Reveal() != "hunter2" {
		t.Errorf("Reveal: got %q; want the value", s.Reveal())
	}
	if New("").String() != "" || !New("").IsZero() {
		t.Errorf("an empty secret should print empty and be zero")
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string {
		if k == "PW" {
			return "from-env"
		}
		return ""
	}
	cases := []struct{ ref, want, err string }{
		{"plain", "plain", ""},
		{"env:PW", "from-env", ""},
		{"env:MISSING", "", "MISSING is not set"},
		{"file:" + pw, "from-file", ""},
		{"file:" + filepath.Join(dir, "nope"), "", "no such file"},
	}
	for _, c := range cases {
		t.Run(c.ref, func(t *testing.T) {
			got, err := Resolve(c.ref, env)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got error %v; want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || got.Reveal() != c.want {
				t.Errorf("got %q, %v; want %q", got.Reveal(), err, c.want)
			}
		})
	}
}
