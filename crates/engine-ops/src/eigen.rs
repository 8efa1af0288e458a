//! The largest eigenpairs of a symmetric operator. A Krylov–Schur partial solver (faer's)
//! when few pairs are wanted from a large operator; the dense solver otherwise, or when the
//! partial one does not converge, so callers always get exact pairs.

use engine_common::{Error, Result};
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::evd::{ComputeEigenvectors, self_adjoint_evd_scratch};
use faer::linalg::matmul::matmul;
use faer::matrix_free::LinOp;
use faer::matrix_free::eigen::{
    PartialEigenParams, partial_eigen_scratch, partial_self_adjoint_eigen,
};
use faer::{Accum, Col, Mat, MatRef, Par, Side};

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

/// `k` largest eigenpairs of a symmetric operator whose spectrum is nonnegative, in the
/// orthogonal complement of `locked` (orthonormal columns spanning an invariant subspace, such
/// as an already known eigenvector): eigenvalues in decreasing order and one eigenvector per
/// column, each with residual `‖Av − λv‖ ≤ tol`.
///
/// Thick-restart Lanczos (Wu & Simon) on a basis of at most `m` vectors. Each new vector is
/// orthogonalised against the whole basis by two rounds of classical Gram–Schmidt, each two
/// matrix–vector products with the basis, so the basis is read four times per step instead of
/// in one sweep per basis vector; at a restart the `(m + k) / 2` leading Ritz vectors are kept. Returns
/// `None` when the operator is too small for the basis or the solver does not converge within
/// `max_products` operator products.
pub fn thick_restart_lanczos(
    op: &dyn LinOp<f64>,
    k: usize,
    tol: f64,
    m: usize,
    locked: MatRef<'_, f64>,
    max_products: usize,
) -> Option<(Vec<f64>, Mat<f64>)> {
    let n = op.nrows();
    let nl = locked.ncols();
    let m = m.max(k + 2);
    if k == 0 || nl + m + 1 > n {
        return None;
    }
    // Basis: the locked vectors, then up to m Lanczos vectors and the next residual direction.
    let mut q = Mat::<f64>::zeros(n, nl + m + 1);
    q.as_mut().subcols_mut(0, nl).copy_from(locked);
    // A deterministic, dense start vector, as in `partial`.
    let mut w = Col::<f64>::from_fn(n, |i| 1.0 + ((i * 7919) % 97) as f64 / 97.0);
    orthogonalize(q.as_ref().subcols(0, nl), w.as_mut());
    let norm = w.norm_l2();
    if norm == 0.0 {
        return None;
    }
    q.as_mut().col_mut(nl).copy_from(&w * (1.0 / norm));
    let mut h = Mat::<f64>::zeros(m, m);
    let mut kept = 0;
    let mut products = 0;
    let mut stack_mem = MemBuffer::new(op.apply_scratch(1, Par::Seq));
    loop {
        let mut beta = 0.0;
        let mut size = m;
        for j in kept..m {
            op.apply(
                w.as_mat_mut(),
                q.as_ref().col(nl + j).as_mat(),
                Par::rayon(0),
                MemStack::new(&mut stack_mem),
            );
            products += 1;
            let coef = orthogonalize(q.as_ref().subcols(0, nl + j + 1), w.as_mut());
            for i in 0..=j {
                h[(i, j)] = coef[nl + i];
                h[(j, i)] = coef[nl + i];
            }
            beta = w.norm_l2();
            // An invariant subspace: the Ritz pairs so far are exact.
            if beta <= f64::EPSILON * coef[nl + j].abs().max(1.0) {
                beta = 0.0;
                size = j + 1;
                break;
            }
            q.as_mut().col_mut(nl + j + 1).copy_from(&w * (1.0 / beta));
        }
        let (vals, y) = dense(h.as_ref().submatrix(0, 0, size, size)).ok()?;
        let want = k.min(size);
        let converged = (0..want).all(|c| (beta * y[(size - 1, c)]).abs() <= tol);
        if converged || products >= max_products || size < m {
            crate::cpu::clean_all();
            if !converged && size == m {
                return None;
            }
            let vecs = q.as_ref().subcols(nl, size) * y.as_ref().subcols(0, want);
            return Some((vals[..want].to_vec(), vecs));
        }
        // Restart on the leading Ritz vectors and the residual direction.
        kept = (m + k) / 2;
        let ritz = q.as_ref().subcols(nl, m) * y.as_ref().subcols(0, kept);
        q.as_mut().subcols_mut(nl, kept).copy_from(&ritz);
        let next = q.as_ref().col(nl + m).to_owned();
        q.as_mut().col_mut(nl + kept).copy_from(&next);
        h.fill(0.0);
        for c in 0..kept {
            h[(c, c)] = vals[c];
        }
    }
}

