-- blobs_file.yaml in the SQL-like form: the workflow on a user's dataset.
--   engine run pipelines/blobs_file.sql --param input=data.h5ad --param out=results
PARAM input PATH = 'pipelines/data/demo.h5ad';
PARAM out PATH = 'out';
PARAM n_comps INT;  -- left out: 50, or min(n_obs, n_vars) - 1 on smaller data

FROM ${input} AS data
  |> CALL scale() AS scaled
  |> CALL pca(n_comps => ${n_comps}) AS pcs
  |> CALL neighbors() AS graph
  |> CALL leiden() AS clusters
  |> CALL plot(color => 'leiden', path => '${out}/pca_leiden.png') AS figure;

WRITE clusters TO '${out}/result.h5ad';
