#!/usr/bin/env bash
# Regenerates src/bindings.rs, the stand-in `windows` crate's Win32 items, with windows-bindgen
# 0.66.0 (the release that generated `windows` 0.62.2) from the Windows metadata it bundles.
#
#   bash windows-stand-in/generate.sh
#
# The items are listed in filter.txt (one metadata name a line; windows-bindgen adds what they
# depend on). `--implement` emits the `<I>_Impl` traits `#[implement]` needs, as the `windows`
# crate's `implement` feature does. One generated item is Windows-only and is gated
# afterwards: `impl windows_core::Free for HANDLE` (windows-core defines `Free` only on
# Windows, and `CloseHandle` is a kernel32 import).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
cargo run --quiet --release --manifest-path generator/Cargo.toml -- \
    --out src/bindings.rs --implement --filter $(grep -v '^#' filter.txt)
sed -i 's/^\( *\)impl windows_core::Free for HANDLE {/\1#[cfg(windows)]\n\1impl windows_core::Free for HANDLE {/' src/bindings.rs
grep -q '#\[cfg(windows)\]' src/bindings.rs
echo "generated $here/src/bindings.rs"
