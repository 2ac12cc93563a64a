package engine

// This file holds the scheduling of a run: roles in order, each role's
// hosts in serial batches (max_fail_percentage between batches), at most
// Forks hosts at once, and which roles and resources --tags and
// --skip-tags select.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/opsmop/opsmop/policy"
)

func (r *runner) runRole(ctx context.Context, p RoleHosts) {
	if len(p.Hosts) == 0 {
		return
	}
	if !r.roleSelected(p.Role) {
		return
	}
	var live []*hostState
	for _, h := range p.Hosts {
		if hs := r.hosts[h.Name]; !hs.stopped() {
			live = append(live, hs)
		}
	}
	batches := Batches(len(live), p.Role.Serial)
	start := 0
	for bi, size := range batches {
		if ctx.Err() != nil {
			return
		}
		batch := live[start : start+size]
		start += size
		if len(batches) > 1 {
			names := make([]string, len(batch))
			for i, hs := range batch {
				names[i] = hs.info.Name
			}
			r.o.Hooks.Notice(Notice{Role: p.Role.Name, Message: fmt.Sprintf("role %s: batch %d/%d: %s", p.Role.Name, bi+1, len(batches), strings.Join(names, ", "))})
		}
		r.runBatch(ctx, p.Role, batch)
		if mf := p.Role.MaxFailPercentage; mf != nil {
			failed := 0
			for _, hs := range batch {
				if hs.stopped() {
					failed++
				}
			}
			if pct := float64(failed) * 100 / float64(len(batch)); pct > *mf {
				msg := fmt.Sprintf("role %s stopped after batch %d/%d: %d of %d hosts failed (%.0f%% > max_fail_percentage %g%%)", p.Role.Name, bi+1, len(batches), failed, len(batch), pct, *mf)
				if rest := live[start:]; len(rest) > 0 {
					names := make([]string, len(rest))
					for i, hs := range rest {
						names[i] = hs.info.Name
					}
					msg += "; not run: " + strings.Join(names, ", ")
				}
				r.mu.Lock()
				r.notes = append(r.notes, msg)
				r.mu.Unlock()
				r.o.Hooks.Notice(Notice{Role: p.Role.Name, Message: msg})
				return
			}
		}
	}
}

// runBatch runs the role on the hosts of one batch, at most Forks at once.
func (r *runner) runBatch(ctx context.Context, role *policy.Role, batch []*hostState) {
	sem := make(chan struct{}, r.o.Forks)
	var wg sync.WaitGroup
	for _, hs := range batch {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			r.runHost(ctx, role, hs)
		}()
	}
	wg.Wait()
}

// Batches splits n hosts by a serial plan: each size of at least 1 host
// (policy.BatchSize.Of), the last one repeating until every host is
// placed. An empty plan is one batch of all hosts.
func Batches(n int, serial []policy.BatchSize) []int {
	if n == 0 {
		return nil
	}
	if len(serial) == 0 {
		return []int{n}
	}
	var out []int
	left := n
	for i := 0; left > 0; i++ {
		size := max(1, min(serial[min(i, len(serial)-1)].Of(n), left))
		out = append(out, size)
		left -= size
	}
	return out
}

// selected applies --tags/--skip-tags to a resource; it inherits its
// role's tags.
func (hr *hostRun) selected(res *policy.Resource) bool {
	return ResourceSelected(hr.r.o.Tags, hr.r.o.SkipTags, hr.role, res)
}

// roleSelected reports whether --tags/--skip-tags leave anything of role to
// run (RoleSelected).
func (r *runner) roleSelected(role *policy.Role) bool {
	return RoleSelected(r.o.Tags, r.o.SkipTags, role)
}

// RoleSelected reports whether --tags (only) and --skip-tags (skip) leave
// anything of role to run: a role is entered when one of its pre, main or
// post resources is selected (ResourceSelected), so a role's own tags
// never hide a resource whose tags match.
func RoleSelected(only, skip []string, role *policy.Role) bool {
	for _, list := range [][]*policy.Resource{role.Pre, role.Resources, role.Post} {
		for _, res := range list {
			if ResourceSelected(only, skip, role, res) {
				return true
			}
		}
	}
	return false
}

// ResourceSelected applies --tags (only) and --skip-tags (skip) to res,
// whose tags are its own plus its role's: a skipped tag anywhere excludes
// it; with --tags, one matching tag (or the tag "all") selects it.
func ResourceSelected(only, skip []string, role *policy.Role, res *policy.Resource) bool {
	tags := append(append([]string(nil), role.Tags...), res.Tags...)
	for _, t := range tags {
		if slices.Contains(skip, t) {
			return false
		}
	}
	if len(only) == 0 || slices.Contains(only, "all") {
		return true
	}
	for _, t := range tags {
		if slices.Contains(only, t) {
			return true
		}
	}
	return false
}
