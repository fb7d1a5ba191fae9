//! The token's binding (`cnf`): a DPoP key's thumbprint is the one the
//! API checks, and `DPOP_MODE` says whether such a token is welcome.

use serde_json::Value;

use crate::auth::DpopMode;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{shown, shown_value};

impl Doctor<'_> {
    /// `cnf`: a DPoP key's thumbprint is the one binding the API checks.
    /// True when the token is bound to one.
    pub(super) fn confirmation(&mut self, cnf: Option<&Value>) -> bool {
        let mode = self.settings.dpop.mode;
        let Some(cnf) = cnf else {
            if mode == DpopMode::Required {
                self.problem(
                    "dpop",
                    "not bound to a DPoP key, and this API accepts DPoP-bound tokens only (DPOP_MODE=required): get a DPoP-bound token (send a DPoP proof to the token endpoint), or set DPOP_MODE=allowed",
                );
            }
            return false;
        };
        let jkt = match cnf {
            Value::Object(members) => match members.get("jkt") {
                Some(Value::String(jkt)) if !jkt.is_empty() && members.len() == 1 => jkt,
                _ => {
                    self.problem(
                        "cnf",
                        format!(
                            "cnf {} binds the token to something other than a DPoP key (only cnf.jkt, a DPoP key's thumbprint, can be checked): the server refuses it",
                            shown_value(cnf)
                        ),
                    );
                    return false;
                }
            },
            _ => {
                self.problem("claims", "cnf is not an object");
                return false;
            }
        };
        let status = if mode == DpopMode::Disabled {
            Status::Problem
        } else {
            Status::Note
        };
        let mut text = format!(
            "bound to the DPoP key of thumbprint {} (cnf.jkt): send it as `Authorization: DPoP <token>` with a `DPoP` proof header signed by that key (`proof --dpop-key`); with Bearer it is refused",
            shown(jkt)
        );
        if mode == DpopMode::Disabled {
            text.push_str(
                "; and this API takes Bearer tokens only (DPOP_MODE=disabled): set DPOP_MODE=allowed, or get a token without DPoP (no DPoP proof at the token endpoint)",
            );
        }
        self.add(status, "dpop", text);
        true
    }
}
