#!/usr/bin/env bash
# The project's two entry points:
#   ./dev.sh demo   build, then run the bundled blobs workflow (out/ gets an .h5ad and a PNG)
#   ./dev.sh test   run every test (Rust unit/integration tests, the Python anndata interop suite,
#                   and the Python package's pytest suite)
# Both first run scripts/bootstrap.sh, which creates .venv with cmake (for the static HDF5
# build); the tests also get Python anndata and scanpy there (the interop oracle).
set -euo pipefail
cd "$(dirname "$0")"
case "${1:-}" in
demo) scripts/bootstrap.sh build ;;
test) scripts/bootstrap.sh test ;;
esac
export CMAKE="$PWD/.venv/bin/cmake"
export ENGINE_PYTHON_VENV="$PWD/.venv"
target="${CARGO_TARGET_DIR:-$PWD/target}"

case "${1:-}" in
demo)
    cargo build -p engine-cli
    engine="$target/debug/engine"
    "$engine" explain pipelines/blobs.yaml
    "$engine" run pipelines/blobs.yaml --param out=out --metrics --overwrite
    "$engine" inspect out/blobs.h5ad --head 2
    ;;
test)
    # pyo3 builds for the venv's Python and leaves libpython unlinked, as maturin does, so the
    # workspace build and the package's build share their artifacts.
    export PYO3_PYTHON="$PWD/.venv/bin/python" PYO3_BUILD_EXTENSION_MODULE=1
    cargo build --workspace --bins
    status=0
    cargo test --workspace --no-fail-fast || status=$?
    # The Python package, built into the venv (a debug build, like the tests'), and its tests.
    (cd python && VIRTUAL_ENV="$PWD/../.venv" ../.venv/bin/maturin develop --quiet) || status=$?
    ENGINE_BIN="$target/debug/engine" .venv/bin/python -m pytest -q -p no:cacheprovider python/tests || status=$?
    exit "$status"
    ;;
*)
    echo "usage: ./dev.sh demo | ./dev.sh test" >&2
    exit 2
    ;;
esac
