package providers

import (
	"context"
	"strings"

	"github.com/opsmop/opsmop/connection"
)

// EchoSpec is the `echo` resource: a message shown during check and
// apply. It changes nothing.
type EchoSpec struct {
	Msg string `opsmop:"msg" required:"true" doc:"the message (template-rendered with the host's variables)"`
}

// Validate checks the rules of an echo that need no host (see
// Validator): there are none, any message (even an empty one) is shown.
func (s *EchoSpec) Validate() error { return nil }

// echoProvider implements `echo`.
type echoProvider struct{}

// labels names only the type.
func (echoProvider) labels(s *EchoSpec) errLabels {
	return errLabels{Probe: "echo", Check: "echo"}
}

// Probe is empty: echo reads nothing from the host.
func (echoProvider) Probe(s *EchoSpec, req *Request) (string, error) { return "", nil }

// Check returns Action None with the message.
func (echoProvider) Check(s *EchoSpec, req *Request, probe connection.Result) (*Change, error) {
	return &Change{Action: None, Message: s.Msg, Output: true}, nil
}

// Apply does nothing.
func (echoProvider) Apply(ctx context.Context, h Host, s *EchoSpec, req *Request, ch *Change) (*Outcome, error) {
	return &Outcome{}, nil
}

// AssertSpec is the `assert` resource: expressions that must hold, or the
// host fails.
type AssertSpec struct {
	That []string `opsmop:"that" required:"true" list1:"true" expr:"true" doc:"one expression or a list of them (over the host's variables and facts); each must be true"`
	Msg  string   `opsmop:"msg" doc:"added to the error when an expression is false"`
}

// Validate checks the rules of an assert that need no host (see
// Validator): that holds at least one expression and none is empty. The
// expressions themselves are compiled by the engine's validation.
func (s *AssertSpec) Validate() error {
	var p problems
	if len(s.That) == 0 {
		p.add("that", "that is empty: give at least one expression")
	}
	for _, expr := range s.That {
		if strings.TrimSpace(expr) == "" {
			p.add("that", "that contains an empty expression")
			break
		}
	}
	return p.err()
}

// assertProvider implements `assert`.
type assertProvider struct{}

// labels names only the type; a false assertion's *AssertionError is
// passed on as it is.
func (assertProvider) labels(s *AssertSpec) errLabels {
	return errLabels{Probe: "assert", Check: "assert"}
}

// Probe is empty: assert reads nothing from the host.
func (assertProvider) Probe(s *AssertSpec, req *Request) (string, error) { return "", nil }

// Check evaluates every expression in order; the first false one is an
// *AssertionError. A non-boolean result is an error too.
func (assertProvider) Check(s *AssertSpec, req *Request, probe connection.Result) (*Change, error) {
	for _, expr := range s.That {
		ok, err := evalBool(req, "that", expr, nil)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &AssertionError{Expr: expr, Msg: s.Msg}
		}
	}
	return &Change{Action: None}, nil
}

// Apply does nothing: the check already passed.
func (assertProvider) Apply(ctx context.Context, h Host, s *AssertSpec, req *Request, ch *Change) (*Outcome, error) {
	return &Outcome{}, nil
}

// AssertionError is a false assertion.
type AssertionError struct {
	// Expr is the expression that was false.
	Expr string
	// Msg is the assert's msg ("" when it has none).
	Msg string
}

// Error reads "assertion failed: EXPR: MSG".
func (e *AssertionError) Error() string {
	if e.Msg == "" {
		return "assertion failed: " + e.Expr
	}
	return "assertion failed: " + e.Expr + ": " + e.Msg
}

// selfLabeled: the error is the host's verdict, read as it is.
func (*AssertionError) selfLabeled() {}
