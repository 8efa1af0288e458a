#!/usr/bin/env bash
# Creates .venv (Python >= 3.12) with cmake for the static HDF5 build and the Python anndata
# oracle the interop tests compare against. Idempotent: a second run only checks the stamp.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
req="$root/scripts/python-requirements.txt"
stamp="$venv/.requirements.sha"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    exit 0
fi

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
"$venv/bin/pip" install --quiet -r "$req"
echo "$want" >"$stamp"
