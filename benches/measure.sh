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
