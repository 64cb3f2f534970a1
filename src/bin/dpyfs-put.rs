//! `dpyfs-put`: uploads files, folders (`-r`) or stdin (`-`) to the director.
//! Parses flags into a `PutConfig` and runs `dpyfs::tools::put`.

use dpyfs::cli;
use dpyfs::tools::put::{self, PutConfig};
use std::process::ExitCode;

const PROGRAM: &str = "dpyfs-put";

const SYNOPSIS: &str =
    "Usage: dpyfs-put [-r] [--url URL] [--mkbucket] [-q|-v] PATH... bucket[/prefix]
       dpyfs-put [options] - bucket/key          (from stdin)

Uploads files to the dpyfs director. A single file to bucket/key takes that key; to
'bucket', 'bucket/prefix/' or with several PATHs, each file keeps its name under the
prefix, and a folder DIR (with -r) becomes prefix/DIR/... .

Progress (bytes, rate, time left) is shown on stderr when it is a terminal. Connection
errors and 5xx answers are retried with back-off; a file is re-read for each try, stdin
only if none of it was sent yet. The director's ETag is checked against the MD5 of the
bytes sent.

Signed requests (AWS SigV4) when DPYFS_ACCESS_KEY/DPYFS_SECRET_KEY or
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are set.
Exit status: 0 all uploaded, 1 some failed (each reported), 2 usage error.";

fn main() -> ExitCode {
    let mut o = getopts::Options::new();
    cli::transfer_flags(&mut o);
    o.optflag("", "mkbucket", "create the bucket if it does not exist");
    cli::standard_flags(&mut o);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match cli::parse(&o, &args, PROGRAM, SYNOPSIS) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let cfg = (|| {
        let transfer = cli::transfer_config(&m)?;
        let mut free = m.free.clone();
        let Some(dest) = free.pop().filter(|_| !free.is_empty()) else {
            return Err("give PATH... and a destination bucket[/prefix]".to_string());
        };
        Ok(PutConfig {
            transfer,
            mkbucket: m.opt_present("mkbucket"),
            sources: free,
            dest,
        })
    })();
    let cfg = match cfg {
        Ok(c) => c,
        Err(e) => return cli::usage_error(PROGRAM, &e),
    };
    match put::run(&cfg) {
        Ok(code) => ExitCode::from(code),
        Err(e) => cli::usage_error(PROGRAM, &e),
    }
}
