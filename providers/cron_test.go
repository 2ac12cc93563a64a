package providers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/lab"
	"github.com/opsmop/opsmop/internal/labtest"
	"github.com/opsmop/opsmop/internal/shell"
	"github.com/opsmop/opsmop/policy"
)

// cronDocs is the cron entry of typeDocs: the Behaviour section and the
// examples of docs/resources/cron.md.
func cronDocs() struct{ notes, toml, yaml string } {
	return struct{ notes, toml, yaml string }{
		notes: "- The crontab is read with `crontab -l` (one probe per entry, in the host's one-round-trip probe batch), edited here, and written back whole with `crontab -` (the new text on stdin), so cron's own `crontab` command checks and installs it, and cron notices the change. Apply first reads the crontab again: if it changed since the check (someone edited it in between), nothing is written and the resource fails, saying to run again.\n" +
			"- An entry is a block of lines: the marker comment `#opsmop: NAME`, the `env` lines in their order, then the job line, e.g.\n\n" +
			"  ```\n  #opsmop: backup\n  MAILTO=ops@example.com\n  0 3 * * mon-fri /usr/local/bin/backup\n  ```\n\n" +
			"  On the host, the block of an entry is its marker line, the `NAME=value` lines right after it, and the next line if it is a job (not blank, not a comment). Every other line of the crontab (comments, blank lines, other jobs, other variables, other tools' entries) is never changed and keeps its place. A new entry is added at the end; a changed entry is rewritten in place; `state = \"absent\"` removes the block. Should the crontab hold the entry twice (copied by hand), the first block is rewritten and the others removed (the change shows `entries: 2 -> 1`). A marker whose job line was deleted by hand is reused.\n" +
			"- Coming from Ansible: an entry under Ansible's marker `#Ansible: NAME` is the same entry. When the crontab has no `#opsmop: NAME` block, that block is adopted (rewritten under `#opsmop: NAME`, the change shows the `marker` field); when it has one, the Ansible block is removed (the change shows `entries`), so a job Ansible installed never runs twice once opsmop manages it; with `state = \"absent\"` every block of the entry, under either marker, is removed. Stop managing the entry with Ansible at the same time, or the two will add it back under their own markers.\n" +
			"- `env` lines: cron applies a `NAME=value` line to **every later line of the crontab**, not only to this entry's job (that is how crontab(5) works, and Ansible's `env` entries behave the same). A variable set in one entry is seen by the jobs below it, including other tools' jobs. Give each entry that needs a variable its own value, or put shared variables (`MAILTO`, `PATH`) in an entry near the top. Values are written as they are (no quoting is added).\n" +
			"- `user`: without it, the crontab of the user opsmop runs as on the host (the become user with sudo). With it, `crontab -u USER`, which needs root (the role's `sudo = true`); when `user` is the user opsmop already runs as, no `-u` is passed, so a user can manage their own crontab without sudo. The user must exist (crontab's error says so) and cron.allow/cron.deny must let them have a crontab.\n" +
			"- A user without a crontab (`crontab -l` says \"no crontab for USER\"; busybox: \"can't open 'USER': No such file or directory\") has an empty one: the first entry creates it. Removing the last entry leaves an empty crontab (it is not deleted with `crontab -r`).\n" +
			"- The host needs the `crontab` command (Debian/Ubuntu: package cron; Fedora/RHEL: cronie); without it check fails for `state = \"present\"` saying what to install, and reports nothing to do for `state = \"absent\"`. A cron daemon must run for jobs to run; opsmop does not check that (use a `service` resource).\n" +
			"- The job is written as it is: cron turns an unescaped `%` into a newline (what follows goes to the job's stdin), so write `\\%` for a literal percent sign (`date +\\%F`). Times are in the cron daemon's time zone.\n" +
			"- The five fields default to `*`. `special` (`@reboot`, `@daily`, ...; the `@` may be left out, as in Ansible's `special_time`) replaces them. Names (`jan`-`dec`, `sun`-`sat`, any case) may be used in lists and ranges; they and the numbers are written as given, so a crontab written by hand with other spacing or `7` for `sun` shows as a change once and is rewritten in opsmop's form.\n" +
			"- The check shows the fields that change (`state`, `marker`, `env`, `schedule`, `job`, `entries`) and a diff of the whole crontab; with `sensitive = true` there is no diff and `job` and `env` show only `<hidden>` (for a token in an env line or on the command line).\n" +
			"- Not supported (write it down before migrating): Ansible's `cron_file` (entries in /etc/cron.d files: manage the file with `file` or `line`, the format is the same plus a user column), `disabled` (a commented-out job: use `state = \"absent\"`), `backup`, `insertafter`/`insertbefore`.\n" +
			"- `opsmop validate` (and `check` and `apply`, before any host is contacted) reports, at the key's line: a `name` that is empty, has leading or trailing white space or a control character; a `user` that is not a valid name; a time field that is not cron syntax (`*`, a number in the field's range, a name for month and weekday, lists `1,15`, ranges `1-5`, steps after a range or `*`: `*/10`, `0-30/5`; a step after a single value such as `5/10`, which cron rejects, is refused with the range to write instead), a range written backwards; `special` that is not one of the schedules, or given together with a time field; a `job` with a newline, carriage return or NUL byte, or missing with `state = \"present\"`; an `env` line that is not `NAME=value` with a valid variable name, or holds a newline. A value written as a template (`{{ ... }}`) is checked once rendered for each host.",
		toml: `[[roles.resources]]
type = "cron"
name = "backup"
user = "app"
minute = "0"
hour = "3"
weekday = "mon-fri"
env = ["MAILTO=ops@example.com"]
job = "/usr/local/bin/backup --all > /var/log/backup.log 2>&1"

[[roles.resources]]
type = "cron"
name = "warm cache"
special = "@reboot"
job = "/usr/local/bin/warm-cache"

[[roles.resources]]
type = "cron"
name = "old report"
user = "app"
state = "absent"`,
		yaml: `- type: cron
  name: backup
  user: app
  minute: "0"
  hour: "3"
  weekday: mon-fri
  env: [MAILTO=ops@example.com]
  job: /usr/local/bin/backup --all > /var/log/backup.log 2>&1
- type: cron
  name: warm cache
  special: "@reboot"
  job: /usr/local/bin/warm-cache
- type: cron
  name: old report
  user: app
  state: absent`,
	}
}

