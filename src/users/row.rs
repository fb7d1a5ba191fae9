//! One row of the users table.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

use crate::schema::users;

/// One row of the users table.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Serialize)]
#[diesel(table_name = users)]
pub struct User {
    /// Surrogate key.
    pub id: i32,
    /// The token `iss` this row belongs to: a user is the pair (issuer,
    /// sub). Empty for a row written before the column existed, until a
    /// server adopts it for its first configured issuer.
    pub issuer: String,
    /// The token `sub` this row belongs to.
    pub sub: String,
    /// When the `sub` was first accepted (UTC).
    pub created_at: NaiveDateTime,
    /// When the `sub` was last accepted (UTC), to within `last_seen_interval`.
    pub last_seen_at: NaiveDateTime,
    /// When the user was revoked (UTC): its tokens issued at or before then
    /// are refused (`users revoke`). `None`: not revoked.
    pub revoked_before: Option<NaiveDateTime>,
}
