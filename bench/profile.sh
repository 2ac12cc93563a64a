#!/usr/bin/env bash
# bench/profile.sh — where does a W1 no-op run of opsmop spend its time?
# (docs/benchmarks.md, "Profile"). Starts a 3-host lab (subnet 83), applies
# W1 once, then for one opsmop no-op run and for the floor (one `ssh HOST
# sh` with the 20 checks), and for one first apply from a clean state,
# reports:
#   * wall time, and opsmop's own CPU time (user+sys, from /usr/bin/time),
#   * every program the run executed on the hosts (strace -f -e execve on
#     each host's sshd, which is pid 1 of the host), counted per program,
#   * a perf profile of opsmop itself (perf record), when perf is installed.
#   * W1's probe scripts alone, today's and the proposed ones
#     (bench/probes/), timed inside a host with plain sh,
#   * the round trips of one no-op run on one host, burst by burst
#     (bench/latencyproxy -bursts, no added delay).
# Root only. Knob: BENCH_PROFILE_RUNS=3 (untraced no-op runs timed).
set -euo pipefail
cd "$(dirname "$0")/.."
# The output also goes to bench/results/ (PROFILE_OUT to choose the file).
OUT=${PROFILE_OUT:-bench/results/profile-$(date -u +%Y%m%dT%H%M%SZ).txt}
mkdir -p "$(dirname "$OUT")"
exec > >(tee "$OUT") 2>&1
echo "bench/profile.sh, $(date -u '+%F %T') UTC, git $(git rev-parse --short HEAD 2>/dev/null)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'), load $(cut -d' ' -f1-3 /proc/loadavg)"
REPO=$PWD
export PATH="/usr/local/go/bin:$PATH"
export LC_ALL=C.UTF-8
RUNS=${BENCH_PROFILE_RUNS:-3}
[ "$(id -u)" = 0 ] || { echo "profile: needs root (lab hosts in namespaces)" >&2; exit 1; }
command -v strace >/dev/null || { echo "profile: needs strace (apt-get install strace)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/opsmop-profile.XXXXXX)
LAB=/run/opsmop-lab/bench-profile
BG_PIDS=()
cleanup() {
  set +e
  for p in "${BG_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  "$REPO/bin/opsmop-lab" down --dir "$LAB" >/dev/null 2>&1
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o bin/opsmop . && go build -o bin/opsmop-lab ./internal/lab/cmd/opsmop-lab
bin/opsmop-lab down --dir "$LAB" >/dev/null 2>&1 || true
bin/opsmop-lab up --dir "$LAB" --subnet 83 --hosts p1:bench,p2:bench,p3:bench >"$WORK/lab.log"
mkdir -p "$WORK/home/.ssh"
cp "$LAB/known_hosts" "$WORK/home/.ssh/known_hosts"
ops() { env -u SSH_AUTH_SOCK HOME="$WORK/home" bin/opsmop apply bench/w1/site.toml -i "$LAB/inventory.toml" --forks 3 "$@"; }
ops >/dev/null
pids=$(sed -n 's/.*"pid": \([0-9]*\),/\1/p' "$LAB/state.json")
hosts=$(sed -n 's/^"\([^"]*\)" = "opsmop_host=\([^ ]*\) opsmop_port=\([0-9]*\)"$/\1 \2 \3/p' "$LAB/inventory.toml")

# The floor's checks, as bench/run.sh writes them.
while read -r h a p; do
  {
    echo 'rc=0'
    for i in 1 2 3 4 5; do echo "[ -d /srv/bench$i ] && [ \"\$(stat -c %a /srv/bench$i)\" = 755 ] || rc=1"; done
    for f in 1 2 3 4 5 6 7 8 9 10; do
      d=$(((f + 1) / 2)); pth=/srv/bench$d/f$f.conf
      sum=$(printf 'bench file %s on %s\n' "$f" "$h" | sha256sum | cut -d' ' -f1)
      echo "[ -f $pth ] && [ \"\$(sha256sum <$pth)\" = '$sum  -' ] && [ \"\$(stat -c %a $pth)\" = 644 ] || rc=1"
    done
    for i in 1 2 3 4 5; do echo "grep -qxF '10.99.0.$i bench$i.internal' /etc/hosts || rc=1"; done
    echo 'exit $rc'
  } >"$WORK/$h.sh"
done <<<"$hosts"
floor() {
  local h a p pids=() pid rc=0
  while read -r h a p; do
    ssh -F none -i "$LAB/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB/known_hosts" -o BatchMode=yes \
      -o StrictHostKeyChecking=yes -p "$p" "root@$a" sh <"$WORK/$h.sh" &
    pids+=($!)
  done <<<"$hosts"
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

echo "== untraced, $RUNS runs each (seconds; opsmop: wall, user+sys of opsmop itself)"
for ((i = 1; i <= RUNS; i++)); do
  /usr/bin/time -f "opsmop no-op: %e s wall, %U+%S s CPU in opsmop, %M KB max RSS" -o "$WORK/t" \
    env -u SSH_AUTH_SOCK HOME="$WORK/home" bin/opsmop apply bench/w1/site.toml -i "$LAB/inventory.toml" --forks 3 >/dev/null
  cat "$WORK/t"
  t0=$EPOCHREALTIME; floor; t1=$EPOCHREALTIME
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "floor:        %.2f s wall\n", b - a }'
done

# trace NAME CMD...: runs CMD with every host's sshd traced, then counts
# the programs executed on each host.
trace() {
  local name=$1 pid
  shift
  BG_PIDS=()
  for pid in $pids; do
    strace -f -qq -e trace=execve,exit_group -e signal=none -o "$WORK/$name.$pid" -p "$pid" &
    BG_PIDS+=($!)
  done
  sleep 1 # let strace attach
  "$@" >/dev/null
  sleep 0.5
  for pid in "${BG_PIDS[@]}"; do kill "$pid"; wait "$pid" 2>/dev/null || true; done
  BG_PIDS=()
  echo "-- $name: processes started and programs executed per host (strace -f on the host's sshd)"
  for pid in $pids; do
    # Every line starts with the pid of the process making the call: the
    # distinct pids, less the sshd traced, are the processes the run made.
    printf '   host pid %-7s %4d processes, %4d execs: ' "$pid" \
      "$(($(awk '{ print $1 }' "$WORK/$name.$pid" | sort -u | wc -l) - 1))" "$(grep -c 'execve(' "$WORK/$name.$pid" | tr -d ' ')"
    grep -o 'execve("[^"]*"' "$WORK/$name.$pid" | sed 's/execve("//; s/"$//; s|.*/||' | sort | uniq -c | sort -rn |
      awk '{ printf "%s%s=%s", s, $2, $1; s = " " } END { print "" }'
  done
}
reset() {
  local h a p
  while read -r h a p; do
    ssh -F none -i "$LAB/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB/known_hosts" -o BatchMode=yes \
      -o StrictHostKeyChecking=yes -p "$p" "root@$a" \
      'rm -rf /srv/bench1 /srv/bench2 /srv/bench3 /srv/bench4 /srv/bench5 && sed -i "/ bench[0-9]*\.internal\$/d" /etc/hosts' </dev/null
  done <<<"$hosts"
}
echo
echo "== traced (strace slows the hosts; look at the counts, not the times)"
trace opsmop-noop ops
trace floor floor
reset
trace opsmop-first-apply ops

# The probe scripts alone, timed inside host 1 with plain sh (no SSH, no
# opsmop framing): W1's probes before 0bd4bdb, the equivalent of today's
# (hand-written, bench/probes/),
# and the floor's checks.
ssh1() {
  local h a p
  read -r h a p <<<"$(head -1 <<<"$hosts")"
  ssh -F none -i "$LAB/id_ed25519" -o IdentitiesOnly=yes -o UserKnownHostsFile="$LAB/known_hosts" -o BatchMode=yes \
    -o StrictHostKeyChecking=yes -p "$p" "root@$a" "$@"
}
ops >/dev/null # back to the applied state
ssh1 'cat >/root/old-w1.sh' <bench/probes/old-w1.sh
ssh1 'cat >/root/proposed-w1.sh' <bench/probes/proposed-w1.sh
ssh1 'cat >/root/floor-w1.sh' <"$WORK/$(head -1 <<<"$hosts" | cut -d' ' -f1).sh"
echo
echo "== W1's 20 probes alone, run with sh inside $(head -1 <<<"$hosts" | cut -d' ' -f1) (milliseconds, 3 runs each)"
ssh1 'for s in old-w1 proposed-w1 floor-w1; do printf "   %-12s" "$s"; for i in 1 2 3; do
  t0=$(date +%s%N); sh /root/$s.sh >/dev/null 2>&1; t1=$(date +%s%N); printf " %6d" $(((t1 - t0) / 1000000)); done; echo; done'

# The round trips of one no-op run on one host, burst by burst, through
# bench/latencyproxy without added delay (c = client->server, s =
# server->client, bytes@seconds since connect).
go build -o "$WORK/latencyproxy" ./bench/latencyproxy
read -r h1 a1 p1 <<<"$(head -1 <<<"$hosts")"
key=$(awk -v a="$a1" -v p="$p1" '$1 == a || $1 == "[" a "]:" p { print $2, $3; exit }' "$LAB/known_hosts")
mkdir -p "$WORK/phome/.ssh"
echo "[127.88.0.1]:2222 $key" >"$WORK/phome/.ssh/known_hosts"
printf '[groups.bench.hosts]\n"%s" = "opsmop_host=127.88.0.1 opsmop_port=2222"\n[groups.all.vars]\nopsmop_ssh_username = "root"\nopsmop_ssh_private_key = "%s"\n' \
  "$h1" "$LAB/id_ed25519" >"$WORK/pinv.toml"
"$WORK/latencyproxy" -ssh -bursts -delay 0 -log "$WORK/bursts.log" -route "$h1,127.88.0.1:2222,$a1:$p1" >"$WORK/proxy.out" 2>&1 &
PROXY=$!
BG_PIDS+=("$PROXY")
for ((i = 0; i < 100; i++)); do grep -q ready "$WORK/proxy.out" && break; sleep 0.05; done
env -u SSH_AUTH_SOCK HOME="$WORK/phome" bin/opsmop apply bench/w1/site.toml -i "$WORK/pinv.toml" >/dev/null
for ((i = 0; i < 100; i++)); do [ -s "$WORK/bursts.log" ] && break; sleep 0.05; done
echo
echo "== one no-op run on $h1, burst by burst (latencyproxy -bursts, no delay)"
sed 's/ bursts=.*//' "$WORK/bursts.log"
sed 's/.* bursts=//' "$WORK/bursts.log" | tr ',' '\n' | awk '{ printf "%s%s", (NR % 2 ? "   " : "  "), $0; if (NR % 2 == 0) print "" } END { if (NR % 2) print "" }'

if command -v perf >/dev/null; then
  echo
  echo "== perf record of opsmop itself during one no-op run (top 15 symbols by samples)"
  perf record -q -F 999 -o "$WORK/perf.data" -- env -u SSH_AUTH_SOCK HOME="$WORK/home" bin/opsmop apply bench/w1/site.toml -i "$LAB/inventory.toml" --forks 3 >/dev/null 2>"$WORK/perf.err" || cat "$WORK/perf.err"
  perf report -q -i "$WORK/perf.data" --no-children -g none --sort dso,symbol --stdio >"$WORK/perf.txt" 2>/dev/null || true
  grep -v '^$' "$WORK/perf.txt" | sed -n 1,15p
  perf report -i "$WORK/perf.data" --stdio >"$WORK/perf-head.txt" 2>/dev/null || true
  echo "   samples in all: $(sed -n 's/^# Samples: \([^ ]*\) .*/\1/p' "$WORK/perf-head.txt" | sed -n 1p) at 999 Hz"
fi
