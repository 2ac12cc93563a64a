package providers

import (
	"context"
	"io"

	"github.com/opsmop/opsmop/connection"
)

// RunProbes runs each probe with Run, in order (Host contract): the test
// hosts have no persistent shell to pipeline into.
func (f *fakeHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	return runEach(ctx, f.Run, probes)
}

// RunProbes runs each probe with Run, in order (Host contract).
func (h *labHost) RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error) {
	return runEach(ctx, h.Run, probes)
}

func runEach(ctx context.Context, run func(context.Context, string, io.Reader) (connection.Result, error), probes []connection.Probe) ([]connection.Result, error) {
	out := make([]connection.Result, 0, len(probes))
	for _, p := range probes {
		res, err := run(ctx, p.Script, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}
