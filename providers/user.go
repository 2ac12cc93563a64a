package providers

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/secret"
	"github.com/opsmop/opsmop/internal/shell"
)

// UserSpec is the `user` resource: a local user account (useradd,
// usermod, userdel; the password through chpasswd -e on stdin).
type UserSpec struct {
	Name       string   `opsmop:"name" required:"true" doc:"the user name"`
	State      string   `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the user exists as described; absent: it does not (its home directory is kept)"`
	UID        *int     `opsmop:"uid" doc:"numeric user id; unset: chosen by useradd, unchanged for an existing user"`
	Group      string   `opsmop:"group" doc:"primary group (name or gid; it must exist); unset: useradd's default, unchanged for an existing user"`
	Groups     []string `opsmop:"groups" doc:"supplementary groups (they must exist); exactly these unless append is set; unset: not managed, while an empty list removes them all"`
	Append     bool     `opsmop:"append" doc:"with groups: add the user to them, leaving other memberships alone"`
	Home       string   `opsmop:"home" doc:"home directory; changing it does not move files"`
	Shell      string   `opsmop:"shell" doc:"login shell"`
	System     bool     `opsmop:"system" doc:"create a system account (useradd -r); only used when creating"`
	Comment    string   `opsmop:"comment" doc:"the GECOS comment (full name)"`
	Password   string   `opsmop:"password" doc:"the password as a crypt(3) hash (e.g. from mkpasswd -m sha-512), never a plain password; sent over stdin to chpasswd -e and never shown (needs root to read /etc/shadow; otherwise it is not managed and check says so)"`
	CreateHome *bool    `opsmop:"create_home" default:"true" doc:"create the home directory when creating the user"`
}

// Validate checks the rules of a user that need no host (see Validator):
// name, group and groups are valid names; state is present or absent;
// uid is not negative; home, shell and comment fit in /etc/passwd;
// password holds no colon, newline or NUL byte (and is never shown).
func (s *UserSpec) Validate() error {
	var p problems
	p.name("name", "user", s.Name)
	p.enum("state", s.State, "present", "absent")
	if s.UID != nil && *s.UID < 0 {
		p.add("uid", "uid %d is negative", *s.UID)
	}
	if s.Group != "" {
		p.name("group", "group", s.Group)
	}
	for _, g := range s.Groups {
		if !templated(g) {
			if err := validName("group", g); err != nil {
				p.add("groups", "groups: %v", err)
			}
		}
	}
	for _, f := range []struct{ key, v string }{{"home", s.Home}, {"shell", s.Shell}, {"comment", s.Comment}} {
		if templated(f.v) {
			continue
		}
		if i := strings.IndexFunc(f.v, func(r rune) bool { return r == ':' || r < 0x20 || r == 0x7f }); i >= 0 {
			p.add(f.key, "%s contains %q at byte %d: /etc/passwd fields cannot hold a colon or control characters (tab, newline, NUL...)", f.key, f.v[i:i+1], i)
		}
	}
	if !templated(s.Password) && strings.ContainsAny(s.Password, ":\n\x00") {
		// Never echo the value.
		p.add("password", "password contains a colon, newline or NUL byte: give a crypt(3) hash")
	}
	return p.err()
}

// userProvider implements `user`.
type userProvider struct{}

// userPlan is what Apply does for a user.
type userPlan struct {
	Name   string
	Delete bool
	Add    []string // useradd options
	Mod    []string // usermod options
	// Password is the crypt hash, kept as a Secret so that no printing
	// of a Change shows it.
	Password secret.Secret
}

// labels names the instance by its name; the errors of Apply name it
// themselves.
func (userProvider) labels(s *UserSpec) errLabels {
	l := "user " + s.Name
	return errLabels{Probe: l, Check: l}
}

// Probe prints `passwd=` (the getent passwd line, empty when the user
// does not exist), `pgroup=` and `groups=` (id -gn / id -Gn), and, when a
// password is managed, `shadow=` (the hash field) or `shadow_unreadable=1`.
func (userProvider) Probe(s *UserSpec, req *Request) (string, error) {
	script := "n=" + shell.Quote(s.Name) + `
if e=$(getent passwd "$n"); then
printf 'passwd=%s\n' "$e"
printf 'pgroup=%s\n' "$(id -gn "$n" 2>/dev/null)"
printf 'groups=%s\n' "$(id -Gn "$n" 2>/dev/null)"
`
	if s.Password != "" {
		script += `if [ -r /etc/shadow ]; then printf 'shadow=%s\n' "$(getent shadow "$n" | cut -d: -f2)"; else echo shadow_unreadable=1; fi
`
	}
	return script + "else echo passwd=; fi\n", nil
}

