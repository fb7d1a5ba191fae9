//! The checks of one DPoP proof (RFC 9449 section 4.3), all but its
//! signature and its replay: a JWS whose header carries the key it is
//! signed with (`jwk`) and whose claims name the request it was made for
//! (`htm`, `htu`), when (`iat`), a unique id (`jti`), the hash of the
//! access token it goes with (`ath`) and, when the API issues them, a
//! server nonce. Also the request a proof must describe ([`Target`]).

use aws_lc_rs::digest::{SHA256, digest};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::auth::dpop::key::{Jwk, ProofKey, proof_key};
use crate::auth::dpop::nonces::Nonces;
use crate::auth::error::{AuthError, bad_proof};
use crate::auth::jose::{CompactJws, HeaderFault, Malformed, Typ, check_header, present, within_depth};
use crate::auth::public_url::normalize_url;

/// The request a proof must describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target<'a> {
    /// The request's method (`htm`).
    pub(crate) method: &'a str,
    /// Its URL without query and fragment, normalized (`htu`).
    pub(crate) url: String,
}

/// A proof's JOSE header. Derived deserialization refuses a member given
/// twice.
#[derive(Deserialize)]
struct ProofHeader {
    typ: Option<String>,
    alg: String,
    jwk: Option<Jwk>,
    /// Present at all, even as `null` or `[]`.
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// The proof's claims; a member given twice is refused.
#[derive(Deserialize)]
struct ProofClaims {
    jti: Option<String>,
    htm: Option<String>,
    htu: Option<String>,
    iat: Option<serde_json::Number>,
    ath: Option<String>,
    nonce: Option<String>,
}

/// A proof's `typ` (RFC 9449 section 4.2).
const PROOF_TYP: Typ = Typ {
    accepted: &["dpop+jwt"],
    required: true,
};

/// Decoded JSON, refused when it nests too deeply.
fn json(bytes: Vec<u8>) -> Result<Vec<u8>, Malformed> {
    within_depth(&bytes).map(|()| bytes)
}

/// A proof that passed every check but its signature and its `jti`.
pub(super) struct Checked<'a> {
    pub(super) key: ProofKey,
    pub(super) thumbprint: String,
    pub(super) signing_input: &'a [u8],
    pub(super) signature: Vec<u8>,
    pub(super) jti: String,
    /// The last second at which its `iat` is still acceptable: at most
    /// `window` + `ahead` after now.
    pub(super) expires: u64,
}

