//! Small helpers shared by the binaries' flag parsing. The binaries read argv and set up
//! logging; this module only turns strings into values and prints usage.

use std::process::ExitCode;

/// Exit status for a usage error, as the clients document it.
pub use crate::tools::EXIT_USAGE;

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
    // Also before parsing: the daemons' required --listen must not stand in its way.
    if args.iter().any(|a| a == "--version" || a == "-V") {
        println!("{program} {}", crate::VERSION);
        return Err(ExitCode::SUCCESS);
    }
    let m = match opts.parse(args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{program}: {e}\nTry '{program} --help'.");
            return Err(ExitCode::from(EXIT_USAGE));
        }
    };
    Ok(m)
}

/// The folder a `--data`/`--dir` flag names, refused when it, or a folder above it, exists
/// but is not a directory: creating it would fail with a bare "File exists (os error 17)".
pub fn data_dir(flag: &str, value: &str) -> Result<std::path::PathBuf, String> {
    let path = std::path::PathBuf::from(value);
    for p in path.ancestors().filter(|p| !p.as_os_str().is_empty()) {
        // symlink_metadata would refuse a symlink to a folder, which is fine to use.
        if let Ok(md) = std::fs::metadata(p) {
            if md.is_dir() {
                break;
            }
            return Err(if p == path {
                format!("--{flag} {value} is not a directory")
            } else {
                format!("--{flag} {value}: {} is not a directory", p.display())
            });
        }
    }
    Ok(path)
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
    opts.optopt(
        "",
        "connections-max",
        "open connections at most; more are answered 503 (default 512)",
        "N",
    );
    opts.optopt(
        "",
        "tls-cert",
        "serve HTTPS with this certificate (PEM; see `dpyfs ca issue`)",
        "FILE",
    );
    opts.optopt("", "tls-key", "the private key of --tls-cert (PEM)", "FILE");
    opts.optopt(
        "",
        "client-ca",
        "require client certificates signed by this CA (mutual TLS)",
        "FILE",
    );
}

/// Applies `--workers`, `--idle-timeout` and `--connections-max` to `http`.
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
    if let Some(n) = opt_value(m, "connections-max", |s| {
        s.parse::<usize>()
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
    })? {
        http.connections_max = n;
    }
    http.tls = tls_server_files(m)?;
    Ok(())
}

/// `--tls-cert`, `--tls-key` and `--client-ca`: both or neither of the first two, and a
/// client CA only with them.
fn tls_server_files(m: &getopts::Matches) -> Result<Option<crate::tls::ServerFiles>, String> {
    let client_ca = m.opt_str("client-ca").map(std::path::PathBuf::from);
    match (m.opt_str("tls-cert"), m.opt_str("tls-key")) {
        (Some(cert), Some(key)) => Ok(Some(crate::tls::ServerFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca,
        })),
        (None, None) if client_ca.is_none() => Ok(None),
        (None, None) => Err("--client-ca needs --tls-cert and --tls-key".into()),
        _ => Err("--tls-cert and --tls-key go together".into()),
    }
}

/// `--ca FILE`: the CA a program's HTTPS connections trust.
pub fn tls_client_flags(opts: &mut getopts::Options) {
    opts.optopt(
        "",
        "ca",
        "trust this CA for https:// URLs (default $DPYFS_CA, else $AWS_CA_BUNDLE)",
        "FILE",
    );
}

/// For `dpyfs`, whose commands parse their own flags: takes `--ca FILE` and (for the
/// repair commands that call stores requiring client certificates) `--tls-cert FILE
/// --tls-key FILE` out of `args`, wherever they are, and sets the client settings.
pub fn take_tls_client_args(args: &mut Vec<String>) -> Result<(), String> {
    let mut files = crate::tls::ClientFiles::default();
    let mut i = 0;
    while i < args.len() {
        let slot = match args[i].as_str() {
            "--ca" => &mut files.ca,
            "--tls-cert" => &mut files.cert,
            "--tls-key" => &mut files.key,
            _ => {
                i += 1;
                continue;
            }
        };
        let Some(value) = args.get(i + 1).cloned() else {
            return Err(format!("{} needs a FILE", args[i]));
        };
        *slot = Some(value.into());
        args.drain(i..i + 2);
    }
    crate::tls::set_client(files)
}

/// Sets the process's HTTPS client settings from `--ca` (and the environment), presenting
/// `identity` (a daemon's own certificate) to servers that ask for a client certificate.
pub fn apply_tls_client_flags(
    m: &getopts::Matches,
    identity: Option<&crate::tls::ServerFiles>,
) -> Result<(), String> {
    crate::tls::set_client(crate::tls::ClientFiles {
        ca: m.opt_str("ca").map(std::path::PathBuf::from),
        cert: identity.map(|f| f.cert.clone()),
        key: identity.map(|f| f.key.clone()),
    })
}

/// The flags `dpyfs-put` and `dpyfs-get` share.
pub fn transfer_flags(opts: &mut getopts::Options) {
    opts.optflag("r", "recursive", "folders and everything in them");
    opts.optmulti(
        "",
        "url",
        "the director (repeat, or commas, for a group; default $DPYFS_URL, else http://127.0.0.1:7070)",
        "URL",
    );
    opts.optflag(
        "q",
        "quiet",
        "print errors only (no progress, no retry notices)",
    );
    opts.optflag("v", "verbose", "also print one line per file transferred");
    tls_client_flags(opts);
    opts.optopt(
        "",
        "retries",
        "retries after a connection error or a 5xx answer, with back-off from 0.5 s doubling to 8 s (default 5)",
        "N",
    );
    opts.optopt(
        "",
        "limit-rate",
        "at most this many bytes per second (K, M, G suffixes)",
        "RATE",
    );
}

/// Builds the shared transfer settings; progress only when stderr is a terminal.
pub fn transfer_config(m: &getopts::Matches) -> Result<crate::tools::TransferConfig, String> {
    use crate::tools::Verbosity;
    let verbosity = match (m.opt_present("quiet"), m.opt_present("verbose")) {
        (true, true) => return Err("-q and -v exclude each other".into()),
        (true, false) => Verbosity::Quiet,
        (false, true) => Verbosity::Verbose,
        (false, false) => Verbosity::Normal,
    };
    let retries = opt_value(m, "retries", |s| {
        s.parse::<u32>().ok().filter(|n| *n <= 100)
    })?
    .unwrap_or(crate::client::RETRIES_DEFAULT);
    let limit_rate = opt_value(m, "limit-rate", |s| {
        crate::human::parse_size(s).filter(|n| *n > 0)
    })?;
    apply_tls_client_flags(m, None)?;
    let urls = m.opt_strs("url");
    let url = if urls.is_empty() {
        crate::client::default_url()
    } else {
        urls.join(",")
    };
    crate::client::Client::new(&url)?;
    Ok(crate::tools::TransferConfig {
        url,
        recursive: m.opt_present("recursive"),
        verbosity,
        progress: verbosity != Verbosity::Quiet && crate::sys::stderr_is_terminal(),
        retries,
        limit_rate,
    })
}