func TestCronValidate(t *testing.T) {
	testValidate(t, []validateCase{
		{"valid fields", &CronSpec{Name: "backup", User: "app", Minute: "0,30", Hour: "*/2", Day: "1-15/3", Month: "jan-jun", Weekday: "MON-fri,0", Job: "x", Env: []string{"MAILTO=", "PATH=/bin:/usr/bin", "_X1=a b = c"}}, nil},
		{"valid special without @", &CronSpec{Name: "b", Special: "Daily", Job: "x"}, nil},
		{"absent needs no job", &CronSpec{Name: "b", State: "absent"}, nil},
		{"empty name", &CronSpec{Name: " ", Job: "x"}, []string{"name: name is empty"}},
		{"name with spaces around", &CronSpec{Name: "b ", Job: "x"}, []string{"name: leading or trailing white space"}},
		{"name with newline", &CronSpec{Name: "a\nb", Job: "x"}, []string{`name: name "a\nb" contains a control character at byte 1`}},
		{"option-like user", &CronSpec{Name: "b", User: "-r", Job: "x"}, []string{`user: user "-r" is not a valid name`}},
		{"minute out of range", &CronSpec{Name: "b", Minute: "61", Job: "x"}, []string{`minute: minute "61": 61 is out of range 0-59`}},
		{"hour word", &CronSpec{Name: "b", Hour: "noon", Job: "x"}, []string{`hour: hour "noon": "noon" is not a number from 0 to 23`}},
		{"day zero", &CronSpec{Name: "b", Day: "0", Job: "x"}, []string{`day: day "0": 0 is out of range 1-31`}},
		{"bad month name", &CronSpec{Name: "b", Month: "janu", Job: "x"}, []string{`month: month "janu": "janu" is not a number from 1 to 12 or a name (jan, feb`}},
		{"weekday 8", &CronSpec{Name: "b", Weekday: "1-8", Job: "x"}, []string{`weekday: weekday "1-8": 8 is out of range 0-7`}},
		{"step on a value", &CronSpec{Name: "b", Minute: "5/10", Job: "x"}, []string{`minute: minute "5/10": "5/10": a step needs a range or *: write 5-59/10`}},
		{"zero step", &CronSpec{Name: "b", Minute: "*/0", Job: "x"}, []string{`minute: minute "*/0": step "0": want a number from 1 to 60`}},
		{"signed step", &CronSpec{Name: "b", Minute: "*/+5", Job: "x"}, []string{`minute: step "+5"`}},
		{"backwards range", &CronSpec{Name: "b", Hour: "5-1", Job: "x"}, []string{`hour: hour "5-1": range "5-1" runs backwards`}},
		{"empty list element", &CronSpec{Name: "b", Hour: "1,,2", Job: "x"}, []string{`hour: hour "1,,2": empty list element`}},
		{"space in field", &CronSpec{Name: "b", Hour: "1, 2", Job: "x"}, []string{`hour: hour "1, 2": " 2" is not a number`}},
		{"unknown special", &CronSpec{Name: "b", Special: "@fortnightly", Job: "x"}, []string{`special: special "@fortnightly": want one of @reboot, @yearly`}},
		{"special with fields", &CronSpec{Name: "b", Special: "@daily", Minute: "0", Weekday: "*", Job: "x"}, []string{"minute: special and minute exclude each other", "weekday: special and weekday exclude each other"}},
		{"job with newline", &CronSpec{Name: "b", Job: "a\nrm -rf /"}, []string{"job: job contains a newline"}},
		{"job with CR", &CronSpec{Name: "b", Job: "a\rb"}, []string{"job: job contains a newline, carriage return"}},
		{"missing job", &CronSpec{Name: "b"}, []string{"job: job is required when state is present"}},
		{"bad env", &CronSpec{Name: "b", Job: "x", Env: []string{"NOEQUALS", "1X=y", "A=b\nc"}}, []string{`env: env "NOEQUALS": want NAME=value`, `env: env "1X=y": "1X" is not a variable name`, `env: env "A=b\nc": contains a newline`}},
		{"bad state", &CronSpec{Name: "b", Job: "x", State: "gone"}, []string{"state: want one of present, absent"}},
		{"templated", &CronSpec{Name: "{{ .n }}", User: "{{ .u }}", Minute: "{{ .m }}", Special: "", Job: "{{ .j }}", Env: []string{"{{ .e }}"}}, nil},
	})
}

