//! Revoking a user: its tokens issued at or before the revocation are
//! refused, by every instance, whatever caches hold them. The time is the
//! users row's `revoked_before`, written by `users revoke`; each instance
//! reads the revoked rows again every [`POLL`] on a thread of its own, so
//! a revocation reaches every instance within about a second, with no
//! message to lose between them. A token issued after it works again: the
//! user logs in anew.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use chrono::{NaiveDateTime, Utc};
use diesel::prelude::*;

use crate::db::{DbError, DbSettings, PgSession, SqliteFile, with_connection};
use crate::schema::users;
use crate::users::row::User;

/// How often each instance reads the revoked rows.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// Revocation times by issuer, then `sub`: looked up with borrowed keys.
type ByIssuer = HashMap<String, HashMap<String, NaiveDateTime>>;

/// The revoked users, as last read from the database.
#[derive(Debug, Default)]
pub(crate) struct Revocations {
    /// True when any user is revoked: the usual case, none, costs one load.
    any: AtomicBool,
    revoked: RwLock<ByIssuer>,
}

impl Revocations {
    /// True when a token of `sub` of `issuer` issued at `issued_at`
    /// (seconds since 1970; `None`: it does not say) is revoked: issued at
    /// or before the user's revocation, or revoked without saying when it
    /// was issued.
    pub(crate) fn refuses(&self, issuer: &str, sub: &str, issued_at: Option<u64>) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return false;
        }
        let revoked = self.revoked.read().unwrap_or_else(PoisonError::into_inner);
        let Some(before) = revoked.get(issuer).and_then(|subs| subs.get(sub)) else {
            return false;
        };
        let before = before.and_utc().timestamp().max(0) as u64;
        issued_at.is_none_or(|issued_at| issued_at <= before)
    }

    fn replace(&self, revoked: ByIssuer) {
        let any = !revoked.is_empty();
        *self.revoked.write().unwrap_or_else(PoisonError::into_inner) = revoked;
        self.any.store(any, Ordering::Release);
    }

    /// Reads the revoked rows every [`POLL`] on a thread of its own, for as
    /// long as `revocations` is used. A failed read keeps what was read
    /// last, and is logged once until a read succeeds again.
    pub(crate) fn keep_current(revocations: &Arc<Self>, settings: &DbSettings) {
        let revocations = Arc::downgrade(revocations);
        let mut database = Database::new(settings);
        crate::background::spawn("revocations", move || {
            let mut failing = false;
            while let Some(revocations) = Weak::upgrade(&revocations) {
                match database.revoked() {
                    Ok(revoked) => {
                        if failing {
                            log::info!("revoked users are read again");
                        }
                        failing = false;
                        revocations.replace(revoked);
                    }
                    Err(err) if !failing => {
                        failing = true;
                        log::warn!("cannot read the revoked users (the last read stays in force): {err}");
                    }
                    Err(_) => {}
                }
                drop(revocations);
                std::thread::sleep(POLL);
            }
        });
    }
}

/// The connection the revocations are read through.
enum Database {
    Sqlite(SqliteFile),
    Postgres(PgSession),
}

impl Database {
    fn new(settings: &DbSettings) -> Self {
        if settings.is_postgres() {
            Self::Postgres(PgSession::new(settings.clone(), None))
        } else {
            Self::Sqlite(SqliteFile::new(&settings.url, settings.connect_timeout))
        }
    }

    fn revoked(&mut self) -> Result<ByIssuer, DbError> {
        let query = || {
            users::table.filter(users::revoked_before.is_not_null()).select((
                users::issuer,
                users::sub,
                users::revoked_before,
            ))
        };
        let rows: Vec<(String, String, Option<NaiveDateTime>)> = match self {
            Self::Sqlite(file) => query().load(file.connection()?)?,
            Self::Postgres(session) => session.with_retry(|conn| query().load(conn))?,
        };
        let mut revoked = ByIssuer::new();
        for (issuer, sub, before) in rows {
            if let Some(before) = before {
                revoked.entry(issuer).or_default().insert(sub, before);
            }
        }
        Ok(revoked)
    }
}

/// Revokes `sub` (of `issuer`, or of every issuer it has a row of): its
/// tokens issued until now are refused. The rows revoked: none for a user
/// not seen yet (see [`revoke_unseen`]).
pub fn revoke(settings: &DbSettings, sub: &str, issuer: Option<&str>) -> Result<Vec<User>, DbError> {
    set_revoked_before(settings, sub, issuer, Some(Utc::now().naive_utc()))
}

/// Revokes `sub` of `issuer`, not seen yet: its row is made to hold the
/// revocation, so that a token issued before now is refused when it comes.
pub fn revoke_unseen(settings: &DbSettings, sub: &str, issuer: &str) -> Result<User, DbError> {
    let now = Utc::now().naive_utc();
    let row = (
        users::issuer.eq(issuer),
        users::sub.eq(sub),
        users::created_at.eq(now),
        users::last_seen_at.eq(now),
        users::revoked_before.eq(Some(now)),
    );
    Ok(with_connection!(settings, |conn| diesel::insert_into(
        users::table
    )
    .values(row)
    .returning(User::as_returning())
    .get_result(conn)?))
}

/// Lifts the revocation of `sub` (of `issuer`, or of every issuer): the
/// rows no longer revoked.
pub fn unrevoke(settings: &DbSettings, sub: &str, issuer: Option<&str>) -> Result<Vec<User>, DbError> {
    set_revoked_before(settings, sub, issuer, None)
}

fn set_revoked_before(
    settings: &DbSettings,
    sub: &str,
    issuer: Option<&str>,
    before: Option<NaiveDateTime>,
) -> Result<Vec<User>, DbError> {
    Ok(with_connection!(settings, |conn| {
        let matching = users::table.filter(users::sub.eq(sub)).into_boxed();
        let matching = match issuer {
            Some(issuer) => matching.filter(users::issuer.eq(issuer)),
            None => matching,
        };
        let ids: Vec<i32> = matching.select(users::id).load(conn)?;
        diesel::update(users::table.filter(users::id.eq_any(ids)))
            .set(users::revoked_before.eq(before))
            .returning(User::as_returning())
            .get_results(conn)?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn revoked_at(issuer: &str, sub: &str, at: i64) -> Revocations {
        let revocations = Revocations::default();
        let at = DateTime::from_timestamp(at, 0).unwrap().naive_utc();
        revocations.replace(HashMap::from([(
            issuer.into(),
            HashMap::from([(sub.into(), at)]),
        )]));
        revocations
    }

    #[test]
    fn tokens_issued_until_the_revocation_are_refused_and_later_ones_not() {
        let revocations = revoked_at("https://a/", "auth0|x", 1_000);
        assert!(revocations.refuses("https://a/", "auth0|x", Some(999)));
        assert!(
            revocations.refuses("https://a/", "auth0|x", Some(1_000)),
            "the same second"
        );
        assert!(
            revocations.refuses("https://a/", "auth0|x", None),
            "no iat: cannot tell"
        );
        assert!(!revocations.refuses("https://a/", "auth0|x", Some(1_001)));
        // The same sub of another issuer is another user.
        assert!(!revocations.refuses("https://b/", "auth0|x", Some(1)));
        assert!(!revocations.refuses("https://a/", "auth0|y", Some(1)));
        revocations.replace(ByIssuer::new());
        assert!(!revocations.refuses("https://a/", "auth0|x", Some(999)), "lifted");
    }
}
