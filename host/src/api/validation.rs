//! Typed values parsed at the edge (`QueueName`, `ProjectId`, `ClientId`)
//! and the range checks of Zaqar's `transport/validation.py`, with its exact
//! messages. Inner code receives only values that passed here.

use std::fmt;

use crate::config::Limits;

use super::errors::{ApiError, ApiResult};

/// Zaqar's `QUEUE_NAME_MAX_LEN`.
pub const QUEUE_NAME_MAX_LEN: usize = 64;
/// Zaqar's `PROJECT_ID_MAX_LEN`.
pub const PROJECT_ID_MAX_LEN: usize = 256;
/// Zaqar's `MIN_MESSAGE_TTL`.
pub const MIN_MESSAGE_TTL: i64 = 60;
/// Zaqar's `MIN_CLAIM_TTL`.
pub const MIN_CLAIM_TTL: i64 = 60;
/// Zaqar's `MIN_CLAIM_GRACE`.
pub const MIN_CLAIM_GRACE: i64 = 60;
/// Zaqar's `MIN_SUBSCRIPTION_TTL`.
pub const MIN_SUBSCRIPTION_TTL: i64 = 60;
/// Page size when a listing names no `limit` (storage `DEFAULT_*_PER_PAGE`).
pub const DEFAULT_PAGE_SIZE: u32 = 10;
/// Messages per claim when the claim names no `limit`.
pub const DEFAULT_MESSAGES_PER_CLAIM: u32 = 10;

/// A queue name: `^[a-zA-Z0-9_\-.]+$`, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QueueName(String);

