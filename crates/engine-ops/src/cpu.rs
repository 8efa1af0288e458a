//! The vector-register state faer's matrix kernels leave behind.
//!
//! Those kernels use 256-bit AVX registers and can return with their upper halves dirty. On
//! that thread every plain SSE instruction afterwards (most of our scalar float code) then
//! pays a merge penalty: the UMAP layout ran 4x slower on two threads than on one until its
//! workers cleared the state. Code that runs after faer on the same threads calls these.

/// Clears the upper halves of this thread's vector registers (a no-op without AVX).
pub fn clean() {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        simd.avx._mm256_zeroupper();
    }
}

/// [`clean`] on this thread and on every thread of the rayon pool.
pub fn clean_all() {
    clean();
    rayon::broadcast(|_| clean());
}
