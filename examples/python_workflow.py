"""The standard single-cell workflow from Python, handed to scanpy for plotting.

    python examples/python_workflow.py [OUT_DIR]

Uses the counts behind scanpy's pbmc68k_reduced (committed in pipelines/data). Each block is
what a notebook cell would hold.
"""

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import scanpy as sc  # noqa: E402

import engine  # noqa: E402

root = Path(__file__).resolve().parents[1]
data = root / "pipelines" / "data" / "pbmc68k_counts.h5ad"
out = Path(sys.argv[1] if len(sys.argv) > 1 else "out")
out.mkdir(parents=True, exist_ok=True)

# 1. Open lazily: metadata only, nothing of X is read.
ds = engine.read(data)
print(ds)

# 2. Ask obs questions in SQL; the answer is a pyarrow Table.
print(
    engine.sql(
        "SELECT bulk_labels, count(*) AS cells FROM obs GROUP BY 1 ORDER BY 2 DESC", data=data
    ).to_pandas()
)

# 3. A view reads only its cells and genes: the B cells' CD79A and MS4A1 counts.
b_cells = ds[lambda obs: obs.bulk_labels == "CD19+ B", ["CD79A", "MS4A1"]].to_memory()
print(b_cells, b_cells.X.sum(axis=0), sep="\n")

# 4. The workflow, built in Python. Steps stream over X in bounded memory; the output keeps
#    counts as a layer and the log-normalised values as raw, as a scanpy user would.
pipeline = {
    "steps": [
        {"id": "data", "op": "read", "path": str(data)},
        {"id": "qc", "op": "calculate_qc_metrics", "input": "data", "percent_top": ""},
        {"id": "normalized", "op": "normalize_total", "input": "qc", "target_sum": 1e4},
        {"id": "logged", "op": "log1p", "input": "normalized"},
        {"id": "hvg", "op": "highly_variable_genes", "input": "logged", "n_top_genes": 300},
        {"id": "scaled", "op": "scale", "input": "hvg", "max_value": 10},
        {"id": "pcs", "op": "pca", "input": "scaled"},
        {"id": "graph", "op": "neighbors", "input": "pcs"},
        {"id": "clusters", "op": "leiden", "input": "graph"},
        {"id": "embedding", "op": "umap", "input": "clusters"},
        {"id": "markers", "op": "rank_genes_groups", "input": "embedding",
         "groupby": "bulk_labels", "method": "wilcoxon", "raw": "logged"},
    ],
    # No path: the result comes back in memory.
    "outputs": [{"step": "markers", "raw": "logged", "layers": {"counts": "data"}}],
}
print(engine.explain(pipeline).split("== physical plan ==")[1])
adata = engine.run(pipeline, memory_limit="256M")
print(adata)

# 5. Hand the AnnData to scanpy.
sc.settings.figdir = out
sc.pl.umap(adata, color=["bulk_labels", "leiden"], wspace=0.7, save="_pbmc.png", show=False)
sc.pl.rank_genes_groups_dotplot(adata, n_genes=3, save="_pbmc_markers.png", show=False)
print(f"figures in {out}/")
