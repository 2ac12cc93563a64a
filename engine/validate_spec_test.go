package engine_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/testutil"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// TestValidateSpecRules: engine.Validate, which opsmop validate, check
// and apply run before contacting any host, reports the rules of the
// resource types (providers' Validate) and their local files, each at the
// file:line of the offending key (of the resource when the key is
// missing) with its key path, and what to do. Values that are templates
// are known only per host and are not judged.
func TestValidateSpecRules(t *testing.T) {
	const head = "[[roles]]\nname = \"r\"\n[[roles.resources]]\n" // the resource's keys start on line 4
	for _, tc := range []struct {
		name  string
		keys  string            // the resource's keys
		files map[string]string // local files, relative to the policy directory
		want  []string          // one problem each: "LINE: key path: part of the message"; none: valid
	}{
		{"content and src", "type = \"file\"\npath = \"/etc/motd\"\ncontent = \"hi\"\nsrc = \"motd\"\n", map[string]string{"motd": "x"},
			[]string{"7: roles[0].resources[0].src: give only one of content, src and template, not both content and src"}},
		{"mode 999", "type = \"file\"\npath = \"/etc/motd\"\ncontent = \"hi\"\nmode = \"999\"\n", nil,
			[]string{`7: roles[0].resources[0].mode: mode "999": want an octal mode such as "0644"`}},
		{"missing src file", "type = \"file\"\npath = \"/etc/motd\"\nsrc = \"files/motd\"\n", nil,
			[]string{`6: roles[0].resources[0].src: local file "files/motd" does not exist (looked for DIR/files/motd): create it, or correct src`}},
		{"missing template file", "type = \"file\"\npath = \"/etc/motd\"\ntemplate = \"t/motd.tmpl\"\n", nil,
			[]string{`6: roles[0].resources[0].template: template "t/motd.tmpl" does not exist (looked for DIR/t/motd.tmpl): create it, or correct template`}},
		{"missing template of a template", "type = \"template\"\nsrc = \"t/app.tmpl\"\npath = \"/etc/app\"\n", nil,
			[]string{`5: roles[0].resources[0].src: template "t/app.tmpl" does not exist`}},
		{"missing package file", "type = \"package\"\nname = \"app\"\nsrc = \"app.deb\"\n", nil,
			[]string{`6: roles[0].resources[0].src: local file "app.deb" does not exist`}},
		{"src is a directory", "type = \"file\"\npath = \"/etc/motd\"\nsrc = \"files\"\n", map[string]string{"files/a": "x"},
			[]string{`6: roles[0].resources[0].src: local file "files" is a directory`}},
		{"missing key: the resource's line", "type = \"link\"\npath = \"/usr/bin/app\"\n", nil,
			[]string{"3: roles[0].resources[0].target: target is required when state is present"}},
		{"every problem", "type = \"directory\"\npath = \"srv\"\nmode = \"rwx\"\nowner = \"-R\"\n", nil,
			[]string{`5: roles[0].resources[0].path: path "srv" is not absolute`, `6: roles[0].resources[0].mode: mode "rwx"`, `7: roles[0].resources[0].owner: owner "-R" is not a valid name`}},
		{"valid", "type = \"template\"\nsrc = \"t/app.tmpl\"\npath = \"/etc/app\"\nmode = \"0640\"\n", map[string]string{"t/app.tmpl": "port={{ .port }}\n"}, nil},
		{"templated values", "type = \"file\"\npath = \"{{ .root }}/motd\"\nsrc = \"{{ .f }}\"\nmode = \"{{ .mode }}\"\n", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			for p, c := range tc.files {
				testutil.WriteFile(t, filepath.Join(dir, p), c)
			}
			site := filepath.Join(dir, "site.toml")
			testutil.WriteFile(t, site, head+tc.keys)
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
				w = site + ":" + strings.ReplaceAll(w, "DIR", dir)
				if got := errs[i].Error(); !strings.HasPrefix(got, w) {
					t.Errorf("problem %d: got %q; want it to start with %q", i, got, w)
				}
			}
		})
	}
}

// localOnce connects every host to this machine.
type localOnce struct{}

func (localOnce) Connect(context.Context, *policy.Role, *engine.HostInfo) (providers.Host, error) {
	return &connection.Local{CommandTimeout: 60 * time.Second}, nil
}

// TestTemplateRenderedOncePerHost: one host, one run, one rendering. A
// template rendering the time ({{ now.UnixNano }}) applies and converges,
// as a `template` and as a `file` with template: the re-check after apply
// uses the rendering that was diffed and uploaded.
func TestTemplateRenderedOncePerHost(t *testing.T) {
	pdir, root := t.TempDir(), t.TempDir()
	testutil.WriteFile(t, filepath.Join(pdir, "stamp.tmpl"), "stamp {{ now.UnixNano }}\n")
	site := filepath.Join(pdir, "site.toml")
	testutil.WriteFile(t, site, `[[roles]]
name = "r"
  [[roles.resources]]
  type = "template"
  src = "stamp.tmpl"
  path = "`+root+`/template"
  [[roles.resources]]
  type = "file"
  template = "stamp.tmpl"
  path = "`+root+`/file"
`)
	reg := providers.Registry()
	pol, err := policy.Load(site, reg)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if errs := engine.Validate(pol, reg, engine.NewEvaluator(pol.Dir), nil); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	log := &recorder{}
	plans := []engine.RoleHosts{{Role: pol.Roles[0], Hosts: []*engine.HostInfo{{Name: "h1", Address: "h1", Groups: []string{"all"}, CommandTimeout: 60 * time.Second}}}}
	sum := engine.Run(context.Background(), engine.Options{Policy: pol, Registry: reg, Lookup: providers.Lookup, Plans: plans, Forks: 1, Connector: localOnce{}, Hooks: log})
	if sum.Failed() {
		for _, e := range log.events {
			if e.Error != "" {
				t.Errorf("%s %s: %s", e.Host, e.Resource, e.Error)
			}
		}
		t.Fatalf("apply failed; want both resources to converge")
	}
	n := 0
	for _, e := range log.events {
		if e.Type != "resource" || e.Host != "h1" {
			continue
		}
		n++
		p := root + "/template"
		if e.ResourceType == "file" {
			p = root + "/file"
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if e.Status != engine.StatusChanged || e.Change == nil || !strings.Contains(e.Change.Diff, "+"+string(got)) {
			t.Errorf("%s: got status %s, change %+v; want changed, with the diff of what is on disk (%q)", e.Resource, e.Status, e.Change, got)
		}
	}
	if n != 2 {
		t.Errorf("got %d resource events; want 2", n)
	}
}
