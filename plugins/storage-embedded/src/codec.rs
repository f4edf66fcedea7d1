//! Binary encodings of the records stored as table values.
//!
//! Hand-written rather than serde: the message record is decoded on every
//! scan, and a borrowed view ([`MessageView`]) lets listings and claims skip
//! messages without copying their bodies. Every record starts with a version
//! byte so a later format can be read next to this one.

use crate::error::{corrupt, OpError};

/// Appends fields to a byte buffer.
#[derive(Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }
    pub(crate) fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(crate) fn u128(&mut self, v: u128) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// A length-prefixed byte string.
    pub(crate) fn bytes(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).expect("values are far below 4 GiB");
        self.u32(len);
        self.0.extend_from_slice(v);
        self
    }
    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads fields back in the order a [`Writer`] wrote them.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self(data)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], OpError> {
        if self.0.len() < n {
            return Err(corrupt("record is truncated"));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, OpError> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u32(&mut self) -> Result<u32, OpError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    pub(crate) fn u64(&mut self) -> Result<u64, OpError> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    pub(crate) fn u128(&mut self) -> Result<u128, OpError> {
        let b = self.take(16)?;
        Ok(u128::from_le_bytes(b.try_into().expect("16 bytes")))
    }
    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], OpError> {
        let len = self.u32()? as usize;
        self.take(len)
    }
    pub(crate) fn str(&mut self) -> Result<&'a str, OpError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("string is not UTF-8"))
    }
    pub(crate) fn version(&mut self, expected: u8) -> Result<(), OpError> {
        match self.u8()? {
            v if v == expected => Ok(()),
            v => Err(corrupt(format!("unknown record version {v}"))),
        }
    }
}

const V1: u8 = 1;

/// A queue: its internal id and metadata.
pub(crate) struct QueueRecord {
    pub qid: u64,
    pub created_ms: u64,
    pub metadata: Vec<u8>,
}

impl QueueRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(24 + self.metadata.len());
        w.u8(V1)
            .u64(self.qid)
            .u64(self.created_ms)
            .bytes(&self.metadata);
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        Ok(Self {
            qid: r.u64()?,
            created_ms: r.u64()?,
            metadata: r.bytes()?.to_vec(),
        })
    }
    /// Only the qid, without copying the metadata.
    pub(crate) fn decode_qid(data: &[u8]) -> Result<u64, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        r.u64()
    }
}

/// A claim stamp on a message: claim id and expiry.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Stamp {
    pub claim: u128,
    pub expires_ms: u64,
}

/// A message as stored, owned (for writing).
pub(crate) struct MessageRecord {
    /// Random bits of the message id (see [`crate::ids`]).
    pub tag: u32,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub visible_ms: u64,
    pub claim: Option<Stamp>,
    pub claim_count: u32,
    pub client_id: String,
    pub body: Vec<u8>,
}

/// A stored message, borrowed from the database page (for reading).
pub(crate) struct MessageView<'a> {
    pub tag: u32,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub visible_ms: u64,
    pub claim: Option<Stamp>,
    pub claim_count: u32,
    pub client_id: &'a str,
    pub body: &'a [u8],
}

/// Encodes a message; the borrowed form so posts need not copy the body.
#[allow(clippy::too_many_arguments)] // the fields of one record, named at the call sites
pub(crate) fn encode_message(
    tag: u32,
    created_ms: u64,
    expires_ms: u64,
    visible_ms: u64,
    claim: Option<Stamp>,
    claim_count: u32,
    client_id: &str,
    body: &[u8],
) -> Vec<u8> {
    let mut w = Writer::with_capacity(72 + client_id.len() + body.len());
    w.u8(V1)
        .u32(tag)
        .u64(created_ms)
        .u64(expires_ms)
        .u64(visible_ms);
    match claim {
        Some(s) => w.u8(1).u128(s.claim).u64(s.expires_ms),
        None => w.u8(0),
    };
    w.u32(claim_count).bytes(client_id.as_bytes()).bytes(body);
    w.finish()
}

impl MessageRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        encode_message(
            self.tag,
            self.created_ms,
            self.expires_ms,
            self.visible_ms,
            self.claim,
            self.claim_count,
            &self.client_id,
            &self.body,
        )
    }
}

