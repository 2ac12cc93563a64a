package engine

import (
	"github.com/opsmop/opsmop/providers"
)

// Hooks receives what happens during a run, as it happens: the engine
// calls only these methods, and views (human, JSON, ad-hoc) implement
// them. Implementations must be safe for concurrent use (hosts report
// from their own goroutines) and must not block for long: the run waits.
// Embed NopHooks to implement only some.
type Hooks interface {
	// RunStart is called once, first.
	RunStart(RunStart)
	// HostStart is called when a role starts on a host.
	HostStart(HostStart)
	// Resource is called when a resource (or loop item, or handler) was
	// checked or applied, failed, was skipped, or when a host became
	// unreachable or a role was skipped on it.
	Resource(ResourceResult)
	// Upload reports the progress of a file upload.
	Upload(UploadProgress)
	// HostEnd is called when a role ends on a host.
	HostEnd(HostEnd)
	// Notice is a run-level message (serial batches, a role stopped by
	// max_fail_percentage, a failed host's handlers forced).
	Notice(Notice)
	// Phase reports a step of a host's work that is not a resource
	// (connecting, gathering facts, a probe batch), when it ended, for
	// timelines.
	Phase(Phase)
	// Summary is called once, last, with the recap.
	Summary(*Summary)
}

// NopHooks implements Hooks by doing nothing.
type NopHooks struct{}

func (NopHooks) RunStart(RunStart)       {}
func (NopHooks) HostStart(HostStart)     {}
func (NopHooks) Resource(ResourceResult) {}
func (NopHooks) Upload(UploadProgress)   {}
func (NopHooks) HostEnd(HostEnd)         {}
func (NopHooks) Notice(Notice)           {}
func (NopHooks) Phase(Phase)             {}
func (NopHooks) Summary(*Summary)        {}

// Tee sends every hook call to each of its hooks, in order (a view and a
// recorder; a human view and a JSON log). Its methods implement Hooks.
type Tee []Hooks

func (t Tee) RunStart(e RunStart) {
	for _, h := range t {
		h.RunStart(e)
	}
}
func (t Tee) HostStart(e HostStart) {
	for _, h := range t {
		h.HostStart(e)
	}
}
func (t Tee) Resource(e ResourceResult) {
	for _, h := range t {
		h.Resource(e)
	}
}
func (t Tee) Upload(e UploadProgress) {
	for _, h := range t {
		h.Upload(e)
	}
}
func (t Tee) HostEnd(e HostEnd) {
	for _, h := range t {
		h.HostEnd(e)
	}
}
func (t Tee) Notice(e Notice) {
	for _, h := range t {
		h.Notice(e)
	}
}
func (t Tee) Phase(e Phase) {
	for _, h := range t {
		h.Phase(e)
	}
}
func (t Tee) Summary(e *Summary) {
	for _, h := range t {
		h.Summary(e)
	}
}

// RunStart opens a run.
type RunStart struct {
	// Mode is "check" or "apply".
	Mode string
	// Hosts is the number of distinct hosts; Tasks the number of (role,
	// host) pairs planned.
	Hosts, Tasks int
	// RunInfo says what ran (Options.Info).
	RunInfo
}

// RunInfo identifies a run for whoever merges the reports of several
// (opsmop recap): the policy and its digest, the slice, the plan.
type RunInfo struct {
	// Policy is the policy file's absolute path ("" for none).
	Policy string
	// PolicySHA256 is the digest of the policy's files (the policy file
	// and its includes, in the order they were read).
	PolicySHA256 string
	// Slice is "K/N" for --slice K/N, "" for the whole selection.
	Slice string
	// PlanSHA256 is the sha256 of the plan file of apply FILE ("" for
	// none).
	PlanSHA256 string
}

// HostStart and HostEnd frame one role on one host.
type HostStart struct {
	Host, Role string
}

// HostEnd closes one role on one host.
type HostEnd struct {
	Host, Role string
	// Stats are the host's counts so far (over all roles).
	Stats Stats
	// Duration is the role's time on the host, in seconds.
	Duration float64
}

// ResourceResult is what became of one resource instance on one host.
type ResourceResult struct {
	Host, Role string
	// Resource is the instance's label (file[/etc/motd]); "role NAME" when
	// a role was skipped or its when failed; "" when the host became
	// unreachable.
	Resource     string
	ResourceType string
	// Handler is set for a handler run.
	Handler bool
	Status  Status
	// Change is what the check found (nil when it did not get that far).
	Change *providers.Change
	// Error is the failure, for StatusFailed, StatusIgnored and
	// StatusUnreachable.
	Error string
	// Message is informational: a skip reason, echo's output, ...
	Message string
	// Stdout, Stderr and RC are a command's result, when one ran (RC nil
	// otherwise).
	Stdout, Stderr string
	RC             *int
	// Duration is the time spent on the instance, in seconds.
	Duration float64
	// ID names the instance in the policy, stable from one run of the
	// same policy to the next: "ROLE/SECTION/N" (SECTION pre, resources
	// or post, N the resource's index in it from 0) with "#I" for loop
	// item I, or "ROLE/handler/NAME"; "" for events that are not about a
	// resource (an unreachable host, a skipped role).
	ID string `json:"-"`
	// Fingerprint is the sha256 (hex) of the probe result the check
	// used ("" when the resource has no probe or was not checked).
	Fingerprint string `json:"-"`
}

// UploadProgress is how far the upload of a file resource has come.
type UploadProgress struct {
	Host, Resource string
	Written, Total int64
}

// Phase is a step of one host's work in a role that is not a resource.
type Phase struct {
	Host, Role string
	// Name is "connect" (getting the host's connection: the handshakes the
	// first time, the pool's connection after), "facts", "probe" (one
	// batch of probes in one round trip) or "apply" (one batch of guarded
	// changes of the pipelined apply, with their re-checks, in one round
	// trip).
	Name string
	// Duration is how long it took, in seconds; it ended when the hook
	// is called.
	Duration float64
	// Count is the number of probes in a probe batch, of changes in an
	// apply batch.
	Count int
	// Recheck is set for a probe batch that re-checks a just-applied
	// resource.
	Recheck bool
}

// Notice is a run-level message.
type Notice struct {
	Role, Message string
}
