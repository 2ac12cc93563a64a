package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/engine"
	"github.com/opsmop/opsmop/inventory"
)

// sliceSpec is --slice K/N: the K-th of N disjoint parts of the selected
// hosts, so that N processes (on N machines) each take one.
type sliceSpec struct {
	K, N int
}

// String is "K/N".
func (s sliceSpec) String() string { return fmt.Sprintf("%d/%d", s.K, s.N) }

// maxSlices bounds N: more slices than that is a typo, not a fleet.
const maxSlices = 100000

// parseSlice reads "K/N" (1 <= K <= N).
func parseSlice(v string) (sliceSpec, error) {
	ks, ns, ok := strings.Cut(v, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	switch {
	case !ok || err1 != nil || err2 != nil:
		return sliceSpec{}, fmt.Errorf("--slice %q: want K/N, e.g. --slice 2/4 for the second of four slices", v)
	case n < 1 || n > maxSlices:
		return sliceSpec{}, fmt.Errorf("--slice %q: the number of slices must be 1 to %d", v, maxSlices)
	case k < 1 || k > n:
		return sliceSpec{}, fmt.Errorf("--slice %q: the slice must be 1 to %d", v, n)
	}
	return sliceSpec{K: k, N: n}, nil
}

// members returns the names of the hosts in the slice: hosts sorted by
// name (so the inventory's order does not matter), the i-th (from 0) is
// in slice i mod N + 1. Slices are disjoint, together hold every host,
// and their sizes differ by at most one. A host's slice depends on the
// names of all the hosts: adding or removing one may move others.
func (s sliceSpec) members(hosts []*inventory.Host) map[string]bool {
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		names = append(names, h.Name)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	in := map[string]bool{}
	for i, n := range names {
		if i%s.N+1 == s.K {
			in[n] = true
		}
	}
	return in
}

// runInfo identifies a policy run in its run_start event: the policy's
// absolute path and digest, and the slice.
func (s *session) runInfo() engine.RunInfo {
	var info engine.RunInfo
	if s.pol != nil && s.pol.File != "" {
		info.Policy, _ = filepath.Abs(s.pol.File)
		h := sha256.New()
		for _, f := range s.pol.Files {
			b, err := os.ReadFile(f)
			if err != nil {
				b = []byte("unreadable: " + err.Error())
			}
			// Names relative to the policy's directory: slices run from
			// checkouts in other places still agree.
			name, err := filepath.Rel(s.pol.Dir, f)
			if err != nil {
				name = f
			}
			fmt.Fprintf(h, "%s %d\n", filepath.ToSlash(name), len(b))
			h.Write(b)
		}
		info.PolicySHA256 = hex.EncodeToString(h.Sum(nil))
	}
	if s.slice != nil {
		info.Slice = s.slice.String()
	}
	return info
}