/// Makes `w` orthogonal to the orthonormal columns of `basis` by classical Gram–Schmidt twice
/// (enough for orthogonality to working precision), returning the projection coefficients.
fn orthogonalize(basis: MatRef<'_, f64>, mut w: faer::ColMut<'_, f64>) -> Col<f64> {
    let mut total = Col::<f64>::zeros(basis.ncols());
    if basis.ncols() == 0 {
        return total;
    }
    for _ in 0..2 {
        let c = basis.transpose() * w.as_ref();
        matmul(
            w.as_mut().as_mat_mut(),
            Accum::Add,
            basis,
            c.as_mat(),
            -1.0,
            Par::rayon(0),
        );
        total += &c;
    }
    total
}

/// All eigenpairs of a dense symmetric matrix, in decreasing order of eigenvalue.
///
/// # Errors
/// When the solver fails (NaN or infinite entries).
pub fn dense(a: MatRef<'_, f64>) -> Result<(Vec<f64>, Mat<f64>)> {
    let n = a.nrows();
    let eig = a
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| {
            Error::data(format!(
                "the eigendecomposition did not converge ({e:?}): the matrix has NaN or infinite entries"
            ))
        })?;
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

    /// A covariance with a decaying spectrum, like PCA's: B Bᵀ for a fixed 300 × 40 B.
    fn covariance() -> Mat<f64> {
        let b = Mat::from_fn(300, 40, |i, j| {
            (((i * 31 + j * 17) % 23) as f64 - 11.0) / (1.0 + j as f64)
        });
        &b * b.transpose()
    }

    /// Asserts pair `c` of (`vals`, `vecs`) is the dense pair `c + offset`: the eigenvalue
    /// within 1e-9 of the largest and the eigenvector up to sign.
    fn assert_pairs(got: (&[f64], &Mat<f64>), dense: (&[f64], &Mat<f64>), offset: usize) {
        let ((pv, pu), (dv, du)) = (got, dense);
        for c in 0..pv.len() {
            let d = c + offset;
            assert!(
                (pv[c] - dv[d]).abs() <= 1e-9 * dv[0],
                "{d}: {} vs {}",
                pv[c],
                dv[d]
            );
            let dot: f64 = (0..du.nrows()).map(|i| pu[(i, c)] * du[(i, d)]).sum();
            assert!((dot.abs() - 1.0).abs() < 1e-8, "{d}: |cos| {dot}");
        }
    }

    #[test]
    fn partial_matches_dense_on_a_covariance() {
        let a = covariance();
        let (dv, du) = dense(a.as_ref()).unwrap();
        let (pv, pu) = partial(&a.as_ref(), 10, 1e-12, None).expect("converges");
        assert_eq!(pv.len(), 10);
        assert_pairs((&pv, &pu), (&dv, &du), 0);
    }

    #[test]
    fn lanczos_matches_dense_through_restarts_and_with_a_locked_vector() {
        let a = covariance();
        let (dv, du) = dense(a.as_ref()).unwrap();
        let none = Mat::<f64>::zeros(a.nrows(), 0);
        // A 12-vector basis for 5 pairs cannot converge without restarting.
        let (pv, pu) =
            thick_restart_lanczos(&a.as_ref(), 5, 1e-10 * dv[0], 12, none.as_ref(), 5000)
                .expect("converges");
        assert_eq!(pv.len(), 5);
        assert_pairs((&pv, &pu), (&dv, &du), 0);
        // Locking the top eigenvector yields the next ones.
        let top = du.subcols(0, 1).to_owned();
        let (lv, lu) = thick_restart_lanczos(&a.as_ref(), 3, 1e-10 * dv[0], 12, top.as_ref(), 5000)
            .expect("converges");
        assert_eq!(lv.len(), 3);
        assert_pairs((&lv, &lu), (&dv, &du), 1);
    }

    #[test]
    fn too_small_for_the_krylov_solver() {
        let a = Mat::<f64>::identity(20, 20);
        assert!(partial(&a.as_ref(), 10, 1e-12, None).is_none());
    }
}
