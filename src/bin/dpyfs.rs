//! `dpyfs`: everything else: `dpyfs dev` (a whole local cluster in one command), `ls`,
//! `rm`, `stat`, `status`, `admin` (store membership, repair, gc), `fsck` and `recover`.

use dpyfs::admin::{Admin, keys};
use dpyfs::cli;
use dpyfs::dev::{self, DevConfig};
use std::path::PathBuf;
use std::process::ExitCode;

const HELP: &str = "Usage: dpyfs [--url URL] COMMAND [options]

Commands:
  dev                                 run a whole local cluster (director + stores)
  ls [-l] [-r] [bucket[/prefix]]      buckets, or keys and folders under a prefix
  rm [-r] bucket/key|bucket/prefix/|bucket
                                      delete a key, everything under a prefix, a bucket
  stat bucket/key                     size, ETag, chunks and the stores holding each copy
  status                              the director and a table of its stores
  admin store add URL [--zone Z] [--weight W]
  admin store list
  admin store drain ID                move every chunk off a store
  admin store remove ID               refused while it holds the only copy of anything
  admin director add URL              the director at URL (started with --peer) joins the group
  admin director remove ID            one at a time; refused if no majority would answer
  admin repair [--no-wait]            run a repair pass now and report
  admin gc [--dry-run]                delete unreferenced chunks past their grace period
  admin key create [--admin | --buckets a,b] [--keys FILE]
                                      make an access key (prints id and secret once)
  admin key list [--keys FILE]        list access keys (no secrets)
  admin key delete ID [--keys FILE]   remove an access key
  mount [--allow-other] [--daemon [--log FILE]] [--spool DIR] [--spool-max BYTES] [--cache-ttl MS] BUCKET[/PREFIX] MOUNTPOINT
                                      the bucket as a folder (FUSE), until Ctrl-C
  fsck [--deep]                       check that every object has N verified copies
  recover --store URL... --data DIR   rebuild a director's journal from the stores
  ca init DIR | ca issue DIR NAME --ip A --dns H... | ca show FILE
                                      the cluster's own certificate authority (HTTPS)

--url (or DPYFS_URL) is the director, default http://127.0.0.1:7070; for a group of
directors repeat --url or separate the URLs with commas (the next is tried after a
refused connection or a 503).
--ca FILE (or DPYFS_CA, or AWS_CA_BUNDLE) is the CA trusted for https:// URLs;
--tls-cert FILE --tls-key FILE present a client certificate (recover, to stores).
--keys (or DPYFS_KEYS) is the keys file, default /etc/dpyfs/keys.json; a director
started with --keys on the same file re-reads it within a second.
'dpyfs COMMAND --help' describes each command.";

