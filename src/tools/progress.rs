//! The progress line of `dpyfs-put` and `dpyfs-get` on a terminal: bytes, percentage, rate
//! and time left, redrawn in place on stderr at most every `REDRAW_MS`, and a final line
//! when a file is done. Nothing at all is printed when stderr is not a terminal.

pub use crate::human::{bytes, duration};
use std::io::Write;
use std::time::{Duration, Instant};

/// Redraws at most this often.
pub const REDRAW_MS: u64 = 200;
/// Longest name shown; longer ones keep their end ("…end-of-name").
pub const NAME_CHARS_MAX: usize = 32;

pub struct Progress {
    enabled: bool,
    name: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    /// `enabled` is false when stderr is not a terminal or `-q` was given.
    pub fn new(enabled: bool, name: &str, total: Option<u64>) -> Progress {
        Progress {
            enabled,
            name: short_name(name),
            total,
            done: 0,
            started: Instant::now(),
            last_draw: None,
        }
    }

    /// Starts over (a retried transfer).
    pub fn restart(&mut self) {
        self.done = 0;
        self.started = Instant::now();
    }

    pub fn add(&mut self, n: u64) {
        self.done += n;
        if !self.enabled {
            return;
        }
        let due = self
            .last_draw
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(REDRAW_MS));
        if due {
            self.draw(false);
            self.last_draw = Some(Instant::now());
        }
    }

    /// The final line (with a newline), or a cleared line when the transfer failed.
    pub fn finish(&mut self, ok: bool) {
        if !self.enabled {
            return;
        }
        if ok {
            self.draw(true);
        } else if self.last_draw.is_some() {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }

    fn draw(&self, last: bool) {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done as f64 / secs;
        let mut line = format!(
            "{:<width$} {:>10}",
            self.name,
            bytes(self.done),
            width = NAME_CHARS_MAX.min(self.name.chars().count().max(8))
        );
        if let Some(t) = self.total {
            let pct = if t == 0 {
                100.0
            } else {
                self.done as f64 * 100.0 / t as f64
            };
            line.push_str(&format!(" / {:<10} {:>3.0}%", bytes(t), pct.min(100.0)));
        }
        line.push_str(&format!(" {:>10}/s", bytes(rate as u64)));
        if last {
            line.push_str(&format!("  done in {}", duration(secs)));
        } else if let Some(t) = self.total.filter(|_| rate > 0.0) {
            let left = t.saturating_sub(self.done) as f64 / rate;
            line.push_str(&format!("  ETA {}", duration(left)));
        }
        let mut err = std::io::stderr();
        let _ = write!(err, "\r{line}\x1b[K{}", if last { "\n" } else { "" });
        let _ = err.flush();
    }
}

fn short_name(name: &str) -> String {
    let n = name.chars().count();
    if n <= NAME_CHARS_MAX {
        return name.to_string();
    }
    let tail: String = name.chars().skip(n - (NAME_CHARS_MAX - 1)).collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_keep_their_end() {
        let n = short_name(&"x".repeat(40));
        assert_eq!(n.chars().count(), NAME_CHARS_MAX);
        assert!(n.starts_with('…'));
    }
}
