package main

// This file holds saved plans: `opsmop check POLICY -o FILE` writes what
// check found, per host and resource, with the fingerprint of every probe
// result it used and the digests of every local file it read;
// `opsmop apply FILE` performs exactly those changes or refuses; `opsmop
// show FILE` prints the plan as check showed it. docs/plan.md documents
// the format and the rules.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/providers"
)

// planFormat and planVersion identify a plan file; a reader refuses
// another format or a version it does not know.
const (
	planFormat  = "opsmop-plan"
	planVersion = 1
	// maxPlanSize bounds the plan file a command reads.
	maxPlanSize = 256 << 20
)

// planFile is a saved plan (docs/plan.md).
type planFile struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Opsmop is the version of opsmop that wrote the plan.
	Opsmop  string `json:"opsmop"`
	Created string `json:"created"`
	// Policy is the policy file's absolute path.
	Policy string  `json:"policy"`
	Run    planRun `json:"run"`
	// Inputs are every local file and directory the check read, with
	// their digests.
	Inputs []planInput `json:"inputs"`
	// Hosts are the planned hosts in the run's order.
	Hosts []*planHost `json:"hosts"`
	// NotPlanned are the hosts check could not finish (failed,
	// unreachable); apply FILE does not run them.
	NotPlanned []planSkip `json:"not_planned,omitempty"`

	// sha256 is the plan file's digest (set by readPlan).
	sha256 string
}

// planRun are the run's options that choose hosts and resources: apply
// FILE runs with exactly these.
type planRun struct {
	Inventory     string   `json:"inventory,omitempty"`
	Limit         string   `json:"limit,omitempty"`
	Slice         string   `json:"slice,omitempty"`
	Tags          []string `json:"tags,omitempty"`
	SkipTags      []string `json:"skip_tags,omitempty"`
	Local         bool     `json:"local,omitempty"`
	ForceHandlers bool     `json:"force_handlers,omitempty"`
	// ExtraVarKeys are the names of the -e variables; their values are
	// not kept (they may be secrets) and must be given again.
	ExtraVarKeys []string `json:"extra_var_keys,omitempty"`
}

// planInput is one local file or directory the check read.
type planInput struct {
	Path string `json:"path"`
	// Kind is "file", "directory" or "missing".
	Kind string `json:"kind"`
	// SHA256 is the file's digest; for a directory, the digest of its
	// whole listing (names, types, permissions, file digests).
	SHA256 string `json:"sha256,omitempty"`
}

// planHost is one planned host.
type planHost struct {
	Name string `json:"name"`
	// Logins are how the host is reached, by role: user@address:port,
	// the sudo user and the jump hosts.
	Logins    map[string]string `json:"logins"`
	Resources []*planResource   `json:"resources"`
}

// planResource is one resource instance (or handler, or skipped role) as
// check saw it.
type planResource struct {
	ID       string        `json:"id"`
	Role     string        `json:"role"`
	Resource string        `json:"resource"`
	Type     string        `json:"type,omitempty"`
	Handler  bool          `json:"handler,omitempty"`
	Status   engine.Status `json:"status"`
	Message  string        `json:"message,omitempty"`
	Error    string        `json:"error,omitempty"`
	// Change is what check showed (no provider internals; a sensitive
	// resource's fields are hidden as in check's output).
	Change *providers.Change `json:"change,omitempty"`
	// Fingerprint is the sha256 of the probe result check used.
	Fingerprint string `json:"fingerprint,omitempty"`
}

// planSkip is a host check did not finish.
type planSkip struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}

