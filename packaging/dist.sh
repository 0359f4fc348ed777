#!/usr/bin/env bash
# Builds a release archive of Kroma from a committed tree, never from the work tree:
#
#   bash packaging/dist.sh [TAG]
#
# With TAG, exactly that tag's tree is packed and TAG is the version; without it, HEAD's tree, and
# the version is `git describe --tags --always` of HEAD (the short commit when there is no tag).
# The tree is exported with `git archive`, kromad, kromactl and kroma-mcp are built from it with
# the `dist` profile (release with whole-program LTO), and everything is written to
#
#   $DIST_DIR/kroma-<version>-<target triple>.tar.gz    (DIST_DIR defaults to <repo>/dist)
#   $DIST_DIR/SHA256SUMS                                 (every kroma-*.tar.gz in DIST_DIR)
#
# The archive holds one folder, kroma-<version>-<triple>/, laid out as an installation prefix:
#
#   bin/                   kromad, kromactl, kroma-mcp
#   share/kroma/models/    the model installer (kroma_models.py, ncnn2onnx.py) and model licences
#   share/kroma/systemd/, share/kroma/launchd/    the service unit templates
#   share/man/man1/, share/bash-completion/, share/zsh/, share/fish/    (from install-share.sh)
#   README.md, LICENSE-MIT, LICENSE-APACHE, THIRD-PARTY-LICENSES.html
#
# so it installs by unpacking into a prefix without its top folder, then fetching the models:
#
#   tar -xzf kroma-<version>-<triple>.tar.gz -C ~/.local --strip-components=1
#   kromactl local-models install
#
# Built to be reproducible: the same commit, Rust toolchain and C compiler should give the same
# archive, byte for byte.
# SOURCE_DATE_EPOCH is the commit's time; rustc and the C compiler get --remap-path-prefix /
# -ffile-prefix-map for the exported tree, $CARGO_HOME and the target dir, so no path of this
# machine is left in the binaries (through CARGO_ENCODED_RUSTFLAGS, which makes cargo ignore
# `build.rustflags` in cargo config files; RUSTFLAGS from the environment is kept in front); tar
# sorts the entries, fixes times, owners and modes (0755 programs and scripts, 0644 the rest),
# and gzip writes no name or time.
#
# Environment:
#   DIST_DIR          where the archive and SHA256SUMS go (default <repo>/dist)
#   CARGO_TARGET_DIR  the build's target dir, reused between runs
#                     (default ${XDG_CACHE_HOME:-~/.cache}/kroma/dist-target)
#   KROMA_DIST_WORK   where the tree is exported (default ${XDG_CACHE_HOME:-~/.cache}/kroma/dist-work).
#                     Always the same folder, emptied and exported afresh on each run, so the
#                     remapped paths, and with them the compiler flags cargo fingerprints, are the
#                     same from run to run and the build in CARGO_TARGET_DIR is reused.
#   CARGO_HOME        (default ~/.cargo)
#
# Needs git, cargo, GNU tar, gzip, sha256sum; installs cargo-about (crates.io) when it is missing.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/kroma
binaries=(kromad kromactl kroma-mcp)
cargo_about_version=0.9.3

