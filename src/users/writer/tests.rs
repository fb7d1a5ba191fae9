//! The group commit's batches, and a SQLite batch as written.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeDelta};

use crate::db::{DbSettings, migrate};
use crate::users::store::list;
use crate::users::writer::databases::{Database, Sqlite};
use crate::users::writer::{Job, Notify, take_batch};

fn sqlite(settings: &DbSettings) -> Sqlite {
    migrate(settings).unwrap();
    Sqlite::new(settings, Arc::new(AtomicU64::new(0)))
}

fn moment(text: &str) -> NaiveDateTime {
    text.parse().unwrap()
}

#[test]
fn a_sqlite_batch_writes_every_sub_as_given_and_tells_new_rows_from_found_ones() {
    let dir = tempfile::tempdir().unwrap();
    let settings = DbSettings::new(dir.path().join("users.db").to_string_lossy());
    let mut db = sqlite(&settings);
    // The subs travel as a JSON array: quotes, escapes and JSON of their own stay text.
    let long = "x".repeat(255);
    let subs = [
        "auth0|plain",
        "quote\"d",
        "back\\slash",
        "it's",
        "ünïcödé 🙂",
        "[\"an array\"]",
        "{\"an\":\"object\"}",
        "null",
        "?1",
        " padded ",
        long.as_str(),
    ];
    let first_seen = moment("2026-11-26T01:02:03.456789");
    let users: Vec<(&str, &str)> = subs.iter().map(|sub| (ISSUER, *sub)).collect();
    let rows = db.upsert_all(&users, first_seen).unwrap();
    assert!(rows.iter().all(|row| row.issuer == ISSUER), "{rows:?}");
    assert!(rows.iter().all(|row| row.created), "{rows:?}");
    let mut written: Vec<&str> = rows.iter().map(|row| row.sub.as_str()).collect();
    written.sort_unstable();
    let mut expected = subs.to_vec();
    expected.sort_unstable();
    assert_eq!(written, expected);

    let later = first_seen + TimeDelta::seconds(300);
    let again = db
        .upsert_all(
            &[
                (ISSUER, "auth0|new"),
                (ISSUER, "quote\"d"),
                (ISSUER, "ünïcödé 🙂"),
            ],
            later,
        )
        .unwrap();
    let created: Vec<&str> = again
        .iter()
        .filter(|row| row.created)
        .map(|row| row.sub.as_str())
        .collect();
    assert_eq!(created, ["auth0|new"]);
    for row in again.iter().filter(|row| !row.created) {
        let before = rows.iter().find(|first| first.sub == row.sub).unwrap();
        assert_eq!(row.id, before.id, "a found row keeps its id");
    }

    let table = list(&settings).unwrap();
    assert_eq!(table.len(), subs.len() + 1);
    let quoted = table.iter().find(|user| user.sub == "quote\"d").unwrap();
    assert_eq!((quoted.created_at, quoted.last_seen_at), (first_seen, later));
    let plain = table.iter().find(|user| user.sub == "auth0|plain").unwrap();
    assert_eq!((plain.created_at, plain.last_seen_at), (first_seen, first_seen));
    let new = table.iter().find(|user| user.sub == "auth0|new").unwrap();
    assert_eq!((new.created_at, new.last_seen_at), (later, later));
}

const ISSUER: &str = "https://tenant.example.com/";

fn refresh(sub: &str) -> Job {
    Job::Upsert {
        issuer: ISSUER.into(),
        sub: sub.to_owned(),
        notify: Notify::Refresh(Box::new(|_| {})),
    }
}

/// The size of the batch taken when one job is queued and a second
/// follows 10 ms later.
fn batch_of_two_arriving_apart(storm: bool) -> usize {
    let (jobs, queue) = std::sync::mpsc::channel();
    jobs.send(refresh("auth0|first")).unwrap();
    let late = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        jobs.send(refresh("auth0|second")).unwrap();
    });
    let batch = take_batch(&queue, storm, Duration::from_millis(500)).unwrap();
    late.join().unwrap();
    batch.len()
}

#[test]
fn a_lone_row_waits_for_company_in_a_storm_only() {
    assert_eq!(batch_of_two_arriving_apart(true), 2);
    assert_eq!(batch_of_two_arriving_apart(false), 1, "no storm: written at once");
}
