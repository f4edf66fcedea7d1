//! WebSocket frames decoded into typed fields, without building a JSON
//! tree: a frame `{"action", "headers", "body"}` is read in one pass that
//! keeps each field as the raw value it arrived as ([`Member`]: JSON text
//! borrowed from a text frame, or a MessagePack value's bytes from a
//! binary one), and the fields an action reads are interpreted from there.
//! A MessagePack frame made of the values JSON has is read where it lies;
//! any other is first transcoded, value by value, into JSON text.

use std::{borrow::Cow, fmt};

use serde::{
    de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor},
    Deserialize, Deserializer,
};
use serde_json::{value::RawValue, Number};

use super::{
    body::from_json_bytes,
    command::{Document, Param, PostBody, Source},
    errors::{ApiError, ApiResult, ParamKind},
    post_body::{read_post_messages, MessagesIn, MessagesText},
};

/// A decoded frame: its three members as received (`None` when absent).
#[derive(Debug, Default)]
pub struct Frame<'a> {
    pub action: Option<&'a RawValue>,
    pub headers: Option<&'a RawValue>,
    pub body: Option<&'a RawValue>,
}

/// A frame's JSON text, or why there is none.
pub enum Decoded<'a> {
    /// An object, with its members.
    Frame(Frame<'a>),
    /// Valid JSON, but not an object.
    NotAnObject,
}

/// A frame member as received: JSON text from a text frame, or the bytes
/// of a MessagePack value from a binary frame made only of the values JSON
/// has (see [`super::packed::plain_members`]), which read exactly as their
/// JSON text would.
#[derive(Debug, Clone, Copy)]
pub enum Member<'a> {
    Json(&'a RawValue),
    Packed(super::packed::Plain<'a>),
}

impl<'a> Member<'a> {
    /// Its JSON text: borrowed from a text frame, transcoded from a binary
    /// one.
    pub fn json(self) -> Cow<'a, str> {
        match self {
            Member::Json(raw) => Cow::Borrowed(raw.get()),
            Member::Packed(plain) => Cow::Owned(plain.to_json_text()),
        }
    }

    /// Its string, if it is one; borrowed unless it had JSON escapes.
    pub fn as_string(self) -> Option<Cow<'a, str>> {
        match self {
            Member::Json(raw) => as_string(Some(raw)),
            Member::Packed(plain) => plain.as_str().map(Cow::Borrowed),
        }
    }

    /// Whether it is `null` (absent, for a parameter).
    pub fn is_null(self) -> bool {
        match self {
            Member::Json(raw) => raw.get() == "null",
            Member::Packed(plain) => super::packed::is_null(plain.bytes()),
        }
    }

    /// Whether it is an object (a map).
    pub fn is_object(self) -> bool {
        match self {
            Member::Json(raw) => is_object(raw),
            Member::Packed(plain) => super::packed::is_map(plain.bytes()),
        }
    }

    /// It as a JSON value, for the readers that take one.
    pub fn raw(self) -> Cow<'a, RawValue> {
        match self {
            Member::Json(raw) => Cow::Borrowed(raw),
            Member::Packed(_) => Cow::Owned(
                RawValue::from_string(self.json().into_owned())
                    .unwrap_or_else(|_| RawValue::NULL.to_owned()),
            ),
        }
    }
}

/// The three members of a frame, in either encoding.
#[derive(Debug, Default, Clone, Copy)]
pub struct Members<'a> {
    pub action: Option<Member<'a>>,
    pub headers: Option<Member<'a>>,
    pub body: Option<Member<'a>>,
}

impl<'a> Members<'a> {
    /// A JSON frame's.
    pub fn json(frame: &Frame<'a>) -> Self {
        Members {
            action: frame.action.map(Member::Json),
            headers: frame.headers.map(Member::Json),
            body: frame.body.map(Member::Json),
        }
    }

    /// A MessagePack frame's, from [`super::packed::plain_members`].
    pub fn packed(frame: &super::packed::PlainFrame<'a>) -> Self {
        Members {
            action: frame.action.map(Member::Packed),
            headers: frame.headers.map(Member::Packed),
            body: frame.body.map(Member::Packed),
        }
    }
}

/// Everything serving reads of a frame, spelled out: two readings of one
/// frame agree when their descriptions do. The tests and the `ws_frame`
/// fuzz target compare a MessagePack frame read where it lies with the
/// same frame read through its JSON text.
pub fn describe(members: &Members<'_>) -> String {
    use std::fmt::Write;
    let strings = |member: Option<Member<'_>>| {
        member.map(|m| {
            (
                m.is_null(),
                m.as_string().map(Cow::into_owned),
                m.json().into_owned(),
            )
        })
    };
    let headers = Headers::read(members.headers);
    let fields = Fields::read(members.body);
    let mut out = format!(
        "action {:?}\nheaders {:?} / {:?}\nbody {:?}\n",
        strings(members.action),
        headers.0,
        headers.to_http(),
        strings(members.body),
    );
    for param in Param::ALL {
        let _ = writeln!(
            out,
            "{param:?}: {:?} {:?} {:?} {:?}",
            fields.text(param),
            fields.int(param),
            fields.boolean(param),
            fields.list(param)
        );
    }
    for document in Document::ALL {
        let _ = writeln!(out, "{document:?}: {:?}", fields.document(document));
    }
    let _ = writeln!(
        out,
        "messages {:?}\nids {:?}\nsubscriber {}",
        read_post_messages(fields.messages.as_ref()),
        [
            fields.queue_name,
            fields.message_id,
            fields.claim_id,
            fields.subscription_id,
            fields.pool_name,
            fields.flavor_name
        ]
        .map(|m| m.and_then(Member::as_string)),
        fields.subscriber.is_some()
    );
    out
}

