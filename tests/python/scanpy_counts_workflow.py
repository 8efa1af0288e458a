"""The standard scanpy workflow on a raw counts file, compared with engine's result.

Usage: scanpy_counts_workflow.py RAW.h5ad OURS.h5ad CONFIG.json

CONFIG: {"min_genes", "min_cells", "max_pct_mt" (optional), "target_sum", "n_top_genes", "flavor", "batch_key",
"subset", "max_value", "n_comps", "n_neighbors"}. Exits non-zero naming the first mismatch.
When OURS has obsm['X_umap'], scanpy's UMAP runs too and the layouts are compared by quality
(layouts from different random streams cannot be compared point by point): the fitted curve
parameters, how many of each cell's graph neighbours stay its neighbours in the layout, and
how well the Leiden clusters separate in it.
"""

import json
import sys
import warnings

import anndata as ad
import numpy as np
import scanpy as sc
from sklearn.metrics import adjusted_rand_score

warnings.filterwarnings("ignore")
raw_path, ours_path, cfg_path = sys.argv[1:4]
cfg = json.load(open(cfg_path))
a = ad.read_h5ad(raw_path)
a.var["mt"] = a.var_names.str.startswith("MT-")
sc.pp.calculate_qc_metrics(a, qc_vars=["mt"], inplace=True)
sc.pp.filter_cells(a, min_genes=cfg["min_genes"])
sc.pp.filter_genes(a, min_cells=cfg["min_cells"])
if cfg.get("max_pct_mt") is not None:
    a = a[a.obs["pct_counts_mt"] < cfg["max_pct_mt"]].copy()
v3 = cfg["flavor"] == "seurat_v3"


def hvg():
    sc.pp.highly_variable_genes(
        a,
        n_top_genes=cfg["n_top_genes"],
        flavor=cfg["flavor"],
        batch_key=cfg["batch_key"],
        subset=cfg["subset"],
    )


# seurat_v3 ranks genes on the raw counts; the dispersion flavours on log-normalised data.
if v3:
    hvg()
sc.pp.normalize_total(a, target_sum=cfg["target_sum"])
sc.pp.log1p(a)
if not v3:
    hvg()
sc.pp.scale(a, max_value=cfg["max_value"])
sc.pp.pca(a, n_comps=cfg["n_comps"])
sc.pp.neighbors(a, n_neighbors=cfg["n_neighbors"])
sc.tl.leiden(a, flavor="igraph", n_iterations=2, directed=False, random_state=0)

b = ad.read_h5ad(ours_path)
report = {"n_obs": [a.n_obs, b.n_obs], "n_vars": [a.n_vars, b.n_vars]}


def fail(msg):
    print(json.dumps(report), file=sys.stderr)
    sys.exit(f"mismatch: {msg}")


if a.n_obs != b.n_obs or a.n_vars != b.n_vars:
    fail(f"shape {a.shape} vs {b.shape}")
if list(a.obs_names) != list(b.obs_names) or list(a.var_names) != list(b.var_names):
    fail("obs or var names differ")


def close(frame_a, frame_b, col, rtol=1e-5, atol=1e-8):
    x = np.asarray(frame_a[col], dtype=np.float64)
    y = np.asarray(frame_b[col], dtype=np.float64)
    if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
        i = int(np.nanargmax(np.abs(x - y)))
        fail(f"{col}: {x[i]} vs {y[i]} at {i}")


for col in a.obs.columns:
    if col == "leiden":
        continue
    if isinstance(a.obs[col].dtype, __import__("pandas").CategoricalDtype):
        if list(a.obs[col].astype(str)) != list(b.obs[col].astype(str)):
            fail(f"obs['{col}'] differs")
        continue
    close(a.obs, b.obs, col)
for col in ["mt", "n_cells_by_counts", "mean_counts", "pct_dropout_by_counts", "total_counts",
            "n_cells", "means", "mean", "std"]:
    close(a.var, b.var, col)
