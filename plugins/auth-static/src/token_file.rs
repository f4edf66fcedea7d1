//! The tokens file: its format, and the table a request's token is looked up
//! in.
//!
//! TOML (any extension but `.json`) or JSON (`.json`), one entry per token:
//!
//! ```toml
//! [[tokens]]
//! sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"  # or: token = "..."
//! project = "demo"
//! user = "ci-bot"
//! roles = ["member"]                   # optional, default none
//! expires_at = "2027-01-01T00:00:00Z"  # optional, RFC 3339 in UTC
//! ```
//!
//! An entry names its token in clear (`token`) or by the lowercase or
//! uppercase hex SHA-256 of it (`sha256`), so the file need not hold
//! secrets. Either way the table keeps only hashes, and a lookup compares
//! the presented token's hash with **every** entry in constant time, so the
//! time a lookup takes says nothing about which entry (if any) matched.

use std::{collections::HashSet, path::Path, time::UNIX_EPOCH};

use plugin_api::{
    auth::Identity,
    types::{ROption, RString, RVec},
};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Zaqar's limit on a project id's length.
const MAX_PROJECT_LENGTH: usize = 256;

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

/// One entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: Option<String>,
    sha256: Option<String>,
    project: String,
    user: String,
    #[serde(default)]
    roles: Vec<String>,
    expires_at: Option<String>,
}

/// One token the table knows.
#[derive(Debug, Clone)]
struct Known {
    hash: [u8; 32],
    identity: Identity,
}

/// The tokens of one version of the file.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    known: Vec<Known>,
}

/// What a lookup found.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A known token, valid at the time asked.
    Valid(Identity),
    /// A known token whose `expires_at` has passed.
    Expired,
    /// Not a token of the file.
    Unknown,
}

/// The SHA-256 of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenTable {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read tokens file {}: {e}", path.display()))?;
        let is_json = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"));
        Self::parse(&text, is_json).map_err(|e| format!("tokens file {}: {e}", path.display()))
    }

    /// Parses and checks a file's text.
    pub fn parse(text: &str, is_json: bool) -> Result<Self, String> {
        let file: TokensFile = if is_json {
            serde_json::from_str(text).map_err(|e| e.to_string())?
        } else {
            toml::from_str(text).map_err(|e| e.to_string())?
        };
        let mut seen = HashSet::new();
        let known = file
            .tokens
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let known = entry
                    .check()
                    .map_err(|e| format!("entry {}: {e}", index + 1))?;
                if !seen.insert(known.hash) {
                    return Err(format!(
                        "entry {}: the same token is listed twice",
                        index + 1
                    ));
                }
                Ok(known)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Self { known })
    }

    /// How many tokens the table holds.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// Whether the table holds no token.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// Looks `token` up at `now_ms`, in time independent of which entry
    /// matches.
    pub fn lookup(&self, token: &str, now_ms: u64) -> Lookup {
        let presented = token_hash(token);
        let mut found = subtle::Choice::from(0);
        let mut index = 0u64;
        for (i, known) in self.known.iter().enumerate() {
            let equal = known.hash.ct_eq(&presented);
            index.conditional_assign(&(i as u64), equal);
            found |= equal;
        }
        if !bool::from(found) {
            return Lookup::Unknown;
        }
        let identity = &self.known[index as usize].identity;
        match identity.expires_ms {
            ROption::RSome(expires) if expires <= now_ms => Lookup::Expired,
            _ => Lookup::Valid(identity.clone()),
        }
    }
}

impl TokenEntry {
    fn check(self) -> Result<Known, String> {
        let hash = match (self.token, self.sha256) {
            (Some(token), None) if !token.trim().is_empty() => token_hash(token.trim()),
            (None, Some(hex_hash)) => {
                let mut hash = [0u8; 32];
                hex::decode_to_slice(hex_hash.trim(), &mut hash).map_err(|_| {
                    "`sha256` must be 64 hexadecimal digits (the SHA-256 of the token)".to_string()
                })?;
                hash
            }
            (Some(_), None) => return Err("`token` is empty".into()),
            (Some(_), Some(_)) => return Err("give `token` or `sha256`, not both".into()),
            (None, None) => return Err("`token` or `sha256` is required".into()),
        };
        if self.project.is_empty() || self.project.len() > MAX_PROJECT_LENGTH {
            return Err(format!(
                "`project` must have 1 to {MAX_PROJECT_LENGTH} characters"
            ));
        }
        if self.user.is_empty() {
            return Err("`user` is empty".into());
        }
        if self.roles.iter().any(|r| r.trim().is_empty()) {
            return Err("a role is empty".into());
        }
        let expires_ms = match self.expires_at {
            None => ROption::RNone,
            Some(at) => ROption::RSome(parse_utc_ms(&at)?),
        };
        Ok(Known {
            hash,
            identity: Identity {
                project: RString::from(self.project),
                user: RString::from(self.user),
                roles: self
                    .roles
                    .into_iter()
                    .map(RString::from)
                    .collect::<RVec<_>>(),
                expires_ms,
            },
        })
    }
}