impl QueueName {
    /// Checks a queue name together with the project it lives in (Zaqar
    /// validates both in one hook, with one error).
    pub fn parse(name: &str, project: &ProjectId) -> ApiResult<Self> {
        let valid_name = !name.is_empty()
            && name.len() <= QUEUE_NAME_MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if valid_name && project.0.chars().count() <= PROJECT_ID_MAX_LEN {
            Ok(Self(name.to_string()))
        } else {
            Err(ApiError::InvalidQueueIdentification)
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for QueueName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The tenant, from `X-Project-ID`: present and non-empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProjectId(String);

impl ProjectId {
    /// Reads the header value.
    pub fn from_header(value: Option<&str>) -> ApiResult<Self> {
        match value {
            None => Err(ApiError::MissingProject),
            Some("") => Err(ApiError::EmptyProject),
            Some(project) => Ok(Self(project.to_string())),
        }
    }

    /// The project id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How `Client-ID` is checked (`[transport] client_id_uuid_safe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientIdRule {
    /// Must be a UUID (the default).
    Strict,
    /// Any string whose length is within the bounds.
    Length { min: u32, max: u32 },
}

impl ClientIdRule {
    /// The rule the configuration selects.
    pub fn from_limits(limits: &Limits) -> Self {
        if limits.client_id_uuid_safe.eq_ignore_ascii_case("off") {
            Self::Length {
                min: limits.min_length_client_id,
                max: limits.max_length_client_id,
            }
        } else {
            Self::Strict
        }
    }
}

/// The client's identity, from `Client-ID`. In strict mode it is the
/// canonical hyphenated lowercase UUID, so that `echo` treats every
/// spelling of one UUID as the same client (Zaqar compares UUID objects).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    /// Reads the header value.
    pub fn from_header(value: Option<&str>, rule: ClientIdRule) -> ApiResult<Self> {
        let value = value.ok_or(ApiError::MissingClientId)?;
        match rule {
            ClientIdRule::Strict => parse_python_uuid(value)
                .map(Self)
                .ok_or(ApiError::MalformedClientId),
            ClientIdRule::Length { min, max } => {
                let length = value.chars().count();
                if length < min as usize || length > max as usize {
                    Err(ApiError::ClientIdLength { min, max })
                } else {
                    Ok(Self(value.to_string()))
                }
            }
        }
    }

    /// The id as stored with messages.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Python's `uuid.UUID(hex)`: `urn:` and `uuid:` prefixes, braces and
/// dashes are ignored, 32 hex digits must remain. Returns the canonical form.
fn parse_python_uuid(value: &str) -> Option<String> {
    // Every client sends the canonical form: accept it without rebuilding.
    if is_canonical_uuid(value) {
        return Some(value.to_string());
    }
    let stripped = value.replace("urn:", "").replace("uuid:", "");
    let hex: String = stripped
        .trim_matches(|c| c == '{' || c == '}')
        .chars()
        .filter(|&c| c != '-')
        .collect();
    if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let hex = hex.to_ascii_lowercase();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex.
fn is_canonical_uuid(value: &str) -> bool {
    value.len() == 36
        && value.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Which wording a page-size error uses: Zaqar says "no greater than" for
/// queues, pools and flavors, "may not be greater than" for the rest.
#[derive(Debug, Clone, Copy)]
pub enum PageKind {
    /// Queues, topics, pools, flavors.
    Catalogue,
    /// Messages, subscriptions, claims.
    Items,
}

/// A page size: default 10, allowed `1..=max`.
pub fn page_limit(value: Option<i64>, max: u32, kind: PageKind) -> ApiResult<u32> {
    let Some(limit) = value else {
        return Ok(DEFAULT_PAGE_SIZE.min(max.max(1)));
    };
    if limit >= 1 && limit <= i64::from(max) {
        return Ok(limit as u32);
    }
    Err(ApiError::api(match kind {
        PageKind::Catalogue => format!("Limit must be at least 1 and no greater than {max}."),
        PageKind::Items => format!("Limit must be at least 1 and may not be greater than {max}."),
    }))
}

/// A message ttl within `60..=max_message_ttl`.
pub fn message_ttl(ttl: i64, limits: &Limits) -> ApiResult<u32> {
    let max = limits.max_message_ttl;
    in_range(ttl, MIN_MESSAGE_TTL, max).ok_or_else(|| {
        ApiError::api(format!(
            "The TTL for a message may not exceed {max} seconds, and must be at least {MIN_MESSAGE_TTL} seconds long."
        ))
    })
}

/// A message delay within `0..=max_message_delay`.
pub fn message_delay(delay: i64, limits: &Limits) -> ApiResult<u32> {
    let max = limits.max_message_delay;
    // Zaqar's text, missing space after the comma included.
    in_range(delay, 0, max).ok_or_else(|| {
        ApiError::api(format!(
            "The Delay TTL for a message may not exceed {max} seconds,and must be at least 0 seconds long."
        ))
    })
}

/// A claim ttl within `60..=max_claim_ttl`.
pub fn claim_ttl(ttl: i64, limits: &Limits) -> ApiResult<u32> {
    let max = limits.max_claim_ttl;
    in_range(ttl, MIN_CLAIM_TTL, max).ok_or_else(|| {
        ApiError::api(format!(
            "The TTL for a claim may not exceed {max} seconds, and must be at least {MIN_CLAIM_TTL} seconds long."
        ))
    })
}

/// A claim grace within `60..=max_claim_grace`.
pub fn claim_grace(grace: i64, limits: &Limits) -> ApiResult<u32> {
    let max = limits.max_claim_grace;
    in_range(grace, MIN_CLAIM_GRACE, max).ok_or_else(|| {
        ApiError::api(format!(
            "The grace for a claim may not exceed {max} seconds, and must be at least {MIN_CLAIM_GRACE} seconds long."
        ))
    })
}

/// The number of messages a claim may take, `1..=max_messages_per_claim_or_pop`.
pub fn claim_limit(limit: Option<i64>, limits: &Limits) -> ApiResult<u32> {
    match limit {
        None => Ok(DEFAULT_MESSAGES_PER_CLAIM.min(limits.max_messages_per_claim_or_pop.max(1))),
        Some(_) => page_limit(limit, limits.max_messages_per_claim_or_pop, PageKind::Items),
    }
}

fn in_range(value: i64, min: i64, max: u32) -> Option<u32> {
    (value >= min && value <= i64::from(max)).then_some(value as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> ProjectId {
        ProjectId::from_header(Some("p")).unwrap()
    }

    #[test]
    fn queue_names_allow_letters_digits_dash_underscore_and_dot() {
        assert!(QueueName::parse("a-b_c.9", &project()).is_ok());
        assert!(QueueName::parse(&"q".repeat(64), &project()).is_ok());
        for bad in ["", "bad name!", "a/b", &"q".repeat(65), "ünï"] {
            assert_eq!(
                QueueName::parse(bad, &project()),
                Err(ApiError::InvalidQueueIdentification),
                "{bad}"
            );
        }
    }

    #[test]
    fn project_longer_than_256_characters_makes_the_queue_identification_invalid() {
        let long = ProjectId::from_header(Some(&"p".repeat(257))).unwrap();
        assert_eq!(
            QueueName::parse("q", &long),
            Err(ApiError::InvalidQueueIdentification)
        );
    }

    #[test]
    fn project_header_must_be_present_and_non_empty() {
        assert_eq!(ProjectId::from_header(None), Err(ApiError::MissingProject));
        assert_eq!(
            ProjectId::from_header(Some("")),
            Err(ApiError::EmptyProject)
        );
    }

    #[test]
    fn strict_client_id_accepts_every_python_uuid_spelling() {
        let canonical = "dde7c068-d4f2-48c1-9e99-a4fa7be16b67";
        for spelling in [
            canonical,
            "DDE7C068D4F248C19E99A4FA7BE16B67",
            "{dde7c068-d4f2-48c1-9e99-a4fa7be16b67}",
            "urn:uuid:dde7c068-d4f2-48c1-9e99-a4fa7be16b67",
        ] {
            let id = ClientId::from_header(Some(spelling), ClientIdRule::Strict).unwrap();
            assert_eq!(id.as_str(), canonical, "{spelling}");
        }
        assert_eq!(
            ClientId::from_header(Some("not-a-uuid"), ClientIdRule::Strict),
            Err(ApiError::MalformedClientId)
        );
        assert_eq!(
            ClientId::from_header(None, ClientIdRule::Strict),
            Err(ApiError::MissingClientId)
        );
    }

    #[test]
    fn relaxed_client_id_checks_only_the_length() {
        let rule = ClientIdRule::Length { min: 10, max: 36 };
        assert_eq!(
            ClientId::from_header(Some("0123456789"), rule)
                .unwrap()
                .as_str(),
            "0123456789"
        );
        assert_eq!(
            ClientId::from_header(Some("short"), rule),
            Err(ApiError::ClientIdLength { min: 10, max: 36 })
        );
    }

    #[test]
    fn page_limits_default_to_ten_and_use_zaqars_two_wordings() {
        assert_eq!(page_limit(None, 20, PageKind::Items), Ok(10));
        assert_eq!(
            page_limit(Some(0), 20, PageKind::Catalogue)
                .unwrap_err()
                .description()
                .unwrap(),
            "Limit must be at least 1 and no greater than 20."
        );
        assert_eq!(
            page_limit(Some(21), 20, PageKind::Items)
                .unwrap_err()
                .description()
                .unwrap(),
            "Limit must be at least 1 and may not be greater than 20."
        );
    }

    #[test]
    fn ttl_ranges_report_zaqars_messages() {
        let limits = Limits::default();
        assert_eq!(message_ttl(60, &limits), Ok(60));
        assert_eq!(
            message_ttl(59, &limits).unwrap_err().description().unwrap(),
            "The TTL for a message may not exceed 1209600 seconds, and must be at least 60 seconds long."
        );
        assert_eq!(
            message_delay(901, &limits).unwrap_err().description().unwrap(),
            "The Delay TTL for a message may not exceed 900 seconds,and must be at least 0 seconds long."
        );
        assert_eq!(
            claim_grace(43201, &limits).unwrap_err().description().unwrap(),
            "The grace for a claim may not exceed 43200 seconds, and must be at least 60 seconds long."
        );
        assert_eq!(claim_limit(None, &limits), Ok(10));
    }
}
