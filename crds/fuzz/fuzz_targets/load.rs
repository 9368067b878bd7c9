//! Any bytes given to the loader produce resources or diagnostics, never a panic or a hang.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let report = crds::load::load_str(std::path::Path::new("fuzz.yaml"), text);
        let _ = crds::convert::convert(&report.resources, &Default::default());
        for d in &report.diagnostics {
            let _ = d.to_string();
        }
    }
});
