//! One-dimensional LOESS as scikit-misc's `loess(x, y, span, degree=2)` fits it with its
//! defaults (the netlib `dloess` code: gaussian family, `surface="interpolate"`,
//! `cell=0.2`), which scanpy's `seurat_v3` highly-variable-gene flavour uses to regress log
//! variance on log mean:
//! - a kd-tree over the sorted x splits cells at the median (moved off runs of ties) until a
//!   cell holds at most `floor(n · span · cell)` points; its vertices are the split points and
//!   the bounding box widened by 0.5 % of the range on each side;
//! - at every vertex a local quadratic is fitted by weighted least squares to the
//!   `floor(n · span)` nearest points with tricube weights; its intercept and slope are kept;
//! - each x is then evaluated by cubic Hermite interpolation between the two vertices of its
//!   leaf cell.
//!
//! Where dloess warns (a near-singular local fit, a zero-width neighbourhood), scikit-misc
//! raises, and so does this: the caller gets an error, not a different fit.

use engine_common::{Error, Result};
use faer::Mat;

/// The fitted values at `x`, in input order.
///
/// # Errors
/// When dloess would fail: too few points for the span, a vertex whose neighbourhood has no
/// width or fewer than three distinct x values (scanpy issue #1504), or non-finite input.
pub fn loess(x: &[f64], y: &[f64], span: f64) -> Result<Vec<f64>> {
    let n = x.len();
    if y.len() != n {
        return Err(Error::data("x and y differ in length"));
    }
    if !(span > 0.0 && span <= 1.0) {
        return Err(Error::data(format!("span must be in (0, 1], got {span}")));
    }
    if x.iter().chain(y).any(|v| !v.is_finite()) {
        return Err(Error::data("non-finite values"));
    }
    let nf = ((n as f64 * span + 1e-5).floor() as usize).min(n);
    // Three local parameters need at least four neighbours.
    if nf < 4 {
        return Err(Error::data(format!(
            "span too small: {nf} neighbours of {n} points for a local quadratic"
        )));
    }
    let fc = (n as f64 * (span * 0.2)).floor() as usize;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| x[a].total_cmp(&x[b]));
    let xs: Vec<f64> = order.iter().map(|&i| x[i]).collect();
    let ys: Vec<f64> = order.iter().map(|&i| y[i]).collect();
    let tree = Tree::build(&xs, fc);
    let mut value = Vec::with_capacity(tree.vertex.len());
    let mut slope = Vec::with_capacity(tree.vertex.len());
    for &q in &tree.vertex {
        let (v, s) = local_fit(&xs, &ys, q, nf)?;
        value.push(v);
        slope.push(s);
    }
    Ok(x.iter().map(|&z| tree.eval(z, &value, &slope)).collect())
}

/// A 1-D kd-tree: cells are index ranges of the sorted x with their two end vertices.
#[derive(Debug)]
struct Tree {
    vertex: Vec<f64>,
    /// Per cell: `(left vertex, right vertex, split value, children)`; no children for a leaf.
    cells: Vec<Cell>,
}

#[derive(Debug, Clone, Copy)]
struct Cell {
    lo_vertex: usize,
    hi_vertex: usize,
    split: f64,
    children: Option<(usize, usize)>,
}

