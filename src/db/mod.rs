//! The users table: one row per token `sub`, behind a connection pool.

mod pool;
mod users;

pub use pool::{DbError, DbPool, DbSettings, connect, run_migrations};
pub use users::{KnownUser, User, UserStore};
