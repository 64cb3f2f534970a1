//! `dpyfs mount --daemon`: the command starts itself again as a detached child and waits
//! until that child has mounted, so a script can use the folder as soon as the command
//! returns. Errors before mounting (no bucket, no /dev/fuse) go from the child straight
//! to the terminal, and the command fails; once mounted, the child's output goes to
//! `--log` (or nowhere) and the command prints the child's PID and exits 0.
//!
//! A re-run rather than fork(2): forking a process that may already run threads (the
//! HTTP client's resolver, a logger) is unsafe in Rust; a fresh process starts clean.

use std::io::{BufRead, Write};
use std::process::{Command, Stdio};

/// Set in the child's environment: "you are the daemon; report on stdout when mounted".
const CHILD_ENV: &str = "DPYFS_MOUNT_DAEMON_CHILD";
/// The line the child writes once mounted.
const READY_LINE: &str = "mounted";

pub enum Role {
    /// Start the child and wait for it.
    Parent,
    /// The child, detached from the terminal's session; tell the parent when mounted.
    Child(Ready),
}

/// The child's promise to its parent: `mounted` says the folder is up.
pub struct Ready(());

pub fn role() -> Role {
    if std::env::var_os(CHILD_ENV).is_none() {
        return Role::Parent;
    }
    // A new session: the terminal's Ctrl-C and hang-up no longer reach the mount.
    if let Err(e) = crate::sys::new_session() {
        log::warn!("setsid: {e}");
    }
    Role::Child(Ready(()))
}

impl Ready {
    /// Tells the parent the mount is up, then points stdout and stderr at `log` (or
    /// /dev/null): the terminal may be gone, and the parent's pipe is about to close.
    pub fn mounted(self, log: Option<&std::fs::File>) {
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{READY_LINE}");
        let _ = out.flush();
        let null;
        let target = match log {
            Some(f) => f,
            None => match std::fs::OpenOptions::new().write(true).open("/dev/null") {
                Ok(f) => {
                    null = f;
                    &null
                }
                Err(e) => {
                    log::warn!("/dev/null: {e}");
                    return;
                }
            },
        };
        if let Err(e) = crate::sys::redirect_output(target) {
            log::warn!("redirecting output: {e}");
        }
        // Nothing of ours keeps the folder it was started from busy.
        let _ = std::env::set_current_dir("/");
    }
}

/// Runs this command again as the daemon and waits until it has mounted (Ok: its PID)
/// or ended (Err: it has already said why on stderr).
pub fn start() -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    let mut child = Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting the mount process: {e}"))?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    if line.trim_end() == READY_LINE {
        // Not waited for: it lives on, and init reaps it when it ends.
        return Ok(child.id().to_string());
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the mount process: {e}"))?;
    Err(format!(
        "the mount process ended before mounting ({status})"
    ))
}
