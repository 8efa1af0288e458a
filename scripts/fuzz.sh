#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 300) and reports executions and crashes.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
# cargo-fuzz needs nightly features: RUSTC_BOOTSTRAP=1 lets the stable toolchain build them.
# Seed corpora come from pipelines/ and tests/; crashes land in fuzz/artifacts/TARGET/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
seed() {
    local dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    case "$1" in
    spec_yaml) cp pipelines/*.yaml "$dir"/ ;;
    spec_sqlform) cp pipelines/*.sql "$dir"/ ;;
    index_expr) printf '\x10%s' '0:10, -5:' >"$dir/a"; printf '\x40%s' '1, 5, 10:20, ::2' >"$dir/b" ;;
    esac
}
printf '%-16s %14s %10s %8s\n' target executions exec/s crashes
for t in "${targets[@]}"; do
    seed "$t"
    log="fuzz/$t.log"
    (cd fuzz && cargo fuzz run "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 >"$t.log" 2>&1) || true
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' || echo "?")
    crashes=$(find "fuzz/artifacts/$t" -type f 2>/dev/null | wc -l)
    rate="?"
    [ "$runs" != "?" ] && rate=$((runs / secs))
    printf '%-16s %14s %10s %8s\n' "$t" "$runs" "$rate" "$crashes"
done
