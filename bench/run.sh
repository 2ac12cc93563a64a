#!/usr/bin/env bash
# bench/run.sh — `make bench`: opsmop against Ansible (and against plain
# ssh/scp as the floor) on the same lab hosts in the same run. See
# docs/benchmarks.md for what each workload is and how to read the table.
#
# Needs root (the lab starts sshd hosts in Linux namespaces) on a
# Debian/Ubuntu machine; installs the Debian packages it needs (the lab's,
# and ansible) with apt-get when they are missing.
#
# Knobs (environment):
#   BENCH_REPS=5              repetitions of every measurement
#   BENCH_ANSIBLE_REPS=REPS   repetitions of Ansible's measurements (W1, W3, W4, W5)
#   BENCH_W2_ANSIBLE_REPS=1   repetitions of Ansible on W2 (50 hosts; one run is minutes)
#   BENCH_WORKLOADS="w1 w5 w4 w3 w2"   which workloads, in this order
#   BENCH_W2_HOSTS=50  BENCH_W3_HOSTS=10  BENCH_W4_MB=200  BENCH_DELAY=12.5ms (W5, W6, per direction)
#   BENCH_W6_FILES=2000       files in W6's tree
#   BENCH_W7_HOSTS=200        hosts of W7 (issue 17's "W6": forks 50/200, 4 slices, recap)
#   BENCH_OUT=bench/results/bench-<UTC time>.txt   where the raw output is saved
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
export PATH="/usr/local/go/bin:$PATH"
export LC_ALL=C.UTF-8 # Ansible refuses other encodings; C.UTF-8 keeps "." as the decimal point

REPS=${BENCH_REPS:-5}
ANSIBLE_REPS=${BENCH_ANSIBLE_REPS:-$REPS}
W2_ANSIBLE_REPS=${BENCH_W2_ANSIBLE_REPS:-1}
WORKLOADS=${BENCH_WORKLOADS:-"w1 w5 w6 w4 w3 w2 w7"}
W2_HOSTS=${BENCH_W2_HOSTS:-50}
W3_HOSTS=${BENCH_W3_HOSTS:-10}
W4_MB=${BENCH_W4_MB:-200}
W6_FILES=${BENCH_W6_FILES:-2000}
W7_HOSTS=${BENCH_W7_HOSTS:-200}
DELAY=${BENCH_DELAY:-12.5ms}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${BENCH_OUT:-bench/results/bench-$STAMP.txt}

if [ "$(id -u)" != 0 ]; then
  echo "bench: the lab starts sshd hosts in Linux namespaces and needs root: sudo make bench" >&2
  exit 1
fi
for v in REPS ANSIBLE_REPS W2_ANSIBLE_REPS W2_HOSTS W3_HOSTS W4_MB W6_FILES W7_HOSTS; do
  case ${!v} in '' | *[!0-9]*) echo "bench: BENCH_$v=${!v}: want a whole number" >&2; exit 1 ;; esac
done
[ "$REPS" -ge 1 ] || { echo "bench: BENCH_REPS must be at least 1" >&2; exit 1; }
for w in $WORKLOADS; do
  case $w in w1 | w2 | w3 | w4 | w5 | w6 | w7) ;; *) echo "bench: BENCH_WORKLOADS: unknown workload $w (w1..w7)" >&2; exit 1 ;; esac
done

mkdir -p "$(dirname "$OUT")"
# Everything printed from here on is also saved in $OUT.
exec > >(tee "$OUT") 2>&1

# --- state and clean-up ------------------------------------------------------
WORK=$(mktemp -d /tmp/opsmop-bench.XXXXXX)
LOGS=$WORK/logs
mkdir -p "$LOGS" "$WORK/bin" "$WORK/home/.ssh"
chmod 700 "$WORK/home/.ssh"
TIMES=$WORK/times.tsv   # workload phase tool seconds
RTS=$WORK/rt.tsv        # workload what host round_trips
: >"$TIMES"
: >"$RTS"
LABS=()        # lab dirs we started
PROXY_PIDS=()  # latency proxies we started
LAB_TOOL=$REPO/bin/opsmop-lab

cleanup() {
  local rc=$?
  set +e
  for pid in "${PROXY_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  for s in "$WORK"/cp-*/*; do
    [ -S "$s" ] && ssh -o ControlPath="$s" -O exit bench-master >/dev/null 2>&1
  done
  for d in "${LABS[@]}"; do
    "$LAB_TOOL" down --dir "$d" >/dev/null 2>&1 || echo "bench: warning: could not stop the lab in $d; run: bin/opsmop-lab down --dir $d"
  done
  rm -rf "$WORK"
  if [ "$rc" != 0 ]; then
    echo "bench: FAILED (exit $rc); output so far is in $OUT"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
  echo "bench: $*" >&2
  exit 1
}

# --- tools -------------------------------------------------------------------
bash .ci/deps >/dev/null
if ! command -v ansible-playbook >/dev/null 2>&1 || ! dpkg-query -W -f='${Status}' python3-apt 2>/dev/null | grep -q 'install ok installed'; then
  echo "installing Debian's ansible (and python3-apt, which its apt module needs on the hosts)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends ansible python3-apt >"$LOGS/apt.log" 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends ansible python3-apt >"$LOGS/apt.log" 2>&1; } ||
    { tail -20 "$LOGS/apt.log"; die "apt-get install ansible failed"; }
fi
# Build opsmop fresh: connection code changes between runs.
go build -o bin/opsmop . || die "go build of opsmop failed"
go build -o bin/opsmop-lab ./internal/lab/cmd/opsmop-lab || die "go build of opsmop-lab failed"
go build -o "$WORK/bin/latencyproxy" ./bench/latencyproxy || die "go build of bench/latencyproxy failed"
go build -o "$WORK/bin/sshconnect" ./bench/sshconnect || die "go build of bench/sshconnect failed"
OPSMOP=$REPO/bin/opsmop

# --- the machine ---------------------------------------------------------------
echo "== opsmop vs Ansible benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine:  $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -m | awk '/^Mem:/ {printf "%.1f GiB", $2/1024}') memory, kernel $(uname -r)"
echo "os:       $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "sshd:     $(sshd -V 2>&1 | head -1) (package openssh-server $(dpkg-query -W -f='${Version}' openssh-server))"
echo "ssh:      $(ssh -V 2>&1)"
ANSIBLE_VERSION=$(ansible --version 2>&1) # whole, not piped into head: ansible dies on a closed pipe
echo "ansible:  $(sed -n 1p <<<"$ANSIBLE_VERSION"), $(grep -m1 'python version' <<<"$ANSIBLE_VERSION" | sed 's/^ *//; s/ (.*//')"
echo "go:       $(go version)"
echo "opsmop:   $("$OPSMOP" --version 2>&1 | head -1), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes)')"
echo "load:     $(cut -d' ' -f1-3 /proc/loadavg) at start (the machine is shared: other work running meanwhile slows both tools)"
echo "reps:     $REPS per measurement; Ansible: $ANSIBLE_REPS (W2: $W2_ANSIBLE_REPS); workloads: $WORKLOADS"
echo "order:    in each repetition the tools alternate (odd: opsmop first, even: Ansible first); state is reset on every host before each first apply"
echo

# --- helpers -----------------------------------------------------------------
SSH_BASE=(-F none -o IdentitiesOnly=yes -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes
  -o BatchMode=yes -o LogLevel=ERROR -o ControlMaster=no -o ControlPath=none)

# lab_up NAME SUBNET N: starts N hosts NAME-1..NAME-N in group bench; sets
# LAB (its directory) and LAB_HOSTS (its hosts as "name address port").
lab_up() {
  local name=$1 subnet=$2 n=$3 i specs=
  LAB=/run/opsmop-lab/bench-$name
  "$LAB_TOOL" down --dir "$LAB" >/dev/null 2>&1 || true # left over from an interrupted run
  for ((i = 1; i <= n; i++)); do specs+="${specs:+,}$name-$i:bench"; done
  LABS+=("$LAB")
  "$LAB_TOOL" up --dir "$LAB" --subnet "$subnet" --hosts "$specs" >"$LOGS/lab-$name.log" 2>&1 ||
    { tail -20 "$LOGS/lab-$name.log"; die "could not start the lab $LAB"; }
  LAB_HOSTS=$WORK/lab-$name.hosts
  hosts_file "$LAB/inventory.toml" >"$LAB_HOSTS"
  [ "$(wc -l <"$LAB_HOSTS")" = "$n" ] || die "lab $LAB: expected $n hosts in its inventory"
}