impl<'a> MessageView<'a> {
    pub(crate) fn decode(data: &'a [u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        let tag = r.u32()?;
        let created_ms = r.u64()?;
        let expires_ms = r.u64()?;
        let visible_ms = r.u64()?;
        let claim = match r.u8()? {
            0 => None,
            _ => Some(Stamp {
                claim: r.u128()?,
                expires_ms: r.u64()?,
            }),
        };
        Ok(Self {
            tag,
            created_ms,
            expires_ms,
            visible_ms,
            claim,
            claim_count: r.u32()?,
            client_id: r.str()?,
            body: r.bytes()?,
        })
    }

    /// Expired messages are invisible to everything.
    pub(crate) fn is_live(&self, now_ms: u64) -> bool {
        self.expires_ms > now_ms
    }

    /// Held by a claim that has not expired.
    pub(crate) fn live_claim(&self, now_ms: u64) -> Option<u128> {
        self.claim
            .filter(|s| s.expires_ms > now_ms)
            .map(|s| s.claim)
    }

    /// Past its delay.
    pub(crate) fn is_visible(&self, now_ms: u64) -> bool {
        self.visible_ms <= now_ms
    }

    pub(crate) fn to_owned_record(&self) -> MessageRecord {
        MessageRecord {
            tag: self.tag,
            created_ms: self.created_ms,
            expires_ms: self.expires_ms,
            visible_ms: self.visible_ms,
            claim: self.claim,
            claim_count: self.claim_count,
            client_id: self.client_id.to_owned(),
            body: self.body.to_vec(),
        }
    }
}

/// A claim: its settings and the messages it took.
pub(crate) struct ClaimRecord {
    pub ttl: u32,
    pub updated_ms: u64,
    pub expires_ms: u64,
    /// Sequence numbers of the messages taken. A message deleted or released
    /// since stays listed; readers check the stamp on the message itself.
    pub seqs: Vec<u64>,
}

impl ClaimRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(32 + 8 * self.seqs.len());
        w.u8(V1)
            .u32(self.ttl)
            .u64(self.updated_ms)
            .u64(self.expires_ms);
        w.u32(u32::try_from(self.seqs.len()).expect("claims hold few messages"));
        for &s in &self.seqs {
            w.u64(s);
        }
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        let ttl = r.u32()?;
        let updated_ms = r.u64()?;
        let expires_ms = r.u64()?;
        let n = r.u32()? as usize;
        let mut seqs = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            seqs.push(r.u64()?);
        }
        Ok(Self {
            ttl,
            updated_ms,
            expires_ms,
            seqs,
        })
    }
}

/// A subscription (its id and queue are in the key).
///
/// Version 2 appends the delivery cursor to version 1; version 1 records
/// (written before the cursor existed) still decode, with a cursor of 0.
/// The database is upgraded once at open (see
/// [`crate::subscriptions::upgrade_cursors`]), so they only remain in a file
/// until then.
pub(crate) struct SubscriptionRecord {
    pub subscriber: String,
    pub ttl: u32,
    pub created_ms: u64,
    pub expires_ms: u64,
    pub confirmed: bool,
    pub options: Vec<u8>,
    /// The seq of the last message of the queue handled for it.
    pub delivered_seq: u64,
}

/// The subscription record version written without a delivery cursor.
pub(crate) const SUBSCRIPTION_V1: u8 = V1;
/// The subscription record version with the delivery cursor.
const SUBSCRIPTION_V2: u8 = 2;

impl SubscriptionRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(48 + self.subscriber.len() + self.options.len());
        w.u8(SUBSCRIPTION_V2)
            .bytes(self.subscriber.as_bytes())
            .u32(self.ttl)
            .u64(self.created_ms)
            .u64(self.expires_ms)
            .u8(u8::from(self.confirmed))
            .bytes(&self.options)
            .u64(self.delivered_seq);
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        let version = r.u8()?;
        if version != SUBSCRIPTION_V1 && version != SUBSCRIPTION_V2 {
            return Err(corrupt(format!("unknown record version {version}")));
        }
        Ok(Self {
            subscriber: r.str()?.to_owned(),
            ttl: r.u32()?,
            created_ms: r.u64()?,
            expires_ms: r.u64()?,
            confirmed: r.u8()? != 0,
            options: r.bytes()?.to_vec(),
            delivered_seq: if version == SUBSCRIPTION_V1 {
                0
            } else {
                r.u64()?
            },
        })
    }
    /// Whether `data` is a version 1 record (without a delivery cursor).
    pub(crate) fn is_v1(data: &[u8]) -> bool {
        data.first() == Some(&SUBSCRIPTION_V1)
    }
}

