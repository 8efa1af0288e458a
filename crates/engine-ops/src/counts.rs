//! The embedded counts source: a single-cell-like sparse count matrix, generated row by row
//! from counter-based seeds (any block on its own, on any thread, identical values).
//!
//! Each cell has a type, a batch and a library size (log-normal). A gene's rate is its base
//! mean (log-normal across genes) times the fold change of its cell type's markers, times a
//! gamma factor shared by the gene's module of 50 genes, drawn per cell. Counts given the
//! rates are Poisson, so each gene's count is negative binomial (Poisson–gamma) with the
//! module's dispersion, and co-regulated genes vary together. The 13 mitochondrial genes carry
//! about 3% of a cell's counts, and about 30% in the 5% of cells marked as damaged.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma, LogNormal, Poisson};

use crate::synthetic::mix;
use engine_matrix::Csr;

/// The mitochondrial genes, named as in human annotations.
pub const MT_GENES: [&str; 13] = [
    "MT-ND1", "MT-ND2", "MT-CO1", "MT-CO2", "MT-ATP8", "MT-ATP6", "MT-CO3", "MT-ND3", "MT-ND4L",
    "MT-ND4", "MT-ND5", "MT-ND6", "MT-CYB",
];

const MODULE: usize = 50;

/// Parameters of the counts (the `synthetic_counts` op); they cross processes (a dask
/// worker regenerates its rows from them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Counts {
    pub n_obs: usize,
    pub n_vars: usize,
    pub n_types: usize,
    pub n_batches: usize,
    /// Expected counts per cell before library-size variation.
    pub library_size: f64,
    pub seed: u64,
}

/// Walker's alias table over a few weights.
#[derive(Debug, Clone)]
struct Alias {
    prob: Vec<f64>,
    alias: Vec<u32>,
}

