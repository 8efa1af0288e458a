"""Writes AnnData fixtures covering every encoding of the anndata IO spec, with Python anndata.

Usage: make_fixtures.py OUTDIR

For each string flavour (pandas-3 `nullable-string-array`, and plain `string-array` with
anndata.settings.allow_write_nullable_strings = False) and each format (h5ad, zarr v2, zarr v3)
it writes `full_<flavour>.<fmt>`. Also writes files only older or other writers produce:
`legacy_compound.h5ad` (anndata < 0.7 layout), `blosc.h5ad` (anndata-rs / SnapATAC2 style
Blosc-zstd filter and an index named `index`), `awkward.h5ad` (an unsupported encoding) and
`plugin_<filter>.h5ad` (hdf5plugin's zstd, LZ4, bitshuffle and, unsupported, bzip2), zarr
stores in zip archives (`zip_v2.zarr.zip`, `zip_v3.zarr.zip`, `zipped_dir.zip`), record arrays
(`records.<fmt>`: scanpy's rank_genes_groups and a mixed-type record array) and scanpy's
bundled pbmc68k_reduced (`pbmc68k_reduced.h5ad`, `.zarr2`, `.zarr3`, `.zarr.zip`).
All values are deterministic so tests can assert them in closed form.
"""

import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

warnings.filterwarnings("ignore")
N_OBS, N_VARS = 40, 12


def x_matrix():
    # X[i, j] = i * 100 + j where (i + j) % 3 == 0, else 0: closed form for tests.
    dense = np.zeros((N_OBS, N_VARS), dtype=np.float32)
    for i in range(N_OBS):
        for j in range(N_VARS):
            if (i + j) % 3 == 0:
                dense[i, j] = i * 100 + j
    return dense


def make(nullable: bool) -> ad.AnnData:
    rng = np.random.default_rng(0)
    dense = x_matrix()
    cell_type = pd.Categorical(
        [["T", "B", "NK", None][i % 4] for i in range(N_OBS)], categories=["B", "NK", "T"]
    )
    obs = pd.DataFrame(
        {
            "cell_type": cell_type,
            "stage": pd.Categorical(
                [["early", "mid", "late"][i % 3] for i in range(N_OBS)],
                categories=["early", "mid", "late"],
                ordered=True,
            ),
            "int_cat": pd.Categorical([[10, 20, 30][i % 3] for i in range(N_OBS)]),
            "n_genes": np.arange(N_OBS, dtype=np.int64) * 7,
            "frac": (np.arange(N_OBS, dtype=np.float32) / 8).astype(np.float32),
            "small": np.arange(N_OBS, dtype=np.uint16),
            "flag": np.arange(N_OBS) % 2 == 0,
            "maybe_int": pd.array([i if i % 5 else None for i in range(N_OBS)], dtype="Int32"),
            "maybe_bool": pd.array([(i % 2 == 0) if i % 7 else None for i in range(N_OBS)], dtype="boolean"),
            "donor": [f"donor_{i % 6}" for i in range(N_OBS)],
        },
        index=[f"cell_{i:03d}" for i in range(N_OBS)],
    )
    if nullable:
        obs["note"] = pd.array([f"n{i}" if i % 4 else None for i in range(N_OBS)], dtype="string")
    var = pd.DataFrame(
        {
            "gene_ids": [f"ENSG{j:05d}" for j in range(N_VARS)],
            "highly_variable": np.arange(N_VARS) % 3 == 0,
            "means": np.linspace(0.0, 1.0, N_VARS),
        },
        index=pd.Index([f"GENE{j}" for j in range(N_VARS)], name="gene"),
    )
    a = ad.AnnData(X=sp.csr_matrix(dense), obs=obs, var=var)
    a.layers["dense"] = dense.astype(np.float64) * 2
    a.layers["counts_csc"] = sp.csc_matrix(dense.astype(np.int64))
    a.layers["int32"] = (dense % 7).astype(np.int32)
    a.obsm["X_pca"] = (np.arange(N_OBS * 5, dtype=np.float32).reshape(N_OBS, 5) / 10).astype(np.float32)
    a.obsm["X_sparse"] = sp.csr_matrix(dense[:, :4])
    a.obsm["meta"] = pd.DataFrame({"a": np.arange(N_OBS), "b": [f"s{i}" for i in range(N_OBS)]}, index=obs.index)
    a.varm["PCs"] = np.arange(N_VARS * 5, dtype=np.float64).reshape(N_VARS, 5)
    a.obsp["distances"] = sp.csr_matrix(np.eye(N_OBS) * 0.5)
    a.varp["corr"] = np.eye(N_VARS)
    a.uns["title"] = "fixture"
    a.uns["n_int"] = 42
    a.uns["n_float"] = 2.5
    a.uns["a_bool"] = True
    a.uns["vector"] = np.array([1.0, 2.0, 3.0])
    a.uns["names"] = np.array(["x", "y", "z"], dtype=object)
    a.uns["nested"] = {"inner": {"k": 7}, "arr": np.arange(4, dtype=np.int16)}
    a.uns["table"] = pd.DataFrame({"c": [1.5, 2.5]}, index=["r0", "r1"])
    a.uns["cell_type_colors"] = np.array(["#ff0000", "#00ff00", "#0000ff"], dtype=object)
    # Python's None: anndata's `null` encoding (what `sc.pp.log1p` leaves in uns['log1p']['base']).
    a.uns["nothing"] = None
    raw = ad.AnnData(X=sp.csr_matrix(dense * 3), var=pd.DataFrame({"orig": np.arange(N_VARS)}, index=var.index.copy()), obs=obs[[]])
    a.raw = raw
    return a


