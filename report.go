package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/opsmop/opsmop/internal/report"
)

// ReportOptions are the inputs of `opsmop report`.
type ReportOptions struct {
	// Files are the --json streams of one run (or of its slices).
	Files []string
	// Out is the HTML file written.
	Out string
}

// defaultReportFile is where report writes without -o.
const defaultReportFile = "report.html"

// reportOptions is the flag layer of report.
func reportOptions(c *cli.Context) (ReportOptions, error) {
	if c.Args().Len() == 0 {
		return ReportOptions{}, invalid(errors.New("report: give the --json streams of the run (opsmop report FILE... -o report.html)"))
	}
	if c.String(flagOut) == "" {
		return ReportOptions{}, invalid(errors.New("report: -o is empty: give the HTML file to write"))
	}
	return ReportOptions{Files: c.Args().Slice(), Out: c.String(flagOut)}, nil
}

// runReport is `opsmop report FILE...`: it reads the --json streams of
// one run (or of the slices of one run, as recap merges them), writes
// one self-contained HTML page and prints its path.
func runReport(_ context.Context, env Env, o ReportOptions) error {
	var streams []*report.Stream
	for _, f := range o.Files {
		st, err := report.ReadFile(f)
		if err != nil {
			return invalid(fmt.Errorf("report: %w", err))
		}
		streams = append(streams, st)
	}
	run, err := report.Merge(streams)
	if err != nil {
		return invalid(fmt.Errorf("report: %w", err))
	}
	var buf bytes.Buffer
	if err := report.Render(&buf, run); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := os.WriteFile(o.Out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	path, err := filepath.Abs(o.Out)
	if err != nil {
		path = o.Out
	}
	fmt.Fprintf(env.Stdout, "report of %d host(s) written to %s\n", len(run.Hosts), path)
	return nil
}
