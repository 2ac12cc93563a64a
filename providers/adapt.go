package providers

import (
	"context"
	"fmt"

	"github.com/opsmop/opsmop/connection"
)

// typed is a resource type's provider written against its spec type S:
// adapt makes it a Provider, which casts req.Spec to *S, validates it and
// labels the errors, so that a typed provider holds only its own logic.
type typed[S any] interface {
	// labels says how the errors of s's calls name the instance.
	labels(s *S) errLabels
	// Probe is Provider.Probe for s, which has passed Validate.
	Probe(s *S, req *Request) (string, error)
	// Check is Provider.Check for s, which has passed Validate.
	Check(s *S, req *Request, probe connection.Result) (*Change, error)
	// Apply is Provider.Apply for s (the spec ch was checked from).
	Apply(ctx context.Context, h Host, s *S, req *Request, ch *Change) (*Outcome, error)
}

// typedPathProber is PathProber for a typed provider: ProbePath names the
// path the probe of s looks at.
type typedPathProber[S any] interface {
	ProbePath(s *S) ProbedPath
}

// errLabels is how a resource type's errors name an instance: adapt puts
// the label of the call before each error the call returns ("file
// /etc/motd: ..."). An empty label adds nothing: the errors name the
// instance themselves. Errors that are selfLabeled are never labeled.
type errLabels struct {
	// Probe labels the errors of Validate and Probe in Probe.
	Probe string
	// Check labels the errors of Validate and Check in Check.
	Check string
	// Apply labels the errors of Apply.
	Apply string
}

// selfLabeled is implemented by errors that read completely as they are,
// which adapt passes on without a label: the caller's misuse of the
// Provider contract (it names the type) and an assertion's verdict.
type selfLabeled interface {
	error
	selfLabeled()
}

// label returns err with l before it, or err itself when l is empty or
// err is selfLabeled.
func label(l string, err error) error {
	if _, ok := err.(selfLabeled); ok || l == "" {
		return err
	}
	return fmt.Errorf("%s: %w", l, err)
}

// adapt returns the Provider of the type called name whose spec is *S,
// implemented by p. Probe and Check cast req.Spec to *S, call its
// Validate and then p, and label every error with p's labels; Apply
// casts and labels likewise. The Provider is also an InlineProber when p
// is, and a PathProber when p is a typedPathProber, so that a Batch sees
// what p offers and nothing else.
func adapt[S any, V interface {
	*S
	Validator
}](name string, p typed[S]) Provider {
	a := adapter[S]{name: name, p: p, validate: func(s *S) error { return V(s).Validate() }}
	ip, inline := p.(InlineProber)
	pp, path := p.(typedPathProber[S])
	switch {
	case inline && path:
		return inlinePathAdapter[S]{pathAdapter[S]{a, pp}, ip}
	case inline:
		return inlineAdapter[S]{a, ip}
	case path:
		return pathAdapter[S]{a, pp}
	}
	return a
}

// adapter is the Provider adapt returns for a typed provider that is
// neither an InlineProber nor a typedPathProber.
type adapter[S any] struct {
	name     string
	p        typed[S]
	validate func(*S) error
}

// Probe validates the spec and returns p's probe.
func (a adapter[S]) Probe(req *Request) (string, error) {
	s, err := spec[S](req, a.name)
	if err != nil {
		return "", err
	}
	if err := a.validate(s); err != nil {
		return "", label(a.p.labels(s).Probe, err)
	}
	script, err := a.p.Probe(s, req)
	if err != nil {
		return "", label(a.p.labels(s).Probe, err)
	}
	return script, nil
}

// Check validates the spec and returns p's change.
func (a adapter[S]) Check(req *Request, probe connection.Result) (*Change, error) {
	s, err := spec[S](req, a.name)
	if err != nil {
		return nil, err
	}
	if err := a.validate(s); err != nil {
		return nil, label(a.p.labels(s).Check, err)
	}
	ch, err := a.p.Check(s, req, probe)
	if err != nil {
		return nil, label(a.p.labels(s).Check, err)
	}
	return ch, nil
}

// Apply returns what p's Apply returns, its error labeled (with the
// Outcome, which p may return along with an error).
func (a adapter[S]) Apply(ctx context.Context, h Host, req *Request, ch *Change) (*Outcome, error) {
	s, err := spec[S](req, a.name)
	if err != nil {
		return nil, err
	}
	out, err := a.p.Apply(ctx, h, s, req, ch)
	if err != nil {
		return out, label(a.p.labels(s).Apply, err)
	}
	return out, nil
}

// inlineAdapter is the Provider adapt returns for an InlineProber.
type inlineAdapter[S any] struct {
	adapter[S]
	InlineProber
}

// pathAdapter is the Provider adapt returns for a typedPathProber.
type pathAdapter[S any] struct {
	adapter[S]
	path typedPathProber[S]
}

// ProbePath is the typed provider's ProbePath for the request's spec, and
// false when the request holds no spec of the type.
func (a pathAdapter[S]) ProbePath(req *Request) (ProbedPath, bool) {
	s, err := spec[S](req, a.name)
	if err != nil {
		return ProbedPath{}, false
	}
	return a.path.ProbePath(s), true
}

// inlinePathAdapter is the Provider adapt returns for a typed provider
// that is both an InlineProber and a typedPathProber.
type inlinePathAdapter[S any] struct {
	pathAdapter[S]
	InlineProber
}
