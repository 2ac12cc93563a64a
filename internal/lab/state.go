package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stateFile is the name, inside the lab directory, of the record StopDir
// tears down from.
const stateFile = "state.json"

const stateVersion = 1

// tmpfsSource is the source name of the tmpfs Start mounts on a lab
// directory; StopDir only unmounts a tmpfs with this name.
const tmpfsSource = "opsmop-lab"

// state is what a fresh process needs to tear a lab down.
type state struct {
	Version int    `json:"version"`
	Dir     string `json:"dir"`
	// Tmpfs is true when the lab mounted a tmpfs on Dir.
	Tmpfs bool `json:"tmpfs,omitempty"`
	// RemoveParent is a directory to remove after Dir if it is empty.
	RemoveParent string      `json:"remove_parent,omitempty"`
	Hosts        []stateHost `json:"hosts"`
}

// stateHost identifies a host's first process so that a recycled PID is
// never signalled: the PID, its start time (jiffies after boot, field 22 of
// /proc/PID/stat) and its pid namespace.
type stateHost struct {
	Name      string `json:"name"`
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
	PIDNS     string `json:"pid_ns"`
}

func stateHostOf(pr *proc) stateHost {
	sh := stateHost{Name: pr.host.Name, PID: pr.host.PID}
	sh.StartTime, _, _ = procStat(sh.PID)
	sh.PIDNS, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", sh.PID))
	return sh
}

func writeState(dir string, st *state) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, stateFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("lab: write state: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateFile)); err != nil {
		return fmt.Errorf("lab: write state: %w", err)
	}
	return nil
}

// procStat returns the start time and state letter of pid.
func procStat(pid int) (start uint64, st byte, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0][0], err
}

// running reports whether the process recorded in h still exists and is not
// a zombie (same PID, same start time, same pid namespace).
func (h stateHost) running() bool {
	start, st, err := procStat(h.PID)
	if err != nil || start != h.StartTime || st == 'Z' || st == 'X' {
		return false
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.PID))
	return err == nil && ns == h.PIDNS
}

// StopDir tears down the lab recorded in dir, from any process: it kills
// each recorded host process that is still the same process (PID, start
// time and pid namespace match; never by name), waits for them to exit,
// unmounts what the lab mounted and removes dir. A missing dir is not an
// error; a dir without a lab state file is, and is left alone.
func StopDir(dir string) error {
	dir = filepath.Clean(dir)
	st, err := readState(dir)
	if errors.Is(err, os.ErrNotExist) {
		if _, serr := os.Stat(dir); errors.Is(serr, os.ErrNotExist) {
			return nil
		}
		// Start records the state before mounting the lab's tmpfs: if it
		// died in between, the record is below the (empty) tmpfs.
		if !isLabTmpfs(dir) {
			return fmt.Errorf("lab: %s has no %s, so it is not a lab directory (or it is already half removed); not touching it", dir, stateFile)
		}
		if err := unix.Unmount(dir, 0); err != nil {
			return fmt.Errorf("lab: unmount the tmpfs on %s: %w", dir, err)
		}
		st, err = readState(dir)
	}
	if err != nil {
		return err
	}
	for _, h := range st.Hosts {
		if h.running() {
			if err := syscall.Kill(h.PID, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("lab: host %s: kill pid %d: %w", h.Name, h.PID, err)
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, h := range st.Hosts {
		for h.running() {
			if time.Now().After(deadline) {
				return fmt.Errorf("lab: host %s (pid %d) still running 10s after SIGKILL", h.Name, h.PID)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if st.Tmpfs && isLabTmpfs(dir) {
		if err := unix.Unmount(dir, 0); err != nil {
			if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
				return fmt.Errorf("lab: unmount the tmpfs on %s: %w", dir, err)
			}
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("lab: remove %s: %w", dir, err)
	}
	if st.RemoveParent != "" {
		_ = os.Remove(st.RemoveParent) // fails while other labs live there
	}
	return nil
}

// readState reads and checks dir's state file.
func readState(dir string) (*state, error) {
	p := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("lab: %s: %w", p, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("lab: %s: state version %d, want %d", p, st.Version, stateVersion)
	}
	return &st, nil
}

// mountEntry is one line of /proc/self/mountinfo.
type mountEntry struct {
	point, fstype, source string
}

func mountTable() ([]mountEntry, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []mountEntry
	for _, line := range strings.Split(string(b), "\n") {
		// id parent maj:min root mountpoint opts [optional...] - fstype source superopts
		f := strings.Fields(line)
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || len(f) < sep+3 {
			continue
		}
		out = append(out, mountEntry{point: unescapeMount(f[4]), fstype: f[sep+1], source: f[sep+2]})
	}
	return out, nil
}

// isLabTmpfs reports whether dir is the mount point of a tmpfs the lab
// mounted (source tmpfsSource).
func isLabTmpfs(dir string) bool {
	mt, _ := mountTable()
	for _, m := range mt {
		if m.point == dir && m.fstype == "tmpfs" && m.source == tmpfsSource {
			return true
		}
	}
	return false
}

// foreignMounts lists the mount points a new host should drop from its copy
// of the controller's mount table: other labs' directories and named
// network namespaces. Covered by the host's own /run they would be
// invisible, yet keep those tmpfs and namespaces alive until the host dies.
func foreignMounts(own string) []string {
	mt, _ := mountTable()
	var out []string
	for _, m := range mt {
		if m.point == own || strings.HasPrefix(m.point, own+"/") {
			continue
		}
		if strings.HasPrefix(m.point, DefaultBase+"/") || strings.HasPrefix(m.point, "/run/netns/") {
			out = append(out, m.point)
		}
	}
	return out
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space, ...).
func unescapeMount(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
