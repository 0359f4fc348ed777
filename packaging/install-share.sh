#!/usr/bin/env bash
# Installs what goes beside the binaries under a prefix: the man pages (kromactl and each of its
# commands, kromad, kroma-mcp) and the shell completions of kromactl (bash, zsh, fish), both
# rendered by the binaries themselves from their command line definitions, and the service unit
# templates (`kromactl daemon install-service` writes the units it installs from the same files).
# install.sh and dist.sh call it; safe to run again.
#
#   usage: packaging/install-share.sh BIN_DIR PREFIX
#
# With PREFIX=~/.local: man finds the pages through ~/.local/bin on PATH, bash-completion and fish
# look in ~/.local/share on their own; zsh needs ~/.local/share/zsh/site-functions on $fpath.
set -euo pipefail

[ $# -eq 2 ] || { echo "usage: $0 BIN_DIR PREFIX" >&2; exit 2; }
bin=$1
prefix=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
for program in kromactl kromad kroma-mcp; do
    [ -x "$bin/$program" ] || { echo "error: $bin/$program is missing or not executable" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/man"
"$bin/kromactl" dev man-pages --out "$work/man"
"$bin/kromad" --man-pages "$work/man"
"$bin/kroma-mcp" --man-pages "$work/man"
mkdir -p "$prefix/share/man/man1"
install -m 0644 "$work"/man/*.1 "$prefix/share/man/man1/"

mkdir -p "$prefix/share/bash-completion/completions" "$prefix/share/zsh/site-functions" \
    "$prefix/share/fish/vendor_completions.d"
"$bin/kromactl" completions bash > "$work/kromactl.bash"
"$bin/kromactl" completions zsh > "$work/_kromactl"
"$bin/kromactl" completions fish > "$work/kromactl.fish"
install -m 0644 "$work/kromactl.bash" "$prefix/share/bash-completion/completions/kromactl"
install -m 0644 "$work/_kromactl" "$prefix/share/zsh/site-functions/_kromactl"
install -m 0644 "$work/kromactl.fish" "$prefix/share/fish/vendor_completions.d/kromactl.fish"

mkdir -p "$prefix/share/kroma/systemd" "$prefix/share/kroma/launchd"
install -m 0644 "$repo"/packaging/systemd/kromad.service "$repo"/packaging/systemd/kromad.socket \
    "$prefix/share/kroma/systemd/"
install -m 0644 "$repo"/packaging/launchd/org.kroma.kromad.plist "$prefix/share/kroma/launchd/"

pages=$(find "$prefix/share/man/man1" -name 'krom*.1' | wc -l)
echo "==> installed $pages man pages, bash/zsh/fish completions and the service units under $prefix/share"
