#!/usr/bin/env bash
# The README walkthrough: start kromad, create the example project (examples/night-harbor) with a
# style guide and a character, and put its scenes through a style run (with the local
# post-process chain: background removal, ×2 upscale, colour) and a character run at the fake
# image provider, so nothing is paid. Uses its own temporary socket, data dir and settings
# unless KROMA_SOCKET / KROMA_DATA_DIR / KROMA_SETTINGS are set, so it never touches a daemon you
# already run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
scratch=$(mktemp -d)
fake_pid=
cleanup() {
    kromactl daemon stop >/dev/null 2>&1 || true
    if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; fi
    rm -rf "$scratch"
}
trap cleanup EXIT
export KROMA_SOCKET=${KROMA_SOCKET:-$scratch/kromad.sock}
export KROMA_DATA_DIR=${KROMA_DATA_DIR:-$scratch/data}
export KROMA_SETTINGS=${KROMA_SETTINGS:-$scratch/settings.toml}
# The fake provider's key, handed to kromad as the secret `fake` (no keyring needed).
export KROMA_SECRET_FAKE=sk-fake

# A local server that speaks the OpenAI Images API; its first line is its base URL.
kromactl dev fake-provider --render-size 192x144 >"$scratch/fake.url" 2>/dev/null &
fake_pid=$!
for _ in $(seq 100); do [ -s "$scratch/fake.url" ] && break; sleep 0.05; done
fake_url=$(head -n1 "$scratch/fake.url")

json() { python3 -c "import json, sys; print(json.load(sys.stdin)$1)"; }

set -x
kromactl daemon start
kromactl project create "Night Harbor" --description "A rainy port city, drawn in ink and teal washes"
kromactl project list
kromactl project show night-harbor
kromactl style create night-harbor ink --default \
    --instructions "Heavy ink lines with cross-hatching" --palette "teal washes, warm lamp light"
kromactl character create night-harbor Mara --prompt "a tall harbor pilot in a red oilskin coat"
kromactl provider add fake --kind openai-compatible --base-url "$fake_url" --honors-idempotency-key
kromactl image-models list

kromactl local-models list
kromactl run plan night-harbor "$here/night-harbor/scenes" --provider fake --candidates 2 --quality low \
    --bg-remove --upscale 2 --color cinematic_warm
run=$(kromactl --json run create night-harbor "$here/night-harbor/scenes" --provider fake \
    --candidates 2 --quality low --bg-remove --upscale 2 --color cinematic_warm | json '["run"]["id"]')
max=$(kromactl --json run show "$run" | json '["plan"]["cost"]["max_usd"]')
kromactl run start "$run" --yes --max-cost "$max"
kromactl run show "$run"

kromactl run create night-harbor "$here/night-harbor/scenes/pier-rain.png" --stage character \
    --character Mara --provider fake --quality low --dry-run
kromactl run list
kromactl cost --project night-harbor
kromactl asset list night-harbor --kind generated
kromactl asset list night-harbor --kind color_corrected
kromactl bg-remove "$here/night-harbor/scenes/pier-rain.png" --mask-only -o "$scratch/masks"
kromactl daemon status
kromactl events | tail -n 5
kromactl daemon stop