def write_all(out: Path):
    for flavour, nullable in [("nullable", True), ("plain", False)]:
        ad.settings.allow_write_nullable_strings = nullable
        a = make(nullable)
        a.write_h5ad(out / f"full_{flavour}.h5ad")
        for v in (2, 3):
            ad.settings.zarr_write_format = v
            a.write_zarr(out / f"full_{flavour}.zarr{v}")
    ad.settings.allow_write_nullable_strings = True
    write_legacy(out / "legacy_compound.h5ad")
    write_blosc(out / "blosc.h5ad")
    write_awkward(out / "awkward.h5ad")
    write_undecodable_uns(out)
    write_dict_obs(out / "dict_obs.h5ad")
    write_codecs(out)
    write_plugins(out)
    write_zips(out)
    write_records(out)
    write_scanpy_bundled(out)
    write_tenx(out)


def write_zips(out: Path):
    """zarr stores in zip archives: through zarr's ZipStore (entries at the top, as scanpy
    ships its bundled pbmc68k_reduced.zarr.zip), in v2 and v3, and a store directory zipped
    with its folder name (entries under one top-level folder)."""
    import zipfile

    import zarr

    a = make(False)
    for v in (2, 3):
        ad.settings.zarr_write_format = v
        store = zarr.storage.ZipStore(out / f"zip_v{v}.zarr.zip", mode="w")
        a.write_zarr(store)
        store.close()
    ad.settings.zarr_write_format = 3
    folder = out / "zipped_dir.zarr"
    a.write_zarr(folder)
    with zipfile.ZipFile(out / "zipped_dir.zip", "w", zipfile.ZIP_DEFLATED) as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, Path("zipped_dir.zarr") / f.relative_to(folder))


