package providers

import (
	"context"
	"io"

	"github.com/opsmop/opsmop/connection"
)

// Host is what a provider needs from a target. *connection.SSHHost and
// *connection.Local satisfy it; tests use a fake.
type Host interface {
	// Run runs script with sh on the target (under sudo when the host is
	// configured so), feeding stdin if non-nil. A non-zero exit is not an
	// error: it is in Result.ExitCode. err is for transport failures,
	// timeouts and cancellation.
	Run(ctx context.Context, script string, stdin io.Reader) (connection.Result, error)
	// RunProbes runs read-only probe scripts in order in one round trip
	// where the host can (a Batch's Probes), returning one result per
	// probe; err is for transport failures, timeouts and cancellation, as
	// for Run.
	RunProbes(ctx context.Context, probes []connection.Probe) ([]connection.Result, error)
	// Upload atomically replaces dst with the size bytes of r: a temp file
	// in dst's directory, mode/owner/group set, then rename.
	Upload(ctx context.Context, dst string, r io.Reader, size int64, opts connection.UploadOptions) error
}

// Action is what a resource would do.
type Action string

// The actions a Change can carry.
const (
	None   Action = "none"
	Create Action = "create"
	Update Action = "update"
	Delete Action = "delete"
	Run    Action = "run"
)

// Field is one attribute's before and after, as shown to the user.
type Field struct {
	Name   string `json:"name"`
	Before string `json:"before"`
	After  string `json:"after"`
}

// Change is the result of a check: what apply would do. It is rendered by
// the reporters (human diff, JSON) and handed back to Apply unchanged.
type Change struct {
	Action Action  `json:"action"`
	Fields []Field `json:"fields,omitempty"`
	// Diff is a unified diff of file contents, empty when contents do not
	// change or the resource is sensitive.
	Diff string `json:"diff,omitempty"`
	// Sensitive is set when contents must never be shown.
	Sensitive bool `json:"sensitive,omitempty"`
	// Message is an informational line (echo's msg, a skip reason).
	Message string `json:"message,omitempty"`
	// Output marks Message as what the resource is for (echo's msg): the
	// human view shows it even when nothing changes, where other messages
	// of unchanged resources show only with -v.
	Output bool `json:"-"`
	// Plan is the provider's private description of the work, used by Apply.
	Plan any `json:"-"`
}

// Changed reports whether the change does anything.
func (c *Change) Changed() bool { return c != nil && c.Action != None && c.Action != "" }

// Outcome is what Apply reports back beyond success.
type Outcome struct {
	// Result is the command result for resources that run a command
	// (shell), used by register, changed_when and until.
	Result *connection.Result
	// Unchanged is set when apply found nothing to do after all (a shell
	// whose changed_when evaluated false).
	Unchanged bool
}

// Request carries one resource instance, rendered for one host.
type Request struct {
	// Spec is a pointer to the type's decoded, templated spec struct.
	Spec any
	// Facts are the host's gathered facts (facts.* in expressions).
	Facts map[string]any
	// Eval evaluates an expression with the host's variables plus extra.
	Eval func(expr string, extra map[string]any) (any, error)
	// Render renders a local template file (path relative to the policy
	// directory) with the host's variables.
	Render func(path string) ([]byte, error)
	// Open opens a local file (path relative to the policy directory,
	// refusing escapes) for upload.
	Open func(path string) (io.ReadCloser, int64, error)
	// Sum, if set, returns the sha256 (hex) and size of a local file (path
	// as for Open). The engine computes it once per run for all hosts and
	// for check and re-check alike, unless the file's size, mtime or inode
	// changes.
	Sum func(path string) (sum string, size int64, err error)

	// Memo keeps what a provider computes once per instance: the wanted
	// contents of a file (a template rendered for the host, a src file's
	// sum), which Probe, Check, Apply and the re-check after apply must
	// all see unchanged. The caller allocates one per instance
	// (new(Memo)) and passes the same Memo to every call for that
	// instance; a copy of the Request shares it. The file and template
	// providers fail their check when it is nil.
	Memo *Memo
	// Progress, if set, receives the progress of a file upload; providers
	// pass it on as connection.UploadOptions.Progress.
	Progress func(written, total int64)
}

// Memo is the per-instance state providers keep between the calls for one
// resource instance on one host (see Request.Memo). Its zero value is
// ready to use; it is not safe for concurrent use (the engine handles an
// instance in one goroutine).
type Memo struct {
	// source holds the file provider's wanted contents once loaded.
	source *loadedSource
	// tree holds the tree provider's listing of src once walked.
	tree *memoTree
}

// Provider implements one resource type. Probe and Check validate
// req.Spec with its Validate method (see Validator) before anything else,
// so a rule holds whether or not the policy was validated first. A
// request whose Spec is not the type's, or a Change that is not from the
// type's Check, is an error naming the type.
type Provider interface {
	// Probe returns a read-only sh script whose result Check interprets.
	// It must not change the target. The engine may batch the probes of
	// several resources into one round trip.
	Probe(req *Request) (string, error)
	// Check decides the change from the probe's result. It does no I/O on
	// the target, and reads local files only through req (Render, Open,
	// Sum), so it takes no context.
	Check(req *Request, probe connection.Result) (*Change, error)
	// Apply performs exactly ch (as returned by Check for the same req).
	// It may return an Outcome along with an error (a shell's result, for
	// register).
	Apply(ctx context.Context, h Host, req *Request, ch *Change) (*Outcome, error)
}
