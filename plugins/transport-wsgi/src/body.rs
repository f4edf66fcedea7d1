//! Receiving a request body within a time limit and a memory budget shared
//! by every connection of the transport.
//!
//! A client that declares a large body and sends it slowly (or never
//! finishes) would otherwise hold its buffer for as long as it likes, and a
//! few dozen such clients hold hundreds of megabytes. Here each body must
//! arrive within `body_timeout`, and the bytes buffered for bodies (counted
//! by the capacity actually allocated) never exceed `max_body_memory`: a
//! request that cannot get room in time is refused instead.

use std::{sync::Arc, time::Duration};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{timeout_at, Instant},
};

/// The bytes all bodies in flight may hold.
#[derive(Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }
}

/// How receiving a body ended.
pub enum Received {
    /// The whole body, and its share of the budget (give it back by
    /// dropping it once the body is no longer needed).
    Complete(Vec<u8>, Reservation),
    /// Larger than `max_body_size`; not read.
    TooLarge,
    /// The client closed or broke the body before its end.
    Incomplete,
    /// Not all of it arrived within the time limit.
    TimedOut,
    /// No room in the budget within the time limit.
    NoRoom,
}

/// A body's share of the budget.
#[derive(Default)]
pub struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    fn grow(&mut self, more: OwnedSemaphorePermit) {
        match &mut self.0 {
            Some(held) => held.merge(more),
            None => self.0 = Some(more),
        }
    }
}

/// Reads `body` (whose `Content-Length` is `declared`, if any) into memory.
pub async fn receive_body(
    mut body: Incoming,
    declared: Option<u64>,
    max_size: usize,
    budget: &BodyBudget,
    time_limit: Duration,
) -> Received {
    if declared.is_some_and(|length| length > max_size as u64) {
        return Received::TooLarge;
    }
    let deadline = Instant::now() + time_limit;
    let mut bytes: Vec<u8> = Vec::new();
    let mut reservation = Reservation::default();
    loop {
        let frame = match timeout_at(deadline, body.frame()).await {
            Err(_) => return Received::TimedOut,
            Ok(None) => break,
            Ok(Some(Err(_))) => return Received::Incomplete,
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers carry nothing Zaqar reads.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        let needed = bytes.len() + data.len();
        if needed > max_size {
            return Received::TooLarge;
        }
        if needed > bytes.capacity() {
            // The declared length is allocated at once when known (so the
            // buffer never moves), else the buffer doubles; either way the
            // budget is charged for the capacity before it is allocated.
            let wanted = match declared {
                Some(length) => (length as usize).max(needed),
                None => needed.max(bytes.capacity() * 2).min(max_size),
            };
            let more = wanted - bytes.capacity();
            let Ok(more_u32) = u32::try_from(more) else {
                return Received::NoRoom;
            };
            match timeout_at(deadline, budget.0.clone().acquire_many_owned(more_u32)).await {
                Ok(Ok(permit)) => reservation.grow(permit),
                _ => return Received::NoRoom,
            }
            bytes.reserve_exact(wanted - bytes.len());
        }
        bytes.extend_from_slice(&data);
    }
    Received::Complete(bytes, reservation)
}
