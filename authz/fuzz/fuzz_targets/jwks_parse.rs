//! JWKS documents (fetched from the network) never panic the parser or verifier.
#![no_main]

use authz::jwt::{Alg, KeySet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(keys) = KeySet::parse(s) {
        for alg in [Alg::Rs256, Alg::Ps256, Alg::Es256, Alg::Es384, Alg::EdDsa, Alg::Hs256] {
            let _ = keys.verify(alg, None, b"msg", b"sig");
        }
    }
});
