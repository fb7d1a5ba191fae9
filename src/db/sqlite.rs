//! The one connection the server keeps to its SQLite file, reopened when the
//! file at the path changes.
//!
//! An open SQLite connection keeps writing to a deleted file's inode, so rows
//! accepted after a deletion would vanish with the process; and the rows of a
//! moved file still in its write-ahead log stay behind at the old path
//! (`-wal`), where a new file at that path would read them as its own. So the
//! owner of the connection checks the file (one `stat`) before each use and
//! once a second. When the file has left the path, its log is checkpointed
//! into it and emptied through the old connection (a moved file then holds all
//! its rows, and the next file at the path finds no stale log), and the
//! connection is closed. Being the only connection, it needs no coordination
//! with others. A file back at the path (a restored backup, `migrate` after a
//! loss) is opened afresh; the path is never opened in a mode that would
//! create an empty file in place of the lost one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};

use crate::db::error::DbError;

/// Frames in the write-ahead log after which a commit checkpoints it
/// (SQLite's `wal_autocheckpoint`, 1000 by default): a backstop, as the
/// checkpoint thread keeps the log short (see [`Checkpointer`](crate::db::Checkpointer)).
const WRITER_CHECKPOINT_FRAMES: u32 = 10_000;

/// What tells one file from another at the same path: device and inode on
/// Unix, creation time elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdentity(u64, u64);

impl FileIdentity {
    /// The identity of the file at `path`, or `None` when there is none.
    fn of(path: &Path) -> Option<Self> {
        let metadata = std::fs::metadata(path).ok()?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            Some(Self(metadata.dev(), metadata.ino()))
        }
        #[cfg(not(unix))]
        {
            let created = metadata.created().ok()?;
            let since = created.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(Self(since.as_secs(), u64::from(since.subsec_nanos())))
        }
    }
}

/// What [`SqliteFile::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileChange {
    /// The same file as before.
    Unchanged,
    /// A file is open that was not before (the first, or a new one).
    Opened,
    /// No file is at the path.
    Missing,
}

/// A connection to whichever file is at a path.
pub(crate) struct SqliteFile {
    path: PathBuf,
    busy_timeout: Duration,
    open: Option<(FileIdentity, SqliteConnection)>,
}

impl SqliteFile {
    /// Nothing is opened until the first [`check`](Self::check).
    pub(crate) fn new(path: impl Into<PathBuf>, busy_timeout: Duration) -> Self {
        Self {
            path: path.into(),
            busy_timeout,
            open: None,
        }
    }

    /// The path this connection follows.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The connection to the file now at the path.
    pub(crate) fn connection(&mut self) -> Result<&mut SqliteConnection, DbError> {
        match self.check()? {
            FileChange::Missing => Err(DbError::FileMissing(self.path.clone())),
            FileChange::Unchanged | FileChange::Opened => match &mut self.open {
                Some((_, conn)) => Ok(conn),
                None => Err(DbError::FileMissing(self.path.clone())),
            },
        }
    }

    /// Looks at the path: closes the connection to a file that has left it,
    /// and opens the file that is there now.
    pub(crate) fn check(&mut self) -> Result<FileChange, DbError> {
        let now = FileIdentity::of(&self.path);
        if let Some((open, _)) = &self.open {
            if Some(*open) == now {
                return Ok(FileChange::Unchanged);
            }
            self.close_departed(now.is_none());
        }
        let Some(identity) = now else {
            return Ok(FileChange::Missing);
        };
        let conn = self.open_existing()?;
        // Another file may have arrived while this one was opening.
        if FileIdentity::of(&self.path) != Some(identity) {
            return Ok(FileChange::Missing);
        }
        self.open = Some((identity, conn));
        Ok(FileChange::Opened)
    }