// TestCronValidateAtKeyLine loads a policy with bad cron keys: each
// problem's key is one the policy has, so `opsmop validate` shows it at
// that key's file:line (engine.Validate maps KeyError.Key with KeyPos).
func TestCronValidateAtKeyLine(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "site.toml")
	src := "[[roles]]\nname = \"r\"\n\n[[roles.resources]]\ntype = \"cron\"\nname = \"backup\"\nminute = \"61\"\nspecial = \"@daily\"\njob = \"a\"\nenv = [\"1=x\"]\n"
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	pol, err := policy.Load(p, Registry())
	if err != nil {
		t.Fatal(err)
	}
	res := pol.Roles[0].Resources[0]
	var se *SpecError
	if err := res.Spec.(Validator).Validate(); !errors.As(err, &se) {
		t.Fatalf("got %v; want a *SpecError", err)
	}
	var got []string
	for _, pr := range se.Problems {
		pos := res.KeyPos(pr.Key)
		got = append(got, fmt.Sprintf("%s:%d: %s: %s", filepath.Base(pos.File), pos.Line, pr.Key, pr.Msg))
	}
	want := []string{
		`site.toml:7: minute: minute "61": 61 is out of range 0-59`,
		`site.toml:7: minute: special and minute exclude each other: give special (@daily) or the time fields, not both`,
		`site.toml:10: env: env "1=x": "1" is not a variable name (letters, digits and _, not starting with a digit): want NAME=value`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCronEdit(t *testing.T) {
	const foreign = "MAILTO=root\n# keep me\n*/5 * * * * /usr/bin/foreign\n"
	backup := []string{"#opsmop: backup", "MAILTO=ops", "0 3 * * * /bin/backup"}
	tests := []struct {
		name   string
		text   string
		want   []string // nil: absent
		after  string
		fields map[string]string // nil: no change
	}{
		{"add to empty", "", backup, "#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n",
			map[string]string{"state": "absent -> present", "env": " -> MAILTO=ops", "schedule": " -> 0 3 * * *", "job": " -> /bin/backup"}},
		{"add at the end, others kept", foreign, backup, foreign + "#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n",
			map[string]string{"state": "absent -> present"}},
		{"last line without newline gets one", "0 1 * * * a", backup, "0 1 * * * a\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n",
			map[string]string{"state": "absent -> present"}},
		{"unchanged", "# top\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n# bottom\n", backup, "", nil},
		{"unchanged without trailing newline", "#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup", backup, "", nil},
		{"schedule changed in place", "# top\n#opsmop: backup\nMAILTO=ops\n0 4 * * * /bin/backup\n# bottom\n", backup,
			"# top\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n# bottom\n", map[string]string{"schedule": "0 4 * * * -> 0 3 * * *"}},
		{"job and env changed", "#opsmop: backup\nMAILTO=x\nFOO=1\n0 3 * * * /bin/old\n", backup,
			"#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n", map[string]string{"env": "MAILTO=x FOO=1 -> MAILTO=ops", "job": "/bin/old -> /bin/backup"}},
		{"spacing only", "#opsmop: backup\nMAILTO=ops\n0  3 * * *\t/bin/backup\n", backup,
			"#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n", map[string]string{"job": "/bin/backup -> /bin/backup"}},
		{"orphan marker reused", "#opsmop: backup\n# other\n", backup,
			"#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n# other\n", map[string]string{"env": " -> MAILTO=ops", "schedule": " -> 0 3 * * *", "job": " -> /bin/backup"}},
		{"duplicates removed", "#opsmop: backup\n0 1 * * * /bin/backup\n# mid\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n", backup,
			"#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n# mid\n", map[string]string{"entries": "2 -> 1"}},
		{"other names untouched", "#opsmop: backup2\n0 1 * * * b2\n#opsmop: backu\n0 1 * * * b\n", backup,
			"#opsmop: backup2\n0 1 * * * b2\n#opsmop: backu\n0 1 * * * b\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n", map[string]string{"state": "absent -> present"}},
		{"ansible entry adopted", "MAILTO=root\n#Ansible: backup\n0 3 * * * /bin/backup\n", []string{"#opsmop: backup", "0 3 * * * /bin/backup"},
			"MAILTO=root\n#opsmop: backup\n0 3 * * * /bin/backup\n", map[string]string{"marker": "#Ansible: backup -> #opsmop: backup"}},
		{"ours wins, ansible's is removed", "#Ansible: backup\n0 1 * * * /bin/a\n#opsmop: backup\n0 3 * * * /bin/backup\n", []string{"#opsmop: backup", "0 3 * * * /bin/backup"}, "#opsmop: backup\n0 3 * * * /bin/backup\n", map[string]string{"entries": "2 -> 1"}},
		{"absent removes ansible's too", "#Ansible: backup\n0 1 * * * /bin/a\n#opsmop: backup\n0 3 * * * /bin/backup\n", nil, "", map[string]string{"state": "present -> absent", "entries": "2 -> 0"}},
		{"special", "", []string{"#opsmop: boot", "@reboot /bin/x"}, "#opsmop: boot\n@reboot /bin/x\n", map[string]string{"schedule": " -> @reboot", "job": " -> /bin/x"}},
		{"fields to special", "#opsmop: boot\n0 0 * * * /bin/x\n", []string{"#opsmop: boot", "@daily /bin/x"}, "#opsmop: boot\n@daily /bin/x\n", map[string]string{"schedule": "0 0 * * * -> @daily"}},
		{"absent removes the block only", "# top\n#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n0 1 * * * other\n", nil,
			"# top\n0 1 * * * other\n", map[string]string{"state": "present -> absent"}},
		{"absent removes ansible's and duplicates", "#opsmop: backup\n0 3 * * * a\n#opsmop: backup\n0 3 * * * a\n", nil, "", map[string]string{"state": "present -> absent", "entries": "2 -> 0"}},
		{"absent already", foreign, nil, "", nil},
		{"absent leaves an empty crontab", "#opsmop: backup\n0 3 * * * a\n", nil, "", map[string]string{"state": "present -> absent"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			after, fields := cronEdit([]byte(tc.text), strings.TrimPrefix(firstOr(tc.want, "#opsmop: backup"), "#opsmop: "), tc.want)
			if tc.fields == nil {
				if fields != nil || string(after) != tc.text {
					t.Fatalf("got fields %v, text %q; want no change", fields, after)
				}
				return
			}
			if string(after) != tc.after {
				t.Errorf("text: got %q; want %q", after, tc.after)
			}
			got := fieldMap(&Change{Fields: fields})
			for k, v := range tc.fields {
				if got[k] != v {
					t.Errorf("field %s: got %q; want %q (all: %v)", k, got[k], v, got)
				}
			}
			// Idempotent: editing the result changes nothing.
			if again, f := cronEdit(after, strings.TrimPrefix(firstOr(tc.want, "#opsmop: backup"), "#opsmop: "), tc.want); f != nil {
				t.Errorf("second edit: got fields %v, text %q; want no change", f, again)
			}
		})
	}
}

func firstOr(l []string, def string) string {
	if len(l) == 0 {
		return def
	}
	return l[0]
}

// TestCronProbeParse covers what crontab -l can answer.
func TestCronProbeParse(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		rc      int
		want    crontabRead
		wantErr string
	}{
		{"crontab", "rc=0\ndata=\n# x\n\n0 1 * * * a\n\n", 0, crontabRead{Exists: true, Data: []byte("# x\n\n0 1 * * * a\n\n")}, ""},
		{"empty crontab", "rc=0\ndata=\n", 0, crontabRead{Exists: true, Data: []byte{}}, ""},
		{"data holding key=value and data= lines", "rc=0\ndata=\nrc=1\ndata=\n", 0, crontabRead{Exists: true, Data: []byte("rc=1\ndata=\n")}, ""},
		{"no crontab", "rc=1\nerr=no crontab for app \ndata=\n", 0, crontabRead{}, ""},
		{"no crontab (busybox)", "rc=1\nerr=crontab: can't open 'app': No such file or directory \ndata=\n", 0, crontabRead{}, ""},
		{"no command", "crontab=missing\n", 0, crontabRead{Missing: true}, ""},
		{"not privileged", "rc=1\nerr=must be privileged to use -u \ndata=\n", 0, crontabRead{}, "needs root (the role's sudo = true)"},
		{"unknown user", "rc=1\nerr=user `nosuch' unknown \ndata=\n", 0, crontabRead{}, "crontab -l for the crontab of app failed (exit status 1): user `nosuch' unknown"},
		{"probe failed", "", 2, crontabRead{}, "failed with exit status 2"},
		{"truncated", "rc=0\n", 0, crontabRead{}, "malformed probe output"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseCrontabRead(connection.Result{Stdout: []byte(tc.out), ExitCode: tc.rc}, "the crontab of app")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v; want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Missing != tc.want.Missing || got.Exists != tc.want.Exists || string(got.Data) != string(tc.want.Data) {
				t.Errorf("got %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestCronCommands drives the provider through the fake host: the exact
// probe options and apply scripts, stdin, and the refusal to write over a
// crontab that changed since the check.
func TestCronCommands(t *testing.T) {
	p := mustProvider("cron")
	s := &CronSpec{Name: "backup", User: "app", Hour: "3", Minute: "0", Job: "/bin/backup", Env: []string{"MAILTO=ops"}}
	req := newReq(s, "", nil, nil)
	script, err := p.Probe(req)
	if err != nil {
		t.Fatal(err)
	}
	if want := `if [ "$(id -un 2>/dev/null)" = app ]; then set --; else set -- -u app; fi`; !strings.Contains(script, want) {
		t.Errorf("probe: got %q; want it to contain %q", script, want)
	}
	old := "# mine\n"
	probe := connection.Result{Stdout: []byte("rc=0\ndata=\n" + old)}
	ch, err := p.Check(req, probe)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Action != Create || !strings.Contains(ch.Diff, "+#opsmop: backup") || !strings.Contains(ch.Diff, "crontab of app") {
		t.Fatalf("got %s %v diff %q; want a create with a diff", ch.Action, ch.Fields, ch.Diff)
	}
	f := (&fakeHost{}).on("crontab \"$@\" -l", string(probe.Stdout), 0)
	if _, err := p.Apply(testCtx(t), f, req, ch); err != nil {
		t.Fatal(err)
	}
	if len(f.scripts) != 2 || !strings.HasSuffix(f.scripts[1], "crontab \"$@\" -\n") || f.stdins[1] != old+"#opsmop: backup\nMAILTO=ops\n0 3 * * * /bin/backup\n" {
		t.Errorf("apply: got scripts %q stdins %q", f.scripts, f.stdins)
	}

	// Someone edited the crontab between check and apply: nothing written.
	f = (&fakeHost{}).on("crontab \"$@\" -l", "rc=0\ndata=\n# mine\n0 1 * * * theirs\n", 0)
	_, err = p.Apply(testCtx(t), f, req, ch)
	if err == nil || !strings.Contains(err.Error(), "cron backup (crontab of app): the crontab of app changed since the check read it: nothing written") {
		t.Errorf("got %v; want a changed-since-check error", err)
	}
	if len(f.scripts) != 1 {
		t.Errorf("got scripts %q; want only the read", f.scripts)
	}

	// No user: no -u, no id.
	own, _ := p.Probe(newReq(&CronSpec{Name: "x", Job: "y"}, "", nil, nil))
	if strings.Contains(own, "id -un") || strings.Contains(own, "-u") {
		t.Errorf("probe without user: got %q; want no -u", own)
	}

	// No crontab command: present fails saying what to install; absent is fine.
	missing := connection.Result{Stdout: []byte("crontab=missing\n")}
	if _, err := p.Check(req, missing); err == nil || !strings.Contains(err.Error(), "cron backup (crontab of app): the host has no crontab command: install cron") {
		t.Errorf("got %v; want an error saying to install cron", err)
	}
	if ch, err := p.Check(newReq(&CronSpec{Name: "backup", State: "absent"}, "", nil, nil), missing); err != nil || ch.Changed() {
		t.Errorf("absent without crontab: got %v, %v; want no change", ch, err)
	}

	// Sensitive: no diff, job and env hidden.
	sens := *s
	sens.Sensitive, sens.Env = true, []string{"TOKEN=s3cret"}
	ch, err = p.Check(newReq(&sens, "", nil, nil), connection.Result{Stdout: []byte("rc=0\ndata=\n#opsmop: backup\nTOKEN=old\n0 3 * * * /bin/backup\n")})
	if err != nil {
		t.Fatal(err)
	}
	if ch.Diff != "" || fmt.Sprint(ch.Fields) != "[{env <hidden> <hidden>}]" {
		t.Errorf("sensitive: got fields %v diff %q; want env hidden, no diff", ch.Fields, ch.Diff)
	}
}

// FuzzCrontabEdit: for any crontab text and a valid entry, the edit never
// panics, is idempotent, leaves exactly one block of the entry (none for
// absent) holding the wanted lines, and keeps every other line, in order.
func FuzzCrontabEdit(f *testing.F) {
	f.Add("MAILTO=root\n# c\n*/5 * * * * x\n", "backup", "0", "", "/bin/b", "A=1", false)
	f.Add("#opsmop: backup\n#opsmop: backup\nX=1\n", "backup", "*/5", "", "j", "", false)
	f.Add("#Ansible: backup\n0 1 * * * a\n#opsmop: backup", "backup", "", "@daily", "a", "B = 2", true)
	f.Add("a\n\n\n#opsmop: b\n  C=3\n\t# x\n", "b", "1-5", "", "#j", "", false)
	f.Fuzz(func(t *testing.T, text, name, minute, special, job, env string, absent bool) {
		s := &CronSpec{Name: name, Minute: minute, Special: special, Job: job}
		if env != "" {
			s.Env = []string{env}
		}
		if absent {
			s.State = "absent"
		}
		if s.Validate() != nil || templated(name+minute+special+job+env) {
			return
		}
		want, err := s.entry()
		if err != nil {
			t.Fatal(err)
		}
		once, _ := cronEdit([]byte(text), name, want)
		twice, f2 := cronEdit(once, name, want)
		if f2 != nil || string(twice) != string(once) {
			t.Fatalf("not idempotent: %q -> %q -> %q (%v)", text, once, twice, f2)
		}
		lines := splitCrontab(once)
		blocks := cronBlocks(lines, name)
		switch {
		case absent && len(blocks) != 0:
			t.Fatalf("absent: %d blocks left in %q", len(blocks), once)
		case !absent && (len(blocks) != 1 || blocks[0].Ansible || !slices.Equal(lines[blocks[0].Start:blocks[0].End], want)):
			t.Fatalf("present: blocks %v in %q; want one holding %q", blocks, once, want)
		}
		if !slices.Equal(otherLines(splitCrontab([]byte(text)), name), otherLines(lines, name)) {
			t.Fatalf("other lines changed: %q -> %q", text, once)
		}
	})
}

// otherLines are the lines outside every block of entry name.
func otherLines(lines []string, name string) []string {
	var out []string
	at := 0
	for _, b := range cronBlocks(lines, name) {
		out = append(out, lines[at:b.Start]...)
		at = b.End
	}
	return append(out, lines[at:]...)
}

// FuzzCronField: validating a time field never panics, and what it
// accepts holds only the characters of cron syntax.
func FuzzCronField(f *testing.F) {
	for _, v := range []string{"*", "*/5", "1-5/2,7", "mon-fri", "JAN", "5/10", "99", "-1", "1--2", "*/", ",", "7-"} {
		f.Add(uint8(0), v)
	}
	f.Fuzz(func(t *testing.T, field uint8, v string) {
		i := int(field % 5)
		if checkCronField(i, v) != nil {
			return
		}
		if strings.Trim(strings.ToLower(v), "0123456789*,-/abcdefghijklmnopqrstuvwxyz") != "" {
			t.Fatalf("field %d accepted %q", i, v)
		}
	})
}

// FuzzCrontabRead: any probe output from a hostile host parses without a
// panic.
func FuzzCrontabRead(f *testing.F) {
	f.Add([]byte("rc=0\ndata=\n0 1 * * * a\n"))
	f.Add([]byte("rc=x\n"))
	f.Add([]byte("crontab=missing"))
	f.Fuzz(func(t *testing.T, out []byte) {
		_, _ = parseCrontabRead(connection.Result{Stdout: out}, "the crontab")
	})
}

// userHost is a labHost whose scripts run as an unprivileged user (as
// opsmop does without sudo): su to the user, sh -c the script.
type userHost struct {
	*labHost
	user string
}

func (h *userHost) Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error) {
	return h.labHost.Run(ctx, "exec su -s /bin/sh "+shell.Quote(h.user)+" -c "+shell.Quote(script), stdin)
}

func (h *userHost) Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error {
	return fmt.Errorf("userHost: no uploads")
}

func (h *userHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	return runEach(ctx, h.Run, probes)
}

// TestCronOnLabHost runs the cron provider against a real lab host with
// Debian's crontab: create among foreign lines, update in place, drift
// repaired, an Ansible entry adopted, special schedules, absent, a user
// without a crontab, root's own crontab without -u, a user's own crontab
// without sudo, and another user's crontab without root refused.
func TestCronOnLabHost(t *testing.T) {
	l := labtest.Start(t, lab.Config{Subnet: 33, Hosts: []lab.HostSpec{{Name: "cron1"}}})
	h := &labHost{pid: l.Host("cron1").PID}
	if out := h.exec(t, "command -v crontab || echo none"); !strings.HasSuffix(out, "crontab\n") {
		t.Fatalf("lab host has no crontab command (got %q): run make deps (.ci/deps installs cron)", out)
	}
	p := mustProvider("cron")
	crontab := func(user string) string {
		return h.exec(t, "crontab -u "+user+" -l 2>/dev/null || true")
	}
	snap := func(user string) func() string {
		return h.snap(t, "crontab -u "+user+" -l 2>&1; ls -la --time-style=full-iso /var/spool/cron/crontabs")
	}
	const foreign = "MAILTO=root\n# keep me\n*/5 * * * * /usr/bin/foreign\n"
	h.exec(t, "printf '%s' "+shell.Quote(foreign)+" | crontab -u app -")

	backup := &CronSpec{Name: "backup", User: "app", Minute: "0", Hour: "3", Weekday: "mon-fri",
		Env: []string{"MAILTO=ops@example.com", "PATH=/usr/bin:/bin"}, Job: "/usr/local/bin/backup --all > /dev/null 2>&1"}
	block := "#opsmop: backup\nMAILTO=ops@example.com\nPATH=/usr/bin:/bin\n0 3 * * mon-fri /usr/local/bin/backup --all > /dev/null 2>&1\n"

	t.Run("create among foreign lines", func(t *testing.T) {
		ch := converge(t, h, p, newReq(backup, "", nil, nil), snap("app"), Create)
		if got := fieldMap(ch)["schedule"]; got != " -> 0 3 * * mon-fri" {
			t.Errorf("schedule field: got %q", got)
		}
		if !strings.Contains(ch.Diff, "+0 3 * * mon-fri /usr/local/bin/backup") || !strings.Contains(ch.Diff, " # keep me") {
			t.Errorf("diff: got %q", ch.Diff)
		}
		if got := crontab("app"); got != foreign+block {
			t.Errorf("crontab: got %q; want %q", got, foreign+block)
		}
	})

	t.Run("update in place", func(t *testing.T) {
		h.exec(t, "{ crontab -u app -l; echo '# added later'; } | crontab -u app -")
		s := *backup
		s.Hour = "4"
		ch := converge(t, h, p, newReq(&s, "", nil, nil), snap("app"), Update)
		if got := fieldMap(ch); len(got) != 1 || got["schedule"] != "0 3 * * mon-fri -> 0 4 * * mon-fri" {
			t.Errorf("fields: got %v", got)
		}
		want := foreign + strings.Replace(block, "0 3 *", "0 4 *", 1) + "# added later\n"
		if got := crontab("app"); got != want {
			t.Errorf("crontab: got %q; want %q", got, want)
		}
	})

	t.Run("drift repaired", func(t *testing.T) {
		h.exec(t, "crontab -u app -l | sed 's|/usr/local/bin/backup --all|/usr/local/bin/backup --quick|; s|^MAILTO=ops@example.com$|MAILTO=me|' | crontab -u app -")
		ch := converge(t, h, p, newReq(backup, "", nil, nil), snap("app"), Update)
		got := fieldMap(ch)
		if got["job"] != "/usr/local/bin/backup --quick > /dev/null 2>&1 -> /usr/local/bin/backup --all > /dev/null 2>&1" ||
			got["env"] != "MAILTO=me PATH=/usr/bin:/bin -> MAILTO=ops@example.com PATH=/usr/bin:/bin" || got["schedule"] != "0 4 * * mon-fri -> 0 3 * * mon-fri" {
			t.Errorf("fields: got %v", got)
		}
		if got := crontab("app"); got != foreign+block+"# added later\n" {
			t.Errorf("crontab: got %q", got)
		}
	})

	t.Run("ansible entry adopted", func(t *testing.T) {
		h.exec(t, "{ crontab -u app -l; printf '#Ansible: legacy\\n15 * * * * /usr/bin/legacy\\n'; } | crontab -u app -")
		ch := converge(t, h, p, newReq(&CronSpec{Name: "legacy", User: "app", Minute: "15", Job: "/usr/bin/legacy"}, "", nil, nil), snap("app"), Update)
		if got := fieldMap(ch); len(got) != 1 || got["marker"] != "#Ansible: legacy -> #opsmop: legacy" {
			t.Errorf("fields: got %v", got)
		}
		if got := crontab("app"); !strings.HasSuffix(got, "# added later\n#opsmop: legacy\n15 * * * * /usr/bin/legacy\n") || strings.Contains(got, "Ansible") {
			t.Errorf("crontab: got %q", got)
		}
	})

	t.Run("special and absent", func(t *testing.T) {
		converge(t, h, p, newReq(&CronSpec{Name: "boot", User: "app", Special: "reboot", Job: "/usr/bin/true"}, "", nil, nil), snap("app"), Create)
		if got := crontab("app"); !strings.HasSuffix(got, "#opsmop: boot\n@reboot /usr/bin/true\n") {
			t.Errorf("crontab: got %q", got)
		}
		for _, n := range []string{"boot", "legacy", "backup"} {
			converge(t, h, p, newReq(&CronSpec{Name: n, User: "app", State: "absent"}, "", nil, nil), snap("app"), Delete)
		}
		if got := crontab("app"); got != foreign+"# added later\n" {
			t.Errorf("crontab after absent: got %q; want the foreign lines only", got)
		}
	})

	t.Run("user without a crontab", func(t *testing.T) {
		if got := h.exec(t, "crontab -u ops -l 2>&1 || true"); !strings.Contains(got, "no crontab for ops") {
			t.Fatalf("ops has a crontab: %q", got)
		}
		converge(t, h, p, newReq(&CronSpec{Name: "x", User: "ops", State: "absent"}, "", nil, nil), snap("ops"), None)
		converge(t, h, p, newReq(&CronSpec{Name: "x", User: "ops", Minute: "*/10", Job: "date +\\%s >> /tmp/x"}, "", nil, nil), snap("ops"), Create)
		if got := crontab("ops"); got != "#opsmop: x\n*/10 * * * * date +\\%s >> /tmp/x\n" {
			t.Errorf("crontab: got %q", got)
		}
		converge(t, h, p, newReq(&CronSpec{Name: "x", User: "ops", State: "absent"}, "", nil, nil), snap("ops"), Delete)
		if got := h.exec(t, "crontab -u ops -l"); got != "" {
			t.Errorf("crontab after removing the last entry: got %q; want empty", got)
		}
	})

	t.Run("root's own crontab without -u", func(t *testing.T) {
		for _, user := range []string{"", "root"} {
			converge(t, h, p, newReq(&CronSpec{Name: "own-" + orDefault(user, "default"), User: user, Hour: "1", Minute: "2", Job: "/bin/true"}, "", nil, nil), snap("root"), Create)
		}
		if got := h.exec(t, "crontab -l"); got != "#opsmop: own-default\n2 1 * * * /bin/true\n#opsmop: own-root\n2 1 * * * /bin/true\n" {
			t.Errorf("root's crontab: got %q", got)
		}
	})

	t.Run("a user's own crontab without sudo", func(t *testing.T) {
		dh := &userHost{labHost: h, user: "deploy"}
		for _, user := range []string{"", "deploy"} {
			converge(t, dh, p, newReq(&CronSpec{Name: "mine" + user, User: user, Special: "@hourly", Job: "/bin/true"}, "", nil, nil), snap("deploy"), Create)
		}
		if got := crontab("deploy"); got != "#opsmop: mine\n@hourly /bin/true\n#opsmop: minedeploy\n@hourly /bin/true\n" {
			t.Errorf("deploy's crontab: got %q", got)
		}
		// Another user's crontab without root: a clear error, nothing written.
		before := crontab("app")
		_, err := check(t, testCtx(t), dh, p, newReq(&CronSpec{Name: "x", User: "app", Special: "@daily", Job: "/bin/true"}, "", nil, nil))
		if err == nil || !strings.Contains(err.Error(), "cron x (crontab of app): crontab -l for the crontab of app failed (exit status 1): must be privileged to use -u: managing another user's crontab needs root (the role's sudo = true)") {
			t.Errorf("got %v; want a must-be-privileged error saying sudo = true", err)
		}
		if crontab("app") != before {
			t.Error("app's crontab changed")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		_, err := check(t, testCtx(t), h, p, newReq(&CronSpec{Name: "x", User: "nosuch", Special: "@daily", Job: "/bin/true"}, "", nil, nil))
		if err == nil || !strings.Contains(err.Error(), "cron x (crontab of nosuch): crontab -l for the crontab of nosuch failed (exit status 1): crontab:  user `nosuch' unknown") {
			t.Errorf("unknown user: got %v", err)
		}
		_, err = check(t, testCtx(t), h, p, newReq(&CronSpec{Name: "x", User: "app", Minute: "61", Job: "/bin/true"}, "", nil, nil))
		if err == nil || err.Error() != `probe: cron x (crontab of app): minute "61": 61 is out of range 0-59` {
			t.Errorf("bad minute: got %v", err)
		}
		// A hostile name and job are data, never shell code.
		s := &CronSpec{Name: "$(touch /tmp/pwned) ';x", User: "app", Special: "@daily", Job: "echo '$(id)' \"`id`\" ; rm -rf /nonexistent-opsmop"}
		converge(t, h, p, newReq(s, "", nil, nil), snap("app"), Create)
		if got := crontab("app"); !strings.HasSuffix(got, "#opsmop: "+s.Name+"\n@daily "+s.Job+"\n") {
			t.Errorf("crontab: got %q", got)
		}
		if out := h.exec(t, "ls /tmp/pwned 2>&1 || true"); !strings.Contains(out, "No such file") {
			t.Errorf("/tmp/pwned exists: the name ran as code")
		}
	})
}
