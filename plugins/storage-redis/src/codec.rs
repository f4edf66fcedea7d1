//! Encodings: JSON documents to and from Zaqar's MessagePack (keys kept in
//! order), and the rows the Lua scripts reply with.

use plugin_api::{
    storage::{ClaimStamp, StoredMessage, SubscriptionRecord},
    types::{ROption, RString, RVec},
    PluginError, PluginResult,
};
use redis::Value;

/// A JSON document as MessagePack, as Zaqar stores bodies, metadata and
/// options. Bytes that are not JSON (the host never sends such, the
/// conformance suite does) become a MessagePack `bin` and come back as they
/// were.
pub(crate) fn to_msgpack(json: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 8);
    let mut de = serde_json::Deserializer::from_slice(json);
    let mut ser = rmp_serde::Serializer::new(&mut out);
    if serde_transcode::transcode(&mut de, &mut ser).is_ok() && de.end().is_ok() {
        return out;
    }
    out.clear();
    rmp::encode::write_bin(&mut out, json).expect("writing to a Vec cannot fail");
    out
}

/// MessagePack written by either side, back to JSON.
pub(crate) fn to_json(packed: &[u8]) -> PluginResult<Vec<u8>> {
    if let Some(raw) = as_bin(packed) {
        return Ok(raw.to_vec());
    }
    let mut out = Vec::with_capacity(packed.len() + 8);
    let mut de = rmp_serde::Deserializer::new(packed);
    let mut ser = serde_json::Serializer::new(&mut out);
    serde_transcode::transcode(&mut de, &mut ser)
        .map_err(|e| PluginError::internal(format!("redis store: undecodable MessagePack: {e}")))?;
    Ok(out)
}

/// The payload of a document that is one whole MessagePack `bin`.
fn as_bin(packed: &[u8]) -> Option<&[u8]> {
    let mut rd = packed;
    let len = rmp::decode::read_bin_len(&mut rd).ok()? as usize;
    (rd.len() == len).then_some(rd)
}

fn bad(what: &str) -> PluginError {
    PluginError::internal(format!("redis store: unexpected reply ({what})"))
}

pub(crate) fn int(v: &Value) -> PluginResult<i64> {
    match v {
        Value::Int(n) => Ok(*n),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("number")),
        _ => Err(bad("number")),
    }
}

pub(crate) fn uint(v: &Value) -> PluginResult<u64> {
    Ok(int(v)?.max(0) as u64)
}

pub(crate) fn bytes(v: &Value) -> PluginResult<&[u8]> {
    match v {
        Value::BulkString(b) => Ok(b),
        Value::SimpleString(s) => Ok(s.as_bytes()),
        Value::Nil => Ok(&[]),
        _ => Err(bad("string")),
    }
}

pub(crate) fn string(v: &Value) -> PluginResult<String> {
    Ok(String::from_utf8_lossy(bytes(v)?).into_owned())
}

pub(crate) fn array(v: &Value) -> PluginResult<&[Value]> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Nil => Ok(&[]),
        _ => Err(bad("array")),
    }
}

/// Seconds between two instants in ms, rounded to the nearest.
fn rounded_secs(from_ms: u64, to_ms: u64) -> u32 {
    ((to_ms.saturating_sub(from_ms) + 500) / 1000) as u32
}

/// A message row of the scripts: id, seq, created, expires, visible,
/// client, claim, claim expiry, claim count, body.
pub(crate) fn message(v: &Value) -> PluginResult<StoredMessage> {
    let f = array(v)?;
    if f.len() != 10 {
        return Err(bad("message row"));
    }
    let created_ms = uint(&f[2])?;
    let expires_ms = uint(&f[3])?;
    let claim = string(&f[6])?;
    Ok(StoredMessage {
        id: string(&f[0])?.into(),
        seq: uint(&f[1])?,
        created_ms,
        expires_ms,
        ttl: rounded_secs(created_ms, expires_ms),
        visible_ms: uint(&f[4])?,
        client_id: string(&f[5])?.into(),
        claim: if claim.is_empty() {
            ROption::RNone
        } else {
            ROption::RSome(ClaimStamp {
                id: claim.into(),
                expires_ms: uint(&f[7])?,
            })
        },
        claim_count: uint(&f[8])? as u32,
        body: to_json(bytes(&f[9])?)?.into(),
    })
}

pub(crate) fn messages(v: &Value) -> PluginResult<RVec<StoredMessage>> {
    array(v)?.iter().map(message).collect()
}

/// A subscription row: id, queue, subscriber, ttl, created, expires,
/// options, confirmed, delivered seq, project. Returns the project too.
pub(crate) fn subscription(v: &Value) -> PluginResult<(RString, SubscriptionRecord)> {
    let f = array(v)?;
    if f.len() != 10 {
        return Err(bad("subscription row"));
    }
    Ok((
        string(&f[9])?.into(),
        SubscriptionRecord {
            id: string(&f[0])?.into(),
            queue: string(&f[1])?.into(),
            subscriber: string(&f[2])?.into(),
            ttl: uint(&f[3])? as u32,
            created_ms: uint(&f[4])?,
            expires_ms: uint(&f[5])?,
            options: to_json(bytes(&f[6])?)?.into(),
            confirmed: int(&f[7])? != 0,
            delivered_seq: uint(&f[8])?,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trips_through_msgpack_in_key_order() {
        let doc = br#"{"z":1,"a":[true,null,"x",-5,1.5],"m":{"b":{},"a":"\u00e9"}}"#;
        let packed = to_msgpack(doc);
        assert_eq!(packed[0], 0x83, "a map of three");
        let back = to_json(&packed).unwrap();
        assert_eq!(
            String::from_utf8(back).unwrap(),
            r#"{"z":1,"a":[true,null,"x",-5,1.5],"m":{"b":{},"a":"é"}}"#
        );
    }

    #[test]
    fn non_json_bytes_come_back_verbatim() {
        for raw in [&b"tired"[..], b"", b"{\"a\":1} trailing"] {
            assert_eq!(to_json(&to_msgpack(raw)).unwrap(), raw);
        }
    }

    #[test]
    fn python_msgpack_of_a_dict_decodes() {
        // msgpack.packb({'event': 'BackupStarted', 'n': 300}, use_bin_type=True)
        let packed = b"\x82\xa5event\xadBackupStarted\xa1n\xcd\x01,";
        assert_eq!(
            to_json(packed).unwrap(),
            br#"{"event":"BackupStarted","n":300}"#
        );
    }
}
