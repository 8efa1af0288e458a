-- pbmc.yaml in the SQL-like form: scanpy's clustering tutorial on the counts behind scanpy's
-- bundled pbmc68k_reduced, marker genes on the log-normalised values, raw and counts kept.
--   engine run pipelines/pbmc.sql --param out=results
PARAM input PATH = 'pipelines/data/pbmc68k_counts.h5ad';
PARAM out PATH = 'out';
PARAM n_top_genes INT = 300;

FROM ${input} AS data
  |> CALL calculate_qc_metrics(percent_top => '') AS qc
  |> CALL normalize_total(target_sum => 10000) AS normalized
  |> CALL log1p() AS logged
  |> CALL highly_variable_genes(n_top_genes => ${n_top_genes}) AS hvg
  |> CALL scale(max_value => 10) AS scaled
  |> CALL pca() AS pcs
  |> CALL neighbors() AS graph
  |> CALL leiden() AS clusters
  |> CALL umap() AS embedding
  |> CALL rank_genes_groups(groupby => 'bulk_labels', method => 'wilcoxon', raw => logged, pts => true) AS markers;
FROM qc
  |> CALL violin(keys => ['n_genes_by_counts', 'total_counts'], jitter => 0.4, path => '${out}/pbmc_qc_violin.png') AS qc_violin;
FROM markers
  |> CALL rank_genes_groups_plot(n_genes => 25, sharey => false, path => '${out}/pbmc_markers.png') AS marker_panels;
FROM embedding
  |> CALL plot(basis => 'umap', color => 'bulk_labels', path => '${out}/pbmc_umap_bulk_labels.png') AS umap_types;
FROM embedding
  |> CALL plot(basis => 'umap', color => 'leiden', legend_loc => 'on data', path => '${out}/pbmc_umap_leiden.png') AS umap_clusters;
FROM markers
  |> CALL dotplot(raw => logged, n_genes => 4, path => '${out}/pbmc_markers_dotplot.png') AS marker_dots;
FROM markers
  |> CALL stacked_violin(raw => logged, n_genes => 2, path => '${out}/pbmc_markers_stacked_violin.png') AS marker_violins;
FROM markers
  |> CALL rank_genes_groups_violin(raw => logged, groups => ['CD14+ Monocyte', 'CD56+ NK'], n_genes => 5, path => '${out}/pbmc_markers_violin.png') AS marker_split_violins;
WRITE markers TO '${out}/pbmc.h5ad' WITH (raw => logged, layers => (counts => data));