/// How deep a frame may nest arrays and objects: the depth JSON readers
/// (ours included, when an answer is transcoded) accept.
pub const MAX_FRAME_DEPTH: usize = 128;

/// Decodes a JSON frame.
pub fn decode(text: &[u8]) -> Result<Decoded<'_>, String> {
    if may_nest_deeper_than(text, MAX_FRAME_DEPTH) && nesting_depth(text) > MAX_FRAME_DEPTH {
        return Err("recursion limit exceeded".into());
    }
    from_json_bytes(text).map_err(|e| e.to_string())
}

/// Whether JSON text has more than `depth` brackets that open (counted
/// inside strings too): nesting cannot go deeper than that, so for a
/// frame's usual handful this settles it without [`nesting_depth`], which
/// looks at every byte in turn.
fn may_nest_deeper_than(text: &[u8], depth: usize) -> bool {
    memchr::memchr2_iter(b'[', b'{', text).nth(depth).is_some()
}

/// The deepest nesting of arrays and objects in JSON text (strings skipped).
fn nesting_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &byte in text {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Transcodes a MessagePack frame into JSON text, value by value (in one
/// pass where [`super::packed::to_json`] can).
pub fn msgpack_to_json(payload: &[u8]) -> Result<Vec<u8>, String> {
    if let Some(text) = super::packed::to_json(payload) {
        return Ok(text);
    }
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(payload);
    let mut out = Vec::with_capacity(payload.len() + payload.len() / 2);
    let mut serializer = serde_json::Serializer::new(&mut out);
    serde_transcode::transcode(&mut deserializer, &mut serializer).map_err(|e| e.to_string())?;
    Ok(out)
}

/// Transcodes JSON text into MessagePack, value by value.
pub fn json_to_msgpack(text: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    append_json_as_msgpack(text, &mut out)?;
    Ok(out)
}

/// Appends JSON text transcoded into MessagePack, value by value (in one
/// pass where [`super::json_packed::append`] can).
pub fn append_json_as_msgpack(text: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    if super::json_packed::append(text, out).is_some() {
        return Ok(());
    }
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let mut serializer = rmp_serde::Serializer::new(out);
    serde_transcode::transcode(&mut deserializer, &mut serializer).map_err(|e| e.to_string())
}

/// Whether a raw value is a JSON object.
pub fn is_object(raw: &RawValue) -> bool {
    raw.get().trim_start().starts_with('{')
}

/// A raw value's string, if it is a JSON string; borrowed from the frame
/// when it has no escapes (action names, queue names and ids never do).
pub fn as_string(raw: Option<&RawValue>) -> Option<Cow<'_, str>> {
    let raw = raw?;
    let quoted = raw.get().trim();
    let inner = quoted.strip_prefix('"')?;
    // The raw value was validated as JSON: between its quotes, a string
    // with neither backslash nor quote is its own text.
    if let Some(plain) = inner
        .strip_suffix('"')
        .filter(|s| memchr::memchr2(b'\\', b'"', s.as_bytes()).is_none())
    {
        return Some(Cow::Borrowed(plain));
    }
    serde_json::from_str::<String>(quoted).ok().map(Cow::Owned)
}

impl<'de> Deserialize<'de> for Decoded<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(FrameVisitor)
    }
}

struct FrameVisitor;

impl<'de> Visitor<'de> for FrameVisitor {
    type Value = Decoded<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a frame object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut frame = Frame::default();
        // A repeated member keeps its last value, as a JSON object would.
        while let Some(key) = map.next_key::<FrameKey>()? {
            let slot = match key {
                FrameKey::Action => &mut frame.action,
                FrameKey::Headers => &mut frame.headers,
                FrameKey::Body => &mut frame.body,
                FrameKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = Some(map.next_value::<&'de RawValue>()?);
        }
        Ok(Decoded::Frame(frame))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Decoded::NotAnObject)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Decoded::NotAnObject)
    }
}

enum FrameKey {
    Action,
    Headers,
    Body,
    Other,
}

