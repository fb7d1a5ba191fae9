//! Who the token speaks for (a machine or a user) and the permissions it
//! grants under `PERMISSIONS_FROM`, as the validator grants them.

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::auth::doctor::claims::claim;
use crate::auth::doctor::findings::{Doctor, Status};
use crate::auth::doctor::shown::{shown, shown_value};
use crate::auth::grants::GrantClaims;
use crate::auth::{GrantSource, PermissionsFrom};

/// Most permissions listed one by one.
const LISTED_PERMISSIONS: usize = 20;

impl Doctor<'_> {
    /// Machine or user, and the permissions granted under `PERMISSIONS_FROM`,
    /// as the validator grants them.
    pub(super) fn grants(&mut self, claims: &Map<String, Value>) {
        let scope = match claim(claims, "scope") {
            None => None,
            Some(Value::String(scope)) => Some(scope.clone()),
            Some(_) => return self.problem("claims", "scope is not a string"),
        };
        let permissions = match claim(claims, "permissions").map(Vec::<String>::deserialize) {
            None => None,
            Some(Ok(permissions)) => Some(permissions),
            Some(Err(_)) => return self.problem("claims", "permissions is not a list of strings"),
        };
        let grant = GrantClaims {
            sub: claim(claims, "sub").and_then(Value::as_str).unwrap_or_default(),
            scope: scope.clone(),
            permissions,
            gty: claim(claims, "gty").cloned(),
            client_id: claim(claims, "client_id").cloned(),
        };
        let kind = match (grant.is_machine(), &grant.gty) {
            (true, Some(_)) => {
                "a machine token (gty client-credentials): a client acting for itself".to_owned()
            }
            (true, None) => {
                "a machine token (sub equals client_id, RFC 9068): a client acting for itself".to_owned()
            }
            (false, _) => "a user token".to_owned(),
        };
        let client = ["azp", "client_id"]
            .into_iter()
            .find_map(|name| Some(format!(", client {} ({name})", shown_value(claim(claims, name)?))))
            .unwrap_or_default();
        self.add(Status::Note, "kind", format!("{kind}{client}"));
        let from = self.settings.validation.permissions_from;
        let (granted, source) = grant.granted(from);
        let setting = match from {
            PermissionsFrom::Auto => "PERMISSIONS_FROM=auto",
            PermissionsFrom::Permissions => "PERMISSIONS_FROM=permissions",
            PermissionsFrom::Scope => "PERMISSIONS_FROM=scope",
            PermissionsFrom::Both => "PERMISSIONS_FROM=both",
        };
        let whence = match (source, from) {
            (GrantSource::PermissionsClaim, _) | (GrantSource::Configured, PermissionsFrom::Permissions) => {
                "the permissions claim"
            }
            (GrantSource::MachineScope, _) => "the scope claim, which an administrator granted this machine",
            (GrantSource::Configured, PermissionsFrom::Scope) => "the scope claim",
            (GrantSource::Configured, _) => "the permissions and scope claims",
            (GrantSource::UserScopeIgnored, _) => "",
        };
        let text = if source == GrantSource::UserScopeIgnored {
            let ignored = scope
                .filter(|scope| !scope.trim().is_empty())
                .map(|scope| {
                    format!(
                        "; its scope {} is what its client asked for, and grants nothing",
                        shown(&scope)
                    )
                })
                .unwrap_or_default();
            format!(
                "none: a user token without a permissions claim ({setting}){ignored}. Turn on RBAC and \"Add Permissions in the Access Token\" for the API in Auth0, or set PERMISSIONS_FROM"
            )
        } else if granted.is_empty() {
            format!("none ({whence} grants none; {setting})")
        } else {
            let mut listed: Vec<String> = granted
                .iter()
                .take(LISTED_PERMISSIONS)
                .map(|p| shown(p))
                .collect();
            if granted.len() > LISTED_PERMISSIONS {
                listed.push(format!("and {} more", granted.len() - LISTED_PERMISSIONS));
            }
            format!("{} (from {whence}; {setting})", listed.join(", "))
        };
        self.add(Status::Note, "permissions", text);
    }
}
