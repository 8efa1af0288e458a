//! Signals: a closed pipe ends the process quietly (`engine inspect … | head`), and an
//! interrupt or termination removes the temporaries being written before exiting, so a
//! stopped `convert` or `run` leaves the target as it was and nothing beside it. A file-size
//! limit (`ulimit -f`) fails the write (EFBIG) instead of killing the process, so the usual
//! error path reports it and removes the temporary.

/// Call first in `main`, before any thread exists: the mask set here is inherited by every
/// thread started later, so only the waiting thread receives SIGINT and SIGTERM.
#[allow(unsafe_code)]
pub(crate) fn install() {
    // SAFETY: plain libc calls on locals; no threads exist yet to race with.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return;
        }
        let _ = std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                let mut sig: libc::c_int = 0;
                // SAFETY: waits on the set built above; `sig` is a valid out-pointer.
                if libc::sigwait(&set, &mut sig) == 0 {
                    engine::remove_temporaries();
                    std::process::exit(128 + sig);
                }
            });
    }
}