impl<'de> Deserialize<'de> for FrameKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FrameKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FrameKey, E> {
                Ok(match key {
                    "action" => FrameKey::Action,
                    "headers" => FrameKey::Headers,
                    "body" => FrameKey::Body,
                    _ => FrameKey::Other,
                })
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

/// Reads an object member (anything else reads as `T::default()`): a JSON
/// one with its deserializer, a MessagePack map by handing each entry to
/// `set` (every key is a string in a frame read where it lies).
fn read_object<'a, T: Default + Deserialize<'a>>(
    member: Option<Member<'a>>,
    mut set: impl FnMut(&mut T, &'a str, Member<'a>),
) -> T {
    match member.filter(|m| m.is_object()) {
        Some(Member::Json(raw)) => serde_json::from_str(raw.get()).unwrap_or_default(),
        Some(Member::Packed(plain)) => {
            let mut object = T::default();
            plain.each_entry(|key, value| set(&mut object, key, Member::Packed(value)));
            object
        }
        None => T::default(),
    }
}

/// A frame's `headers`: `(name, string value)` in order, a repeated name
/// keeping its last value; values that are not strings read as absent.
/// Borrowed from the frame where no escape needs decoding.
#[derive(Debug, Default)]
pub struct Headers<'a>(Vec<(Cow<'a, str>, Option<Cow<'a, str>>)>);

impl<'a> Headers<'a> {
    /// Reads the `headers` member (anything but an object has no headers).
    pub fn read(member: Option<Member<'a>>) -> Self {
        read_object(member, |headers: &mut Self, key, value| {
            headers.set(Cow::Borrowed(key), value.as_string());
        })
    }

    /// Sets a header; a repeated name keeps its last value.
    fn set(&mut self, name: Cow<'a, str>, value: Option<Cow<'a, str>>) {
        match self.0.iter_mut().find(|(k, _)| *k == name) {
            Some(existing) => existing.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The string-valued headers as HTTP headers (lowercase names), for
    /// an auth strategy.
    pub fn to_http(&self) -> Vec<plugin_api::transport::Header> {
        self.0
            .iter()
            .filter_map(|(name, value)| {
                Some(plugin_api::transport::Header::new(name, value.as_deref()?))
            })
            .collect()
    }

    /// A header's string value, its name matched without regard to case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .and_then(|(_, value)| value.as_deref())
    }
}

impl<'de> Deserialize<'de> for Headers<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HeadersVisitor;
        impl<'de> Visitor<'de> for HeadersVisitor {
            type Value = Headers<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Headers<'de>, A::Error> {
                let mut headers = Headers::default();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    headers.set(key, as_string(Some(map.next_value::<&'de RawValue>()?)));
                }
                Ok(headers)
            }
        }
        deserializer.deserialize_map(HeadersVisitor)
    }
}

/// A string borrowed from the input where it has no escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(text)))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text.to_string())))
            }
            fn visit_string<E: de::Error>(self, text: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(text)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The members of a frame's `body` the actions read, each as received.
#[derive(Debug, Default)]
pub struct Fields<'a> {
    pub queue_name: Option<Member<'a>>,
    pub message_id: Option<Member<'a>>,
    pub claim_id: Option<Member<'a>>,
    pub subscription_id: Option<Member<'a>>,
    marker: Option<Member<'a>>,
    limit: Option<Member<'a>>,
    detailed: Option<Member<'a>>,
    name: Option<Member<'a>>,
    with_count: Option<Member<'a>>,
    echo: Option<Member<'a>>,
    include_claimed: Option<Member<'a>>,
    include_delayed: Option<Member<'a>>,
    message_ids: Option<Member<'a>>,
    claim_ids: Option<Member<'a>>,
    pop: Option<Member<'a>>,
    metadata: Option<Member<'a>>,
    /// JSON text: the one member read whole, by the post's own reader.
    messages: Option<MessagesText<'a>>,
    ttl: Option<Member<'a>>,
    grace: Option<Member<'a>>,
    pub subscriber: Option<Member<'a>>,
    options: Option<Member<'a>>,
    resource_types: Option<Member<'a>>,
    pub pool_name: Option<Member<'a>>,
    pub flavor_name: Option<Member<'a>>,
    uri: Option<Member<'a>>,
    weight: Option<Member<'a>>,
    flavor: Option<Member<'a>>,
    pool_list: Option<Member<'a>>,
    capabilities: Option<Member<'a>>,
}

impl<'a> Fields<'a> {
    /// Reads the `body` member (anything but an object has no fields).
    pub fn read(member: Option<Member<'a>>) -> Self {
        if let Some(Member::Json(raw)) = member.filter(|m| m.is_object()) {
            // A post's messages are read in this same pass; a list of
            // another shape, or one the post reader cannot read, fails it
            // and the body is read again with `messages` kept as text.
            if let Some(fields) = Self::read_json(raw.get(), true) {
                return fields;
            }
            return Self::read_json(raw.get(), false).unwrap_or_default();
        }
        read_object(member, |fields: &mut Self, key, value| {
            fields.set(FieldKey::from_name(key), value);
        })
    }

