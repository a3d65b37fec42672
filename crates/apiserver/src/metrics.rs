//! Prometheus metrics in the text format: request counts and latencies by
//! verb and resource, open watches, and store operation latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    total: u64,
}

impl Histogram {
    fn observe(&mut self, secs: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len()];
        }
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += secs;
        self.total += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (i, b) in BUCKETS.iter().enumerate() {
            let c = self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.total);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.total);
    }
}

/// All metrics of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    store: Mutex<BTreeMap<String, Histogram>>,
    watches: AtomicI64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Records one finished request.
    pub fn request(&self, verb: &str, resource: &str, code: u16, took: Duration) {
        *lock(&self.requests)
            .entry((verb.to_string(), resource.to_string(), code))
            .or_default() += 1;
        if verb != "WATCH" {
            lock(&self.latency)
                .entry((verb.to_string(), resource.to_string()))
                .or_default()
                .observe(took.as_secs_f64());
        }
    }

    /// Records one store operation.
    pub fn store_op(&self, op: &str, took: Duration) {
        lock(&self.store)
            .entry(op.to_string())
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn watch_started(&self) {
        self.watches.fetch_add(1, Ordering::Relaxed);
    }

    pub fn watch_ended(&self) {
        self.watches.fetch_sub(1, Ordering::Relaxed);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP apiserver_request_total Counter of apiserver requests by verb, resource and HTTP code.\n# TYPE apiserver_request_total counter\n");
        for ((verb, res, code), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{verb=\"{verb}\",resource=\"{res}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str("# HELP apiserver_request_duration_seconds Response latency by verb and resource.\n# TYPE apiserver_request_duration_seconds histogram\n");
        for ((verb, res), h) in lock(&self.latency).iter() {
            h.render(
                &mut out,
                "apiserver_request_duration_seconds",
                &format!("verb=\"{verb}\",resource=\"{res}\""),
            );
        }
        out.push_str("# HELP apiserver_longrunning_requests Open watch requests.\n# TYPE apiserver_longrunning_requests gauge\n");
        let _ = writeln!(
            out,
            "apiserver_longrunning_requests{{verb=\"WATCH\"}} {}",
            self.watches.load(Ordering::Relaxed)
        );
        out.push_str("# HELP bosun_store_request_duration_seconds Store operation latency.\n# TYPE bosun_store_request_duration_seconds histogram\n");
        for (op, h) in lock(&self.store).iter() {
            h.render(
                &mut out,
                "bosun_store_request_duration_seconds",
                &format!("operation=\"{op}\""),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_latency_and_watches() {
        let m = Metrics::default();
        m.request("GET", "pods", 200, Duration::from_millis(3));
        m.watch_started();
        m.store_op("get", Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("apiserver_request_total{verb=\"GET\",resource=\"pods\",code=\"200\"} 1")
        );
        assert!(text.contains("apiserver_longrunning_requests{verb=\"WATCH\"} 1"));
        assert!(text.contains("bosun_store_request_duration_seconds_count{operation=\"get\"} 1"));
    }
}
