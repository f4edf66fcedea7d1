-- Schema version 2: the notification log and leases (plugin-api 1.1).

-- A copy of each message posted while its queue had a live subscription,
-- kept until every subscription's delivered_seq has passed it or it
-- expired: notification delivery reads it, so a message consumed before
-- its first notification attempt is still notified.
CREATE TABLE zaqar_notification_log (LIKE zaqar_messages INCLUDING DEFAULTS);
ALTER TABLE zaqar_notification_log ADD PRIMARY KEY (project, queue, seq);
CREATE INDEX zaqar_notification_log_expiry ON zaqar_notification_log (expires_ms);

-- Leases: one holder per key until expires_ms (which subscription each
-- host delivers).
CREATE TABLE zaqar_leases (
    key        text COLLATE "C" PRIMARY KEY,
    holder     text   NOT NULL,
    expires_ms bigint NOT NULL
);
