//! Small helpers shared by the binaries' flag parsing. The binaries read argv and set up
//! logging; this module only turns strings into values and prints usage.

use std::process::ExitCode;

/// Exit status for a usage error, as the clients document it.
pub const EXIT_USAGE: u8 = 2;

/// Parses `args` (without the program name) with `opts`, handling `--help` and
/// `--version`. Returns Err(exit code) when the program should stop now.
pub fn parse(
    opts: &getopts::Options,
    args: &[String],
    program: &str,
    synopsis: &str,
) -> Result<getopts::Matches, ExitCode> {
    // Before parsing, so that --help works even when required flags are missing.
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{}", opts.usage(synopsis));
        return Err(ExitCode::SUCCESS);
    }
    let m = match opts.parse(args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{program}: {e}\nTry '{program} --help'.");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    if m.opt_present("version") {
        println!("{program} {}", crate::VERSION);
        return Err(ExitCode::SUCCESS);
    }
    Ok(m)
}

/// Adds `--help` and `--version`.
pub fn standard_flags(opts: &mut getopts::Options) {
    opts.optflag("h", "help", "print this help and exit");
    opts.optflag("V", "version", "print the version and exit");
}

/// Prints a usage error and returns the usage exit code.
pub fn usage_error(program: &str, msg: &str) -> ExitCode {
    eprintln!("{program}: {msg}\nTry '{program} --help'.");
    ExitCode::from(EXIT_USAGE)
}

/// Parses an optional flag value with `f`, reporting which flag was bad.
pub fn opt_value<T>(
    m: &getopts::Matches,
    name: &str,
    f: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, String> {
    match m.opt_str(name) {
        None => Ok(None),
        Some(v) => f(&v)
            .map(Some)
            .ok_or_else(|| format!("invalid value for --{name}: {v:?}")),
    }
}

/// The HTTP edge's flags, shared by both daemons.
pub fn http_flags(opts: &mut getopts::Options) {
    opts.optopt("", "workers", "request threads (default 32)", "N");
    opts.optopt(
        "",
        "idle-timeout",
        "seconds before an idle connection is dropped (default 60)",
        "SECS",
    );
}

/// Applies `--workers` and `--idle-timeout` to `http`.
pub fn apply_http_flags(
    m: &getopts::Matches,
    http: &mut crate::http::ServerConfig,
) -> Result<(), String> {
    if let Some(n) = opt_value(m, "workers", |s| {
        s.parse::<usize>().ok().filter(|n| (1..=1024).contains(n))
    })? {
        http.workers = n;
    }
    if let Some(s) = opt_value(m, "idle-timeout", |s| {
        s.parse::<u64>().ok().filter(|n| *n > 0)
    })? {
        http.idle_timeout = std::time::Duration::from_secs(s);
    }
    Ok(())
}
