//! Pipeline YAML: any text gives a spec or diagnostics, never a panic or a stack overflow.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let overrides = [("n_obs".to_string(), "100".to_string())];
        if let Err(d) = engine_spec::parse_yaml("f.yaml", text, &overrides) {
            // Rendering points into the text: spans must stay inside it.
            let _ = d.to_string();
        }
    }
});
