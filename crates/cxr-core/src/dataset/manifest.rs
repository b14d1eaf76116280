//! CSV manifests: one row per image with its path (relative to the CSV), label, and optional
//! group, mask, split and fold. `cxr data split` writes them; every command can read them.

use std::path::{Path, PathBuf};

use super::{ClassNames, Dataset, DatasetError, Discovered, Item, Split};

/// Accepted header names per column, first one is what [`write_manifest`] writes.
const PATH: &[&str] = &["path", "filename", "file", "image"];
const LABEL: &[&str] = &["label", "class"];
const LABEL_NAME: &[&str] = &["label_name", "class_name"];
const GROUP: &[&str] = &["group", "patient", "patient_id", "group_id"];
const MASK: &[&str] = &["mask", "mask_path"];
const SPLIT: &[&str] = &["split"];
const FOLD: &[&str] = &["fold"];

/// Where each column sits in the CSV.
struct Columns {
    path: usize,
    label: usize,
    label_name: Option<usize>,
    group: Option<usize>,
    mask: Option<usize>,
    split: Option<usize>,
    fold: Option<usize>,
}

impl Columns {
    fn find(headers: &csv::StringRecord, csv_path: &Path) -> Result<Columns, DatasetError> {
        let find = |aliases: &[&str]| {
            headers
                .iter()
                .position(|h| aliases.iter().any(|a| a.eq_ignore_ascii_case(h.trim())))
        };
        let required = |aliases: &[&str]| {
            find(aliases).ok_or_else(|| DatasetError::BadRow {
                path: csv_path.to_path_buf(),
                line: 1,
                reason: format!("no '{}' column in the header", aliases.join("' or '")),
            })
        };
        Ok(Columns {
            path: required(PATH)?,
            label: required(LABEL)?,
            label_name: find(LABEL_NAME),
            group: find(GROUP),
            mask: find(MASK),
            split: find(SPLIT),
            fold: find(FOLD),
        })
    }
}

/// Resolves a path from the CSV against the CSV's folder; a bare name that is not there is
/// also looked for in `fallback_dir` beside it (`images/`, `masks/` as in the NLM downloads).
fn resolve(csv_dir: &Path, value: &str, fallback_dir: &str) -> Option<PathBuf> {
    let direct = csv_dir.join(value);
    if direct.is_file() {
        return Some(direct);
    }
    let fallback = csv_dir.join(fallback_dir).join(value);
    fallback.is_file().then_some(fallback)
}

