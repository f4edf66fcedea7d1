//! A stream's options — where it starts, what it filters, whether it is
//! acked — read from a WebSocket `subscription_create` body or from an
//! HTTP query string, and where the start lands in a queue.

use plugin_api::{
    storage::{MessageListQuery, MessageStore, MessageStoreBox, QueueRef},
    types::ROption,
};
use serde_json::{Map, Value};

use super::filter::Filter;
use crate::api::{
    clock,
    errors::{ApiError, ApiResult},
    params::{parse_python_int, QueryParams},
};

/// Largest `last_n`.
pub const MAX_LAST_N: u64 = 1000;
/// Messages read per page while looking for a `since` time.
const SCAN_PAGE: u32 = 100;

/// Where a stream starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Only messages posted from now on.
    #[default]
    Live,
    /// Every retained message after this seq, then live ones.
    SinceSeq(u64),
    /// The last N retained messages, then live ones.
    LastN(u64),
    /// Retained messages created at or after this time (ms since the
    /// epoch), then live ones.
    Since(u64),
}

/// What a stream asked for.
#[derive(Debug, Clone, Default)]
pub struct StreamOptions {
    /// Where it starts.
    pub start: Start,
    /// Which messages it wants.
    pub filter: Filter,
    /// Whether pushes wait for acks (WebSocket only).
    pub ack: bool,
}

/// Members a socket subscription's body may have: Zaqar's, then the
/// stream options.
const SOCKET_MEMBERS: &[&str] = &[
    "queue_name",
    "subscriber",
    "ttl",
    "options",
    "since_seq",
    "last_n",
    "since",
    "filter",
    "ack",
];

fn bad(text: impl Into<String>) -> ApiError {
    ApiError::api(text)
}

impl StreamOptions {
    /// Reads the options of a socket subscription's body; an unknown
    /// member is refused, so a misspelt option never silently means "live".
    pub fn from_socket_body(body: &Map<String, Value>) -> ApiResult<Self> {
        if let Some(unknown) = body.keys().find(|k| !SOCKET_MEMBERS.contains(&k.as_str())) {
            return Err(bad(format!("Unknown subscription option {unknown:?}.")));
        }
        let int = |name: &str| -> ApiResult<Option<u64>> {
            match body.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.as_u64()),
                Some(_) => Err(bad(format!("{name} must be a non-negative integer."))),
            }
        };
        let since = match body.get("since") {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.as_str()),
            Some(_) => return Err(bad("since must be an ISO 8601 time.")),
        };
        let start = start_from(int("since_seq")?, int("last_n")?, since)?;
        let conditions: Vec<String> = match body.get("filter") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(one)) => vec![one.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| bad("filter must be a string or a list of strings."))
                })
                .collect::<ApiResult<_>>()?,
            Some(_) => return Err(bad("filter must be a string or a list of strings.")),
        };
        let ack = match body.get("ack") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(ack)) => *ack,
            Some(_) => return Err(bad("ack must be a boolean.")),
        };
        Ok(Self {
            start,
            filter: Filter::parse(&conditions).map_err(bad)?,
            ack,
        })
    }

    /// Reads the options of an HTTP stream (`since_seq`, `last_n`, `since`,
    /// repeated `filter`); `last_event_id` (the `Last-Event-ID` header a
    /// reconnecting EventSource sends) overrides `since_seq`.
    pub fn from_query(params: &QueryParams, last_event_id: Option<&str>) -> ApiResult<Self> {
        let int = |name: &str, text: Option<&str>| -> ApiResult<Option<u64>> {
            text.map(|text| {
                parse_python_int(text)
                    .and_then(|n| u64::try_from(n).ok())
                    .ok_or_else(|| bad(format!("{name} must be a non-negative integer.")))
            })
            .transpose()
        };
        let since_seq = match last_event_id {
            Some(id) => int("Last-Event-ID", Some(id))?,
            None => int("since_seq", params.text("since_seq")?.as_deref())?,
        };
        let last_n = int("last_n", params.text("last_n")?.as_deref())?;
        let since = params.text("since")?;
        let start = if last_event_id.is_some() {
            // A reconnecting EventSource repeats the URL it first used:
            // the header says where it really stands.
            start_from(since_seq, None, None)?
        } else {
            start_from(since_seq, last_n, since.as_deref())?
        };
        Ok(Self {
            start,
            filter: Filter::parse(&params.all("filter")).map_err(bad)?,
            ack: false,
        })
    }
}

fn start_from(
    since_seq: Option<u64>,
    last_n: Option<u64>,
    since: Option<&str>,
) -> ApiResult<Start> {
    let given = [since_seq.is_some(), last_n.is_some(), since.is_some()];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(bad("Give at most one of since_seq, last_n and since."));
    }
    if let Some(seq) = since_seq {
        return Ok(Start::SinceSeq(seq));
    }
    if let Some(n) = last_n {
        if !(1..=MAX_LAST_N).contains(&n) {
            return Err(bad(format!("last_n must be from 1 to {MAX_LAST_N}.")));
        }
        return Ok(Start::LastN(n));
    }
    if let Some(text) = since {
        let ms = clock::parse_iso8601(text)
            .and_then(|ms| u64::try_from(ms).ok())
            .ok_or_else(|| bad(format!("since {text:?} is not an ISO 8601 time.")))?;
        return Ok(Start::Since(ms));
    }
    Ok(Start::Live)
}

