//! Matrix operators and algorithms with scanpy's semantics: the embedded synthetic source,
//! streaming statistics (moments, Gram) with associative merges, and PCA. Kernels only: no
//! files, no plans.

pub mod counts;
pub mod eigen;
pub mod hvg;
pub mod knn;
pub mod leiden;
pub mod loess;
pub mod nndescent;
pub mod pca;
pub mod sparse;
pub mod stats;
pub mod synthetic;
pub mod umap;
