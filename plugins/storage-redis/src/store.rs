//! [`RedisMessageStore`]: the `zaqar.storage.message` contract on Zaqar's
//! Redis layout. Every call is one Lua script (or one plain command), so it
//! is atomic against other zaqar-server nodes and Zaqar's own writes.

use plugin_api::{
    storage::{
        ClaimRequest, MessageListQuery, MessageStore, MessageSummary, NewMessage, NewSubscription,
        PostedMessage, QueueEntry, QueueListQuery, QueueRef, QueueStats, StoredClaim,
        SubscriptionCreated, SubscriptionEntry, SubscriptionListQuery, SubscriptionPatch,
        SubscriptionRecord, SubscriptionScanPage,
    },
    types::{ROption, RString, RVec},
    ErrorCode, PluginError, PluginResult,
};

use std::sync::Arc;

use plugin_api::storage::{ChangeKind, ChangeSink, ChangeSinkBox, QueueChange, StoredMessage};

use crate::{
    changes::{self, Change, FeedGuard},
    codec::{self, array, bytes, int, string, uint},
    connection::{Args, Conn},
    scripts::*,
};

/// The redis message store.
#[derive(Debug, Clone)]
pub struct RedisMessageStore {
    conn: Conn,
    feed: Arc<FeedGuard>,
}

impl RedisMessageStore {
    pub(crate) fn new(conn: Conn) -> Self {
        Self {
            conn,
            feed: Arc::default(),
        }
    }

    /// Starts passing every change committed by any zaqar-server on this
    /// database to `sink` (and a resync after the feed was lost), until the
    /// store is dropped. Changes made by Zaqar nodes are not announced.
    /// Every change committed after this returns is passed on.
    pub async fn watch_changes(&self, sink: impl Fn(Change) + Send + Sync + 'static) {
        let handle = changes::start(
            self.conn.clone(),
            self.conn.changes_channel(),
            Arc::new(sink),
        )
        .await;
        self.feed.set(handle);
    }

    /// The logged copies of messages posted after `after_seq` (see
    /// `docs/storage-redis.md`, notification log).
    pub async fn logged_messages(
        &self,
        queue: QueueRef,
        after_seq: u64,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        let args = on(&queue).arg(now_ms).arg(after_seq).arg(limit);
        codec::messages(&self.conn.run(&NOTIFICATION_LOG, args).await?)
    }

    /// Takes or renews the lease `key` for `holder` until `now_ms + ttl_ms`.
    pub async fn take_lease(
        &self,
        key: &str,
        holder: &str,
        ttl_ms: u64,
        now_ms: u64,
    ) -> PluginResult<bool> {
        let args = Args::new().arg(key).arg(holder).arg(ttl_ms).arg(now_ms);
        Ok(int(&self.conn.run(&LEASE_ACQUIRE, args).await?)? == 1)
    }

    /// Releases the lease `key` if `holder` holds it.
    pub async fn give_back_lease(&self, key: &str, holder: &str) -> PluginResult<()> {
        self.conn
            .run(&LEASE_RELEASE, Args::new().arg(key).arg(holder))
            .await?;
        Ok(())
    }

    /// The key prefix this store writes under.
    pub fn key_prefix(&self) -> &str {
        self.conn.prefix()
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// ARGV for a script addressing one queue: project, queue.
fn on(queue: &QueueRef) -> Args {
    Args::new()
        .arg(queue.project.as_str())
        .arg(queue.name.as_str())
}

fn flag(b: bool) -> &'static str {
    if b {
        "1"
    } else {
        "0"
    }
}

fn summary(id: &redis::Value, created: &redis::Value) -> PluginResult<ROption<MessageSummary>> {
    let id = string(id)?;
    Ok(if id.is_empty() {
        ROption::RNone
    } else {
        ROption::RSome(MessageSummary {
            id: id.into(),
            created_ms: uint(created)?,
        })
    })
}

fn status(v: &redis::Value) -> PluginResult<String> {
    string(v)
}

impl MessageStore for RedisMessageStore {
    async fn queue_create(
        &self,
        queue: QueueRef,
        metadata: RVec<u8>,
        now_ms: u64,
    ) -> PluginResult<bool> {
        let args = on(&queue).arg(now_ms).arg(codec::to_msgpack(&metadata));
        Ok(int(&self.conn.run(&QUEUE_CREATE, args).await?)? == 1)
    }

