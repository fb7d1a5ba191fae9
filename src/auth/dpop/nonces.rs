//! Server nonces (RFC 9449 section 9): what a proof must carry when the API
//! is given a nonce secret (`DPOP_NONCE_SECRET`).

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Server nonces (RFC 9449 section 9), made and checked without state: a
/// nonce is the time step it was issued in (steps as long as the `iat`
/// window) and a MAC of that step under the secret. It is accepted in its
/// step and the next, so for one to two windows; any instance with the same
/// secret accepts it. A nonce is no secret and not single-use: it only
/// proves that the proof was made after the server issued it, which a
/// client-chosen `iat` cannot (RFC 9449 section 11.2).
pub(super) struct Nonces {
    key: hmac::Key,
    step: u64,
}

/// The bytes of a nonce: its step (8) and the first 16 of its MAC.
const NONCE_BYTES: usize = 24;

impl Nonces {
    pub(super) fn new(secret: &str, step: u64) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
            step: step.max(1),
        }
    }

    /// The nonce of the step `now` falls in.
    pub(super) fn issue(&self, now: u64) -> String {
        let step = now / self.step;
        let mut nonce = [0u8; NONCE_BYTES];
        nonce[..8].copy_from_slice(&step.to_be_bytes());
        nonce[8..].copy_from_slice(&self.mac(step).as_ref()[..NONCE_BYTES - 8]);
        URL_SAFE_NO_PAD.encode(nonce)
    }

    /// True for a nonce of this step or the one before, made with this secret.
    pub(super) fn accepts(&self, nonce: &str, now: u64) -> bool {
        let mut bytes = [0u8; NONCE_BYTES];
        if URL_SAFE_NO_PAD.decode_slice(nonce, &mut bytes) != Ok(NONCE_BYTES) {
            return false;
        }
        let step = u64::from_be_bytes(bytes[..8].try_into().unwrap_or_default());
        let current = now / self.step;
        (step == current || step.checked_add(1) == Some(current))
            && verify_slices_are_equal(&bytes[8..], &self.mac(step).as_ref()[..NONCE_BYTES - 8]).is_ok()
    }

    fn mac(&self, step: u64) -> hmac::Tag {
        let mut context = hmac::Context::with_key(&self.key);
        context.update(b"dpop-nonce/");
        context.update(&step.to_be_bytes());
        context.sign()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonces_last_one_to_two_windows_and_need_the_secret() {
        let nonces = Nonces::new("a secret of at least thirty-two bytes", 60);
        let now = 1_800_000_000;
        let nonce = nonces.issue(now);
        assert_eq!(nonce.len(), 32);
        assert!(nonces.accepts(&nonce, now));
        assert!(
            nonces.accepts(&nonce, now - now % 60 + 119),
            "still in the next step"
        );
        assert!(!nonces.accepts(&nonce, now - now % 60 + 120), "two steps later");
        assert!(!nonces.accepts(&nonce, now - 60), "a step before it was issued");
        let other = Nonces::new("another secret of at least thirty-two bytes", 60);
        assert!(!other.accepts(&nonce, now), "made with another secret");
        let mut tampered = nonce.clone().into_bytes();
        tampered[20] = if tampered[20] == b'A' { b'B' } else { b'A' };
        assert!(!nonces.accepts(std::str::from_utf8(&tampered).unwrap(), now));
        for garbage in ["", "abc", &format!("{nonce}A"), &nonce[..31]] {
            assert!(!nonces.accepts(garbage, now), "{garbage:?}");
        }
    }
}