/// Reads every row of a manifest; any bad row fails the whole read with its line number.
pub(super) fn read_manifest(
    csv_path: &Path,
    names: &ClassNames,
) -> Result<Vec<Discovered>, DatasetError> {
    let csv_error = |source| DatasetError::Csv {
        path: csv_path.to_path_buf(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(csv_path)
        .map_err(csv_error)?;
    let columns = Columns::find(reader.headers().map_err(csv_error)?, csv_path)?;
    let csv_dir = csv_path.parent().unwrap_or(Path::new("."));
    let mut found = Vec::new();
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        let bad_row = |reason: String| DatasetError::BadRow {
            path: csv_path.to_path_buf(),
            line,
            reason,
        };
        found.push(read_row(&record, &columns, csv_dir, names).map_err(bad_row)?);
    }
    Ok(found)
}

fn read_row(
    record: &csv::StringRecord,
    columns: &Columns,
    csv_dir: &Path,
    names: &ClassNames,
) -> Result<Discovered, String> {
    let field = |column: Option<usize>| {
        column
            .and_then(|c| record.get(c))
            .filter(|value| !value.is_empty())
    };
    let path_value = field(Some(columns.path)).ok_or("empty path")?;
    let path = resolve(csv_dir, path_value, "images")
        .ok_or_else(|| format!("missing file '{path_value}'"))?;
    let label_value = field(Some(columns.label)).ok_or("empty label")?;
    let label = names
        .label_of(label_value)
        .ok_or_else(|| format!("unknown label '{label_value}' ({})", names.describe()))?;
    let mask = match field(columns.mask) {
        Some(value) => Some(
            resolve(csv_dir, value, "masks").ok_or_else(|| format!("missing mask '{value}'"))?,
        ),
        None => None,
    };
    let split = match field(columns.split) {
        Some(value) => Split::parse(value).ok_or_else(|| format!("unknown split '{value}'"))?,
        None => Split::Unassigned,
    };
    let fold = match field(columns.fold) {
        Some(value) => Some(value.parse().map_err(|_| format!("bad fold '{value}'"))?),
        None => None,
    };
    let textual_label = (!label_value.bytes().all(|b| b.is_ascii_digit())).then_some(label_value);
    Ok(Discovered {
        item: Item {
            path,
            label,
            split,
            fold,
            group: field(columns.group).map(str::to_string),
            mask,
        },
        class_name: field(columns.label_name)
            .or(textual_label)
            .map(str::to_string),
    })
}

/// Writes `dataset` as a manifest at `out`. Paths under the manifest's folder are written
/// relative to it, others as absolute paths, so the manifest can be read back from anywhere.
pub fn write_manifest(dataset: &Dataset, out: &Path) -> Result<(), DatasetError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DatasetError::Io { path, source }
    };
    let out_dir = match out.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let base = out_dir.canonicalize().map_err(io_error(out_dir))?;
    let as_written = |path: &Path| -> Result<String, DatasetError> {
        let absolute = path.canonicalize().map_err(io_error(path))?;
        let shown = absolute.strip_prefix(&base).unwrap_or(&absolute);
        shown
            .to_str()
            .map(str::to_string)
            .ok_or_else(|| DatasetError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, "path is not UTF-8"),
            })
    };
    let csv_error = |source| DatasetError::Csv {
        path: out.to_path_buf(),
        source,
    };
    let mut writer = csv::Writer::from_path(out).map_err(csv_error)?;
    writer
        .write_record([
            PATH[0],
            LABEL[0],
            LABEL_NAME[0],
            GROUP[0],
            MASK[0],
            SPLIT[0],
            FOLD[0],
        ])
        .map_err(csv_error)?;
    for item in &dataset.items {
        let mask = item.mask.as_deref().map(as_written).transpose()?;
        writer
            .write_record([
                as_written(&item.path)?,
                item.label.to_string(),
                dataset.class_names[item.label].clone(),
                item.group.clone().unwrap_or_default(),
                mask.unwrap_or_default(),
                item.split.as_str().to_string(),
                item.fold.map(|f| f.to_string()).unwrap_or_default(),
            ])
            .map_err(csv_error)?;
    }
    writer.flush().map_err(io_error(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{NEGATIVE, POSITIVE};

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn rows_resolve_paths_labels_groups_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.png"), "x");
        write(&dir.path().join("images/b.png"), "x");
        write(&dir.path().join("masks/b_mask.png"), "x");
        let csv = dir.path().join("list.csv");
        write(
            &csv,
            "Path,Label,Patient,Mask,Split\na.png,Normal,p1,,train\nb.png,1,p2,b_mask.png,TEST\n",
        );
        let found = read_manifest(&csv, &ClassNames::default()).unwrap();
        let a = &found[0].item;
        assert_eq!(
            (a.label, a.split, a.group.as_deref()),
            (NEGATIVE, Split::Train, Some("p1"))
        );
        assert_eq!(found[0].class_name.as_deref(), Some("Normal"));
        let b = &found[1].item;
        assert_eq!((b.label, b.split), (POSITIVE, Split::Test));
        assert_eq!(b.path, dir.path().join("images/b.png"));
        assert_eq!(b.mask, Some(dir.path().join("masks/b_mask.png")));
        assert_eq!(found[1].class_name, None);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("a.png"), "x");
        let csv = dir.path().join("list.csv");
        let cases = [
            (
                "path,label\na.png,0\nmissing.png,1\n",
                "line 3: missing file 'missing.png'",
            ),
            (
                "path,label\na.png,pneumonia\n",
                "line 2: unknown label 'pneumonia'",
            ),
            (
                "path,label,split\na.png,0,holdout\n",
                "line 2: unknown split 'holdout'",
            ),
            (
                "file,diagnosis\na.png,0\n",
                "line 1: no 'label' or 'class' column",
            ),
        ];
        for (text, expected) in cases {
            write(&csv, text);
            let err = read_manifest(&csv, &ClassNames::default())
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
            assert!(err.contains("list.csv"), "{err}");
        }
    }
}
