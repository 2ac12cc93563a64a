package providers

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/opsmop/opsmop/internal/shell"
)

// SELinux context keys (seuser, serole, setype, selevel) of file,
// template and directory. A resource type gets them by embedding
// seKeys anonymously in its spec (the policy decoder and the docs
// flatten it); its provider then
//   - validates them (seKeys.validate, in Validate),
//   - appends seProbeScript to its probe (after statScript: it reads $t
//     and $p) and seProbeVars to its ProbeVars,
//   - in Check, calls seKeys.check with the parsed probe output, which
//     fails a host without SELinux and returns the Fields and the
//     seChange to plan,
//   - in Apply, runs seChange.script after the object exists.
// The tree resource can do the same per path.

// seKeys are the SELinux context keys; unset keys leave that part of the
// context as it is.
type seKeys struct {
	SEUser  string `opsmop:"seuser" doc:"SELinux user of the path's context, e.g. \"system_u\"; unset: unchanged. Only on hosts where SELinux is on: elsewhere any se* key fails the resource"`
	SERole  string `opsmop:"serole" doc:"SELinux role of the path's context, e.g. \"object_r\"; unset: unchanged"`
	SEType  string `opsmop:"setype" doc:"SELinux type of the path's context, e.g. \"httpd_sys_content_t\"; unset: unchanged"`
	SELevel string `opsmop:"selevel" doc:"SELinux level (MLS/MCS range) of the path's context, e.g. \"s0\", \"s0:c1,c2\" or \"s0-s0:c0.c1023\"; unset: unchanged"`
}

// set reports whether any key is given.
func (k seKeys) set() bool {
	return k.SEUser != "" || k.SERole != "" || k.SEType != "" || k.SELevel != ""
}

// seIdent is an SELinux user, role or type name.
var seIdent = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// seLevel is an MLS/MCS level or range: a sensitivity (s0) with an
// optional category set (c0.c1023, c1,c2), optionally "-" and a second
// one.
var seLevel = regexp.MustCompile(`^s[0-9]+(:c[0-9]+([.,]c[0-9]+)*)?(-s[0-9]+(:c[0-9]+([.,]c[0-9]+)*)?)?$`)

// validate adds a problem for every key that is not a valid SELinux
// name (values holding template syntax are checked once rendered).
func (k seKeys) validate(p *problems) {
	for _, f := range []struct{ key, v, what, eg string }{
		{"seuser", k.SEUser, "an SELinux user", "system_u"},
		{"serole", k.SERole, "an SELinux role", "object_r"},
		{"setype", k.SEType, "an SELinux type", "etc_t"},
	} {
		switch {
		case f.v == "" || templated(f.v):
		case f.v == "_default":
			p.add(f.key, "%s = \"_default\" (Ansible's policy default) is not supported: name the %s (e.g. %q), or leave %s unset (a new file gets the policy default context)", f.key, strings.TrimPrefix(f.what, "an "), f.eg, f.key)
		case !seIdent.MatchString(f.v):
			p.add(f.key, "%s = %q is not %s name: letters, digits and _ only (e.g. %q)", f.key, f.v, f.what, f.eg)
		}
	}
	switch v := k.SELevel; {
	case v == "" || templated(v):
	case v == "_default":
		p.add("selevel", "selevel = \"_default\" (Ansible's policy default) is not supported: name the level (e.g. \"s0\"), or leave selevel unset")
	case !seLevel.MatchString(v):
		p.add("selevel", "selevel = %q is not an SELinux level: a sensitivity with optional categories, or a range of two (e.g. \"s0\", \"s0:c1,c2\", \"s0-s0:c0.c1023\")", v)
	}
}

// seProbeVars are the variables seProbeScript sets.
func seProbeVars() []string { return []string{"se"} }

// seProbeScript is the probe fragment that prints `selinux=1|0` (from
// the persistent shell's __opsmop_se: no process; a shell without it
// runs selinuxenabled where it exists) and, when SELinux is on and $p
// exists ($t from statScript), `secontext=CONTEXT` (ls -Zd, which GNU
// coreutils and busybox built with SELinux both have: one process).
func seProbeScript() string {
	return `se=${__opsmop_se-}
if [ -z "$se" ]; then if command -v selinuxenabled >/dev/null 2>&1 && selinuxenabled >/dev/null 2>&1; then se=1; else se=0; fi; fi
printf 'selinux=%s\n' "$se"
if [ "$se" = 1 ] && [ "$t" != absent ]; then se=$(ls -Zd -- "$p" 2>/dev/null) || se=; printf 'secontext=%s\n' "${se%% *}"; fi
`
}

