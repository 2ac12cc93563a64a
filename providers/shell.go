package providers

import (
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/internal/shell"
)

// ShellSpec is the `shell` resource: a command run with sh on the host.
type ShellSpec struct {
	Cmd         string            `opsmop:"cmd" required:"true" doc:"the command, run with sh (pipes, redirections and && work); its stdin is /dev/null"`
	Creates     string            `opsmop:"creates" doc:"a path; when it exists the command is skipped (relative paths are relative to chdir)"`
	Removes     string            `opsmop:"removes" doc:"a path; when it does NOT exist the command is skipped (relative paths are relative to chdir)"`
	Unless      string            `opsmop:"unless" doc:"a guard command run during check (so it must only read, never change anything); exit status 0 skips the command"`
	Onlyif      string            `opsmop:"onlyif" doc:"a guard command run during check (so it must only read, never change anything); a non-zero exit status skips the command"`
	ChangedWhen string            `opsmop:"changed_when" expr:"true" exprvars:"rc,stdout,stderr" doc:"an expression over rc, stdout and stderr (trailing newlines removed); false reports the resource unchanged"`
	FailedWhen  string            `opsmop:"failed_when" expr:"true" exprvars:"rc,stdout,stderr" doc:"an expression over rc, stdout and stderr; replaces the default rule that a non-zero rc fails"`
	Env         map[string]string `opsmop:"env" doc:"environment variables exported for the command and its guards"`
	Chdir       string            `opsmop:"chdir" doc:"directory to run the command (and guards) in"`
}

