//! The embedded data source: isotropic Gaussian blobs, as `sklearn.datasets.make_blobs` draws
//! them (centres uniform in [-10, 10], unit standard deviation by default), generated row by
//! row from counter-based seeds so any block can be produced on its own, in any order, on any
//! thread, with identical values. Ten million rows never need to exist at once.

use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::ops::Range;

/// Parameters of the blobs (the `synthetic` op); they cross processes (a dask worker
/// regenerates its rows from them).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Blobs {
    pub n_obs: usize,
    pub n_vars: usize,
    pub centers: usize,
    pub cluster_std: f64,
    pub seed: u64,
}

/// Mixes a seed and a stream index into an independent seed (splitmix64's finaliser).
pub(crate) fn mix(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Blobs {
    /// Centre coordinates, `centers × n_vars`, uniform in [-10, 10) like make_blobs' `center_box`.
    pub fn center_matrix(&self) -> Array2<f64> {
        let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, u64::MAX));
        Array2::from_shape_fn((self.centers, self.n_vars), |_| {
            rng.random_range(-10.0..10.0)
        })
    }

    /// The blob each row belongs to.
    pub fn label(&self, row: usize) -> usize {
        (mix(self.seed, row as u64) % self.centers.max(1) as u64) as usize
    }

    /// Rows `rows` of the data and their labels.
    pub fn block(&self, centers: &Array2<f64>, rows: Range<usize>) -> (Array2<f64>, Vec<u32>) {
        let n = rows.len();
        self.rows(centers, rows, n)
    }

    /// Rows `rows` (any `n` row numbers, in order), each generated on its own.
    pub fn rows(
        &self,
        centers: &Array2<f64>,
        rows: impl Iterator<Item = usize>,
        n: usize,
    ) -> (Array2<f64>, Vec<u32>) {
        let mut x = Array2::zeros((n, self.n_vars));
        let mut labels = Vec::with_capacity(n);
        for (r, i) in rows.enumerate() {
            let label = self.label(i);
            labels.push(label as u32);
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed ^ 0xA5A5_A5A5, i as u64));
            let c = centers.row(label);
            for (j, v) in x.row_mut(r).iter_mut().enumerate() {
                let z: f64 = StandardNormal.sample(&mut rng);
                *v = c[j] + self.cluster_std * z;
            }
        }
        (x, labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Blobs {
        Blobs {
            n_obs: 4000,
            n_vars: 6,
            centers: 4,
            cluster_std: 1.0,
            seed: 42,
        }
    }

    #[test]
    fn blocks_do_not_depend_on_how_rows_are_grouped() {
        let b = blobs();
        let c = b.center_matrix();
        let (whole, lw) = b.block(&c, 0..100);
        let (a, la) = b.block(&c, 0..37);
        let (z, lz) = b.block(&c, 37..100);
        assert_eq!(whole.slice(ndarray::s![..37, ..]), a);
        assert_eq!(whole.slice(ndarray::s![37.., ..]), z);
        assert_eq!(lw, [la, lz].concat());
    }

    #[test]
    fn blobs_have_the_requested_spread_around_their_centres() {
        let b = blobs();
        let c = b.center_matrix();
        assert!(c.iter().all(|v| (-10.0..10.0).contains(v)));
        let (x, labels) = b.block(&c, 0..b.n_obs);
        let counts: Vec<usize> = (0..4)
            .map(|k| labels.iter().filter(|&&l| l == k).count())
            .collect();
        assert!(
            counts.iter().all(|&n| n > 850 && n < 1150),
            "labels are roughly balanced: {counts:?}"
        );
        // Residuals from the centre are N(0, 1): mean ~ 0, variance ~ 1 (4σ bounds).
        let res: Vec<f64> = x
            .outer_iter()
            .zip(&labels)
            .flat_map(|(row, &l)| {
                row.iter()
                    .zip(c.row(l as usize))
                    .map(|(v, m)| v - m)
                    .collect::<Vec<_>>()
            })
            .collect();
        let n = res.len() as f64;
        let mean = res.iter().sum::<f64>() / n;
        let var = res.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0);
        assert!(mean.abs() < 4.0 / n.sqrt(), "{mean}");
        assert!((var - 1.0).abs() < 4.0 * (2.0 / n).sqrt(), "{var}");
    }
}