// digest is what apply compares with a fresh check of the resource: its
// status and the change as shown.
func (r *planResource) digest() string {
	b, _ := json.Marshal(struct {
		Status  engine.Status     `json:"status"`
		Message string            `json:"message"`
		Change  *providers.Change `json:"change"`
	}{r.Status, r.Message, r.Change})
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// sensitive reports whether the resource's change hides its fields: its
// digest alone cannot tell a changed state, its fingerprint must.
func (r *planResource) sensitive() bool { return r.Change != nil && r.Change.Sensitive }

// samePlanned reports whether a resource checked now (its change and
// probe fingerprint) is as planned: the same change, read the same way
// (before values and diff included); for a sensitive resource, whose
// change hides them, also the same probe result. Other state (a
// directory's size, an unmanaged attribute) may differ: the change to
// perform is the same.
func samePlanned(want *planResource, ch *providers.Change, fingerprint string) bool {
	if !sameChange(want.Change, ch) {
		return false
	}
	return !want.sensitive() || want.Fingerprint == fingerprint
}

// planResourceOf turns an event into a planResource; ok is false for an
// event that is not about a resource or role (none are recorded).
func planResourceOf(ev engine.ResourceResult) (*planResource, bool) {
	id := ev.ID
	if id == "" {
		if !strings.HasPrefix(ev.Resource, "role ") {
			return nil, false
		}
		id = ev.Role + "/role"
	}
	return &planResource{ID: id, Role: ev.Role, Resource: ev.Resource, Type: ev.ResourceType, Handler: ev.Handler,
		Status: ev.Status, Message: ev.Message, Error: ev.Error, Change: ev.Change, Fingerprint: ev.Fingerprint}, true
}

// planRecorder is the hooks that keep what a check finds, per host, and
// the local files it reads.
type planRecorder struct {
	engine.NopHooks
	mu    sync.Mutex
	hosts map[string][]*planResource
	reads map[string]bool
	sum   *engine.Summary
}

func newPlanRecorder() *planRecorder {
	return &planRecorder{hosts: map[string][]*planResource{}, reads: map[string]bool{}}
}

// Resource records a resource's event.
func (p *planRecorder) Resource(ev engine.ResourceResult) {
	r, ok := planResourceOf(ev)
	if !ok {
		return
	}
	p.mu.Lock()
	p.hosts[ev.Host] = append(p.hosts[ev.Host], r)
	p.mu.Unlock()
}

// Summary keeps the recap.
func (p *planRecorder) Summary(s *engine.Summary) {
	p.mu.Lock()
	p.sum = s
	p.mu.Unlock()
}

// read records a local path the run read.
func (p *planRecorder) read(full string) {
	p.mu.Lock()
	p.reads[full] = true
	p.mu.Unlock()
}

// loginOf describes how a host is reached under a role, for a plan's
// binding to its hosts.
func loginOf(hc hostConn) string {
	t := hc.target
	s := fmt.Sprintf("%s@%s:%d", t.User, t.Address, t.Port)
	if t.Sudo {
		s += " sudo " + t.SudoUser
	}
	var via []string
	for v := t.Via; v != nil; v = v.Via {
		via = append(via, fmt.Sprintf("%s@%s:%d", v.User, v.Address, v.Port))
	}
	if len(via) > 0 {
		slices.Reverse(via)
		s += " via " + strings.Join(via, " -> ")
	}
	return s
}

// hostLogins are the logins of each planned host, by role.
func hostLogins(rp runPlan, local bool) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, p := range rp.plans {
		for _, h := range p.Hosts {
			if out[h.Name] == nil {
				out[h.Name] = map[string]string{}
			}
			login := "local"
			if !local {
				login = loginOf(rp.hosts[hostKey{role: p.Role, host: h.Name}])
			}
			out[h.Name][p.Role.Name] = login
		}
	}
	return out
}

