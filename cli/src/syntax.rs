use std::process::ExitCode;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Kind {
    Did,
    Handle,
    Nsid,
    AtUri,
    AtIdentifier,
    Tid,
    RecordKey,
    Datetime,
    Language,
    Cid,
    Uri,
}

pub fn run(_kind: Kind) -> ExitCode {
    crate::fail("WIP: syntax checking is being written")
}
