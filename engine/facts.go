package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/opsmop/opsmop/providers"
)

// factsScript gathers every fact in one round trip. It only reads, and
// it uses shell builtins and /proc where it can: every fork costs
// milliseconds on a busy host, and facts are gathered on every host of
// every run. (Each command runs in its own sh, so sourcing os-release
// here pollutes nothing.)
const factsScript = `h=; { read -r h </proc/sys/kernel/hostname; } 2>/dev/null || h=$(uname -n)
printf 'hostname=%s\n' "$h"
printf 'fqdn=%s\n' "$(hostname -f 2>/dev/null || printf %s "$h")"
if [ -r /etc/os-release ]; then
  . /etc/os-release; printf 'os_id=%s\nos_like=%s\nos_version=%s\n' "$ID" "$ID_LIKE" "$VERSION_ID"
elif [ -r /etc/alpine-release ]; then read -r v </etc/alpine-release; printf 'os_id=alpine\nos_version=%s\n' "$v"
elif [ -r /etc/redhat-release ]; then printf 'os_id=rhel\n'
fi
k=; { read -r k </proc/sys/kernel/osrelease; } 2>/dev/null || k=$(uname -r)
printf 'kernel=%s\narch=%s\n' "$k" "$(uname -m)"
n=0
if { read -r on </sys/devices/system/cpu/online; } 2>/dev/null; then
  IFS=,; for r in $on; do a=${r%-*}; b=${r#*-}; n=$((n + b - a + 1)); done; unset IFS
else n=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
fi
printf 'cpus=%s\n' "$n"
while read -r key val _; do
  if [ "$key" = MemTotal: ]; then printf 'memory_mb=%d\n' $((val / 1024)); break; fi
done </proc/meminfo 2>/dev/null
for m in apt-get dnf yum apk pacman zypper; do
  if command -v $m >/dev/null 2>&1; then printf 'pkg=%s\n' $m; break; fi
done
if [ -d /run/systemd/system ]; then printf 'init=systemd\n'
elif command -v openrc >/dev/null 2>&1 || [ -x /sbin/openrc-run ]; then printf 'init=openrc\n'
else printf 'init=sysv\n'
fi
printf 'user=%s\n' "$(id -un)"
`

// Facts are the gathered facts of one host, as seen by expressions and
// templates under facts.*.
type Facts map[string]any

// GatherFacts runs the facts script on h: one round trip.
func GatherFacts(ctx context.Context, h providers.Host) (Facts, error) {
	res, err := h.Run(ctx, factsScript, nil)
	if err != nil {
		return nil, fmt.Errorf("gather facts: %w", err)
	}
	if res.ExitCode != 0 {
		return nil, fmt.Errorf("gather facts: exit status %d: %s", res.ExitCode, strings.TrimSpace(string(res.Stderr)))
	}
	return ParseFacts(res.Stdout), nil
}

// ParseFacts turns the facts script's output into Facts.
func ParseFacts(out []byte) Facts {
	raw := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok {
			raw[k] = v
		}
	}
	f := Facts{
		"hostname":       raw["hostname"],
		"fqdn":           raw["fqdn"],
		"distro":         raw["os_id"],
		"distro_version": raw["os_version"],
		"os_family":      osFamily(raw["os_id"], raw["os_like"]),
		"kernel":         raw["kernel"],
		"arch":           raw["arch"],
		"init_system":    raw["init"],
		"user":           raw["user"],
	}
	f["cpus"], _ = strconv.Atoi(raw["cpus"])
	f["memory_mb"], _ = strconv.Atoi(raw["memory_mb"])
	switch raw["pkg"] {
	case "apt-get":
		f["pkg_manager"] = "apt"
	default:
		f["pkg_manager"] = raw["pkg"]
	}
	return f
}

func osFamily(id, like string) string {
	for _, w := range append([]string{id}, strings.Fields(like)...) {
		switch w {
		case "debian", "ubuntu", "raspbian", "linuxmint":
			return "debian"
		case "rhel", "fedora", "centos", "rocky", "almalinux", "ol", "amzn":
			return "redhat"
		case "alpine":
			return "alpine"
		case "arch", "manjaro":
			return "arch"
		case "suse", "opensuse", "sles", "opensuse-leap":
			return "suse"
		}
	}
	if id == "" {
		return "unknown"
	}
	return id
}
