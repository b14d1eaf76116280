//! Load generator for `bench/serve.sh`: N clients POST PNGs to /v1/screen for a fixed time and
//! report throughput, latency percentiles and every status seen, as one JSON line.
//!
//!   load URL DIR [--clients 8] [--seconds 60] [--query lungs=false]
//!
//! Plain HTTP/1.1 over std sockets, one connection per request, so no client library's
//! pooling or buffering is measured.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(url), Some(dir)) = (args.first(), args.get(1)) else {
        return Err("usage: load URL DIR [--clients N] [--seconds S] [--query Q]".into());
    };
    let option = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let clients: usize = option("--clients", "8")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let seconds: u64 = option("--seconds", "60")
        .parse()
        .map_err(|e| format!("{e}"))?;
    let query = option("--query", "");
    let address = url
        .strip_prefix("http://")
        .ok_or("URL must start with http://")?
        .trim_end_matches('/')
        .to_string();
    let images = std::fs::read_dir(dir)
        .map_err(|e| format!("{dir}: {e}"))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "png"))
        .map(|path| std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display())))
        .collect::<Result<Vec<_>, _>>()?;
    if images.is_empty() {
        return Err(format!("no PNG files in {dir}"));
    }
    let images = Arc::new(images);
    let stop = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Vec::<(u16, Duration)>::new()));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let (images, stop, outcomes) = (images.clone(), stop.clone(), outcomes.clone());
            let (address, query) = (address.clone(), query.clone());
            std::thread::spawn(move || {
                let mut next = client;
                while !stop.load(Ordering::Relaxed) {
                    let body = &images[next % images.len()];
                    next += clients;
                    let begun = Instant::now();
                    let status = post(&address, &query, body).unwrap_or(0);
                    if status == 503 {
                        // Do as Retry-After asks, without sleeping a whole second of a
                        // short run.
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    outcomes.lock().unwrap().push((status, begun.elapsed()));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let outcomes = outcomes.lock().unwrap();
    let mut statuses = BTreeMap::new();
    for (status, _) in outcomes.iter() {
        *statuses.entry(status.to_string()).or_insert(0usize) += 1;
    }
    let mut latencies: Vec<f64> = outcomes
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, took)| took.as_secs_f64() * 1000.0)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    println!(
        "{{\"clients\": {clients}, \"seconds\": {elapsed:.1}, \"ok\": {}, \"statuses\": {}, \"images_per_second\": {:.2}, \"p50_ms\": {:.0}, \"p99_ms\": {:.0}}}",
        latencies.len(),
        serde_json::to_string(&statuses).unwrap_or_default(),
        latencies.len() as f64 / elapsed,
        percentile(0.5),
        percentile(0.99),
    );
    Ok(())
}

/// One POST; the status code, or `None` when the connection failed.
fn post(address: &str, query: &str, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .ok()?;
    let path = if query.is_empty() {
        "/v1/screen".to_string()
    } else {
        format!("/v1/screen?{query}")
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    stream.write_all(body).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let line = String::from_utf8_lossy(&response[..response.len().min(32)]).to_string();
    line.split_whitespace().nth(1)?.parse().ok()
}
