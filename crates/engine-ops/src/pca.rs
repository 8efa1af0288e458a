//! PCA from a covariance (or, after `scale`, correlation) matrix: one streaming pass builds
//! the Gram matrix, a symmetric eigendecomposition gives the components, a second pass
//! projects. This is scanpy's `svd_solver="covariance_eigh"`, exact when variables are few.

use engine_common::{Error, Result};
use faer::Mat;
use ndarray::{Array2, ArrayView2};

/// Largest covariance handed to the dense eigensolver outright (about 2 s at 2,000 on 2 cores).
const DENSE_MAX: usize = 3000;

/// What `sc.pp.pca` stores: `varm['PCs']`, `uns['pca']['variance']` and `['variance_ratio']`.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// `n_vars × n_comps`, one component per column.
    pub components: Array2<f64>,
    pub variance: Vec<f64>,
    pub variance_ratio: Vec<f64>,
}

/// Eigendecomposition of a symmetric covariance matrix, largest components first, signs
/// fixed as scikit-learn's `svd_flip(u_based_decision=False)` does: the entry of largest
/// magnitude in each component is positive.
///
/// # Errors
/// A data error when the matrix has NaN or infinite entries (so did the data).
pub fn from_covariance(cov: Mat<f64>, n_comps: usize) -> Result<Pca> {
    let d = cov.nrows();
    if (0..d).any(|j| (0..d).any(|i| !cov[(i, j)].is_finite())) {
        return Err(Error::data(
            "X has NaN or infinite values, so its covariance has too: PCA needs finite numbers",
        ));
    }
    let k = n_comps.min(d);
    let total: f64 = (0..d).map(|i| cov[(i, i)]).sum();
    // Up to a few thousand variables the dense solver takes seconds and is exact; above, the
    // Krylov solver (a few hundred products with the matrix instead of O(d³)), with the dense
    // one as the fallback. Its residual bound is absolute, so it is scaled by the trace.
    let krylov =
        || crate::eigen::partial(&cov.as_ref(), k, 1e-11 * total.max(f64::MIN_POSITIVE), None);
    let (values, mut vectors) = match (d > DENSE_MAX).then(krylov).flatten() {
        Some(pairs) => pairs,
        None => {
            let (vals, vecs) = crate::eigen::dense(cov.as_ref())?;
            (vals[..k].to_vec(), vecs.subcols(0, k).to_owned())
        }
    };
    // Taken by value so the caller's matrix is gone before the projection needs memory.
    drop(cov);
    crate::eigen::fix_signs(&mut vectors);
    let components = Array2::from_shape_fn((d, k), |(i, c)| vectors[(i, c)]);
    let variance: Vec<f64> = values.iter().map(|v| v.max(0.0)).collect();
    let variance_ratio = variance
        .iter()
        .map(|v| if total > 0.0 { v / total } else { 0.0 })
        .collect();
    Ok(Pca {
        components,
        variance,
        variance_ratio,
    })
}

/// Projects a block onto the components: `((x - mean) / scale) · components`.
pub fn project(
    x: ArrayView2<'_, f64>,
    mean: &[f64],
    scale: Option<&[f64]>,
    components: &Array2<f64>,
) -> Array2<f64> {
    let mut centred = x.to_owned();
    for mut row in centred.outer_iter_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v -= mean[j];
            if let Some(s) = scale {
                *v /= s[j];
            }
        }
    }
    centred.dot(components)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagonal_covariance_gives_axes_in_order_of_variance() {
        let cov = Mat::from_fn(3, 3, |i, j| if i == j { [2.0, 5.0, 1.0][i] } else { 0.0 });
        let p = from_covariance(cov.clone(), 2).unwrap();
        assert_eq!(p.variance, vec![5.0, 2.0]);
        assert_eq!(p.variance_ratio, vec![5.0 / 8.0, 2.0 / 8.0]);
        assert_eq!(p.components.column(0).to_vec(), vec![0.0, 1.0, 0.0]);
        assert_eq!(p.components.column(1).to_vec(), vec![1.0, 0.0, 0.0]);
    }

    #[test]
    fn two_by_two_closed_form() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1)/√2 and (1, -1)/√2.
        let cov = Mat::from_fn(2, 2, |i, j| if i == j { 2.0 } else { 1.0 });
        let p = from_covariance(cov.clone(), 2).unwrap();
        assert!((p.variance[0] - 3.0).abs() < 1e-12 && (p.variance[1] - 1.0).abs() < 1e-12);
        let h = 1.0 / 2f64.sqrt();
        assert!(
            (p.components[[0, 0]] - h).abs() < 1e-12 && (p.components[[1, 0]] - h).abs() < 1e-12
        );
        // Largest-magnitude entry positive: a tie, so the first is kept positive.
        assert!((p.components[[0, 1]].abs() - h).abs() < 1e-12);
        let x = ndarray::arr2(&[[1.0, 1.0], [3.0, 3.0]]);
        let proj = project(x.view(), &[2.0, 2.0], None, &p.components);
        assert!((proj[[0, 0]] + 2.0 * h).abs() < 1e-12 && proj[[0, 1]].abs() < 1e-12);
    }
}
