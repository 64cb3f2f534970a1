//! `dpyfs-get`: downloads an object, or (`-r`) everything under a prefix.
//! Parses flags into a `GetConfig` and runs `dpyfs::tools::get`.

use dpyfs::cli;
use dpyfs::tools::get::{self, GetConfig};
use std::process::ExitCode;

const PROGRAM: &str = "dpyfs-get";

const SYNOPSIS: &str = "Usage: dpyfs-get [--url URL] [-q|-v] bucket/key [FILE|FOLDER|-]
       dpyfs-get -r [--url URL] [-q|-v] bucket[/prefix/] [FOLDER]

Downloads from the dpyfs director. Without DEST a file keeps the key's last part as its
name in the current folder; '-' writes to stdout. With -r every key under the prefix is
written to FOLDER/<key without the prefix> (keys with '..' or empty parts are refused).

Each file is written to a hidden temporary name in its folder and renamed only after its
size matches Content-Length and its MD5 matches the ETag, then fsynced; a multipart ETag
('<hex>-<parts>') is not an MD5 of the object, so such objects are checked by size only.
A download that fails or is interrupted (Ctrl-C, SIGTERM) removes its temporary file.
Connection errors and 5xx answers are retried with back-off (the download starts over).

Progress (bytes, rate, time left) is shown on stderr when it is a terminal.
Signed requests (AWS SigV4) when DPYFS_ACCESS_KEY/DPYFS_SECRET_KEY or
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set.
Exit status: 0 all downloaded, 1 some failed (each reported), 2 usage error.";

fn main() -> ExitCode {
    let mut o = getopts::Options::new();
    cli::transfer_flags(&mut o);
    cli::standard_flags(&mut o);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match cli::parse(&o, &args, PROGRAM, SYNOPSIS) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let cfg = (|| {
        let transfer = cli::transfer_config(&m)?;
        match m.free.as_slice() {
            [src] => Ok(GetConfig {
                transfer,
                source: src.clone(),
                dest: None,
            }),
            [src, dest] => Ok(GetConfig {
                transfer,
                source: src.clone(),
                dest: Some(dest.clone()),
            }),
            [] => Err("give bucket/key (and optionally a destination)".to_string()),
            _ => Err("one source and at most one destination".to_string()),
        }
    })();
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return cli::usage_error(PROGRAM, &e),
    };
    match get::run(&cfg) {
        Ok(code) => ExitCode::from(code),
        Err(e) => cli::usage_error(PROGRAM, &e),
    }
}