lab_down() {
  "$LAB_TOOL" down --dir "$1" >/dev/null 2>&1 || die "could not stop the lab $1"
  local keep=() d
  for d in "${LABS[@]}"; do [ "$d" = "$1" ] || keep+=("$d"); done
  LABS=("${keep[@]}")
}

# hosts_file INVENTORY: "name address port" per host of a lab inventory.
hosts_file() {
  sed -n 's/^"\([^"]*\)" = "opsmop_host=\([^ ]*\) opsmop_port=\([0-9]*\)"$/\1 \2 \3/p' "$1"
}

# ansible_setup NAME HOSTSFILE KNOWNHOSTS KEY FORKS: writes $WORK/NAME.ini and
# $WORK/NAME.cfg (Ansible's best settings) and sets ACFG.
ansible_setup() {
  local name=$1 hf=$2 kh=$3 key=$4 forks=$5 h a p
  {
    echo "[bench]"
    while read -r h a p _; do echo "$h ansible_host=$a ansible_port=$p"; done <"$hf"
  } >"$WORK/$name.ini"
  mkdir -p "$WORK/cp-$name"
  ACFG=$WORK/$name.cfg
  cat >"$ACFG" <<EOF
[defaults]
inventory = $WORK/$name.ini
forks = $forks
remote_user = root
private_key_file = $key
host_key_checking = True
gathering = explicit
interpreter_python = /usr/bin/python3
retry_files_enabled = False
nocolor = True
[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=$kh -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
control_path_dir = $WORK/cp-$name
EOF
}

# close_masters NAME: ends Ansible's ControlPersist masters of NAME, so its
# next run starts cold like opsmop's.
close_masters() {
  local s
  for s in "$WORK/cp-$1"/*; do
    [ -S "$s" ] && ssh -o ControlPath="$s" -O exit bench-master >/dev/null 2>&1 || true
  done
}

# on_all HOSTSFILE KNOWNHOSTS KEY COMMAND: runs COMMAND on every host in
# parallel over plain ssh; fails if any fails.
on_all() {
  local hf=$1 kh=$2 key=$3 cmd=$4 h a p pid rc=0 pids=()
  while read -r h a p _; do
    ssh "${SSH_BASE[@]}" -i "$key" -o UserKnownHostsFile="$kh" -p "$p" "root@$a" "$cmd" </dev/null >>"$LOGS/on_all.log" 2>&1 &
    pids+=($!)
  done <"$hf"
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

# floor_all HOSTSFILE KNOWNHOSTS KEY DIR: one `ssh HOST sh` per host, all in
# parallel, each fed DIR/NAME.sh on stdin, NAME being the lab host: the
# fourth column of a proxy's HOSTSFILE, else the first.
floor_all() {
  local hf=$1 kh=$2 key=$3 dir=$4 h a p lh pid rc=0 pids=()
  while read -r h a p lh; do
    ssh "${SSH_BASE[@]}" -i "$key" -o UserKnownHostsFile="$kh" -p "$p" "root@$a" sh <"$dir/${lh:-$h}.sh" >>"$LOGS/floor.log" 2>&1 &
    pids+=($!)
  done <"$hf"
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  return $rc
}

# gen_checks HOST: the floor's shell script for W1's 20 resources on HOST:
# the same facts opsmop's probes establish (type, mode, sha256, line present).
gen_checks() {
  local h=$1 i f d p sum
  echo 'rc=0'
  for i in 1 2 3 4 5; do
    echo "[ -d /srv/bench$i ] && [ \"\$(stat -c %a /srv/bench$i)\" = 755 ] || rc=1"
  done
  for f in 1 2 3 4 5 6 7 8 9 10; do
    d=$(((f + 1) / 2))
    p=/srv/bench$d/f$f.conf
    sum=$(printf 'bench file %s on %s\n' "$f" "$h" | sha256sum | cut -d' ' -f1)
    echo "[ -f $p ] && [ \"\$(sha256sum <$p)\" = '$sum  -' ] && [ \"\$(stat -c %a $p)\" = 644 ] || rc=1"
  done
  for i in 1 2 3 4 5; do
    echo "grep -qxF '10.99.0.$i bench$i.internal' /etc/hosts || rc=1"
  done
  echo 'exit $rc'
}

# measure WORKLOAD PHASE TOOL REP LOG CMD...: times CMD (output to LOG),
# records the seconds; a failing CMD stops the benchmark.
measure() {
  local wl=$1 phase=$2 tool=$3 rep=$4 log=$5 t0 t1 s
  shift 5
  t0=$EPOCHREALTIME
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $wl $phase $tool (rep $rep): $*"
    tail -40 "$log"
    exit 1
  fi
  t1=$EPOCHREALTIME
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  printf '%s\t%s\t%s\t%s\n' "$wl" "$phase" "$tool" "$s" >>"$TIMES"
  printf '  %-3s %-6s %-8s rep %d: %8.3f s\n' "$wl" "$phase" "$tool" "$rep" "$s"
}

# expect_opsmop LOG CHANGED: the recap of an opsmop run says CHANGED
# changes in all, nothing failed or unreachable.
expect_opsmop() {
  local total
  total=$(grep '^TOTAL ' "$1" || true)
  case " $total " in
    *" changed=$2 failed=0 "*" unreachable=0 "*) ;;
    *) echo "FAILED: $1: want changed=$2 failed=0 unreachable=0, got: ${total:-no recap}"; tail -40 "$1"; exit 1 ;;
  esac
}

# expect_ansible LOG first|noop: every host's recap line has no failure; a
# first apply changed something on every host, a no-op run nothing.
expect_ansible() {
  awk -v mode="$2" '
    / : ok=[0-9]+ +changed=/ {
      n++
      for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      if (v["failed"] != 0 || v["unreachable"] != 0) bad++
      if (mode == "first" && v["changed"] == 0) bad++
      if (mode == "noop" && v["changed"] != 0) bad++
    }
    END { exit (n == 0 || bad > 0) }' "$1" ||
    { echo "FAILED: $1: the Ansible recap is not what a $2 run gives"; tail -40 "$1"; exit 1; }
}

# median: of the numbers on stdin ("-" when none).
median() {
  sort -g | awk '{ a[NR] = $1 } END {
    if (NR == 0) { print "-"; exit }
    if (NR % 2) print a[(NR + 1) / 2]; else printf "%.3f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# med WORKLOAD PHASE TOOL: the median of the recorded times.
med() {
  awk -F'\t' -v w="$1" -v p="$2" -v t="$3" '$1 == w && $2 == p && $3 == t { print $4 }' "$TIMES" | median
}

# count WORKLOAD PHASE TOOL: how many times were recorded.
count() {
  awk -F'\t' -v w="$1" -v p="$2" -v t="$3" '$1 == w && $2 == p && $3 == t { n++ } END { print n + 0 }' "$TIMES"
}

# ratio A B: A/B with 2 decimals, "-" when either is missing.
ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%.2f\n", a / b }'
}

# opsmop_run POLICY INVENTORY FORKS [ARGS...]: one `opsmop apply`.
opsmop_run() {
  local pol=$1 inv=$2 forks=$3
  shift 3
  env -u SSH_AUTH_SOCK HOME="$WORK/home" "$OPSMOP" apply "$pol" -i "$inv" --forks "$forks" "$@"
}

# ansible_run CFG PLAYBOOK [ARGS...]: one `ansible-playbook`.
ansible_run() {
  local cfg=$1
  shift
  env -u SSH_AUTH_SOCK ANSIBLE_CONFIG="$cfg" ansible-playbook "$@"
}

# wait_lines FILE N: waits (at most 10 s) until FILE has N lines.
wait_lines() {
  local i
  for ((i = 0; i < 200; i++)); do
    [ "$(wc -l <"$1")" -ge "$2" ] && return 0
    sleep 0.05
  done
  die "$1: expected $2 lines from the latency proxy, got $(wc -l <"$1")"
}

# rt_capture LOG BEFORE N WORKLOAD WHAT: records the round trips of the N
# connections logged after line BEFORE.
rt_capture() {
  local log=$1 before=$2 n=$3 wl=$4 what=$5
  wait_lines "$log" $((before + n))
  tail -n +$((before + 1)) "$log" | head -n "$n" |
    sed -n 's/.* route=\([^ ]*\) .* round_trips=\([0-9]*\) .*/\1 \2/p' |
    while read -r h r; do printf '%s\t%s\t%s\t%s\n' "$wl" "$what" "$h" "$r"; done >>"$RTS"
}

W1_RESET='rm -rf /srv/bench1 /srv/bench2 /srv/bench3 /srv/bench4 /srv/bench5 && sed -i "/ bench[0-9]*\.internal\$/d" /etc/hosts'
W3_RESET='/etc/init.d/benchapp stop >/dev/null 2>&1; dpkg --purge benchapp >/dev/null 2>&1; userdel benchsvc >/dev/null 2>&1; groupdel benchsvc >/dev/null 2>&1; rm -rf /etc/benchapp /var/lib/benchapp /var/cache/benchapp_1.0_all.deb /run/benchapp.pid /etc/rc[0-6S].d/[SK][0-9][0-9]benchapp; ! getent passwd benchsvc >/dev/null'
W4_RESET='rm -f /srv/big.bin'

# fleet WORKLOAD HOSTSFILE KH KEY INVENTORY ACFG AREPS [FLOOR_HOSTSFILE FLOOR_KH RT_LOG]:
# W1/W2/W5: per repetition, for each tool (alternating): reset, first
# apply, no-op run; then the floor. State is reset over HOSTSFILE (direct);
# the floor runs over FLOOR_HOSTSFILE (the proxies for W5). With RT_LOG,
# the round trips of opsmop's runs and of the floor are recorded from that
# proxy log.
fleet() {
  local wl=$1 hf=$2 kh=$3 key=$4 inv=$5 acfg=$6 areps=$7 fhf=${8:-$2} fkh=${9:-$3} rtlog=${10:-}
  local n r tool order before h a p
  n=$(wc -l <"$hf")
  mkdir -p "$WORK/$wl-checks"
  while read -r h a p _; do gen_checks "$h" >"$WORK/$wl-checks/$h.sh"; done <"$hf"
  for ((r = 1; r <= REPS; r++)); do
    if ((r % 2)); then order="opsmop ansible"; else order="ansible opsmop"; fi
    for tool in $order; do
      [ "$tool" = ansible ] && ((r > areps)) && continue
      on_all "$hf" "$kh" "$key" "$W1_RESET" || die "$wl: resetting the hosts failed (see $LOGS/on_all.log)"
      if [ "$tool" = opsmop ]; then
        [ -n "$rtlog" ] && before=$(wc -l <"$rtlog")
        measure "$wl" first opsmop "$r" "$LOGS/$wl-first-opsmop-$r.log" opsmop_run bench/w1/site.toml "$inv" "$n"
        expect_opsmop "$LOGS/$wl-first-opsmop-$r.log" $((n * 20))
        [ -n "$rtlog" ] && rt_capture "$rtlog" "$before" "$n" "$wl" first-opsmop
        [ -n "$rtlog" ] && before=$(wc -l <"$rtlog")
        measure "$wl" noop opsmop "$r" "$LOGS/$wl-noop-opsmop-$r.log" opsmop_run bench/w1/site.toml "$inv" "$n"
        expect_opsmop "$LOGS/$wl-noop-opsmop-$r.log" 0
        [ -n "$rtlog" ] && rt_capture "$rtlog" "$before" "$n" "$wl" noop-opsmop
        if [ -n "$rtlog" ]; then
          # A saved plan's apply (issue 16): check -o, then apply PLAN,
          # whose round trips must be those of a plain first apply.
          on_all "$hf" "$kh" "$key" "$W1_RESET" || die "$wl: resetting the hosts failed (see $LOGS/on_all.log)"
          before=$(wc -l <"$rtlog")
          env -u SSH_AUTH_SOCK HOME="$WORK/home" "$OPSMOP" check bench/w1/site.toml -i "$inv" --forks "$n" -o "$WORK/$wl.plan" >"$LOGS/$wl-plan-check-$r.log" 2>&1 ||
            { tail -40 "$LOGS/$wl-plan-check-$r.log"; die "$wl: check -o failed"; }
          # The check's connections are logged when they close: wait for
          # them, so that they are not counted as the apply's.
          rt_capture "$rtlog" "$before" "$n" "$wl" plan-check-opsmop
          before=$(wc -l <"$rtlog")
          measure "$wl" plan opsmop "$r" "$LOGS/$wl-plan-opsmop-$r.log" env -u SSH_AUTH_SOCK HOME="$WORK/home" "$OPSMOP" apply "$WORK/$wl.plan" --forks "$n"
          expect_opsmop "$LOGS/$wl-plan-opsmop-$r.log" $((n * 20))
          rt_capture "$rtlog" "$before" "$n" "$wl" plan-opsmop
        fi
      else
        close_masters "$wl"
        measure "$wl" first ansible "$r" "$LOGS/$wl-first-ansible-$r.log" ansible_run "$acfg" bench/w1/playbook.yml
        expect_ansible "$LOGS/$wl-first-ansible-$r.log" first
        measure "$wl" noop ansible "$r" "$LOGS/$wl-noop-ansible-$r.log" ansible_run "$acfg" bench/w1/playbook.yml
        expect_ansible "$LOGS/$wl-noop-ansible-$r.log" noop
      fi
    done
    [ -n "$rtlog" ] && before=$(wc -l <"$rtlog")
    measure "$wl" noop floor "$r" "$LOGS/$wl-floor-$r.log" floor_all "$fhf" "$fkh" "$key" "$WORK/$wl-checks"
    [ -n "$rtlog" ] && rt_capture "$rtlog" "$before" "$n" "$wl" noop-floor
  done
  close_masters "$wl"
}

# --- W1: 3 hosts x 20 resources ---------------------------------------------
NEED_SMALL=no
for w in $WORKLOADS; do case $w in w1 | w4 | w5 | w6) NEED_SMALL=yes ;; esac; done
SMALL_LAB=
SMALL_HOSTS=