/// A pool (its name is the key).
pub(crate) struct PoolValue {
    pub uri: String,
    pub weight: u32,
    pub flavor: Option<String>,
    pub options: Vec<u8>,
}

impl PoolValue {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(V1).bytes(self.uri.as_bytes()).u32(self.weight);
        match &self.flavor {
            Some(f) => w.u8(1).bytes(f.as_bytes()),
            None => w.u8(0),
        };
        w.bytes(&self.options);
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        let uri = r.str()?.to_owned();
        let weight = r.u32()?;
        let flavor = match r.u8()? {
            0 => None,
            _ => Some(r.str()?.to_owned()),
        };
        Ok(Self {
            uri,
            weight,
            flavor,
            options: r.bytes()?.to_vec(),
        })
    }
}

/// A flavor (project and name are the key).
pub(crate) struct FlavorValue {
    pub pool_list: Vec<String>,
    pub capabilities: Vec<u8>,
}

impl FlavorValue {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(V1)
            .u32(u32::try_from(self.pool_list.len()).expect("few pools"));
        for p in &self.pool_list {
            w.bytes(p.as_bytes());
        }
        w.bytes(&self.capabilities);
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        let n = r.u32()? as usize;
        let mut pool_list = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            pool_list.push(r.str()?.to_owned());
        }
        Ok(Self {
            pool_list,
            capabilities: r.bytes()?.to_vec(),
        })
    }
}

/// A lease: who holds it and until when.
pub(crate) struct LeaseRecord {
    pub holder: String,
    pub expires_ms: u64,
}

impl LeaseRecord {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(13 + self.holder.len());
        w.u8(V1).u64(self.expires_ms).bytes(self.holder.as_bytes());
        w.finish()
    }
    pub(crate) fn decode(data: &[u8]) -> Result<Self, OpError> {
        let mut r = Reader::new(data);
        r.version(V1)?;
        Ok(Self {
            expires_ms: r.u64()?,
            holder: r.str()?.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trips_with_and_without_claim() {
        for claim in [
            None,
            Some(Stamp {
                claim: 0xabc,
                expires_ms: 99,
            }),
        ] {
            let bytes = encode_message(7, 1, 2, 3, claim, 4, "client", b"{\"a\":1}");
            let v = MessageView::decode(&bytes).expect("decodes");
            assert_eq!(
                (
                    v.tag,
                    v.created_ms,
                    v.expires_ms,
                    v.visible_ms,
                    v.claim,
                    v.claim_count
                ),
                (7, 1, 2, 3, claim, 4)
            );
            assert_eq!((v.client_id, v.body), ("client", &b"{\"a\":1}"[..]));
        }
    }

    fn subscription(delivered_seq: u64) -> SubscriptionRecord {
        SubscriptionRecord {
            subscriber: "http://example.com/".into(),
            ttl: 60,
            created_ms: 1,
            expires_ms: 60_001,
            confirmed: true,
            options: b"{}".to_vec(),
            delivered_seq,
        }
    }

    #[test]
    fn subscription_round_trips_with_its_cursor() {
        let bytes = subscription(42).encode();
        assert!(!SubscriptionRecord::is_v1(&bytes));
        let r = SubscriptionRecord::decode(&bytes).expect("decodes");
        assert_eq!(
            (r.subscriber.as_str(), r.ttl, r.created_ms, r.expires_ms),
            ("http://example.com/", 60, 1, 60_001)
        );
        assert_eq!((r.confirmed, r.options.as_slice()), (true, &b"{}"[..]));
        assert_eq!(r.delivered_seq, 42);
        assert!(SubscriptionRecord::decode(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn version_1_subscription_decodes_with_cursor_zero() {
        // Version 1 is version 2 without the trailing cursor.
        let mut bytes = subscription(7).encode();
        bytes.truncate(bytes.len() - 8);
        bytes[0] = SUBSCRIPTION_V1;
        assert!(SubscriptionRecord::is_v1(&bytes));
        let r = SubscriptionRecord::decode(&bytes).expect("decodes");
        assert_eq!((r.delivered_seq, r.ttl, r.confirmed), (0, 60, true));
        bytes[0] = 3;
        assert!(SubscriptionRecord::decode(&bytes).is_err());
    }

    #[test]
    fn truncated_record_is_reported_not_panicking() {
        let bytes = encode_message(7, 1, 2, 3, None, 4, "client", b"body");
        assert!(MessageView::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
