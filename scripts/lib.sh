# Shared by scripts/run and scripts/test: picks a toolchain that can build the wasm front end,
# and installs what is missing into a cache that survives between runs and clones.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORTICO_CACHE=${PORTICO_CACHE:-$HOME/.cache/portico}
TOOLS="$PORTICO_CACHE/tools"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PORTICO_CACHE/target}
mkdir -p "$TOOLS/bin" "$CARGO_TARGET_DIR"

CARGO_LEPTOS_VERSION=0.3.11
BINARYEN_VERSION=132.0.0
LEPTOS_LIB_ARGS=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $*"
  fi
}

APT_UPDATED=
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  say "installing Debian packages: ${missing[*]}"
  if [ -z "$APT_UPDATED" ]; then as_root apt-get update -qq; APT_UPDATED=1; fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

has_wasm_std() {
  local sysroot
  sysroot=$("$1" --print sysroot 2>/dev/null) || return 1
  [ -d "$sysroot/lib/rustlib/wasm32-unknown-unknown/lib" ]
}

# Use the caller's toolchain when it can target wasm32; otherwise Debian's rustc-web, which
# builds the wasm std from source.
select_toolchain() {
  PATH="$TOOLS/bin:$TOOLS/npm/node_modules/.bin:$PATH"
  if command -v rustc >/dev/null && has_wasm_std rustc; then
    say "toolchain: $(rustc --version) (has the wasm32 target)"
  else
    apt_install rustc-web cargo-web rust-web-src lld-22
    PATH="$TOOLS/bin:$TOOLS/npm/node_modules/.bin:/usr/bin:$PATH"
    export RUSTC_BOOTSTRAP=1
    # Since std is built from source anyway, build it for size: panics abort without
    # formatting a message, and std picks its smaller implementations.
    export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort"
    LEPTOS_LIB_ARGS=(--lib-cargo-args=-Zbuild-std=std,panic_abort
      --lib-cargo-args=-Zbuild-std-features=optimize_for_size)
    say "toolchain: $(rustc --version) (Debian rustc-web, wasm std built from source)"
  fi
  export PATH
}

ensure_build_tools() {
  select_toolchain
  command -v npm >/dev/null || apt_install nodejs npm

  if [ "$(cargo-leptos --version 2>/dev/null)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
    say "installing cargo-leptos $CARGO_LEPTOS_VERSION (first run only, ~10 minutes)"
    # Its release profile uses fat LTO, which took 45 minutes here; thin codegen is plenty.
    CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
      CARGO_TARGET_DIR="$PORTICO_CACHE/tools-build" \
      cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked \
        --features no_downloads --root "$TOOLS"
  fi

  local wbg
  wbg=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' "$REPO_ROOT/Cargo.lock")
  [ -n "$wbg" ] || die "no wasm-bindgen version in Cargo.lock"
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wbg" ]; then
    say "installing wasm-bindgen-cli $wbg (must equal Cargo.lock's wasm-bindgen)"
    # Not --locked: one of its locked dependencies is no longer on the registry.
    CARGO_TARGET_DIR="$PORTICO_CACHE/tools-build" \
      cargo install wasm-bindgen-cli --version "$wbg" --root "$TOOLS" --force
  fi

  # Debian's binaryen (108) silently breaks the bundle; the npm build is correct.
  if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ]; then
    say "installing binaryen $BINARYEN_VERSION (wasm-opt) from npm"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" "binaryen@$BINARYEN_VERSION"
  fi
}

# --precompress writes a brotli (quality 11) and a gzip copy beside every file of the site,
# which the server sends to browsers that accept them; hash-files (Cargo.toml) names the
# bundle's files after their content and lists the hashes in hash.txt beside the binary.
build_release() {
  say "building the server and the hydrated front end (release)"
  (cd "$REPO_ROOT" && cargo leptos build --release --split --precompress "${LEPTOS_LIB_ARGS[@]}")
}

PORTICO_BIN="$CARGO_TARGET_DIR/release/portico"
