#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ for SECONDS each (default 60), one after
# the other (they use every core they get). New corpus entries are kept in
# fuzz/corpus/<target>; a crash stops the run and leaves its input in
# fuzz/artifacts/<target>/ (see docs/fuzzing.md).
#
#   scripts/fuzz.sh 300            # all targets, 5 minutes each
#   scripts/fuzz.sh 60 post_body   # one target
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# cargo-fuzz builds with sanitizer flags only nightly accepts; the stable
# toolchain accepts them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
for target in "${targets[@]}"; do
    echo "== fuzzing $target for ${seconds}s"
    mkdir -p "fuzz/corpus/$target"
    (cd fuzz && cargo fuzz run "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len=65536)
done
