-- 0002_provisioning: flow-through provisioning (organizations, subscribers,
-- accepted documents for requestId replays), the command outbox, and the
-- in-process license core's ledger.
-- Timestamps are unix milliseconds (UTC). Enum-like TEXT columns are checked
-- when decoding (like templates.source), except closed two-value sets.

-- One BroadWorks enterprise maps to exactly one organization: the UNIQUE
-- constraint enforces it even if two writers ever raced (the single writer
-- thread already serializes every read-then-insert).
CREATE TABLE organizations (
    id              TEXT NOT NULL PRIMARY KEY,
    enterprise_key  TEXT NOT NULL,
    partner_id      TEXT NOT NULL REFERENCES partners (id),
    -- the template whose first subscriber created (or attached) it
    provisioning_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    origin          TEXT NOT NULL CHECK (origin IN ('created', 'attached')),
    created_at      INTEGER NOT NULL,
    -- one enterprise of a partner maps to exactly one organization
    UNIQUE (partner_id, enterprise_key)
) STRICT;

CREATE TABLE subscribers (
    id                  TEXT NOT NULL PRIMARY KEY,
    provisioning_id     TEXT NOT NULL REFERENCES templates (provisioning_id),
    -- NULL after a partial deletion, so the BroadWorks user id can be
    -- provisioned again as a new subscriber (UNIQUE ignores NULLs).
    user_id             TEXT UNIQUE,
    enterprise_key      TEXT,
    org_id              TEXT REFERENCES organizations (id),
    service_provider_id TEXT,
    group_id            TEXT,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    -- normalized (domain lower-cased); compared case-insensitively
    email               TEXT,
    phone_number        TEXT,
    extension           TEXT,
    mobile_phone_number TEXT,
    language            TEXT,
    time_zone           TEXT,
    -- 'softphone' | 'basic' | 'standard' | 'premium'
    package             TEXT NOT NULL,
    -- lifecycle::SubscriberStatus::as_str
    status              TEXT NOT NULL,
    -- serde_json of Vec<lifecycle::SubscriberError>
    errors_json         TEXT NOT NULL DEFAULT '[]',
    self_activated      INTEGER NOT NULL DEFAULT 0,
    version             INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    last_status_change  INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
) STRICT;

-- "Is this email used by another subscriber" (NOCASE: emails are ASCII).
CREATE INDEX subscribers_by_email ON subscribers (email COLLATE NOCASE)
    WHERE email IS NOT NULL;
CREATE INDEX subscribers_by_enterprise ON subscribers (enterprise_key);
CREATE INDEX subscribers_by_org ON subscribers (org_id) WHERE org_id IS NOT NULL;

-- The answer to each document that carried a requestId, so a replay gets
-- exactly the first answer back and changes nothing.
CREATE TABLE accepted_requests (
    provisioning_id TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    tracking_id     TEXT NOT NULL,
    -- serde_json of Vec<store::OperationResult>
    results_json    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (provisioning_id, request_id)
) STRICT, WITHOUT ROWID;

-- Normalized commands, written in the same transaction as the state change
-- they follow from; delivered at least once, in seq order per enterprise.
CREATE TABLE outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    idempotency_key TEXT NOT NULL UNIQUE,
    enterprise_key  TEXT NOT NULL,
    subscriber_id   TEXT,
    -- commands::Command::kind
    kind            TEXT NOT NULL,
    -- serde_json of commands::CommandEnvelope
    envelope_json   TEXT NOT NULL,
    -- 'pending' | 'delivered' | 'failed'
    state           TEXT NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    delivered_at    INTEGER
) STRICT;

-- due_commands (see outbox.rs): pending rows in seq order, carrying what
-- the per-enterprise check needs (index-only), and the pending rows that
-- are backing off, by retry time. Both are partial: delivered and failed
-- rows never enter them, so they stay as small as the backlog.
CREATE INDEX outbox_pending_by_seq ON outbox (seq, enterprise_key, next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX outbox_pending_by_retry ON outbox (next_attempt_at, enterprise_key)
    WHERE state = 'pending';
CREATE INDEX outbox_by_subscriber ON outbox (subscriber_id, seq)
    WHERE subscriber_id IS NOT NULL;

-- License ledger of the in-process license core. The primary key makes a
-- second grant of the same license to the same subscriber impossible.
CREATE TABLE licenses (
    subscriber_id TEXT NOT NULL,
    license       TEXT NOT NULL,
    granted_at    INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, license)
) STRICT, WITHOUT ROWID;

-- Idempotency keys of license changes already applied.
CREATE TABLE license_applied (
    idempotency_key TEXT NOT NULL PRIMARY KEY,
    applied_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE license_events (
    id              INTEGER PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    subscriber_id   TEXT NOT NULL,
    license         TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
    at              INTEGER NOT NULL
) STRICT;

CREATE INDEX license_events_by_subscriber ON license_events (subscriber_id, id);
