//! `cxr serve` as a user runs it: the page in real headless Chromium (pick a PNG, drop a
//! DICOM, see decision, heat map and lung outline), graceful shutdown, and the bind guard.
//!
//! The browser test installs what it needs: Debian's `chromium` (apt-get, when
//! /usr/bin/chromium is missing) and `playwright-core` (npm ci in tests/browser). Set
//! CXR_SKIP_BROWSER_TEST=1 on machines that can install neither.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cxr_core::decode::dicom_writer::DicomImage;
use serde_json::Value;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn shenzhen(name: &str) -> PathBuf {
    Path::new(WORKSPACE)
        .join("../shared/data/shenzhen/images")
        .join(name)
}

/// A running `cxr serve` on a free loopback port; killed when dropped.
struct Server {
    child: Child,
    address: String,
}

impl Server {
    fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cxr"))
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .current_dir(WORKSPACE)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let address = loop {
            let line = lines
                .next()
                .expect("cxr serve exited before listening")
                .unwrap();
            if let Some(rest) = line.strip_prefix("open http://") {
                break rest.split('/').next().unwrap().to_string();
            }
        };
        // Keep draining stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self { child, address }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// Ctrl-C, as a user stops it.
    fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_page_shows_decision_heat_map_and_lungs_in_a_real_browser() {
    if std::env::var_os("CXR_SKIP_BROWSER_TEST").is_some() {
        eprintln!("skipped: CXR_SKIP_BROWSER_TEST is set");
        return;
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        let install = || {
            Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .status()
                .is_ok_and(|status| status.success())
        };
        // A fresh machine may have no package lists yet.
        if !install() {
            run(Command::new("apt-get").arg("update"), "apt-get update");
            assert!(
                install(),
                "apt-get install chromium failed (set CHROMIUM to a Chromium binary, or CXR_SKIP_BROWSER_TEST=1)"
            );
        }
    }
    let scripts = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    if !scripts.join("node_modules/playwright-core").exists() {
        run(
            Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund"])
                .current_dir(&scripts),
            "npm ci in tests/browser",
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let png = shenzhen("CHNCXR_0327_1.png");
    let dicom = dir.path().join("CHNCXR_0001_0.dcm");
    let xray = cxr_core::decode_file(&shenzhen("CHNCXR_0001_0.png"), &Default::default()).unwrap();
    DicomImage::from_gray(&xray.image, 12)
        .unwrap()
        .write_file(&dicom)
        .unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cxr-serve-page.png");
    let output = Command::new("node")
        .arg(scripts.join("screen_page.mjs"))
        .arg(server.url())
        .args([&png, &dicom, &screenshot])
        .env("CHROMIUM", &chromium)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the browser script failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("page showed: {shown}\nscreenshot: {}", screenshot.display());
    let verdict = shown["png"]["verdict"].as_str().unwrap();
    assert!(
        verdict.starts_with("Refer") || verdict.starts_with("No referral"),
        "{verdict}"
    );
    assert!(shown["png"]["probability"].as_str().unwrap().ends_with('%'));
    assert_eq!(shown["heat_hidden_when_unticked"], true);
    assert_eq!(shown["heat_shown_when_ticked"], true);
    assert!(
        shown["dicom"]["details"]
            .as_str()
            .unwrap()
            .contains("DICOM"),
        "{shown}"
    );
    assert!(shown["history_rows"].as_u64().unwrap() >= 2);
    assert!(shown["operating_points"].as_array().unwrap().len() >= 2);
    assert_eq!(
        shown["errors"],
        serde_json::json!([]),
        "browser console errors"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
}

#[test]
fn ctrl_c_finishes_the_request_in_flight_then_exits() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &["--no-lungs"]);
    let bytes = std::fs::read(shenzhen("CHNCXR_0001_0.png")).unwrap();
    // Send half the upload, press Ctrl-C, then send the rest: the request is in flight
    // throughout, and must still be answered.
    let mut stream = TcpStream::connect(&server.address).unwrap();
    let head = format!(
        "POST /v1/screen HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        bytes.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (first, rest) = bytes.split_at(bytes.len() / 2);
    stream.write_all(first).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.interrupt();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "exited with a request in flight"
    );
    stream.write_all(rest).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"probability\""), "{response}");
    let started = Instant::now();
    let exit = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "still running after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    // New connections are refused once it has stopped, and the result was kept.
    assert!(TcpStream::connect(&server.address).is_err());
    assert!(dir.path().join("results.sqlite").exists());
}

#[test]
fn binding_beyond_loopback_without_a_token_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_cxr"))
        .args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("CXR_TOKEN")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("API token"), "{stderr}");
}
