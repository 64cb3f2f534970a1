//! The few POSIX calls the standard library does not wrap: disk space (`statvfs`), load
//! averages (`getloadavg`) and socket options on a listener. They go through `libc`, not
//! `/proc`, so the daemons also build and report on the BSDs.
//!
//! This is the only module allowed `unsafe`; each block is one FFI call on a value we own.
#![allow(unsafe_code)] // FFI calls to libc; each block is a single call with owned buffers.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::Duration;

/// Total and available bytes of the file system that holds `path`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskSpace {
    pub total_bytes: u64,
    /// Bytes available to an unprivileged writer (`f_bavail`), the figure that matters.
    pub free_bytes: u64,
}

pub fn disk_space(path: &Path) -> io::Result<DiskSpace> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string and `st` a zeroed struct we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field widths differ between platforms (u32 on armv7), hence the `as u64`.
    #[allow(clippy::unnecessary_cast)] // u64 already on 64-bit targets, not on armv7
    let frsize = if st.f_frsize > 0 {
        st.f_frsize as u64
    } else {
        st.f_bsize as u64
    };
    #[allow(clippy::unnecessary_cast)]
    Ok(DiskSpace {
        total_bytes: (st.f_blocks as u64).saturating_mul(frsize),
        free_bytes: (st.f_bavail as u64).saturating_mul(frsize),
    })
}

/// The 1, 5 and 15 minute load averages, or None where the system does not say.
pub fn load_average() -> Option<[f64; 3]> {
    let mut l = [0f64; 3];
    // SAFETY: the buffer holds exactly the 3 values requested.
    let n = unsafe { libc::getloadavg(l.as_mut_ptr(), 3) };
    if n == 3 { Some(l) } else { None }
}

fn set_opt<T: AsRawFd>(sock: &T, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: `value` is a live buffer of the given length for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets TCP_NODELAY on a listening socket. Linux and the BSDs copy it to every accepted
/// connection, which is how it reaches the sockets tiny_http accepts for us.
pub fn set_listener_nodelay<T: AsRawFd>(sock: &T) -> io::Result<()> {
    let one: libc::c_int = 1;
    set_opt(
        sock,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        &one.to_ne_bytes(),
    )
}

/// Sets receive and send timeouts on a listening socket; accepted connections inherit
/// them, so an idle or stalled client is dropped instead of holding a thread forever.
pub fn set_listener_timeouts<T: AsRawFd>(sock: &T, timeout: Duration) -> io::Result<()> {
    let tv = libc::timeval {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_usec: timeout.subsec_micros() as libc::suseconds_t,
    };
    // SAFETY: timeval is plain old data; we pass a pointer to it and its exact size.
    let bytes = unsafe {
        std::slice::from_raw_parts(
            (&tv as *const libc::timeval).cast::<u8>(),
            std::mem::size_of::<libc::timeval>(),
        )
    };
    set_opt(sock, libc::SOL_SOCKET, libc::SO_RCVTIMEO, bytes)?;
    set_opt(sock, libc::SOL_SOCKET, libc::SO_SNDTIMEO, bytes)
}

/// Takes an exclusive advisory lock on `file` without waiting; an error with kind
/// `WouldBlock` means another process holds it. The lock lasts as long as the file is open.
pub fn try_lock_exclusive(file: &std::fs::File) -> io::Result<()> {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

static STOP_REQUESTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

extern "C" fn note_stop(_signal: libc::c_int) {
    // Only an atomic store: the one thing that is safe in a signal handler.
    STOP_REQUESTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Makes SIGINT and SIGTERM set a flag (see `stop_requested`) instead of killing the
/// process, so a supervisor can stop its children cleanly.
pub fn catch_stop_signals() {
    let handler = note_stop as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler);
        libc::signal(libc::SIGTERM, handler);
    }
}

pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(std::sync::atomic::Ordering::SeqCst)
}

