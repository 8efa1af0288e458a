#!/usr/bin/env bash
# The project's two entry points:
#   ./dev.sh demo   build, then run the bundled blobs workflow (out/ gets an .h5ad and a PNG)
#   ./dev.sh test   run every test (Rust unit/integration tests and the Python anndata interop suite)
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
    cargo build --workspace --bins
    cargo test --workspace --no-fail-fast
    ;;
*)
    echo "usage: ./dev.sh demo | ./dev.sh test" >&2
    exit 2
    ;;
esac