    /// Reads a JSON body; `with_messages`: read `messages` on the way (see
    /// [`MessagesIn`]).
    fn read_json(text: &'a str, with_messages: bool) -> Option<Self> {
        let mut deserializer = serde_json::Deserializer::from_str(text);
        let messages_in = with_messages.then_some(text);
        let fields = deserializer
            .deserialize_map(FieldsVisitor { messages_in })
            .ok()?;
        deserializer.end().ok()?;
        Some(fields)
    }

    /// Keeps a member's value; a repeated member keeps its last value.
    fn set(&mut self, key: FieldKey, value: Member<'a>) {
        let slot = match key {
            FieldKey::QueueName => &mut self.queue_name,
            FieldKey::MessageId => &mut self.message_id,
            FieldKey::ClaimId => &mut self.claim_id,
            FieldKey::SubscriptionId => &mut self.subscription_id,
            FieldKey::Marker => &mut self.marker,
            FieldKey::Limit => &mut self.limit,
            FieldKey::Detailed => &mut self.detailed,
            FieldKey::Name => &mut self.name,
            FieldKey::WithCount => &mut self.with_count,
            FieldKey::Echo => &mut self.echo,
            FieldKey::IncludeClaimed => &mut self.include_claimed,
            FieldKey::IncludeDelayed => &mut self.include_delayed,
            FieldKey::MessageIds => &mut self.message_ids,
            FieldKey::ClaimIds => &mut self.claim_ids,
            FieldKey::Pop => &mut self.pop,
            FieldKey::Metadata => &mut self.metadata,
            FieldKey::Messages => {
                self.messages = Some(match value {
                    Member::Json(raw) => MessagesText::json(raw.get()),
                    Member::Packed(plain) => plain.messages_text(),
                });
                return;
            }
            FieldKey::Ttl => &mut self.ttl,
            FieldKey::Grace => &mut self.grace,
            FieldKey::Subscriber => &mut self.subscriber,
            FieldKey::Options => &mut self.options,
            FieldKey::ResourceTypes => &mut self.resource_types,
            FieldKey::PoolName => &mut self.pool_name,
            FieldKey::FlavorName => &mut self.flavor_name,
            FieldKey::Uri => &mut self.uri,
            FieldKey::Weight => &mut self.weight,
            FieldKey::Flavor => &mut self.flavor,
            FieldKey::PoolList => &mut self.pool_list,
            FieldKey::Capabilities => &mut self.capabilities,
            FieldKey::Other => return,
        };
        *slot = Some(value);
    }

    /// A parameter's JSON text; `null` counts as absent.
    fn param(&self, param: Param) -> Option<Cow<'a, str>> {
        let raw = match param {
            Param::Marker => self.marker,
            Param::Limit => self.limit,
            Param::Detailed => self.detailed,
            Param::Name => self.name,
            Param::WithCount => self.with_count,
            Param::Echo => self.echo,
            Param::IncludeClaimed => self.include_claimed,
            Param::IncludeDelayed => self.include_delayed,
            // Zaqar's WebSocket API names the HTTP `ids` parameter `message_ids`.
            Param::Ids => self.message_ids,
            Param::ClaimIds => self.claim_ids,
            Param::Pop => self.pop,
            Param::ClaimId => self.claim_id,
        };
        raw.filter(|member| !member.is_null()).map(Member::json)
    }

    /// `{"a":<raw>,"b":<raw>}` of the members present (`null` included):
    /// the document an action reads, spliced from the frame's bytes.
    fn splice(members: &[(&str, Option<Member<'_>>)]) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.push(b'{');
        for (name, member) in members {
            if let Some(member) = member {
                if out.len() > 1 {
                    out.push(b',');
                }
                super::render::push_key(&mut out, name);
                out.extend_from_slice(member.json().as_bytes());
            }
        }
        out.push(b'}');
        out
    }
}

fn first_byte(text: &str) -> u8 {
    text.trim_start().bytes().next().unwrap_or(b'n')
}

impl Source for Fields<'_> {
    fn text(&self, param: Param) -> ApiResult<Option<Cow<'_, str>>> {
        let Some(raw) = self.param(param) else {
            return Ok(None);
        };
        let wrong = || ApiError::api(format!("The \"{}\" field must be a string.", param.name()));
        match first_byte(&raw) {
            b'"' => serde_json::from_str::<String>(&raw)
                .map(|text| Some(Cow::Owned(text)))
                .map_err(|_| wrong()),
            b'-' | b'0'..=b'9' => serde_json::from_str::<Number>(&raw)
                .map(|number| Some(Cow::Owned(number.to_string())))
                .map_err(|_| wrong()),
            _ => Err(wrong()),
        }
    }

    fn int(&self, param: Param) -> ApiResult<Option<i64>> {
        let Some(raw) = self.param(param) else {
            return Ok(None);
        };
        match serde_json::from_str::<Number>(&raw) {
            Ok(number) if number.is_i64() => Ok(number.as_i64()),
            // Past i64::MAX saturates: it fails every range check.
            Ok(number) if number.is_u64() => Ok(Some(i64::MAX)),
            _ => Err(ApiError::InvalidParameter {
                name: param.name().to_string(),
                expected: ParamKind::Integer,
            }),
        }
    }

    fn boolean(&self, param: Param) -> ApiResult<Option<bool>> {
        let Some(raw) = self.param(param) else {
            return Ok(None);
        };
        match &*raw {
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(ApiError::InvalidParameter {
                name: param.name().to_string(),
                expected: ParamKind::Boolean,
            }),
        }
    }

    fn list(&self, param: Param) -> ApiResult<Option<Vec<String>>> {
        let Some(raw) = self.param(param) else {
            return Ok(None);
        };
        match serde_json::from_str::<Vec<String>>(&raw) {
            Ok(list) if list.is_empty() => Ok(None),
            Ok(list) => Ok(Some(list)),
            Err(_) => Err(ApiError::api(format!(
                "The \"{}\" field must be a list of strings.",
                param.name()
            ))),
        }
    }

    fn filters(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    fn document(&self, document: Document) -> Option<Cow<'_, [u8]>> {
        match document {
            Document::QueueMetadata => self.metadata.map(|member| match member.json() {
                Cow::Borrowed(text) => Cow::Borrowed(text.as_bytes()),
                Cow::Owned(text) => Cow::Owned(text.into_bytes()),
            }),
            Document::Purge => self
                .resource_types
                .map(|_| Cow::Owned(Self::splice(&[("resource_types", self.resource_types)]))),
            Document::Claim => Some(Cow::Owned(Self::splice(&[
                ("ttl", self.ttl),
                ("grace", self.grace),
            ]))),
            Document::Subscription => Some(Cow::Owned(Self::splice(&[
                ("subscriber", self.subscriber),
                ("ttl", self.ttl),
                ("options", self.options),
            ]))),
            Document::Pool => Some(Cow::Owned(Self::splice(&[
                ("uri", self.uri),
                ("weight", self.weight),
                ("flavor", self.flavor),
                ("options", self.options),
            ]))),
            Document::Flavor => Some(Cow::Owned(Self::splice(&[
                ("pool_list", self.pool_list),
                ("capabilities", self.capabilities),
            ]))),
            // Not WebSocket actions.
            Document::QueuePatch | Document::Share | Document::Confirmation => None,
        }
    }

    fn post_body(&self) -> PostBody<'_> {
        PostBody::Messages(self.messages.as_ref())
    }
}

