package providers

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/opsmop/opsmop/connection"
)

// EchoSpec is the `echo` resource: a message shown during check and
// apply. It changes nothing.
type EchoSpec struct {
	Msg string `opsmop:"msg" required:"true" doc:"the message (template-rendered with the host's variables)"`
}

type echoProvider struct{}

// Probe is empty: echo reads nothing from the host.
func (echoProvider) Probe(req *Request) (string, error) {
	_, err := spec[EchoSpec](req, "echo")
	return "", err
}

// Check returns Action None with the message.
func (echoProvider) Check(ctx context.Context, req *Request, probe connection.Result) (*Change, error) {
	s, err := spec[EchoSpec](req, "echo")
	if err != nil {
		return nil, err
	}
	return &Change{Action: None, Message: s.Msg}, nil
}

// Apply does nothing.
func (echoProvider) Apply(ctx context.Context, h Host, req *Request, ch *Change) (*Outcome, error) {
	return &Outcome{}, nil
}

// AssertSpec is the `assert` resource: expressions that must hold, or the
// host fails.
type AssertSpec struct {
	That []string `opsmop:"that" required:"true" list1:"true" expr:"true" doc:"one expression or a list of them (over the host's variables and facts); each must be true"`
	Msg  string   `opsmop:"msg" doc:"added to the error when an expression is false"`
}

type assertProvider struct{}

// Probe is empty: assert reads nothing from the host.
func (assertProvider) Probe(req *Request) (string, error) {
	_, err := spec[AssertSpec](req, "assert")
	return "", err
}

// AssertionError is a false assertion.
type AssertionError struct {
	Expr string
	Msg  string
}

// Error reads "assertion failed: EXPR: MSG".
func (e *AssertionError) Error() string {
	if e.Msg == "" {
		return "assertion failed: " + e.Expr
	}
	return "assertion failed: " + e.Expr + ": " + e.Msg
}

// Check evaluates every expression in order; the first false one is an
// *AssertionError. A non-boolean result is an error too.
func (assertProvider) Check(ctx context.Context, req *Request, probe connection.Result) (*Change, error) {
	s, err := spec[AssertSpec](req, "assert")
	if err != nil {
		return nil, err
	}
	if len(s.That) == 0 {
		return nil, errors.New("assert: that is empty: give at least one expression")
	}
	for _, expr := range s.That {
		if strings.TrimSpace(expr) == "" {
			return nil, errors.New("assert: that contains an empty expression")
		}
		ok, err := evalBool(req, "that", expr, nil)
		if err != nil {
			return nil, fmt.Errorf("assert: %w", err)
		}
		if !ok {
			return nil, &AssertionError{Expr: expr, Msg: s.Msg}
		}
	}
	return &Change{Action: None}, nil
}

// Apply does nothing: the check already passed.
func (assertProvider) Apply(ctx context.Context, h Host, req *Request, ch *Change) (*Outcome, error) {
	return &Outcome{}, nil
}
