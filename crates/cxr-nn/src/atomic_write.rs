//! Files replaced whole or not at all: written to a temporary file beside the target, synced,
//! made readable by all, then renamed over it. Checkpoints, run logs and model files use it.

use std::io::Write;
use std::path::Path;

use tempfile::NamedTempFile;

/// Replaces `path` with `bytes`, so that `path` always holds either the old or the new content.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut temp = temp_beside(path)?;
    temp.write_all(bytes)?;
    commit(temp, path)
}

/// A temporary file in `path`'s folder (so that the final rename stays on one file system),
/// for writers that need a path to write to before [`commit`].
pub fn temp_beside(path: &Path) -> std::io::Result<NamedTempFile> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    tempfile::Builder::new()
        .prefix(".write-")
        .suffix(".tmp")
        .tempfile_in(dir)
}

/// Makes the finished `temp` the file at `path`: its bytes reach the disk before the rename.
/// Works through `temp`'s path, since a writer given that path (a safetensors store) may have
/// replaced the file behind `temp`'s handle.
pub fn commit(temp: NamedTempFile, path: &Path) -> std::io::Result<()> {
    readable_by_all(temp.path())?;
    std::fs::File::open(temp.path())?.sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Temporary files are created private (0600); results are ordinary files (0644).
fn readable_by_all(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_whole_and_leaves_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        write(&path, b"old").expect("first write");
        write(&path, b"new").expect("second write");
        assert_eq!(std::fs::read(&path).expect("read"), b"new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.json")]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o644);
        }
    }
}
