//! Counters and latency histograms for `/metrics` (Prometheus text format, version 0.0.4).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the request latency histogram buckets; `+Inf` is implied.
pub const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
];

/// One route's latency histogram: counts per bucket (not cumulative), sum and count.
#[derive(Clone, Debug, Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS_SECONDS.len()],
    sum_seconds: f64,
    count: u64,
}

#[derive(Default)]
pub struct Metrics {
    /// (route, status) -> count. Routes are a fixed small set, so this stays tiny.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// route -> time from the request to its response headers (a streamed body follows).
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Metrics {
    pub fn record(&self, route: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        *m.entry((route, status)).or_insert(0) += 1;
    }

    /// Records how long a request of `route` took to be answered.
    pub fn observe(&self, route: &'static str, seconds: f64) {
        let mut m = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        let h = m.entry(route).or_default();
        if let Some(i) = LATENCY_BUCKETS_SECONDS.iter().position(|b| seconds <= *b) {
            h.buckets[i] += 1;
        }
        h.sum_seconds += seconds;
        h.count += 1;
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
        self.render_latency(&mut out, prefix);
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

    fn render_latency(&self, out: &mut String, prefix: &str) {
        let m = self.latency.lock().unwrap_or_else(|p| p.into_inner());
        if m.is_empty() {
            return;
        }
        let name = format!("{prefix}_request_duration_seconds");
        let _ = writeln!(
            out,
            "# HELP {name} Time from a request to its response headers, by route."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (route, h) in m.iter() {
            let mut cumulative = 0;
            for (le, n) in LATENCY_BUCKETS_SECONDS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{name}_bucket{{route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "{name}_sum{{route=\"{route}\"}} {}", h.sum_seconds);
            let _ = writeln!(out, "{name}_count{{route=\"{route}\"}} {}", h.count);
        }
    }
}

/// A gauge with one label, e.g. `dpyfs_director_store_up{store="s1"} 1`.
pub fn render_labeled_gauge(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &[(String, f64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (l, v) in values {
        let l = l.replace('\\', "\\\\").replace('"', "\\\"");
        let _ = writeln!(out, "{name}{{{label}=\"{l}\"}} {v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_histograms_are_cumulative_with_sum_and_count() {
        let m = Metrics::default();
        m.observe("get_object", 0.003);
        m.observe("get_object", 0.2);
        m.observe("get_object", 100.0);
        let t = m.render("p", &[]);
        assert!(t.contains("# TYPE p_request_duration_seconds histogram"));
        assert!(
            t.contains("p_request_duration_seconds_bucket{route=\"get_object\",le=\"0.001\"} 0")
        );
        assert!(
            t.contains("p_request_duration_seconds_bucket{route=\"get_object\",le=\"0.005\"} 1")
        );
        assert!(
            t.contains("p_request_duration_seconds_bucket{route=\"get_object\",le=\"0.25\"} 2")
        );
        assert!(t.contains("p_request_duration_seconds_bucket{route=\"get_object\",le=\"30\"} 2"));
        assert!(
            t.contains("p_request_duration_seconds_bucket{route=\"get_object\",le=\"+Inf\"} 3")
        );
        assert!(t.contains("p_request_duration_seconds_count{route=\"get_object\"} 3"));
        assert!(t.contains("p_request_duration_seconds_sum{route=\"get_object\"} 100.2"));
    }

    #[test]
    fn labeled_gauges_escape_labels() {
        let mut out = String::new();
        render_labeled_gauge(&mut out, "p_up", "Up.", "store", &[("a\"b".into(), 1.0)]);
        assert!(out.contains("p_up{store=\"a\\\"b\"} 1"), "{out}");
    }
}
