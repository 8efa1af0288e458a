//! The SQL-like pipeline form: any text gives a spec or diagnostics, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(d) = engine_spec::parse_sql("f.sql", text, &[]) {
            let _ = d.to_string();
        }
    }
});
