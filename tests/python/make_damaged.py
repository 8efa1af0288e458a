"""Makes damaged copies of a good fixture, one kind of damage each.

Usage: make_damaged.py GOOD_H5AD GOOD_ZARR2 GOOD_ZARR3 OUTDIR

Prints one line per file: `<file name>\t<element path the error must name>`.
"""

import shutil
import sys
from pathlib import Path

import h5py
import numpy as np

good_h5, good_z2, good_z3, out = (Path(a) for a in sys.argv[1:5])
out.mkdir(parents=True, exist_ok=True)
expect = []


def h5(name, element, edit):
    p = out / name
    shutil.copy(good_h5, p)
    with h5py.File(p, "a") as f:
        edit(f)
    expect.append((name, element))


def replace(f, path, data):
    attrs = dict(f[path].attrs)
    del f[path]
    f[path] = data
    for k, v in attrs.items():
        f[path].attrs[k] = v


def non_monotonic(f):
    ip = f["X/indptr"][:]
    ip[5], ip[6] = ip[6] + 3, ip[5]
    replace(f, "X/indptr", ip)


def past_end(f):
    ip = f["X/indptr"][:]
    ip[-1] = ip[-1] + 10
    replace(f, "X/indptr", ip)


def bad_indices(f):
    ix = f["X/indices"][:]
    ix[7] = 999
    replace(f, "X/indices", ix)


def bad_codes(f):
    c = f["obs/cell_type/codes"][:]
    c[3] = 17
    replace(f, "obs/cell_type/codes", c)


def short_obs(f):
    v = f["obs/_index/values"][:-1]
    m = f["obs/_index/mask"][:-1]
    replace(f, "obs/_index/values", v)
    replace(f, "obs/_index/mask", m)


def unknown_type(f):
    f["X"].attrs["encoding-type"] = "csr_matrix_v9"


def unknown_version(f):
    f["X"].attrs["encoding-version"] = "9.9.9"


def wrong_shape_attr(f):
    f["X"].attrs["shape"] = np.array([40, 3], dtype=np.int64)


h5("indptr_not_monotonic.h5ad", "/X/indptr", non_monotonic)
h5("indptr_past_data.h5ad", "/X/indptr", past_end)
h5("indices_out_of_range.h5ad", "/X/indices", bad_indices)
h5("codes_out_of_range.h5ad", "/obs/cell_type", bad_codes)
h5("obs_length_mismatch.h5ad", "/X", short_obs)
h5("unknown_encoding_type.h5ad", "/X", unknown_type)
h5("unknown_encoding_version.h5ad", "/X", unknown_version)
h5("shape_attr_wrong.h5ad", "/X", wrong_shape_attr)


def with_shape(path, shape):
    def edit(f):
        attrs = dict(f[path].attrs)
        dtype = f[path].dtype
        del f[path]
        f[path] = np.zeros(shape, dtype=dtype)
        for k, v in attrs.items():
            f[path].attrs[k] = v

    return edit


def not_anndata(f):
    f.attrs["encoding-type"] = "not-anndata"


# What anndata refuses when it builds the object: elements that do not fit the axes.
h5("layer_wrong_shape.h5ad", "/layers/dense", with_shape("layers/dense", (40, 11)))
h5("obsm_wrong_rows.h5ad", "/obsm/X_pca", with_shape("obsm/X_pca", (39, 5)))
h5("varm_wrong_rows.h5ad", "/varm/PCs", with_shape("varm/PCs", (13, 5)))
h5("varp_not_square.h5ad", "/varp/corr", with_shape("varp/corr", (12, 11)))
h5("root_not_anndata.h5ad", "encoding-type is `not-anndata`", not_anndata)


def cycle(f):
    # A hard link from a dict back to its grandparent: the tree never ends.
    f["uns/nested/inner/loop"] = f["uns/nested"]


h5("hard_link_cycle.h5ad", "/uns/nested/inner/loop", cycle)


