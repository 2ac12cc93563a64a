package connection

// Test-only conveniences on SSHHost: opsmop itself runs probes with
// RunProbes and reads no files back.

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pkg/sftp"
)

// RunBatch runs scripts as probes that are not inline (see RunProbes), in
// one round trip.
func (h *SSHHost) RunBatch(ctx context.Context, scripts []string) ([]Result, error) {
	probes := make([]Probe, len(scripts))
	for i, s := range scripts {
		probes[i] = Probe{Script: s}
	}
	return h.RunProbes(ctx, probes)
}

// Download copies the file src on the host (read as the become-user) to w
// and returns the number of bytes copied.
func (h *SSHHost) Download(ctx context.Context, src string, w io.Writer) (int64, error) {
	if err := h.check(); err != nil {
		return 0, err
	}
	slot, cl, err := h.sftp(ctx)
	if err != nil {
		return 0, err
	}
	f, err := cl.Open(src)
	if err != nil {
		return 0, fmt.Errorf("host %s: download %s: %w", h.name, src, err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	n, err := f.WriteTo(w)
	if err != nil {
		if errors.Is(err, sftp.ErrSSHFxConnectionLost) {
			slot.drop(cl)
		}
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return n, fmt.Errorf("host %s: download %s: %w", h.name, src, err)
	}
	return n, nil
}
