//! A way out of HDF5 calls that never return. HDF5 2.2's global heap reader loops forever on
//! a corrupt collection (a free-space object of size zero: `H5HG__cache_heap_deserialize`
//! never advances), and the global heap is where every variable-length string lives,
//! attributes included. A thread stuck in C cannot be cancelled, so reads that go through
//! the global heap run under a deadline; past it the process reports the element, removes
//! its temporary outputs and exits with status 1 instead of hanging.

use std::collections::HashMap;
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

/// Deadlines of the guarded calls in flight, by thread.
static IN_FLIGHT: Mutex<Option<HashMap<ThreadId, (Instant, String)>>> = Mutex::new(None);

/// Seconds a guarded read may take before per-element allowance;
/// `ENGINE_HDF5_DEADLINE_SECS` overrides it (tests use a short one).
fn base() -> Duration {
    let secs = std::env::var("ENGINE_HDF5_DEADLINE_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

fn start() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("hdf5-watchdog".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(Duration::from_millis(200));
                    let expired = IN_FLIGHT.lock().ok().and_then(|m| {
                        m.as_ref()?
                            .values()
                            .find(|(deadline, _)| Instant::now() > *deadline)
                            .map(|(_, what)| what.clone())
                    });
                    if let Some(what) = expired {
                        eprintln!(
                            "error: {what}: HDF5 did not finish reading it; the file's global heap \
                             (where HDF5 keeps variable-length strings) is corrupt"
                        );
                        crate::write::remove_temporaries();
                        std::process::exit(1);
                    }
                }
            });
    });
}

/// Runs `f`, an HDF5 read of `elements` values through the global heap, under a deadline.
pub(super) fn guarded<T>(
    what: impl FnOnce() -> String,
    elements: usize,
    f: impl FnOnce() -> T,
) -> T {
    start();
    let Some(deadline) = Instant::now()
        .checked_add(base())
        .and_then(|t| t.checked_add(Duration::from_micros(elements as u64)))
    else {
        return f();
    };
    let id = std::thread::current().id();
    if let Ok(mut m) = IN_FLIGHT.lock() {
        m.get_or_insert_with(HashMap::new)
            .insert(id, (deadline, what()));
    }
    // Removed however `f` ends, panics included.
    struct Done(ThreadId);
    impl Drop for Done {
        fn drop(&mut self) {
            if let Ok(mut m) = IN_FLIGHT.lock()
                && let Some(m) = m.as_mut()
            {
                m.remove(&self.0);
            }
        }
    }
    let _done = Done(id);
    f()
}