def no_obs(f):
    # anndata numbers the rows, then refuses obsm['meta'], whose index is the cell names.
    del f["obs"]


def renamed_frame_index(f):
    idx = f["obsm/meta/_index/values"]  # a nullable-string-array index
    values = np.array([f"other_{i}" for i in range(idx.shape[0])], dtype=object)
    replace(f, "obsm/meta/_index/values", values.astype(h5py.string_dtype()))


def duplicate_categories(f):
    cats = f["obs/cell_type/categories"][:]
    cats[1] = cats[0]
    replace(f, "obs/cell_type/categories", cats)


h5("no_obs.h5ad", "/obsm/meta", no_obs)
h5("obsm_frame_wrong_index.h5ad", "/obsm/meta", renamed_frame_index)
h5("duplicate_categories.h5ad", "/obs/cell_type", duplicate_categories)

data = good_h5.read_bytes()
(out / "truncated.h5ad").write_bytes(data[: len(data) // 2])
expect.append(("truncated.h5ad", "truncated.h5ad"))
(out / "empty.h5ad").write_bytes(b"")
expect.append(("empty.h5ad", "empty.h5ad"))
(out / "not_hdf5.h5ad").write_text("cell,gene,count\n" * 100)
expect.append(("not_hdf5.h5ad", "not_hdf5.h5ad"))

# zarr v2: invalid JSON metadata, and a chunk with garbage bytes.
p = out / "invalid_json.zarr"
shutil.copytree(good_z2, p)
(p / ".zmetadata").unlink()  # without consolidated metadata the per-array file is the truth
(p / "X" / "indptr" / ".zarray").write_text("{ this is not json")
expect.append(("invalid_json.zarr", "X/indptr/.zarray"))
p = out / "invalid_consolidated.zarr"
shutil.copytree(good_z2, p)
(p / ".zmetadata").write_text('{"metadata": {"X/.zarray": ')
expect.append(("invalid_consolidated.zarr", ".zmetadata"))
p = out / "corrupt_chunk.zarr"
shutil.copytree(good_z2, p)
(p / "X" / "data" / "0").write_bytes(b"\x00garbage" * 10)
expect.append(("corrupt_chunk.zarr", "/X/data"))
# zarr v3: a truncated chunk of a dense layer.
p = out / "truncated_chunk_v3.zarr"
shutil.copytree(good_z3, p)
chunk = p / "layers" / "dense" / "c" / "0" / "0"
chunk.write_bytes(chunk.read_bytes()[:7])
expect.append(("truncated_chunk_v3.zarr", "/layers/dense"))

# zarr metadata whose numbers are nonsense: a negative extent, chunks (v2) and shards (v3)
# whose size overflows; refused by name, not by a decoder panic.
import json  # noqa: E402


def zarr_meta(src, name, doc, edit):
    p = out / name
    shutil.copytree(src, p)
    # Without consolidated metadata the edited document is the truth.
    if (p / ".zmetadata").exists():
        (p / ".zmetadata").unlink()
    meta = json.loads((p / doc).read_text())
    edit(meta)
    (p / doc).write_text(json.dumps(meta))
    if (p / "zarr.json").exists():
        root = json.loads((p / "zarr.json").read_text())
        root.pop("consolidated_metadata", None)
        (p / "zarr.json").write_text(json.dumps(root))
    expect.append((name, "/layers/dense"))


zarr_meta(good_z2, "negative_shape.zarr", "layers/dense/.zarray", lambda m: m.update(shape=[-5, 12]))
zarr_meta(good_z2, "overflowing_chunks.zarr", "layers/dense/.zarray", lambda m: m.update(chunks=[2**62, 2**62]))


def huge_shards(m):
    m["chunk_grid"]["configuration"]["chunk_shape"] = [2**62, 2**62]


zarr_meta(good_z3, "overflowing_shards_v3.zarr", "layers/dense/zarr.json", huge_shards)

for name, element in expect:
    print(f"{name}\t{element}")