start_small_lab() {
  echo "-- lab: 3 hosts (subnet 80), load $(cut -d' ' -f1-3 /proc/loadavg)"
  lab_up w1 80 3
  SMALL_LAB=$LAB
  SMALL_HOSTS=$LAB_HOSTS
  cp "$SMALL_LAB/known_hosts" "$WORK/home/.ssh/known_hosts"
  ansible_setup w1 "$SMALL_HOSTS" "$SMALL_LAB/known_hosts" "$SMALL_LAB/id_ed25519" 3
}

run_w1() {
  echo "== W1: 3 hosts x 20 resources (5 directories, 10 files with per-host content, 5 lines in /etc/hosts)"
  echo "   load $(cut -d' ' -f1-3 /proc/loadavg)"
  fleet w1 "$SMALL_HOSTS" "$SMALL_LAB/known_hosts" "$SMALL_LAB/id_ed25519" "$SMALL_LAB/inventory.toml" "$WORK/w1.cfg" "$ANSIBLE_REPS"
  echo
}

# --- W5: W1 through a latency proxy ------------------------------------------
# start_proxy NAME SUBNET HOSTSFILE KNOWNHOSTS: one latencyproxy process
# listening on 127.SUBNET.0.i:2222 for the i-th host; writes
# $WORK/NAME.hosts (name addr port labhost), $WORK/NAME.known_hosts and
# $WORK/NAME.log (its per-connection log).
start_proxy() {
  local name=$1 subnet=$2 hf=$3 kh=$4 i=0 h a p key args=() pid
  : >"$WORK/$name.hosts"
  : >"$WORK/$name.known_hosts"
  while read -r h a p _; do
    i=$((i + 1))
    args+=(-route "$h,127.$subnet.0.$i:2222,$a:$p")
    echo "$h 127.$subnet.0.$i 2222 $h" >>"$WORK/$name.hosts"
    if [ "$p" = 22 ]; then key=$(awk -v a="$a" '$1 == a { print $2, $3 }' "$kh"); else key=$(awk -v a="[$a]:$p" '$1 == a { print $2, $3 }' "$kh"); fi
    [ -n "$key" ] || die "no host key for $h in $kh"
    echo "[127.$subnet.0.$i]:2222 $key" >>"$WORK/$name.known_hosts"
  done <"$hf"
  : >"$WORK/$name.log"
  "$WORK/bin/latencyproxy" -ssh -delay "$DELAY" -log "$WORK/$name.log" "${args[@]}" >"$WORK/$name.out" 2>&1 &
  pid=$!
  PROXY_PIDS+=("$pid")
  for ((i = 0; i < 100; i++)); do
    grep -q '^ready$' "$WORK/$name.out" && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  cat "$WORK/$name.out"
  die "latency proxy $name did not start"
}

