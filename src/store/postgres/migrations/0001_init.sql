-- bwgate on PostgreSQL: the schema SQLite reached at its migration 0010,
-- in one step (a PostgreSQL database starts at this version). Times are
-- unix milliseconds (BIGINT), JSON columns hold serde_json text exactly as
-- on SQLite (one encoding for both back-ends); e-mail addresses compare
-- without case through lower(...) indexes (SQLite's COLLATE NOCASE).

-- Bumped by every write of a partner, cluster or template: nodes compare
-- its value to drop cached templates and tokens another node changed.
CREATE SEQUENCE tenancy_revision;

-- Facts every node must agree on (the link secret's fingerprint).
CREATE TABLE bwgate_settings (
    key   TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE partners (
    id               TEXT NOT NULL PRIMARY KEY,
    name             TEXT NOT NULL,
    admin_email      TEXT,
    admin_token_hash TEXT,
    revision         BIGINT NOT NULL DEFAULT nextval('tenancy_revision'),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);

CREATE TABLE clusters (
    id          TEXT NOT NULL PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    name        TEXT NOT NULL,
    xsp_url     TEXT,
    revision    BIGINT NOT NULL DEFAULT nextval('tenancy_revision'),
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX clusters_by_partner ON clusters (partner_id);

CREATE TABLE templates (
    provisioning_id            TEXT NOT NULL PRIMARY KEY,
    partner_id                 TEXT NOT NULL REFERENCES partners (id),
    cluster_id                 TEXT REFERENCES clusters (id),
    name                       TEXT NOT NULL,
    settings_json              TEXT NOT NULL,
    provisioning_username      TEXT NOT NULL,
    provisioning_password_hash TEXT NOT NULL,
    source                     TEXT NOT NULL,
    revision                   BIGINT NOT NULL DEFAULT nextval('tenancy_revision'),
    created_at                 BIGINT NOT NULL,
    updated_at                 BIGINT NOT NULL
);
CREATE INDEX templates_by_partner ON templates (partner_id);

CREATE TABLE organizations (
    id                  TEXT NOT NULL PRIMARY KEY,
    enterprise_key      TEXT NOT NULL,
    partner_id          TEXT NOT NULL REFERENCES partners (id),
    provisioning_id     TEXT NOT NULL,
    name                TEXT NOT NULL,
    origin              TEXT NOT NULL CHECK (origin IN ('created', 'attached')),
    admin_subscriber_id TEXT,
    created_at          BIGINT NOT NULL,
    -- one enterprise of a partner maps to exactly one organization, also
    -- when its first AddUsers reach two nodes at once (the loser reruns)
    UNIQUE (partner_id, enterprise_key)
);

CREATE TABLE subscribers (
    id                  TEXT NOT NULL PRIMARY KEY,
    provisioning_id     TEXT NOT NULL REFERENCES templates (provisioning_id),
    user_id             TEXT UNIQUE,
    enterprise_key      TEXT,
    org_id              TEXT REFERENCES organizations (id),
    service_provider_id TEXT,
    group_id            TEXT,
    first_name          TEXT NOT NULL,
    last_name           TEXT NOT NULL,
    email               TEXT,
    phone_number        TEXT,
    extension           TEXT,
    mobile_phone_number TEXT,
    language            TEXT,
    time_zone           TEXT,
    package             TEXT NOT NULL,
    status              TEXT NOT NULL,
    errors_json         TEXT NOT NULL DEFAULT '[]',
    self_activated      BOOLEAN NOT NULL DEFAULT FALSE,
    is_trunk_user       BOOLEAN NOT NULL DEFAULT FALSE,
    has_route_list      BOOLEAN NOT NULL DEFAULT FALSE,
    version             BIGINT NOT NULL,
    created_at          BIGINT NOT NULL,
    last_status_change  BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX subscribers_by_email ON subscribers (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX subscribers_by_enterprise ON subscribers (enterprise_key);
CREATE INDEX subscribers_by_org ON subscribers (org_id) WHERE org_id IS NOT NULL;
CREATE INDEX subscribers_by_template ON subscribers (provisioning_id, id);

-- Units of work run under REPEATABLE READ: two that ask whether an email
-- is taken, then write, would not see each other. Each also touches the
-- email's row here, so the second to commit conflicts and runs again.
CREATE TABLE email_guards (
    email TEXT NOT NULL PRIMARY KEY
);

-- The same for "when did the last email of this kind and key prefix go
-- out" (approval requests once per window): a unit that asked and then
-- queues an email under that prefix touches the prefix's row.
CREATE TABLE email_key_guards (
    key_prefix TEXT NOT NULL PRIMARY KEY
);

CREATE TABLE accepted_requests (
    provisioning_id TEXT NOT NULL,
    request_id      TEXT NOT NULL,
    tracking_id     TEXT NOT NULL,
    results_json    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (provisioning_id, request_id)
);

CREATE TABLE outbox (
    seq             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    enterprise_key  TEXT NOT NULL,
    subscriber_id   TEXT,
    kind            TEXT NOT NULL,
    envelope_json   TEXT NOT NULL,
    -- the organization the command names (SQLite reads it from the JSON)
    org_id          TEXT,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    delivered_at    BIGINT
);
CREATE INDEX outbox_pending_by_seq ON outbox (seq) WHERE state = 'pending';
CREATE INDEX outbox_pending_by_retry ON outbox (next_attempt_at, enterprise_key)
    WHERE state = 'pending';
-- "Is a command about this subscriber still pending?" (each delivery):
-- without it the planner may AND the pending index, which holds an entry
-- for every command that was ever pending until vacuum runs.
CREATE INDEX outbox_pending_by_subscriber ON outbox (subscriber_id)
    WHERE state = 'pending' AND subscriber_id IS NOT NULL;
-- Who holds which pending command, until when. Apart from the outbox: a
-- lease written into the outbox row made every claim a non-HOT update of
-- seven indexes per command. A settled command's lease row goes with the
-- statement that settles it; an expired one is taken over by the next
-- claim (or deleted with its node's other leases at its restart).
CREATE TABLE command_leases (
    seq            BIGINT NOT NULL PRIMARY KEY,
    enterprise_key TEXT NOT NULL,
    owner          TEXT NOT NULL,
    until          BIGINT NOT NULL
);
CREATE INDEX outbox_by_subscriber ON outbox (subscriber_id, seq) WHERE subscriber_id IS NOT NULL;
CREATE INDEX outbox_by_org ON outbox (org_id, seq) WHERE org_id IS NOT NULL;

CREATE TABLE licenses (
    subscriber_id TEXT NOT NULL,
    license       TEXT NOT NULL,
    granted_at    BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, license)
);

CREATE TABLE license_applied (
    idempotency_key TEXT NOT NULL PRIMARY KEY,
    applied_at      BIGINT NOT NULL
);

CREATE TABLE license_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    idempotency_key TEXT NOT NULL,
    subscriber_id   TEXT NOT NULL,
    license         TEXT NOT NULL,
    action          TEXT NOT NULL CHECK (action IN ('grant', 'revoke')),
    at              BIGINT NOT NULL
);
CREATE INDEX license_events_by_subscriber ON license_events (subscriber_id, id);

-- Email intents: what to send; the mailer composes the message when it
-- sends (no body, link or code is stored).
CREATE TABLE emails (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL,
    to_json         TEXT NOT NULL,
    subscriber_id   TEXT,
    dedupe_key      TEXT UNIQUE,
    intent_json     TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    message_token   TEXT NOT NULL,
    message_id      TEXT
);
CREATE INDEX emails_pending_due ON emails (next_attempt_at, id) WHERE state = 'pending';
CREATE INDEX emails_by_subscriber ON emails (subscriber_id, id) WHERE subscriber_id IS NOT NULL;
CREATE INDEX emails_by_kind ON emails (kind, id);
CREATE INDEX emails_by_dedupe_key ON emails (dedupe_key text_pattern_ops)
    WHERE dedupe_key IS NOT NULL;

CREATE TABLE existing_orgs (
    id                    TEXT NOT NULL PRIMARY KEY,
    name                  TEXT NOT NULL,
    user_count            BIGINT NOT NULL CHECK (user_count >= 0),
    verified_domains_json TEXT NOT NULL DEFAULT '[]',
    claimed_domains_json  TEXT NOT NULL DEFAULT '[]',
    licenses_json         TEXT NOT NULL DEFAULT '[]',
    auth_settings_json    TEXT NOT NULL DEFAULT 'null',
    email_suppression     BOOLEAN NOT NULL DEFAULT FALSE,
    branding_json         TEXT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);

CREATE TABLE existing_org_users (
    org_id   TEXT NOT NULL REFERENCES existing_orgs (id) ON DELETE CASCADE,
    position BIGINT NOT NULL,
    email    TEXT NOT NULL,
    is_admin BOOLEAN NOT NULL DEFAULT FALSE,
    PRIMARY KEY (org_id, position)
);
CREATE INDEX existing_org_users_by_email ON existing_org_users (lower(email));

CREATE TABLE org_partner_roles (
    org_id     TEXT NOT NULL REFERENCES existing_orgs (id) ON DELETE CASCADE,
    partner_id TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('none', 'provisioning_admin', 'full_admin')),
    source     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, partner_id)
);

CREATE TABLE org_approvals (
    signature   TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    approved_at BIGINT NOT NULL
);
CREATE INDEX org_approvals_by_org ON org_approvals (org_id, approved_at);

CREATE TABLE activations (
    subscriber_id   TEXT NOT NULL PRIMARY KEY REFERENCES subscribers (id),
    purpose         TEXT NOT NULL,
    nonce           TEXT NOT NULL,
    link_expires_at BIGINT NOT NULL,
    pending_email   TEXT,
    code_hash       TEXT,
    code_expires_at BIGINT,
    code_attempts   BIGINT NOT NULL DEFAULT 0,
    codes_sent      BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    completed_at    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