// Check compares the account with the wanted one.
func (userProvider) Check(s *UserSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	pw := p.get("passwd")
	exists := pw != ""
	var f []string
	if exists {
		f = strings.Split(pw, ":")
		if len(f) < 7 {
			return nil, fmt.Errorf("malformed probe output: passwd entry has %d fields", len(f))
		}
	}
	pl := userPlan{Name: s.Name}
	if s.State == "absent" {
		if !exists {
			return &Change{Action: None}, nil
		}
		pl.Delete = true
		return &Change{Action: Delete, Fields: []Field{{Name: "state", Before: "present", After: "absent"}}, Plan: pl}, nil
	}
	ch := &Change{Sensitive: s.Password != ""}
	var fields []Field
	if !exists {
		ch.Action = Create
		fields = append(fields, Field{Name: "state", Before: "absent", After: "present"})
		if s.UID != nil {
			pl.Add = append(pl.Add, "-u", strconv.Itoa(*s.UID))
			fields = append(fields, Field{Name: "uid", After: strconv.Itoa(*s.UID)})
		}
		if s.Group != "" {
			pl.Add = append(pl.Add, "-g", s.Group)
			fields = append(fields, Field{Name: "group", After: s.Group})
		}
		if len(s.Groups) > 0 {
			pl.Add = append(pl.Add, "-G", strings.Join(s.Groups, ","))
			fields = append(fields, Field{Name: "groups", After: strings.Join(s.Groups, ",")})
		}
		if s.Home != "" {
			pl.Add = append(pl.Add, "-d", s.Home)
			fields = append(fields, Field{Name: "home", After: s.Home})
		}
		if s.Shell != "" {
			pl.Add = append(pl.Add, "-s", s.Shell)
			fields = append(fields, Field{Name: "shell", After: s.Shell})
		}
		if s.Comment != "" {
			pl.Add = append(pl.Add, "-c", s.Comment)
			fields = append(fields, Field{Name: "comment", After: s.Comment})
		}
		if s.System {
			pl.Add = append(pl.Add, "-r")
		}
		if s.CreateHome == nil || *s.CreateHome {
			pl.Add = append(pl.Add, "-m")
		} else {
			pl.Add = append(pl.Add, "-M")
		}
		if s.Password != "" {
			pl.Password = secret.New(s.Password)
			fields = append(fields, Field{Name: "password", After: "<changed>"})
		}
		ch.Fields, ch.Plan = fields, pl
		return ch, nil
	}

	ch.Action = Update
	uid, gecos, home, sh := f[2], f[4], f[5], f[6]
	if s.UID != nil && strconv.Itoa(*s.UID) != uid {
		pl.Mod = append(pl.Mod, "-u", strconv.Itoa(*s.UID))
		fields = append(fields, Field{Name: "uid", Before: uid, After: strconv.Itoa(*s.UID)})
	}
	pgroup := p.get("pgroup")
	if s.Group != "" && !idMatches(s.Group, f[3], pgroup) {
		pl.Mod = append(pl.Mod, "-g", s.Group)
		fields = append(fields, Field{Name: "group", Before: pgroup, After: s.Group})
	}
	if s.Groups != nil {
		cur := map[string]bool{}
		for _, g := range strings.Fields(p.get("groups")) {
			if g != pgroup {
				cur[g] = true
			}
		}
		want := setOf(s.Groups)
		// The primary group is always a membership: listing it among the
		// supplementary groups is satisfied by it.
		delete(want, pgroup)
		if s.Group != "" {
			delete(want, s.Group)
		}
		var missing []string
		for _, g := range s.Groups {
			if !cur[g] && want[g] {
				missing = append(missing, g)
			}
		}
		extra := false
		for g := range cur {
			if !want[g] {
				extra = true
			}
		}
		before := sortedSet(cur)
		switch {
		case s.Append && len(missing) > 0:
			pl.Mod = append(pl.Mod, "-a", "-G", strings.Join(missing, ","))
			fields = append(fields, Field{Name: "groups", Before: before, After: before + plusList(before, missing)})
		case !s.Append && (len(missing) > 0 || extra):
			pl.Mod = append(pl.Mod, "-G", strings.Join(s.Groups, ","))
			fields = append(fields, Field{Name: "groups", Before: before, After: sortedSet(want)})
		}
	}
	if s.Home != "" && s.Home != home {
		pl.Mod = append(pl.Mod, "-d", s.Home)
		fields = append(fields, Field{Name: "home", Before: home, After: s.Home})
	}
	if s.Shell != "" && s.Shell != sh {
		pl.Mod = append(pl.Mod, "-s", s.Shell)
		fields = append(fields, Field{Name: "shell", Before: sh, After: s.Shell})
	}
	if s.Comment != "" && s.Comment != gecos {
		pl.Mod = append(pl.Mod, "-c", s.Comment)
		fields = append(fields, Field{Name: "comment", Before: gecos, After: s.Comment})
	}
	if s.Password != "" {
		switch {
		case p.get("shadow_unreadable") == "1":
			ch.Message = "cannot read /etc/shadow: password not managed (run with sudo = true)"
		case p.get("shadow") != s.Password:
			pl.Password = secret.New(s.Password)
			fields = append(fields, Field{Name: "password", Before: "<redacted>", After: "<changed>"})
		}
	}
	if len(fields) == 0 {
		return &Change{Action: None, Message: ch.Message}, nil
	}
	ch.Fields, ch.Plan = fields, pl
	return ch, nil
}