impl Alias {
    fn new(w: &[f64]) -> Alias {
        let n = w.len();
        let total: f64 = w.iter().sum();
        let mut p: Vec<f64> = w.iter().map(|x| x * n as f64 / total).collect();
        let mut alias = vec![0u32; n];
        let (mut small, mut large): (Vec<usize>, Vec<usize>) = (0..n).partition(|&i| p[i] < 1.0);
        while let (Some(s), Some(&l)) = (small.pop(), large.last()) {
            alias[s] = l as u32;
            p[l] -= 1.0 - p[s];
            if p[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        for i in large.into_iter().chain(small) {
            p[i] = 1.0;
        }
        Alias { prob: p, alias }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> usize {
        let i = rng.random_range(0..self.prob.len());
        if rng.random::<f64>() < self.prob[i] {
            i
        } else {
            self.alias[i] as usize
        }
    }
}

/// Everything shared by all cells, drawn once from the seed.
#[derive(Debug, Clone)]
pub struct CountsModel {
    pub params: Counts,
    /// Gene ranges of the modules; the last module is the mitochondrial genes (if any).
    modules: Vec<std::ops::Range<usize>>,
    /// Per module: its gamma shape (1 / dispersion).
    shape: Vec<f64>,
    /// `[type][module]`: total rate and the alias over the module's genes.
    rates: Vec<Vec<(f64, Alias)>>,
    /// Per batch and module: a multiplicative batch effect.
    batch_effect: Vec<Vec<f64>>,
    n_mt: usize,
}

impl Counts {
    /// Draws the gene-level model.
    pub fn model(&self) -> CountsModel {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, u64::MAX));
        let n_mt = if self.n_vars >= 200 {
            MT_GENES.len()
        } else {
            0
        };
        let n_nuc = self.n_vars - n_mt;
        let base_dist = LogNormal::new(0.0, 1.5).expect("valid log-normal");
        let mut base: Vec<f64> = (0..self.n_vars)
            .map(|_| base_dist.sample(&mut rng))
            .collect();
        // Nuclear genes share (1 - 3%) of the expected library, mitochondrial ones 3%.
        let nuc_total: f64 = base[..n_nuc].iter().sum();
        let mt_total: f64 = base[n_nuc..].iter().sum();
        for (j, b) in base.iter_mut().enumerate() {
            *b *= if j < n_nuc {
                0.97 * self.library_size / nuc_total
            } else {
                0.03 * self.library_size / mt_total.max(f64::MIN_POSITIVE)
            };
        }
        // Markers: 2% of nuclear genes per type, fold change 3-10, disjoint across types.
        let types = self.n_types.max(1);
        let per_type = (n_nuc / 50).max(1).min(n_nuc / types);
        let mut fold = vec![vec![1.0; self.n_vars]; types];
        let mut genes: Vec<usize> = (0..n_nuc).collect();
        for i in (1..genes.len()).rev() {
            genes.swap(i, rng.random_range(0..=i));
        }
        for (t, f) in fold.iter_mut().enumerate() {
            for &g in genes.iter().skip(t * per_type).take(per_type) {
                f[g] = rng.random_range(3.0..10.0);
            }
        }
        let mut modules: Vec<std::ops::Range<usize>> = (0..n_nuc)
            .step_by(MODULE)
            .map(|s| s..(s + MODULE).min(n_nuc))
            .collect();
        if n_mt > 0 {
            modules.push(n_nuc..self.n_vars);
        }
        let shape: Vec<f64> = modules
            .iter()
            .map(|_| 1.0 / rng.random_range(0.05..0.5))
            .collect();
        let rates = fold
            .iter()
            .map(|f| {
                // Markers move counts between genes; every type keeps the same library size.
                let nuc: f64 = (0..n_nuc).map(|g| base[g] * f[g]).sum();
                let norm = 0.97 * self.library_size / nuc;
                modules
                    .iter()
                    .map(|m| {
                        let w: Vec<f64> = m
                            .clone()
                            .map(|g| base[g] * if g < n_nuc { f[g] * norm } else { 1.0 })
                            .collect();
                        (w.iter().sum(), Alias::new(&w))
                    })
                    .collect()
            })
            .collect();
        let batch_effect = (0..self.n_batches.max(1))
            .map(|b| {
                modules
                    .iter()
                    .map(|_| {
                        if b == 0 {
                            1.0
                        } else {
                            rng.random_range(0.7..1.4)
                        }
                    })
                    .collect()
            })
            .collect();
        CountsModel {
            params: self.clone(),
            modules,
            shape,
            rates,
            batch_effect,
            n_mt,
        }
    }

    /// Gene names: `MT-…` for the mitochondrial genes (the last 13), `GENE00001…` otherwise.
    pub fn var_names(&self) -> Vec<String> {
        let n_mt = if self.n_vars >= 200 {
            MT_GENES.len()
        } else {
            0
        };
        let width = self.n_vars.to_string().len().max(5);
        (0..self.n_vars)
            .map(|j| {
                if j >= self.n_vars - n_mt {
                    MT_GENES[j - (self.n_vars - n_mt)].to_string()
                } else {
                    format!("GENE{:0width$}", j + 1)
                }
            })
            .collect()
    }

    /// The cell type of a row.
    pub fn cell_type(&self, row: usize) -> usize {
        (mix(self.seed, row as u64) % self.n_types.max(1) as u64) as usize
    }

    /// The batch of a row.
    pub fn batch(&self, row: usize) -> usize {
        (mix(self.seed ^ 0x5EED, row as u64) % self.n_batches.max(1) as u64) as usize
    }
}

impl CountsModel {
    /// Counts of the given rows, in order.
    pub fn rows(&self, rows: impl Iterator<Item = usize>) -> Csr {
        let p = &self.params;
        let lib = LogNormal::new(0.0, 0.5).expect("valid log-normal");
        let mut counts = vec![0u32; p.n_vars];
        let mut touched: Vec<u32> = Vec::new();
        let mut out = Csr::with_cols(p.n_vars);
        for row in rows {
            let mut rng = ChaCha8Rng::seed_from_u64(mix(p.seed ^ 0xC0FF_EE00, row as u64));
            let t = p.cell_type(row);
            let b = p.batch(row);
            let size: f64 = lib.sample(&mut rng);
            let damaged = rng.random::<f64>() < 0.05;
            for (m, range) in self.modules.iter().enumerate() {
                let (total, alias) = &self.rates[t][m];
                let shape = self.shape[m];
                let g: f64 = Gamma::new(shape, 1.0 / shape).map_or(1.0, |d| d.sample(&mut rng));
                let mut rate = total * size * g * self.batch_effect[b][m];
                if damaged && self.n_mt > 0 && m == self.modules.len() - 1 {
                    rate *= 14.0;
                }
                if rate <= 0.0 {
                    continue;
                }
                let n = Poisson::new(rate).map_or(0.0, |d| d.sample(&mut rng)) as usize;
                for _ in 0..n {
                    let gene = range.start + alias.sample(&mut rng);
                    if counts[gene] == 0 {
                        touched.push(gene as u32);
                    }
                    counts[gene] += 1;
                }
            }
            touched.sort_unstable();
            for &g in &touched {
                out.indices.push(g);
                out.data.push(f64::from(counts[g as usize]));
                counts[g as usize] = 0;
            }
            touched.clear();
            out.end_row();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Counts {
        Counts {
            n_obs: 2000,
            n_vars: 2000,
            n_types: 4,
            n_batches: 2,
            library_size: 2000.0,
            seed: 7,
        }
    }

    #[test]
    fn rows_do_not_depend_on_how_they_are_grouped() {
        let m = params().model();
        let whole = m.rows(0..50);
        let parts = Csr::vstack(&[m.rows(0..20), m.rows(20..50)], 2000);
        assert_eq!(whole, parts);
        assert_eq!(m.rows([7, 3].into_iter()), whole.select_rows(&[7, 3]));
    }

    #[test]
    fn counts_have_the_library_size_mito_share_and_overdispersion_asked_for() {
        let p = params();
        let m = p.model();
        let x = m.rows(0..p.n_obs);
        let (totals, _) = x.row_sums_nnz();
        let mean_total = totals.iter().sum::<f64>() / totals.len() as f64;
        // E[lib] = library_size * E[lognormal(0, 0.5)] = 2000 * e^0.125, plus the damaged
        // cells' extra mitochondrial counts, times the mean batch effect (1 and U(0.7, 1.4));
        // gamma factors have mean 1.
        let want = 2000.0 * (0.125f64).exp() * (1.0 + 0.05 * 0.03 * 13.0) * 1.025;
        assert!(
            (mean_total / want - 1.0).abs() < 0.05,
            "{mean_total} vs {want}"
        );
        let names = p.var_names();
        assert_eq!(names[p.n_vars - 13], "MT-ND1");
        let mt: Vec<bool> = names.iter().map(|n| n.starts_with("MT-")).collect();
        let q = crate::sparse::cell_qc(&x, &[mt], &[]);
        let share: Vec<f64> = q
            .set_totals
            .iter()
            .zip(&q.total)
            .map(|(s, t)| s[0] / t)
            .collect();
        let high = share.iter().filter(|s| **s > 0.15).count() as f64 / share.len() as f64;
        assert!((0.03..0.08).contains(&high), "damaged share {high}");
        // Overdispersion: for the most expressed genes variance exceeds the mean clearly.
        let mut c = crate::sparse::ColumnSums::new(p.n_vars);
        c.add(&x, None, |v| v);
        let (mean, var) = (c.mean(), c.var());
        let top = (0..p.n_vars - 13)
            .max_by(|&a, &b| mean[a].total_cmp(&mean[b]))
            .unwrap_or(0);
        assert!(var[top] > 1.5 * mean[top], "{} vs {}", var[top], mean[top]);
        let labels: Vec<usize> = (0..p.n_obs).map(|r| p.cell_type(r)).collect();
        assert!((0..4).all(|t| labels.iter().filter(|&&l| l == t).count() > 400));
    }
}
