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
	"fmt"
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
	// StepOnStop runs only when the last step before it that is not
	// StepOnStop stopped the batch (the probes read again after a failed
	// guard); its own status changes nothing.
	StepOnStop
	// StepAlways runs whether or not the batch has stopped; its status
	// changes nothing (the re-check probes at the end of a batch, which
	// must read what the steps before the stop did).
	StepAlways
)

// Step is one command of RunSteps.
type Step struct {
	Script string
	// Stdin is the command's stdin when not nil (held in memory: keep it
	// small), else /dev/null.
	Stdin []byte
	Mode  StepMode
	// Inline runs a read-only probe in the persistent shell itself, as
	// Probe.Inline does (with Vars): one fork fewer. Only for scripts that
	// keep the inline contract described at Probe, and never with Stdin.
	Inline bool
	Vars   []string
	// WriteTo, when set, is a new file (an absolute path) the shell
	// itself writes Stdin to before the command runs, instead of
	// feeding it to the command: created exclusively (noclobber) with
	// the permission bits WriteMode (a subset of 0666), with builtins
	// only. The command then finds the variable opsmop_written set to 0
	// when all of it was written, else to another number (the file then
	// removed as far as possible), and must check it: it runs either
	// way, to say why. The command gets no stdin.
	WriteTo   string
	WriteMode uint32
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
			inline: st.Inline && st.Stdin == nil && inlineVars(st.Vars), vars: st.Vars,
			step: true, mode: st.Mode, first: i == 0, temps: st.Temp,
			writeTo: st.WriteTo, writeMode: st.WriteMode}
		if st.WriteTo != "" {
			cmds[i].hasStdin = false
		}
	}
	return cmds
}

// RunSteps runs steps in order in one round trip, each in its own
// subshell as Run does (Inline steps in the shell itself), and returns
// one result per step: a step that did not run (the batch had stopped: a
// StepStop step before it exited non-zero; or a StepOnStop step whose
// last predecessor of another mode did not stop it) has NotRun set and
// ExitCode -1. err is for transport failures, timeouts and
// cancellation, as for Run, with the results of the steps that completed.
func (h *SSHHost) RunSteps(ctx context.Context, steps []Step) ([]Result, error) {
	if len(steps) == 0 {
		return nil, nil
	}
	for _, st := range steps {
		for _, t := range append(st.Temp, st.WriteTo) {
			if t != "" && !validTemp(t) {
				return nil, &stepError{host: h.name, msg: "temp file " + shell.Quote(t) + " is not an absolute path without newlines"}
			}
		}
		if st.WriteMode&^0o666 != 0 {
			return nil, &stepError{host: h.name, msg: fmt.Sprintf("write mode %04o of %s has bits beyond 0666", st.WriteMode, shell.Quote(st.WriteTo))}
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

// stepError is a step that RunSteps refuses before sending anything: the
// caller's bug.
type stepError struct{ host, msg string }

func (e *stepError) Error() string {
	return "host " + e.host + ": steps: " + e.msg + " (an opsmop bug: please report it)"
}

// runStepsInGo applies the rules of RunSteps to one-at-a-time execution:
// one calls run for a step that runs.
func runStepsInGo(steps []Step, one func(Step) (Result, error)) ([]Result, error) {
	out := make([]Result, 0, len(steps))
	stopped, justStopped := false, false
	for _, st := range steps {
		runs := !stopped
		switch st.Mode {
		case StepOnStop:
			runs = justStopped
		case StepAlways:
			runs = true
		}
		if st.Mode != StepOnStop {
			justStopped = false
		}
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
	switch c.mode {
	case StepOnStop:
		b.WriteString("if [ -n \"$__opsmop_y\" ]; then\n")
	case StepAlways:
		b.WriteString("if :; then\n")
	default:
		b.WriteString("if [ -z \"$__opsmop_x\" ]; then\n")
	}
	if c.writeTo != "" {
		writeFileDirect(b, c.writeTo, c.writeMode, c.stdin)
	}
	writeRun(b, command{script: c.script, stdin: c.stdin, hasStdin: c.hasStdin, inline: c.inline, vars: c.vars})
	if c.writeTo != "" {
		b.WriteString("; unset opsmop_written")
	}
	b.WriteString("\n")
	switch c.mode {
	case StepStop:
		b.WriteString("if [ \"$__opsmop_r\" = 0 ]; then __opsmop_y=; else __opsmop_x=1; __opsmop_y=1; fi\n")
		b.WriteString("else __opsmop_r=-1; __opsmop_y=; fi\n")
	case StepOnStop:
		b.WriteString("else __opsmop_r=-1; fi\n")
	default:
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

// writeFileDirect appends the writing of data to the new file path
// (Step.WriteTo) with builtins: the shell's umask saved once
// (__opsmop_u), set to give mode, noclobber on, the printf chunks
// chained with && so that a failed write is seen, its status in
// opsmop_written, umask and noclobber restored, and the file removed
// when the write failed.
func writeFileDirect(b *strings.Builder, path string, mode uint32, data []byte) {
	q := shell.Quote(path)
	fmt.Fprintf(b, "[ -n \"${__opsmop_u-}\" ] || __opsmop_u=$(umask)\numask %04o; set -C\n", 0o777&^mode)
	b.WriteString("{ { ")
	writePrintfChain(b, data)
	b.WriteString("} >" + q + "; } 2>/dev/null; opsmop_written=$?\n")
	b.WriteString("set +C; umask \"$__opsmop_u\"\n")
	b.WriteString("[ \"$opsmop_written\" = 0 ] || [ ! -f " + q + " ] || rm -f -- " + q + " 2>/dev/null\n")
}

// StepScript returns the script and stdin (nil: none) that perform st in
// a shell of its own, for hosts that run steps one at a time (Local,
// exec mode, test hosts): with WriteTo, the script first writes the
// contents as the persistent shell would.
func StepScript(st Step) (script string, stdin []byte) {
	if st.WriteTo == "" {
		return st.Script, st.Stdin
	}
	var b strings.Builder
	writeFileDirect(&b, st.WriteTo, st.WriteMode, st.Stdin)
	return b.String() + st.Script, nil
}
