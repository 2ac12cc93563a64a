package providers

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// CronSpec is the `cron` resource: one entry in a user's crontab, read
// with `crontab -l` and written with `crontab -`. The entry is a block of
// lines: a marker comment `#opsmop: NAME` (as Ansible's `#Ansible:
// NAME`), the env lines, then the job line. Every other line of the
// crontab is left as it is, in its place.
type CronSpec struct {
	Name      string   `opsmop:"name" required:"true" doc:"names the entry: the marker comment line #opsmop: NAME above it (one line, no control characters, no leading or trailing space)"`
	User      string   `opsmop:"user" doc:"whose crontab (crontab -u USER, which needs root: the role's sudo = true); unset: the crontab of the user opsmop runs as on the host (the become user under sudo)"`
	Minute    string   `opsmop:"minute" doc:"minute field, 0-59; cron syntax: *, numbers, lists (1,15), ranges (1-5), steps (*/10, 0-30/5); unset: *"`
	Hour      string   `opsmop:"hour" doc:"hour field, 0-23 (cron syntax as for minute); unset: *"`
	Day       string   `opsmop:"day" doc:"day-of-month field, 1-31 (cron syntax as for minute); unset: *"`
	Month     string   `opsmop:"month" doc:"month field, 1-12 or jan-dec (cron syntax as for minute); unset: *"`
	Weekday   string   `opsmop:"weekday" doc:"day-of-week field, 0-7 (0 and 7 are Sunday) or sun-sat (cron syntax as for minute); unset: *"`
	Special   string   `opsmop:"special" doc:"instead of the five fields: @reboot, @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly (the @ may be left out, as in Ansible's special_time)"`
	Job       string   `opsmop:"job" doc:"the command, one line, written as it is (cron turns an unescaped % into a newline: write \\% for a percent sign); required when state is present"`
	Env       []string `opsmop:"env" list1:"true" doc:"NAME=value lines written between the marker and the job line, in this order (cron applies them to every later line of the crontab, see Behaviour)"`
	State     string   `opsmop:"state" enum:"present|absent" default:"present" doc:"present: the entry is in the crontab as described; absent: no entry of this name is"`
	Sensitive bool     `opsmop:"sensitive" doc:"never show the crontab's lines: no diff, and the job and env fields show only that they change"`
}

// cronFieldDef is one of the five time fields of a crontab line: its
// key, lowest and highest value, and the names cron accepts for values
// (names[j] is namesFrom+j).
type cronFieldDef struct {
	key       string
	low, high int
	names     []string
	namesFrom int
}

// cronFieldDefs are the five time fields, in the order of a crontab line.
func cronFieldDefs() [5]cronFieldDef {
	return [5]cronFieldDef{
		{key: "minute", low: 0, high: 59},
		{key: "hour", low: 0, high: 23},
		{key: "day", low: 1, high: 31},
		{key: "month", low: 1, high: 12, names: []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}, namesFrom: 1},
		{key: "weekday", low: 0, high: 7, names: []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}, namesFrom: 0},
	}
}

