//! The HTTP query string, read as Zaqar's web framework (falcon) reads it:
//! comma-separated values split into lists, blank values dropped.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::errors::{ApiError, ApiResult, ParamKind};

/// The parameters of an HTTP query string, percent-decoded, blank values
/// dropped.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Parses `a=1&b=2` (without `?`).
    pub fn parse(query: &str) -> Self {
        let mut pairs = Vec::new();
        // One pass over the bytes finds the pairs, their `=` and whether
        // they need decoding at all (a query has a pair or two, for which
        // `str` searchers cost more than the search).
        let (mut start, mut equals, mut encoded) = (0, None, false);
        for (at, byte) in query.bytes().chain([b'&']).enumerate() {
            match byte {
                b'&' => {
                    if let Some(equals) = equals {
                        let (key, value) = (&query[start..equals], &query[equals + 1..at]);
                        let decode = |raw: &str| match encoded {
                            true => decode_component(raw),
                            false => raw.to_owned(),
                        };
                        // keep_blank_qs_values=False: `?ids=` is the same as no `ids`.
                        if !key.is_empty() && !value.is_empty() {
                            pairs.push((decode(key), decode(value)));
                        }
                    }
                    (start, equals, encoded) = (at + 1, None, false);
                }
                b'=' if equals.is_none() => equals = Some(at),
                b'+' | b'%' => encoded = true,
                _ => {}
            }
        }
        Self { pairs }
    }

    /// The last value given for `name`.
    fn last(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Decodes one query component: `+` is a space, then percent-decoding
/// (invalid UTF-8 is replaced, as a WSGI server's latin-1 round trip would
/// not fail either).
fn decode_component(raw: &str) -> String {
    let spaced: Cow<'_, str> = if raw.contains('+') {
        raw.replace('+', " ").into()
    } else {
        raw.into()
    };
    percent_decoded(&spaced)
}

/// `raw` percent-decoded, invalid UTF-8 replaced; for query components
/// and the request path. Most have nothing to decode: they are copied
/// without the decoder's byte-by-byte pass and UTF-8 check (~1,000
/// instructions a request).
pub fn percent_decoded(raw: &str) -> String {
    if raw.contains('%') {
        percent_decode_str(raw).decode_utf8_lossy().into_owned()
    } else {
        raw.to_owned()
    }
}

impl QueryParams {
    /// A string parameter.
    pub fn text(&self, name: &str) -> ApiResult<Option<Cow<'_, str>>> {
        Ok(self.last(name).map(Cow::Borrowed))
    }

    /// An integer parameter (Python's `int()` syntax).
    pub fn int(&self, name: &str) -> ApiResult<Option<i64>> {
        self.last(name)
            .map(|value| {
                parse_python_int(value).ok_or_else(|| ApiError::InvalidParameter {
                    name: name.to_string(),
                    expected: ParamKind::Integer,
                })
            })
            .transpose()
    }

    /// A boolean parameter (falcon's spellings).
    pub fn boolean(&self, name: &str) -> ApiResult<Option<bool>> {
        self.last(name)
            .map(|value| {
                parse_falcon_bool(value).ok_or_else(|| ApiError::InvalidParameter {
                    name: name.to_string(),
                    expected: ParamKind::Boolean,
                })
            })
            .transpose()
    }

    /// A list parameter (`ids=a,b`); `None` when absent or empty.
    pub fn list(&self, name: &str) -> ApiResult<Option<Vec<String>>> {
        let items: Vec<String> = self
            .pairs
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect();
        Ok((!items.is_empty()).then_some(items))
    }

    /// Every value given for `name`, in order, as given (no comma
    /// splitting): repeatable parameters such as stream filters.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// Every parameter not in `known`, as text: the queue listing's
    /// metadata filters (`GET /v2/queues?color=red`).
    pub fn others(&self, known: &[&str]) -> Vec<(String, String)> {
        let mut others: Vec<(String, String)> = Vec::new();
        for (key, value) in &self.pairs {
            if known.contains(&key.as_str()) {
                continue;
            }
            // A repeated key keeps its last value, like a dict would.
            match others.iter_mut().find(|(k, _)| k == key) {
                Some(existing) => existing.1 = value.clone(),
                None => others.push((key.clone(), value.clone())),
            }
        }
        others
    }
}

