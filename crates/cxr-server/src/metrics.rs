//! Counters for `GET /metrics`, in the Prometheus text format: requests by route and status,
//! screenings by decision, refusals when the queue is full, and screening latency.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 9] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    decisions: Mutex<BTreeMap<String, u64>>,
    rejected: AtomicU64,
    /// Cumulative counts per bucket, then +Inf.
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
}

impl Metrics {
    pub fn request(&self, route: &str, status: u16) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests.entry((route.to_string(), status)).or_default() += 1;
        }
    }

    pub fn screened(&self, decision: &str, took: Duration) {
        if let Ok(mut decisions) = self.decisions.lock() {
            *decisions.entry(decision.to_string()).or_default() += 1;
        }
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_micros
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
    }

    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text; `in_flight` and `capacity` describe the worker pool now.
    pub fn render(&self, in_flight: usize, capacity: usize) -> String {
        let mut out = String::new();
        out.push_str("# HELP cxr_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE cxr_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "cxr_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
                );
            }
        }
        out.push_str("# HELP cxr_screenings_total Images screened, by decision.\n");
        out.push_str("# TYPE cxr_screenings_total counter\n");
        if let Ok(decisions) = self.decisions.lock() {
            for (decision, count) in decisions.iter() {
                let _ = writeln!(
                    out,
                    "cxr_screenings_total{{decision=\"{decision}\"}} {count}"
                );
            }
        }
        out.push_str(
            "# HELP cxr_rejected_total Requests refused with 503 because the queue was full.\n",
        );
        out.push_str("# TYPE cxr_rejected_total counter\n");
        let _ = writeln!(
            out,
            "cxr_rejected_total {}",
            self.rejected.load(Ordering::Relaxed)
        );
        out.push_str("# HELP cxr_screen_seconds Time from upload received to answer, per image.\n");
        out.push_str("# TYPE cxr_screen_seconds histogram\n");
        let mut cumulative = 0;
        for (index, bucket) in self.latency_buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let bound = LATENCY_BUCKETS
                .get(index)
                .map_or_else(|| "+Inf".to_string(), ToString::to_string);
            let _ = writeln!(
                out,
                "cxr_screen_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let sum = self.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "cxr_screen_seconds_sum {sum}");
        let _ = writeln!(out, "cxr_screen_seconds_count {cumulative}");
        out.push_str(
            "# HELP cxr_jobs_in_flight Jobs admitted to the worker pool and not finished.\n",
        );
        out.push_str("# TYPE cxr_jobs_in_flight gauge\n");
        let _ = writeln!(out, "cxr_jobs_in_flight {in_flight}");
        out.push_str("# HELP cxr_jobs_capacity Jobs the worker pool admits at once.\n");
        out.push_str("# TYPE cxr_jobs_capacity gauge\n");
        let _ = writeln!(out, "cxr_jobs_capacity {capacity}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_counts_requests_decisions_and_latency() {
        let metrics = Metrics::default();
        metrics.request("/v1/screen", 200);
        metrics.request("/v1/screen", 200);
        metrics.request("/v1/screen", 415);
        metrics.screened("tb", Duration::from_millis(300));
        metrics.screened("normal", Duration::from_secs(60));
        metrics.rejected();
        let text = metrics.render(3, 32);
        assert!(text.contains("cxr_http_requests_total{route=\"/v1/screen\",status=\"200\"} 2\n"));
        assert!(text.contains("cxr_http_requests_total{route=\"/v1/screen\",status=\"415\"} 1\n"));
        assert!(text.contains("cxr_screenings_total{decision=\"tb\"} 1\n"));
        assert!(text.contains("cxr_screen_seconds_bucket{le=\"0.25\"} 0\n"));
        assert!(text.contains("cxr_screen_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("cxr_screen_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("cxr_screen_seconds_count 2\n"));
        assert!(text.contains("cxr_rejected_total 1\n"));
        assert!(text.contains("cxr_jobs_in_flight 3\n"));
    }
}
