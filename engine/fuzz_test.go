package engine_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/engine"
)

// heavyTemplate matches template functions that are slow or huge by
// design (key generation, bcrypt, repeat, ranges, DNS lookups) or that
// read the environment, and numbers of six digits or more (widths,
// counts): a policy author may use them, but the fuzzer would only measure
// how slow they are.
var heavyTemplate = regexp.MustCompile(`(?i)gen|bcrypt|htpasswd|derive|repeat|rand|until|seq|range|getHost|env|buildCustom|indent|\d{6}`)

// FuzzRenderString renders arbitrary templates against a scope holding
// hostile strings, lists and maps: it must never panic, a string without
// "{{" comes back unchanged, and an error names the template.
func FuzzRenderString(f *testing.F) {
	for _, s := range []string{
		"plain text",
		"{{ .name }}",
		"{{ .missing }}",
		"{{ .hostile | shquote }}",
		"{{ range .list }}{{ . }},{{ end }}",
		"{{ index .map \"k\" }}",
		"{{ if eq .n 3 }}three{{ else }}other{{ end }}",
		"{{ .name | upper | quote }}",
		"{{ template \"x\" }}",
		"{{ define \"x\" }}{{ template \"x\" }}{{ end }}{{ template \"x\" }}",
		"{{ \"\\xff\\xfe\" }}",
		"{{ toJson .map }}",
		"{{ .facts.os_family }}",
		"{{ $x := 1 }}{{ $x = 2 }}{{ $x }}",
		"{{ printf \"%v %q\" .list .hostile }}",
		"{{ .n | add 1 | mul 2 }}",
		"{{ split \",\" \"a,b\" }}",
		"{{",
		"}}{{ end }}",
	} {
		f.Add(s)
	}
	scope := map[string]any{
		"name":    "web1",
		"hostile": "a'b\"c $(id) `id` *?[x] -rf\n\xff",
		"list":    []any{1, "two", 3.5, nil},
		"map":     map[string]any{"k": "v", "n": map[string]any{"x": []any{1}}},
		"n":       3,
		"facts":   map[string]any{"os_family": "debian"},
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 2048 || heavyTemplate.MatchString(s) {
			return
		}
		ev := engine.NewEvaluator(".")
		out, err := ev.RenderString(s, scope)
		if !strings.Contains(s, "{{") {
			if err != nil || out != s {
				t.Fatalf("RenderString(%q) without {{ = %q, %v; want it unchanged", s, out, err)
			}
			return
		}
		if err != nil && !strings.HasPrefix(err.Error(), "template ") {
			t.Errorf("RenderString(%q) error %q does not start with \"template \"", s, err)
		}
	})
}