/// Prints a result; failure is exit status 1.
fn report(r: Result<String, String>) -> ExitCode {
    match r {
        Ok(text) => {
            println!("{}", text.trim_end());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("dpyfs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints a health report; unhealthy or failed is exit status 1.
fn report_health(r: Result<(String, bool), String>) -> ExitCode {
    match r {
        Ok((text, ok)) => {
            println!("{}", text.trim_end());
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("dpyfs: {e}");
            ExitCode::FAILURE
        }
    }
}

fn admin_main(url: &str, args: &[String]) -> ExitCode {
    let mut o = getopts::Options::new();
    o.optopt("", "zone", "placement zone of a new store", "ZONE");
    o.optopt(
        "",
        "weight",
        "placement weight of a new store (default: its disk size in GiB)",
        "W",
    );
    o.optflag("", "dry-run", "gc: report only");
    o.optflag("", "no-wait", "repair: do not wait for the pass");
    o.optopt(
        "",
        "keys",
        "key: the keys file (default $DPYFS_KEYS or /etc/dpyfs/keys.json)",
        "FILE",
    );
    o.optopt(
        "",
        "buckets",
        "key create: the only buckets the key may touch",
        "a,b",
    );
    o.optflag(
        "",
        "admin",
        "key create: an admin key (every bucket, the cluster routes); the first key is one",
    );
    cli::standard_flags(&mut o);
    let m = match cli::parse(&o, args, "dpyfs admin", HELP) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let free: Vec<&str> = m.free.iter().map(String::as_str).collect();
    if free.first() == Some(&"key") {
        return key_main(&m, &free);
    }
    let a = match Admin::new(url) {
        Ok(a) => a,
        Err(e) => return cli::usage_error("dpyfs admin", &e),
    };
    match free.as_slice() {
        ["store", "add", store_url] => {
            let weight = match cli::opt_value(&m, "weight", |s| {
                s.parse::<f64>().ok().filter(|w| *w > 0.0)
            }) {
                Ok(w) => w,
                Err(e) => return cli::usage_error("dpyfs admin", &e),
            };
            report(a.store_add(store_url, m.opt_str("zone").as_deref(), weight))
        }
        ["store", "list"] => report(a.store_list()),
        ["store", "drain", id] => report(a.store_drain(id)),
        ["store", "remove", id] => report(a.store_remove(id)),
        ["director", "add", url] => report(a.director_add(url)),
        ["director", "remove", id] => report(a.director_remove(id)),
        ["repair"] => report_health(a.repair(!m.opt_present("no-wait"))),
        ["gc"] => report_health(a.gc(m.opt_present("dry-run"))),
        _ => cli::usage_error(
            "dpyfs admin",
            &format!("unknown admin command {:?}", free.join(" ")),
        ),
    }
}

/// `dpyfs admin key ...`: edits the keys file; no director is asked.
fn key_main(m: &getopts::Matches, free: &[&str]) -> ExitCode {
    let keys_path = PathBuf::from(
        m.opt_str("keys")
            .or_else(|| std::env::var("DPYFS_KEYS").ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| dpyfs::s3::keys::KEYS_PATH_DEFAULT.into()),
    );
    match free {
        ["key", "create"] => {
            let buckets = match m
                .opt_str("buckets")
                .map(|b| keys::parse_buckets(&b))
                .transpose()
            {
                Ok(b) => b,
                Err(e) => return cli::usage_error("dpyfs admin", &e),
            };
            match keys::create(&keys_path, buckets, m.opt_present("admin")) {
                Ok((out, note)) => {
                    print!("{out}");
                    eprintln!("{note}");
                    ExitCode::SUCCESS
                }
                Err(e) => report(Err(e)),
            }
        }
        ["key", "list"] => report(keys::list(&keys_path)),
        ["key", "delete", id] => report(keys::delete(&keys_path, id)),
        _ => cli::usage_error(
            "dpyfs admin",
            &format!("unknown admin command {:?}", free.join(" ")),
        ),
    }
}

fn fsck_main(url: &str, args: &[String]) -> ExitCode {
    let mut o = getopts::Options::new();
    o.optflag("", "deep", "also fetch and re-hash every copy");
    cli::standard_flags(&mut o);
    let m = match cli::parse(
        &o,
        args,
        "dpyfs fsck",
        "Usage: dpyfs fsck [--deep]\n\nChecks that every object has N verified copies of every chunk; exit status 1 if not.",
    ) {
        Ok(m) => m,
        Err(code) => return code,
    };
    match Admin::new(url) {
        Ok(a) => report_health(a.fsck(m.opt_present("deep"))),
        Err(e) => cli::usage_error("dpyfs fsck", &e),
    }
}

fn recover_main(args: &[String]) -> ExitCode {
    let mut o = getopts::Options::new();
    o.optmulti(
        "s",
        "store",
        "a store's URL (repeat for every store)",
        "URL",
    );
    o.optopt(
        "d",
        "data",
        "new, empty data directory for the director",
        "DIR",
    );
    o.optopt(
        "",
        "store-token-file",
        "bearer token the stores require",
        "FILE",
    );
    cli::standard_flags(&mut o);
    let synopsis = "Usage: dpyfs recover --store URL [--store URL...] --data DIR\n\n\
                    Rebuilds a director's journal from the manifest chunks on the stores. Start a\n\
                    director on DIR afterwards. Objects deleted but not yet garbage-collected come back.";
    let m = match cli::parse(&o, args, "dpyfs recover", synopsis) {
        Ok(m) => m,
        Err(code) => return code,
    };
    let stores = m.opt_strs("store");
    let Some(data) = m.opt_str("data") else {
        return cli::usage_error("dpyfs recover", "--data DIR is required");
    };
    if stores.is_empty() {
        return cli::usage_error("dpyfs recover", "give every store with --store URL");
    }
    let token = match m
        .opt_str("store-token-file")
        .map(|f| dpyfs::store::read_token(std::path::Path::new(&f)))
        .transpose()
    {
        Ok(t) => t,
        Err(e) => return cli::usage_error("dpyfs recover", &e.to_string()),
    };
    report(
        dpyfs::director::upkeep::recover::recover(&stores, std::path::Path::new(&data), token).map(|r| {
            format!(
                "recovered {} objects in {} buckets from {} manifests on {} stores ({} chunks listed)\n\
                 {} noncurrent versions kept in versioned buckets\n\
                 {} older versions skipped, {} bad manifests, {} chunks unreadable\n\
                 note: objects deleted whose manifests were not yet garbage-collected are among the {} objects",
                r.objects, r.buckets, r.manifests, r.stores, r.chunks_listed, r.noncurrent_versions,
                r.older_versions,
                r.bad_manifests, r.unreadable, r.objects
            )
        }),
    )
}

const PROGRAM: &str = "dpyfs";

/// Parses a client subcommand's flags; Err(exit code) when it should stop now.
fn sub_parse(
    name: &str,
    args: &[String],
    synopsis: &str,
    flags: impl FnOnce(&mut getopts::Options),
) -> Result<getopts::Matches, ExitCode> {
    let mut o = getopts::Options::new();
    flags(&mut o);
    cli::standard_flags(&mut o);
    cli::parse(&o, args, &format!("dpyfs {name}"), synopsis)
}

/// A client for the one-shot commands: a refused connection fails at once (its user
/// wants an answer now, not 15 s of back-off); 5xx answers are still retried.
fn client_of(url: &str) -> Result<dpyfs::client::Client, ExitCode> {
    let mut c = dpyfs::client::Client::new(url).map_err(|e| cli::usage_error(PROGRAM, &e))?;
    c.retry_refused = false;
    Ok(c)
}

/// The exit status of a client tool (Err is a usage error).
fn tool_exit(name: &str, r: Result<u8, String>) -> ExitCode {
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => cli::usage_error(&format!("dpyfs {name}"), &e),
    }
}

fn ls_main(url: &str, args: &[String]) -> ExitCode {
    let synopsis = "Usage: dpyfs [--url URL] ls [-l] [-r] [bucket[/prefix]]\n\n\
                    Without an argument, lists the buckets. With bucket[/prefix], lists the keys that\n\
                    start with the prefix, and the folders below it (ending in '/'); -r lists every\n\
                    key instead of folders. -l adds size, modification time and ETag.\n\
                    Exit status: 0 listed, 1 failed (no such bucket, no answer), 2 usage error.";
    let m = match sub_parse("ls", args, synopsis, |o| {
        o.optflag("l", "long", "size, time and ETag too");
        o.optflag("r", "recursive", "every key, no folders");
    }) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if m.free.len() > 1 {
        return cli::usage_error("dpyfs ls", "one bucket[/prefix] at most");
    }
    let c = match client_of(url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tool_exit(
        "ls",
        dpyfs::tools::cluster::ls(
            &c,
            m.free.first().map(String::as_str),
            m.opt_present("long"),
            m.opt_present("recursive"),
        ),
    )
}

fn rm_main(url: &str, args: &[String]) -> ExitCode {
    let synopsis = "Usage: dpyfs [--url URL] rm [-r] bucket/key|bucket/prefix/|bucket\n\n\
                    Deletes one key (an error if it does not exist); with -r every key under the\n\
                    prefix. 'bucket' alone deletes the bucket if it is empty; 'rm -r bucket' deletes\n\
                    its objects, then the bucket. Prints one line per deletion.\n\
                    Exit status: 0 deleted, 1 something failed (each reported), 2 usage error.";
    let m = match sub_parse("rm", args, synopsis, |o| {
        o.optflag("r", "recursive", "everything under the prefix");
    }) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let [target] = m.free.as_slice() else {
        return cli::usage_error("dpyfs rm", "give one bucket/key, bucket/prefix/ or bucket");
    };
    let c = match client_of(url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tool_exit(
        "rm",
        dpyfs::tools::cluster::rm(&c, target, m.opt_present("recursive")),
    )
}

fn stat_main(url: &str, args: &[String]) -> ExitCode {
    let synopsis = "Usage: dpyfs [--url URL] stat bucket/key\n\n\
                    Prints an object's size, ETag, content type and time, and each chunk with the\n\
                    stores that hold a copy now (asked of every store that is up) and those placement\n\
                    wants. Exit status: 0 fine, 1 failed or a chunk has fewer than N copies, 2 usage.";
    let m = match sub_parse("stat", args, synopsis, |_| {}) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let [target] = m.free.as_slice() else {
        return cli::usage_error("dpyfs stat", "give one bucket/key");
    };
    let c = match client_of(url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    tool_exit("stat", dpyfs::tools::cluster::stat(&c, target))
}

fn status_main(url: &str, args: &[String]) -> ExitCode {
    let synopsis = "Usage: dpyfs [--url URL] status\n\n\
                    The director (version, objects, journal size, repair state) and one line per\n\
                    store: up/down, zone, disk used and free, chunks, scrub state; then the most\n\
                    recent errors. The same as JSON: GET /_dpyfs/status; as a page: GET /_dpyfs/.\n\
                    Exit status: 0 healthy, 1 a store is down, chunks are under-replicated or lost,\n\
                    or no answer; 2 usage error.";
    let m = match sub_parse("status", args, synopsis, |_| {}) {
        Ok(m) => m,
        Err(c) => return c,
    };
    if !m.free.is_empty() {
        return cli::usage_error("dpyfs status", "takes no arguments");
    }
    let c = match client_of(url) {
        Ok(c) => c,
        Err(code) => return code,
    };
    ExitCode::from(dpyfs::tools::cluster::status(&c))
}

/// The flags of `dpyfs mount` (besides `--url`).
fn mount_flags(o: &mut getopts::Options) {
    o.optopt(
        "",
        "spool",
        "folder for files being written ($XDG_RUNTIME_DIR or /tmp)",
        "DIR",
    );
    o.optopt("", "spool-max", "bytes the spool may hold (2 GiB)", "BYTES");
    o.optopt(
        "",
        "cache-ttl",
        "milliseconds attributes and listings are trusted (1000)",
        "MS",
    );
    o.optopt(
        "",
        "retries",
        "retries of a failed call before EIO (3)",
        "N",
    );
    o.optflag("", "allow-other", "let other users in (Samba, minidlna)");
    o.optflag(
        "",
        "daemon",
        "detach once mounted and print the mount process's PID",
    );
    o.optopt(
        "",
        "log",
        "with --daemon: file its messages are appended to (none)",
        "FILE",
    );
}

fn mount_main(url: &str, args: &[String]) -> ExitCode {
    let synopsis = "Usage: dpyfs [--url URL] mount [options] BUCKET[/PREFIX] MOUNTPOINT\n\n\
                    Shows the bucket (or the keys under PREFIX) as a folder at MOUNTPOINT, through\n\
                    FUSE (needs /dev/fuse and fusermount3, Debian's fuse3). Runs in the foreground\n\
                    (--daemon: detaches once mounted and prints its PID); Ctrl-C, SIGTERM or\n\
                    `fusermount3 -u MOUNTPOINT` unmounts. Files being written are kept in the\n\
                    spool folder; large ones are sent in parts while written, the rest on close.\n\
                    Exit status: 0 unmounted (--daemon: mounted), 1 could not mount, 2 usage error.";
    let m = match sub_parse("mount", args, synopsis, mount_flags) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let [target, mountpoint] = m.free.as_slice() else {
        return cli::usage_error("dpyfs mount", "give BUCKET[/PREFIX] and MOUNTPOINT");
    };
    let parsed = (|| {
        let (bucket, prefix) = dpyfs::mount::parse_target(target)?;
        Ok::<_, String>(dpyfs::mount::MountConfig {
            url: url.to_string(),
            bucket,
            prefix,
            mountpoint: PathBuf::from(mountpoint),
            spool_parent: m
                .opt_str("spool")
                .map(PathBuf::from)
                .unwrap_or_else(dpyfs::mount::default_spool_parent),
            spool_max_bytes: cli::opt_value(&m, "spool-max", |v| v.parse().ok())?
                .unwrap_or(dpyfs::mount::SPOOL_MAX_DEFAULT_BYTES),
            cache_ttl: std::time::Duration::from_millis(
                cli::opt_value(&m, "cache-ttl", |v| v.parse().ok())?
                    .unwrap_or(dpyfs::mount::CACHE_TTL_DEFAULT_MS),
            ),
            retries: cli::opt_value(&m, "retries", |v| v.parse().ok())?
                .unwrap_or(dpyfs::mount::RETRIES_DEFAULT),
            allow_other: m.opt_present("allow-other"),
            daemon: m.opt_present("daemon"),
            log: m.opt_str("log").map(PathBuf::from),
        })
    })();
    let cfg = match parsed {
        Ok(c) => c,
        Err(e) => return cli::usage_error("dpyfs mount", &e),
    };
    // Warnings (a failed upload, a retry) go to stderr; RUST_LOG=info shows more. fuser
    // warns of every call left to its default (access, xattrs): noise, not trouble.
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn,fuser=error"))
        .init();
    report(dpyfs::mount::run(cfg))
}

fn dev_main(args: &[String]) -> ExitCode {
    let mut o = getopts::Options::new();
    o.optopt("", "dir", "data and logs (default ./dpyfs-data)", "DIR");
    o.optopt("", "stores", "number of stores (default 3)", "N");
    o.optopt("", "replicas", "copies of every chunk (default 2)", "R");
    o.optopt(
        "",
        "directors",
        "1 (default), 3 or 5 directors; the others on the ports after the stores",
        "N",
    );
    o.optopt(
        "",
        "port",
        "director port; stores use the next ones (default 7070)",
        "PORT",
    );
    o.optflag(
        "",
        "tls",
        "HTTPS everywhere, with a CA made in DIR/tls (stores require client certificates)",
    );
    cli::standard_flags(&mut o);
    let synopsis = "Usage: dpyfs dev [--dir DIR] [--stores N] [--replicas R] [--port PORT] [--directors N] [--tls]\n\n\
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
        let directors = cli::opt_value(&m, "directors", |s| {
            s.parse::<usize>().ok().filter(|n| [1, 3, 5].contains(n))
        })?
        .unwrap_or(1);
        let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
        let bin_dir = exe.parent().map(PathBuf::from).unwrap_or_default();
        Ok(DevConfig {
            dir: cli::data_dir(
                "dir",
                &m.opt_str("dir").unwrap_or_else(|| "dpyfs-data".into()),
            )?,
            stores,
            replicas,
            port,
            directors,
            bin_dir,
            tls: m.opt_present("tls"),
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
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = cli::take_tls_client_args(&mut args) {
        return cli::usage_error(PROGRAM, &e);
    }
    let mut url = std::env::var("DPYFS_URL").unwrap_or_else(|_| "http://127.0.0.1:7070".into());
    // Repeated, --url names a group of directors (tried in turn).
    let mut urls: Vec<String> = Vec::new();
    while args.first().map(String::as_str) == Some("--url") {
        if args.len() < 2 {
            return cli::usage_error(PROGRAM, "--url needs a value");
        }
        urls.push(args[1].clone());
        args.drain(..2);
    }
    if !urls.is_empty() {
        url = urls.join(",");
    }
    match args.first().map(String::as_str) {
        Some("dev") => dev_main(&args[1..]),
        Some("ca") => dpyfs::tls::ca::main(&args[1..]),
        Some("ls") => ls_main(&url, &args[1..]),
        Some("rm") => rm_main(&url, &args[1..]),
        Some("stat") => stat_main(&url, &args[1..]),
        Some("status") => status_main(&url, &args[1..]),
        Some("admin") => admin_main(&url, &args[1..]),
        Some("fsck") => fsck_main(&url, &args[1..]),
        Some("mount") => mount_main(&url, &args[1..]),
        Some("recover") => recover_main(&args[1..]),
        Some("--version" | "-V") => {
            println!("{PROGRAM} {}", dpyfs::VERSION);
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => cli::usage_error(PROGRAM, &format!("unknown command {other:?}")),
        None => cli::usage_error(PROGRAM, "give a command, e.g. 'dpyfs dev'"),
    }
}
