//! The largest eigenpairs of a symmetric operator. A Krylov–Schur partial solver (faer's)
//! when few pairs are wanted from a large operator; the dense solver otherwise, or when the
//! partial one does not converge, so callers always get exact pairs.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd_scratch};
use faer::matrix_free::LinOp;
use faer::matrix_free::eigen::{
    PartialEigenParams, partial_eigen_scratch, partial_self_adjoint_eigen,
};
use faer::{Col, Mat, MatRef, Par, Side};

/// `k` eigenpairs of largest magnitude, in decreasing order of magnitude: the eigenvalues and
/// one eigenvector per column, each with residual `‖Av − λv‖ ≤ tol`. Returns `None` when
/// the operator is too small for the Krylov subspace or the solver did not converge within
/// its restarts (clustered eigenvalues, as in the noise bulk of a PCA, converge slowly).
///
/// `subspace` bounds the Krylov basis (at least 64, faer's floor; by default the larger of
/// `3k` and `k + 100`): its `n × subspace` workspace is the solver's memory.
pub fn partial(
    op: &dyn LinOp<f64>,
    k: usize,
    tol: f64,
    subspace: Option<usize>,
) -> Option<(Vec<f64>, Mat<f64>)> {
    let n = op.nrows();
    let k = k.min(n);
    // faer widens the subspace to at least 64 and needs it strictly smaller than the operator.
    let max_dim = subspace
        .unwrap_or((3 * k).max(k + 100))
        .max(2 * k + 8)
        .max(64);
    if max_dim >= n || k == 0 {
        return None;
    }
    let params = PartialEigenParams {
        min_dim: k + 16,
        max_dim,
        max_restarts: 200,
        ..Default::default()
    };
    let par = Par::rayon(0);
    let scratch = partial_eigen_scratch(op, k, par, params).and(self_adjoint_evd_scratch::<f64>(
        max_dim,
        ComputeEigenvectors::Yes,
        par,
        Default::default(),
    ));
    let mut mem = MemBuffer::new(scratch);
    let mut vecs = Mat::<f64>::zeros(n, k);
    let mut vals = vec![0.0; k];
    // A deterministic, dense start vector: every eigenvector not orthogonal to it is found.
    let v0 = Col::<f64>::from_fn(n, |i| 1.0 + ((i * 7919) % 97) as f64 / 97.0);
    let info = partial_self_adjoint_eigen(
        vecs.as_mut(),
        &mut vals,
        op,
        v0.as_ref(),
        tol,
        par,
        MemStack::new(&mut mem),
        params,
    );
    crate::cpu::clean_all();
    (info.n_converged_eigen >= k).then_some((vals, vecs))
}

/// All eigenpairs of a dense symmetric matrix, in decreasing order of eigenvalue.
///
/// # Errors
/// When the solver fails (NaN or infinite entries).
pub fn dense(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>), String> {
    let n = a.nrows();
    let eig = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| format!("eigendecomposition failed: {e:?}"))?;
    let (s, u) = (eig.S(), eig.U());
    // faer returns nondecreasing order.
    let vals = (0..n).rev().map(|i| s[i]).collect();
    let vecs = Mat::from_fn(n, n, |i, j| u[(i, n - 1 - j)]);
    crate::cpu::clean_all();
    Ok((vals, vecs))
}

/// Flips each column so its entry of largest magnitude is positive (scikit-learn's
/// `svd_flip(u_based_decision=False)`), making signs deterministic.
pub fn fix_signs(vecs: &mut Mat<f64>) {
    for j in 0..vecs.ncols() {
        let pivot = (0..vecs.nrows())
            .map(|i| vecs[(i, j)])
            .fold(0.0f64, |m, v| if v.abs() > m.abs() { v } else { m });
        if pivot < 0.0 {
            for i in 0..vecs.nrows() {
                vecs[(i, j)] = -vecs[(i, j)];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_matches_dense_on_a_covariance() {
        // A covariance with a decaying spectrum, like PCA's: B Bᵀ for a fixed B.
        let (n, m) = (300, 40);
        let b = Mat::from_fn(n, m, |i, j| {
            (((i * 31 + j * 17) % 23) as f64 - 11.0) / (1.0 + j as f64)
        });
        let a = &b * b.transpose();
        let (dv, du) = dense(a.as_ref()).unwrap();
        let (pv, pu) = partial(&a.as_ref(), 10, 1e-12, None).expect("converges");
        for c in 0..10 {
            assert!(
                (pv[c] - dv[c]).abs() <= 1e-9 * dv[0],
                "{c}: {} vs {}",
                pv[c],
                dv[c]
            );
            let dot: f64 = (0..n).map(|i| pu[(i, c)] * du[(i, c)]).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-8, "{c}: |cos| {dot}");
        }
    }

    #[test]
    fn too_small_for_the_krylov_solver() {
        let a = Mat::<f64>::identity(20, 20);
        assert!(partial(&a.as_ref(), 10, 1e-12, None).is_none());
    }
}
