//! Token parsing of arbitrary text, as the server meets it in
//! `authorization` headers: the JWS compact decoder, service-auth tokens,
//! ES256K session tokens and HS256 session tokens. None may panic, and no
//! arbitrary input may pass verification.

#![no_main]

use std::sync::OnceLock;

use atproto_types::crypto::{Algorithm, PrivateKey};
use libfuzzer_sys::fuzz_target;
use pds::jwt::TokenSigner;
use pds::service_auth::{self, Expect};

fn fixtures() -> &'static (PrivateKey, TokenSigner) {
    static F: OnceLock<(PrivateKey, TokenSigner)> = OnceLock::new();
    F.get_or_init(|| {
        (
            PrivateKey::generate(Algorithm::K256),
            TokenSigner::new("fuzzing secret", "did:web:pds.test"),
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (key, signer) = fixtures();
    let _ = pds::jose::decode::<serde_json::Value>(token);
    if let Ok(unverified) = service_auth::decode(token) {
        let expect = Expect {
            aud: None,
            lxm: None,
        };
        assert!(
            unverified.verify(&key.public_key(), &expect).is_err(),
            "an arbitrary service token verified"
        );
    }
    if let Ok(unverified) = TokenSigner::decode_es256k(token) {
        for typ in ["at+jwt", "refresh+jwt"] {
            assert!(
                signer
                    .verify_es256k(&unverified, &key.public_key(), typ, true)
                    .is_err(),
                "an arbitrary ES256K session token verified"
            );
        }
    }
    for typ in ["at+jwt", "refresh+jwt"] {
        assert!(
            signer.verify(token, typ, true).is_err(),
            "an arbitrary HS256 session token verified"
        );
    }
});
