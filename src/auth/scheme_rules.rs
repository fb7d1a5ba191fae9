//! Which scheme a token may come with, `Bearer` or `DPoP`: the rules the
//! guard applies and the token doctor (`explain`) reports, kept in one
//! place so that both refuse in the same words.
//!
//! `DPOP_MODE` decides which schemes the API admits at all; a valid
//! token's binding (`cnf.jkt`) decides which of those it must use, so that
//! a stolen DPoP-bound token is never a bearer token again (RFC 9449
//! section 7.2). The guard's `dpop_bound` also refuses an unbound token
//! with the DPoP scheme, before it checks the proof.

use crate::auth::dpop::DpopMode;
use crate::auth::error::AuthError;
use crate::auth::token::Scheme;

/// Whether `mode` admits `scheme` at all: checked before the token is
/// validated.
pub(crate) fn scheme_admitted(scheme: Scheme, mode: DpopMode) -> Result<(), AuthError> {
    match (scheme, mode) {
        (Scheme::Dpop, DpopMode::Disabled) => Err(AuthError::InvalidRequest(
            "the DPoP scheme is not accepted: this API takes Bearer tokens only",
        )),
        (Scheme::Bearer, DpopMode::Required) => Err(AuthError::InvalidRequest(
            "this API accepts DPoP-bound tokens only, with the DPoP scheme",
        )),
        _ => Ok(()),
    }
}

/// Whether a valid token, `bound` to a key or not, may come with `scheme`:
/// a bound one only with DPoP, an unbound one only with Bearer.
pub(crate) fn binding_matches(scheme: Scheme, bound: bool) -> Result<(), AuthError> {
    match (scheme, bound) {
        (Scheme::Bearer, true) => Err(AuthError::InvalidToken(
            "this token is bound to a key (cnf.jkt): present it with the DPoP scheme and a proof".into(),
        )),
        (Scheme::Dpop, false) => Err(AuthError::InvalidToken(
            "this token is not bound to a key (no cnf.jkt): present it with the Bearer scheme".into(),
        )),
        _ => Ok(()),
    }
}
