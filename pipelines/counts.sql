-- The standard single-cell workflow on embedded, seeded sparse counts in the SQL-like form:
-- the same pipeline as counts.yaml, compiling to the same plan.
PARAM n_obs INT = 20000;
PARAM n_vars INT = 20000;
PARAM out PATH = 'out';
PARAM max_pct_mt FLOAT = 20.0;
-- The step whose X counts.h5ad stores: the scaled matrix (dense) or e.g. `logged` (sparse).
PARAM x STRING = 'embedding';

FROM synthetic_counts(n_obs => ${n_obs}, n_vars => ${n_vars}, n_types => 6, seed => 0) AS data
  |> CALL calculate_qc_metrics(qc_vars => 'mt=MT-') AS qc
  |> CALL filter_cells(min_genes => 100) AS cells
  |> CALL filter_genes(min_cells => 3) AS genes
  |> WHERE pct_counts_mt < ${max_pct_mt} AS healthy
  |> CALL normalize_total(target_sum => 10000) AS normalized
  |> CALL log1p() AS logged
  |> CALL highly_variable_genes(n_top_genes => 2000) AS hvg
  |> CALL scale(max_value => 10) AS scaled
  |> CALL pca(n_comps => 50) AS pcs
  |> CALL neighbors(n_neighbors => 15) AS graph
  |> CALL leiden() AS clusters
  |> CALL umap() AS embedding
  |> CALL plot(basis => 'pca', color => 'leiden', path => '${out}/counts_pca.png') AS figure;
FROM embedding
  |> CALL plot(basis => 'umap', color => 'leiden', path => '${out}/counts_umap_leiden.png') AS umap_clusters;
FROM embedding
  |> CALL plot(basis => 'umap', color => 'cell_type', path => '${out}/counts_umap_cell_type.png') AS umap_types;

WRITE logged TO '${out}/counts_normalized.h5ad';
WRITE embedding TO '${out}/counts.h5ad' WITH (x => ${x});