run_w5() {
  local inv=$WORK/w5-opsmop.toml before h a p lh i
  echo "== W5: W1 with $DELAY added per direction by bench/latencyproxy (round trip + 2 x $DELAY)"
  echo "   load $(cut -d' ' -f1-3 /proc/loadavg)"
  # opsmop, the floor and the handshake counts go through one proxy
  # (127.85.x), Ansible through another (127.86.x): Ansible's
  # ControlPersist masters close whenever they time out, and must not
  # mix into the counts.
  start_proxy w5p 85 "$SMALL_HOSTS" "$SMALL_LAB/known_hosts"
  start_proxy w5a 86 "$SMALL_HOSTS" "$SMALL_LAB/known_hosts"
  cat "$SMALL_LAB/known_hosts" "$WORK/w5p.known_hosts" >"$WORK/home/.ssh/known_hosts"
  {
    echo "[groups.bench.hosts]"
    while read -r h a p lh; do echo "\"$h\" = \"opsmop_host=$a opsmop_port=$p\""; done <"$WORK/w5p.hosts"
    echo "[groups.all.vars]"
    echo "opsmop_ssh_username = \"root\""
    echo "opsmop_ssh_private_key = \"$SMALL_LAB/id_ed25519\""
  } >"$inv"
  ansible_setup w5 "$WORK/w5a.hosts" "$WORK/w5a.known_hosts" "$SMALL_LAB/id_ed25519" 3
  fleet w5 "$SMALL_HOSTS" "$SMALL_LAB/known_hosts" "$SMALL_LAB/id_ed25519" "$inv" "$WORK/w5.cfg" "$ANSIBLE_REPS" \
    "$WORK/w5p.hosts" "$WORK/w5p.known_hosts" "$WORK/w5p.log"
  # The handshake alone: an opsmop connection (package connection) that
  # runs nothing, and OpenSSH's `ssh HOST true`, REPS times per host.
  for ((i = 1; i <= REPS; i++)); do
    while read -r h a p lh; do
      before=$(wc -l <"$WORK/w5p.log")
      "$WORK/bin/sshconnect" -key "$SMALL_LAB/id_ed25519" -known-hosts "$WORK/w5p.known_hosts" "$a:$p" >>"$LOGS/sshconnect.log" 2>&1 ||
        { cat "$LOGS/sshconnect.log"; die "sshconnect to $h through the proxy failed"; }
      rt_capture "$WORK/w5p.log" "$before" 1 w5 handshake-opsmop
      before=$(wc -l <"$WORK/w5p.log")
      ssh "${SSH_BASE[@]}" -i "$SMALL_LAB/id_ed25519" -o UserKnownHostsFile="$WORK/w5p.known_hosts" -p "$p" "root@$a" true </dev/null >>"$LOGS/sshtrue.log" 2>&1 ||
        { cat "$LOGS/sshtrue.log"; die "ssh true to $h through the proxy failed"; }
      rt_capture "$WORK/w5p.log" "$before" 1 w5 ssh-true
    done <"$WORK/w5p.hosts"
  done
  cp "$SMALL_LAB/known_hosts" "$WORK/home/.ssh/known_hosts"
  echo
}

# --- W6: a 2,000-file tree vs one file, through the latency proxy -----------
# On the small lab's first host, through its own latencyproxy (127.87.x):
# per repetition, reset, the tree's first apply (timed: the initial
# upload), then a no-op apply of the tree and one of a single `file`
# (each one connection: handshake, facts, the probe batch). The no-op
# difference divided by the added round-trip time (2 x DELAY) is how many
# round trips more the 2,000-file tree costs; the proxy counts them too.
run_w6() {
  local dir=$WORK/w6 inv=$WORK/w6-opsmop.toml hf=$WORK/w6.direct r i before ms d o t h a p
  echo "== W6: a tree of $W6_FILES small files vs one file, $DELAY added per direction by bench/latencyproxy"
  echo "   load $(cut -d' ' -f1-3 /proc/loadavg)"
  head -n 1 "$SMALL_HOSTS" >"$hf"
  mkdir -p "$dir/files/tree"
  for ((i = 0; i < W6_FILES; i++)); do
    d=$dir/files/tree/d$((i % 20))
    [ -d "$d" ] || mkdir "$d"
    echo "file $i of the W6 tree" >"$d/f$i.txt"
  done
  printf '[[roles]]\nname = "w6"\n\n  [[roles.resources]]\n  type = "tree"\n  src = "files/tree"\n  path = "/srv/w6tree"\n' >"$dir/tree.toml"
  printf '[[roles]]\nname = "w6"\n\n  [[roles.resources]]\n  type = "file"\n  path = "/srv/w6one"\n  content = "one file\\n"\n' >"$dir/one.toml"
  start_proxy w6p 87 "$hf" "$SMALL_LAB/known_hosts"
  cat "$SMALL_LAB/known_hosts" "$WORK/w6p.known_hosts" >"$WORK/home/.ssh/known_hosts"
  {
    echo "[groups.bench.hosts]"
    while read -r h a p _; do echo "\"$h\" = \"opsmop_host=$a opsmop_port=$p\""; done <"$WORK/w6p.hosts"
    echo "[groups.all.vars]"
    echo "opsmop_ssh_username = \"root\""
    echo "opsmop_ssh_private_key = \"$SMALL_LAB/id_ed25519\""
  } >"$inv"
  for ((r = 1; r <= REPS; r++)); do
    on_all "$hf" "$SMALL_LAB/known_hosts" "$SMALL_LAB/id_ed25519" 'rm -rf /srv/w6tree /srv/w6one' || die "w6: reset failed (see $LOGS/on_all.log)"
    before=$(wc -l <"$WORK/w6p.log")
    measure w6 first tree "$r" "$LOGS/w6-first-tree-$r.log" opsmop_run "$dir/tree.toml" "$inv" 1
    expect_opsmop "$LOGS/w6-first-tree-$r.log" 1
    rt_capture "$WORK/w6p.log" "$before" 1 w6 first-tree
    opsmop_run "$dir/one.toml" "$inv" 1 >"$LOGS/w6-first-one-$r.log" 2>&1 || { tail -20 "$LOGS/w6-first-one-$r.log"; die "w6: apply of one file failed"; }
    before=$(wc -l <"$WORK/w6p.log")
    measure w6 noop tree "$r" "$LOGS/w6-noop-tree-$r.log" opsmop_run "$dir/tree.toml" "$inv" 1
    expect_opsmop "$LOGS/w6-noop-tree-$r.log" 0
    rt_capture "$WORK/w6p.log" "$before" 1 w6 noop-tree
    before=$(wc -l <"$WORK/w6p.log")
    measure w6 noop one "$r" "$LOGS/w6-noop-one-$r.log" opsmop_run "$dir/one.toml" "$inv" 1
    expect_opsmop "$LOGS/w6-noop-one-$r.log" 0
    rt_capture "$WORK/w6p.log" "$before" 1 w6 noop-one
  done
  cp "$SMALL_LAB/known_hosts" "$WORK/home/.ssh/known_hosts"
  o=$(med w6 noop one)
  t=$(med w6 noop tree)
  case $DELAY in *ms) ms=${DELAY%ms} ;; *) ms=- ;; esac
  echo "-- W6 medians: no-op one file $o s, no-op $W6_FILES-file tree $t s (difference $(awk -v a="$t" -v b="$o" 'BEGIN { printf "%.3f", a - b }') s);" \
    "round trips (RTT = 2 x $DELAY): $(awk -v a="$t" -v b="$o" -v m="$ms" 'BEGIN { if (m == "-") print "-"; else printf "%.1f", (a - b) * 1000 / (2 * m) }') more by wall clock;" \
    "counted by the proxy: tree $(awk -F'\t' '$1 == "w6" && $2 == "noop-tree" { print $4 }' "$RTS" | median), one file $(awk -F'\t' '$1 == "w6" && $2 == "noop-one" { print $4 }' "$RTS" | median)"
  echo "-- W6 initial upload of the tree (first apply, whole run): $(med w6 first tree) s"
  echo
}

