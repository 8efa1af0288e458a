//! Highly variable genes from per-gene means and variances, as `sc.pp.highly_variable_genes`
//! computes them for the dispersion flavours (`seurat`, `cell_ranger`), with and without
//! `batch_key`. The statistics come from one streaming pass; everything here is per gene.

use crate::stats::median;
use engine_common::{Error, Result};

/// Which dispersion normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Log dispersion, z-scored within 20 equal-width bins of log mean.
    Seurat,
    /// Dispersion, normalised by median and MAD within bins at mean percentiles.
    CellRanger,
}

/// How genes are picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Cutoff {
    /// The `n_top_genes` largest normalised dispersions (ties at the cut all kept).
    Top(usize),
    /// scanpy's default bounds: `min_mean < mean < max_mean`, `min_disp < disp_norm < max_disp`.
    Bounds {
        min_disp: f64,
        max_disp: f64,
        min_mean: f64,
        max_mean: f64,
    },
}

/// The columns scanpy adds to `var`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hvg {
    pub means: Vec<f64>,
    pub dispersions: Vec<f64>,
    pub dispersions_norm: Vec<f64>,
    pub highly_variable: Vec<bool>,
    /// With a batch key: in how many batches each gene was highly variable.
    pub nbatches: Option<Vec<i64>>,
}

/// Highly variable genes of one batch from per-gene `mean` and `var` (ddof 1) of the data
/// (of `expm1` of it for `seurat`). With `expressed`, genes marked false are left out of the
/// binning and get zeros, as scanpy's `filter_unexpressed_genes` does.
///
/// # Errors
/// When `cell_ranger`'s percentile bins are not distinct (pandas refuses to cut then).
pub fn single_batch(
    mean: &[f64],
    var: &[f64],
    expressed: Option<&[bool]>,
    flavor: Flavor,
    n_bins: usize,
    cutoff: Cutoff,
) -> Result<Hvg> {
    let keep: Vec<usize> = (0..mean.len())
        .filter(|&j| expressed.is_none_or(|e| e[j]))
        .collect();
    let mut means = Vec::with_capacity(keep.len());
    let mut disp = Vec::with_capacity(keep.len());
    for &j in &keep {
        let m = if mean[j] == 0.0 { 1e-12 } else { mean[j] };
        let d = var[j] / m;
        match flavor {
            Flavor::Seurat => {
                means.push(m.ln_1p());
                disp.push(if d == 0.0 { f64::NAN } else { d.ln() });
            }
            Flavor::CellRanger => {
                means.push(m);
                disp.push(d);
            }
        }
    }
    let bins = match flavor {
        Flavor::Seurat => equal_width_bins(&means, n_bins),
        Flavor::CellRanger => {
            let mut edges = vec![f64::NEG_INFINITY];
            let mut sorted = means.clone();
            sorted.sort_by(f64::total_cmp);
            edges.extend((10..105).step_by(5).map(|q| percentile(&sorted, q as f64)));
            edges.push(f64::INFINITY);
            if edges.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Error::data(
                    "cell_ranger: the percentile bins of the gene means are not distinct (many genes share a mean, e.g. unexpressed ones); filter genes first (filter_genes min_cells)",
                ));
            }
            edges
        }
    };
    let codes: Vec<usize> = means.iter().map(|&m| bin_of(&bins, m)).collect();
    let n_groups = bins.len() - 1;
    let mut groups: Vec<Vec<f64>> = vec![Vec::new(); n_groups];
    for (g, d) in codes.iter().zip(&disp) {
        if !d.is_nan() {
            groups[*g].push(*d);
        }
    }
    let stats: Vec<(f64, f64)> = groups
        .iter()
        .map(|g| match flavor {
            Flavor::Seurat => {
                let (avg, dev) = (mean_of(g), std_of(g));
                // A bin with one gene: scanpy sets its normalised dispersion to 1.
                if dev.is_nan() { (0.0, avg) } else { (avg, dev) }
            }
            Flavor::CellRanger => (median(g), mad(g)),
        })
        .collect();
    let norm: Vec<f64> = codes
        .iter()
        .zip(&disp)
        .map(|(g, d)| (d - stats[*g].0) / stats[*g].1)
        .collect();
    let hv = select(&means, &norm, cutoff);
    let n = mean.len();
    let mut out = Hvg {
        means: vec![0.0; n],
        dispersions: vec![0.0; n],
        dispersions_norm: vec![0.0; n],
        highly_variable: vec![false; n],
        nbatches: None,
    };
    for (k, &j) in keep.iter().enumerate() {
        out.means[j] = means[k];
        out.dispersions[j] = disp[k];
        out.dispersions_norm[j] = norm[k];
        out.highly_variable[j] = hv[k];
    }
    Ok(out)
}