    async fn queue_get_metadata(&self, queue: QueueRef) -> PluginResult<ROption<RVec<u8>>> {
        let v = self.conn.run(&QUEUE_GET_METADATA, on(&queue)).await?;
        Ok(match v {
            redis::Value::Nil => ROption::RNone,
            v => ROption::RSome(codec::to_json(bytes(&v)?)?.into()),
        })
    }

    async fn queue_set_metadata(&self, queue: QueueRef, metadata: RVec<u8>) -> PluginResult<()> {
        let args = on(&queue).arg(codec::to_msgpack(&metadata));
        match int(&self.conn.run(&QUEUE_SET_METADATA, args).await?)? {
            1 => Ok(()),
            _ => Err(PluginError::new(
                ErrorCode::QUEUE_NOT_FOUND,
                format!("queue {} does not exist", queue.name),
            )),
        }
    }

    async fn queue_delete(&self, queue: QueueRef) -> PluginResult<()> {
        self.conn.run(&QUEUE_PURGE, on(&queue).arg("1")).await?;
        Ok(())
    }

    async fn queue_list(
        &self,
        project: RString,
        query: QueueListQuery,
    ) -> PluginResult<RVec<QueueEntry>> {
        let marker = query.marker.map(|m| m.to_string()).unwrap_or_default();
        let args = Args::new()
            .arg(project.as_str())
            .arg(marker)
            .arg(query.limit)
            .arg(flag(query.with_metadata));
        let v = self.conn.run(&QUEUE_LIST, args).await?;
        array(&v)?
            .chunks(2)
            .map(|pair| {
                let metadata = if query.with_metadata {
                    codec::to_json(bytes(&pair[1])?)?
                } else {
                    Vec::new()
                };
                Ok(QueueEntry {
                    name: string(&pair[0])?.into(),
                    metadata: metadata.into(),
                })
            })
            .collect()
    }

    async fn queue_count(&self, project: RString) -> PluginResult<u64> {
        let key = format!("{}{}.queues_set", self.conn.prefix(), project);
        self.conn.command(redis::cmd("ZCARD").arg(key)).await
    }

    async fn queue_stats(&self, queue: QueueRef, now_ms: u64) -> PluginResult<QueueStats> {
        let v = self.conn.run(&QUEUE_STATS, on(&queue).arg(now_ms)).await?;
        let f = array(&v)?;
        if f.len() != 7 {
            return Err(PluginError::internal("redis store: unexpected stats reply"));
        }
        Ok(QueueStats {
            claimed: uint(&f[0])?,
            free: uint(&f[1])?,
            total: uint(&f[2])?,
            oldest: summary(&f[3], &f[4])?,
            newest: summary(&f[5], &f[6])?,
        })
    }

    async fn message_post(
        &self,
        queue: QueueRef,
        client_id: RString,
        messages: RVec<NewMessage>,
        now_ms: u64,
    ) -> PluginResult<RVec<PostedMessage>> {
        let ids: Vec<String> = messages.iter().map(|_| new_id()).collect();
        let mut args = on(&queue)
            .arg(now_ms)
            .arg(client_id.as_str())
            .arg(messages.len());
        for (m, id) in messages.iter().zip(&ids) {
            args.push(id.as_str());
            args.push(m.ttl);
            args.push(m.delay);
            args.push(codec::to_msgpack(&m.body));
        }
        let first = uint(&self.conn.run(&MESSAGE_POST, args).await?)?;
        Ok(ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| PostedMessage {
                id: id.into(),
                seq: first + i as u64,
            })
            .collect())
    }

