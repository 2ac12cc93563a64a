#!/usr/bin/env bash
# The demo behind `make demo`: start a lab of throwaway OpenSSH hosts (three
# web hosts, a bastion, a database host reachable only through the bastion),
# run `opsmop check`, `apply`, `check` of examples/site.toml against it, write
# the apply's report page (bin/demo/report.html), and stop the lab. Needs
# root (namespaces); installs missing Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "the demo starts sshd hosts in Linux namespaces and needs root: sudo make demo" >&2
  exit 1
fi
export PATH="/usr/local/go/bin:$PATH"
bash .ci/deps
go build -o bin/opsmop . && go build -o bin/opsmop-lab ./internal/lab/cmd/opsmop-lab

LAB=/run/opsmop-lab/demo
OUT=bin/demo # the apply stream and its report page (bin/ is not tracked)
mkdir -p "$OUT"
bin/opsmop-lab down --dir "$LAB" >/dev/null 2>&1 || true
bin/opsmop-lab up --dir "$LAB" --subnet 70 \
  --hosts web1:webservers,web2:webservers,web3:webservers,bastion:bastions,db1:dbservers@bastion
trap 'bin/opsmop-lab down --dir "$LAB"' EXIT

# A private HOME for the demo: the lab's host keys are the known ones (host
# keys are checked), the lab's client key is the default key.
export HOME="$LAB/home"
mkdir -p "$HOME/.ssh" && chmod 700 "$HOME/.ssh"
cp "$LAB/known_hosts" "$HOME/.ssh/known_hosts"
cp "$LAB/id_ed25519" "$HOME/.ssh/id_ed25519"
export DEMO_SUDO_PASSWORD="$(cat "$LAB/deploy_password")"
unset SSH_AUTH_SOCK

run() { echo; echo "\$ $*"; "$@"; }
run bin/opsmop inventory -i "$LAB/inventory.toml" --graph
run bin/opsmop check examples/site.toml -i "$LAB/inventory.toml"
# apply's --json event stream, kept for the report page at the end; recap
# prints the stream's recap table.
echo; echo "\$ bin/opsmop apply examples/site.toml -i $LAB/inventory.toml --json > $OUT/apply.json"
bin/opsmop apply examples/site.toml -i "$LAB/inventory.toml" --json > "$OUT/apply.json"
run bin/opsmop recap "$OUT/apply.json"
run bin/opsmop check examples/site.toml -i "$LAB/inventory.toml" --detailed-exitcode
run bin/opsmop run -i "$LAB/inventory.toml" --limit 'web*' -- 'service app status && echo app running on $(hostname)'
# The run report: one HTML page of the apply (docs/report.md); report
# prints the path it wrote.
run bin/opsmop report "$OUT/apply.json" -o "$OUT/report.html"
