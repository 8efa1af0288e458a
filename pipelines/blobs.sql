-- The out-of-core analysis workflow of the EHR tutorial in the SQL-like form: the same
-- pipeline as blobs.yaml, compiling to the same plan.
PARAM n_obs INT = 50000;
PARAM n_vars INT = 1000;
PARAM out PATH = 'out';

FROM synthetic(n_obs => ${n_obs}, n_vars => ${n_vars}, centers => 4, seed => 42) AS data
  |> CALL scale() AS scaled
  |> CALL pca(svd_solver => 'covariance_eigh') AS pcs
  |> CALL neighbors(n_neighbors => 15) AS graph
  |> CALL leiden(resolution => 1.0) AS clusters
  |> CALL plot(basis => 'pca', color => 'leiden', path => '${out}/blobs_pca.png') AS figure;

WRITE clusters TO '${out}/blobs.h5ad';