/// True when stderr is a terminal (the progress line of the client tools is shown only
/// then). `isatty(3)`, through the standard library's safe wrapper.
/// Allocations of at least this many bytes get their own mapping, returned to the system
/// when freed (chunk buffers: 256 KiB to 4 MiB).
pub const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Keeps glibc from holding on to freed chunk buffers. glibc raises its mmap threshold each
/// time a mapped block is freed (up to 32 MiB), after which chunk-sized buffers come from
/// the heap arenas of each thread and stay in the process: a director that had served one
/// large GET kept ~36 MiB. Fixing the threshold keeps every chunk buffer a mapping of its
/// own, so memory goes back once a request ends. Other C libraries: nothing to do.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; any value is accepted or refused
    // (returns 0) without effect on memory already allocated.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

pub fn stderr_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}

/// Sends SIGTERM to a child we started (by its PID).
pub fn terminate(pid: u32) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid out of range"))?;
    // SAFETY: kill(2) on a PID we own; no memory is passed.
    if unsafe { libc::kill(pid, libc::SIGTERM) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Starts a new session with no controlling terminal (`setsid`), so a detached daemon is
/// not stopped by the terminal's Ctrl-C or hang-up. Fails for a process group leader.
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid(2) takes no arguments and touches no memory of ours.
    if unsafe { libc::setsid() } == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Points standard output and standard error at `file` (`dup2`): a daemon's later
/// messages go to its log instead of a terminal that may be gone.
pub fn redirect_output(file: &std::fs::File) -> io::Result<()> {
    for fd in [libc::STDOUT_FILENO, libc::STDERR_FILENO] {
        // SAFETY: dup2(2) on a descriptor we own and a standard descriptor number.
        if unsafe { libc::dup2(file.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The most file descriptors a daemon raises its soft limit to (see `raise_fd_limit`).
pub const FD_SOFT_LIMIT_MAX: u64 = 65_536;

/// Raises the soft limit on open file descriptors to the hard limit (at most
/// `FD_SOFT_LIMIT_MAX`) and returns the limit now in force, or None if it cannot be read.
/// systemd starts services with a soft limit of 1024 and a far higher hard one; every
/// connection holds two descriptors, so the connection cap is derived from this figure.
#[allow(clippy::unnecessary_cast)] // rlim_t is 32 bits on armv7, 64 elsewhere.
pub fn raise_fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a live rlimit the call fills in.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return None;
    }
    let want = (lim.rlim_max as u64).min(FD_SOFT_LIMIT_MAX);
    if (lim.rlim_cur as u64) < want {
        let raised = libc::rlimit {
            rlim_cur: want as libc::rlim_t,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: `raised` is a live rlimit the call reads.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            return Some(want);
        }
    }
    Some(lim.rlim_cur as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn disk_space_of_tmp_is_plausible() {
        let d = disk_space(&std::env::temp_dir()).unwrap();
        assert!(d.total_bytes > 0);
        assert!(d.free_bytes <= d.total_bytes);
    }

    #[test]
    fn load_average_is_reported() {
        let l = load_average().unwrap();
        assert!(l.iter().all(|x| *x >= 0.0));
    }

    #[test]
    fn accepted_sockets_inherit_timeout_from_listener() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        set_listener_nodelay(&l).unwrap();
        set_listener_timeouts(&l, Duration::from_millis(200)).unwrap();
        let addr = l.local_addr().unwrap();
        let mut c = TcpStream::connect(addr).unwrap();
        let (mut s, _) = l.accept().unwrap();
        assert!(s.nodelay().unwrap(), "TCP_NODELAY not inherited");
        assert_eq!(s.read_timeout().unwrap(), Some(Duration::from_millis(200)));
        let mut buf = [0u8; 1];
        let e = s.read(&mut buf).unwrap_err();
        assert!(matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ));
        c.write_all(b"x").unwrap();
    }
}