    /// Writes the departed file's log into it, empties the log, and closes it.
    fn close_departed(&mut self, deleted: bool) {
        let Some((_, mut conn)) = self.open.take() else {
            return;
        };
        let path = self.path.display();
        if deleted {
            log::error!(
                "database file {path} was deleted while in use: requests that need the users \
                 table answer 503 until it is restored or `actix-auth0-api migrate` creates an empty one"
            );
        } else {
            log::warn!("database file {path} was replaced: reopening it");
        }
        if let Err(err) = conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)") {
            log::error!("cannot write the write-ahead log of the old {path} into it: {err}");
        }
    }

    /// Opens the file for reading and writing, never creating it: only
    /// `migrate` (and start-up, which runs it) may create the database file.
    fn open_existing(&self) -> Result<SqliteConnection, DbError> {
        let mut conn = SqliteConnection::establish(&existing_file_uri(&self.path))?;
        conn.batch_execute(&format!(
            "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
             PRAGMA wal_autocheckpoint = {WRITER_CHECKPOINT_FRAMES};",
            self.busy_timeout.as_millis()
        ))?;
        Ok(conn)
    }
}

/// The SQLite URI that opens `path` for reading and writing but never creates it.
pub(crate) fn existing_file_uri(path: &Path) -> String {
    let path = path.to_string_lossy();
    let escaped = path.replace('%', "%25").replace('?', "%3f").replace('#', "%23");
    format!("file:{escaped}?mode=rw")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbSettings, migrate};
    use diesel::RunQueryDsl;

    fn count(file: &mut SqliteFile, table: &str) -> Result<i64, DbError> {
        #[derive(diesel::QueryableByName)]
        struct Count {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let query = diesel::sql_query(format!("SELECT count(*) AS n FROM {table}"));
        Ok(query.get_result::<Count>(file.connection()?)?.n)
    }

    /// A migrated database at `dir/name`, and the server's connection to it.
    fn migrated(dir: &Path, name: &str) -> (PathBuf, SqliteFile) {
        let path = dir.join(name);
        migrate(&DbSettings::new(path.to_string_lossy())).unwrap();
        let file = SqliteFile::new(&path, Duration::from_secs(1));
        (path, file)
    }

    #[test]
    fn a_path_with_uri_characters_opens_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut file) = migrated(dir.path(), "odd ?name#with%25.db");
        assert_eq!(count(&mut file, "users").unwrap(), 0);
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            files
                .iter()
                .all(|f| f.to_string_lossy().starts_with("odd ?name#with%25.db")),
            "{files:?}"
        );
    }

    #[test]
    fn another_file_moved_to_the_path_is_opened_afresh() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path(), "users.db");
        assert_eq!(count(&mut file, "users").unwrap(), 0);

        let other = dir.path().join("restored.db");
        SqliteConnection::establish(&other.to_string_lossy())
            .unwrap()
            .batch_execute("CREATE TABLE marker (x); INSERT INTO marker VALUES (1), (2);")
            .unwrap();
        std::fs::rename(&other, &path).unwrap();
        assert_eq!(
            count(&mut file, "marker").unwrap(),
            2,
            "reads the file now at the path"
        );
    }

    #[test]
    fn a_deleted_file_is_missing_and_not_recreated() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path(), "users.db");
        assert_eq!(file.check().unwrap(), FileChange::Opened);
        std::fs::remove_file(&path).unwrap();

        assert!(matches!(count(&mut file, "users"), Err(DbError::FileMissing(p)) if p == path));
        assert_eq!(file.check().unwrap(), FileChange::Missing);
        assert!(!path.exists(), "no empty file in place of the lost one");
        let wal = std::fs::metadata(format!("{}-wal", path.display()));
        assert!(
            wal.is_err() || wal.unwrap().len() == 0,
            "no stale log for the next file"
        );
    }

    #[test]
    fn a_file_moved_away_and_back_keeps_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path(), "users.db");
        let insert =
            "INSERT INTO users (sub, created_at, last_seen_at) VALUES ('a', '2026-01-01', '2026-01-01')";
        file.connection().unwrap().batch_execute(insert).unwrap();
        let aside = dir.path().join("aside.db");
        std::fs::rename(&path, &aside).unwrap();
        assert!(matches!(count(&mut file, "users"), Err(DbError::FileMissing(_))));

        std::fs::rename(&aside, &path).unwrap();
        assert_eq!(
            count(&mut file, "users").unwrap(),
            1,
            "the row that was in the log"
        );
    }
}