/// Messages the client asked for that are no longer retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    /// The first seq the client asked for.
    pub requested_seq: u64,
    /// The lowest retained seq (the queue's last seq + 1 when it holds
    /// none).
    pub first_available_seq: u64,
}

impl Gap {
    /// `{"requested_seq":..,"first_available_seq":..}`.
    pub fn json_fields(&self) -> String {
        format!(
            "\"requested_seq\":{},\"first_available_seq\":{}",
            self.requested_seq, self.first_available_seq
        )
    }
}

/// Where a stream starts in its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The stream gets every message after this seq.
    pub after_seq: u64,
    /// Announced before anything else, when due.
    pub gap: Option<Gap>,
    /// The queue's last seq when the stream started.
    pub last_seq: u64,
}

/// Finds where `start` lands in `queue`. A `since_seq` beyond the queue's
/// last seq is refused: the client's cursor belongs to another queue (or
/// one deleted and re-created), and starting anywhere would be a guess.
pub async fn resolve(
    store: &MessageStoreBox,
    queue: &QueueRef,
    start: Start,
) -> ApiResult<Resolved> {
    const FAILED: &str = "The stream could not be started.";
    let last_seq = store
        .queue_last_seq(queue.clone())
        .await
        .map_err(|e| ApiError::storage(e, FAILED))?;
    let first_after = |after: u64| async move {
        let query = MessageListQuery {
            after_seq: ROption::RSome(after),
            limit: 1,
            exclude_client: ROption::RNone,
            include_claimed: true,
            include_delayed: true,
        };
        store
            .message_list(queue.clone(), query, clock::now_ms())
            .await
            .map(|page| page.into_iter().next())
            .map_err(|e| ApiError::storage(e, FAILED))
    };
    let resolved = |after_seq, gap| Resolved {
        after_seq,
        gap,
        last_seq,
    };
    match start {
        Start::Live => Ok(resolved(last_seq, None)),
        Start::SinceSeq(seq) if seq > last_seq => Err(bad(format!(
            "since_seq {seq} is beyond the queue's last seq {last_seq}."
        ))),
        Start::SinceSeq(seq) if seq == last_seq => Ok(resolved(seq, None)),
        Start::SinceSeq(seq) => {
            let first = first_after(seq).await?.map_or(last_seq + 1, |m| m.seq);
            let gap = (first > seq + 1).then_some(Gap {
                requested_seq: seq + 1,
                first_available_seq: first,
            });
            Ok(resolved(seq, gap))
        }
        Start::LastN(n) => Ok(resolved(last_seq.saturating_sub(n), None)),
        Start::Since(ms) => {
            let mut cursor = 0;
            loop {
                let query = MessageListQuery {
                    after_seq: ROption::RSome(cursor),
                    limit: SCAN_PAGE,
                    exclude_client: ROption::RNone,
                    include_claimed: true,
                    include_delayed: true,
                };
                let page = store
                    .message_list(queue.clone(), query, clock::now_ms())
                    .await
                    .map_err(|e| ApiError::storage(e, FAILED))?;
                if let Some(found) = page.iter().find(|m| m.created_ms >= ms) {
                    return Ok(resolved(found.seq - 1, None));
                }
                match page.last() {
                    Some(last) if page.len() as u32 == SCAN_PAGE => cursor = last.seq,
                    _ => return Ok(resolved(last_seq, None)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn socket(body: Value) -> ApiResult<StreamOptions> {
        StreamOptions::from_socket_body(body.as_object().unwrap())
    }

    #[test]
    fn socket_bodies_read_every_option() {
        let options = socket(json!({"queue_name": "q", "ttl": 600, "since_seq": 41,
            "filter": ["kind==deploy"], "ack": true}))
        .unwrap();
        assert_eq!(options.start, Start::SinceSeq(41));
        assert!(options.ack);
        assert!(!options.filter.is_empty());
        assert_eq!(socket(json!({"last_n": 5})).unwrap().start, Start::LastN(5));
        assert_eq!(
            socket(json!({"since": "1970-01-01T00:00:01Z"}))
                .unwrap()
                .start,
            Start::Since(1000)
        );
        assert_eq!(
            socket(json!({"filter": "a==1"})).unwrap().filter,
            Filter::parse(&["a==1"]).unwrap()
        );
    }

    #[test]
    fn bad_socket_options_are_refused() {
        for body in [
            json!({"since_sequence": 1}),
            json!({"since_seq": "1"}),
            json!({"since_seq": -1}),
            json!({"since_seq": 1.5}),
            json!({"since_seq": 1, "last_n": 2}),
            json!({"last_n": 0}),
            json!({"last_n": 1001}),
            json!({"since": "yesterday"}),
            json!({"filter": "nonsense"}),
            json!({"filter": [1]}),
            json!({"ack": "yes"}),
        ] {
            assert!(socket(body.clone()).is_err(), "{body}");
        }
    }

    #[test]
    fn last_event_id_overrides_since_seq_and_must_be_a_number() {
        let params = QueryParams::parse("since_seq=3&filter=a%3D%3D1&filter=b^%3Dx");
        let options = StreamOptions::from_query(&params, Some("7")).unwrap();
        assert_eq!(options.start, Start::SinceSeq(7));
        assert_eq!(options.filter, Filter::parse(&["a==1", "b^=x"]).unwrap());
        assert!(StreamOptions::from_query(&params, Some("seven")).is_err());
        assert_eq!(
            StreamOptions::from_query(&params, None).unwrap().start,
            Start::SinceSeq(3)
        );
    }
}
