//! Checkpoints of the SQLite write-ahead log, off the writer's thread.
//!
//! SQLite copies the log back into the database file (a checkpoint, with
//! two `fsync`s) from inside a commit once the log passes 1000 pages, so
//! the request whose row closes that commit waits for the disk. Here a
//! thread of its own does it instead, a moment after commits have been
//! signalled ([`CHECKPOINT_PACE`]); the writer's own automatic checkpoint
//! stays as a backstop, at ten times the usual size. A log is only
//! restarted from its start once a checkpoint has copied all of it, which
//! commits that never pause do not allow: then the log grows to the
//! backstop, and the thread checkpoints ten times as often so that the
//! writer's checkpoint, when it comes, has little left to copy.
//!
//! Each checkpoint opens a connection to whichever file is at the path
//! and closes it again, so this thread holds no file open and follows no
//! file: a file that has left the path is the writer's to deal with (see
//! [`SqliteFile`](crate::db::SqliteFile)), and a missing one is never
//! created.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, RunQueryDsl, SqliteConnection};

use crate::db::error::DbError;
use crate::db::sqlite::existing_file_uri;

/// How soon after a signalled commit the checkpoint runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pace {
    /// While the log stays short: one checkpoint covers the commits of that
    /// moment, and a quiet server pays few `fsync`s.
    pub(crate) calm: Duration,
    /// Once a checkpoint has found [`STORM_FRAMES`] or more in the log:
    /// commits keep coming, so the log is never restarted and grows towards
    /// the writer's backstop. Checkpointing often keeps the part not yet
    /// copied short, and with it the writer's own checkpoint when it comes.
    pub(crate) storm: Duration,
}

/// The server's pace.
pub(crate) const CHECKPOINT_PACE: Pace = Pace {
    calm: Duration::from_millis(100),
    storm: Duration::from_millis(10),
};

/// Frames in the log from which a storm is assumed (SQLite's own automatic
/// checkpoint starts at 1000).
const STORM_FRAMES: i64 = 1000;

impl Pace {
    /// The delay before the next checkpoint, given the frames the last one
    /// found in the log.
    fn after(self, log_frames: i64) -> Duration {
        if log_frames >= STORM_FRAMES {
            self.storm
        } else {
            self.calm
        }
    }
}

/// The sending side: wakes the checkpoint thread. Dropping it ends the thread.
pub(crate) struct Checkpointer {
    commits: SyncSender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Checkpointer {
    /// Starts the thread that checkpoints the file at `path` after signalled
    /// commits, at `pace`.
    pub(crate) fn start(path: PathBuf, busy_timeout: Duration, pace: Pace) -> Self {
        // One pending signal is enough: it stands for every commit until
        // the thread takes it.
        let (commits, signals) = std::sync::mpsc::sync_channel(1);
        let thread = crate::background::spawn("users-checkpoint", move || {
            run(&path, busy_timeout, pace, &signals)
        });
        Self { commits, thread }
    }

    /// Ends the thread, once it has run the checkpoint still due.
    pub(crate) fn stop(self) {
        drop(self.commits);
        // A panic there has been reported by the panic hook already.
        let _ = self.thread.join();
    }

    /// Signals a commit; never waits.
    pub(crate) fn committed(&self) {
        let _ = self.commits.try_send(());
    }
}

fn run(path: &Path, busy_timeout: Duration, pace: Pace, signals: &Receiver<()>) {
    let mut delay = pace.calm;
    while signals.recv().is_ok() {
        std::thread::sleep(delay);
        let closing = matches!(signals.try_recv(), Err(TryRecvError::Disconnected));
        match checkpoint(path, busy_timeout) {
            Ok(log_frames) => delay = pace.after(log_frames),
            Err(err) => log::warn!(
                "cannot checkpoint the write-ahead log of {}: {err}",
                path.display()
            ),
        }
        if closing {
            break;
        }
    }
}

/// What `PRAGMA wal_checkpoint` answers.
#[derive(diesel::QueryableByName)]
struct Checkpointed {
    /// Frames in the log.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    log: i64,
}

/// Copies into the file at `path` what its log holds, without waiting for
/// or blocking its writer (`PASSIVE`); returns the frames in the log.
fn checkpoint(path: &Path, busy_timeout: Duration) -> Result<i64, DbError> {
    let mut conn = SqliteConnection::establish(&existing_file_uri(path))?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {};", busy_timeout.as_millis()))?;
    let done: Checkpointed = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(&mut conn)?;
    Ok(done.log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{DbSettings, SqliteFile, migrate};
    use std::time::Instant;

    const AT_ONCE: Pace = Pace {
        calm: Duration::ZERO,
        storm: Duration::ZERO,
    };

    #[test]
    fn a_long_log_brings_the_next_checkpoint_closer() {
        assert_eq!(CHECKPOINT_PACE.after(0), CHECKPOINT_PACE.calm);
        assert_eq!(CHECKPOINT_PACE.after(STORM_FRAMES - 1), CHECKPOINT_PACE.calm);
        assert_eq!(CHECKPOINT_PACE.after(STORM_FRAMES), CHECKPOINT_PACE.storm);
        assert!(CHECKPOINT_PACE.storm < CHECKPOINT_PACE.calm);
    }

    #[test]
    fn a_checkpoint_reports_the_frames_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path());
        insert_rows(&mut file, 2000);
        let frames = checkpoint(&path, Duration::from_secs(1)).unwrap();
        assert!(frames > 0, "{frames}");
        assert_eq!(
            checkpoint(&path, Duration::from_secs(1)).unwrap(),
            frames,
            "nothing written since"
        );
    }