impl Tree {
    /// Breadth-first splitting as dloess's `ehg126`/`ehg129`/`ehg124` do it in one dimension.
    fn build(s: &[f64], fc: usize) -> Tree {
        let n = s.len();
        let (lo, hi) = (s[0], s[n - 1]);
        let margin = 0.005 * (hi - lo).max(1e-10 * lo.abs().max(hi.abs()) + 1e-30);
        let mut tree = Tree {
            vertex: vec![lo - margin, hi + margin],
            cells: vec![Cell {
                lo_vertex: 0,
                hi_vertex: 1,
                split: 0.0,
                children: None,
            }],
        };
        // Inclusive index ranges of the sorted points, per cell.
        let mut ranges: Vec<(usize, usize)> = vec![(0, n - 1)];
        // dloess sizes its vertex and cell tables for max(200, n).
        let capacity = n.max(200);
        let mut p = 0;
        while p < tree.cells.len() {
            let (l, u) = ranges[p];
            let Cell {
                lo_vertex,
                hi_vertex,
                ..
            } = tree.cells[p];
            let count = (u + 1).saturating_sub(l);
            let mut leaf = count <= fc
                || tree.vertex[hi_vertex] - tree.vertex[lo_vertex] <= 0.0
                || capacity < tree.cells.len() + 2
                || capacity < tree.vertex.len() + 1;
            let mut m = (l + u) / 2;
            if !leaf {
                // Move the split off a run of ties: offsets 0, +1, -1, +2, -2, … until the
                // next point differs, giving up once an offset leaves the cell.
                let mut o: isize = 0;
                loop {
                    let at = m as isize + o;
                    if at >= u as isize || at < l as isize {
                        break;
                    }
                    let at = at as usize;
                    if s[at] == s[at + 1] {
                        o = -o;
                        if o >= 0 {
                            o += 1;
                        }
                        continue;
                    }
                    m = at;
                    break;
                }
                leaf = tree.vertex[lo_vertex] == s[m] || tree.vertex[hi_vertex] == s[m];
            }
            if !leaf {
                let w = tree.vertex.len();
                tree.vertex.push(s[m]);
                let left = tree.cells.len();
                tree.cells.push(Cell {
                    lo_vertex,
                    hi_vertex: w,
                    split: 0.0,
                    children: None,
                });
                tree.cells.push(Cell {
                    lo_vertex: w,
                    hi_vertex,
                    split: 0.0,
                    children: None,
                });
                ranges.push((l, m));
                ranges.push((m + 1, u));
                tree.cells[p].split = s[m];
                tree.cells[p].children = Some((left, left + 1));
            }
            p += 1;
        }
        tree
    }

    /// Cubic Hermite interpolation in the leaf holding `z` (ties go left, as in `ehg128`).
    fn eval(&self, z: f64, value: &[f64], slope: &[f64]) -> f64 {
        let mut c = 0;
        while let Some((left, right)) = self.cells[c].children {
            c = if z <= self.cells[c].split {
                left
            } else {
                right
            };
        }
        let (a, b) = (self.cells[c].lo_vertex, self.cells[c].hi_vertex);
        let width = self.vertex[b] - self.vertex[a];
        let h = (z - self.vertex[a]) / width;
        let phi0 = (1.0 - h) * (1.0 - h) * (1.0 + 2.0 * h);
        let phi1 = h * h * (3.0 - 2.0 * h);
        let psi0 = h * (1.0 - h) * (1.0 - h);
        let psi1 = h * h * (h - 1.0);
        (phi0 * value[a] + phi1 * value[b]) + (psi0 * slope[a] + psi1 * slope[b]) * width
    }
}

