#!/usr/bin/env bash
# Runs every cargo fuzz target for N seconds each (default 60), one after the other, starting
# from the seeds in fuzz/seeds/<target> and keeping what libFuzzer finds in fuzz/corpus/<target>.
# A crash stops the run; its input is in fuzz/artifacts/<target>/. Not run by CI.
#
# cargo fuzz passes nightly-only flags (sanitizer coverage, AddressSanitizer) to rustc;
# RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them. Needs `cargo install cargo-fuzz`.
set -euo pipefail

seconds="${1:-60}"
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
    mkdir -p "corpus/$target"
    corpora=("corpus/$target")
    if [ -d "seeds/$target" ]; then
        corpora+=("seeds/$target")
    fi
    echo "== $target: ${seconds}s"
    cargo fuzz run "$target" "${corpora[@]}" -- -max_total_time="$seconds"
done
