package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/internal/report"
	"github.com/opsmop/opsmop/internal/view"
)

// RecapOptions are the inputs of `opsmop recap`.
type RecapOptions struct {
	// Files are the --json streams to merge.
	Files []string
	// JSON prints the merged summary as one JSON summary event.
	JSON bool
	// DetailedExitcode makes pending changes of check streams exit 2.
	DetailedExitcode bool
}

// recapOptions is the flag layer of recap.
func recapOptions(c *cli.Context) (RecapOptions, error) {
	if c.Args().Len() == 0 {
		return RecapOptions{}, invalid(errors.New("recap: give the --json streams to merge (opsmop recap FILE...)"))
	}
	return RecapOptions{Files: c.Args().Slice(), JSON: c.Bool(flagJSON), DetailedExitcode: c.Bool(flagDetailedExitcode)}, nil
}

// recapStream is what recap reads of one --json stream.
type recapStream struct {
	file  string
	start struct {
		Mode         string `json:"mode"`
		Version      int    `json:"version"`
		Policy       string `json:"policy"`
		PolicySHA256 string `json:"policy_sha256"`
		Slice        string `json:"slice"`
		PlanSHA256   string `json:"plan_sha256"`
	}
	summary *engine.Summary
	slice   sliceSpec // zero without --slice
}

// maxEventLine bounds one event's line (a diff of a large file).
const maxEventLine = 64 << 20

// readStream reads a check or apply --json stream: run_start first,
// summary last, every line a JSON event.
func readStream(file string) (*recapStream, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st := &recapStream{file: file}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), maxEventLine)
	n := 0
	last := ""
	for sc.Scan() {
		n++
		var ev struct {
			Type    string          `json:"type"`
			Summary *engine.Summary `json:"summary"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil || ev.Type == "" {
			return nil, fmt.Errorf("%s:%d: not an opsmop --json event (the stream is cut or not one): %.60q", file, n, sc.Text())
		}
		if n == 1 {
			if ev.Type != "run_start" {
				return nil, fmt.Errorf("%s:1: the stream starts with a %s event, not run_start: not the --json output of check or apply (or its start is cut)", file, ev.Type)
			}
			_ = json.Unmarshal(sc.Bytes(), &st.start)
		} else if ev.Type == "run_start" {
			return nil, fmt.Errorf("%s:%d: a second run_start: two runs in one file; give each run's stream as its own file", file, n)
		}
		if ev.Type == "summary" {
			st.summary = ev.Summary
		} else if st.summary != nil {
			return nil, fmt.Errorf("%s:%d: an event after the summary", file, n)
		}
		last = ev.Type
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%s: empty: not the --json output of check or apply", file)
	case last != "summary" || st.summary == nil:
		return nil, fmt.Errorf("%s: truncated: it ends with a %s event, not the summary (the run did not finish, or the file was cut); run that slice again", file, last)
	case st.start.Version < 1 || st.start.PolicySHA256 == "":
		return nil, fmt.Errorf("%s: written by an older opsmop (stream version %d, no policy digest): recap needs streams of version %d or later", file, st.start.Version, view.StreamVersion)
	}
	if st.start.Slice != "" {
		sl, err := parseSlice(st.start.Slice)
		if err != nil {
			return nil, fmt.Errorf("%s: run_start: %w", file, err)
		}
		st.slice = sl
	}
	return st, nil
}

// mergeStreams checks that the streams are of one run (one mode, policy
// and plan; the slices of one N, each once, all there; a host in one
// stream only: report.CheckOneRun, the rules report shares) and merges
// their summaries.
func mergeStreams(streams []*recapStream) (*engine.Summary, error) {
	var ids []report.Identity
	for _, st := range streams {
		id := report.Identity{File: st.file, Mode: st.start.Mode, Policy: st.start.Policy, PolicySHA256: st.start.PolicySHA256,
			PlanSHA256: st.start.PlanSHA256, Slice: st.start.Slice, SliceK: st.slice.K, SliceN: st.slice.N}
		for name := range st.summary.Hosts {
			id.Hosts = append(id.Hosts, name)
		}
		ids = append(ids, id)
	}
	if err := report.CheckOneRun(ids); err != nil {
		return nil, err
	}
	sum := &engine.Summary{Mode: streams[0].start.Mode, Hosts: map[string]*engine.Stats{}}
	for _, st := range streams {
		for name, stats := range st.summary.Hosts {
			sum.Hosts[name] = stats
		}
		sum.Duration = max(sum.Duration, st.summary.Duration)
		sum.Interrupted = sum.Interrupted || st.summary.Interrupted
		for _, note := range st.summary.Notes {
			sum.Notes = append(sum.Notes, st.file+": "+note)
		}
	}
	for name := range sum.Hosts {
		sum.Order = append(sum.Order, name)
	}
	sort.Strings(sum.Order)
	for _, name := range sum.Order {
		st := sum.Hosts[name]
		sum.Total.OK += st.OK
		sum.Total.Changed += st.Changed
		sum.Total.Failed += st.Failed
		sum.Total.Skipped += st.Skipped
		sum.Total.Unreachable += st.Unreachable
		sum.Total.Ignored += st.Ignored
	}
	return sum, nil
}

// runRecap is `opsmop recap FILE...`: it merges the --json streams of the
// slices of one run into one recap and one exit code, the worst of them.
func runRecap(_ context.Context, env Env, o RecapOptions) error {
	var streams []*recapStream
	for _, f := range o.Files {
		st, err := readStream(f)
		if err != nil {
			return invalid(fmt.Errorf("recap: %w", err))
		}
		streams = append(streams, st)
	}
	sum, err := mergeStreams(streams)
	if err != nil {
		return invalid(fmt.Errorf("recap: %w", err))
	}
	kind := view.KindHuman
	if o.JSON {
		kind = view.KindJSON
	} else {
		var slices []string
		for _, st := range streams {
			if st.start.Slice != "" {
				slices = append(slices, st.start.Slice)
			}
		}
		what := fmt.Sprintf("%d stream(s)", len(streams))
		if len(slices) > 0 {
			what = fmt.Sprintf("%d slice(s) (%s)", len(slices), strings.Join(sortedSlices(slices), ", "))
		}
		fmt.Fprintf(env.Stdout, "recap of %s of %s %s\n", what, streams[0].start.Mode, streams[0].start.Policy)
	}
	rep := view.New(kind, env.Stdout, view.Options{})
	if !o.JSON {
		// The human recap table needs the run's mode.
		rep.RunStart(engine.RunStart{Mode: sum.Mode, Hosts: len(sum.Order)})
	}
	rep.Summary(sum)
	switch {
	case rep.Err() != nil:
		return &exitError{code: exitFailed, err: rep.Err()}
	case sum.Interrupted:
		return &exitError{code: exitInterrupted}
	case sum.Failed():
		return &exitError{code: exitFailed}
	case o.DetailedExitcode && sum.Mode == "check" && sum.Changed():
		return &exitError{code: exitPending}
	}
	return nil
}

// sortedSlices sorts "K/N" strings by K.
func sortedSlices(s []string) []string {
	out := slices.Clone(s)
	slices.SortFunc(out, func(a, b string) int {
		sa, _ := parseSlice(a)
		sb, _ := parseSlice(b)
		return sa.K - sb.K
	})
	return out
}
