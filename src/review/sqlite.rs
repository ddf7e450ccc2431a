//! Reviews in a SQLite file: WAL mode and a busy timeout, so several explorers (several
//! readers on one server, or one reader in two terminals) write at once; the schema is
//! versioned (`user_version`) and migrated from the first version on; `application_id` marks
//! the file as kneecam's, so any other file is refused before anything is written to it.
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::{Contents, Query, ReviewError, ReviewStore, Truth, Undo, Verdict};

/// "KNCR" in the file header's application_id.
pub const APPLICATION_ID: i32 = 0x4B4E_4352;
/// How long a write waits for another writer before it fails (and is retried).
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema, one step per version: MIGRATIONS[n] takes version n to n + 1.
const MIGRATIONS: &[&str] = &[
    // 1: verdicts and undos, both append-only.
    "CREATE TABLE verdicts (
        uid TEXT PRIMARY KEY NOT NULL,
        dataset_fingerprint TEXT NOT NULL,
        dataset_path TEXT NOT NULL,
        split TEXT NOT NULL,
        exam TEXT NOT NULL,
        task TEXT NOT NULL,
        reader TEXT NOT NULL,
        verdict TEXT NOT NULL CHECK (verdict IN ('positive', 'negative', 'unsure')),
        note TEXT,
        probability REAL,
        model_call TEXT CHECK (model_call IN ('positive', 'negative')),
        threshold REAL NOT NULL,
        label TEXT CHECK (label IN ('positive', 'negative')),
        models_fingerprint TEXT NOT NULL,
        method TEXT NOT NULL,
        seconds REAL NOT NULL,
        recorded_at INTEGER NOT NULL
    );
    CREATE INDEX verdicts_by_case
        ON verdicts (dataset_fingerprint, task, reader, split, exam, recorded_at);
    CREATE TABLE undos (
        verdict_uid TEXT PRIMARY KEY NOT NULL,
        reader TEXT NOT NULL,
        undone_at INTEGER NOT NULL
    );",
];

/// The schema version this kneecam writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

const COLUMNS: &str = "uid, dataset_fingerprint, dataset_path, split, exam, task, reader, \
    verdict, note, probability, model_call, threshold, label, models_fingerprint, method, \
    seconds, recorded_at";

pub struct SqliteStore {
    path: PathBuf,
    connection: Connection,
}

impl SqliteStore {
    /// Opens the review database at `path`, creating it (and its folder) when it does not
    /// exist. A file that is not a kneecam review database, or one of a newer schema, is
    /// refused and left as it was.
    pub fn open(path: &Path) -> Result<SqliteStore, ReviewError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|error| ReviewError::Io {
                path: path.to_path_buf(),
                doing: format!("creating the folder {}", parent.display()),
                error,
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .map_err(|e| sqlite_error(path, "opening", e))?;
        Self::prepare(path, connection)
    }

