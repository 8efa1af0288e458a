#!/usr/bin/env bash
# Creates .venv (Python >= 3.12) with what a build or the tests need:
#   scripts/bootstrap.sh build   cmake for the static HDF5 build (all `./dev.sh demo` needs)
#   scripts/bootstrap.sh test    that, and the Python anndata/scanpy oracle the interop tests
#                                compare against (scripts/python-requirements.txt)
# Idempotent: a second run only checks the stamp; `test` on a build venv adds the rest.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
mode="${1:-test}"
venv="$root/.venv"
req="$root/scripts/python-requirements.txt"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$req" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
# The cmake pin, so the build venv and the test venv agree.
cmake_pin="$(grep -E '^cmake==' "$req")"
case "$mode" in
build)
    [[ "$have" == "$want" || "$have" == "build:$cmake_pin" ]] && exit 0
    ;;
test)
    [[ "$have" == "$want" ]] && exit 0
    if [[ "$have" == "build:$cmake_pin" && -x "$venv/bin/pip" ]]; then
        echo "bootstrap: adding the test stack to $venv" >&2
        "$venv/bin/pip" install --quiet -r "$req"
        echo "$want" >"$stamp"
        exit 0
    fi
    ;;
*)
    echo "usage: scripts/bootstrap.sh build | test" >&2
    exit 2
    ;;
esac

find_python() {
    local candidates=()
    [[ -n "${ENGINE_PYTHON:-}" ]] && candidates+=("$ENGINE_PYTHON")
    candidates+=(python3.13 python3.12)
    if command -v pyenv >/dev/null 2>&1 || [[ -d "${PYENV_ROOT:-$HOME/.pyenv}" ]]; then
        local proot="${PYENV_ROOT:-$HOME/.pyenv}"
        for d in $(ls -d "$proot"/versions/3.1[2-9]* 2>/dev/null | sort -rV); do
            candidates+=("$d/bin/python3")
        done
    fi
    candidates+=(python3)
    for p in "${candidates[@]}"; do
        if command -v "$p" >/dev/null 2>&1 &&
            "$p" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
            echo "$p"
            return 0
        fi
    done
    return 1
}

py="$(find_python)" || {
    echo "bootstrap: need Python >= 3.12 (anndata 0.13); set ENGINE_PYTHON or install one with pyenv" >&2
    exit 1
}
echo "bootstrap: creating $venv with $("$py" --version)" >&2
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --upgrade pip
if [[ "$mode" == build ]]; then
    "$venv/bin/pip" install --quiet "$cmake_pin"
    echo "build:$cmake_pin" >"$stamp"
else
    "$venv/bin/pip" install --quiet -r "$req"
    echo "$want" >"$stamp"
fi