def mixed_records() -> np.ndarray:
    """A numpy record array with a field of every kind anndata writes; rec[k] closed form:
    i8 = k - 2, u16 = 1000 k, i64 = 2**40 k, flag = k odd, f32 = k / 4, f64 = k / 3,
    text = ["", "é", "ab", "ünï", "x"][k]."""
    k = np.arange(5)
    return np.rec.fromarrays(
        [
            (k - 2).astype(np.int8),
            (1000 * k).astype(np.uint16),
            (2**40 * k).astype(np.int64),
            k % 2 == 1,
            (k / 4).astype(np.float32),
            k / 3,
            np.array(["", "é", "ab", "ünï", "x"], dtype=object),
        ],
        names=["i8", "u16", "i64", "flag", "f32", "f64", "text"],
    )


def write_records(out: Path):
    """Record arrays (`rec-array`) as scanpy leaves them: `sc.tl.rank_genes_groups` (wilcoxon,
    with `pts`), and a record array of mixed field types, in h5ad, zarr v2 and zarr v3."""
    import scanpy as sc

    a = make(False)
    a.X = a.X.astype(np.float32)
    sc.pp.log1p(a)
    sc.tl.rank_genes_groups(a, "stage", method="wilcoxon", pts=True, use_raw=False)
    a.uns["mixed"] = mixed_records()
    ad.settings.allow_write_nullable_strings = False
    a.write_h5ad(out / "records.h5ad")
    for v in (2, 3):
        ad.settings.zarr_write_format = v
        a.write_zarr(out / f"records.zarr{v}")
    ad.settings.allow_write_nullable_strings = True


def write_scanpy_bundled(out: Path):
    """scanpy's bundled pbmc68k_reduced (the first file a scanpy user opens, with
    rank_genes_groups in uns) as shipped, and as zarr v2, v3 and a v3 zip store."""
    import shutil

    import scanpy as sc
    import zarr

    src = Path(sc.__file__).parent / "datasets" / "10x_pbmc68k_reduced.h5ad"
    shutil.copy(src, out / "pbmc68k_reduced.h5ad")
    a = ad.read_h5ad(src)
    for v in (2, 3):
        ad.settings.zarr_write_format = v
        a.write_zarr(out / f"pbmc68k_reduced.zarr{v}")
    store = zarr.storage.ZipStore(out / "pbmc68k_reduced.zarr.zip", mode="w")
    a.write_zarr(store)
    store.close()


def tenx_counts(n_features: int, n_cells: int, seed: int) -> sp.csc_matrix:
    """Counts as Cell Ranger stores them: features × cells, CSC (one column per barcode),
    int32; a few empty cells and features."""
    rng = np.random.default_rng(seed)
    m = rng.poisson(0.8, size=(n_features, n_cells)).astype(np.int32)
    m[:, 3] = 0
    m[2, :] = 0
    return sp.csc_matrix(m)


def write_tenx_v3(path: Path, features: list[tuple[str, str, str, str]], n_cells: int, seed: int):
    """Cell Ranger 3+ HDF5: /matrix with barcodes, data, indices, indptr, shape, features/."""
    m = tenx_counts(len(features), n_cells, seed)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["barcodes"] = np.array([f"AAACCTGAG{i:06d}-1".encode() for i in range(n_cells)])
        g["data"] = m.data.astype(np.int32)
        g["indices"] = m.indices.astype(np.int64)
        g["indptr"] = m.indptr.astype(np.int64)
        g["shape"] = np.array(m.shape, dtype=np.int32)
        ft = g.create_group("features")
        ft["_all_tag_keys"] = np.array([b"genome"])
        for k, name in enumerate(["id", "name", "feature_type", "genome"]):
            ft[name] = np.array([x[k].encode() for x in features])


