//! `[connections.<id>]`: one account at one provider, checked against the provider's grants.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Connection, FieldError, bad_name};
use crate::catalog::{Grant, ProviderSpec};
use crate::template::is_identifier;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConnection {
    provider: String,
    secret: Option<String>,
    label: Option<String>,
    scopes: Option<Vec<String>>,
    grant: Option<Grant>,
    homey: Option<String>,
}

/// Checks connection `id` against the providers.
pub(super) fn build_connection(
    id: String,
    rc: RawConnection,
    providers: &BTreeMap<String, ProviderSpec>,
) -> Result<Connection, FieldError> {
    let err = |field: &str, problem: String| (field.to_string(), problem);
    let field = |name: &str| format!("connections.{id}.{name}");
    let Some(spec) = providers.get(&rc.provider) else {
        return Err(err(
            &field("provider"),
            format!(
                "unknown provider \"{}\" (known: {}; or define it under [providers.{}])",
                rc.provider,
                providers.keys().cloned().collect::<Vec<_>>().join(", "),
                rc.provider
            ),
        ));
    };
    let grant = rc
        .grant
        .or_else(|| spec.grants.first().copied())
        .ok_or_else(|| err(&field("grant"), "the provider declares no grant".into()))?;
    if !spec.grants.contains(&grant) {
        return Err(err(
            &field("grant"),
            format!(
                "provider {} does not support the {} grant (it supports: {})",
                spec.id,
                grant.as_str(),
                spec.grants
                    .iter()
                    .map(|g| g.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if grant == Grant::AuthorizationCode && spec.authorize_url.is_none() {
        return Err(err(
            &field("grant"),
            format!("provider {} has no authorize_url", spec.id),
        ));
    }
    if rc.homey.is_some() && spec.kind != crate::providers::homey::KIND {
        return Err(err(
            &field("homey"),
            format!(
                "only Homey connections choose a Homey; {} is not one",
                spec.id
            ),
        ));
    }
    let secret = rc.secret.unwrap_or_else(|| rc.provider.clone());
    if !is_identifier(&secret) {
        return Err(err(&field("secret"), bad_name()));
    }
    Ok(Connection {
        label: rc.label.unwrap_or_else(|| id.clone()),
        scopes: rc.scopes.unwrap_or_else(|| spec.default_scopes.clone()),
        provider: rc.provider,
        secret,
        grant,
        homey: rc.homey,
        id,
    })
}