    /// A migrated file, and the writer's connection to it (with its
    /// automatic checkpoint as the server sets it).
    fn migrated(dir: &std::path::Path) -> (PathBuf, SqliteFile) {
        let path = dir.join("users.db");
        migrate(&DbSettings::new(path.to_string_lossy())).unwrap();
        let file = SqliteFile::new(&path, Duration::from_secs(1));
        (path, file)
    }

    fn insert_rows(file: &mut SqliteFile, n: usize) {
        let values: Vec<String> = (0..n)
            .map(|i| format!("('user-{i:05}', '2026-01-01', '2026-01-01')"))
            .collect();
        let sql = format!(
            "INSERT INTO users (sub, created_at, last_seen_at) VALUES {}",
            values.join(",")
        );
        file.connection().unwrap().batch_execute(&sql).unwrap();
    }

    fn file_len(path: &std::path::Path) -> u64 {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }

    /// True once `condition` holds, false if it does not within five seconds.
    fn within_seconds(mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if condition() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    #[test]
    fn a_signalled_commit_reaches_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path());
        insert_rows(&mut file, 2000);
        let before = file_len(&path);
        let checkpointer = Checkpointer::start(path.clone(), Duration::from_secs(1), AT_ONCE);
        assert_eq!(
            file_len(&path),
            before,
            "nothing is copied before a commit is signalled"
        );
        checkpointer.committed();
        assert!(
            within_seconds(|| file_len(&path) > before),
            "the rows' pages are copied from the log into the file"
        );
    }

    #[test]
    fn the_writer_no_longer_checkpoints_at_a_thousand_pages() {
        let dir = tempfile::tempdir().unwrap();
        let (path, mut file) = migrated(dir.path());
        let before = file_len(&path);
        // About 1500 pages of log, past SQLite's default of 1000.
        for batch in 0..60 {
            let values: Vec<String> = (0..100)
                .map(|i| format!("('{batch}-{i}-{}', '2026-01-01', '2026-01-01')", "x".repeat(200)))
                .collect();
            let sql = format!(
                "INSERT INTO users (sub, created_at, last_seen_at) VALUES {}",
                values.join(",")
            );
            file.connection().unwrap().batch_execute(&sql).unwrap();
        }
        assert_eq!(file_len(&path), before, "the rows are still only in the log");
    }

    #[test]
    fn a_missing_file_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.db");
        let checkpointer = Checkpointer::start(path.clone(), Duration::from_secs(1), AT_ONCE);
        checkpointer.committed();
        checkpointer.stop();
        assert!(!path.exists(), "no database file appears at the path");
    }
}
