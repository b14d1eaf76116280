//! `cxr train` as a user runs it: killed with SIGKILL or stopped with Ctrl-C after its first
//! checkpoint, then `--resume`d to the end with every epoch logged exactly once.

#[path = "../../cxr-nn/tests/train_support/mod.rs"]
mod train_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const FROZEN_EPOCHS: usize = 8;
const FINE_TUNE_EPOCHS: usize = 2;

struct Setup {
    _dir: tempfile::TempDir,
    data: PathBuf,
    recipe: PathBuf,
    weights: PathBuf,
    run: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    train_support::write_blob_dataset(&data, 12);
    let caches = train_support::private_caches(dir.path());
    let recipe = dir.path().join("tiny.toml");
    let tiny = train_support::tiny_recipe(FROZEN_EPOCHS, FINE_TUNE_EPOCHS);
    std::fs::write(&recipe, tiny.to_toml()).expect("recipe");
    Setup {
        run: dir.path().join("run"),
        data,
        recipe,
        weights: caches.weights,
        _dir: dir,
    }
}

fn cxr(setup: &Setup, args: &[&Path]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cxr"));
    command
        .arg("train")
        .args(args)
        .env("CXR_CACHE_DIR", &setup.weights);
    command
}

/// `cxr train DATA --out RUN --recipe RECIPE`, plus `extra` arguments.
fn new_run(setup: &Setup, extra: &[&Path]) -> Command {
    let mut args = vec![
        setup.data.as_path(),
        Path::new("--out"),
        &setup.run,
        Path::new("--recipe"),
        &setup.recipe,
    ];
    args.extend_from_slice(extra);
    cxr(setup, &args)
}

/// Starts a training run and returns once its first checkpoint is on disk.
fn start_until_first_checkpoint(setup: &Setup) -> Child {
    let mut child = new_run(setup, &[])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn cxr");
    let started = Instant::now();
    while !setup.run.join("checkpoint.bin").is_file() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("cxr train ended ({status}) before its first checkpoint");
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint after 2 minutes"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child
}

fn logged_epochs(run: &Path) -> Vec<String> {
    let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap_or_default();
    csv.lines()
        .skip(1)
        .map(|line| line.split(',').take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

fn every_epoch_once() -> Vec<String> {
    let frozen = (1..=FROZEN_EPOCHS).map(|e| format!("frozen {e}"));
    let fine = (1..=FINE_TUNE_EPOCHS).map(|e| format!("fine_tune {e}"));
    frozen.chain(fine).collect()
}

fn resume_to_the_end(setup: &Setup) {
    let output = cxr(setup, &[Path::new("--resume"), &setup.run])
        .output()
        .expect("resume");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(logged_epochs(&setup.run), every_epoch_once());
    assert!(setup.run.join("model.safetensors").is_file());
}

#[test]
fn a_killed_run_resumes_and_logs_every_epoch_once() {
    let setup = setup();
    let mut child = start_until_first_checkpoint(&setup);
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    let done = logged_epochs(&setup.run).len();
    assert!(
        done < FROZEN_EPOCHS + FINE_TUNE_EPOCHS,
        "the run finished before the kill"
    );
    resume_to_the_end(&setup);
}

#[test]
fn ctrl_c_stops_cleanly_and_says_how_to_resume() {
    let setup = setup();
    let child = start_until_first_checkpoint(&setup);
    let interrupt = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupt.success());
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    assert!(!setup.run.join("model.safetensors").exists());
    resume_to_the_end(&setup);
}

#[test]
fn a_bad_recipe_is_refused_with_the_field_named() {
    let setup = setup();
    std::fs::write(&setup.recipe, "batch_sise = 4\n").expect("recipe");
    let output = new_run(&setup, &[]).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("batch_sise") && stderr.contains("tiny.toml"),
        "{stderr}"
    );
}

#[test]
fn unlabelled_images_without_pseudo_labelling_are_refused_before_training() {
    let setup = setup();
    let output = new_run(&setup, &[Path::new("--unlabelled"), &setup.data.join("tb")])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--unlabelled") && stderr.contains("[pseudo_labels]"),
        "{stderr}"
    );
    assert!(!setup.run.join("metrics.csv").exists());
}