# --- W4: a 200 MB file to 3 hosts --------------------------------------------
run_w4() {
  local r tool order big=$WORK/big.bin n pids pid h a p rc
  echo "== W4: one ${W4_MB} MB file (random bytes) pushed to 3 hosts; floor: scp to the 3 hosts in parallel"
  echo "   load $(cut -d' ' -f1-3 /proc/loadavg)"
  head -c "${W4_MB}M" /dev/urandom >"$big"
  n=$(wc -l <"$SMALL_HOSTS")
  scp_all() {
    pids=()
    rc=0
    while read -r h a p _; do
      scp -q "${SSH_BASE[@]}" -i "$SMALL_LAB/id_ed25519" -o UserKnownHostsFile="$SMALL_LAB/known_hosts" -P "$p" "$big" "root@$a:/srv/big.bin" </dev/null &
      pids+=($!)
    done <"$SMALL_HOSTS"
    for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
    return $rc
  }
  for ((r = 1; r <= REPS; r++)); do
    case $((r % 3)) in
      1) order="opsmop ansible scp" ;;
      2) order="ansible scp opsmop" ;;
      0) order="scp opsmop ansible" ;;
    esac
    for tool in $order; do
      [ "$tool" = ansible ] && ((r > ANSIBLE_REPS)) && continue
      on_all "$SMALL_HOSTS" "$SMALL_LAB/known_hosts" "$SMALL_LAB/id_ed25519" "$W4_RESET" || die "w4: reset failed"
      case $tool in
        opsmop)
          measure w4 first opsmop "$r" "$LOGS/w4-first-opsmop-$r.log" opsmop_run bench/w4/site.toml "$SMALL_LAB/inventory.toml" "$n" -e "bigfile=$big"
          expect_opsmop "$LOGS/w4-first-opsmop-$r.log" "$n"
          measure w4 noop opsmop "$r" "$LOGS/w4-noop-opsmop-$r.log" opsmop_run bench/w4/site.toml "$SMALL_LAB/inventory.toml" "$n" -e "bigfile=$big"
          expect_opsmop "$LOGS/w4-noop-opsmop-$r.log" 0
          ;;
        ansible)
          close_masters w1
          measure w4 first ansible "$r" "$LOGS/w4-first-ansible-$r.log" ansible_run "$WORK/w1.cfg" bench/w4/playbook.yml -e "bigfile=$big"
          expect_ansible "$LOGS/w4-first-ansible-$r.log" first
          measure w4 noop ansible "$r" "$LOGS/w4-noop-ansible-$r.log" ansible_run "$WORK/w1.cfg" bench/w4/playbook.yml -e "bigfile=$big"
          expect_ansible "$LOGS/w4-noop-ansible-$r.log" noop
          ;;
        scp)
          measure w4 first scp "$r" "$LOGS/w4-scp-$r.log" scp_all
          ;;
      esac
    done
  done
  close_masters w1
  rm -f "$big"
  echo
}

# --- W3: a realistic role on 10 hosts ----------------------------------------
run_w3() {
  local r tool order n deb=$WORK/benchapp_1.0_all.deb root=$WORK/debroot
  echo "== W3: a role on $W3_HOSTS hosts: user, package from a local .deb, config template + handler restarting a sysv service, service started+enabled"
  rm -rf "$root"
  mkdir -p "$root/DEBIAN" "$root/usr/sbin" "$root/etc/init.d"
  cp bench/w3/pkg/control "$root/DEBIAN/control"
  echo /etc/init.d/benchapp >"$root/DEBIAN/conffiles"
  install -m 0755 bench/w3/pkg/benchappd "$root/usr/sbin/benchappd"
  install -m 0755 bench/w3/pkg/benchapp.init "$root/etc/init.d/benchapp"
  dpkg-deb -Zgzip --root-owner-group --build "$root" "$deb" >"$LOGS/dpkg-deb.log" 2>&1 ||
    { cat "$LOGS/dpkg-deb.log"; die "dpkg-deb failed"; }
  echo "-- lab: $W3_HOSTS hosts (subnet 82), load $(cut -d' ' -f1-3 /proc/loadavg)"
  lab_up w3 82 "$W3_HOSTS"
  local lab=$LAB hosts=$LAB_HOSTS
  n=$W3_HOSTS
  cp "$lab/known_hosts" "$WORK/home/.ssh/known_hosts"
  ansible_setup w3 "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$n"
  for ((r = 1; r <= REPS; r++)); do
    if ((r % 2)); then order="opsmop ansible"; else order="ansible opsmop"; fi
    for tool in $order; do
      [ "$tool" = ansible ] && ((r > ANSIBLE_REPS)) && continue
      on_all "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$W3_RESET" || die "w3: reset failed (see $LOGS/on_all.log)"
      if [ "$tool" = opsmop ]; then
        measure w3 first opsmop "$r" "$LOGS/w3-first-opsmop-$r.log" opsmop_run bench/w3/site.toml "$lab/inventory.toml" "$n" -e "deb=$deb"
        expect_opsmop "$LOGS/w3-first-opsmop-$r.log" $((n * 6)) # 5 resources + the handler
        measure w3 noop opsmop "$r" "$LOGS/w3-noop-opsmop-$r.log" opsmop_run bench/w3/site.toml "$lab/inventory.toml" "$n" -e "deb=$deb"
        expect_opsmop "$LOGS/w3-noop-opsmop-$r.log" 0
      else
        close_masters w3
        # The playbook's relative template path is resolved from its directory.
        measure w3 first ansible "$r" "$LOGS/w3-first-ansible-$r.log" ansible_run "$WORK/w3.cfg" bench/w3/playbook.yml -e "deb=$deb"
        expect_ansible "$LOGS/w3-first-ansible-$r.log" first
        grep -q 'RUNNING HANDLER \[restart benchapp\]' "$LOGS/w3-first-ansible-$r.log" || die "w3: Ansible's first apply did not run the handler"
        measure w3 noop ansible "$r" "$LOGS/w3-noop-ansible-$r.log" ansible_run "$WORK/w3.cfg" bench/w3/playbook.yml -e "deb=$deb"
        expect_ansible "$LOGS/w3-noop-ansible-$r.log" noop
      fi
      on_all "$hosts" "$lab/known_hosts" "$lab/id_ed25519" '/etc/init.d/benchapp status >/dev/null' ||
        die "w3: benchapp is not running on every host after $tool"
    done
  done
  close_masters w3
  lab_down "$lab"
  echo
}

# --- W2: the 20 resources on 50 hosts ----------------------------------------
run_w2() {
  echo "== W2: $W2_HOSTS hosts x the same 20 resources (forks = $W2_HOSTS for both tools)"
  echo "-- lab: $W2_HOSTS hosts (subnet 81), load $(cut -d' ' -f1-3 /proc/loadavg)"
  lab_up w2 81 "$W2_HOSTS"
  local lab=$LAB hosts=$LAB_HOSTS
  cp "$lab/known_hosts" "$WORK/home/.ssh/known_hosts"
  ansible_setup w2 "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$W2_HOSTS"
  fleet w2 "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$lab/inventory.toml" "$WORK/w2.cfg" "$W2_ANSIBLE_REPS"
  lab_down "$lab"
  echo
}

