#!/usr/bin/env bash
# npm run demo: keynode's local job end to end, on a throwaway node, with the built CLI.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=$(mktemp -d -t keynode-demo-XXXXXX)
trap 'rm -rf "$demo"' EXIT
export KEYNODE_PATH="$demo/node"
export XDG_RUNTIME_DIR="$demo/run"   # the agent's session and log stay inside the throwaway directory
mkdir -m 700 "$XDG_RUNTIME_DIR"
# Scripts give the password by file or environment; a person at a terminal is prompted instead.
printf 'demo password, not a real one\n' >"$demo/password"
chmod 600 "$demo/password"
keynode() { node dist/cli/keynode.cjs --password-file "$demo/password" "$@"; }
step() { printf '\n\033[1m$ keynode %s\033[0m\n' "$*"; }
run() { step "$@"; keynode "$@"; }

run init
run vaults create prod
step "secrets set prod:db/password   (value on stdin)"
printf 'hunter2' | keynode secrets set prod:db/password
run secrets set prod:api/stripe-key --generate --length 40
run secrets set prod:tls/key.pem --file /etc/hostname
run secrets get prod:db/password; echo
step "secrets set prod:db/password -m 'rotate db password'"
printf 'correct-horse-battery-staple' | keynode secrets set prod:db/password -m 'rotate db password'
run secrets ls prod --tree
run vaults log prod
first=$(keynode vaults log prod --path db/password --json | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); console.log(j.commits.at(-1).commit)')
run secrets get prod:db/password --version "${first:0:8}"; echo
run vaults diff prod HEAD~1 HEAD
run secrets mv prod:tls prod:certs
run vaults revert prod HEAD~1
run secrets ls prod
run vaults tag prod production
run vaults list --json
run status

step "vaults export prod --git-bundle prod.bundle --yes   (plaintext: for git, not for storage)"
keynode vaults export prod --git-bundle "$demo/prod.bundle" --yes
git clone -q "$demo/prod.bundle" "$demo/clone" && printf 'git clone: %s\n' "$(cd "$demo/clone" && git log --oneline | wc -l) commits, db/password = $(cat "$demo/clone/db/password")"

step "agent start --background   (unlock once; every command after this is fast)"
keynode agent start --background
time_get() { local t0 t1; t0=$(date +%s%N); KEYNODE_PASSWORD= env -u NODE_EXTRA_CA_CERTS node dist/cli/keynode.cjs secrets get prod:db/password >/dev/null; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }
time_get >/dev/null
printf 'secrets get through the agent, no password given: %s ms (NODE_EXTRA_CA_CERTS unset)\n' "$(time_get)"
step "secrets env prod:db -- sh -c 'echo \"the deploy script sees PASSWORD with \${#PASSWORD} characters\"'"
keynode secrets env prod:db -- sh -c 'echo "the deploy script sees PASSWORD with ${#PASSWORD} characters"'
printf 'db_url: postgres://app:{{ prod:db/password }}@db:5432/app\n' >"$demo/config.tpl"
step "secrets inject -i config.tpl -o config.yml"
keynode secrets inject -i "$demo/config.tpl" -o "$demo/config.yml"
ls -l "$demo/config.yml" | cut -d' ' -f1
run vaults export prod --format dotenv
run agent stop

step "secrets get prod:db/password   (wrong password)"
set +e
KEYNODE_PASSWORD=wrong node dist/cli/keynode.cjs secrets get prod:db/password
echo "exit code $?"
set -e

step "nothing under the node path is plaintext:"
if grep -rqa -e hunter2 -e 'db/password' -e prod "$KEYNODE_PATH"; then echo 'FOUND PLAINTEXT'; exit 1; else ls -la "$KEYNODE_PATH"; echo 'no secret, name or vault name found in any file'; fi
