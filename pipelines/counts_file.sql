-- counts_file.yaml in the SQL-like form: the standard workflow on a user's raw counts.
--   engine run pipelines/counts_file.sql --param input=pbmc.h5ad --param out=results
PARAM input PATH = 'pipelines/data/counts_demo.h5ad';
PARAM out PATH = 'out';
PARAM max_pct_mt FLOAT = 20.0;
PARAM min_genes INT = 200;
PARAM min_cells INT = 3;
PARAM target_sum FLOAT = 10000.0;
PARAM n_top_genes INT = 2000;
PARAM flavor STRING = 'seurat';
PARAM max_value FLOAT = 10.0;
PARAM n_comps INT;  -- left out: 50, or min(n_obs, n_vars) - 1 on smaller data
PARAM n_neighbors INT = 15;

FROM ${input} AS data
  |> CALL calculate_qc_metrics(qc_vars => 'mt=MT-') AS qc
  |> CALL filter_cells(min_genes => ${min_genes}) AS cells
  |> CALL filter_genes(min_cells => ${min_cells}) AS genes
  |> WHERE pct_counts_mt < ${max_pct_mt} AS healthy
  |> CALL normalize_total(target_sum => ${target_sum}) AS normalized
  |> CALL log1p() AS logged
  |> CALL highly_variable_genes(n_top_genes => ${n_top_genes}, flavor => ${flavor}) AS hvg
  |> CALL scale(max_value => ${max_value}) AS scaled
  |> CALL pca(n_comps => ${n_comps}) AS pcs
  |> CALL neighbors(n_neighbors => ${n_neighbors}) AS graph
  |> CALL leiden() AS clusters
  |> CALL umap() AS embedding
  |> CALL plot(basis => 'pca', color => 'leiden', path => '${out}/pca_leiden.png') AS figure;
FROM embedding
  |> CALL plot(basis => 'umap', color => 'leiden', path => '${out}/umap_leiden.png') AS umap_clusters;

WRITE embedding TO '${out}/result.h5ad';