// Apply runs useradd, usermod or userdel, then chpasswd -e with the hash
// on stdin.
func (userProvider) Apply(ctx context.Context, h Host, s *UserSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[userPlan](ch, "user")
	if err != nil {
		return nil, err
	}
	if what, script := userScript(pl); script != "" {
		if _, err := run(ctx, h, what, script, nil); err != nil {
			return nil, err
		}
	}
	if !pl.Password.IsZero() {
		// The hash travels on stdin, never in an argv.
		what, script, stdin := userPasswordScript(pl)
		if _, err := run(ctx, h, what, script, bytes.NewReader(stdin)); err != nil {
			return nil, err
		}
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step when Apply runs one command: useradd,
// usermod or userdel alone, or chpasswd alone (the hash on the step's
// stdin). ok is false when Apply runs both (a new password with other
// changes): each has its own error ("user bob: useradd", "user bob:
// chpasswd"), and Apply runs chpasswd only once the first succeeded.
func (userProvider) ApplyStep(s *UserSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[userPlan](ch, "user")
	if err != nil {
		return Step{}, false, err
	}
	what, script := userScript(pl)
	switch {
	case script != "" && !pl.Password.IsZero():
		return Step{}, false, nil
	case script != "":
		return Step{Script: script, What: what}, true, nil
	case !pl.Password.IsZero():
		what, script, stdin := userPasswordScript(pl)
		return Step{Script: script, Stdin: stdin, What: what}, true, nil
	}
	return Step{}, false, nil
}

// userScript is the useradd, usermod or userdel command of pl ("" for
// none), and what it does for its error ("user bob: useradd").
func userScript(pl userPlan) (what, script string) {
	q := shell.Quote(pl.Name)
	switch {
	case pl.Delete:
		script = "userdel " + q
	case pl.Add != nil:
		script = "useradd " + shell.Join(pl.Add...) + " " + q
	case len(pl.Mod) > 0:
		script = "usermod " + shell.Join(pl.Mod...) + " " + q
	default:
		return "", ""
	}
	return "user " + pl.Name + ": " + strings.Fields(script)[0], script
}

// userPasswordScript is the command that sets pl's password hash, what it
// does for its error, and its stdin (the name and the hash).
func userPasswordScript(pl userPlan) (what, script string, stdin []byte) {
	return "user " + pl.Name + ": chpasswd", "chpasswd -e", []byte(pl.Name + ":" + pl.Password.Reveal() + "\n")
}

// GroupSpec is the `group` resource: a local group (groupadd, groupmod,
// groupdel).
type GroupSpec struct {
	Name   string `opsmop:"name" required:"true" doc:"the group name"`
	GID    *int   `opsmop:"gid" doc:"numeric group id; unset: chosen by groupadd, unchanged for an existing group"`
	System bool   `opsmop:"system" doc:"create a system group (groupadd -r); only used when creating"`
	State  string `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the group exists; absent: it does not"`
}

// Validate checks the rules of a group that need no host (see
// Validator): name is a valid name; state is present or absent; gid is
// not negative.
func (s *GroupSpec) Validate() error {
	var p problems
	p.name("name", "group", s.Name)
	p.enum("state", s.State, "present", "absent")
	if s.GID != nil && *s.GID < 0 {
		p.add("gid", "gid %d is negative", *s.GID)
	}
	return p.err()
}

// groupProvider implements `group`.
type groupProvider struct{}

// groupPlan is what Apply does for a group: run Cmd with Args.
type groupPlan struct {
	Name string
	Cmd  string // groupadd | groupmod | groupdel
	Args []string
}

// labels names the instance by its name in the errors of Check; the
// errors of Probe name only the type, and those of Apply name the
// instance themselves.
func (groupProvider) labels(s *GroupSpec) errLabels {
	return errLabels{Probe: "group", Check: "group " + s.Name}
}

// Probe prints `group=` with the getent group line (empty when missing).
func (groupProvider) Probe(s *GroupSpec, req *Request) (string, error) {
	return "if e=$(getent group " + shell.Quote(s.Name) + "); then printf 'group=%s\\n' \"$e\"; else echo group=; fi\n", nil
}

// Check compares the group with the wanted one.
func (groupProvider) Check(s *GroupSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	g := p.get("group")
	exists := g != ""
	if s.State == "absent" {
		if !exists {
			return &Change{Action: None}, nil
		}
		return &Change{Action: Delete, Fields: []Field{{Name: "state", Before: "present", After: "absent"}},
			Plan: groupPlan{Name: s.Name, Cmd: "groupdel"}}, nil
	}
	if !exists {
		pl := groupPlan{Name: s.Name, Cmd: "groupadd"}
		fields := []Field{{Name: "state", Before: "absent", After: "present"}}
		if s.GID != nil {
			pl.Args = append(pl.Args, "-g", strconv.Itoa(*s.GID))
			fields = append(fields, Field{Name: "gid", After: strconv.Itoa(*s.GID)})
		}
		if s.System {
			pl.Args = append(pl.Args, "-r")
		}
		return &Change{Action: Create, Fields: fields, Plan: pl}, nil
	}
	f := strings.Split(g, ":")
	if len(f) < 3 {
		return nil, fmt.Errorf("malformed probe output: group entry %q", g)
	}
	if s.GID != nil && strconv.Itoa(*s.GID) != f[2] {
		return &Change{Action: Update, Fields: []Field{{Name: "gid", Before: f[2], After: strconv.Itoa(*s.GID)}},
			Plan: groupPlan{Name: s.Name, Cmd: "groupmod", Args: []string{"-g", strconv.Itoa(*s.GID)}}}, nil
	}
	return &Change{Action: None}, nil
}

// Apply runs groupadd, groupmod or groupdel.
func (groupProvider) Apply(ctx context.Context, h Host, s *GroupSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[groupPlan](ch, "group")
	if err != nil {
		return nil, err
	}
	what, script := groupScript(pl)
	if _, err := run(ctx, h, what, script, nil); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}

// ApplyStep is Apply as one step: Apply runs one command, groupScript.
func (groupProvider) ApplyStep(s *GroupSpec, req *Request, ch *Change) (Step, bool, error) {
	pl, err := plan[groupPlan](ch, "group")
	if err != nil {
		return Step{}, false, err
	}
	what, script := groupScript(pl)
	return Step{Script: script, What: what}, true, nil
}

// groupScript is the groupadd, groupmod or groupdel command of pl, and
// what it does for its error ("group web: groupadd").
func groupScript(pl groupPlan) (what, script string) {
	script = pl.Cmd + " "
	if len(pl.Args) > 0 {
		script += shell.Join(pl.Args...) + " "
	}
	return "group " + pl.Name + ": " + pl.Cmd, script + shell.Quote(pl.Name)
}

// validName checks a user or group name (or numeric id); kind names it
// in the error ("user", "group", "owner").
func validName(kind, n string) error {
	if n == "" || n[0] == '-' || strings.ContainsAny(n, ": \t\n,\x00/") {
		return fmt.Errorf("%s %q is not a valid name", kind, n)
	}
	return nil
}

// sortedSet lists the names in m, sorted, comma-separated.
func sortedSet(m map[string]bool) string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return strings.Join(k, ",")
}

// plusList is what a groups field shown as before gains: add,
// comma-separated, after a comma when before is not empty.
func plusList(before string, add []string) string {
	if before == "" {
		return strings.Join(add, ",")
	}
	return "," + strings.Join(add, ",")
}