// Validate checks the rules of a shell resource that need no host (see
// Validator): cmd is not empty; env names are variable names.
func (s *ShellSpec) Validate() error {
	var p problems
	if !templated(s.Cmd) && strings.TrimSpace(s.Cmd) == "" {
		p.add("cmd", "cmd is empty")
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if !envName.MatchString(k) {
			p.add("env", "env %q: not a valid variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	return p.err()
}

// shellProvider implements `shell`.
type shellProvider struct{}

// shellPlan is what Apply does for a shell resource: run Script.
type shellPlan struct {
	Script string
}

// labels names the instance by its command.
func (shellProvider) labels(s *ShellSpec) errLabels {
	l := "shell " + s.Cmd
	return errLabels{Probe: l, Check: l, Apply: l}
}

// Probe evaluates the guards: `creates=0|1`, `removes=0|1`, `unless=RC`,
// `onlyif=RC`, and `chdir_missing=1` when chdir does not exist (guard
// commands are then not run). With no guards the probe is empty.
func (shellProvider) Probe(s *ShellSpec, req *Request) (string, error) {
	var b strings.Builder
	if s.Creates != "" {
		fmt.Fprintf(&b, "if [ -e %s ]; then echo creates=1; else echo creates=0; fi\n", shell.Quote(s.guardPath(s.Creates)))
	}
	if s.Removes != "" {
		fmt.Fprintf(&b, "if [ -e %s ]; then echo removes=1; else echo removes=0; fi\n", shell.Quote(s.guardPath(s.Removes)))
	}
	if s.Unless != "" || s.Onlyif != "" {
		// The guards run in a subshell so that cd/exports stay there.
		b.WriteString("(\n" + s.prelude("{ echo chdir_missing=1; exit 0; }"))
		if s.Unless != "" {
			fmt.Fprintf(&b, "( %s\n) </dev/null >/dev/null 2>&1; echo unless=$?\n", s.Unless)
		}
		if s.Onlyif != "" {
			fmt.Fprintf(&b, "( %s\n) </dev/null >/dev/null 2>&1; echo onlyif=$?\n", s.Onlyif)
		}
		b.WriteString(")\n")
	}
	return b.String(), nil
}

// Check decides from the guards whether the command runs.
func (shellProvider) Check(s *ShellSpec, req *Request, probe connection.Result) (*Change, error) {
	p, err := probeResult(probe)
	if err != nil {
		return nil, err
	}
	skip := func(msg string) (*Change, error) { return &Change{Action: None, Message: "skipped: " + msg}, nil }
	if s.Creates != "" && p.get("creates") == "1" {
		return skip(s.guardPath(s.Creates) + " exists")
	}
	if s.Removes != "" && p.get("removes") == "0" {
		return skip(s.guardPath(s.Removes) + " does not exist")
	}
	ch := &Change{Action: Run, Fields: []Field{{Name: "cmd", Before: "", After: s.Cmd}},
		Plan: shellPlan{Script: s.prelude(fmt.Sprintf("{ echo %s >&2; exit 1; }", shell.Quote("opsmop: chdir "+s.Chdir+": no such directory"))) +
			"(\n" + s.Cmd + "\n) </dev/null\n"}}
	if p.get("chdir_missing") == "1" {
		ch.Message = "chdir " + s.Chdir + " does not exist (yet): guards not evaluated"
		return ch, nil
	}
	if s.Unless != "" {
		rc, err := strconv.Atoi(p.get("unless"))
		if err != nil {
			return nil, fmt.Errorf("malformed probe output: unless=%q", p.get("unless"))
		}
		if rc == 0 {
			return skip("unless command succeeded")
		}
	}
	if s.Onlyif != "" {
		rc, err := strconv.Atoi(p.get("onlyif"))
		if err != nil {
			return nil, fmt.Errorf("malformed probe output: onlyif=%q", p.get("onlyif"))
		}
		if rc != 0 {
			return skip(fmt.Sprintf("onlyif command failed (exit status %d)", rc))
		}
	}
	return ch, nil
}

// Apply runs the command. A non-zero exit status (or failed_when true)
// is an error naming the command, its exit status and stderr; the Outcome
// (with Result) is returned along with that error so that register still
// sees it.
func (shellProvider) Apply(ctx context.Context, h Host, s *ShellSpec, req *Request, ch *Change) (*Outcome, error) {
	pl, err := plan[shellPlan](ch, "shell")
	if err != nil {
		return nil, err
	}
	res, err := h.Run(ctx, pl.Script, nil)
	if err != nil {
		return nil, err
	}
	out := &Outcome{Result: &res}
	vars := map[string]any{
		"rc":     res.ExitCode,
		"stdout": strings.TrimRight(string(res.Stdout), "\n"),
		"stderr": strings.TrimRight(string(res.Stderr), "\n"),
	}
	failed := res.ExitCode != 0
	if s.FailedWhen != "" {
		if failed, err = evalBool(req, "failed_when", s.FailedWhen, vars); err != nil {
			return out, err
		}
	}
	if failed {
		msg := fmt.Sprintf("command failed with exit status %d", res.ExitCode)
		if s.FailedWhen != "" {
			msg = fmt.Sprintf("failed_when %q is true (exit status %d)", s.FailedWhen, res.ExitCode)
		}
		if e := lastLines(res.Stderr, 10); e != "" {
			msg += "; stderr: " + e
		}
		return out, errors.New(msg)
	}
	if s.ChangedWhen != "" {
		changed, err := evalBool(req, "changed_when", s.ChangedWhen, vars)
		if err != nil {
			return out, err
		}
		out.Unchanged = !changed
	}
	return out, nil
}

// envName matches a valid environment variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// prelude is the cd and exports shared by the guards and the command.
func (s *ShellSpec) prelude(onCdFail string) string {
	var b strings.Builder
	if s.Chdir != "" {
		fmt.Fprintf(&b, "cd -- %s 2>/dev/null || %s\n", shell.Quote(s.Chdir), onCdFail)
	}
	keys := make([]string, 0, len(s.Env))
	for k := range s.Env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s; export %s\n", k, shell.Quote(s.Env[k]), k)
	}
	return b.String()
}

// guardPath resolves creates/removes against chdir.
func (s *ShellSpec) guardPath(p string) string {
	if s.Chdir != "" && !path.IsAbs(p) {
		return path.Join(s.Chdir, p)
	}
	return p
}

// evalBool evaluates expr with req.Eval and insists on a boolean.
func evalBool(req *Request, key, expr string, extra map[string]any) (bool, error) {
	if req.Eval == nil {
		return false, fmt.Errorf("%s %q: no expression evaluator in this context", key, expr)
	}
	v, err := req.Eval(expr, extra)
	if err != nil {
		return false, fmt.Errorf("%s %q: %w", key, expr, err)
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s %q: want a boolean, got %T %v", key, expr, v, v)
	}
	return b, nil
}