/// Combines per-batch results as scanpy does: means of the statistics over batches (NaNs
/// skipped), genes ranked by the number of batches they are variable in, then by mean
/// normalised dispersion. Exact ties keep the order of `names` (pandas groups genes by name,
/// sorted), or of position without names.
pub fn combine_batches(batches: &[Hvg], cutoff: Cutoff, names: Option<&[String]>) -> Hvg {
    let n = batches.first().map_or(0, |b| b.means.len());
    let nan_mean = |f: &dyn Fn(&Hvg) -> f64| -> f64 {
        let v: Vec<f64> = batches.iter().map(f).filter(|x| !x.is_nan()).collect();
        mean_of(&v)
    };
    let mut out = Hvg::default();
    let mut nb = Vec::with_capacity(n);
    for j in 0..n {
        out.means.push(nan_mean(&|b| b.means[j]));
        out.dispersions.push(nan_mean(&|b| b.dispersions[j]));
        out.dispersions_norm
            .push(nan_mean(&|b| b.dispersions_norm[j]));
        nb.push(batches.iter().filter(|b| b.highly_variable[j]).count() as i64);
    }
    out.highly_variable = match cutoff {
        Cutoff::Top(k) => {
            let mut order: Vec<usize> = (0..n).collect();
            if let Some(names) = names {
                order.sort_by(|&a, &b| names[a].cmp(&names[b]));
            }
            // Descending by batches, then by dispersion with NaN last; stable otherwise.
            order.sort_by(|&a, &b| {
                nb[b].cmp(&nb[a]).then_with(|| {
                    let (x, y) = (out.dispersions_norm[a], out.dispersions_norm[b]);
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ => y.total_cmp(&x),
                    }
                })
            });
            let mut hv = vec![false; n];
            for &j in order.iter().take(k) {
                hv[j] = true;
            }
            hv
        }
        Cutoff::Bounds { .. } => {
            let norm: Vec<f64> = out
                .dispersions_norm
                .iter()
                .map(|v| if v.is_nan() { 0.0 } else { *v })
                .collect();
            select(&out.means, &norm, cutoff)
        }
    };
    out.nbatches = Some(nb);
    out
}

fn select(means: &[f64], norm: &[f64], cutoff: Cutoff) -> Vec<bool> {
    match cutoff {
        Cutoff::Top(k) => {
            let mut finite: Vec<f64> = norm.iter().copied().filter(|v| !v.is_nan()).collect();
            let k = k.min(norm.len()).min(finite.len());
            if k == 0 {
                return vec![false; norm.len()];
            }
            finite.sort_by(|a, b| b.total_cmp(a));
            let cut = finite[k - 1];
            norm.iter().map(|v| !v.is_nan() && *v >= cut).collect()
        }
        Cutoff::Bounds {
            min_disp,
            max_disp,
            min_mean,
            max_mean,
        } => means
            .iter()
            .zip(norm)
            .map(|(&m, &d)| {
                let d = if d.is_nan() { 0.0 } else { d };
                m > min_mean && m < max_mean && d > min_disp && d < max_disp
            })
            .collect(),
    }
}