def write_tenx_v2(path: Path, genomes: dict[str, int], n_cells: int):
    """Cell Ranger 2 HDF5: one group per genome (barcodes, data, gene_names, genes, ...)."""
    with h5py.File(path, "w") as f:
        for seed, (genome, n_genes) in enumerate(genomes.items()):
            m = tenx_counts(n_genes, n_cells, 10 + seed)
            g = f.create_group(genome)
            g["barcodes"] = np.array([f"CGTAC{i:06d}-1".encode() for i in range(n_cells)])
            g["data"] = m.data.astype(np.int32)
            g["indices"] = m.indices.astype(np.int64)
            g["indptr"] = m.indptr.astype(np.int64)
            g["shape"] = np.array(m.shape, dtype=np.int32)
            # A repeated symbol, as real annotations have.
            g["gene_names"] = np.array([(f"{genome}_G{j}" if j != 4 else f"{genome}_G1").encode() for j in range(n_genes)])
            g["genes"] = np.array([f"ENS{genome.upper()}{j:05d}".encode() for j in range(n_genes)])


def write_tenx_mtx(path: Path, features: list[tuple[str, str, str]], n_cells: int, legacy: bool):
    """A Cell Ranger MTX directory: v3 (gzipped, features.tsv with types) or v2 (plain,
    genes.tsv)."""
    import gzip
    import io

    import scipy.io

    path.mkdir(parents=True, exist_ok=True)
    m = tenx_counts(len(features), n_cells, 7).tocoo()
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, m, comment='metadata_json: {"software_version": "cellranger-7.1.0"}', field="integer")
    barcodes = "".join(f"TTGCA{i:06d}-1\n" for i in range(n_cells)).encode()
    if legacy:
        (path / "matrix.mtx").write_bytes(buf.getvalue())
        (path / "genes.tsv").write_text("".join(f"{f[0]}\t{f[1]}\n" for f in features))
        (path / "barcodes.tsv").write_bytes(barcodes)
    else:
        (path / "matrix.mtx.gz").write_bytes(gzip.compress(buf.getvalue()))
        (path / "features.tsv.gz").write_bytes(gzip.compress("".join("\t".join(f) + "\n" for f in features).encode()))
        (path / "barcodes.tsv.gz").write_bytes(gzip.compress(barcodes))


def write_tenx(out: Path):
    """10x inputs and what scanpy's readers make of them (`ref_<name>.h5ad`, written without
    turning strings into categoricals, so they hold scanpy's in-memory object)."""
    import gzip

    import scanpy as sc

    gex = [(f"ENSG{j:05d}", f"GENE{j % 7}", "Gene Expression", "GRCh38") for j in range(9)]
    ab = [("CD3_TotalSeqB", "CD3", "Antibody Capture", ""), ("CD19_TotalSeqB", "CD19", "Antibody Capture", "")]
    write_tenx_v3(out / "tenx_v3.h5", gex + ab, 14, 1)
    mouse = [(f"ENSMUSG{j:05d}", f"Gm{j}", "Gene Expression", "mm10") for j in range(5)]
    write_tenx_v3(out / "tenx_v3_barnyard.h5", gex + mouse, 10, 2)
    write_tenx_v2(out / "tenx_v2.h5", {"hg19": 8}, 9)
    write_tenx_v2(out / "tenx_v2_two.h5", {"hg19": 8, "mm10": 6}, 9)
    write_tenx_mtx(out / "tenx_mtx_v3", [f[:3] for f in gex + ab], 12, legacy=False)
    write_tenx_mtx(out / "tenx_mtx_v2", [f[:2] for f in gex], 12, legacy=True)
    # Numeric gene ids, plain (not gzipped) v3 files, as STARsolo writes them.
    numeric = [(str(574400 + j), f"Gene{j}", "Gene Expression") for j in range(6)]
    write_tenx_mtx(out / "tenx_mtx_int_ids", numeric, 8, legacy=False)
    for name in ["matrix.mtx", "features.tsv", "barcodes.tsv"]:
        gz = out / "tenx_mtx_int_ids" / f"{name}.gz"
        (out / "tenx_mtx_int_ids" / name).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    refs = {
        "tenx_v3": sc.read_10x_h5(out / "tenx_v3.h5"),
        "tenx_v3_all": sc.read_10x_h5(out / "tenx_v3.h5", gex_only=False),
        "tenx_v3_barnyard_mm10": sc.read_10x_h5(out / "tenx_v3_barnyard.h5", genome="mm10"),
        "tenx_v2": sc.read_10x_h5(out / "tenx_v2.h5"),
        "tenx_v2_two_mm10": sc.read_10x_h5(out / "tenx_v2_two.h5", genome="mm10"),
        "tenx_mtx_v3": sc.read_10x_mtx(out / "tenx_mtx_v3"),
        "tenx_mtx_v2": sc.read_10x_mtx(out / "tenx_mtx_v2"),
        "tenx_mtx_int_ids": sc.read_10x_mtx(out / "tenx_mtx_int_ids", compressed=False),
    }
    ad.settings.allow_write_nullable_strings = False
    for name, a in refs.items():
        a.write_h5ad(out / f"ref_{name}.h5ad", convert_strings_to_categoricals=False)
    ad.settings.allow_write_nullable_strings = True