// cronSpecials are the @ schedules crontab accepts instead of five
// fields.
func cronSpecials() []string {
	return []string{"@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
}

// fields returns the five time fields as given ("" when unset).
func (s *CronSpec) fields() [5]string {
	return [5]string{s.Minute, s.Hour, s.Day, s.Month, s.Weekday}
}

// Validate checks the rules of a cron entry that need no host (see
// Validator): name is one line without control characters or outer
// spaces; user is a valid name; each time field is a valid cron field
// in its range; special is a known schedule and excludes the five fields;
// job is one line and is given when state is present; each env line is
// NAME=value.
func (s *CronSpec) Validate() error {
	var p problems
	if !templated(s.Name) {
		p.addErr("name", checkCronName(s.Name))
	}
	if s.User != "" {
		p.name("user", "user", s.User)
	}
	p.enum("state", s.State, "present", "absent")
	f := s.fields()
	for i, d := range cronFieldDefs() {
		if f[i] != "" && !templated(f[i]) {
			if err := checkCronField(i, f[i]); err != nil {
				p.add(d.key, "%s %q: %v", d.key, f[i], err)
			}
		}
	}
	if s.Special != "" {
		if !templated(s.Special) {
			if _, err := normalSpecial(s.Special); err != nil {
				p.add("special", "%v", err)
			}
		}
		for i, d := range cronFieldDefs() {
			if f[i] != "" {
				p.add(d.key, "special and %s exclude each other: give special (%s) or the time fields, not both", d.key, s.Special)
			}
		}
	}
	if !templated(s.Job) {
		switch {
		case strings.ContainsAny(s.Job, "\n\r\x00"):
			p.add("job", "job contains a newline, carriage return or NUL byte: a crontab job is one line (put several commands in a script)")
		case s.State != "absent" && !templated(s.State) && strings.TrimSpace(s.Job) == "":
			p.add("job", "job is required when state is present: give the command to run")
		}
	}
	for _, e := range s.Env {
		if !templated(e) {
			if err := checkCronEnv(e); err != nil {
				p.add("env", "env %q: %v", e, err)
			}
		}
	}
	return p.err()
}

// checkCronName checks an entry's name, which becomes the marker line.
func checkCronName(n string) error {
	switch {
	case strings.TrimSpace(n) == "":
		return fmt.Errorf("name is empty: give the entry a name (it is written as the comment #opsmop: NAME)")
	case strings.TrimSpace(n) != n:
		return fmt.Errorf("name %q has leading or trailing white space: remove it", n)
	}
	if i := strings.IndexFunc(n, func(r rune) bool { return r < 0x20 || r == 0x7f }); i >= 0 {
		return fmt.Errorf("name %q contains a control character at byte %d (newline, tab, NUL...): a name is one line of text", n, i)
	}
	return nil
}

// checkCronEnv checks one env line: NAME=value, NAME a shell-style
// variable name, the value one line.
func checkCronEnv(e string) error {
	name, _, ok := strings.Cut(e, "=")
	switch {
	case !ok:
		return fmt.Errorf("want NAME=value")
	case !isEnvName(name):
		return fmt.Errorf("%q is not a variable name (letters, digits and _, not starting with a digit): want NAME=value", name)
	case strings.ContainsAny(e, "\n\r\x00"):
		return fmt.Errorf("contains a newline, carriage return or NUL byte: an env line is one line")
	}
	return nil
}

// isEnvName reports whether n is a variable name: [A-Za-z_][A-Za-z0-9_]*.
func isEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i, c := range n {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// normalSpecial returns special as crontab writes it (lower case, with
// its @), or an error listing the schedules.
func normalSpecial(v string) (string, error) {
	n := strings.ToLower(v)
	if !strings.HasPrefix(n, "@") {
		n = "@" + n
	}
	for _, s := range cronSpecials() {
		if s == n {
			return n, nil
		}
	}
	return "", fmt.Errorf("special %q: want one of %s", v, strings.Join(cronSpecials(), ", "))
}

// checkCronField checks the value of time field i (cronFieldDefs) as
// crontab(5) reads it: * or a comma-separated list of elements, each a
// value or a range (a-b, or *), optionally with a step (/n) after a range
// or *. Values are numbers in the field's range or, for month and
// weekday, three-letter names in any case.
func checkCronField(i int, v string) error {
	d := cronFieldDefs()[i]
	if v == "" {
		return fmt.Errorf("empty field: leave the key out for *")
	}
	for _, el := range strings.Split(v, ",") {
		if el == "" {
			return fmt.Errorf("empty list element: lists are written 1,15,30 without spaces")
		}
		rng, step, hasStep := strings.Cut(el, "/")
		if hasStep {
			n, err := strconv.Atoi(step)
			if err != nil || n < 1 || n > d.high-d.low+1 || !isNumeric(step) {
				return fmt.Errorf("step %q: want a number from 1 to %d", step, d.high-d.low+1)
			}
		}
		if rng == "*" {
			continue
		}
		lo, hi, isRange := strings.Cut(rng, "-")
		a, err := cronValue(i, lo)
		if err != nil {
			return err
		}
		if !isRange {
			if hasStep {
				return fmt.Errorf("%q: a step needs a range or *: write %s-%d/%s", el, lo, d.high, step)
			}
			continue
		}
		b, err := cronValue(i, hi)
		if err != nil {
			return err
		}
		if a > b {
			return fmt.Errorf("range %q runs backwards: write the lower value first", rng)
		}
	}
	return nil
}

// cronValue parses one value of time field i: a number in range or a
// name.
func cronValue(i int, v string) (int, error) {
	d := cronFieldDefs()[i]
	if isNumeric(v) {
		n, err := strconv.Atoi(v)
		if err != nil || n < d.low || n > d.high {
			return 0, fmt.Errorf("%s is out of range %d-%d", v, d.low, d.high)
		}
		return n, nil
	}
	for j, name := range d.names {
		if strings.EqualFold(v, name) {
			return d.namesFrom + j, nil
		}
	}
	if d.names != nil {
		return 0, fmt.Errorf("%q is not a number from %d to %d or a name (%s)", v, d.low, d.high, strings.Join(d.names, ", "))
	}
	return 0, fmt.Errorf("%q is not a number from %d to %d", v, d.low, d.high)
}

// cronProvider implements `cron`.
type cronProvider struct{}

// cronMarker is the comment line that starts an entry's block; the one
// Ansible writes is read too (see adopt in cronEdit).
const (
	cronMarker        = "#opsmop: "
	cronAnsibleMarker = "#Ansible: "
)

// cronPlan is what Apply does: replace the crontab Before (as the check
// read it; Exists false: there was none) with After.
type cronPlan struct {
	User   string
	Before []byte
	Exists bool
	After  []byte
}

// labels names the instance by its name (and user) in every error.
func (cronProvider) labels(s *CronSpec) errLabels {
	l := "cron " + s.Name
	if s.User != "" {
		l += " (crontab of " + s.User + ")"
	}
	return errLabels{Probe: l, Check: l, Apply: l}
}

// crontabArgs is the shell code that sets the positional parameters to
// the crontab options selecting user's crontab: none for the user the
// shell runs as (crontab -u needs root even for one's own name), -u USER
// for another.
func crontabArgs(user string) string {
	if user == "" {
		return "set --\n"
	}
	q := shell.Quote(user)
	return "if [ \"$(id -un 2>/dev/null)\" = " + q + " ]; then set --; else set -- -u " + q + "; fi\n"
}

// crontabReadScript prints `crontab=missing` when the host has no
// crontab command; else `rc=N` (crontab -l's exit status), `err=` (its
// stderr on one line, when N is not 0), then a line `data=` followed by
// crontab -l's output, byte for byte, to the end.
func crontabReadScript(user string) string {
	return `if ! command -v crontab >/dev/null 2>&1; then echo crontab=missing; else
` + crontabArgs(user) + `o=$(crontab "$@" -l 2>/dev/null; r=$?; echo .; exit $r)
r=$?
o=${o%.}
printf 'rc=%s\n' "$r"
if [ "$r" -ne 0 ]; then printf 'err=%s\n' "$(crontab "$@" -l 2>&1 >/dev/null | tr '\n' ' ')"; fi
printf 'data=\n%s' "$o"
fi
`
}

// Probe reads the user's crontab (crontabReadScript).
func (cronProvider) Probe(s *CronSpec, req *Request) (string, error) {
	return crontabReadScript(s.User), nil
}

// crontabRead is a parsed crontabReadScript output.
type crontabRead struct {
	Missing bool   // no crontab command
	Exists  bool   // the user has a crontab
	Data    []byte // its contents
}

// parseCrontabRead parses crontabReadScript's output; who names the
// crontab in errors ("the crontab of app").
func parseCrontabRead(res connection.Result, who string) (crontabRead, error) {
	if res.ExitCode != 0 {
		return crontabRead{}, fmt.Errorf("reading %s failed with exit status %d: %s", who, res.ExitCode, firstLines(res.Stderr, 5))
	}
	kv := map[string]string{}
	out := res.Stdout
	var data []byte
	hasData := false
	for len(out) > 0 {
		line, rest, _ := bytes.Cut(out, []byte("\n"))
		out = rest
		if string(line) == "data=" {
			data, hasData = out, true
			break
		}
		if k, v, ok := strings.Cut(string(line), "="); ok {
			kv[k] = v
		}
	}
	if kv["crontab"] == "missing" {
		return crontabRead{Missing: true}, nil
	}
	rc, err := strconv.Atoi(kv["rc"])
	if err != nil || !hasData {
		return crontabRead{}, fmt.Errorf("malformed probe output reading %s: %q", who, firstLines(res.Stdout, 3))
	}
	if rc == 0 {
		return crontabRead{Exists: true, Data: data}, nil
	}
	msg := strings.TrimSpace(kv["err"])
	switch {
	case strings.Contains(msg, "no crontab for"),
		strings.Contains(msg, "can't open") && strings.Contains(msg, "No such file or directory"):
		// Vixie cron, cronie and Debian's cron ("no crontab for USER"),
		// busybox ("can't open 'USER': No such file or directory"): the
		// user has none yet.
		return crontabRead{}, nil
	case strings.Contains(msg, "must be privileged"), strings.Contains(msg, "ermission denied"), strings.Contains(msg, "not allowed"):
		return crontabRead{}, fmt.Errorf("crontab -l for %s failed (exit status %d): %s: managing another user's crontab needs root (the role's sudo = true), and cron.allow/cron.deny must allow the user", who, rc, msg)
	}
	return crontabRead{}, fmt.Errorf("crontab -l for %s failed (exit status %d): %s", who, rc, msg)
}

// crontabOf names the crontab of user ("" is the user opsmop runs as).
func crontabOf(user string) string {
	if user == "" {
		return "the crontab of the login (or become) user"
	}
	return "the crontab of " + user
}

// Check reads the crontab from the probe, edits it locally and compares.
func (cronProvider) Check(s *CronSpec, req *Request, probe connection.Result) (*Change, error) {
	rd, err := parseCrontabRead(probe, crontabOf(s.User))
	if err != nil {
		return nil, err
	}
	if rd.Missing {
		if s.State == "absent" {
			return &Change{Action: None, Message: "no crontab command on the host: there is no entry to remove"}, nil
		}
		return nil, fmt.Errorf("the host has no crontab command: install cron (Debian/Ubuntu: cron; Fedora/RHEL: cronie; Alpine: cronie or dcron), e.g. with a package resource before this one")
	}
	want, err := s.entry()
	if err != nil {
		return nil, err
	}
	after, fields := cronEdit(rd.Data, s.Name, want)
	if fields == nil {
		return &Change{Action: None}, nil
	}
	ch := &Change{Action: Update, Fields: fields, Sensitive: s.Sensitive,
		Plan: cronPlan{User: s.User, Before: rd.Data, Exists: rd.Exists, After: after}}
	switch {
	case want == nil:
		ch.Action = Delete
	case fields[0].Name == "state":
		ch.Action = Create
	}
	label := "crontab"
	if s.User != "" {
		label += " of " + s.User
	}
	if s.Sensitive {
		for i := range ch.Fields {
			if f := &ch.Fields[i]; f.Name == "job" || f.Name == "env" {
				f.Before, f.After = hidden(f.Before), hidden(f.After)
			}
		}
	} else {
		ch.Diff = unifiedDiff(label, rd.Data, after, !rd.Exists)
	}
	return ch, nil
}

// hidden is a sensitive field's value as shown.
func hidden(v string) string {
	if v == "" {
		return ""
	}
	return "<hidden>"
}

// entry returns the lines of the wanted block (marker, env lines, job
// line), or nil for state absent.
func (s *CronSpec) entry() ([]string, error) {
	if s.State == "absent" {
		return nil, nil
	}
	sched := ""
	if s.Special != "" {
		sp, err := normalSpecial(s.Special)
		if err != nil {
			return nil, err
		}
		sched = sp
	} else {
		f := s.fields()
		for i := range f {
			if f[i] == "" {
				f[i] = "*"
			}
		}
		sched = strings.Join(f[:], " ")
	}
	lines := []string{cronMarker + s.Name}
	lines = append(lines, s.Env...)
	return append(lines, sched+" "+s.Job), nil
}

// cronBlock is one entry's lines in a crontab: lines[Start:End], the
// marker first.
type cronBlock struct {
	Start, End int
	// Ansible is set for a block under Ansible's marker.
	Ansible bool
}

// splitCrontab splits crontab text into lines (without their newlines;
// a last line without one counts as a line).
func splitCrontab(text []byte) []string {
	if len(text) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
}

// isCronEnvLine reports whether a crontab line is an environment
// setting (NAME=value, spaces allowed around the =), as cron reads it.
func isCronEnvLine(l string) bool {
	l = strings.TrimLeft(l, " \t")
	name, _, ok := strings.Cut(l, "=")
	return ok && isEnvName(strings.TrimRight(name, " \t"))
}

// isCronJobLine reports whether a crontab line is a job: not blank, not
// a comment, not an env line.
func isCronJobLine(l string) bool {
	t := strings.TrimLeft(l, " \t")
	return t != "" && t[0] != '#' && !isCronEnvLine(l)
}

// cronBlocks finds the blocks of entry name in lines: each starts at a
// marker line (#opsmop: NAME, or Ansible's #Ansible: NAME; trailing
// white space ignored), takes the env lines right after it, then one job
// line if the next line is one. A marker not followed by a job line (the
// job was deleted by hand) is a block too.
func cronBlocks(lines []string, name string) []cronBlock {
	var out []cronBlock
	for i := 0; i < len(lines); i++ {
		l := strings.TrimRight(lines[i], " \t\r")
		var b cronBlock
		switch l {
		case cronMarker + name:
		case cronAnsibleMarker + name:
			b.Ansible = true
		default:
			continue
		}
		b.Start = i
		j := i + 1
		for j < len(lines) && isCronEnvLine(lines[j]) {
			j++
		}
		if j < len(lines) && isCronJobLine(lines[j]) {
			j++
		}
		b.End = j
		out = append(out, b)
		i = j - 1
	}
	return out
}

// cronEdit returns the crontab text with the entry name set to want (its
// block's lines; nil removes the entry) and the Fields describing the
// change, nil when nothing changes. Every other line is kept, in order.
// Every block of the entry, under our marker or under Ansible's, is the
// same entry: the first block under our marker (else the first under
// Ansible's, which is adopted: rewritten under ours) is replaced in
// place and the others are removed, so that a crontab once managed by
// Ansible does not end up running the job twice. Without any block,
// want is added at the end.
func cronEdit(text []byte, name string, want []string) ([]byte, []Field) {
	lines := splitCrontab(text)
	blocks := cronBlocks(lines, name)
	if want == nil {
		if len(blocks) == 0 {
			return text, nil
		}
		f := []Field{{Name: "state", Before: "present", After: "absent"}}
		if len(blocks) > 1 {
			f = append(f, Field{Name: "entries", Before: strconv.Itoa(len(blocks)), After: "0"})
		}
		return joinCrontab(cronReplace(lines, blocks, -1, nil)), f
	}
	if len(blocks) == 0 {
		out := append(append([]string(nil), lines...), want...)
		f := []Field{{Name: "state", Before: "absent", After: "present"}}
		if env := want[1 : len(want)-1]; len(env) > 0 {
			f = append(f, Field{Name: "env", After: strings.Join(env, " ")})
		}
		return joinCrontab(out), append(f,
			Field{Name: "schedule", After: cronSchedule(want[len(want)-1])},
			Field{Name: "job", After: cronJob(want[len(want)-1])})
	}
	keep := slices.IndexFunc(blocks, func(b cronBlock) bool { return !b.Ansible })
	if keep < 0 {
		keep = 0
	}
	kb := blocks[keep]
	fields := cronDiffFields(lines[kb.Start:kb.End], want, kb.Ansible)
	if len(blocks) > 1 {
		fields = append(fields, Field{Name: "entries", Before: strconv.Itoa(len(blocks)), After: "1"})
	}
	if len(fields) == 0 {
		return text, nil
	}
	return joinCrontab(cronReplace(lines, blocks, keep, want)), fields
}

// cronReplace returns lines with every block removed, except that block
// number keep (none when keep < 0) is replaced by want.
func cronReplace(lines []string, blocks []cronBlock, keep int, want []string) []string {
	var out []string
	at := 0
	for i, b := range blocks {
		out = append(out, lines[at:b.Start]...)
		if i == keep {
			out = append(out, want...)
		}
		at = b.End
	}
	return append(out, lines[at:]...)
}

// cronDiffFields compares an entry's block as found with the wanted one:
// marker, env lines, schedule and job.
func cronDiffFields(have, want []string, ansible bool) []Field {
	var f []Field
	if ansible || strings.TrimRight(have[0], " \t\r") != want[0] {
		f = append(f, Field{Name: "marker", Before: strings.TrimRight(have[0], " \t\r"), After: want[0]})
	}
	haveJob := ""
	haveEnv := have[1:]
	if n := len(have); n > 1 && isCronJobLine(have[n-1]) {
		haveJob, haveEnv = have[n-1], have[1:n-1]
	}
	wantJob, wantEnv := want[len(want)-1], want[1:len(want)-1]
	if strings.Join(haveEnv, "\n") != strings.Join(wantEnv, "\n") {
		f = append(f, Field{Name: "env", Before: strings.Join(haveEnv, " "), After: strings.Join(wantEnv, " ")})
	}
	if haveJob != wantJob {
		if s1, s2 := cronSchedule(haveJob), cronSchedule(wantJob); s1 != s2 {
			f = append(f, Field{Name: "schedule", Before: s1, After: s2})
		}
		if j1, j2 := cronJob(haveJob), cronJob(wantJob); j1 != j2 || len(f) == 0 {
			f = append(f, Field{Name: "job", Before: j1, After: j2})
		}
	}
	return f
}

// cronSplit splits a job line into its schedule (five fields, or an @
// schedule) and its command.
func cronSplit(l string) (sched, job string) {
	rest := strings.TrimLeft(l, " \t")
	n := 5
	if strings.HasPrefix(rest, "@") {
		n = 1
	}
	var f []string
	for i := 0; i < n && rest != ""; i++ {
		end := strings.IndexAny(rest, " \t")
		if end < 0 {
			end = len(rest)
		}
		f = append(f, rest[:end])
		rest = strings.TrimLeft(rest[end:], " \t")
	}
	return strings.Join(f, " "), rest
}

// cronSchedule is the schedule of a job line.
func cronSchedule(l string) string { s, _ := cronSplit(l); return s }

// cronJob is the command of a job line.
func cronJob(l string) string { _, j := cronSplit(l); return j }

// joinCrontab joins lines into crontab text; a crontab that is not empty
// ends with a newline (cron ignores a last line without one).
func joinCrontab(lines []string) []byte {
	if len(lines) == 0 {
		return []byte{}
	}
	return []byte(strings.Join(lines, "\n") + "\n")
}

// Apply reads the crontab again and, when it is still what the check
// read, installs the new one with crontab - (the text on stdin). A
// crontab changed in between is an error: writing the plan would undo
// that change.
func (cronProvider) Apply(ctx context.Context, h Host, s *CronSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[cronPlan](ch, "cron")
	if err != nil {
		return nil, err
	}
	who := crontabOf(pl.User)
	res, err := h.Run(ctx, crontabReadScript(pl.User), nil)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", who, err)
	}
	rd, err := parseCrontabRead(res, who)
	if err != nil {
		return nil, err
	}
	if rd.Missing {
		return nil, fmt.Errorf("the host has no crontab command any more: install cron")
	}
	if !bytes.Equal(rd.Data, pl.Before) || rd.Exists != pl.Exists {
		return nil, fmt.Errorf("%s changed since the check read it: nothing written; run again to see the change against the new contents", who)
	}
	script := crontabArgs(pl.User) + "crontab \"$@\" -\n"
	if _, err := run(ctx, h, "crontab - (installing "+who+")", script, bytes.NewReader(pl.After)); err != nil {
		return nil, err
	}
	return &Outcome{}, nil
}