if v3:
    close(a.var, b.var, "variances")
    # The LOESS trend enters every normalised variance. dloess's kd-tree splits on ties of
    # log10(mean), and numpy's SIMD log10 differs from the C library's in the last bit for
    # about 15% of values, which can move a split: the trend then differs by ~1e-4 relative
    # (scanpy's own result changes the same way between CPUs with and without AVX-512).
    x = np.asarray(a.var["variances_norm"], dtype=np.float64)
    y = np.asarray(b.var["variances_norm"], dtype=np.float64)
    report["variances_norm_max_rel"] = float(np.max(np.abs(x - y) / np.abs(x)))
    close(a.var, b.var, "variances_norm", rtol=1e-3)
else:
    close(a.var, b.var, "dispersions")
    # Normalised dispersions: float32 in both, within float32 rounding of the statistics.
    close(a.var, b.var, "dispersions_norm", rtol=1e-4, atol=1e-5)
hv_a, hv_b = a.var["highly_variable"].to_numpy(), b.var["highly_variable"].to_numpy()
report["hvg"] = [int(hv_a.sum()), int(hv_b.sum()), int((hv_a != hv_b).sum())]
if (hv_a != hv_b).any():
    fail(f"highly variable sets differ in {(hv_a != hv_b).sum()} genes")
if cfg["batch_key"]:
    close(a.var, b.var, "highly_variable_nbatches")
evr_a = a.uns["pca"]["variance_ratio"]
evr_b = b.uns["pca"]["variance_ratio"]
report["evr"] = [list(map(float, evr_a[:3])), list(map(float, evr_b[:3]))]
if not np.allclose(evr_a, evr_b, rtol=1e-4):
    fail(f"variance ratio {evr_a[:5]} vs {evr_b[:5]}")
# Components agree up to sign where eigenvalues are well separated (the first ten here).
for c in range(10):
    pa, pb = a.varm["PCs"][:, c], b.varm["PCs"][:, c]
    if abs(abs(float(np.dot(pa, pb))) - 1.0) > 1e-4:
        fail(f"PC{c + 1} differs: |cos| = {abs(float(np.dot(pa, pb)))}")
    xa, xb = a.obsm["X_pca"][:, c], b.obsm["X_pca"][:, c].astype(np.float64)
    s = np.sign(np.dot(xa, xb))
    if not np.allclose(xa, s * xb, rtol=1e-3, atol=1e-3 * np.abs(xa).max()):
        fail(f"X_pca[:, {c}] differs")
ari = adjusted_rand_score(a.obs["leiden"], b.obs["leiden"])
report["ari"] = ari
report["clusters"] = [int(a.obs["leiden"].nunique()), int(b.obs["leiden"].nunique())]
if ari < 0.9:
    fail(f"Leiden ARI {ari}")
if "X_umap" in b.obsm:
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    sc.tl.umap(a)
    ua, ub = a.obsm["X_umap"], b.obsm["X_umap"]
    if ub.shape != ua.shape or ub.dtype != np.float32:
        fail(f"X_umap {ub.shape} {ub.dtype} vs {ua.shape} {ua.dtype}")
    for key in ["a", "b"]:
        pa, pb = float(a.uns["umap"]["params"][key]), float(b.uns["umap"]["params"][key])
        if abs(pa - pb) > 1e-6 * abs(pa):
            fail(f"umap {key}: {pa} vs {pb}")
    graph = a.obsp["distances"].tocsr()
    k = cfg["n_neighbors"] - 1

    def preserved(emb):
        # Mean share of each cell's kNN-graph neighbours among its k nearest in the layout.
        _, idx = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb)
        shares = []
        for i in range(emb.shape[0]):
            nbrs = set(graph.indices[graph.indptr[i]:graph.indptr[i + 1]])
            shares.append(len(nbrs & set(idx[i, 1:])) / max(len(nbrs), 1))
        return float(np.mean(shares))

    labels = a.obs["leiden"].to_numpy()
    report["umap_knn_preserved"] = [preserved(ua), preserved(ub)]
    report["umap_silhouette"] = [float(silhouette_score(ua, labels)), float(silhouette_score(ub, labels))]
    if report["umap_knn_preserved"][1] < 0.9 * report["umap_knn_preserved"][0]:
        fail(f"UMAP keeps fewer graph neighbours: {report['umap_knn_preserved']}")
    if report["umap_silhouette"][1] < report["umap_silhouette"][0] - 0.1:
        fail(f"UMAP separates clusters worse: {report['umap_silhouette']}")
print(json.dumps(report))