def write_plugins(out: Path):
    """h5ad files compressed with hdf5plugin's filters, as users write them
    (`write_h5ad(compression=hdf5plugin.Zstd())`), and one with a filter the engine lacks.
    A wide float64 obsm array spans many bitshuffle blocks; 12-element var columns leave a tail
    that is not a multiple of 8."""
    import hdf5plugin

    a = make(False)
    del a.obsm["meta"]
    a.obsm["wide"] = np.arange(N_OBS * 300, dtype=np.float64).reshape(N_OBS, 300) ** 1.5
    filters = {
        "zstd": hdf5plugin.Zstd(clevel=5),
        "lz4": hdf5plugin.LZ4(nbytes=256),
        "bitshuffle": hdf5plugin.Bitshuffle(cname="none"),
        "bitshuffle_lz4": hdf5plugin.Bitshuffle(cname="lz4"),
        "bitshuffle_zstd": hdf5plugin.Bitshuffle(cname="zstd"),
        "bzip2": hdf5plugin.BZip2(),
    }
    for name, f in filters.items():
        a.write_h5ad(out / f"plugin_{name}.h5ad", compression=f)


def write_codecs(out: Path):
    """zarr v2 stores whose arrays use each numcodecs compressor anndata users pick."""
    import numcodecs
    import zarr

    a = make(False)
    del a.obsm["meta"]
    for name, comp in [("zlib", numcodecs.Zlib(3)), ("gzip", numcodecs.GZip(3)), ("zstd", numcodecs.Zstd(3)),
                       ("bz2", numcodecs.BZ2(2)), ("blosc", numcodecs.Blosc("zstd", 5)), ("lz4", numcodecs.LZ4())]:
        g = zarr.open_group(out / f"codec_{name}.zarr", mode="w", zarr_format=2)
        ad.io.write_elem(g, "/", a, dataset_kwargs={"compressor": comp})


def write_legacy(path: Path):
    """The anndata 0.6 layout: obs/var compound datasets, categories in uns, h5sparse X."""
    dense = x_matrix()
    m = sp.csr_matrix(dense)
    with h5py.File(path, "w") as f:
        g = f.create_group("X")
        g.attrs["h5sparse_format"] = "csr"
        g.attrs["h5sparse_shape"] = np.array(dense.shape)
        g["data"], g["indices"], g["indptr"] = m.data, m.indices, m.indptr
        obs = np.zeros(
            N_OBS, dtype=[("index", "S12"), ("louvain", "i1"), ("n_counts", "<f4"), ("name", h5py.string_dtype())]
        )
        obs["index"] = [f"cell_{i:03d}".encode() for i in range(N_OBS)]
        obs["louvain"] = [i % 3 for i in range(N_OBS)]
        obs["n_counts"] = dense.sum(axis=1)
        obs["name"] = [f"nm{i}" for i in range(N_OBS)]
        f.create_dataset("obs", data=obs)
        var = np.zeros(N_VARS, dtype=[("index", "S8"), ("gene_ids", "S10")])
        var["index"] = [f"GENE{j}".encode() for j in range(N_VARS)]
        var["gene_ids"] = [f"ENSG{j:05d}".encode() for j in range(N_VARS)]
        f.create_dataset("var", data=var)
        u = f.create_group("uns")
        u["louvain_categories"] = np.array([b"c0", b"c1", b"c2"])
        f.create_dataset("obsm", data=np.zeros(N_OBS, dtype=[("X_pca", "<f4", (2,))]))


