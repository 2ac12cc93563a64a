package engine

import (
	"os"
	"strings"

	"github.com/opsmop/opsmop/policy"
)

// needsFacts reports whether role may read the host's facts, so that a run
// whose roles never do skips gathering them (one round trip and a few
// processes per host). It errs on the side of gathering: any string of
// the role, of the policy's or the role's variables, or of a template file
// the role renders that mentions "facts" counts, as does a template file
// whose name is itself templated (it cannot be read before the host is
// known), an unreadable one, and a resource type whose provider reads
// facts (policy.ResourceType.Facts). An unknown type counts too.
func needsFacts(p *policy.Policy, role *policy.Role, reg policy.Registry, dir string) bool {
	if mentionsFacts(role.When) || valueMentionsFacts(p.Vars) || valueMentionsFacts(role.Vars) {
		return true
	}
	for _, list := range [][]*policy.Resource{role.Pre, role.Resources, role.Handlers, role.Post} {
		for _, res := range list {
			if resourceNeedsFacts(res, reg, dir) {
				return true
			}
		}
	}
	return false
}

func resourceNeedsFacts(res *policy.Resource, reg policy.Registry, dir string) bool {
	t, ok := reg[res.Type]
	if !ok || t.Facts || res.Raw == nil {
		return true
	}
	for _, n := range stringsOf(res.Raw) {
		if mentionsFacts(n.Value.(string)) {
			return true
		}
	}
	for _, key := range templateKeys(reg, res.Type) {
		if templateNeedsFacts(res.Raw.Get(key), dir) {
			return true
		}
	}
	return false
}

// templateNeedsFacts reports whether the template file named by n (a
// resource's template key, nil when not set) may read facts.
func templateNeedsFacts(n *policy.Node, dir string) bool {
	if n == nil {
		return false
	}
	name, ok := n.Value.(string)
	if !ok || strings.Contains(name, "{{") {
		return true
	}
	full, err := LocalPath(dir, name)
	if err != nil {
		return true
	}
	b, err := os.ReadFile(full)
	return err != nil || mentionsFacts(string(b))
}

func mentionsFacts(s string) bool { return strings.Contains(s, "facts") }

// valueMentionsFacts walks decoded variables (maps, lists, strings).
func valueMentionsFacts(v any) bool {
	switch v := v.(type) {
	case string:
		return mentionsFacts(v)
	case map[string]any:
		for k, x := range v {
			if mentionsFacts(k) || valueMentionsFacts(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if valueMentionsFacts(x) {
				return true
			}
		}
	}
	return false
}
