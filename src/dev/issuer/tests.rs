//! The development key's file: created once (by one of several processes
//! starting together), kept private, and never replaced when corrupt.

use super::*;
use std::os::unix::fs::PermissionsExt;

fn write_private(path: &Path, text: &str) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_key_or_folder_open_to_others_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    let issuer = || DevIssuer::open(&data, "http://127.0.0.1:6060/".into());
    issuer().unwrap();
    let key = data.join(KEY_FILE);
    for (path, mode) in [(&key, 0o640), (&key, 0o604), (&key, 0o622)] {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
        let err = issuer().err().unwrap();
        assert!(
            matches!(err, DevIssuerError::NotPrivate { .. }),
            "{mode:o}: {err}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o755)).unwrap();
    let err = issuer().err().unwrap();
    assert!(err.to_string().contains("chmod 700"), "{err}");
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    issuer().unwrap();
}

#[test]
fn the_key_is_created_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/dev");
    let first = DevIssuer::open(&data, "http://127.0.0.1:6060/".into()).unwrap();
    let again = DevIssuer::open(&data, "http://127.0.0.1:6060/".into()).unwrap();
    assert_eq!(first.key.public_jwk(), again.key.public_jwk());
    assert_eq!(first.key.kid().len(), 43, "base64url SHA-256 thumbprint");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(data.join(KEY_FILE)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn processes_starting_together_share_one_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    let jwks: Vec<serde_json::Value> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    DevIssuer::open(&data, "http://127.0.0.1:6060/".into())
                        .unwrap()
                        .public_jwks()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        jwks.windows(2).all(|pair| pair[0] == pair[1]),
        "all four use the key on disk"
    );
    let leftovers: Vec<_> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers, vec![std::ffi::OsString::from(KEY_FILE)]);
}

#[test]
fn a_corrupt_key_file_is_an_error_not_a_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("dev");
    fs::create_dir(&data).unwrap();
    fs::set_permissions(&data, fs::Permissions::from_mode(0o700)).unwrap();
    write_private(&data.join(KEY_FILE), "not a key");
    let err = DevIssuer::open(&data, "http://127.0.0.1:6060/".into())
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a usable RSA private key"), "{err}");
    assert_eq!(fs::read_to_string(data.join(KEY_FILE)).unwrap(), "not a key");
}