    async fn message_list(
        &self,
        queue: QueueRef,
        query: MessageListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<plugin_api::storage::StoredMessage>> {
        let exclude = query.exclude_client.clone().into_option();
        let args = on(&queue)
            .arg(now_ms)
            .arg(query.after_seq.into_option().unwrap_or(0))
            .arg(query.limit)
            .arg(exclude.as_ref().map(|c| c.as_str()).unwrap_or(""))
            .arg(flag(exclude.is_some()))
            .arg(flag(query.include_claimed))
            .arg(flag(query.include_delayed));
        codec::messages(&self.conn.run(&MESSAGE_LIST, args).await?)
    }

    async fn message_get_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        now_ms: u64,
    ) -> PluginResult<RVec<plugin_api::storage::StoredMessage>> {
        if ids.is_empty() {
            return Ok(RVec::new());
        }
        let mut args = on(&queue).arg(now_ms);
        for id in ids.iter() {
            args.push(id.as_str());
        }
        let mut found = codec::messages(&self.conn.run(&MESSAGE_GET_MANY, args).await?)?.into_vec();
        found.sort_by_key(|m| m.seq);
        found.dedup_by_key(|m| m.seq);
        Ok(found.into())
    }

    async fn message_delete(
        &self,
        queue: QueueRef,
        id: RString,
        claim_id: ROption<RString>,
        now_ms: u64,
    ) -> PluginResult<()> {
        let claim = claim_id.into_option();
        let args = on(&queue)
            .arg(now_ms)
            .arg(id.as_str())
            .arg(claim.as_ref().map(|c| c.as_str()).unwrap_or(""))
            .arg(flag(claim.is_some()));
        match status(&self.conn.run(&MESSAGE_DELETE, args).await?)?.as_str() {
            "ok" => Ok(()),
            "claimed" => Err(PluginError::new(
                ErrorCode::MESSAGE_IS_CLAIMED,
                format!("message {id} is claimed"),
            )),
            "not_claimed" => Err(PluginError::new(
                ErrorCode::MESSAGE_NOT_CLAIMED,
                format!("message {id} is not claimed"),
            )),
            _ => Err(PluginError::new(
                ErrorCode::CLAIM_NOT_FOUND,
                "claim not found".to_owned(),
            )),
        }
    }