// inputDigest reads the local path full as a plan input.
func inputDigest(full string) (planInput, error) {
	in := planInput{Path: full}
	fi, err := os.Stat(full)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		in.Kind = "missing"
		return in, nil
	case err != nil:
		return in, err
	case fi.IsDir():
		in.Kind = "directory"
		h := sha256.New()
		err := filepath.WalkDir(full, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(full, p)
			info, err := d.Info()
			if err != nil {
				return err
			}
			sum := ""
			if info.Mode().IsRegular() {
				if sum, err = fileSHA256(p); err != nil {
					return err
				}
			} else if info.Mode()&fs.ModeSymlink != 0 {
				sum, _ = os.Readlink(p)
			}
			fmt.Fprintf(h, "%q %s %s\n", filepath.ToSlash(rel), info.Mode(), sum)
			return nil
		})
		if err != nil {
			return in, err
		}
		in.SHA256 = hex.EncodeToString(h.Sum(nil))
	default:
		in.Kind = "file"
		if in.SHA256, err = fileSHA256(full); err != nil {
			return in, err
		}
	}
	return in, nil
}

// fileSHA256 is the sha256 (hex) of the file at p.
func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// planInputs are the digests of the policy's files, the inventory (when
// it is a file or directory) and every path the run read, sorted.
func planInputs(s *session, invPath string, reads map[string]bool) ([]planInput, error) {
	paths := map[string]bool{}
	for _, f := range s.pol.Files {
		paths[f] = true
	}
	if invPath != "" && !isInlineHosts(invPath) {
		paths[invPath] = true
	}
	for p := range reads {
		paths[p] = true
	}
	var out []planInput
	for p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		in, err := inputDigest(abs)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", p, err)
		}
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return slices.CompactFunc(out, func(a, b planInput) bool { return a.Path == b.Path }), nil
}

