//! `atproto crypto`: signature verification and did:key derivation.

use std::process::ExitCode;

use atproto_types::crypto::{Algorithm, PrivateKey, PublicKey};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use crate::Alg;

fn algorithm(alg: Alg) -> Algorithm {
    match alg {
        Alg::Es256 => Algorithm::P256,
        Alg::Es256k => Algorithm::K256,
    }
}

/// Base64, padded or not, standard or URL-safe alphabet.
fn decode_base64(what: &str, s: &str) -> Result<Vec<u8>, String> {
    let config =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, config)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, config).decode(s))
        .map_err(|e| format!("{what} is not base64: {e}"))
}

fn check(key: &str, alg: Alg, msg_b64: &str, sig_b64: &str) -> Result<(), String> {
    let key = PublicKey::parse_with_algorithm(algorithm(alg), key.trim())
        .map_err(|e| format!("key: {e}"))?;
    let message = decode_base64("message", msg_b64.trim())?;
    let signature = decode_base64("signature", sig_b64.trim())?;
    key.verify(&message, &signature).map_err(|e| e.to_string())
}

/// Prints `valid` or `invalid` (with the reason on stderr); exits 0 either
/// way, including for a key that does not match `--alg` or unparseable input.
pub fn verify(key: &str, alg: Alg, msg_b64: &str, sig_b64: &str) -> ExitCode {
    match check(key, alg, msg_b64, sig_b64) {
        Ok(()) => println!("valid"),
        Err(reason) => {
            println!("invalid");
            eprintln!("reason: {reason}");
        }
    }
    ExitCode::SUCCESS
}

/// Prints the did:key of a private key given as 64 hex digits.
pub fn did_key(alg: Alg, private_key_hex: &str) -> ExitCode {
    match PrivateKey::from_hex(algorithm(alg), private_key_hex.trim()) {
        Ok(key) => {
            println!("{}", key.did_key());
            ExitCode::SUCCESS
        }
        Err(e) => crate::fail(format_args!("private key: {e}")),
    }
}
