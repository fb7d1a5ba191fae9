//! The users table: one row per accepted user, the pair (issuer, `sub`),
//! created on first sight by the [`UserStore`], written with group commit by
//! its writer.

mod revocation;
mod row;
mod store;
mod upsert;
mod writer;

pub use revocation::{revoke, revoke_unseen, unrevoke};
pub use row::User;
pub use store::{UserStore, adopt_rows_without_issuer, list};
pub(crate) use writer::WritersClosed;
