//! Results kept in SQLite: one row per screening (time, image sha256, model hash, probability,
//! decision, flags, and the whole JSON answer). The schema is migrated forward on open.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

/// Schema versions in order; a database at version `n` runs migrations `n..` on open.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE screenings (
        id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        name TEXT NOT NULL,
        image_sha256 TEXT NOT NULL,
        model_sha256 TEXT NOT NULL,
        probability REAL NOT NULL,
        operating_point TEXT NOT NULL,
        threshold REAL NOT NULL,
        decision TEXT NOT NULL,
        flags TEXT NOT NULL,
        lungs TEXT NOT NULL,
        result TEXT NOT NULL
    );
    CREATE INDEX screenings_created ON screenings (created);",
    "ALTER TABLE screenings ADD COLUMN kept_image TEXT;",
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("results database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("results database: {0}")]
    Query(#[from] rusqlite::Error),
    #[error("results database: the lock was poisoned by a crash")]
    Poisoned,
    #[error("results database: a stored result is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// One screening as stored (and as listed and exported).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub id: String,
    pub created: String,
    pub name: String,
    pub image_sha256: String,
    pub model_sha256: String,
    pub probability: f64,
    pub operating_point: String,
    pub threshold: f64,
    pub decision: String,
    /// Quality flags joined by ';'.
    pub flags: String,
    /// "passed", "failed" or "" (no lung model).
    pub lungs: String,
    /// File name under the kept-images folder, when images are kept.
    pub kept_image: Option<String>,
}

pub const CSV_HEADER: [&str; 12] = [
    "id",
    "created",
    "name",
    "image_sha256",
    "model_sha256",
    "probability",
    "operating_point",
    "threshold",
    "decision",
    "flags",
    "lungs",
    "kept_image",
];

impl Row {
    pub fn csv_record(&self) -> [String; 12] {
        [
            self.id.clone(),
            self.created.clone(),
            self.name.clone(),
            self.image_sha256.clone(),
            self.model_sha256.clone(),
            format!("{:.6}", self.probability),
            self.operating_point.clone(),
            format!("{:.6}", self.threshold),
            self.decision.clone(),
            self.flags.clone(),
            self.lungs.clone(),
            self.kept_image.clone().unwrap_or_default(),
        ]
    }
}

/// The results database.
pub struct Store {
    connection: Mutex<Connection>,
}

impl Store {
    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_path_buf(),
            source,
        };
        let connection = Connection::open(path).map_err(open_error)?;
        // WAL lets the page read while a worker writes; NORMAL sync is durable across crashes
        // of the process (not of the machine), enough for a results log.
        connection
            .execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;")
            .map_err(open_error)?;
        migrate(&connection).map_err(open_error)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self, StoreError> {
        let connection = Connection::open_in_memory()?;
        migrate(&connection)?;
        Ok(Self {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.connection.lock().map_err(|_| StoreError::Poisoned)
    }

    pub fn insert(&self, row: &Row, result: &serde_json::Value) -> Result<(), StoreError> {
        self.lock()?.execute(
            "INSERT INTO screenings (id, created, name, image_sha256, model_sha256, probability,
                operating_point, threshold, decision, flags, lungs, result, kept_image)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                row.id,
                row.created,
                row.name,
                row.image_sha256,
                row.model_sha256,
                row.probability,
                row.operating_point,
                row.threshold,
                row.decision,
                row.flags,
                row.lungs,
                result.to_string(),
                row.kept_image,
            ],
        )?;
        Ok(())
    }

    /// The whole stored answer of one screening.
    pub fn result(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = self
            .lock()?
            .query_row("SELECT result FROM screenings WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        Ok(text.map(|text| serde_json::from_str(&text)).transpose()?)
    }

    /// The kept image's file name of one screening, if any.
    pub fn kept_image(&self, id: &str) -> Result<Option<String>, StoreError> {
        let name: Option<Option<String>> = self
            .lock()?
            .query_row(
                "SELECT kept_image FROM screenings WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()?;
        Ok(name.flatten())
    }

    /// Newest first.
    pub fn list(&self, limit: usize, offset: usize) -> Result<Vec<Row>, StoreError> {
        let connection = self.lock()?;
        let mut statement = connection.prepare(
            "SELECT id, created, name, image_sha256, model_sha256, probability, operating_point,
                threshold, decision, flags, lungs, kept_image
             FROM screenings ORDER BY created DESC, rowid DESC LIMIT ?1 OFFSET ?2",
        )?;
        let rows = statement.query_map(params![limit as i64, offset as i64], |row| {
            Ok(Row {
                id: row.get(0)?,
                created: row.get(1)?,
                name: row.get(2)?,
                image_sha256: row.get(3)?,
                model_sha256: row.get(4)?,
                probability: row.get(5)?,
                operating_point: row.get(6)?,
                threshold: row.get(7)?,
                decision: row.get(8)?,
                flags: row.get(9)?,
                lungs: row.get(10)?,
                kept_image: row.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn count(&self) -> Result<usize, StoreError> {
        let count: i64 = self
            .lock()?
            .query_row("SELECT COUNT(*) FROM screenings", [], |row| row.get(0))?;
        Ok(count as usize)
    }
}

fn migrate(connection: &Connection) -> Result<(), rusqlite::Error> {
    let version: usize =
        connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))? as usize;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        let transaction = connection.unchecked_transaction()?;
        transaction.execute_batch(migration)?;
        transaction.execute_batch(&format!("PRAGMA user_version = {}", index + 1))?;
        transaction.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, created: &str) -> Row {
        Row {
            id: id.into(),
            created: created.into(),
            name: "x.png".into(),
            image_sha256: "aa".into(),
            model_sha256: "bb".into(),
            probability: 0.75,
            operating_point: "default".into(),
            threshold: 0.5,
            decision: "tb".into(),
            flags: String::new(),
            lungs: "passed".into(),
            kept_image: None,
        }
    }

    #[test]
    fn rows_come_back_newest_first_with_their_json() {
        let store = Store::in_memory().unwrap();
        store
            .insert(
                &row("a", "2026-01-01T00:00:00Z"),
                &serde_json::json!({"id": "a"}),
            )
            .unwrap();
        store
            .insert(
                &row("b", "2026-01-02T00:00:00Z"),
                &serde_json::json!({"id": "b"}),
            )
            .unwrap();
        let listed = store.list(10, 0).unwrap();
        assert_eq!(
            listed.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
        assert_eq!(store.list(1, 1).unwrap()[0].id, "a");
        assert_eq!(store.result("a").unwrap().unwrap()["id"], "a");
        assert_eq!(store.result("missing").unwrap(), None);
        assert_eq!(store.count().unwrap(), 2);
    }

    #[test]
    fn a_database_of_an_older_schema_is_migrated_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.sqlite");
        {
            let connection = Connection::open(&path).unwrap();
            connection.execute_batch(MIGRATIONS[0]).unwrap();
            connection.execute_batch("PRAGMA user_version = 1").unwrap();
            connection
                .execute(
                    "INSERT INTO screenings VALUES ('old', '2025', 'n', 's', 'm', 0.1, 'default', 0.5, 'normal', '', '', '{}')",
                    [],
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let rows = store.list(10, 0).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].kept_image, None);
        let version: i64 = store
            .lock()
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version as usize, MIGRATIONS.len());
        // Opening again runs nothing twice.
        drop(store);
        assert_eq!(Store::open(&path).unwrap().count().unwrap(), 1);
    }
}
