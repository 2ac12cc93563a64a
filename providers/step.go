package providers

import (
	"github.com/opsmop/opsmop/connection"
)

// MaxStepStdin is the most data a Step may carry on its stdin: the
// contents of a small file travel inside the host's batch; larger ones go
// through Apply (an upload over SFTP).
const MaxStepStdin = 64 << 10

// Step is a change performed by one sh script, so that the engine can
// send the changes of many resources to a host in one round trip (the
// pipelined apply, docs/engine.md). The script runs in a subshell of the
// host's persistent shell, as the become user, with Stdin as its stdin
// (or /dev/null).
type Step struct {
	// Script performs exactly the change. Exit status 0 means it was
	// made; any other status is its failure, and stderr says why.
	Script string
	// Stdin is fed to the script when not nil (at most MaxStepStdin
	// bytes: a file's new contents).
	Stdin []byte
	// What names the work in the error of a failed step ("directory
	// /srv/x"), as Apply's errors do.
	What string
	// WriteTo, when set, is the new file the connection writes Stdin to
	// before the script runs (connection.Step.WriteTo: with builtins, the
	// permission bits WriteMode, the status in opsmop_written), instead
	// of feeding it to the script.
	WriteTo   string
	WriteMode uint32
	// Temp lists files the script may create that must not outlive the
	// connection should it die mid-step (an upload's temp file): the
	// connection registers them for removal before the batch runs. The
	// script removes them itself on success and on failure.
	Temp []string
}

// Stepper is implemented by the providers whose changes can be Steps.
// Every Provider that adapt returns implements it; for a type that has no
// step form ApplyStep reports ok false.
type Stepper interface {
	// ApplyStep returns the step that performs exactly ch (as Check
	// returned it for req). ok is false when ch must go through Apply
	// instead (the type has no step form, the contents are larger than
	// MaxStepStdin, a validate command must run between writing and
	// renaming, ...). err is a change that cannot be made at all, as
	// Apply would report it.
	ApplyStep(req *Request, ch *Change) (step Step, ok bool, err error)
	// StepDone turns what the step's script produced into Apply's
	// result: the outcome, or the error Apply would have returned for
	// the same failure (labeled as Apply's are).
	StepDone(req *Request, st Step, res connection.Result) (*Outcome, error)
}

// typedStepper is Stepper for a typed provider.
type typedStepper[S any] interface {
	// ApplyStep is Stepper.ApplyStep for s.
	ApplyStep(s *S, req *Request, ch *Change) (Step, bool, error)
}

// ApplyStep is the typed provider's ApplyStep, its error labeled as
// Apply's; ok is false when the provider has no step form.
func (a adapter[S]) ApplyStep(req *Request, ch *Change) (Step, bool, error) {
	ts, ok := a.p.(typedStepper[S])
	if !ok {
		return Step{}, false, nil
	}
	s, err := spec[S](req, a.name)
	if err != nil {
		return Step{}, false, err
	}
	st, ok, err := ts.ApplyStep(s, req, ch)
	if err != nil {
		return Step{}, false, label(a.p.labels(s).Apply, err)
	}
	if ok && st.Stdin != nil && len(st.Stdin) > MaxStepStdin {
		return Step{}, false, nil
	}
	return st, ok, nil
}

// StepDone reports a non-zero exit status as the *CommandError that run
// returns for a failed command in Apply, labeled as Apply's errors are.
func (a adapter[S]) StepDone(req *Request, st Step, res connection.Result) (*Outcome, error) {
	if res.ExitCode == 0 {
		return &Outcome{}, nil
	}
	err := error(&CommandError{What: st.What, ExitCode: res.ExitCode, Stderr: lastLines(res.Stderr, 10)})
	if s, serr := spec[S](req, a.name); serr == nil {
		err = label(a.p.labels(s).Apply, err)
	}
	return nil, err
}

// Predictor is implemented by providers that can tell, on the
// controller, what their probe will print once one of their changes has
// been made: the pipelined apply checks a later resource with the same
// probe (another line in the same file) from that prediction instead of
// the probe read before the batch, so that the two changes travel in the
// same batch. A prediction is only a guess that saves a round trip: the
// later resource's guard compares it with what the host really prints,
// and a wrong one costs the round trip it was to save, never a wrong
// change.
type Predictor interface {
	// PredictProbe returns the result req's probe would give once ch (as
	// Check returned it for req from probe) has been made; ok is false
	// when it cannot tell.
	PredictProbe(req *Request, probe connection.Result, ch *Change) (connection.Result, bool)
}

// typedPredictor is Predictor for a typed provider.
type typedPredictor[S any] interface {
	// PredictProbe is Predictor.PredictProbe for s.
	PredictProbe(s *S, req *Request, probe connection.Result, ch *Change) (connection.Result, bool)
}

// PredictProbe is the typed provider's PredictProbe; ok is false when the
// provider makes no predictions.
func (a adapter[S]) PredictProbe(req *Request, probe connection.Result, ch *Change) (connection.Result, bool) {
	tp, ok := a.p.(typedPredictor[S])
	if !ok {
		return connection.Result{}, false
	}
	s, err := spec[S](req, a.name)
	if err != nil {
		return connection.Result{}, false
	}
	return tp.PredictProbe(s, req, probe, ch)
}