/// Milliseconds since the epoch of an RFC 3339 time in UTC
/// (`2027-01-01T00:00:00Z`, fractions allowed).
fn parse_utc_ms(text: &str) -> Result<u64, String> {
    let at = humantime::parse_rfc3339(text.trim()).map_err(|e| {
        format!("`expires_at` {text:?}: {e} (expected RFC 3339 in UTC, like 2027-01-01T00:00:00Z)")
    })?;
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| format!("`expires_at` {text:?} is before 1970"))?;
    Ok(since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid(table: &TokenTable, token: &str) -> Identity {
        match table.lookup(token, 0) {
            Lookup::Valid(identity) => identity,
            other => panic!("{token}: {other:?}"),
        }
    }

    #[test]
    fn clear_and_hashed_tokens_are_both_found_by_the_token() {
        let hash = hex::encode(token_hash("hashed-secret"));
        let table = TokenTable::parse(
            &format!(
                r#"
                [[tokens]]
                token = "clear-secret"
                project = "p1"
                user = "u1"
                roles = ["admin", "member"]

                [[tokens]]
                sha256 = "{}"
                project = "p2"
                user = "u2"
                "#,
                hash.to_uppercase()
            ),
            false,
        )
        .unwrap();
        let first = valid(&table, "clear-secret");
        assert_eq!(first.project.as_str(), "p1");
        assert_eq!(first.user.as_str(), "u1");
        assert_eq!(first.roles.len(), 2);
        assert_eq!(first.expires_ms, ROption::RNone);
        assert_eq!(valid(&table, "hashed-secret").project.as_str(), "p2");
        assert_eq!(
            table.lookup(&hash, 0),
            Lookup::Unknown,
            "the hash is not a token"
        );
        assert_eq!(table.lookup("clear-secre", 0), Lookup::Unknown);
    }

    #[test]
    fn json_files_have_the_same_shape() {
        let table = TokenTable::parse(
            r#"{"tokens": [{"token": "t", "project": "p", "user": "u",
                "expires_at": "2027-01-01T00:00:00.5Z"}]}"#,
            true,
        )
        .unwrap();
        assert_eq!(
            valid(&table, "t").expires_ms,
            ROption::RSome(1_798_761_600_500)
        );
    }

    #[test]
    fn expired_tokens_are_told_apart() {
        let table = TokenTable::parse(
            "[[tokens]]\ntoken = \"t\"\nproject = \"p\"\nuser = \"u\"\nexpires_at = \"2001-01-01T00:00:00Z\"\n",
            false,
        )
        .unwrap();
        assert_eq!(
            table.lookup("t", 978_307_199_999),
            Lookup::Valid(valid(&table, "t"))
        );
        assert_eq!(table.lookup("t", 978_307_200_000), Lookup::Expired);
    }

    #[test]
    fn bad_entries_are_refused_with_their_number() {
        let cases = [
            (
                "project = \"p\"\nuser = \"u\"",
                "entry 1: `token` or `sha256` is required",
            ),
            (
                "token = \"t\"\nsha256 = \"00\"\nproject = \"p\"\nuser = \"u\"",
                "not both",
            ),
            (
                "sha256 = \"abc\"\nproject = \"p\"\nuser = \"u\"",
                "64 hexadecimal digits",
            ),
            (
                "token = \" \"\nproject = \"p\"\nuser = \"u\"",
                "`token` is empty",
            ),
            (
                "token = \"t\"\nproject = \"\"\nuser = \"u\"",
                "`project` must have",
            ),
            (
                "token = \"t\"\nproject = \"p\"\nuser = \"u\"\nexpires_at = \"tomorrow\"",
                "RFC 3339",
            ),
            (
                "token = \"t\"\nproject = \"p\"\nuser = \"u\"\nrole = [\"admin\"]",
                "unknown field `role`",
            ),
            ("token = \"t\"\nproject = \"p\"", "missing field `user`"),
        ];
        for (entry, expected) in cases {
            let error = TokenTable::parse(&format!("[[tokens]]\n{entry}\n"), false).unwrap_err();
            assert!(error.contains(expected), "{entry:?}: {error}");
        }
        let twice = "[[tokens]]\ntoken = \"t\"\nproject = \"p\"\nuser = \"u\"\n".repeat(2);
        assert!(TokenTable::parse(&twice, false)
            .unwrap_err()
            .contains("entry 2: the same token is listed twice"));
    }

    #[test]
    fn an_empty_file_knows_no_token() {
        let table = TokenTable::parse("", false).unwrap();
        assert!(table.is_empty());
        assert_eq!(table.lookup("anything", 0), Lookup::Unknown);
    }
}