def write_blosc(path: Path):
    """anndata-rs / SnapATAC2 style: Blosc(zstd) HDF5 filter, dataframe index named `index`."""
    import hdf5plugin

    dense = x_matrix()
    m = sp.csr_matrix(dense)
    comp = hdf5plugin.Blosc(cname="zstd", clevel=5, shuffle=hdf5plugin.Blosc.SHUFFLE)
    s = h5py.string_dtype()
    with h5py.File(path, "w") as f:
        f.attrs["encoding-type"], f.attrs["encoding-version"] = "anndata", "0.1.0"
        g = f.create_group("X")
        g.attrs["encoding-type"], g.attrs["encoding-version"] = "csr_matrix", "0.1.0"
        g.attrs["shape"] = np.array(dense.shape, dtype=np.int64)
        g.create_dataset("data", data=m.data, chunks=(16,), **comp)
        g.create_dataset("indices", data=m.indices.astype(np.int64), chunks=(16,), **comp)
        g.create_dataset("indptr", data=m.indptr.astype(np.int64), chunks=(16,), **comp)
        for name, n, prefix in [("obs", N_OBS, "cell_"), ("var", N_VARS, "GENE")]:
            d = f.create_group(name)
            d.attrs["encoding-type"], d.attrs["encoding-version"] = "dataframe", "0.2.0"
            d.attrs["_index"] = "index"
            d.attrs["column-order"] = np.array([], dtype=np.float64)
            idx = d.create_dataset("index", data=np.array([f"{prefix}{i}" for i in range(n)], dtype=object), dtype=s)
            idx.attrs["encoding-type"], idx.attrs["encoding-version"] = "string-array", "0.2.0"


def write_undecodable_uns(out: Path):
    """uns entries the engine holds no type for: complex numbers (h5py's compound {r, i},
    zarr's complex128/complex64) and an awkward array. X[i, j] stays the closed form."""
    import awkward as ak

    a = make(False)
    ad.settings.allow_write_nullable_strings = False
    a.uns["cplx"] = np.array([1 + 2j, 3j, -1.5 + 0j])
    a.uns["cplx64"] = np.array([1 - 1j], dtype=np.complex64)
    a.uns["ragged"] = ak.Array([[1.0], [2.0, 3.0]])
    a.write_h5ad(out / "uns_undecodable.h5ad")
    ad.settings.zarr_write_format = 3
    a.write_zarr(out / "uns_undecodable.zarr3")
    ad.settings.allow_write_nullable_strings = True


def write_dict_obs(path: Path):
    """obs stored as a group without encoding attributes (and no obsm dataframe, whose index
    would then disagree): anndata reads it as a dict of columns with row numbers as index."""
    a = make(False)
    del a.obsm["meta"]
    ad.settings.allow_write_nullable_strings = False
    a.write_h5ad(path)
    ad.settings.allow_write_nullable_strings = True
    with h5py.File(path, "a") as f:
        for k in list(f["obs"].attrs):
            del f["obs"].attrs[k]


def write_awkward(path: Path):
    """A file with one element in an encoding we do not read; the rest must still open."""
    import awkward as ak

    a = make(False)
    ad.settings.allow_write_nullable_strings = False
    a.obsm["ragged"] = ak.Array([[float(i)] * (i % 3) for i in range(N_OBS)])
    a.write_h5ad(path)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    write_all(out)
