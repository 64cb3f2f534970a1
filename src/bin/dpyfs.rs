//! `dpyfs`: everything else. For now: `dpyfs dev`, a whole local cluster in one command.

use dpyfs::cli;
use dpyfs::dev::{self, DevConfig};
use std::path::PathBuf;
use std::process::ExitCode;

const PROGRAM: &str = "dpyfs";

fn dev_main(args: &[String]) -> ExitCode {
    let mut o = getopts::Options::new();
    o.optopt("", "dir", "data and logs (default ./dpyfs-data)", "DIR");
    o.optopt("", "stores", "number of stores (default 3)", "N");
    o.optopt("", "replicas", "copies of every chunk (default 2)", "R");
    o.optopt(
        "",
        "port",
        "director port; stores use the next ones (default 7070)",
        "PORT",
    );
    cli::standard_flags(&mut o);
    let synopsis = "Usage: dpyfs dev [--dir DIR] [--stores N] [--replicas R] [--port PORT]\n\n\
                    Starts a director on 127.0.0.1:7070 and N stores on the next ports, data and\n\
                    logs under DIR. Ctrl-C stops them all; a second start finds the data again.";
    let m = match cli::parse(&o, args, "dpyfs dev", synopsis) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let parsed = (|| -> Result<DevConfig, String> {
        let stores = cli::opt_value(&m, "stores", |s| {
            s.parse::<usize>().ok().filter(|n| (1..=16).contains(n))
        })?
        .unwrap_or(3);
        let replicas = cli::opt_value(&m, "replicas", |s| {
            s.parse::<usize>().ok().filter(|n| *n >= 1)
        })?
        .unwrap_or(2.min(stores));
        if replicas > stores {
            return Err(format!(
                "--replicas {replicas} needs at least that many --stores"
            ));
        }
        let port = cli::opt_value(&m, "port", |s| {
            s.parse::<u16>().ok().filter(|p| *p > 0 && *p < 65000)
        })?
        .unwrap_or(7070);
        let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
        let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        Ok(DevConfig {
            dir: PathBuf::from(m.opt_str("dir").unwrap_or_else(|| "dpyfs-data".into())),
            stores,
            replicas,
            port,
            bin_dir,
        })
    })();
    let cfg = match parsed {
        Ok(c) => c,
        Err(e) => return cli::usage_error("dpyfs dev", &e),
    };
    match dev::run(&cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dpyfs dev: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("dev") => dev_main(&args[1..]),
        Some("--version" | "-V") => {
            println!("{PROGRAM} {}", dpyfs::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!(
                "Usage: dpyfs COMMAND [options]\n\nCommands:\n  dev    run a whole local cluster (director + stores)\n\n\
                 'dpyfs COMMAND --help' describes each command."
            );
            ExitCode::SUCCESS
        }
        Some(other) => cli::usage_error(PROGRAM, &format!("unknown command {other:?}")),
        None => cli::usage_error(PROGRAM, "give a command, e.g. 'dpyfs dev'"),
    }
}
