#!/usr/bin/env bash
# Two engine binaries (say, main and a refactor) on the same pipelines in one run, each run
# alternately ROUNDS times: wall time and peak RSS per run, and whether every file the two
# wrote holds bit-identical values as Python anndata reads them (tests/python/compare.py:
# exact, NaN-aware, every element, dtype and uns entry) and every PNG is byte-identical.
#   benches/same_engine.sh OLD_BINARY NEW_BINARY [ROUNDS]       (default 3)
# Pipelines: pipelines/blobs.yaml (50,000 x 1,000 dense blobs: scale, PCA, kNN, Leiden, plot)
# and pipelines/counts.yaml at 100,000 x 20,000 (QC, filters, a SQL filter, normalize, log1p,
# HVG, scale, PCA, kNN, Leiden, UMAP, plots), and pipelines/counts_file.yaml on the bundled
# counts_demo.h5ad (the file reader).
set -euo pipefail
cd "$(dirname "$0")/.."
old="$(realpath "$1")"
new="$(realpath "$2")"
rounds="${3:-3}"
scripts/bootstrap.sh
source benches/measure.sh
py=.venv/bin/python
work=.bench/same_engine
rm -rf "$work"
mkdir -p "$work"
declare -A runs=(
    [blobs]="pipelines/blobs.yaml"
    [counts100k]="pipelines/counts.yaml --param n_obs=100000"
    [counts_file]="pipelines/counts_file.yaml --param input=pipelines/data/counts_demo.h5ad"
)
echo "| run | wall | peak MiB |"
echo "|---|---|---|"
for name in blobs counts100k counts_file; do
    for r in $(seq "$rounds"); do
        for which in old new; do
            bin=$old
            [[ $which == new ]] && bin=$new
            out="$work/$name/$which"
            # Fresh outputs each round: builds from before `run --overwrite` and after.
            rm -rf "$out" && mkdir -p "$out"
            # shellcheck disable=SC2086
            measure "$name $which (round $r)" "$bin" run ${runs[$name]} --param out="$out"
        done
    done
done
echo
status=0
for name in blobs counts100k counts_file; do
    for f in $(cd "$work/$name/old" && find . -type f -o -type d -name '*.zarr' | sort); do
        a="$work/$name/old/$f"
        b="$work/$name/new/$f"
        case "$f" in
        *.h5ad | *.zarr)
            if $py tests/python/compare.py "$a" "$b" >/dev/null; then
                echo "$name/$f: identical values"
            else
                echo "$name/$f: DIFFERENT"
                $py tests/python/compare.py "$a" "$b" || true
                status=1
            fi
            ;;
        *.png)
            if cmp -s "$a" "$b"; then echo "$name/$f: identical bytes"; else echo "$name/$f: DIFFERENT bytes"; status=1; fi
            ;;
        esac
    done
done
exit $status
