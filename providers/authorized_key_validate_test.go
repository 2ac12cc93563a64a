package providers_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// TestAuthorizedKeyValidatePolicy: opsmop validate (engine.Validate, run
// before any host is contacted by validate, check and apply) reports a
// bad authorized_key at the file:line of the offending key, in TOML and
// YAML, naming the item and the start of the text.
func TestAuthorizedKeyValidatePolicy(t *testing.T) {
	const good = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3WprL39dPRQhSdHA/tcKQtsRUoh9FrecOkbxO3PpT alice@laptop1"
	for _, tc := range []struct {
		name, file, src string
		want            []string // "LINE: key path: part of the message"
	}{
		{"toml truncated key", "site.toml", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"authorized_key\"\nuser = \"deploy\"\nkey = [\n  \"" + good + "\",\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3\",\n]\n",
			[]string{`6: roles[0].resources[0].key: key 2 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3": not a public key`}},
		{"toml unknown option and exclusive absent", "site.toml", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"authorized_key\"\nuser = \"deploy\"\nkey = 'no-ptty " + good + "'\nstate = \"absent\"\nexclusive = true\n",
			[]string{`6: roles[0].resources[0].key: key 1 "no-ptty ssh-ed25519 AAAAC3NzaC1lZDI1NTE5…": unknown key option "no-ptty"`, `8: roles[0].resources[0].exclusive: exclusive removes every key`}},
		{"yaml newline hidden in a key", "site.yaml", "roles:\n  - name: r\n    resources:\n      - type: authorized_key\n        user: deploy\n        key: \"" + good + "\\u001b[2K\"\n",
			[]string{`6: roles[0].resources[0].key: key 1 "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJw3…": the line holds the control character "\x1b"`}},
		{"valid", "site.toml", "[[roles]]\nname = \"r\"\n[[roles.resources]]\ntype = \"authorized_key\"\nuser = \"deploy\"\nkey = \"" + good + "\"\nexclusive = true\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			site := filepath.Join(dir, tc.file)
			testutil.WriteFile(t, site, tc.src)
			reg := providers.Registry()
			pol, err := policy.Load(site, reg)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			errs := engine.Validate(pol, reg, engine.NewEvaluator(pol.Dir), nil)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d problems %q; want %d", len(errs), errs, len(tc.want))
			}
			for i, w := range tc.want {
				w = site + ":" + w
				if got := errs[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d: got %q; want it to start with %q", i, got, w)
				}
			}
		})
	}
}