    async fn message_delete_many(
        &self,
        queue: QueueRef,
        ids: RVec<RString>,
        _now_ms: u64,
    ) -> PluginResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut args = on(&queue);
        for id in ids.iter() {
            args.push(id.as_str());
        }
        self.conn.run(&MESSAGE_DELETE_MANY, args).await?;
        Ok(())
    }

    async fn message_pop(
        &self,
        queue: QueueRef,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<plugin_api::storage::StoredMessage>> {
        let args = on(&queue).arg(now_ms).arg(limit);
        codec::messages(&self.conn.run(&MESSAGE_POP, args).await?)
    }

    async fn message_purge(&self, queue: QueueRef) -> PluginResult<()> {
        self.conn.run(&QUEUE_PURGE, on(&queue).arg("0")).await?;
        Ok(())
    }

    async fn claim_create(
        &self,
        queue: QueueRef,
        request: ClaimRequest,
        now_ms: u64,
    ) -> PluginResult<StoredClaim> {
        let id = new_id();
        let dead_letter = request.dead_letter.clone().into_option();
        let args = on(&queue)
            .arg(now_ms)
            .arg(id.as_str())
            .arg(request.ttl)
            .arg(request.grace)
            .arg(request.limit)
            .arg(dead_letter.as_ref().map(|d| d.queue.as_str()).unwrap_or(""))
            .arg(dead_letter.as_ref().map(|d| d.max_claim_count).unwrap_or(0))
            .arg(
                dead_letter
                    .as_ref()
                    .and_then(|d| d.message_ttl.into_option())
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            );
        let messages = codec::messages(&self.conn.run(&CLAIM_CREATE, args).await?)?;
        Ok(StoredClaim {
            id: id.into(),
            ttl: request.ttl,
            updated_ms: now_ms,
            expires_ms: now_ms + u64::from(request.ttl) * 1000,
            messages,
        })
    }

    async fn claim_get(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<StoredClaim>> {
        let args = on(&queue).arg(now_ms).arg(claim_id.as_str());
        let v = self.conn.run(&CLAIM_GET, args).await?;
        if v == redis::Value::Nil {
            return Ok(ROption::RNone);
        }
        let f = array(&v)?;
        if f.len() < 2 {
            return Err(PluginError::internal("redis store: unexpected claim reply"));
        }
        let ttl = uint(&f[0])? as u32;
        let expires_ms = uint(&f[1])?;
        let mut messages = f[2..]
            .iter()
            .map(codec::message)
            .collect::<PluginResult<Vec<_>>>()?;
        messages.sort_by_key(|m| m.seq);
        Ok(ROption::RSome(StoredClaim {
            id: claim_id,
            ttl,
            updated_ms: expires_ms.saturating_sub(u64::from(ttl) * 1000),
            expires_ms,
            messages: messages.into(),
        }))
    }

    async fn claim_update(
        &self,
        queue: QueueRef,
        claim_id: RString,
        ttl: u32,
        grace: u32,
        now_ms: u64,
    ) -> PluginResult<()> {
        let args = on(&queue)
            .arg(now_ms)
            .arg(claim_id.as_str())
            .arg(ttl)
            .arg(grace);
        match int(&self.conn.run(&CLAIM_UPDATE, args).await?)? {
            1 => Ok(()),
            _ => Err(PluginError::new(
                ErrorCode::CLAIM_NOT_FOUND,
                format!("claim {claim_id} not found"),
            )),
        }
    }

    async fn claim_delete(
        &self,
        queue: QueueRef,
        claim_id: RString,
        now_ms: u64,
    ) -> PluginResult<()> {
        let args = on(&queue).arg(now_ms).arg(claim_id.as_str());
        self.conn.run(&CLAIM_DELETE, args).await?;
        Ok(())
    }

    async fn subscription_create(
        &self,
        queue: QueueRef,
        subscription: NewSubscription,
        now_ms: u64,
    ) -> PluginResult<SubscriptionCreated> {
        let args = on(&queue)
            .arg(now_ms)
            .arg(new_id())
            .arg(subscription.subscriber.as_str())
            .arg(subscription.ttl)
            .arg(codec::to_msgpack(&subscription.options));
        let v = self.conn.run(&SUB_CREATE, args).await?;
        let f = array(&v)?;
        if f.len() != 3 {
            return Err(PluginError::internal("redis store: unexpected reply"));
        }
        Ok(SubscriptionCreated {
            created: int(&f[0])? == 1,
            id: string(&f[1])?.into(),
            confirmed: int(&f[2])? == 1,
        })
    }

    async fn subscription_list(
        &self,
        queue: QueueRef,
        query: SubscriptionListQuery,
        now_ms: u64,
    ) -> PluginResult<RVec<SubscriptionRecord>> {
        let args = on(&queue)
            .arg(now_ms)
            .arg(query.marker.map(|m| m.to_string()).unwrap_or_default())
            .arg(query.limit);
        let v = self.conn.run(&SUB_LIST, args).await?;
        array(&v)?
            .iter()
            .map(|row| Ok(codec::subscription(row)?.1))
            .collect()
    }

    async fn subscription_get(
        &self,
        queue: QueueRef,
        id: RString,
        now_ms: u64,
    ) -> PluginResult<ROption<SubscriptionRecord>> {
        let v = self
            .conn
            .run(&SUB_GET, on(&queue).arg(now_ms).arg(id.as_str()))
            .await?;
        Ok(match v {
            redis::Value::Nil => ROption::RNone,
            row => ROption::RSome(codec::subscription(&row)?.1),
        })
    }

    async fn subscription_update(
        &self,
        queue: QueueRef,
        id: RString,
        patch: SubscriptionPatch,
        now_ms: u64,
    ) -> PluginResult<()> {
        let subscriber = patch.subscriber.into_option();
        let ttl = patch.ttl.into_option();
        let options = patch.options.into_option();
        let args = on(&queue)
            .arg(now_ms)
            .arg(id.as_str())
            .arg("update")
            .arg(flag(subscriber.is_some()))
            .arg(subscriber.as_ref().map(|s| s.as_str()).unwrap_or(""))
            .arg(flag(ttl.is_some()))
            .arg(ttl.unwrap_or(0))
            .arg(flag(options.is_some()))
            .arg(options.map(|o| codec::to_msgpack(&o)).unwrap_or_default());
        self.subscription_change(args, &id).await
    }

    async fn subscription_confirm(
        &self,
        queue: QueueRef,
        id: RString,
        confirmed: bool,
        now_ms: u64,
    ) -> PluginResult<()> {
        let args = on(&queue)
            .arg(now_ms)
            .arg(id.as_str())
            .arg("confirm")
            .arg(flag(confirmed));
        self.subscription_change(args, &id).await
    }

    async fn subscription_delete(&self, queue: QueueRef, id: RString) -> PluginResult<()> {
        self.conn
            .run(&SUB_DELETE, on(&queue).arg(id.as_str()))
            .await?;
        Ok(())
    }

    async fn subscription_scan(
        &self,
        marker: ROption<RString>,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<SubscriptionScanPage> {
        let args = Args::new()
            .arg(now_ms)
            .arg(marker.map(|m| m.to_string()).unwrap_or_default())
            .arg(limit);
        let v = self.conn.run(&SUB_SCAN, args).await?;
        let f = array(&v)?;
        let next = f.first().map(string).transpose()?.unwrap_or_default();
        let entries = f
            .iter()
            .skip(1)
            .map(|row| {
                let (project, record) = codec::subscription(row)?;
                Ok(SubscriptionEntry { project, record })
            })
            .collect::<PluginResult<RVec<_>>>()?;
        Ok(SubscriptionScanPage {
            entries,
            next_marker: if next.is_empty() {
                ROption::RNone
            } else {
                ROption::RSome(next.into())
            },
        })
    }

    async fn subscription_advance(
        &self,
        queue: QueueRef,
        id: RString,
        delivered_seq: u64,
        now_ms: u64,
    ) -> PluginResult<()> {
        let args = on(&queue)
            .arg(now_ms)
            .arg(id.as_str())
            .arg("advance")
            .arg(delivered_seq);
        self.subscription_change(args, &id).await
    }

    async fn queue_last_seq(&self, queue: QueueRef) -> PluginResult<u64> {
        let key = format!(
            "{}{}.{}.rank_counter",
            self.conn.prefix(),
            queue.project,
            queue.name
        );
        let next: Option<u64> = self.conn.command(redis::cmd("GET").arg(key)).await?;
        Ok(next.unwrap_or(1).saturating_sub(1))
    }

    async fn is_alive(&self) -> PluginResult<bool> {
        Ok(self.conn.ping().await.is_ok())
    }

    async fn changes_watch(&self, sink: ChangeSinkBox) -> PluginResult<()> {
        self.watch_changes(move |c: Change| {
            sink.changed(QueueChange::new(
                ChangeKind(c.kind),
                QueueRef::new(&c.project, &c.queue),
                c.last_seq,
                &c.subscription,
            ))
        })
        .await;
        Ok(())
    }

    async fn notification_log(
        &self,
        queue: QueueRef,
        after_seq: u64,
        limit: u32,
        now_ms: u64,
    ) -> PluginResult<RVec<StoredMessage>> {
        self.logged_messages(queue, after_seq, limit, now_ms).await
    }

    async fn lease_acquire(
        &self,
        key: RString,
        holder: RString,
        ttl_ms: u64,
        now_ms: u64,
    ) -> PluginResult<bool> {
        self.take_lease(&key, &holder, ttl_ms, now_ms).await
    }

    async fn lease_release(&self, key: RString, holder: RString) -> PluginResult<()> {
        self.give_back_lease(&key, &holder).await
    }
}

impl RedisMessageStore {
    async fn subscription_change(&self, args: Args, id: &RString) -> PluginResult<()> {
        match status(&self.conn.run(&SUB_UPDATE, args).await?)?.as_str() {
            "ok" => Ok(()),
            "conflict" => Err(PluginError::new(
                ErrorCode::CONFLICT,
                "another subscription of the queue has this subscriber".to_owned(),
            )),
            _ => Err(PluginError::new(
                ErrorCode::SUBSCRIPTION_NOT_FOUND,
                format!("subscription {id} not found"),
            )),
        }
    }
}