impl<'de> Deserialize<'de> for Fields<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor { messages_in: None })
    }
}

/// Reads a JSON body's members; with `messages_in` (the body's text), reads
/// `messages` as a post's list on the way, failing if it is not one.
struct FieldsVisitor<'de> {
    messages_in: Option<&'de str>,
}

impl<'de> Visitor<'de> for FieldsVisitor<'de> {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields<'de>, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<FieldKey>()? {
            match (key, self.messages_in) {
                (FieldKey::Other, _) => {
                    map.next_value::<IgnoredAny>()?;
                }
                (FieldKey::Messages, Some(base)) => {
                    let messages = map.next_value_seed(MessagesIn { base })?;
                    fields.messages =
                        Some(messages.ok_or_else(|| de::Error::custom("not a post's list"))?);
                }
                (key, _) => fields.set(key, Member::Json(map.next_value::<&'de RawValue>()?)),
            }
        }
        Ok(fields)
    }
}

/// The body members actions read, matched without allocating.
enum FieldKey {
    QueueName,
    MessageId,
    ClaimId,
    SubscriptionId,
    Marker,
    Limit,
    Detailed,
    Name,
    WithCount,
    Echo,
    IncludeClaimed,
    IncludeDelayed,
    MessageIds,
    ClaimIds,
    Pop,
    Metadata,
    Messages,
    Ttl,
    Grace,
    Subscriber,
    Options,
    ResourceTypes,
    PoolName,
    FlavorName,
    Uri,
    Weight,
    Flavor,
    PoolList,
    Capabilities,
    Other,
}

impl<'de> Deserialize<'de> for FieldKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = FieldKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> Result<FieldKey, E> {
                Ok(FieldKey::from_name(key))
            }
        }
        deserializer.deserialize_identifier(KeyVisitor)
    }
}