/// Python's `int()` on a query value: optional sign and surrounding
/// whitespace; values beyond 64 bits saturate (they fail range checks
/// anyway).
pub fn parse_python_int(value: &str) -> Option<i64> {
    let trimmed = value.trim();
    let (negative, digits) = match trimmed.as_bytes().first()? {
        b'-' => (true, &trimmed[1..]),
        b'+' => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(match digits.parse::<i64>() {
        Ok(n) if negative => -n,
        Ok(n) => n,
        Err(_) if negative => i64::MIN,
        Err(_) => i64::MAX,
    })
}

/// Falcon's boolean strings.
pub fn parse_falcon_bool(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" | "on" => Some(true),
        "false" | "f" | "no" | "n" | "0" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_what_splitting_and_decoding_each_part_gives() {
        // The plain reading: split on `&`, then on the first `=`, decode
        // both sides, keep the pairs with neither side blank.
        let plainly = |query: &str| -> Vec<(String, String)> {
            query
                .split('&')
                .filter_map(|pair| {
                    let (key, value) = pair.split_once('=')?;
                    let (key, value) = (decode_component(key), decode_component(value));
                    (!key.is_empty() && !value.is_empty()).then_some((key, value))
                })
                .collect()
        };
        let alphabet = ["a", "b", "=", "&", "+", "%", "2", "C", "é", "%FF"];
        let mut seed = 5u64;
        for _ in 0..20_000 {
            let mut query = String::new();
            for _ in 0..(seed % 12) {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                query.push_str(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            assert_eq!(QueryParams::parse(&query).pairs, plainly(&query), "{query}");
        }
    }

    #[test]
    fn blank_query_values_count_as_absent() {
        let params = QueryParams::parse("ids=&limit=5");
        assert_eq!(params.list("ids").unwrap(), None);
        assert_eq!(params.int("limit").unwrap(), Some(5));
    }

    #[test]
    fn query_values_are_percent_decoded_and_plus_is_space() {
        let params = QueryParams::parse("name=a%2Cb+c&plain=x-y&bad=a%FF");
        assert_eq!(params.text("name").unwrap().as_deref(), Some("a,b c"));
        assert_eq!(params.text("plain").unwrap().as_deref(), Some("x-y"));
        assert_eq!(params.text("bad").unwrap().as_deref(), Some("a\u{FFFD}"));
    }

    #[test]
    fn list_parameters_split_on_commas_and_drop_blanks() {
        let params = QueryParams::parse("ids=a,,b&ids=c");
        assert_eq!(
            params.list("ids").unwrap(),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
    }

    #[test]
    fn non_integer_limit_is_falcons_invalid_parameter() {
        let error = QueryParams::parse("limit=ten").int("limit").unwrap_err();
        assert_eq!(error.title(), "Invalid parameter");
        assert_eq!(
            error.description().unwrap(),
            "The \"limit\" parameter is invalid. The value must be an integer."
        );
    }

    #[test]
    fn booleans_accept_falcons_spellings_and_reject_others() {
        for (text, expected) in [
            ("true", true),
            ("yes", true),
            ("ON", true),
            ("0", false),
            ("off", false),
        ] {
            assert_eq!(parse_falcon_bool(text), Some(expected), "{text}");
        }
        let error = QueryParams::parse("echo=maybe")
            .boolean("echo")
            .unwrap_err();
        assert_eq!(
            error.description().unwrap(),
            "The \"echo\" parameter is invalid. The value of the parameter must be \"true\" or \"false\"."
        );
    }

    #[test]
    fn python_int_accepts_sign_and_whitespace_and_saturates() {
        assert_eq!(parse_python_int(" +7 "), Some(7));
        assert_eq!(parse_python_int("-3"), Some(-3));
        assert_eq!(parse_python_int("99999999999999999999"), Some(i64::MAX));
        assert_eq!(parse_python_int("1.5"), None);
        assert_eq!(parse_python_int(""), None);
    }

    #[test]
    fn unknown_query_parameters_are_offered_as_filters() {
        let params = QueryParams::parse("limit=2&color=red&color=blue&size=3");
        assert_eq!(
            params.others(&["limit"]),
            vec![
                ("color".to_string(), "blue".to_string()),
                ("size".to_string(), "3".to_string())
            ]
        );
    }
}