say() { printf '==> %s\n' "$*"; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

case "${1:-}" in
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
esac
[ $# -le 1 ] || die "usage: packaging/dist.sh [TAG]"
tag=${1:-}

for tool in git cargo rustc tar gzip sha256sum; do
    command -v "$tool" >/dev/null || die "$tool is needed and not on PATH"
done
tar --version 2>/dev/null | grep -q 'GNU tar' || die "GNU tar is needed (for --sort=name and --pax-option)"
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || die "$repo is not a git checkout"

# --- 1. Which commit, which version ---------------------------------------------------------------
if [ -n "$tag" ]; then
    commit=$(git -C "$repo" rev-parse --verify --quiet "refs/tags/$tag^{commit}") \
        || die "there is no tag '$tag' in $repo (git -C $repo tag --list shows the tags)"
    version=$tag
    say "packing tag $tag: $(git -C "$repo" log -1 --format='commit %h, %s (%cd)' --date=iso "$commit")"
else
    commit=$(git -C "$repo" rev-parse --verify "HEAD^{commit}") || die "$repo has no commit to pack"
    version=$(git -C "$repo" describe --tags --always "$commit")
    say "packing HEAD: $(git -C "$repo" log -1 --format='commit %h, %s (%cd)' --date=iso "$commit")"
    if [ -n "$(git -C "$repo" status --porcelain --untracked-files=normal)" ]; then
        warn "the work tree has uncommitted changes; they are NOT in the archive (it packs commit ${commit:0:12})"
    fi
fi
version=${version//\//-}
SOURCE_DATE_EPOCH=$(git -C "$repo" log -1 --format=%ct "$commit")
export SOURCE_DATE_EPOCH

# --- 2. Export the tree ---------------------------------------------------------------------------
work=${KROMA_DIST_WORK:-$cache/dist-work}
mkdir -p "$work"
work=$(cd "$work" && pwd -P)
if command -v flock >/dev/null; then
    exec 9>"$work/.lock"
    flock -n 9 || die "another dist.sh is running (it holds $work/.lock)"
fi
src=$work/src
rm -rf "$src"
mkdir -p "$src"
git -C "$repo" archive --format=tar "$commit" | tar -xf - -C "$src" \
    || die "could not export commit $commit with git archive"
say "exported commit ${commit:0:12} into $src (version $version)"

target_dir=${CARGO_TARGET_DIR:-$cache/dist-target}
mkdir -p "$target_dir"
target_dir=$(cd "$target_dir" && pwd -P)
export CARGO_TARGET_DIR=$target_dir
cargo_home=${CARGO_HOME:-$HOME/.cargo}
cargo_home=$(cd "$cargo_home" 2>/dev/null && pwd -P) || die "CARGO_HOME ${CARGO_HOME:-$HOME/.cargo} does not exist"

# The exported files carry the commit's time. Cargo decides freshness by time, so after a build of
# a newer commit an older commit's files would look unchanged: when the last dist build in this
# target dir was of another commit, date the files now so the workspace crates are rebuilt.
stamp=$target_dir/kroma-dist.commit
if [ "$(cat "$stamp" 2>/dev/null)" != "$commit" ]; then
    find "$src" -exec touch -h {} +
fi

# --- 3. Build ------------------------------------------------------------------------------------
triple=${CARGO_BUILD_TARGET:-$(cd "$src" && rustc -vV | sed -n 's/^host: //p')}
[ -n "$triple" ] || die "could not tell the target triple from rustc -vV"
if [ -n "${CARGO_BUILD_TARGET:-}" ]; then
    bin_dir=$target_dir/$triple/dist
else
    bin_dir=$target_dir/dist
fi

rustflags=()
if [ -n "${CARGO_ENCODED_RUSTFLAGS:-}" ]; then
    IFS=$'\x1f' read -r -a rustflags <<<"$CARGO_ENCODED_RUSTFLAGS"
elif [ -n "${RUSTFLAGS:-}" ]; then
    read -r -a rustflags <<<"$RUSTFLAGS"
fi
prefix_maps=""
# Fixed names for the three places a build leaves paths: the tree, the registry, the target dir.
remap() { # FROM TO
    rustflags+=("--remap-path-prefix=$1=$2")
    case "$1" in
        *[[:space:]]*) warn "'$1' holds a space; C code compiled by build scripts may keep that path" ;;
        *) prefix_maps+=" -ffile-prefix-map=$1=$2" ;;
    esac
}
remap "$cargo_home" /cargo
remap "$target_dir" /build/target
remap "$src" /build/kroma
encoded=$(IFS=$'\x1f'; printf '%s' "${rustflags[*]}")

say "building ${binaries[*]} for $triple (dist profile: release with whole-program LTO; about 10 minutes the first time on 2 cores) in $target_dir"
(
    cd "$src"
    unset RUSTFLAGS
    export CARGO_ENCODED_RUSTFLAGS=$encoded CFLAGS="${CFLAGS:-}$prefix_maps" CXXFLAGS="${CXXFLAGS:-}$prefix_maps"
    cargo build --profile dist --locked --bin kromad --bin kromactl --bin kroma-mcp
) || die "the build failed (see above)"
printf '%s\n' "$commit" > "$stamp"
for b in "${binaries[@]}"; do
    [ -x "$bin_dir/$b" ] || die "the build did not produce $bin_dir/$b"
    for path in "$src" "$cargo_home" "$target_dir" "$repo" "$HOME/"; do
        if grep -qaF -- "$path" "$bin_dir/$b"; then
            warn "$b still contains the local path $path; the archive will not be reproducible elsewhere"
        fi
    done
done

# --- 4. Stage ------------------------------------------------------------------------------------
name=kroma-$version-$triple
stage_root=$(mktemp -d "${TMPDIR:-/tmp}/kroma-dist.XXXXXX")
trap 'rm -rf "$stage_root"' EXIT
stage=$stage_root/$name
mkdir -p "$stage/bin" "$stage/share/kroma/models/licenses"
install -m 0755 "${binaries[@]/#/$bin_dir/}" "$stage/bin/"

# The same model files install.sh installs, where `kromactl local-models install` looks for them.
install -m 0644 "$src/packaging/models/kroma_models.py" "$src/packaging/models/ncnn2onnx.py" \
    "$stage/share/kroma/models/"
install -m 0644 "$src"/packaging/models/licenses/* "$stage/share/kroma/models/licenses/"

for kind in systemd launchd; do
    if [ -d "$src/packaging/$kind" ]; then
        mkdir -p "$stage/share/kroma/$kind"
        cp -R "$src/packaging/$kind/." "$stage/share/kroma/$kind/"
    else
        warn "packaging/$kind is not in commit ${commit:0:12}; the archive has no $kind files"
    fi
done

if [ -f "$src/packaging/install-share.sh" ]; then
    say "man pages and shell completions (packaging/install-share.sh)"
    (cd "$src" && bash packaging/install-share.sh "$stage/bin" "$stage") \
        || die "packaging/install-share.sh failed (see above)"
else
    warn "packaging/install-share.sh is not in commit ${commit:0:12}; the archive has no man pages or shell completions"
fi

# Files the tree should have; until they are committed, the work tree's copies with a warning.
from_tree() { # PATH: the exported tree's file, else the work tree's
    if [ -e "$src/$1" ]; then
        printf '%s\n' "$src/$1"
    elif [ -e "$repo/$1" ]; then
        warn "$1 is not in commit ${commit:0:12}; taking the work tree's copy (commit it)"
        printf '%s\n' "$repo/$1"
    else
        die "$1 is neither in commit ${commit:0:12} nor in the work tree"
    fi
}
license_mit=$(from_tree LICENSE-MIT)
license_apache=$(from_tree LICENSE-APACHE)
install -m 0644 "$src/README.md" "$license_mit" "$license_apache" "$stage/"

# Third-party licences: every crate compiled into the binaries (cargo-about, offline).
about_dir=$(from_tree packaging/about)
if ! cargo about --version >/dev/null 2>&1; then
    say "installing cargo-about $cargo_about_version (lists the crates' licences) from crates.io"
    cargo install cargo-about --locked --features cli --version "$cargo_about_version" \
        || die "could not install cargo-about"
fi
about_have=$(cargo about --version | awk '{print $2}')
case "$about_have" in
    0.9.*) ;;
    *) warn "cargo-about $about_have is not the tested $cargo_about_version; the licence file may differ" ;;
esac
say "THIRD-PARTY-LICENSES.html (cargo-about $about_have, offline: the crates' own licence files only)"
(
    cd "$src"
    # cargo metadata needs every platform's manifests; a no-op when they are already downloaded.
    cargo fetch --locked --quiet
    cargo about generate --frozen --fail --config "$about_dir/about.toml" --target "$triple" \
        --manifest-path "$src/Cargo.toml" --output-file "$stage/THIRD-PARTY-LICENSES.html" \
        "$about_dir/about.hbs"
) || die "cargo about could not list the licences; a licence not in packaging/about/about.toml's accepted list must be read and added there"

# Modes: directories and programs (the binaries, and files starting with #!) 0755, the rest 0644.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -exec chmod 0644 {} +
while IFS= read -r -d '' file; do
    if [ "${file#"$stage/bin/"}" != "$file" ] || [ "$(head -c 2 "$file" | tr -d '\0')" = '#!' ]; then
        chmod 0755 "$file"
    fi
done < <(find "$stage" -type f -print0)
if [ -n "$(find "$stage" ! -type f ! -type d)" ]; then
    die "the staged tree holds links or special files: $(find "$stage" ! -type f ! -type d | tr '\n' ' ')"
fi

# --- 5. Archive ----------------------------------------------------------------------------------
dist_dir=${DIST_DIR:-$repo/dist}
mkdir -p "$dist_dir"
dist_dir=$(cd "$dist_dir" && pwd)
archive=$dist_dir/$name.tar.gz
partial=$(mktemp "$dist_dir/.$name.tar.gz.XXXXXX")
LC_ALL=C tar --create --format=posix --sort=name --mtime="@$SOURCE_DATE_EPOCH" \
    --owner=0 --group=0 --numeric-owner \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    --file=- --directory="$stage_root" "$name" | gzip -n -9 > "$partial" \
    || { rm -f "$partial"; die "writing the archive failed"; }
chmod 0644 "$partial"
mv -f "$partial" "$archive"
(
    cd "$dist_dir"
    LC_ALL=C sha256sum -- kroma-*.tar.gz > .SHA256SUMS.partial
    mv -f .SHA256SUMS.partial SHA256SUMS
)
sum=$(cd "$dist_dir" && sha256sum -- "$name.tar.gz" | awk '{print $1}')

say "archive: $archive ($(du -h "$archive" | cut -f1))"
say "sha256:  $sum  (also in $dist_dir/SHA256SUMS)"
say "install: tar -xzf $archive -C ~/.local --strip-components=1 && kromactl local-models install"
