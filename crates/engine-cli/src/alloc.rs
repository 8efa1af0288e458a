//! The binary's allocator: mimalloc without transparent huge pages, and an explicit hand-back
//! of freed memory between stages. With `signals.rs`, the only FFI outside the store's
//! `h5::raw`.

// glibc keeps freed multi-megabyte blocks once its mmap threshold has adapted, so peak memory
// grew with every streamed block; mimalloc returns them (measured: Gram pass 324 -> ~100 MiB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc v3's `mi_option_allow_thp`, by its place in `mi_option_t` (`mimalloc.h`); the sys
/// crate does not name it.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// No transparent huge pages: with them mimalloc's arenas pin 2 MiB for a few live bytes,
/// which showed as peak memory (50k x 1k blobs workflow: 178 -> 159 MiB, no slower).
#[allow(unsafe_code)]
pub(crate) fn no_huge_pages() {
    // SAFETY: sets an integer option; mimalloc allows that at any time from any thread.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0) };
    // mimalloc's first arena was reserved before `main` with huge pages allowed; this turns
    // them off for the whole process from here on, as mimalloc does when the option comes
    // from the environment.
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Returns this thread's freed memory and the arenas' to the system at once (mimalloc
/// otherwise waits a second, and a stage's scratch would count in the next stage's peak;
/// 50k x 1k blobs workflow: 159 -> 133 MiB, no slower).
#[allow(unsafe_code)]
pub(crate) fn release_freed_memory() {
    // SAFETY: no arguments beyond a flag; mimalloc allows it on any thread.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