# --- W7: 200 hosts, forks 50 and 200, 4 slices of 50 --------------------------
# (Issue 17 calls this workload "W6"; W6 was already the tree workload.)
# On BENCH_W7_HOSTS lab hosts (subnet 88), a small policy (a directory and
# 3 files with per-host content), opsmop only: per repetition and per
# forks value (50, then the host count), reset, first apply, no-op check;
# then the same hosts as 4 slices run as 4 concurrent processes
# (`--slice k/4 --json`, forks = a slice's size), first apply and no-op
# check, each merged by `opsmop recap` (exit 0, every host counted). Every
# opsmop process runs under /usr/bin/time (peak RSS, CPU) while its open
# file descriptors are sampled from /proc/PID/fd. The floor: one
# `ssh HOST sh` per host doing the same checks, at most FORKS at a time.
W7_STATS=$WORK/w7-stats.tsv # phase rep seconds rss_kb cpu_s max_fds processes
W7_RESET='rm -rf /srv/w7'

# w7_policy DIR: writes DIR/site.toml, W7's 4 resources.
w7_policy() {
  cat >"$1/site.toml" <<'EOF'
[[roles]]
name = "w7"

  [[roles.resources]]
  type = "directory"
  path = "/srv/w7"
  mode = "0755"

  [[roles.resources]]
  type = "file"
  path = "/srv/w7/f{{ .item }}.conf"
  content = "w7 file {{ .item }} on {{ .host.name }}\n"
  mode = "0644"
  loop = [1, 2, 3]
EOF
}

# w7_checks HOST: the floor's script for W7's 4 resources on HOST.
# shellcheck disable=SC2016 # $(...) and $rc are for the host's sh
w7_checks() {
  local h=$1 f p sum
  echo 'rc=0'
  echo '[ -d /srv/w7 ] && [ "$(stat -c %a /srv/w7)" = 755 ] || rc=1'
  for f in 1 2 3; do
    p=/srv/w7/f$f.conf
    sum=$(printf 'w7 file %s on %s\n' "$f" "$h" | sha256sum | cut -d' ' -f1)
    echo "[ -f $p ] && [ \"\$(sha256sum <$p)\" = '$sum  -' ] && [ \"\$(stat -c %a $p)\" = 644 ] || rc=1"
  done
  echo 'exit $rc'
}

# w7_total LOG HOSTS KEY VALUE: the TOTAL line of LOG (a recap) counts
# HOSTS hosts, KEY=VALUE, nothing failed or unreachable.
w7_total() {
  local total want
  total=$(grep '^TOTAL ' "$1" || true)
  for want in "hosts=$2" "$3=$4" failed=0 unreachable=0; do
    case " $total " in
      *" $want "*) ;;
      *) echo "FAILED: $1: want hosts=$2 $3=$4 failed=0 unreachable=0, got: ${total:-no recap}"; tail -40 "$1"; exit 1 ;;
    esac
  done
}

# w7_proc OUT STATS CMD...: runs CMD (stdout to OUT, stderr to OUT.err)
# under /usr/bin/time, sampling the open file descriptors of CMD's process
# every 20 ms; writes "exit rss_kb cpu_s max_fds" to STATS.
w7_proc() {
  local out=$1 stats=$2 tpid pid='' n maxfd=0 rc=0
  shift 2
  /usr/bin/time -f '%M %U %S' -o "$stats.time" "$@" >"$out" 2>"$out.err" &
  tpid=$!
  while kill -0 "$tpid" 2>/dev/null; do
    [ -n "$pid" ] || pid=$(pgrep -P "$tpid" | head -n 1 || true)
    if [ -n "$pid" ]; then
      # The process may end between two samples: find then fails.
      n=$({ find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true; } | wc -l)
      if ((n > maxfd)); then maxfd=$n; fi
    fi
    sleep 0.02
  done
  wait "$tpid" || rc=$?
  # /usr/bin/time writes "Command exited with non-zero status N" first
  # when CMD fails; the numbers are on the last line.
  echo "$rc $(tail -n 1 "$stats.time" | awk '{ printf "%d %.2f", $1, $2 + $3 }') $maxfd" >"$stats"
}

# w7_measure PHASE REP PROCS CMD...: times PROCS concurrent opsmop runs
# (PROCS 1: CMD; PROCS 4: CMD with --slice k/4 appended, k = 1..4, each
# stdout to $LOGS/w7-PHASE-REP-k.out), records seconds, the sum of their
# peak RSS and CPU, and the largest fd count; a failing run stops the
# benchmark (check exits 0 with pending changes: no --detailed-exitcode).
w7_measure() {
  local phase=$1 rep=$2 procs=$3 t0 t1 s k pids=() pid st rss=0 cpu=0 fds=0 rc r m c f
  shift 3
  t0=$EPOCHREALTIME
  for ((k = 1; k <= procs; k++)); do
    if ((procs == 1)); then
      w7_proc "$LOGS/w7-$phase-$rep-$k.out" "$WORK/w7-$phase-$rep-$k.stats" "$@" &
    else
      w7_proc "$LOGS/w7-$phase-$rep-$k.out" "$WORK/w7-$phase-$rep-$k.stats" "$@" --slice "$k/$procs" &
    fi
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
  t1=$EPOCHREALTIME
  s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
  for ((k = 1; k <= procs; k++)); do
    st=$WORK/w7-$phase-$rep-$k.stats
    read -r rc r c f <"$st" || die "w7: no statistics in $st"
    if [ "$rc" != 0 ]; then
      echo "FAILED: w7 $phase (rep $rep, process $k of $procs): exit $rc: $*"
      tail -n 20 "$LOGS/w7-$phase-$rep-$k.out.err"
      if ((procs > 1)); then # a --json stream: its recap says which hosts and why
        { "$OPSMOP" recap "$LOGS/w7-$phase-$rep-$k.out" 2>&1 || true; } | { grep -v ' failed=0 .* unreachable=0' || true; } | tail -n 20
        grep -m 5 -E '"(error|message)"' "$LOGS/w7-$phase-$rep-$k.out" || true
      else
        tail -n 20 "$LOGS/w7-$phase-$rep-$k.out"
      fi
      exit 1
    fi
    rss=$((rss + r))
    cpu=$(awk -v a="$cpu" -v b="$c" 'BEGIN { printf "%.2f", a + b }')
    if ((f > fds)); then fds=$f; fi
  done
  m=$phase
  printf '%s\t%s\t%s\t%s\n' w7 "$m" opsmop "$s" >>"$TIMES"
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$rep" "$s" "$rss" "$cpu" "$fds" "$procs" >>"$W7_STATS"
  printf '  w7  %-14s opsmop  rep %d: %8.3f s  peak RSS %6d KiB (%d process%s)  CPU %6.2f s  max fds %d\n' \
    "$m" "$rep" "$s" "$rss" "$procs" "$([ "$procs" = 1 ] || echo es)" "$cpu" "$fds"
}

# w7_floor HOSTSFILE KNOWNHOSTS KEY DIR FORKS: floor_all with at most
# FORKS ssh processes at a time.
w7_floor() {
  local hf=$1 kh=$2 key=$3 dir=$4 forks=$5 h a p running=0 rc=0
  while read -r h a p _; do
    if ((running >= forks)); then
      wait -n || rc=1
      running=$((running - 1))
    fi
    ssh "${SSH_BASE[@]}" -i "$key" -o UserKnownHostsFile="$kh" -p "$p" "root@$a" sh <"$dir/$h.sh" >>"$LOGS/floor.log" 2>&1 &
    running=$((running + 1))
  done <"$hf"
  while ((running > 0)); do
    wait -n || rc=1
    running=$((running - 1))
  done
  return $rc
}

