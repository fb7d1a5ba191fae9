//! The test harness: a local issuer publishing a JWKS (wiremock), the real
//! app started in-process on port 0 against it, the binary run as a user runs
//! it, and one helper for waiting.

mod app;
mod database;
mod issuer;
mod process;

use std::time::Duration;

pub use app::*;
pub use database::*;
pub use issuer::*;
pub use process::*;

/// Polls `condition` every 20 ms for up to `limit`: the one way tests wait.
pub async fn eventually(limit: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if condition().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    condition().await
}

/// Runs each listed `async fn name(backend: Backend)` as two tests,
/// `sqlite::name` and `postgres::name`: one test body, two backends. The
/// PostgreSQL ones need the machine's server, so they are ignored unless
/// asked for (`cargo test -- --include-ignored`, as CI does).
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                #[ignore = "needs PostgreSQL at 127.0.0.1:5432 (TEST_POSTGRES_URL)"]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}