    /// Opens an existing review database for reading only (`review summary`, `export`, the
    /// inputs of `merge`).
    pub fn open_read_only(path: &Path) -> Result<SqliteStore, ReviewError> {
        if !path.is_file() {
            return Err(ReviewError::Io {
                path: path.to_path_buf(),
                doing: "opening".into(),
                error: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        // Read-write without CREATE, every write refused (query_only), rather than
        // SQLITE_OPEN_READ_ONLY: a read-only connection to a WAL database creates its -wal
        // and -shm files and, unable to checkpoint, leaves them behind on close; this one, the
        // last connection to close, removes them. A write-protected file is opened read-only.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags)
            .map_err(|e| sqlite_error(path, "opening", e))?;
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite_error(path, "setting the busy timeout", e))?;
        connection
            .pragma_update(None, "query_only", true)
            .map_err(|e| sqlite_error(path, "refusing writes", e))?;
        let store = SqliteStore {
            path: path.to_path_buf(),
            connection,
        };
        match store.inspect()? {
            Found::Kneecam => Ok(store),
            Found::Empty => Err(ReviewError::Foreign {
                path: path.to_path_buf(),
                detail: "an empty database".into(),
            }),
        }
    }

    fn prepare(path: &Path, connection: Connection) -> Result<SqliteStore, ReviewError> {
        connection
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| sqlite_error(path, "setting the busy timeout", e))?;
        let mut store = SqliteStore {
            path: path.to_path_buf(),
            connection,
        };
        let found = store.inspect()?;
        let read_only = store
            .connection
            .is_readonly(rusqlite::MAIN_DB)
            .unwrap_or(false);
        if read_only {
            // Readable still (the explorer shows the verdicts; writes fail and are retried).
            return match found {
                Found::Kneecam => Ok(store),
                Found::Empty => Err(ReviewError::ReadOnly(path.to_path_buf())),
            };
        }
        store.migrate()?;
        store
            .connection
            .query_row("PRAGMA journal_mode = WAL", [], |row| {
                row.get::<_, String>(0)
            })
            .map_err(|e| store.error("turning on WAL mode", e))?;
        // A verdict is on disk when its write returns (WAL with FULL syncs each commit).
        store
            .connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| store.error("setting synchronous", e))?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file is, refusing anything but an empty database or a kneecam review
    /// database this kneecam can read.
    fn inspect(&self) -> Result<Found, ReviewError> {
        let connection = &self.connection;
        let application_id: i32 = connection
            .pragma_query_value(None, "application_id", |row| row.get(0))
            .map_err(|e| self.error("reading the header", e))?;
        let version: i64 = connection
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| self.error("reading the schema version", e))?;
        let tables = self.tables()?;
        if application_id == APPLICATION_ID {
            if version > SCHEMA_VERSION {
                return Err(ReviewError::Newer {
                    path: self.path.clone(),
                    found: version,
                    known: SCHEMA_VERSION,
                });
            }
            return Ok(Found::Kneecam);
        }
        if application_id == 0 && tables.is_empty() {
            return Ok(Found::Empty);
        }
        let detail = match (application_id, tables.as_slice()) {
            (0, tables) => format!("its tables: {}", shortlist(tables)),
            (id, []) => format!("application_id {id:#x}"),
            (id, tables) => format!("application_id {id:#x}, tables: {}", shortlist(tables)),
        };
        Err(ReviewError::Foreign {
            path: self.path.clone(),
            detail,
        })
    }

    fn tables(&self) -> Result<Vec<String>, ReviewError> {
        let mut statement = self
            .connection
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .map_err(|e| self.error("listing the tables", e))?;
        let names = statement
            .query_map([], |row| row.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.error("listing the tables", e))?;
        Ok(names)
    }

    /// Takes the schema to [`SCHEMA_VERSION`], in one transaction (another kneecam may be
    /// migrating the same file: the version is read again inside it).
    fn migrate(&mut self) -> Result<(), ReviewError> {
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(&path, "starting the migration", e))?;
        let version: i64 = transaction
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| sqlite_error(&path, "reading the schema version", e))?;
        if version > SCHEMA_VERSION {
            return Err(ReviewError::Newer {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        if version == SCHEMA_VERSION {
            return Ok(());
        }
        for (step, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            transaction.execute_batch(sql).map_err(|e| {
                sqlite_error(&path, &format!("migrating to schema {}", step + 1), e)
            })?;
        }
        transaction
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .and_then(|_| transaction.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|_| transaction.commit())
            .map_err(|e| sqlite_error(&path, "finishing the migration", e))
    }

    /// One write in an immediate transaction, after checking that no newer kneecam changed
    /// the schema meanwhile.
    fn write(
        &mut self,
        doing: &str,
        write: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<()>,
    ) -> Result<(), ReviewError> {
        let path = self.path.clone();
        let transaction = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| sqlite_error(&path, doing, e))?;
        let version: i64 = transaction
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| sqlite_error(&path, doing, e))?;
        if version != SCHEMA_VERSION {
            return Err(ReviewError::Newer {
                path,
                found: version,
                known: SCHEMA_VERSION,
            });
        }
        write(&transaction)
            .and_then(|_| transaction.commit())
            .map_err(|e| sqlite_error(&path, doing, e))
    }

    fn error(&self, doing: &str, error: rusqlite::Error) -> ReviewError {
        sqlite_error(&self.path, doing, error)
    }

    fn select(
        &self,
        sql: &str,
        bind: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<Verdict>, ReviewError> {
        let mut statement = self
            .connection
            .prepare(sql)
            .map_err(|e| self.error("reading verdicts", e))?;
        let rows = statement
            .query_map(bind, raw_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.error("reading verdicts", e))?;
        rows.into_iter().map(|row| row.parse(&self.path)).collect()
    }
}

enum Found {
    Empty,
    Kneecam,
}

impl ReviewStore for SqliteStore {
    fn record(&mut self, verdict: &Verdict) -> Result<(), ReviewError> {
        self.write("storing a verdict", |t| {
            insert_verdict(t, verdict).map(|_| ())
        })
    }