# w7_med PHASE COLUMN: the median of a W7_STATS column (3 seconds, 4 RSS,
# 5 CPU, 6 fds).
w7_med() {
  awk -F'\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$W7_STATS" | median
}

run_w7() {
  local dir=$WORK/w7 n=$W7_HOSTS r forks k per pol inv i
  echo "== W7: $n hosts x 4 resources (a directory, 3 files with per-host content): forks 50 and $n, and 4 slices of $(((n + 3) / 4)) as 4 processes merged by opsmop recap"
  echo "-- lab: $n hosts (subnet 88), load $(cut -d' ' -f1-3 /proc/loadavg)"
  lab_up w7 88 "$n"
  local lab=$LAB hosts=$LAB_HOSTS
  cp "$lab/known_hosts" "$WORK/home/.ssh/known_hosts"
  mkdir -p "$dir/checks"
  w7_policy "$dir"
  pol=$dir/site.toml
  inv=$lab/inventory.toml
  while read -r h _; do w7_checks "$h" >"$dir/checks/$h.sh"; done <"$hosts"
  : >"$W7_STATS"
  per=$(((n + 3) / 4))
  # opsmop as the other workloads run it (a program, for /usr/bin/time).
  local ops=(env -u SSH_AUTH_SOCK HOME="$WORK/home" "$OPSMOP")
  # The 4 slice processes share this machine's cores: each gets a quarter
  # of one process's handshake bound (tuning.max_handshakes, built in
  # max(32, 8 x GOMAXPROCS)), so that together they start as many
  # handshakes at once as one process does (docs/benchmarks.md, W7).
  local hs=$((8 * $(nproc))) sops
  ((hs >= 32)) || hs=32
  mkdir -p "$WORK/home-slices/.ssh" "$WORK/home-slices/.opsmop"
  chmod 700 "$WORK/home-slices/.ssh"
  cp "$lab/known_hosts" "$WORK/home-slices/.ssh/known_hosts"
  printf '[tuning]\nmax_handshakes = %d\n' $(((hs + 3) / 4)) >"$WORK/home-slices/.opsmop/defaults.toml"
  sops=(env -u SSH_AUTH_SOCK HOME="$WORK/home-slices" "$OPSMOP")
  for ((r = 1; r <= REPS; r++)); do
    for forks in 50 "$n"; do
      on_all "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$W7_RESET" || die "w7: resetting the hosts failed (see $LOGS/on_all.log)"
      w7_measure "first-f$forks" "$r" 1 "${ops[@]}" apply "$pol" -i "$inv" --forks "$forks"
      w7_total "$LOGS/w7-first-f$forks-$r-1.out" "$n" changed $((n * 4))
      w7_measure "noop-f$forks" "$r" 1 "${ops[@]}" check "$pol" -i "$inv" --forks "$forks"
      w7_total "$LOGS/w7-noop-f$forks-$r-1.out" "$n" pending 0
      measure w7 "floor-f$forks" floor "$r" "$LOGS/w7-floor-f$forks-$r.log" w7_floor "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$dir/checks" "$forks"
    done
    on_all "$hosts" "$lab/known_hosts" "$lab/id_ed25519" "$W7_RESET" || die "w7: resetting the hosts failed (see $LOGS/on_all.log)"
    for k in first noop; do
      if [ "$k" = first ]; then
        w7_measure "$k-slices" "$r" 4 "${sops[@]}" apply "$pol" -i "$inv" --forks "$per" --json
      else
        w7_measure "$k-slices" "$r" 4 "${sops[@]}" check "$pol" -i "$inv" --forks "$per" --json
      fi
      local streams=()
      for ((i = 1; i <= 4; i++)); do streams+=("$LOGS/w7-$k-slices-$r-$i.out"); done
      "$OPSMOP" recap "${streams[@]}" >"$LOGS/w7-$k-recap-$r.log" 2>&1 ||
        { echo "FAILED: w7 opsmop recap of the $k slices (rep $r) exited $?"; tail -40 "$LOGS/w7-$k-recap-$r.log"; exit 1; }
      if [ "$k" = first ]; then
        w7_total "$LOGS/w7-$k-recap-$r.log" "$n" changed $((n * 4))
      else
        w7_total "$LOGS/w7-$k-recap-$r.log" "$n" pending 0
      fi
      echo "  w7  $k-slices     recap   rep $r: exit 0, $(grep '^TOTAL ' "$LOGS/w7-$k-recap-$r.log" | tr -s ' ')"
    done
  done
  echo "-- W7 medians ($n hosts; RSS: peak resident memory of the controller process(es), summed over the 4 slices; CPU: user+system of the controller(s); fds: the most open at once in one process)"
  printf '   %-14s %9s %10s %12s %9s %11s %8s %10s\n' phase seconds floor opsmop/floor RSS-KiB KiB/host CPU-s ms-CPU/host
  for k in first-f50 noop-f50 "first-f$n" "noop-f$n" first-slices noop-slices; do
    local s f="-" rss cpu fds
    s=$(w7_med "$k" 3)
    case $k in noop-f*) f=$(med w7 "floor-${k#noop-}" floor) ;; esac
    rss=$(w7_med "$k" 4)
    cpu=$(w7_med "$k" 5)
    fds=$(w7_med "$k" 6)
    printf '   %-14s %9s %10s %12s %9s %11s %8s %10s   max fds %s\n' "$k" "$s" "$f" "$(ratio "$s" "$f")" "$rss" \
      "$(awk -v a="$rss" -v n="$n" 'BEGIN { if (a == "-") print "-"; else printf "%.0f", a / n }')" "$cpu" \
      "$(awk -v a="$cpu" -v n="$n" 'BEGIN { if (a == "-") print "-"; else printf "%.1f", a * 1000 / n }')" "$fds"
  done
  echo "(floor: one 'ssh HOST sh' per host with the same 4 checks, at most FORKS at a time; slices: 4 concurrent processes, --forks $per and max_handshakes $(((hs + 3) / 4)) each)"
  # One process for n hosts against one of the 4 slice processes (n/4
  # hosts): the difference is what the other 3n/4 hosts cost.
  echo "-- W7 controller memory per host, marginal: (one process for $n hosts - one slice's process for $per) / $((n - per)) hosts:" \
    "no-op $(awk -v a="$(w7_med "noop-f$n" 4)" -v b="$(w7_med noop-slices 4)" -v h=$((n - per)) 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.0f", (a - b / 4) / h }') KiB," \
    "first apply $(awk -v a="$(w7_med "first-f$n" 4)" -v b="$(w7_med first-slices 4)" -v h=$((n - per)) 'BEGIN { if (a == "-" || b == "-") print "-"; else printf "%.0f", (a - b / 4) / h }') KiB;" \
    "one slice's process ($per hosts) $(awk -v b="$(w7_med noop-slices 4)" 'BEGIN { if (b == "-") print "-"; else printf "%.0f", b / 4 }') KiB"
  lab_down "$lab"
  echo
}

echo "settings:"
echo "  opsmop:  apply, --forks = host count, root with the lab's key, host keys checked against the lab's known_hosts;"
echo "           one SSH connection per host per run (never reused across runs)"
echo "  Ansible: ansible-playbook, forks = host count, pipelining = True, gathering = explicit (gather_facts: false in every play),"
echo "           ssh_args = -o ControlMaster=auto -o ControlPersist=60s, host_key_checking = True with the lab's known_hosts"
echo "           (StrictHostKeyChecking=yes), interpreter_python = /usr/bin/python3 (no discovery), root with the lab's key;"
echo "           masters are closed before each first apply, the no-op run right after reuses them"
echo "  floor:   W1/W2/W5: one 'ssh HOST sh' per host, all hosts in parallel, the 20 checks (stat, sha256sum, grep) on stdin;"
echo "           W4: scp (OpenSSH's, SFTP protocol) to all hosts in parallel"
echo

if [ "$NEED_SMALL" = yes ]; then start_small_lab; fi
for w in $WORKLOADS; do "run_$w"; done
if [ -n "$SMALL_LAB" ]; then lab_down "$SMALL_LAB"; fi