/// `pd.cut(x, bins=n)` edges: `n` equal-width bins over the range, the lowest edge moved
/// down by 0.1% of the range so the minimum falls inside.
fn equal_width_bins(x: &[f64], n: usize) -> Vec<f64> {
    let n = n.max(1);
    let mn = x.iter().copied().fold(f64::INFINITY, f64::min);
    let mx = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !mn.is_finite() || !mx.is_finite() {
        return vec![f64::NEG_INFINITY, f64::INFINITY];
    }
    if mn == mx {
        let adj = if mn == 0.0 { 0.001 } else { 0.001 * mn.abs() };
        return linspace(mn - adj, mx + adj, n + 1);
    }
    let mut b = linspace(mn, mx, n + 1);
    b[0] -= (mx - mn) * 0.001;
    b
}

/// `np.linspace(a, b, num)` to the last bit: `i * step + a`, the endpoint exact.
fn linspace(a: f64, b: f64, num: usize) -> Vec<f64> {
    let step = (b - a) / (num - 1) as f64;
    let mut v: Vec<f64> = (0..num).map(|i| i as f64 * step + a).collect();
    v[num - 1] = b;
    v
}

/// The right-closed bin `(e[i], e[i + 1]]` holding `x`.
fn bin_of(edges: &[f64], x: f64) -> usize {
    let i = edges.partition_point(|e| *e < x);
    i.saturating_sub(1).min(edges.len() - 2)
}

/// `np.percentile(sorted, q)` with linear interpolation, as numpy rounds it.
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let v = q / 100.0 * (n - 1) as f64;
    let lo = v.floor();
    let t = v - lo;
    let lo = lo as usize;
    let hi = (lo + 1).min(n - 1);
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

