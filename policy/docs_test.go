package policy

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDocKeys(t *testing.T) {
	reg := testRegistry()
	tests := []struct {
		typ  string
		want []KeyDoc
	}{
		{"directory", []KeyDoc{
			{Key: "path", Type: "string", Required: true, Doc: "directory path"},
			{Key: "mode", Type: "string", Doc: "octal mode"},
			{Key: "owner", Type: "string"},
			{Key: "group", Type: "string"},
			{Key: "state", Type: "string", Default: "present", Enum: []string{"present", "absent"}},
			{Key: "recurse", Type: "boolean"},
		}},
		{"shell", []KeyDoc{
			{Key: "cmd", Type: "string", Required: true, Doc: "command run with sh"},
			{Key: "creates", Type: "string", Doc: "skip when this path exists"},
			{Key: "unless", Type: "string", Doc: "skip when this command succeeds"},
			{Key: "changed_when", Type: "string", Expr: true, Doc: "expression deciding whether the run changed something"},
		}},
		{"service", []KeyDoc{
			{Key: "service", Type: "string", Required: true},
			{Key: "state", Type: "string", Enum: []string{"started", "stopped", "restarted", "reloaded"}},
			{Key: "enabled", Type: "boolean"},
		}},
		{"package", []KeyDoc{
			{Key: "name", Type: "string or list of strings", Required: true, Doc: "package names"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			if got := DocKeys(reg[tt.typ]); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	if got := DocKeys(ResourceType{Name: "broken"}); got != nil {
		t.Errorf("type without New: got %v; want nil", got)
	}
}

func TestDocNestedAndOverriddenTypes(t *testing.T) {
	keys := map[string]KeyDoc{}
	for _, k := range DocStruct(roleKeys{}) {
		keys[k.Key] = k
	}
	if got := keys["serial"].Type; got != "integer, percentage string, or list of those" {
		t.Errorf("serial type: got %q; want the type tag", got)
	}
	var sub []string
	for _, k := range keys["ssh_as"].Keys {
		sub = append(sub, k.Key)
	}
	if want := []string{"username", "password", "private_key"}; !reflect.DeepEqual(sub, want) {
		t.Errorf("ssh_as keys: got %v; want %v", sub, want)
	}
	if !keys["when"].Expr {
		t.Errorf("role when: got Expr false; want true")
	}
}

// TestLanguageDocCoversEveryKey keeps docs/language.md in step with the
// declarations: every policy, role, login and common resource key must be
// documented there (as `key`).
func TestLanguageDocCoversEveryKey(t *testing.T) {
	data, err := os.ReadFile("../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	groups := map[string][]KeyDoc{
		"policy":   DocStruct(policyKeys{}),
		"role":     DocStruct(roleKeys{}),
		"login":    DocStruct(Login{}),
		"resource": DocStruct(commonKeys{}),
	}
	for name, keys := range groups {
		for _, k := range keys {
			if !strings.Contains(doc, "`"+k.Key+"`") {
				t.Errorf("%s key %q: not found in docs/language.md; want it documented", name, k.Key)
			}
		}
	}
}

// TestLanguageDocExample checks that the error example in
// docs/language.md is what Load really prints for the policy shown there.
func TestLanguageDocExample(t *testing.T) {
	data, err := os.ReadFile("../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	block := func(after, fence string) string {
		i := strings.Index(doc, after)
		if i < 0 {
			t.Fatalf("docs/language.md: %q not found", after)
		}
		rest := doc[i:]
		start := strings.Index(rest, fence)
		if start < 0 {
			t.Fatalf("docs/language.md: no %q block after %q", fence, after)
		}
		rest = rest[start+len(fence):]
		end := strings.Index(rest, "```")
		return rest[:end]
	}
	src := block("Example: this policy has five mistakes", "```toml\n")
	want := strings.TrimSpace(block("reports them all:", "```\n"))
	_, err = loadBytes("site.toml", []byte(src), testRegistry(), memFS(nil))
	if err == nil {
		t.Fatal("got no error; want the documented ones")
	}
	if got := err.Error(); got != want {
		t.Errorf("got\n%s\nwant (docs/language.md)\n%s", got, want)
	}
}
