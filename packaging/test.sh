#!/usr/bin/env bash
# Runs the whole test suite inside a private D-Bus session with a throwaway, unlocked GNOME
# keyring, so the secret tests use a real Secret Service and never touch your own keyring.
# Arguments are passed to `cargo nextest run`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in dbus-run-session gnome-keyring-daemon cargo-nextest; do
    command -v "$tool" >/dev/null || {
        echo "error: $tool is missing; run bash packaging/install.sh first" >&2
        exit 1
    }
done

if [ -z "${KROMA_TEST_SESSION:-}" ]; then
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    status=0
    # The models install.sh installed, found before XDG_DATA_HOME points at the scratch keyring.
    export KROMA_MODELS_DIR=${KROMA_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kroma/models}
    # The tests' Python tools install.sh put in a venv: the MCP SDK and Selenium.
    export KROMA_TEST_PYTHON=${KROMA_TEST_PYTHON:-${XDG_DATA_HOME:-$HOME/.local/share}/kroma/test-tools/python/bin/python}
    KROMA_TEST_SESSION=1 XDG_DATA_HOME="$scratch/data" \
        dbus-run-session -- bash "${BASH_SOURCE[0]}" "$@" || status=$?
    exit "$status"
fi

# Inside the private session: a fresh keyring with a throwaway password, unlocked.
eval "$(printf 'kroma-test\n' | gnome-keyring-daemon --unlock --components=secrets 2>/dev/null)"
export GNOME_KEYRING_CONTROL
cargo nextest run --workspace --locked --no-fail-fast "$@"
