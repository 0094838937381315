use std::process::ExitCode;

use crate::Alg;

pub fn verify(_key: &str, _alg: Alg, _msg_b64: &str, _sig_b64: &str) -> ExitCode {
    crate::fail("WIP")
}

pub fn did_key(_alg: Alg, _private_key_hex: &str) -> ExitCode {
    crate::fail("WIP")
}
