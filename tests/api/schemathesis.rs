//! Schemathesis (tests/schemathesis/, from PyPI) against `dev`, with a token
//! granting every permission: every check it has (no 5xx, status codes,
//! content types, headers and bodies as documented, refusals without valid
//! credentials...), and any of its warnings, fail the test.

use std::path::Path;
use std::process::Command;

use crate::helpers::{binary_in, free_port, start_dev, wait_ready};

#[actix_web::test]
#[ignore = "needs schemathesis (installed by .ci/run)"]
async fn schemathesis_finds_the_api_as_documented() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schemathesis");
    let schemathesis = std::env::var("SCHEMATHESIS")
        .map(Into::into)
        .unwrap_or_else(|_| here.join(".venv/bin/schemathesis"));
    assert!(
        schemathesis.exists(),
        "needs schemathesis at {}: run `bash scripts/install-test-tools.sh` (what .ci/run does)",
        schemathesis.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let dev = start_dev(dir.path(), &free_port().to_string());
    wait_ready(&dev.address, &reqwest::Client::new()).await;
    // A token granting every permission, from a multi-factor login just
    // now, so that every route can answer 200.
    let token = binary_in(dir.path())
        .args(&[
            "token",
            "--sub",
            "schemathesis|1",
            "--permissions",
            "read:messages,read:admin-messages",
            "--acr",
            "http://schemas.openid.net/pape/policies/2007/06/multi-factor",
            "--auth-time",
            "now",
        ])
        .stdout();
    let output = Command::new(&schemathesis)
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", dev.address)])
        .args(["--checks", "all"])
        .args(["--header", &format!("Authorization: Bearer {}", token.trim())])
        .env("NO_COLOR", "1")
        // Its cache folder goes there, not into the repository.
        .current_dir(dir.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        report.contains("Tested: 12"),
        "every operation but the document itself:\n{report}"
    );
    println!("{report}");
}