# --- the table -----------------------------------------------------------------
echo "== results: medians in seconds (n = measurements: opsmop/Ansible/floor)"
printf '%-4s %-6s %-5s %9s %9s %9s %9s %9s %10s\n' work phase hosts opsmop ansible floor opsmop/ans ans/opsmop opsmop/floor
row() {
  local wl=$1 phase=$2 hosts=$3 ftool=$4 o a f
  o=$(med "$wl" "$phase" opsmop)
  a=$(med "$wl" "$phase" ansible)
  f=$(med "$wl" "$phase" "$ftool")
  printf '%-4s %-6s %-5s %9s %9s %9s %9s %9s %10s   n=%s/%s/%s\n' "$wl" "$phase" "$hosts" "$o" "$a" "$f" \
    "$(ratio "$o" "$a")" "$(ratio "$a" "$o")" "$(ratio "$o" "$f")" \
    "$(count "$wl" "$phase" opsmop)" "$(count "$wl" "$phase" ansible)" "$(count "$wl" "$phase" "$ftool")"
}
for w in $WORKLOADS; do
  case $w in
    w1) row w1 first 3 floor; row w1 noop 3 floor ;;
    w2) row w2 first "$W2_HOSTS" floor; row w2 noop "$W2_HOSTS" floor ;;
    w3) row w3 first "$W3_HOSTS" none; row w3 noop "$W3_HOSTS" none ;;
    w4) row w4 first 3 scp; row w4 noop 3 none ;;
    w5) row w5 first 3 floor; row w5 noop 3 floor ;;
    w6) ;; # printed by run_w6 (no Ansible or floor column)
    w7) ;; # printed by run_w7 (opsmop and the floor only)
  esac
done
echo "(floor: W1/W2/W5 one 'ssh HOST sh' per host with the 20 checks, all in parallel; W4: scp in parallel; first = apply from a clean state, noop = apply again)"

rt_med() { awk -F'\t' -v w="$1" -v k="$2" -v h="$3" '$1 == w && $2 == k && $3 == h { print $4 }' "$RTS" | median; }
rt_list() { awk -F'\t' -v w="$1" -v k="$2" -v h="$3" '$1 == w && $2 == k && $3 == h { printf "%s%s", s, $4; s = "," }' "$RTS"; }

# ge A B / le A B: 1 when A >= B (A <= B), 0 when not, na when A or B is
# missing ("-": not measured in this run).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "na"; else print (a + 0 >= b + 0) ? 1 : 0 }'; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-") print "na"; else print (a + 0 <= b + 0) ? 1 : 0 }'; }

W5_RT_OK=
W5_RT_TEXT=
W5_FIRST_OK=
W5_FIRST_TEXT=
W5_PLAN_OK=
W5_PLAN_TEXT=
if [[ " $WORKLOADS " == *" w5 "* ]]; then
  echo
  echo "== W5 round trips per host, counted by bench/latencyproxy (median of the runs; every run in brackets)"
  printf '%-6s %18s %18s %18s %18s %18s %18s\n' host opsmop-noop opsmop-first opsmop-plan floor opsmop-handshake ssh-true
  W5_RT_OK=1
  W5_FIRST_OK=1
  W5_PLAN_OK=1
  while read -r h a p lh; do
    printf '%-6s %18s %18s %18s %18s %18s %18s\n' "$h" \
      "$(rt_med w5 noop-opsmop "$h") [$(rt_list w5 noop-opsmop "$h")]" \
      "$(rt_med w5 first-opsmop "$h") [$(rt_list w5 first-opsmop "$h")]" \
      "$(rt_med w5 plan-opsmop "$h") [$(rt_list w5 plan-opsmop "$h")]" \
      "$(rt_med w5 noop-floor "$h") [$(rt_list w5 noop-floor "$h")]" \
      "$(rt_med w5 handshake-opsmop "$h") [$(rt_list w5 handshake-opsmop "$h")]" \
      "$(rt_med w5 ssh-true "$h") [$(rt_list w5 ssh-true "$h")]"
    lim=$(awk -v a="$(rt_med w5 handshake-opsmop "$h")" 'BEGIN { print a + 3 }')
    [ "$(le "$(rt_med w5 noop-opsmop "$h")" "$lim")" = 1 ] || W5_RT_OK=0
    W5_RT_TEXT+="${W5_RT_TEXT:+, }$h $(rt_med w5 noop-opsmop "$h") vs $(rt_med w5 handshake-opsmop "$h")+3"
    lim=$(awk -v a="$(rt_med w5 handshake-opsmop "$h")" 'BEGIN { print a + 6 }')
    [ "$(le "$(rt_med w5 first-opsmop "$h")" "$lim")" = 1 ] || W5_FIRST_OK=0
    W5_FIRST_TEXT+="${W5_FIRST_TEXT:+, }$h $(rt_med w5 first-opsmop "$h") vs $(rt_med w5 handshake-opsmop "$h")+6"
    [ "$(le "$(rt_med w5 plan-opsmop "$h")" "$(rt_med w5 first-opsmop "$h")")" = 1 ] || W5_PLAN_OK=0
    W5_PLAN_TEXT+="${W5_PLAN_TEXT:+, }$h $(rt_med w5 plan-opsmop "$h") vs $(rt_med w5 first-opsmop "$h")"
  done <"$WORK/w5p.hosts"
  echo "(opsmop-handshake: an opsmop connection (bench/sshconnect, package connection) that authenticates and runs nothing)"
fi

echo
echo "== targets"
target() { # NAME VALUE-TEXT 1|0|na
  local v=MISSED
  case $3 in 1) v=MET ;; na) v="N/A" ;; esac
  printf '  %-7s %-62s %s\n' "$v" "$1" "$2"
}
for w in $WORKLOADS; do
  case $w in
    w1 | w2)
      o=$(med "$w" noop opsmop); a=$(med "$w" noop ansible); f=$(med "$w" noop floor)
      target "${w^^} no-op at least 30x faster than Ansible" "Ansible/opsmop = $(ratio "$a" "$o")" "$(ge "$(ratio "$a" "$o")" 30)"
      target "${w^^} no-op within 1.5x of the floor" "opsmop/floor = $(ratio "$o" "$f")" "$(le "$(ratio "$o" "$f")" 1.5)"
      if [ "$w" = w1 ]; then
        o=$(med w1 first opsmop); a=$(med w1 first ansible)
        target "W1 first apply at least 40x faster than Ansible" "Ansible/opsmop = $(ratio "$a" "$o")" "$(ge "$(ratio "$a" "$o")" 40)"
      fi
      ;;
    w4)
      o=$(med w4 first opsmop); s=$(med w4 first scp)
      target "W4 within 1.3x of scp" "opsmop/scp = $(ratio "$o" "$s")" "$(le "$(ratio "$o" "$s")" 1.3)"
      ;;
    w5)
      target "W5 no-op at most handshake + 3 round trips per host" "$W5_RT_TEXT" "$W5_RT_OK"
      o=$(med w5 noop opsmop); a=$(med w5 noop ansible)
      target "W5 no-op at least 30x faster than Ansible" "Ansible/opsmop = $(ratio "$a" "$o")" "$(ge "$(ratio "$a" "$o")" 30)"
      target "W5 first apply at most handshake + 6 round trips per host" "$W5_FIRST_TEXT" "$W5_FIRST_OK"
      o=$(med w5 first opsmop); a=$(med w5 first ansible)
      target "W5 first apply at least 25x faster than Ansible" "Ansible/opsmop = $(ratio "$a" "$o")" "$(ge "$(ratio "$a" "$o")" 25)"
      target "W5 a saved plan's apply costs no more round trips than a first apply" "$W5_PLAN_TEXT" "$W5_PLAN_OK"
      ;;
    w3)
      o=$(med w3 first opsmop); a=$(med w3 first ansible)
      target "W3 first apply at least 10x faster than Ansible" "Ansible/opsmop = $(ratio "$a" "$o")" "$(ge "$(ratio "$a" "$o")" 10)"
      ;;
  esac
done
echo
echo "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); finished $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "raw output saved in $OUT"
