package inventory

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opsmop/opsmop/internal/limitread"
)

// hostVarsWorkers bounds concurrent "--host NAME" runs of an inventory
// script whose --list output has no _meta.
const hostVarsWorkers = 4

// maxStderr is how much of a failing script's stderr goes into the error.
const maxStderr = 4096

// runScript runs an executable inventory with --list and reads its JSON.
func runScript(ctx context.Context, path string) (*Inventory, error) {
	abs, err := filepath.Abs(path) // never looked up in $PATH
	if err != nil {
		return nil, fmt.Errorf("inventory %s: %w", path, err)
	}
	out, err := runInventoryScript(ctx, abs, "--list")
	if err != nil {
		return nil, fmt.Errorf("inventory script %s: %w", path, err)
	}
	hostVars := func(host string) (map[string]any, error) {
		out, err := runInventoryScript(ctx, abs, "--host", host)
		if err != nil {
			return nil, fmt.Errorf("inventory script %s --host %s: %w", path, host, err)
		}
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		var raw any
		if err := dec.Decode(&raw); err != nil {
			return nil, fmt.Errorf("inventory script %s --host %s: %s", path, host, jsonErr(out, err))
		}
		vars, err := asTable(normalize(raw))
		if err != nil {
			return nil, fmt.Errorf("inventory script %s --host %s: output %v (an object of variables)", path, host, err)
		}
		return vars, nil
	}
	return parseAnsibleJSON(path+" --list output", out, false, hostVars)
}

// runInventoryScript runs path with args and returns its stdout. A failure
// (start error, non-zero exit, ctx done) is an error carrying stderr.
func runInventoryScript(ctx context.Context, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	// Output is bounded: stdout by MaxFileSize (beyond it the script's
	// pipe is closed and the run fails), stderr by keeping its first MiB.
	stdout := &limitread.Buffer{Max: MaxFileSize}
	stderr := &limitread.Buffer{Max: 1 << 20, Drop: true}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// Children of the script that keep its pipes open must not hang us
	// after ctx is done.
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if stdout.Over() {
		return nil, fmt.Errorf("printed more than the limit of %s of JSON; refusing it", limitread.FormatLimit(MaxFileSize))
	}
	if err == nil {
		return stdout.Bytes(), nil
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = fmt.Errorf("%w (%v)", ctxErr, err)
	}
	if msg := tail(stderr.String()); msg != "" {
		return nil, fmt.Errorf("%w; stderr: %s", err, msg)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return nil, fmt.Errorf("%w (no stderr output)", err)
	}
	return nil, err
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxStderr {
		s = "..." + s[len(s)-maxStderr:]
	}
	return s
}

// fetchHostVars calls get for every host, a few at a time, and returns the
// first error (in host order) if any call failed.
func fetchHostVars(hosts []string, get func(host string) (map[string]any, error)) (map[string]map[string]any, error) {
	vars := make([]map[string]any, len(hosts))
	errs := make([]error, len(hosts))
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < hostVarsWorkers && w < len(hosts); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				vars[i], errs[i] = get(hosts[i])
			}
		}()
	}
	for i := range hosts {
		next <- i
	}
	close(next)
	wg.Wait()
	out := make(map[string]map[string]any, len(hosts))
	for i, h := range hosts {
		if errs[i] != nil {
			return nil, errs[i]
		}
		out[h] = vars[i]
	}
	return out, nil
}
