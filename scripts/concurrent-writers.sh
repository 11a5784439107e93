#!/usr/bin/env bash
# The full-size version of tests/e2e/concurrency.test.ts: 16 parallel `secrets set` x 6 rounds
# on a throwaway node, then counts acknowledged writes that are missing or wrong.
# Usage: npm run build && bash scripts/concurrent-writers.sh [agent] [path/to/keynode.cjs]
set -u
CLI=${2:-$(dirname "$0")/../dist/cli/keynode.cjs}
root=$(mktemp -d)
export KEYNODE_PATH=$root/node KEYNODE_PASSWORD=pw KEYNODE_NO_PROMPT=1 XDG_RUNTIME_DIR=$root/run
mkdir -m 700 "$XDG_RUNTIME_DIR"
unset NODE_EXTRA_CA_CERTS
node "$CLI" init --kdf-memory 8192 --kdf-iterations 1 >/dev/null 2>&1
node "$CLI" vaults create v >/dev/null
[ "${1:-}" = agent ] && node "$CLI" agent start --background >/dev/null
for round in 1 2 3 4 5 6; do
  for writer in $(seq 1 16); do
    (printf 'val-%s-%s' "$round" "$writer" | node "$CLI" secrets set "v:r$round/w$writer" --lock-timeout 60000 >/dev/null 2>&1 &&
      echo "$round $writer" >>"$root/acked") &
  done
  wait
done
missing=0
acked=0
while read -r round writer; do
  acked=$((acked + 1))
  [ "$(node "$CLI" secrets get "v:r$round/w$writer" 2>/dev/null)" = "val-$round-$writer" ] || missing=$((missing + 1))
done <"$root/acked"
echo "mode=${1:-no-agent} acknowledged=$acked missing=$missing"
[ "${1:-}" = agent ] && node "$CLI" agent stop >/dev/null
rm -rf "$root"
