//! Counters for `/metrics` (Prometheus text format, version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
pub struct Metrics {
    /// (route, status) -> count. Routes are a fixed small set, so this stays tiny.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route, status)).or_insert(0) += 1;
    }

    pub fn add_in(&self, n: u64) {
        self.bytes_in.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_out(&self, n: u64) {
        self.bytes_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders the request counters and byte totals; `gauges` adds (name, help, value).
    pub fn render(&self, prefix: &str, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {prefix}_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE {prefix}_requests_total counter");
        for ((route, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "{prefix}_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            ("bytes_in_total", "Body bytes received.", &self.bytes_in),
            ("bytes_out_total", "Body bytes sent.", &self.bytes_out),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} counter");
            let _ = writeln!(out, "{prefix}_{name} {}", v.load(Ordering::Relaxed));
        }
        for (name, help, v) in gauges {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let _ = writeln!(out, "# HELP {prefix}_{name} {help}");
            let _ = writeln!(out, "# TYPE {prefix}_{name} {kind}");
            let _ = writeln!(out, "{prefix}_{name} {v}");
        }
        out
    }
}
