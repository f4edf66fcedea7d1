//! Reading Keystone's token document (`{"token": {...}}`), and turning a
//! user's token into the request's identity the way keystonemiddleware
//! fills `X-Project-Id`, `X-User-Id` and `X-Roles`: the project's id, the
//! user's id, the role names.

use std::time::UNIX_EPOCH;

use plugin_api::{
    auth::Identity,
    types::{ROption, RString, RVec},
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Envelope {
    token: Token,
}

#[derive(Deserialize)]
struct Token {
    expires_at: String,
    user: Named,
    #[serde(default)]
    project: Option<Named>,
    #[serde(default)]
    roles: Vec<Role>,
}

#[derive(Deserialize)]
struct Named {
    id: String,
}

#[derive(Deserialize)]
struct Role {
    name: String,
}

/// The parts of a token document the strategy uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenDocument {
    /// The token's expiry, ms since the epoch.
    pub expires_ms: u64,
    /// The user's id.
    pub user: String,
    /// The project's id, if the token is scoped to a project.
    pub project: Option<String>,
    /// The role names.
    pub roles: Vec<String>,
}

impl TokenDocument {
    /// Parses Keystone's answer.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let envelope: Envelope = serde_json::from_slice(body)
            .map_err(|e| format!("Keystone's token document is not understood: {e}"))?;
        let token = envelope.token;
        Ok(Self {
            expires_ms: parse_utc_ms(&token.expires_at)?,
            user: token.user.id,
            project: token.project.map(|p| p.id),
            roles: token.roles.into_iter().map(|r| r.name).collect(),
        })
    }

    /// The identity a request with this token acts as, or why it cannot
    /// act at all: a token scoped to no project (unscoped, domain or
    /// system scope) names no tenant, and an expired one is no longer
    /// valid even if Keystone's clock disagrees.
    pub fn identity(&self, now_ms: u64) -> Result<Identity, &'static str> {
        let project = self
            .project
            .as_deref()
            .filter(|p| !p.is_empty())
            .ok_or("the token is not scoped to a project")?;
        if self.expires_ms <= now_ms {
            return Err("the token has expired");
        }
        Ok(Identity {
            project: RString::from(project),
            user: RString::from(self.user.as_str()),
            roles: self
                .roles
                .iter()
                .map(|r| RString::from(r.as_str()))
                .collect::<RVec<_>>(),
            expires_ms: ROption::RSome(self.expires_ms),
        })
    }
}

/// Keystone writes times as `2026-12-02T07:12:39.000000Z`.
fn parse_utc_ms(text: &str) -> Result<u64, String> {
    humantime::parse_rfc3339(text)
        .ok()
        .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
        .map(|since| since.as_millis() as u64)
        .ok_or_else(|| format!("Keystone's expires_at {text:?} is not understood"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_token_gives_project_user_and_role_names() {
        let body = br#"{"token": {"methods": ["password"],
            "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1", "name": "demo"},
            "expires_at": "2026-12-02T07:12:39.000000Z", "issued_at": "2026-12-02T06:12:39.000000Z",
            "project": {"domain": {"id": "default"}, "id": "p1", "name": "demo"},
            "roles": [{"id": "r1", "name": "reader"}, {"id": "r2", "name": "member"}]}}"#;
        let document = TokenDocument::parse(body).unwrap();
        assert_eq!(document.expires_ms, 1_796_195_559_000);
        let identity = document.identity(0).unwrap();
        assert_eq!(identity.project.as_str(), "p1");
        assert_eq!(identity.user.as_str(), "u1");
        assert_eq!(
            identity
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>(),
            ["reader", "member"]
        );
        assert_eq!(identity.expires_ms, ROption::RSome(1_796_195_559_000));
        assert_eq!(
            document.identity(1_796_195_559_000),
            Err("the token has expired")
        );
    }

    #[test]
    fn a_token_without_project_names_no_tenant() {
        let body = br#"{"token": {"user": {"id": "u"}, "expires_at": "2030-01-01T00:00:00Z",
            "domain": {"id": "default", "name": "Default"}}}"#;
        let document = TokenDocument::parse(body).unwrap();
        assert_eq!(
            document.identity(0),
            Err("the token is not scoped to a project")
        );
    }

    #[test]
    fn an_unreadable_document_is_an_error() {
        assert!(TokenDocument::parse(b"{}").is_err());
        assert!(
            TokenDocument::parse(br#"{"token": {"user": {"id": "u"}, "expires_at": "soon"}}"#)
                .unwrap_err()
                .contains("expires_at")
        );
    }
}
