//! Property: byte-level mutations of a valid token, or of a valid DPoP
//! proof, are never accepted and never cause a 5xx.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::json;

use crate::dpop::{ClientKey, bound_token};
use crate::helpers::{Backend, TestApp};

/// Bytes a client can put in a header value: visible ASCII and obs-text.
fn header_byte() -> impl Strategy<Value = u8> {
    prop_oneof![0x21u8..=0x7e, 0x80u8..=0xff]
}

/// One edit of a token's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, u8),
    Delete(prop::sample::Index),
    Truncate(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<prop::sample::Index>(), header_byte()).prop_map(|(at, byte)| Mutation::Replace(at, byte)),
        2 => (any::<prop::sample::Index>(), header_byte()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        2 => any::<prop::sample::Index>().prop_map(Mutation::Delete),
        1 => any::<prop::sample::Index>().prop_map(Mutation::Truncate),
    ]
}

fn apply(token: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = token.to_vec();
    for mutation in mutations {
        if bytes.is_empty() {
            break;
        }
        match mutation {
            Mutation::Replace(at, byte) => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            Mutation::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), *byte),
            Mutation::Delete(at) => {
                bytes.remove(at.index(bytes.len()));
            }
            Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        }
    }
    bytes
}

/// Sends 300 cases of one to three mutations of `original`, each in the
/// request `request` builds around the mutated bytes, and asserts that every
/// one is answered 401 with a JSON body. The runner is synchronous: it drives
/// its requests on a runtime of its own, in a blocking thread, while the
/// test's runtime keeps serving.
async fn every_mutation_is_refused<F>(original: Vec<u8>, request: F)
where
    F: Fn(&reqwest::Client, Vec<u8>) -> reqwest::RequestBuilder + Send + 'static,
{
    let outcome = tokio::task::spawn_blocking(move || {
        let client_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = reqwest::Client::new();
        let mut runner = TestRunner::new(Config {
            cases: 300,
            failure_persistence: None,
            ..Config::default()
        });
        runner.run(&prop::collection::vec(mutation(), 1..4), |mutations| {
            let mutated = apply(&original, &mutations);
            if mutated == original {
                return Ok(());
            }
            let status = client_runtime.block_on(async {
                let response = request(&client, mutated).send().await.unwrap();
                let status = response.status().as_u16();
                let body = response.text().await.unwrap();
                serde_json::from_str::<serde_json::Value>(&body)
                    .map_err(|_| TestCaseError::fail(format!("{status}: not JSON: {body}")))?;
                Ok::<u16, TestCaseError>(status)
            })?;
            prop_assert!(status == 401, "mutation {mutations:?} answered {status}");
            Ok(())
        })
    })
    .await
    .unwrap();
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

#[actix_web::test]
async fn mutated_tokens_are_never_accepted() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let token = app.token("auth0|victim", json!({"permissions": ["read:messages"]}));
    assert_eq!(app.get_as("/api/private-scoped", &token).await.status, 200);
    let url = format!("{}/api/private-scoped", app.address);
    every_mutation_is_refused(token.into_bytes(), move |client, mutated| {
        let mut value = b"Bearer ".to_vec();
        value.extend_from_slice(&mutated);
        client.get(&url).header("Authorization", value)
    })
    .await;
    assert!(
        app.users().iter().all(|u| u.sub == "auth0|victim"),
        "no mutated sub was recorded"
    );
}

#[actix_web::test]
async fn mutated_dpop_proofs_are_never_accepted() {
    let app = TestApp::builder(Backend::Sqlite).spawn().await;
    let key = ClientKey::es256();
    let token = bound_token(&app, "auth0|victim", &key, json!({}));
    let url = format!("{}/api/private", app.address);
    // Not used before the mutations: a mutation the server wrongly accepted
    // would be its first use.
    let proof = key.proof("GET", &url, &token);
    let authorization = format!("DPoP {token}");
    let (mutated_url, mutated_authorization) = (url.clone(), authorization.clone());
    every_mutation_is_refused(proof.clone().into_bytes(), move |client, mutated| {
        client
            .get(&mutated_url)
            .header("Authorization", &mutated_authorization)
            .header("DPoP", mutated)
    })
    .await;
    let original = app
        .client
        .get(&url)
        .header("Authorization", &authorization)
        .header("DPoP", &proof)
        .send()
        .await
        .unwrap();
    assert_eq!(original.status(), 200, "the unmutated proof was valid all along");
}
