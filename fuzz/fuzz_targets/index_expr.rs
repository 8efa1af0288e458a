//! Index expressions (`"0:10, -5:"`) resolved against axis lengths: ranges in bounds or an
//! error, never a panic or an overflow.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    if let Ok(text) = std::str::from_utf8(rest)
        && let Ok(items) = engine_spec::index_expr::parse(text)
    {
        for n in [0usize, 1, usize::from(len), 1 << 20] {
            if let Ok(ranges) = engine_spec::index_expr::resolve(&items, n) {
                assert!(ranges.iter().all(|r| r.start <= r.end && r.end <= n));
            }
        }
    }
});
