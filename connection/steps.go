package connection

// RunSteps: the commands of a pipelined apply, sent in one round trip, in
// which a failed command stops the ones after it on the host itself.
//
// In the persistent shell each step's command is wrapped in a test of two
// of the shell's variables, reset at the start of the batch:
// __opsmop_x (the batch stopped) and __opsmop_y (the command just before
// stopped it). A command that does not run writes nothing to the private
// directory and reports the status -1, which no command can have, in its
// frame; so every step has a frame and the reader's protocol is
// unchanged. Hosts without a usable sh and Local apply the same rules in
// Go, one command after the other.

import (
	"context"
	"strings"

	"github.com/opsmop/opsmop/internal/shell"
)

// StepMode says when a step of RunSteps runs and whether its failure
// stops the steps after it.
type StepMode int

const (
	// StepStop runs unless the batch has stopped; a non-zero exit
	// status stops it (a change, a guard).
	StepStop StepMode = iota
	// StepGo runs unless the batch has stopped; its exit status does not
	// stop it (a read-only probe, whose status is data).
	StepGo
	// StepOnStop runs only when the step just before it stopped the
	// batch (the probe read again after a failed guard); its own status
	// changes nothing.
	StepOnStop
)

// Step is one command of RunSteps.
type Step struct {
	Script string
	// Stdin is the command's stdin when not nil (held in memory: keep it
	// small), else /dev/null.
	Stdin []byte
	Mode  StepMode
	// Temp names files the command may create that must not outlive the
	// connection if it dies mid-batch: they are registered for removal at
	// the shell's exit before the batch runs (see the protocol's
	// removeOnExit). The command removes them itself otherwise.
	Temp []string
}

// notRun is the status a step that did not run reports.
const notRun = -1

// stepCommands turns steps into the commands of one run.
func stepCommands(steps []Step) []command {
	cmds := make([]command, len(steps))
	for i, st := range steps {
		cmds[i] = command{script: st.Script, stdin: st.Stdin, hasStdin: st.Stdin != nil,
			step: true, mode: st.Mode, first: i == 0, temps: st.Temp}
	}
	return cmds
}

// RunSteps runs steps in order in one round trip, each in its own
// subshell as Run does, and returns one result per step: a step that did
// not run (the batch had stopped: a StepStop step before it exited
// non-zero; or a StepOnStop step whose predecessor did not stop it) has
// NotRun set and ExitCode -1. err is for transport failures, timeouts and
// cancellation, as for Run, with the results of the steps that completed.
func (h *SSHHost) RunSteps(ctx context.Context, steps []Step) ([]Result, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	for _, st := range steps {
		for _, t := range st.Temp {
			if !validTemp(t) {
				return nil, errBadTemp(h.name, t)
			}
		}
	}
	res, err := h.run(ctx, stepCommands(steps))
	for i := range res {
		res[i].NotRun = res[i].ExitCode == notRun
	}
	return res, err
}

// validTemp reports whether p can be registered for removal: an absolute
// path without NUL or newline.
func validTemp(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.ContainsAny(p, "\x00\n")
}

func errBadTemp(host, p string) error {
	return &stepTempError{host: host, path: p}
}

// stepTempError is a Step.Temp that cannot be registered.
type stepTempError struct{ host, path string }

func (e *stepTempError) Error() string {
	return "host " + e.host + ": steps: temp file " + shell.Quote(e.path) + " is not an absolute path without newlines (a bug: please report)"
}

// runStepsInGo applies the rules of RunSteps to one-at-a-time execution:
// one calls run for a step that runs.
func runStepsInGo(steps []Step, one func(Step) (Result, error)) ([]Result, error) {
	out := make([]Result, 0, len(steps))
	stopped, justStopped := false, false
	for _, st := range steps {
		runs := !stopped
		if st.Mode == StepOnStop {
			runs = justStopped
		}
		justStopped = false
		if !runs {
			out = append(out, Result{ExitCode: notRun, NotRun: true})
			continue
		}
		r, err := one(st)
		if err != nil {
			return out, err
		}
		if st.Mode == StepStop && r.ExitCode != 0 {
			stopped, justStopped = true, true
		}
		out = append(out, r)
	}
	return out, nil
}

// writeStepCommand appends the text of a RunSteps command c: the test of
// its mode around the writing of its script and stdin and its run line,
// status -1 when it does not run, then the end frame.
func writeStepCommand(b *strings.Builder, c command) {
	if c.first {
		b.WriteString("__opsmop_x= __opsmop_y=\n")
	}
	for _, t := range c.temps {
		b.WriteString(removeOnExitLine(t))
	}
	if c.mode == StepOnStop {
		b.WriteString("if [ -n \"$__opsmop_y\" ]; then\n")
	} else {
		b.WriteString("if [ -z \"$__opsmop_x\" ]; then\n")
	}
	writeRun(b, command{script: c.script, stdin: c.stdin, hasStdin: c.hasStdin})
	b.WriteString("\n")
	if c.mode == StepStop {
		b.WriteString("if [ \"$__opsmop_r\" = 0 ]; then __opsmop_y=; else __opsmop_x=1; __opsmop_y=1; fi\n")
		b.WriteString("else __opsmop_r=-1; __opsmop_y=; fi\n")
	} else {
		b.WriteString("else __opsmop_r=-1; fi; __opsmop_y=\n")
	}
	b.WriteString(scriptBody(shellFrameFile))
	b.WriteString("\n")
}

// removeOnExitLine is the line the persistent shell runs (itself: no
// subshell, no output) to have its EXIT trap remove path.
func removeOnExitLine(path string) string {
	// The test is a builtin: files renamed into place (the usual end of
	// an upload) cost no process at exit.
	return "printf '%s\\n' " + shell.Quote("[ ! -e "+shell.Quote(path)+" ] || rm -f -- "+shell.Quote(path)) + ` >>"$__opsmop_D/u"` + "\n"
}
