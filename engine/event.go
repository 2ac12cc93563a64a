package engine

// Status is a resource's or host's outcome.
type Status string

// The statuses reported in events and counted in the recap.
const (
	StatusOK          Status = "ok"
	StatusChanged     Status = "changed"
	StatusFailed      Status = "failed"
	StatusSkipped     Status = "skipped"
	StatusUnreachable Status = "unreachable"
	// StatusIgnored is a failure of a resource with ignore_errors.
	StatusIgnored Status = "ignored"
)

// Stats counts one host's results.
type Stats struct {
	OK          int `json:"ok"`
	Changed     int `json:"changed"`
	Failed      int `json:"failed"`
	Skipped     int `json:"skipped"`
	Unreachable int `json:"unreachable"`
	// Ignored counts failures of resources with ignore_errors: reported,
	// but they neither stop the host nor fail the run.
	Ignored int    `json:"ignored"`
	Error   string `json:"error,omitempty"`
}

func (s *Stats) add(st Status) {
	switch st {
	case StatusOK:
		s.OK++
	case StatusChanged:
		s.Changed++
	case StatusFailed:
		s.Failed++
	case StatusSkipped:
		s.Skipped++
	case StatusUnreachable:
		s.Unreachable++
	case StatusIgnored:
		s.Ignored++
	}
}

// Summary is the recap of a run.
type Summary struct {
	Mode     string            `json:"mode"`
	Hosts    map[string]*Stats `json:"hosts"`
	Order    []string          `json:"-"`
	Total    Stats             `json:"total"`
	Duration float64           `json:"duration_s"`
	// Notes explain run-level decisions, such as a role stopped by
	// max_fail_percentage.
	Notes []string `json:"notes,omitempty"`
	// Interrupted is set when the run was cancelled (Ctrl-C).
	Interrupted bool `json:"interrupted,omitempty"`
}

// Failed reports whether any host failed or was unreachable.
func (s *Summary) Failed() bool { return s.Total.Failed > 0 || s.Total.Unreachable > 0 }

// Changed reports whether anything changed (or, in check, would change).
func (s *Summary) Changed() bool { return s.Total.Changed > 0 }
