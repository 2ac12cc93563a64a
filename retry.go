package main

import (
	"bufio"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/opsmop/opsmop/engine"
)

// lastFailedPath is where a run of policyFile records the hosts that
// failed or were unreachable, for --retry-failed (like Ansible's retry
// files): one file per policy, ~/.opsmop/retry/BASENAME-HASH, where HASH
// is taken from the policy's absolute path, so that a run of one policy
// never replaces another policy's list.
func lastFailedPath(home, policyFile string) string {
	abs, err := filepath.Abs(policyFile)
	if err != nil {
		abs = policyFile
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(home, ".opsmop", "retry", fmt.Sprintf("%s-%x", filepath.Base(policyFile), sum[:6]))
}

// writeLastFailed records the failed and unreachable hosts of sum (an
// empty list when none failed). The file and its directory are private
// (0600/0700): host names can be sensitive too.
func writeLastFailed(home, policyFile string, sum *engine.Summary) error {
	var names []string
	for n, st := range sum.Hosts {
		if st.Failed > 0 || st.Unreachable > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	path := lastFailedPath(home, policyFile)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("record failed hosts: %w", err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# hosts that failed or were unreachable in the last %s of %s\n", sum.Mode, policyFile)
	for _, n := range names {
		b.WriteString(n + "\n")
	}
	tmp, err := os.CreateTemp(dir, ".last-failed-*")
	if err != nil {
		return fmt.Errorf("record failed hosts: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(b.String()); err != nil {
		tmp.Close()
		return fmt.Errorf("record failed hosts: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("record failed hosts: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("record failed hosts: %w", err)
	}
	return nil
}

// readLastFailed returns the hosts recorded by the previous run of
// policyFile.
func readLastFailed(home, policyFile string) ([]string, error) {
	p := lastFailedPath(home, policyFile)
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--retry-failed: %s does not exist: no check or apply of %s has been recorded yet", p, policyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("--retry-failed: %w", err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			names = append(names, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--retry-failed: %s: %w", p, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--retry-failed: the previous run (%s) had no failed or unreachable host", p)
	}
	return names, nil
}
