# Sourced by the benchmark scripts. `measure LABEL COMMAND...` runs the command under
# /usr/bin/time -v and prints a table row: label, wall time, peak RSS in MiB. The command's
# stdout stays in $measure_out; its stderr and time's report in $measure_err.
measure_out=$(mktemp)
measure_err=$(mktemp)
trap 'rm -f "$measure_out" "$measure_err"' EXIT

measure() {
    local label="$1"
    shift
    /usr/bin/time -v "$@" >"$measure_out" 2>"$measure_err" || { cat "$measure_out" "$measure_err" >&2; exit 1; }
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$measure_err")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$measure_err")
    printf '| %s | %s | %d |\n' "$label" "$wall" "$((rss / 1024))"
}

# As `measure`, but a command that fails (a reference killed for lack of memory) gets a row
# saying so, with its wall time and peak RSS until then, and the script goes on.
measure_or_report() {
    local label="$1"
    shift
    local status=0
    /usr/bin/time -v "$@" >"$measure_out" 2>"$measure_err" || status=$?
    local wall rss
    wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$measure_err")
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$measure_err")
    if [[ $status -eq 0 ]]; then
        printf '| %s | %s | %d |\n' "$label" "$wall" "$((rss / 1024))"
    else
        local why
        why=$(grep -m1 -o 'Command terminated by signal [0-9]*\|Command exited with non-zero status [0-9]*' "$measure_err" || true)
        printf '| %s | failed after %s (%s) | %d |\n' "$label" "$wall" "${why:-exit $status}" "$((rss / 1024))"
    fi
}

# `split_counts COUNTS PARTS DIR`: cuts an h5ad's cells into PARTS contiguous files
# DIR/part0.h5ad … (cell names prefixed by the part), read one at a time; kept between runs.
split_counts() {
    local counts="$1" parts="$2" dir="$3"
    [[ -f "$dir/part$((parts - 1)).h5ad" ]] && return
    mkdir -p "$dir"
    "$bench_py" -c "
import anndata as ad, numpy as np
a = ad.read_h5ad('$counts', backed='r')
cuts = np.linspace(0, a.n_obs, $parts + 1).astype(int)
for i in range($parts):
    p = a[cuts[i]:cuts[i + 1]].to_memory()
    p.obs_names = [f'p{i}_{n}' for n in p.obs_names]
    p.write_h5ad('$dir/part%d.h5ad' % i)
"
}

# `split_counts_zarr COUNTS PARTS DIR`: cuts an h5ad's cells into PARTS contiguous zarr stores
# DIR/part0.zarr … (blosc-lz4), written by `$engine` in one run; kept between runs. At 1M they
# take a third of the h5ad parts' disk, and the counts file may go once they exist.
split_counts_zarr() {
    local counts="$1" parts="$2" dir="$3"
    [[ -d "$dir/part$((parts - 1)).zarr" ]] && return
    mkdir -p "$dir"
    local at n i
    at="$(cd "$dir" && pwd)"
    n=$("$engine" inspect "$counts" | awk '/n_obs/ {print $(NF-2)}')
    {
        echo "version: 1"
        echo "steps:"
        echo "  - {id: d, op: read, path: '$(cd "$(dirname "$counts")" && pwd)/$(basename "$counts")'}"
        for ((i = 0; i < parts; i++)); do
            echo "  - {id: p$i, op: select, input: d, obs: \"$((n * i / parts)):$((n * (i + 1) / parts))\"}"
        done
        echo "outputs:"
        for ((i = 0; i < parts; i++)); do
            echo "  - {step: p$i, path: '$at/part$i.zarr', compression: 'blosc-lz4:5'}"
        done
    } >"$dir/split.yaml"
    "$engine" run "$dir/split.yaml" --memory-limit 1G >/dev/null
}
