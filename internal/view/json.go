package view

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/opsmop/opsmop/engine"
)

// JSON writes every event of a check or apply as one JSON object per
// line, and nothing else (the format is documented in docs/cli.md).
type JSON struct {
	engine.NopHooks // Upload: progress is not an event of the stream
	mu              sync.Mutex
	enc             *json.Encoder
	err             error
	f               flat
}

// NewJSON returns a JSON view writing to w.
func NewJSON(w io.Writer) *JSON {
	j := &JSON{enc: json.NewEncoder(w)}
	j.f.handle = j.write
	return j
}

// write encodes e. After a failed write it writes nothing more (a stream
// with a hole in it would mislead its reader); Err says why.
func (j *JSON) write(e event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err == nil {
		if err := j.enc.Encode(e); err != nil {
			j.err = fmt.Errorf("write JSON event: %w", err)
		}
	}
}

// Err returns the first write error: the run's report is incomplete and
// the caller must not report success.
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

// RunStart implements engine.Hooks.
func (j *JSON) RunStart(r engine.RunStart) { j.f.RunStart(r) }

// HostStart implements engine.Hooks.
func (j *JSON) HostStart(e engine.HostStart) { j.f.HostStart(e) }

// Resource implements engine.Hooks.
func (j *JSON) Resource(r engine.ResourceResult) { j.f.Resource(r) }

// HostEnd implements engine.Hooks.
func (j *JSON) HostEnd(e engine.HostEnd) { j.f.HostEnd(e) }

// Notice implements engine.Hooks.
func (j *JSON) Notice(n engine.Notice) { j.f.Notice(n) }

// Phase implements engine.Hooks.
func (j *JSON) Phase(p engine.Phase) { j.f.Phase(p) }

// Summary implements engine.Hooks.
func (j *JSON) Summary(s *engine.Summary) { j.f.Summary(s) }