    fn undo(&mut self, undo: &Undo) -> Result<(), ReviewError> {
        self.write("storing an undo", |t| insert_undo(t, undo).map(|_| ()))
    }

    fn verdicts(&self, query: &Query) -> Result<Vec<Verdict>, ReviewError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM verdicts
             WHERE uid NOT IN (SELECT verdict_uid FROM undos)
               AND (?1 IS NULL OR dataset_fingerprint = ?1)
               AND (?2 IS NULL OR task = ?2)
               AND (?3 IS NULL OR reader = ?3)
             ORDER BY recorded_at, uid"
        );
        let task = query.task.map(|t| t.name());
        self.select(&sql, &[&query.dataset_fingerprint, &task, &query.reader])
    }

    fn contents(&self) -> Result<Contents, ReviewError> {
        let verdicts = self.select(
            &format!("SELECT {COLUMNS} FROM verdicts ORDER BY recorded_at, uid"),
            &[],
        )?;
        let mut statement = self
            .connection
            .prepare("SELECT verdict_uid, reader, undone_at FROM undos ORDER BY undone_at")
            .map_err(|e| self.error("reading undos", e))?;
        let undos = statement
            .query_map([], |row| {
                Ok(Undo {
                    verdict_uid: row.get(0)?,
                    reader: row.get(1)?,
                    undone_at: row.get(2)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.error("reading undos", e))?;
        Ok(Contents { verdicts, undos })
    }

    fn import(&mut self, contents: &Contents) -> Result<(usize, usize), ReviewError> {
        let mut added = (0, 0);
        self.write("merging", |t| {
            for verdict in &contents.verdicts {
                added.0 += insert_verdict(t, verdict)?;
            }
            for undo in &contents.undos {
                added.1 += insert_undo(t, undo)?;
            }
            Ok(())
        })?;
        Ok(added)
    }

    fn describe(&self) -> String {
        self.path.display().to_string()
    }
}

/// Inserts `verdict` unless its uid is stored already (a retried write, a merged copy);
/// returns the rows added.
fn insert_verdict(t: &rusqlite::Transaction, verdict: &Verdict) -> rusqlite::Result<usize> {
    t.execute(
        &format!(
            "INSERT OR IGNORE INTO verdicts ({COLUMNS})
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
        ),
        params![
            verdict.uid,
            verdict.dataset.fingerprint,
            verdict.dataset.path,
            verdict.split.name(),
            verdict.exam,
            verdict.task.name(),
            verdict.reader,
            verdict.truth.name(),
            verdict.note,
            verdict.probability.map(f64::from),
            verdict.model_call.map(call_name),
            f64::from(verdict.threshold),
            verdict.label.map(call_name),
            verdict.models_fingerprint,
            verdict.method,
            verdict.seconds,
            verdict.recorded_at,
        ],
    )
}

fn insert_undo(t: &rusqlite::Transaction, undo: &Undo) -> rusqlite::Result<usize> {
    t.execute(
        "INSERT OR IGNORE INTO undos (verdict_uid, reader, undone_at) VALUES (?1, ?2, ?3)",
        params![undo.verdict_uid, undo.reader, undo.undone_at],
    )
}

fn call_name(call: bool) -> &'static str {
    Truth::of_call(call).name()
}

/// A SQLite failure as what it means for the user: read-only, full, locked, not a database.
fn sqlite_error(path: &Path, doing: &str, error: rusqlite::Error) -> ReviewError {
    let path = path.to_path_buf();
    match error.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => ReviewError::NotDatabase(path),
        Some(ErrorCode::ReadOnly) => ReviewError::ReadOnly(path),
        Some(ErrorCode::DiskFull) => ReviewError::Full(path),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => ReviewError::Busy {
            path,
            seconds: BUSY_TIMEOUT.as_secs(),
        },
        _ => ReviewError::Sqlite {
            path,
            doing: doing.to_string(),
            message: error.to_string(),
        },
    }
}

fn shortlist(names: &[String]) -> String {
    let mut text = names.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    if names.len() > 5 {
        text.push_str(&format!(" and {} more", names.len() - 5));
    }
    text
}

/// Whether `path` holds a kneecam review database (without changing it).
pub fn is_review_database(path: &Path) -> bool {
    SqliteStore::open_read_only(path).is_ok()
}

mod row;
use row::raw_row;

#[cfg(test)]
mod tests;