/// Reads `proof` and checks everything but its signature and its `jti`
/// (and its `nonce`, when `nonces` are issued); its `iat` must lie from
/// `window` seconds before `now` to `ahead` seconds after.
pub(super) fn check<'a>(
    proof: &'a str,
    access_token: &str,
    target: &Target<'_>,
    now: u64,
    window: u64,
    ahead: u64,
    nonces: Option<&Nonces>,
) -> Result<Checked<'a>, AuthError> {
    let malformed = |why: Malformed| AuthError::InvalidDpopProof(format!("malformed DPoP proof: {why}"));
    let jws = CompactJws::split(proof).map_err(malformed)?;
    // Each part is decoded as it is needed: the header's key is checked
    // before the payload is read, the claims before the signature.
    let header = jws.header().and_then(json).map_err(malformed)?;
    let header: ProofHeader =
        serde_json::from_slice(&header).map_err(|_| bad_proof("malformed DPoP proof header"))?;
    check_header(header.typ.as_deref(), header.crit, &PROOF_TYP).map_err(|fault| match fault {
        HeaderFault::Typ => bad_proof("DPoP proof typ must be dpop+jwt"),
        HeaderFault::Crit => bad_proof("unsupported critical header (crit) in DPoP proof"),
    })?;
    let jwk = header
        .jwk
        .ok_or_else(|| bad_proof("DPoP proof has no jwk header"))?;
    let (key, thumbprint) = proof_key(&header.alg, &jwk)?;

    let claims = jws.payload().and_then(json).map_err(malformed)?;
    let claims: ProofClaims =
        serde_json::from_slice(&claims).map_err(|_| bad_proof("malformed DPoP proof claims"))?;
    let jti = claims
        .jti
        .filter(|jti| !jti.is_empty())
        .ok_or_else(|| bad_proof("DPoP proof has no jti"))?;
    if claims.htm.as_deref() != Some(target.method) {
        return Err(bad_proof("DPoP proof htm does not match the request method"));
    }
    let htu = claims.htu.ok_or_else(|| bad_proof("DPoP proof has no htu"))?;
    if normalize_url(&htu).as_deref() != Some(target.url.as_str()) {
        return Err(bad_proof("DPoP proof htu does not match the request URL"));
    }
    let iat = claims
        .iat
        .and_then(|iat| iat.as_f64())
        .filter(|iat| iat.is_finite() && *iat >= 0.0)
        .ok_or_else(|| bad_proof("DPoP proof has no numeric iat"))?;
    if iat < now.saturating_sub(window) as f64 {
        return Err(bad_proof("DPoP proof too old (iat)"));
    }
    if iat > now.saturating_add(ahead) as f64 {
        return Err(bad_proof("DPoP proof issued in the future (iat)"));
    }
    let ath = claims.ath.ok_or_else(|| bad_proof("DPoP proof has no ath"))?;
    if ath != URL_SAFE_NO_PAD.encode(digest(&SHA256, access_token.as_bytes())) {
        return Err(bad_proof("DPoP proof ath does not match the access token"));
    }
    if let Some(nonces) = nonces
        && !claims
            .nonce
            .as_deref()
            .is_some_and(|nonce| nonces.accepts(nonce, now))
    {
        return Err(AuthError::UseDpopNonce(nonces.issue(now)));
    }
    let signature = jws.signature().map_err(malformed)?;
    Ok(Checked {
        key,
        thumbprint,
        signing_input: jws.signing_input.as_bytes(),
        signature,
        jti,
        // In range: `iat` was checked to lie at most `ahead` after `now`.
        expires: (iat as u64).saturating_add(window),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// RFC 9449's example key: its thumbprint (section 6.1) and its proof of
    /// a protected resource request (figure 13), with the example token.
    const RFC_JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
    pub(crate) const RFC_TOKEN: &str = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU";
    pub(crate) const RFC_PROOF: &str = concat!(
        "eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIiwieCI6Imw4dEZyaHgtMzR0VjNoUklDUkRZ",
        "OXpDa0RscEJoRjQyVVFVZldWQVdCRnMiLCJ5IjoiOVZFNGpmX09rX282NHpiVFRsY3VOSmFqSG10NnY5VERWclUwQ2R2R1JEQSIs",
        "ImNydiI6IlAtMjU2In19.eyJqdGkiOiJlMWozVl9iS2ljOC1MQUVCIiwiaHRtIjoiR0VUIiwiaHR1IjoiaHR0cHM6Ly9yZXNvdXJj",
        "ZS5leGFtcGxlLm9yZy9wcm90ZWN0ZWRyZXNvdXJjZSIsImlhdCI6MTU2MjI2MjYxOCwiYXRoIjoiZlVIeU8ycjJaM0RaNTNFc05y",
        "V0JiMHhXWG9hTnk1OUlpS0NBcWtzbVFFbyJ9.2oW9RP35yRqzhrtNP86L-Ey71EOptxRimPPToA1plemAgR6pxHF8y6-yqyVnmcw6",
        "Fy1dqd-jfxSYoMxhAJpLjA",
    );
    pub(crate) const RFC_IAT: u64 = 1_562_262_618;

    pub(crate) fn rfc_target() -> Target<'static> {
        Target {
            method: "GET",
            url: normalize_url("https://resource.example.org/protectedresource").unwrap(),
        }
    }

    #[test]
    fn the_rfc_9449_example_proof_verifies() {
        let checked = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT, 60, 60, None).unwrap();
        assert_eq!(checked.thumbprint, RFC_JKT);
        assert_eq!(checked.jti, "e1j3V_bKic8-LAEB");
        assert_eq!(checked.expires, RFC_IAT + 60);
        checked
            .key
            .verify(checked.signing_input, &checked.signature)
            .unwrap();
        // And each claim is held to it.
        let refused = |token: &str, target: &Target<'_>, now: u64| {
            check(RFC_PROOF, token, target, now, 60, 60, None)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(refused("other", &rfc_target(), RFC_IAT).contains("ath"));
        let post = Target {
            method: "POST",
            ..rfc_target()
        };
        assert!(refused(RFC_TOKEN, &post, RFC_IAT).contains("htm"));
        let elsewhere = Target {
            url: normalize_url("https://resource.example.org/other").unwrap(),
            ..rfc_target()
        };
        assert!(refused(RFC_TOKEN, &elsewhere, RFC_IAT).contains("htu"));
        assert!(refused(RFC_TOKEN, &rfc_target(), RFC_IAT + 61).contains("too old"));
        assert!(refused(RFC_TOKEN, &rfc_target(), RFC_IAT - 61).contains("future"));
    }

    #[test]
    fn an_iat_may_lie_ahead_only_as_far_as_allowed() {
        // The proof's iat seen from 5 seconds before it: admitted with 5
        // seconds ahead allowed, remembered until iat + window all the same.
        let checked = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT - 5, 60, 5, None).unwrap();
        assert_eq!(checked.expires, RFC_IAT + 60);
        for (now, ahead) in [(RFC_IAT - 6, 5), (RFC_IAT - 1, 0)] {
            let refused = check(RFC_PROOF, RFC_TOKEN, &rfc_target(), now, 60, ahead, None);
            let why = refused.err().unwrap().to_string();
            assert!(why.contains("issued in the future (iat)"), "{now} {ahead}: {why}");
        }
        // The window behind is not the bound ahead.
        assert!(check(RFC_PROOF, RFC_TOKEN, &rfc_target(), RFC_IAT + 60, 60, 0, None).is_ok());
    }

    #[test]
    fn a_proof_without_the_servers_nonce_is_answered_with_one() {
        let nonces = Nonces::new("a secret of at least thirty-two bytes", 60);
        let refused = check(
            RFC_PROOF,
            RFC_TOKEN,
            &rfc_target(),
            RFC_IAT,
            60,
            60,
            Some(&nonces),
        );
        match refused.err() {
            Some(AuthError::UseDpopNonce(nonce)) => assert!(nonces.accepts(&nonce, RFC_IAT)),
            other => panic!("{other:?}"),
        }
    }
}
