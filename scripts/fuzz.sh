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
# AddressSanitizer's stack-use-after-return frames and its 256 MB quarantine (page faults on
# every fresh allocation) nearly doubled the time per input of the store targets; both are
# cut back.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=16:malloc_context_size=5:detect_stack_use_after_return=0}"
# The store targets link the static HDF5 build, which needs cmake (dev.sh's .venv has one).
[ -x .venv/bin/cmake ] && export CMAKE="$PWD/.venv/bin/cmake"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
# Small stores the engine writes (h5ad; zarr v2; zarr v3 plain and sharded), as seeds.
tiny_stores() {
    local d=fuzz/seeds
    [ -f "$d/tiny.h5ad" ] && return
    mkdir -p "$d"
    # Without RUSTC_BOOTSTRAP: it is part of cargo's fingerprint, and setting it here would
    # rebuild the whole debug target.
    [ -x target/debug/engine ] || env -u RUSTC_BOOTSTRAP cargo build -q --bin engine
    cat >"$d/tiny.yaml" <<YAML
version: 1
steps:
  - {id: d, op: synthetic_counts, n_obs: 16, n_vars: 8, n_types: 2, seed: 0}
  - {id: q, op: calculate_qc_metrics, input: d, qc_vars: "mt=MT-", percent_top: "2"}
outputs:
  - {step: q, path: tiny.h5ad}
YAML
    (cd "$d" && ../../target/debug/engine run tiny.yaml >/dev/null)
    target/debug/engine convert "$d/tiny.h5ad" "$d/v2.zarr" --format zarr2 --chunks 4,all >/dev/null
    target/debug/engine convert "$d/tiny.h5ad" "$d/v3.zarr" --format zarr3 --chunks 4,all >/dev/null
    target/debug/engine convert "$d/tiny.h5ad" "$d/sharded.zarr" --format zarr3 --chunks 2,4 --shards 8,all >/dev/null
}

seed() {
    local dir="fuzz/corpus/$1"
    mkdir -p "$dir"
    case "$1" in
    spec_yaml) cp pipelines/*.yaml "$dir"/ ;;
    spec_sqlform) cp pipelines/*.sql "$dir"/ ;;
    index_expr) printf '\x10%s' '0:10, -5:' >"$dir/a"; printf '\x40%s' '1, 5, 10:20, ::2' >"$dir/b" ;;
    sql_predicate)
        printf '%s' 'pct_counts_mt < 20' >"$dir/a"
        printf '%s' "cell_type IN ('B', 'T cell') AND NOT ok OR batch IS NULL" >"$dir/b"
        printf '%s' "n_genes BETWEEN 1 AND 100 AND _index LIKE 'a%'" >"$dir/c" ;;
    zarr_store | h5ad_open)
        tiny_stores
        if [ "$1" = h5ad_open ]; then
            cp fuzz/seeds/tiny.h5ad "$dir/"
        else
            for s in fuzz/seeds/*.zarr; do scripts/fuzz_seeds.py "$dir/$(basename "$s")" "$s"; done
        fi ;;
    esac
}
# A file whose global heap makes HDF5 loop ends the process with an error naming it: HDF5
# holds its lock in that loop, so nothing else can be done (see engine-store's watchdog).
# The h5ad target skips the inputs it can tell will loop; any other that reaches the
# watchdog is an artifact, checked here to end exactly so through the CLI.
deadline_exit() {
    local out
    out=$(ENGINE_HDF5_DEADLINE_SECS=2 target/debug/engine validate "$1" 2>&1 >/dev/null) && return 1
    [[ "$out" == *"HDF5 did not finish reading it"* ]]
}
printf '%-16s %14s %10s %8s %9s\n' target executions exec/s crashes deadlines
for t in "${targets[@]}"; do
    seed "$t"
    log="fuzz/$t.log"
    # A looping global heap waits out HDF5's deadline (60 s by default) before the exit; a
    # second keeps such inputs from eating the run. -timeout reports any other hang.
    (cd fuzz && ENGINE_HDF5_DEADLINE_SECS=1 cargo fuzz run "$t" -- -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 >"$t.log" 2>&1) || true
    runs=$(grep -oE 'Done [0-9]+ runs|^#[0-9]+' "$log" | grep -oE '[0-9]+' | tail -1 || true)
    runs=${runs:-?}
    crashes=0
    deadlines=0
    for a in "fuzz/artifacts/$t"/*; do
        [ -f "$a" ] || continue
        if [ "$t" = h5ad_open ] && deadline_exit "$a"; then
            deadlines=$((deadlines + 1))
        else
            crashes=$((crashes + 1))
        fi
    done
    # libFuzzer's own rate: a run that stops at a crash is shorter than asked.
    rate=$(grep -oE 'exec/s: [0-9]+' "$log" | grep -oE '[0-9]+' | tail -1 || true)
    rate=${rate:-?}
    printf '%-16s %14s %10s %8s %9s\n' "$t" "$runs" "$rate" "$crashes" "$deadlines"
done
