//! The last warnings and errors a daemon logged, kept in memory for its status page and
//! `/_dpyfs/status` ("recent errors"). A `log::Log` wrapper records every warning and error
//! into a bounded ring and passes all records on to the real logger; the binaries install
//! it (only they set up logging).

use std::collections::VecDeque;
use std::sync::Mutex;

/// Entries kept, at most; the oldest go first.
pub const RECENT_ERRORS_MAX: usize = 20;
/// Longest message kept, in bytes (cut at a character boundary).
pub const MESSAGE_BYTES_MAX: usize = 400;

#[derive(Clone, Debug, serde::Serialize)]
pub struct Entry {
    pub time_ms: u64,
    pub level: &'static str,
    pub message: String,
}

static RING: Mutex<VecDeque<Entry>> = Mutex::new(VecDeque::new());

/// Records one entry (also usable without the logger, e.g. in tests).
pub fn note(level: &'static str, message: &str) {
    let mut m = message.to_string();
    if m.len() > MESSAGE_BYTES_MAX {
        let mut cut = MESSAGE_BYTES_MAX;
        while !m.is_char_boundary(cut) {
            cut -= 1;
        }
        m.truncate(cut);
        m.push('…');
    }
    let mut r = RING.lock().unwrap_or_else(|p| p.into_inner());
    if r.len() == RECENT_ERRORS_MAX {
        r.pop_front();
    }
    r.push_back(Entry {
        time_ms: crate::timefmt::now_ms(),
        level,
        message: m,
    });
}

/// Oldest first.
pub fn snapshot() -> Vec<Entry> {
    RING.lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .cloned()
        .collect()
}

/// Wraps a logger: warnings and errors are also noted in the ring.
pub struct RecordingLogger<L> {
    pub inner: L,
}

impl<L: log::Log> log::Log for RecordingLogger<L> {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Warn || self.inner.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        match record.level() {
            log::Level::Error => note("error", &record.args().to_string()),
            log::Level::Warn => note("warn", &record.args().to_string()),
            _ => {}
        }
        if self.inner.enabled(record.metadata()) {
            self.inner.log(record);
        }
    }

    fn flush(&self) {
        self.inner.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_is_bounded_and_keeps_the_newest() {
        for i in 0..RECENT_ERRORS_MAX + 5 {
            note("warn", &format!("ring test {i}"));
        }
        note("error", &"é".repeat(MESSAGE_BYTES_MAX));
        let s = snapshot();
        assert_eq!(s.len(), RECENT_ERRORS_MAX);
        assert!(s.last().unwrap().message.ends_with('…'));
        assert!(s.last().unwrap().message.len() <= MESSAGE_BYTES_MAX + 3);
        assert!(!s.iter().any(|e| e.message == "ring test 0"));
    }
}