// writePlan writes the plan check found to path (mode 0600, replaced
// atomically). Hosts that failed or were unreachable are listed as not
// planned.
func writePlan(path string, s *session, opts RunOptions, rp runPlan, rec *planRecorder, version string) error {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	sum := rec.sum
	if sum == nil || sum.Interrupted {
		return errors.New("the check was interrupted: no plan written")
	}
	abs, err := filepath.Abs(opts.Policy)
	if err != nil {
		return err
	}
	invPath := opts.Inventory
	if invPath == "" {
		invPath = s.pol.Inventory
	}
	pf := &planFile{Format: planFormat, Version: planVersion, Opsmop: version, Created: time.Now().UTC().Format(time.RFC3339),
		Policy: abs, Run: planRun{Inventory: opts.Inventory, Limit: opts.Limit, Slice: opts.Slice, Tags: opts.Tags, SkipTags: opts.SkipTags,
			Local: opts.Local, ForceHandlers: opts.ForceHandlers}}
	for k := range s.extra {
		pf.Run.ExtraVarKeys = append(pf.Run.ExtraVarKeys, k)
	}
	sort.Strings(pf.Run.ExtraVarKeys)
	if pf.Inputs, err = planInputs(s, invPath, rec.reads); err != nil {
		return err
	}
	logins := hostLogins(rp, s.local)
	for _, name := range sum.Order {
		st := sum.Hosts[name]
		if st.Failed > 0 || st.Unreachable > 0 {
			pf.NotPlanned = append(pf.NotPlanned, planSkip{Name: name, Error: st.Error})
			continue
		}
		pf.Hosts = append(pf.Hosts, &planHost{Name: name, Logins: logins[name], Resources: rec.hosts[name]})
	}
	data, err := json.MarshalIndent(pf, "", " ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".opsmop-plan-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(data, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// planError is a plan that cannot be used at all: nothing was contacted.
func planError(path string, format string, args ...any) error {
	return invalid(fmt.Errorf("plan %s: %s", path, fmt.Sprintf(format, args...)))
}

// readPlan reads and checks a plan file's format and version.
func readPlan(path string) (*planFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, invalid(fmt.Errorf("plan: %w", err))
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPlanSize+1))
	if err != nil {
		return nil, invalid(fmt.Errorf("plan %s: %w", path, err))
	}
	if len(data) > maxPlanSize {
		return nil, planError(path, "larger than %d MiB: not a plan opsmop wrote", maxPlanSize>>20)
	}
	var head struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil || head.Format != planFormat {
		return nil, planError(path, "not an opsmop plan (write one with opsmop check POLICY -o FILE)")
	}
	if head.Version != planVersion {
		return nil, planError(path, "plan format version %d, this opsmop reads version %d: make the plan again with this opsmop", head.Version, planVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var pf planFile
	if err := dec.Decode(&pf); err != nil {
		return nil, planError(path, "malformed: %v (was it edited? make the plan again)", err)
	}
	if pf.Policy == "" || !filepath.IsAbs(pf.Policy) {
		return nil, planError(path, "malformed: no absolute policy path")
	}
	sum := sha256.Sum256(data)
	pf.sha256 = hex.EncodeToString(sum[:])
	return &pf, nil
}

// isPlanFile reports whether the file at path is an opsmop plan (its
// JSON names the plan format); a policy never is.
func isPlanFile(path string) bool {
	if isPolicyFile(path) && !strings.HasSuffix(path, ".json") {
		return false
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head struct {
		Format string `json:"format"`
	}
	dec := json.NewDecoder(io.LimitReader(f, maxPlanSize))
	return dec.Decode(&head) == nil && head.Format == planFormat
}

// verifyInputs compares every input with what it is now; the error names
// each one that changed.
func (pf *planFile) verifyInputs(path string) error {
	var changed []string
	for _, in := range pf.Inputs {
		now, err := inputDigest(in.Path)
		switch {
		case err != nil:
			changed = append(changed, fmt.Sprintf("%s (cannot read it: %v)", in.Path, err))
		case now.Kind != in.Kind:
			changed = append(changed, fmt.Sprintf("%s (was a %s, now %s)", in.Path, in.Kind, now.Kind))
		case now.SHA256 != in.SHA256:
			changed = append(changed, in.Path)
		}
	}
	if len(changed) > 0 {
		return planError(path, "refused as a whole, nothing was contacted: these local files changed since the plan was made: %s; run check -o again to make a new plan", strings.Join(changed, ", "))
	}
	return nil
}

// describeChange is a resource's status and change in one line, for the
// messages that compare a plan with a host.
func describeChange(r *planResource) string {
	s := string(r.Status)
	if r.Status == engine.StatusOK {
		s = "no change"
	}
	if r.Change != nil && r.Change.Changed() {
		s = string(r.Change.Action)
		var parts []string
		for _, f := range r.Change.Fields {
			parts = append(parts, fmt.Sprintf("%s: %s -> %s", f.Name, f.Before, f.After))
		}
		if len(parts) > 0 {
			s += " (" + strings.Join(parts, "; ") + ")"
		}
	}
	if r.Error != "" {
		s += ": " + r.Error
	}
	return s
}

// compareHost compares what check finds on a host now (now) with the
// plan; the error names the first resource that differs and how.
func compareHost(planned, now []*planResource) error {
	byID := map[string]*planResource{}
	for _, r := range now {
		byID[r.ID] = r
	}
	seen := map[string]bool{}
	for _, p := range planned {
		seen[p.ID] = true
		n := byID[p.ID]
		switch {
		case n == nil:
			return fmt.Errorf("%s (%s): in the plan but not checked now", p.Resource, p.ID)
		case p.digest() == n.digest() && p.sensitive() && p.Fingerprint != n.Fingerprint:
			return fmt.Errorf("%s (%s): the host's state differs from when the plan was made (the resource is sensitive, so its change cannot be compared)", p.Resource, p.ID)
		case p.digest() != n.digest():
			return fmt.Errorf("%s (%s): the plan has %s; the host now needs %s", p.Resource, p.ID, describeChange(p), describeChange(n))
		}
	}
	for _, n := range now {
		if !seen[n.ID] {
			return fmt.Errorf("%s (%s): checked now but not in the plan", n.Resource, n.ID)
		}
	}
	return nil
}
