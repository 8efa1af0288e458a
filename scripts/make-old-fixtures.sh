#!/usr/bin/env bash
# Regenerates tests/data/old/ with real old anndata releases (0.6.22 on Python 3.7, 0.7.8 on
# Python 3.8, both from pyenv). Not part of the test run: the files are committed so CI needs
# no old Python.
set -euo pipefail
cd "$(dirname "$0")/.."
proot="${PYENV_ROOT:-$HOME/.pyenv}"
make_env() { # dir python packages...
    local dir="$1" py="$2"
    shift 2
    [[ -x "$dir/bin/python" ]] || "$py" -m venv "$dir"
    "$dir/bin/pip" install -q "$@"
}
make_env .bench/ad06 "$(ls -d "$proot"/versions/3.7.* | tail -1)/bin/python" "anndata==0.6.22.post1" "h5py<3" "numpy<1.20" "pandas<1.2" "scipy<1.6" "zarr<2.11" "numcodecs<0.11"
make_env .bench/ad07 "$(ls -d "$proot"/versions/3.8.* | tail -1)/bin/python" "anndata==0.7.8" "h5py<3.11" "numpy<1.24" "pandas<2" "scipy<1.11" "zarr==2.10.3" "numcodecs<0.11"
rm -rf tests/data/old && mkdir -p tests/data/old
.bench/ad06/bin/python tests/python/make_old_fixtures.py tests/data/old/anndata-0.6.22.h5ad
.bench/ad06/bin/python tests/python/make_old_fixtures.py tests/data/old/anndata-0.6.22.zarr
.bench/ad07/bin/python tests/python/make_old_fixtures.py tests/data/old/anndata-0.7.8.h5ad
.bench/ad07/bin/python tests/python/make_old_fixtures.py tests/data/old/anndata-0.7.8.zarr