/// The local quadratic at `q` (`ehg127`): intercept and slope of the weighted least-squares
/// fit to the `nf` nearest points, tricube weights on distance over the `nf`-th distance.
fn local_fit(xs: &[f64], ys: &[f64], q: f64, nf: usize) -> Result<(f64, f64)> {
    let n = xs.len();
    // The nf nearest points of sorted data form a window around q's position.
    let mut right = xs.partition_point(|&v| v < q);
    let mut left = right;
    while right - left < nf {
        let take_left = match (left > 0, right < n) {
            (true, true) => (q - xs[left - 1]) <= (xs[right] - q),
            (l, _) => l,
        };
        if take_left {
            left -= 1;
        } else {
            right += 1;
        }
    }
    let rho = xs[left..right]
        .iter()
        .map(|&v| (v - q) * (v - q))
        .fold(0.0f64, f64::max);
    if rho <= 0.0 {
        return Err(Error::data(format!("zero-width neighbourhood at x = {q}")));
    }
    // Rows of the weighted design, scaled by sqrt of the tricube weight; points at the
    // nf-th distance get weight zero.
    let mut rows: Vec<([f64; 3], f64)> = Vec::with_capacity(nf);
    for i in left..right {
        let d = xs[i] - q;
        let r = (d * d / rho).sqrt();
        let t = 1.0 - r * r * r;
        let w = (t * t * t).max(0.0).sqrt();
        if w > 0.0 {
            rows.push(([w, w * d, w * d * d], w * ys[i]));
        }
    }
    if rows.is_empty() {
        return Err(Error::data(format!(
            "all points on the boundary of the neighbourhood at x = {q}"
        )));
    }
    // Column equilibration, then Householder QR of the m x 3 design.
    let m = rows.len();
    let mut col = [0.0f64; 3];
    for c in 0..3 {
        col[c] = rows.iter().map(|(b, _)| b[c] * b[c]).sum::<f64>().sqrt();
        if col[c] > 0.0 {
            for (b, _) in rows.iter_mut() {
                b[c] /= col[c];
            }
        } else {
            col[c] = 1.0;
        }
    }
    let mut a = Mat::<f64>::from_fn(m, 3, |i, c| rows[i].0[c]);
    let mut rhs: Vec<f64> = rows.iter().map(|(_, e)| *e).collect();
    for k in 0..3.min(m) {
        let norm = (k..m).map(|i| a[(i, k)] * a[(i, k)]).sum::<f64>().sqrt();
        if norm == 0.0 {
            continue;
        }
        let alpha = if a[(k, k)] > 0.0 { -norm } else { norm };
        let mut v: Vec<f64> = (k..m).map(|i| a[(i, k)]).collect();
        v[0] -= alpha;
        let vv: f64 = v.iter().map(|t| t * t).sum();
        if vv == 0.0 {
            continue;
        }
        for c in k..3 {
            let dot: f64 = (k..m).map(|i| v[i - k] * a[(i, c)]).sum();
            let f = 2.0 * dot / vv;
            for i in k..m {
                a[(i, c)] -= f * v[i - k];
            }
        }
        let dot: f64 = (k..m).map(|i| v[i - k] * rhs[i]).sum();
        let f = 2.0 * dot / vv;
        for i in k..m {
            rhs[i] -= f * v[i - k];
        }
    }
    let r = Mat::<f64>::from_fn(3, 3, |i, j| if i <= j && i < m { a[(i, j)] } else { 0.0 });
    // dloess truncates singular values below 100 ε σ₁ and warns, which scikit-misc raises.
    let sigma = r
        .singular_values()
        .map_err(|e| Error::data(format!("SVD of the local fit failed at x = {q}: {e:?}")))?;
    let (s_max, s_min) = (sigma[0], sigma[sigma.len() - 1]);
    // NaN singular values fail too.
    if s_min.is_nan() || s_min <= s_max * 100.0 * f64::EPSILON {
        return Err(Error::data(format!(
            "the local quadratic at x = {q} is singular (fewer than three distinct values in its neighbourhood)"
        )));
    }
    let mut beta = [0.0f64; 3];
    for i in (0..3).rev() {
        let s: f64 = (i + 1..3).map(|j| r[(i, j)] * beta[j]).sum();
        beta[i] = (rhs[i] - s) / r[(i, i)];
    }
    Ok((beta[0] / col[0], beta[1] / col[1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sine_matches_scikit_misc() {
        // skmisc.loess.loess(x, np.sin(6 x), span=0.3, degree=2) for x = linspace(0, 1, 50),
        // scikit-misc 0.5.3: the first five fitted values.
        let x: Vec<f64> = (0..50).map(|i| i as f64 / 49.0).collect();
        let y: Vec<f64> = x.iter().map(|v| (6.0 * v).sin()).collect();
        let fit = loess(&x, &y, 0.3).unwrap();
        let expected = [-0.00995558, 0.12399245, 0.25002575, 0.36753924, 0.47704924];
        for (f, e) in fit.iter().zip(expected) {
            assert!((f - e).abs() < 5e-8, "{f} vs {e}");
        }
    }

    #[test]
    fn a_quadratic_is_reproduced_exactly() {
        // Local quadratics fit a global quadratic without error, at vertices and in between.
        let x: Vec<f64> = (0..300).map(|i| ((i * 37) % 300) as f64 / 29.0).collect();
        let y: Vec<f64> = x.iter().map(|v| 2.0 - 0.5 * v + 0.25 * v * v).collect();
        let fit = loess(&x, &y, 0.3).unwrap();
        for (f, t) in fit.iter().zip(&y) {
            assert!((f - t).abs() < 1e-9 * t.abs().max(1.0), "{f} vs {t}");
        }
    }

    #[test]
    fn too_few_distinct_values_fail_as_scikit_misc_does() {
        // Two distinct x values cannot carry a local quadratic.
        let x: Vec<f64> = (0..100).map(|i| (i % 2) as f64).collect();
        let y: Vec<f64> = (0..100).map(|i| i as f64).collect();
        assert!(loess(&x, &y, 0.3).is_err());
        assert!(
            loess(&x[..10], &y[..10], 0.3).is_err(),
            "ten points: three neighbours"
        );
    }
}
