package engine

// This file turns a policy resource into its instances on one host: the
// variable scope, loop items, when, rendering of every templated value,
// and the providers.Request the provider works from.

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/opsmop/opsmop/connection"
	"github.com/opsmop/opsmop/policy"
	"github.com/opsmop/opsmop/providers"
)

// scope builds the variables visible to one resource instance, lowest to
// highest: policy < inventory < role (hr.base) < resource vars < registered
// < extra vars; then the read-only facts and host namespaces, and item.
func (hr *hostRun) scope(resVars map[string]any, item any) map[string]any {
	s := mergeVars(hr.base, resVars, hr.hs.registered, hr.r.o.ExtraVars)
	s["facts"] = map[string]any(hr.hs.facts)
	s["host"] = map[string]any{"name": hr.hs.info.Name, "address": hr.hs.info.Address, "groups": hr.hs.info.Groups}
	if item != nil {
		s["item"] = item
	}
	return s
}

func mergeVars(layers ...map[string]any) map[string]any {
	n := 0
	for _, l := range layers {
		n += len(l)
	}
	out := make(map[string]any, n+3)
	for _, l := range layers {
		for k, v := range l {
			out[k] = v
		}
	}
	return out
}

// instance is one resource (one loop item) rendered for one host. Its req
// is built once (with its own providers.Memo) and kept for the instance's
// probe, check, apply, retries and re-check: providers keep what they
// compute once (a rendered template) in that Memo, so req must not be
// rebuilt for any of them.
type instance struct {
	// What expansion made of the resource on this host:
	orig    *policy.Resource // as written
	res     *policy.Resource // rendered
	label   string
	typ     string
	scope   map[string]any
	prov    providers.Provider
	req     *providers.Request
	probe   string // the probe script; "" when there is nothing to probe
	err     error  // expansion failed: the instance fails with it
	skip    string // why the instance is skipped (when is false), or ""
	handler bool

	// Where the instance is in its run: its latest probe result, and the
	// action its last apply performed.
	run instanceRun
	// id is ResourceResult.ID.
	id string
}

// instanceRun is an instance's run state, apart from what expansion made.
type instanceRun struct {
	probed     bool              // result is fresh: no change since the probe
	everProbed bool              // some probe result was taken (or reused)
	result     connection.Result // the latest probe result
	lastAction providers.Action
	// gen is the host run's gen when result was read; drifts counts the
	// failed guards of the pipelined apply (pipeline.go).
	gen, drifts int
}

// expand turns one policy resource into its instances for this host; id
// is the resource's ResourceResult.ID (loop items add "#I").
func (hr *hostRun) expand(res *policy.Resource, handler bool, id string) []*instance {
	reg := hr.r.o.Registry
	baseLabel := res.DefaultLabel(reg)
	scope := hr.scope(res.Vars, nil)
	items := []any{nil}
	if res.Loop != nil {
		list, err := hr.loopItems(res.Loop, scope)
		if err != nil {
			return []*instance{{orig: res, label: baseLabel, typ: res.Type, err: fmt.Errorf("%s: loop: %w", res.KeyPos("loop"), err), handler: handler, id: id}}
		}
		items = list
	}
	out := make([]*instance, 0, len(items))
	for i, item := range items {
		in := &instance{orig: res, label: baseLabel, typ: res.Type, handler: handler, id: id}
		if res.Loop != nil {
			in.id = fmt.Sprintf("%s#%d", id, i)
		}
		out = append(out, in)
		in.scope = scope
		if item != nil {
			in.scope = hr.scope(res.Vars, item)
			in.label = fmt.Sprintf("%s (item=%v)", baseLabel, item)
		}
		if res.When != "" {
			ok, err := hr.r.o.Eval.EvalBool(res.When, in.scope)
			if err != nil {
				in.err = fmt.Errorf("%s: when: %w", res.KeyPos("when"), err)
				continue
			}
			if !ok {
				in.skip = "when is false: " + res.When
				continue
			}
		}
		rendered, err := res.Render(reg, func(s string) (string, error) { return hr.r.o.Eval.RenderString(s, in.scope) })
		if err != nil {
			in.err = err
			continue
		}
		in.res = rendered
		if item == nil {
			in.label = rendered.DefaultLabel(reg)
		} else {
			in.label = fmt.Sprintf("%s (item=%v)", rendered.DefaultLabel(reg), item)
		}
		p, ok := hr.r.o.Lookup(res.Type)
		if !ok {
			in.err = fmt.Errorf("no provider for resource type %q", res.Type)
			continue
		}
		in.prov = p
		in.req = hr.request(rendered, in.scope)
		probe, err := safeProbe(p, in.req)
		if err != nil {
			in.err = err
			continue
		}
		in.probe = probe
	}
	return out
}

// loopItems returns the items of a resource's loop for this host: the
// literal list, or what the expression gives (a list; a map becomes its
// {key, value} pairs in key order).
func (hr *hostRun) loopItems(loop *policy.Loop, scope map[string]any) ([]any, error) {
	if loop.Items != nil {
		return loop.Items, nil
	}
	v, err := hr.r.o.Eval.Eval(loop.Expr, scope)
	if err != nil {
		return nil, err
	}
	switch vv := v.(type) {
	case []any:
		return vv, nil
	case []string:
		out := make([]any, len(vv))
		for i, s := range vv {
			out[i] = s
		}
		return out, nil
	case map[string]any:
		keys := make([]string, 0, len(vv))
		for k := range vv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]any, len(keys))
		for i, k := range keys {
			out[i] = map[string]any{"key": k, "value": vv[k]}
		}
		return out, nil
	}
	return nil, fmt.Errorf("expression %q gives %T, want a list", loop.Expr, v)
}

func (hr *hostRun) request(res *policy.Resource, scope map[string]any) *providers.Request {
	ev := hr.r.o.Eval
	dir := hr.r.o.Policy.Dir
	return &providers.Request{
		Spec:  res.Spec,
		Facts: hr.hs.facts,
		Memo:  new(providers.Memo),
		Eval: func(e string, extra map[string]any) (any, error) {
			return ev.Eval(e, mergeVars(scope, extra))
		},
		Render:   func(p string) ([]byte, error) { return ev.RenderFile(p, scope) },
		Progress: hr.uploadProgress(res),
		Sum: func(p string) (string, int64, error) {
			full, err := LocalPath(dir, p)
			if err != nil {
				return "", 0, err
			}
			if on := hr.r.o.OnLocalRead; on != nil {
				on(full)
			}
			return hr.r.sums.sum(full)
		},
		Open: func(p string) (io.ReadCloser, int64, error) {
			full, err := LocalPath(dir, p)
			if err != nil {
				return nil, 0, err
			}
			if on := hr.r.o.OnLocalRead; on != nil {
				on(full)
			}
			f, err := os.Open(full)
			if err != nil {
				return nil, 0, err
			}
			fi, err := f.Stat()
			if err != nil {
				f.Close()
				return nil, 0, err
			}
			return f, fi.Size(), nil
		},
	}
}

// uploadProgress reports the progress of res's upload to the hooks.
func (hr *hostRun) uploadProgress(res *policy.Resource) func(written, total int64) {
	label := res.DefaultLabel(hr.r.o.Registry)
	return func(written, total int64) {
		hr.r.o.Hooks.Upload(UploadProgress{Host: hr.hs.info.Name, Resource: label, Written: written, Total: total})
	}
}
