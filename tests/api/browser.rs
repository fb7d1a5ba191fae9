//! The API in a real browser: Debian's Chromium, headless, driven by
//! playwright-core (tests/browser/). `.ci/run` installs both; the tests fail,
//! saying how to install them, when they are missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helpers::{DevServer, free_port, start_dev, wait_ready};

/// One browser at a time: the machine has two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where the screenshots go: `target/tmp/browser/`.
pub fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `tests/browser/{script}` with node against `dev`, and fails with
/// its report unless it passes.
fn run_script(script: &str, dev: &DevServer) {
    let browser_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists() && browser_dir.join("node_modules/playwright-core").exists(),
        "needs Chromium at {chromium} and playwright-core in tests/browser/node_modules: \
         run `bash scripts/install-test-tools.sh` (what .ci/run does)"
    );
    let output = Command::new("node")
        .arg(browser_dir.join(script))
        .env("CHROMIUM", &chromium)
        .env("API", &dev.address)
        .env("READER_TOKEN", &dev.tokens[1])
        .env("ADMIN_TOKEN", &dev.tokens[2])
        .env("OUT_DIR", screenshot_dir())
        .output()
        .expect("needs node (Node.js 18 or later) on PATH");
    let report = String::from_utf8_lossy(&output.stdout);
    let failure = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{script} failed:\n{failure}\n{report}");
    println!("{report}");
}

/// Runs `script` against `dev` on a free port, with the default
/// CLIENT_ORIGIN_URL (http://localhost:4040); one script at a time.
async fn run_against_dev(script: &str) {
    let _one = BROWSER.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path(), &free_port().to_string());
    wait_ready(&dev.address, &reqwest::Client::new()).await;
    run_script(script, &dev);
}

#[actix_web::test]
#[ignore = "needs chromium and node deps (installed by .ci/run)"]
async fn a_page_from_the_client_origin_calls_the_api_and_another_origin_is_blocked() {
    run_against_dev("cors.mjs").await;
}

#[actix_web::test]
#[ignore = "needs chromium and node deps (installed by .ci/run)"]
async fn the_docs_page_calls_a_protected_route_with_a_pasted_token_and_a_dev_token() {
    run_against_dev("docs.mjs").await;
    let screenshot = screenshot_dir().join("docs-page.png");
    assert!(screenshot.exists());
    eprintln!("screenshot of the docs page: {}", screenshot.display());
}
