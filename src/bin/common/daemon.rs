//! What both daemons' `main` share: parse flags into a config, set up logging, start, and
//! serve until stopped. Lives under src/bin so that only binaries set up logging.

use dpyfs::cli;
use std::fmt::Display;
use std::process::ExitCode;

/// Runs a daemon: `config` turns the flags into a config (an `Err` is a usage error, exit
/// 2), `start` opens and starts serving (an `Err` is printed, exit 1).
pub fn run<C, T, E: Display>(
    program: &str,
    opts: &getopts::Options,
    synopsis: &str,
    config: impl FnOnce(&getopts::Matches) -> Result<C, String>,
    start: impl FnOnce(C) -> Result<(dpyfs::http::Server, T), E>,
) -> ExitCode {
    dpyfs::sys::tune_allocator();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let m = match cli::parse(opts, &args, program, synopsis) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let cfg = match config(&m) {
        Ok(c) => c,
        Err(e) => return cli::usage_error(program, &e),
    };
    // Warnings and errors are also kept in memory for the status page (dpyfs::logring).
    let logger =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).build();
    let max = logger.filter().max(log::LevelFilter::Warn);
    if log::set_boxed_logger(Box::new(dpyfs::logring::RecordingLogger { inner: logger })).is_ok() {
        log::set_max_level(max);
    }
    match start(cfg) {
        Ok((server, _state)) => match server.join() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log::error!("{e}");
                eprintln!("{program}: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("{program}: {e}");
            ExitCode::FAILURE
        }
    }
}
