-- Schema version 1 of the postgresql stores of zaqar-server.
-- Names and ids compare byte-wise (COLLATE "C"), like every other store.

-- One row per existing queue.
CREATE TABLE zaqar_queues (
    project    text COLLATE "C" NOT NULL,
    name       text COLLATE "C" NOT NULL,
    metadata   bytea  NOT NULL,
    created_ms bigint NOT NULL,
    PRIMARY KEY (project, name)
);

-- The last sequence number handed out per queue name. It outlives the
-- queue (a queue deleted and created again continues its numbers), and its
-- row lock, held by a posting transaction until it commits, is what makes
-- sequence order commit order.
CREATE TABLE zaqar_queue_seqs (
    project  text COLLATE "C" NOT NULL,
    name     text COLLATE "C" NOT NULL,
    last_seq bigint NOT NULL,
    PRIMARY KEY (project, name)
);

CREATE TABLE zaqar_messages (
    project          text COLLATE "C" NOT NULL,
    queue            text COLLATE "C" NOT NULL,
    seq              bigint  NOT NULL,
    tag              integer NOT NULL,
    created_ms       bigint  NOT NULL,
    expires_ms       bigint  NOT NULL,
    visible_ms       bigint  NOT NULL,
    client_id        text    NOT NULL,
    claim_id         text COLLATE "C",
    claim_expires_ms bigint,
    claim_count      integer NOT NULL DEFAULT 0,
    body             bytea   NOT NULL,
    PRIMARY KEY (project, queue, seq)
);
-- The garbage collector's way to expired rows.
CREATE INDEX zaqar_messages_expiry ON zaqar_messages (expires_ms);
-- A claim's messages.
CREATE INDEX zaqar_messages_claim ON zaqar_messages (project, queue, claim_id)
    WHERE claim_id IS NOT NULL;

CREATE TABLE zaqar_claims (
    project    text COLLATE "C" NOT NULL,
    queue      text COLLATE "C" NOT NULL,
    id         text COLLATE "C" NOT NULL,
    ttl        integer NOT NULL,
    updated_ms bigint  NOT NULL,
    expires_ms bigint  NOT NULL,
    PRIMARY KEY (project, queue, id)
);
CREATE INDEX zaqar_claims_expiry ON zaqar_claims (expires_ms);

CREATE TABLE zaqar_subscriptions (
    project       text COLLATE "C" NOT NULL,
    queue         text COLLATE "C" NOT NULL,
    id            text COLLATE "C" NOT NULL,
    subscriber    text    NOT NULL,
    ttl           integer NOT NULL,
    created_ms    bigint  NOT NULL,
    expires_ms    bigint  NOT NULL,
    options       bytea   NOT NULL,
    confirmed     boolean NOT NULL,
    delivered_seq bigint  NOT NULL,
    PRIMARY KEY (project, queue, id)
);
CREATE INDEX zaqar_subscriptions_expiry ON zaqar_subscriptions (expires_ms);

CREATE TABLE zaqar_pools (
    name    text COLLATE "C" PRIMARY KEY,
    uri     text    NOT NULL,
    weight  integer NOT NULL,
    flavor  text,
    options bytea   NOT NULL
);

CREATE TABLE zaqar_flavors (
    project      text COLLATE "C" NOT NULL,
    name         text COLLATE "C" NOT NULL,
    pool_list    text[] NOT NULL,
    capabilities bytea  NOT NULL,
    PRIMARY KEY (project, name)
);
