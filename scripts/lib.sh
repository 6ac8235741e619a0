# Shared by scripts/run and scripts/test: picks a toolchain that can build the wasm front end,
# and installs what is missing into a cache that survives between runs and clones.
# shellcheck shell=bash

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORTICO_CACHE=${PORTICO_CACHE:-$HOME/.cache/portico}
TOOLS="$PORTICO_CACHE/tools"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PORTICO_CACHE/target}
mkdir -p "$TOOLS/bin" "$CARGO_TARGET_DIR"

BINARYEN_VERSION=132.0.0
ESBUILD_VERSION=0.28.2
WASM_CARGO_ARGS=()

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

# Numbered steps with the time each took on this project's reference machine (2 cores, nothing
# cached), so a long one is not mistaken for a hang. The calling script sets STEPS.
STEP=0
STEPS=${STEPS:-4}
STEP_STARTED=
step() {
  step_done
  STEP=$((STEP + 1))
  STEP_STARTED=$SECONDS
  printf '\033[1m==> [%d/%d] %s\033[0m\n' "$STEP" "$STEPS" "$*" >&2
}
step_done() {
  if [ -n "$STEP_STARTED" ]; then printf '    (took %ds)\n' $((SECONDS - STEP_STARTED)) >&2; fi
  STEP_STARTED=
}
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
    WASM_CARGO_ARGS=(--wasm-cargo-arg=-Zbuild-std=std,panic_abort
      --wasm-cargo-arg=-Zbuild-std-features=optimize_for_size)
    say "toolchain: $(rustc --version) (Debian rustc-web, wasm std built from source)"
  fi
  export PATH
}

# The build needs no cargo-installed tool: the build step (scripts/site, a workspace crate)
# links the wasm-bindgen and wasm-split libraries; wasm-opt and esbuild come from npm in
# seconds.
ensure_build_tools() {
  step "toolchain (Debian's rustc-web when rustup has no wasm32 std; here 14 s from apt's cache, longer when it downloads)"
  select_toolchain
  command -v npm >/dev/null || apt_install nodejs npm

  step "wasm-opt and esbuild from npm (here: 3 s)"
  # Debian's binaryen (108) silently breaks the bundle; the npm build is correct.
  if [ "$(wasm-opt --version 2>/dev/null | awk '{print $3}')" != "${BINARYEN_VERSION%%.*}" ] ||
    [ "$(esbuild --version 2>/dev/null)" != "$ESBUILD_VERSION" ]; then
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/npm" \
      "binaryen@$BINARYEN_VERSION" "esbuild@$ESBUILD_VERSION"
  fi
}

# Builds the server and the site with the workspace's build step (scripts/site): the two
# compile side by side, then the bundle is split, bound, optimised, minified, named after its
# content (hash.txt beside the binary) and precompressed (brotli and gzip copies the server
# sends to browsers that accept them).
build_release() {
  step "the build step itself (cargo build -p portico-site; cold here: 3 min)"
  (cd "$REPO_ROOT" && cargo build --release --quiet -p portico-site)
  step "the server and the bundle, side by side (cold here: 13 min; unchanged: 1 s)"
  (cd "$REPO_ROOT" && "$CARGO_TARGET_DIR/release/portico-site" build "${WASM_CARGO_ARGS[@]}")
  step_done
}

PORTICO_BIN="$CARGO_TARGET_DIR/release/portico"