// seContext is an SELinux context split into its parts; Level is empty
// on a policy without MLS.
type seContext struct {
	User, Role, Type, Level string
}

// parseSEContext splits "user:role:type[:level]" (the level may itself
// hold colons).
func parseSEContext(s string) (seContext, error) {
	parts := strings.SplitN(s, ":", 4)
	if len(parts) < 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return seContext{}, fmt.Errorf("cannot read the SELinux context of the path: ls -Zd printed %q, not user:role:type[:level]", s)
	}
	c := seContext{User: parts[0], Role: parts[1], Type: parts[2]}
	if len(parts) == 4 {
		c.Level = parts[3]
	}
	return c, nil
}

// seChange is the part of a plan that sets context parts with chcon:
// the wanted value of each part to set, "" for the others.
type seChange struct {
	User, Role, Type, Level string
}

// empty reports whether nothing is to be set.
func (c seChange) empty() bool { return c == seChange{} }

// script is the chcon command that sets the parts of the context of the
// path quoted as qp (a shell word), or "" when there are none. Every
// value is quoted.
func (c seChange) script(qp string) string {
	if c.empty() {
		return ""
	}
	return c.command() + " " + qp
}

// command is chcon with its options, up to and including "--", for the
// paths to follow; every value is quoted.
func (c seChange) command() string {
	var b strings.Builder
	b.WriteString("chcon")
	for _, a := range [][2]string{{"-u", c.User}, {"-r", c.Role}, {"-t", c.Type}, {"-l", c.Level}} {
		if a[1] != "" {
			b.WriteString(" " + a[0] + " " + shell.Quote(a[1]))
		}
	}
	b.WriteString(" --")
	return b.String()
}

// SELinuxOffError is a resource with an se* key on a host where SELinux
// is off (or selinuxenabled is missing). Ansible ignores the keys there;
// opsmop fails the resource instead, so a context that matters is never
// silently missing.
type SELinuxOffError struct {
	// Keys are the se* keys given, as key = "value".
	Keys []string
}

// Error says what, why, and what to do.
func (e *SELinuxOffError) Error() string {
	return fmt.Sprintf("%s given, but SELinux is off on this host (selinuxenabled is missing or exits non-zero): nothing was changed; remove the se* keys for hosts without SELinux (e.g. with a when condition), or enable SELinux", strings.Join(e.Keys, ", "))
}

// offError is the SELinuxOffError naming the keys given.
func (k seKeys) offError() *SELinuxOffError {
	var keys []string
	for _, kv := range [][2]string{{"seuser", k.SEUser}, {"serole", k.SERole}, {"setype", k.SEType}, {"selevel", k.SELevel}} {
		if kv[1] != "" {
			keys = append(keys, fmt.Sprintf("%s = %q", kv[0], kv[1]))
		}
	}
	return &SELinuxOffError{Keys: keys}
}

// diff compares the wanted parts with cur, the path's context (exists:
// whether the path exists; a new one gets every given part), and
// returns one Field per part that differs and the seChange that sets
// them.
func (k seKeys) diff(cur seContext, exists bool) ([]Field, seChange) {
	var fields []Field
	var ch seChange
	for _, f := range []struct {
		key        string
		want, have string
		set        *string
	}{
		{"seuser", k.SEUser, cur.User, &ch.User},
		{"serole", k.SERole, cur.Role, &ch.Role},
		{"setype", k.SEType, cur.Type, &ch.Type},
		{"selevel", k.SELevel, cur.Level, &ch.Level},
	} {
		if f.want != "" && (!exists || f.want != f.have) {
			*f.set = f.want
			fields = append(fields, Field{Name: f.key, Before: f.have, After: f.want})
		}
	}
	return fields, ch
}

// check compares the wanted parts with the probed context. exists is
// whether the path exists (a new one gets every given part). It fails
// when a key is set and SELinux is off on the host.
func (k seKeys) check(p *probeOutput, exists bool) ([]Field, seChange, error) {
	if !k.set() {
		return nil, seChange{}, nil
	}
	if p.get("selinux") != "1" {
		return nil, seChange{}, k.offError()
	}
	var cur seContext
	if exists {
		var err error
		if cur, err = parseSEContext(p.get("secontext")); err != nil {
			return nil, seChange{}, err
		}
	}
	fields, ch := k.diff(cur, exists)
	return fields, ch, nil
}
