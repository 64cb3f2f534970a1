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