impl FieldKey {
    fn from_name(key: &str) -> FieldKey {
        use FieldKey as K;
        match key {
            "queue_name" => K::QueueName,
            "message_id" => K::MessageId,
            "claim_id" => K::ClaimId,
            "subscription_id" => K::SubscriptionId,
            "marker" => K::Marker,
            "limit" => K::Limit,
            "detailed" => K::Detailed,
            "name" => K::Name,
            "with_count" => K::WithCount,
            "echo" => K::Echo,
            "include_claimed" => K::IncludeClaimed,
            "include_delayed" => K::IncludeDelayed,
            "message_ids" => K::MessageIds,
            "claim_ids" => K::ClaimIds,
            "pop" => K::Pop,
            "metadata" => K::Metadata,
            "messages" => K::Messages,
            "ttl" => K::Ttl,
            "grace" => K::Grace,
            "subscriber" => K::Subscriber,
            "options" => K::Options,
            "resource_types" => K::ResourceTypes,
            "pool_name" => K::PoolName,
            "flavor_name" => K::FlavorName,
            "uri" => K::Uri,
            "weight" => K::Weight,
            "flavor" => K::Flavor,
            "pool_list" => K::PoolList,
            "capabilities" => K::Capabilities,
            _ => K::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Fields<'_> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn frame_members_are_kept_raw_and_the_last_repeat_wins() {
        let Decoded::Frame(frame) =
            decode(br#"{"action": "a", "body": {"x": 1}, "action": "queue_list"}"#).unwrap()
        else {
            panic!("an object")
        };
        assert_eq!(frame.action.unwrap().get(), r#""queue_list""#);
        assert_eq!(frame.body.unwrap().get(), r#"{"x": 1}"#);
        assert!(frame.headers.is_none());
        assert!(matches!(decode(b"[1]").unwrap(), Decoded::NotAnObject));
        let deep = format!("{}{}", "[".repeat(129), "]".repeat(129));
        assert!(decode(deep.as_bytes()).is_err());
        let quoted = format!(r#"{{"a": "{}\"", "b": [[]]}}"#, "[".repeat(200));
        assert_eq!(nesting_depth(quoted.as_bytes()), 3);
        // Past the bracket count, the exact walk decides: this one is fine.
        assert!(may_nest_deeper_than(quoted.as_bytes(), MAX_FRAME_DEPTH));
        assert!(matches!(decode(quoted.as_bytes()), Ok(Decoded::Frame(_))));
        assert!(!may_nest_deeper_than(b"[[[]]]", 3));
        assert!(may_nest_deeper_than(b"[[[[]]]]", 3));
    }

    /// A JSON post's messages are read in the pass that reads the body;
    /// every other `messages` is read afterwards, and either way the post
    /// reader answers exactly as it does for the same text over HTTP.
    #[test]
    fn a_json_post_is_read_in_one_pass_and_any_other_list_as_before() {
        let read = |body: &str| {
            let raw: &RawValue = serde_json::from_str(body).unwrap();
            let fields = Fields::read(Some(Member::Json(raw)));
            let on_the_way = fields.messages.as_ref().is_some_and(|m| m.read.is_some());
            let queue = fields
                .queue_name
                .and_then(Member::as_string)
                .map(Cow::into_owned);
            let messages = format!("{:?}", read_post_messages(fields.messages.as_ref()));
            (on_the_way, queue, messages)
        };
        let over_http = |body: &str| {
            format!(
                "{:?}",
                super::super::post_body::read_post(Some(body.as_bytes()))
            )
        };
        let post = r#"{"queue_name": "q", "messages": [{"body": {"a": [1, 2]}, "ttl": 60},
            {"delay": 5, "body": "x\"y", "body": [true]}], "messages_count": 1}"#;
        let (on_the_way, queue, messages) = read(post);
        assert!(on_the_way);
        assert_eq!(queue.as_deref(), Some("q"));
        assert_eq!(messages, over_http(post));
        assert!(
            messages.contains(r#"body: "{\"a\": [1, 2]}", ttl: Some(60)"#),
            "{messages}"
        );
        assert!(
            messages.contains(r#"body: "[true]", ttl: None, delay: Some(5)"#),
            "{messages}"
        );
        for other in [
            r#"{"queue_name": "q", "messages": [{"body": 1, "ttl": 1e400}]}"#,
            r#"{"queue_name": "q", "messages": {"body": 1}}"#,
            r#"{"queue_name": "q", "messages": [{"ttl": 5}]}"#,
            r#"{"queue_name": "q", "messages": [{"body": 1}, 7]}"#,
            r#"{"queue_name": "q", "messages": "text"}"#,
            r#"{"queue_name": "q", "messages": []}"#,
        ] {
            let (on_the_way, queue, messages) = read(other);
            assert!(!on_the_way || other.contains("[]"), "{other}");
            assert_eq!(queue.as_deref(), Some("q"), "{other}");
            assert_eq!(messages, over_http(other), "{other}");
            assert!(messages.starts_with("Err("), "{other}: {messages}");
        }
    }

    #[test]
    fn strings_are_read_borrowed_unless_escaped() {
        let raw = |text: &str| serde_json::from_str::<Box<RawValue>>(text).unwrap();
        let plain = raw(r#""message_post""#);
        assert!(matches!(
            as_string(Some(&plain)),
            Some(Cow::Borrowed("message_post"))
        ));
        let escaped = raw(r#""a\"b\u0041""#);
        assert_eq!(as_string(Some(&escaped)).as_deref(), Some("a\"bA"));
        assert_eq!(as_string(Some(&raw(r#""""#))).as_deref(), Some(""));
        assert_eq!(as_string(Some(&raw("7"))), None);
        assert_eq!(as_string(Some(&raw("null"))), None);
        assert_eq!(as_string(None), None);
    }

    #[test]
    fn parameters_keep_their_types_and_null_is_absent() {
        let f =
            fields(r#"{"limit": 5, "echo": true, "marker": 7, "message_ids": ["a"], "pop": null}"#);
        assert_eq!(f.int(Param::Limit).unwrap(), Some(5));
        assert_eq!(f.boolean(Param::Echo).unwrap(), Some(true));
        assert_eq!(f.text(Param::Marker).unwrap().as_deref(), Some("7"));
        assert_eq!(f.list(Param::Ids).unwrap(), Some(vec!["a".to_string()]));
        assert_eq!(f.int(Param::Pop).unwrap(), None);
        let bad = fields(r#"{"limit": "5", "echo": 1, "message_ids": [1]}"#);
        assert!(bad.int(Param::Limit).is_err());
        assert!(bad.boolean(Param::Echo).is_err());
        assert_eq!(
            bad.list(Param::Ids).unwrap_err().description().unwrap(),
            "The \"ids\" field must be a list of strings."
        );
    }

    #[test]
    fn documents_are_spliced_from_the_members_present() {
        let f = fields(r#"{"ttl": 60, "grace": null, "queue_name": "q"}"#);
        assert_eq!(
            f.document(Document::Claim).unwrap().as_ref(),
            br#"{"ttl":60,"grace":null}"#
        );
        assert!(f.document(Document::Purge).is_none());
    }

    /// A random MessagePack value for a frame member: every shape the
    /// readers tell apart, and a few that make a frame not plain.
    fn random_member(next: &mut impl FnMut() -> u64, out: &mut Vec<u8>, depth: usize) {
        use rmp::encode as put;
        let texts = [
            "q",
            "",
            "null",
            "true",
            "7",
            "a\"b",
            "é",
            "line\nbreak",
            "message_post",
            "authenticate",
            "00000000000000000000000000000000",
        ];
        let pick = next() % if depth > 2 { 12 } else { 16 };
        let n = next();
        let _ = match pick {
            0 => put::write_nil(out).map_err(drop),
            1 => put::write_bool(out, n.is_multiple_of(2)).map_err(drop),
            2 => put::write_uint(out, n % 100).map(drop).map_err(drop),
            3 => put::write_u64(out, u64::MAX - n % 2).map_err(drop),
            4 => put::write_sint(out, -((n % 70_000) as i64))
                .map(drop)
                .map_err(drop),
            5 => put::write_f64(
                out,
                [1.0, 1.5, -0.0, f64::NAN, f64::INFINITY][n as usize % 5],
            )
            .map_err(drop),
            6 => put::write_f32(out, [2.0, 0.1, f32::NAN][n as usize % 3]).map_err(drop),
            7..=9 => put::write_str(out, texts[n as usize % texts.len()]).map_err(drop),
            10 => put::write_bin(out, b"xy").map_err(drop), // not plain
            11 => {
                let _ = put::write_str_len(out, 1);
                out.push(if n.is_multiple_of(2) { b'a' } else { 0xff }); // maybe not UTF-8
                Ok(())
            }
            12 | 13 => {
                let len = n % 4;
                let _ = put::write_array_len(out, len as u32);
                for _ in 0..len {
                    random_member(next, out, depth + 1);
                }
                Ok(())
            }
            _ => {
                let names = ["ttl", "body", "Client-ID", "x", "grace"];
                let len = n % 4;
                let _ = put::write_map_len(out, len as u32);
                for _ in 0..len {
                    let _ = put::write_str(out, names[next() as usize % names.len()]);
                    random_member(next, out, depth + 1);
                }
                Ok(())
            }
        };
    }

    /// A post's `messages` list, mostly of the shape a post has.
    fn random_messages(next: &mut impl FnMut() -> u64, out: &mut Vec<u8>) {
        use rmp::encode as put;
        let len = next() % 4;
        let _ = put::write_array_len(out, len as u32);
        for _ in 0..len {
            if next().is_multiple_of(9) {
                random_member(next, out, 2);
                continue;
            }
            let keys = 1 + next() % 4;
            let _ = put::write_map_len(out, keys as u32);
            for key in 0..keys {
                let name = match key {
                    0 if !next().is_multiple_of(7) => "body",
                    _ => ["ttl", "delay", "body", "other"][next() as usize % 4],
                };
                let _ = put::write_str(out, name);
                let n = next();
                let _ = match (name, n % 8) {
                    ("ttl" | "delay", 0) => put::write_u64(out, u64::MAX - n % 2).map_err(drop),
                    ("ttl" | "delay", 1) => put::write_i8(out, -5).map_err(drop),
                    ("ttl" | "delay", 2..=5) => {
                        put::write_uint(out, n % 100_000).map(drop).map_err(drop)
                    }
                    _ => {
                        random_member(next, out, 2);
                        Ok(())
                    }
                };
            }
        }
    }

    #[test]
    fn a_plain_msgpack_frame_reads_as_its_json_text_does() {
        use rmp::encode as put;
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = seed;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let field_names = [
            "queue_name",
            "message_id",
            "claim_id",
            "subscription_id",
            "marker",
            "limit",
            "detailed",
            "name",
            "with_count",
            "echo",
            "include_claimed",
            "include_delayed",
            "message_ids",
            "claim_ids",
            "pop",
            "metadata",
            "messages",
            "ttl",
            "grace",
            "subscriber",
            "options",
            "resource_types",
            "pool_name",
            "flavor_name",
            "uri",
            "weight",
            "flavor",
            "pool_list",
            "capabilities",
            "other",
        ];
        let header_names = ["Client-ID", "X-Project-ID", "X-Roles", "client-id", "Other"];
        let (mut plain, mut compared, mut read_on_the_way, mut json_read_in_one_pass) =
            (0, 0, 0, 0);
        for _ in 0..6_000 {
            let mut payload = Vec::new();
            let _ = put::write_map_len(&mut payload, 3);
            let _ = put::write_str(&mut payload, "action");
            random_member(&mut next, &mut payload, 1);
            let _ = put::write_str(&mut payload, "headers");
            let headers = next() % 4;
            let _ = put::write_map_len(&mut payload, headers as u32);
            for _ in 0..headers {
                let _ = put::write_str(&mut payload, header_names[next() as usize % 5]);
                random_member(&mut next, &mut payload, 2);
            }
            let _ = put::write_str(&mut payload, "body");
            let fields = 1 + next() % 6;
            let _ = put::write_map_len(&mut payload, fields as u32);
            for _ in 0..fields {
                let name = field_names[next() as usize % field_names.len()];
                let _ = put::write_str(&mut payload, name);
                if name == "messages" && !next().is_multiple_of(3) {
                    random_messages(&mut next, &mut payload);
                } else {
                    random_member(&mut next, &mut payload, 1);
                }
            }
            let Some(frame) = crate::api::packed::plain_members(&payload) else {
                continue;
            };
            plain += 1;
            if let Some(Member::Packed(body)) = Members::packed(&frame).body {
                let fields = Fields::read(Some(Member::Packed(body)));
                read_on_the_way += usize::from(fields.messages.is_some_and(|m| m.read.is_some()));
            }
            let text = msgpack_to_json(&payload).unwrap();
            let Ok(Decoded::Frame(decoded)) = decode(&text) else {
                panic!("a plain frame's JSON text is an object: {payload:x?}");
            };
            assert_eq!(
                describe(&Members::packed(&frame)),
                describe(&Members::json(&decoded)),
                "{}",
                String::from_utf8_lossy(&text)
            );
            let json_fields = Fields::read(Members::json(&decoded).body);
            json_read_in_one_pass +=
                usize::from(json_fields.messages.is_some_and(|m| m.read.is_some()));
            compared += 1;
        }
        assert!(plain > 600 && compared == plain, "{plain} plain frames");
        assert!(
            read_on_the_way > 100,
            "{read_on_the_way} lists read on the way"
        );
        assert!(
            json_read_in_one_pass > 100,
            "{json_read_in_one_pass} JSON lists read with their body"
        );
        // Bytes JSON has no value for are left to the general transcoding.
        let bin = rmp_serde::to_vec_named(&serde_json::json!({"action": "x"})).unwrap();
        assert!(crate::api::packed::plain_members(&bin).is_some());
        let mut with_bin = vec![0x81, 0xa4, b'b', b'o', b'd', b'y'];
        let _ = put::write_bin(&mut with_bin, b"x");
        assert!(crate::api::packed::plain_members(&with_bin).is_none());
        let non_utf8_key = [0x81, 0xa1, 0xff, 0xc0];
        assert!(crate::api::packed::plain_members(&non_utf8_key).is_none());
        let number_key = [0x81, 0x01, 0xc0];
        assert!(crate::api::packed::plain_members(&number_key).is_none());
    }

    #[test]
    fn msgpack_becomes_the_same_json() {
        let value =
            serde_json::json!({"action": "x", "body": {"n": [1, -2, 1.5, "s", null, true]}});
        let packed = rmp_serde::to_vec_named(&value).unwrap();
        let text = msgpack_to_json(&packed).unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&text).unwrap(),
            value
        );
        assert_eq!(
            rmp_serde::from_slice::<serde_json::Value>(&json_to_msgpack(&text).unwrap()).unwrap(),
            value
        );
    }

    #[test]
    fn a_msgpack_float_comes_back_bit_for_bit_through_json() {
        // Found by the ws_frame fuzz target: 1.1111111111111112e60 read
        // back from its JSON text as 1.1111111111111113e60.
        for sent in [
            1.1111111111111112e60_f64,
            5e-324,
            0.1,
            -2.2250738585072014e-308,
        ] {
            let text = msgpack_to_json(&rmp_serde::to_vec(&sent).unwrap()).unwrap();
            let back: f64 = rmp_serde::from_slice(&json_to_msgpack(&text).unwrap()).unwrap();
            assert_eq!(
                back.to_bits(),
                sent.to_bits(),
                "{sent:e} came back as {back:e}"
            );
        }
    }
}
