// Package policy is the opsmop policy language: TOML and YAML files decoded
// strictly into one schema, with errors that name file, line and key path.
package policy

import (
	"strconv"
	"time"
)

// Pos is a place in a policy file.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// Policy is a loaded policy file with its roles' includes resolved.
type Policy struct {
	// File is the policy file's path as given; Dir its directory, against
	// which relative paths (inventory, templates, src) resolve.
	File string
	Dir  string
	// Inventory is the inventory path (resolved against Dir), or "".
	Inventory string
	Vars      map[string]any
	Roles     []*Role
	// Files are the paths of every file Load read: the policy file, then
	// each included file as it was read.
	Files []string
}

// Login is a user to log in or sudo as. Password may be a literal or an
// env:NAME / file:PATH reference; it is resolved (and kept as a
// secret.Secret) when connection settings are computed.
type Login struct {
	Username   string `opsmop:"username" doc:"user name"`
	Password   string `opsmop:"password" doc:"password, or env:NAME / file:PATH"`
	PrivateKey string `opsmop:"private_key" doc:"private key file (ssh_as only)"`
}

// Role selects hosts and lists what to do on them.
type Role struct {
	Name string
	// Include is the role file this role was read from ("" if inline).
	Include string
	// Groups and Hosts are fnmatch patterns over group and host names; a
	// host is selected when it matches either (both empty: every host).
	Groups        string
	Hosts         string
	SSHAs         *Login
	Sudo          *bool
	SudoAs        *Login
	CheckHostKeys *bool
	// When is an expression evaluated per host; false skips the role there.
	When string
	Vars map[string]any
	Tags []string
	// Serial is the batch plan: nil (all hosts at once), or the sizes of
	// the batches in order, the last one repeating until every host is
	// placed. Load has checked each size.
	Serial            []BatchSize
	MaxFailPercentage *float64
	// ForceHandlers is the role's force_handlers: nil when not set
	// (--force-handlers decides), else whether a host where a resource
	// failed still runs the handlers notified before the failure.
	ForceHandlers *bool
	Pre           []*Resource
	Resources     []*Resource
	Handlers      []*Resource
	Post          []*Resource
	// Pos is where the role starts: its [[roles]] header or YAML map.
	Pos Pos
	// keyPos is where each key the role sets is written (see KeyPos).
	keyPos map[string]Pos
}

// BatchSize is one size of a role's serial plan: a number of hosts or a
// percentage of the role's hosts. Exactly one of the two is set.
type BatchSize struct {
	// Hosts is a number of hosts, at least 1; 0 when Percent is set.
	Hosts int
	// Percent is a percentage of the role's hosts, more than 0 and at
	// most 100; 0 when Hosts is set.
	Percent float64
}

// Of returns the batch size for a role of n hosts: Hosts, or Percent of
// n rounded down (callers make a size of 0 at least 1).
func (b BatchSize) Of(n int) int {
	if b.Percent > 0 {
		return int(float64(n) * b.Percent / 100)
	}
	return b.Hosts
}

// String writes the size as a policy does: 5, or 25%.
func (b BatchSize) String() string {
	if b.Percent > 0 {
		return strconv.FormatFloat(b.Percent, 'g', -1, 64) + "%"
	}
	return strconv.Itoa(b.Hosts)
}

// KeyPos returns where the role's key is written: key is a role key such
// as "when", "hosts", "groups", "serial", "vars" or "tags", and the
// position is the key's line, in the included role file when the key
// comes from there. For a key the role does not set, or a Role not made by
// Load, it returns r.Pos.
func (r *Role) KeyPos(key string) Pos {
	if p, ok := r.keyPos[key]; ok {
		return p
	}
	return r.Pos
}

// Resource is one resource as written in the policy, before per-host
// rendering. Common keys are fields here; type-specific keys are in Spec.
type Resource struct {
	Type string
	// Name is the handler name (handlers only; what notify refers to).
	Name         string
	Label        string
	When         string
	Notify       []string
	Loop         *Loop // nil: no loop
	IgnoreErrors bool
	Vars         map[string]any
	Tags         []string
	Register     string
	Retries      int
	Delay        time.Duration
	Until        string
	// Spec is a pointer to the type's spec struct, decoded unrendered.
	Spec any
	// Raw is the resource's node, re-decoded per host after rendering.
	Raw *Node
	// Path is the resource's key path, e.g. "roles[0].resources[2]", for
	// messages.
	Path string
	Pos  Pos
}

// Loop is a resource's loop: a literal list of items, or an expression
// that gives the list when evaluated for a host.
type Loop struct {
	// Items is the literal list (non-nil, possibly empty), or nil when
	// Expr is the loop.
	Items []any
	// Expr is the expression as written (templates in it are not
	// rendered), used when Items is nil.
	Expr string
}

// KeyPos returns where the resource's key is written: key is a common key
// such as "when", "loop" or "until", or one of the type's own, and the
// position is the key's line (from Raw). For a key the resource does not
// set, or a Resource without Raw, it returns r.Pos. A copy made by Render
// keeps the positions.
func (r *Resource) KeyPos(key string) Pos {
	if e := r.Raw.entry(key); e != nil {
		return e.KeyPos
	}
	return r.Pos
}

// ResourceType declares a resource type: its spec struct carries the keys
// (`opsmop:"key"` tags, `required:"true"`, `default:"..."`, `doc:"..."`),
// from which decoding, defaults and docs all come.
type ResourceType struct {
	Name string
	// New returns a pointer to a fresh spec struct.
	New func() any
	// Identity is the key that names an instance (path, cmd, name,
	// service): the default label is type[identity].
	Identity string
	// Handler reports whether the type may be a handler.
	Handler bool
	// Facts reports whether the type's provider reads the host's facts
	// (a role using it makes the engine gather them).
	Facts bool
	Doc   string
}

// Registry maps type names to their declarations.
type Registry map[string]ResourceType
