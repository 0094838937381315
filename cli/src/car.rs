use std::path::Path;
use std::process::ExitCode;

pub fn inspect(_file: &Path, _did_key: Option<&str>) -> ExitCode {
    crate::fail("WIP")
}