fn mean_of(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Sample standard deviation (ddof 1); NaN below two values, as pandas.
fn std_of(v: &[f64]) -> f64 {
    if v.len() < 2 {
        return f64::NAN;
    }
    let m = mean_of(v);
    (v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
}

/// statsmodels' `mad`: the median absolute deviation scaled to a normal's sd.
fn mad(v: &[f64]) -> f64 {
    const C: f64 = 0.674_489_750_196_081_7;
    let m = median(v);
    let dev: Vec<f64> = v.iter().map(|x| (x - m).abs() / C).collect();
    median(&dev)
}

/// `seurat_v3`'s regularised standard deviation per gene: `sqrt(10^f)` with `f` the LOESS
/// fit (span `span`, degree 2) of log10 variance on log10 mean over the genes with positive
/// variance; 1 for the others (their fit is taken as 0, as scanpy does).
///
/// # Errors
/// When the LOESS fit fails, as scikit-misc's does (see [`crate::loess`]).
pub fn seurat_v3_reg_std(mean: &[f64], var: &[f64], span: f64) -> Result<Vec<f64>> {
    let varying: Vec<usize> = (0..var.len()).filter(|&j| var[j] > 0.0).collect();
    let mut fitted = vec![0.0; var.len()];
    if !varying.is_empty() {
        let x: Vec<f64> = varying.iter().map(|&j| mean[j].log10()).collect();
        let y: Vec<f64> = varying.iter().map(|&j| var[j].log10()).collect();
        let fit = crate::loess::loess(&x, &y, span).map_err(|e| {
            Error::data(format!(
                "seurat_v3: LOESS of log variance on log mean failed: {e}"
            ))
        })?;
        for (&j, f) in varying.iter().zip(fit) {
            fitted[j] = f;
        }
    }
    Ok(fitted.iter().map(|f| 10f64.powf(*f).sqrt()).collect())
}

/// `seurat_v3`'s normalised variance of one batch of `n_obs` cells: the variance of the
/// counts clipped at `mean + sqrt(n_obs) · reg_std`, in units of the regularised variance.
/// `clipped_sum` and `clipped_sumsq` are the column sums of the clipped counts and squares.
pub fn seurat_v3_norm_var(
    mean: &[f64],
    reg_std: &[f64],
    n_obs: usize,
    clipped_sum: &[f64],
    clipped_sumsq: &[f64],
) -> Vec<f64> {
    let n = n_obs as f64;
    (0..mean.len())
        .map(|j| {
            (1.0 / ((n - 1.0) * reg_std[j] * reg_std[j]))
                * (n * mean[j] * mean[j] + clipped_sumsq[j] - 2.0 * clipped_sum[j] * mean[j])
        })
        .collect()
}

/// What `seurat_v3` writes besides means and variances.
#[derive(Debug, Clone, PartialEq)]
pub struct SeuratV3 {
    pub highly_variable: Vec<bool>,
    /// Median rank over the batches where the gene ranks in the top `n_top_genes`; NaN
    /// elsewhere (float32 in scanpy).
    pub rank: Vec<f32>,
    pub nbatches: Vec<i64>,
    /// Mean of the normalised variances over batches.
    pub variances_norm: Vec<f64>,
}

/// Ranks genes by normalised variance within each batch, then picks the `n_top` with the
/// smallest median rank, more batches first on ties (scanpy's `seurat_v3` ordering).
pub fn seurat_v3_select(norm_vars: &[Vec<f64>], n_top: usize) -> SeuratV3 {
    let n_genes = norm_vars.first().map_or(0, Vec::len);
    let mut ranks: Vec<Vec<f64>> = vec![Vec::new(); n_genes];
    let mut nbatches = vec![0i64; n_genes];
    for nv in norm_vars {
        let mut order: Vec<usize> = (0..n_genes).collect();
        order.sort_by(|&a, &b| nv[b].total_cmp(&nv[a]));
        for (rank, &g) in order.iter().enumerate() {
            if rank < n_top {
                ranks[g].push(rank as f64);
                nbatches[g] += 1;
            }
        }
    }
    let rank: Vec<f32> = ranks
        .iter()
        .map(|r| {
            if r.is_empty() {
                f32::NAN
            } else {
                crate::stats::median(r) as f32
            }
        })
        .collect();
    let mut order: Vec<usize> = (0..n_genes).collect();
    // Stable: rank ascending with NaN last, then more batches first.
    order.sort_by(|&a, &b| {
        let (ra, rb) = (rank[a], rank[b]);
        match (ra.is_nan(), rb.is_nan()) {
            (false, true) => std::cmp::Ordering::Less,
            (true, false) => std::cmp::Ordering::Greater,
            (false, false) => ra.total_cmp(&rb),
            (true, true) => std::cmp::Ordering::Equal,
        }
        .then(nbatches[b].cmp(&nbatches[a]))
    });
    let mut highly_variable = vec![false; n_genes];
    for &g in order.iter().take(n_top) {
        highly_variable[g] = true;
    }
    let variances_norm = (0..n_genes)
        .map(|g| norm_vars.iter().map(|nv| nv[g]).sum::<f64>() / norm_vars.len() as f64)
        .collect();
    SeuratV3 {
        highly_variable,
        rank,
        nbatches,
        variances_norm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_and_bins_follow_numpy_and_pandas() {
        assert_eq!(linspace(0.0, 1.0, 5), vec![0.0, 0.25, 0.5, 0.75, 1.0]);
        let e = equal_width_bins(&[0.0, 10.0], 2);
        assert_eq!(e, vec![-0.01, 5.0, 10.0]);
        // Right-closed: 5.0 falls in the first bin, 5.1 in the second.
        assert_eq!(bin_of(&e, 0.0), 0);
        assert_eq!(bin_of(&e, 5.0), 0);
        assert_eq!(bin_of(&e, 5.1), 1);
        assert_eq!(bin_of(&e, 10.0), 1);
    }

    #[test]
    fn percentile_interpolates_linearly() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), 2.5);
        assert_eq!(percentile(&s, 100.0), 4.0);
        assert!((percentile(&s, 10.0) - 1.3).abs() < 1e-15);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        // MAD of 1..5: median 3, deviations 2,1,0,1,2 -> median 1 / 0.6745.
        assert!((mad(&[1.0, 2.0, 3.0, 4.0, 5.0]) - 1.0 / 0.674_489_750_196_081_7).abs() < 1e-12);
    }

    #[test]
    fn seurat_normalises_log_dispersion_within_bins() {
        // One bin (n_bins = 1): normalised dispersion is the z-score of log dispersion.
        let mean = [1.0, 1.0, 1.0];
        let var = [1.0, std::f64::consts::E, std::f64::consts::E.powi(2)];
        let h = single_batch(&mean, &var, None, Flavor::Seurat, 1, Cutoff::Top(1)).unwrap();
        // log dispersions 0, 1, 2: mean 1, sd 1.
        for (got, want) in h.dispersions_norm.iter().zip([-1.0, 0.0, 1.0]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        assert_eq!(h.highly_variable, vec![false, false, true]);
        assert!((h.means[0] - 2f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn unexpressed_genes_get_zeros_and_batches_combine_by_count() {
        let mean = [0.0, 1.0, 1.0, 1.0];
        let var = [0.0, 1.0, 2.0, 4.0];
        let expressed = [false, true, true, true];
        let a = single_batch(
            &mean,
            &var,
            Some(&expressed),
            Flavor::Seurat,
            1,
            Cutoff::Top(1),
        )
        .unwrap();
        assert_eq!(a.means[0], 0.0);
        assert!(!a.highly_variable[0] && a.highly_variable[3]);
        let b = single_batch(&var, &mean, None, Flavor::Seurat, 1, Cutoff::Top(1)).unwrap();
        // Normalised dispersions average to 0 for genes 1-3, so the tie keeps name order.
        let c = combine_batches(&[a.clone(), b.clone()], Cutoff::Top(1), None);
        assert_eq!(c.nbatches.as_deref(), Some(&[0, 1, 0, 1][..]));
        assert_eq!(c.highly_variable, vec![false, true, false, false]);
        let names: Vec<String> = ["d", "c", "b", "a"].map(String::from).to_vec();
        let c = combine_batches(&[a, b], Cutoff::Top(1), Some(&names));
        assert_eq!(c.highly_variable, vec![false, false, false, true]);
    }

    #[test]
    fn seurat_v3_picks_by_median_rank_then_batch_count() {
        // Genes 0..4 in three batches, top 2 per batch: gene 0 ranks first everywhere, gene 2
        // second in two batches, gene 1 second in one, gene 3 never in the top.
        let b12 = vec![4.0, 2.0, 3.0, 1.0];
        let b3 = vec![4.0, 3.0, 2.0, 1.0];
        let r = seurat_v3_select(&[b12.clone(), b12, b3], 2);
        assert_eq!(r.nbatches, vec![3, 1, 2, 0]);
        assert_eq!(&r.rank[..3], &[0.0, 1.0, 1.0]);
        assert!(r.rank[3].is_nan());
        // Genes 1 and 2 tie on median rank; gene 2 is top in more batches.
        assert_eq!(r.highly_variable, vec![true, false, true, false]);
        assert_eq!(r.variances_norm, vec![4.0, 7.0 / 3.0, 8.0 / 3.0, 1.0]);
    }

    #[test]
    fn seurat_v3_normalised_variance_is_the_clipped_variance_over_the_trend() {
        // Counts 0, 0, 2, 6 in one gene, trend sd 2, no clipping: the sample variance over 4.
        let (mean, sum, sumsq) = (2.0, 8.0, 40.0);
        let v = seurat_v3_norm_var(&[mean], &[2.0], 4, &[sum], &[sumsq]);
        let sample_var = (4.0 + 4.0 + 0.0 + 16.0) / 3.0;
        assert!((v[0] - sample_var / 4.0).abs() < 1e-12);
    }
}
