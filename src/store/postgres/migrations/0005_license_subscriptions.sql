-- 0005_license_subscriptions: see SQLite's 0015.
-- License subscriptions (issue 15): an organization's subscriptions hold
-- licenses by name and quantity (`quantities_json`: {"license": n}); a
-- license a subscriber holds counts against the subscription it came from
-- (NULL: granted while the organization had none, unmetered), with why it
-- was granted. The ledger gains what billing needs to pro-rate, and a
-- refused command key keeps its refusal (a repeat gets the same answer).
CREATE TABLE license_subscriptions (
    id              TEXT NOT NULL PRIMARY KEY,
    org_id          TEXT NOT NULL,
    starts_at       BIGINT NOT NULL,
    quantities_json TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX license_subscriptions_by_org ON license_subscriptions (org_id, starts_at, id);

ALTER TABLE licenses ADD COLUMN subscription_id TEXT;
ALTER TABLE licenses ADD COLUMN source TEXT NOT NULL DEFAULT 'package';
ALTER TABLE licenses ADD COLUMN source_ref TEXT NOT NULL DEFAULT '';
ALTER TABLE licenses ADD COLUMN command_key TEXT NOT NULL DEFAULT '';
-- The organization and user id as the granting command named them: a
-- remote core has no subscriber rows to find them in.
ALTER TABLE licenses ADD COLUMN org_id TEXT;
ALTER TABLE licenses ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE licenses ADD COLUMN group_id TEXT;
CREATE INDEX licenses_by_subscription ON licenses (subscription_id, license)
    WHERE subscription_id IS NOT NULL;
CREATE INDEX licenses_by_org ON licenses (org_id) WHERE org_id IS NOT NULL;
-- Licenses granted before this migration: their subscriber's ids.
UPDATE licenses SET
    org_id = (SELECT s.org_id FROM subscribers s WHERE s.id = licenses.subscriber_id),
    user_id = COALESCE(
        (SELECT s.user_id FROM subscribers s WHERE s.id = licenses.subscriber_id), ''),
    group_id = (SELECT s.group_id FROM subscribers s WHERE s.id = licenses.subscriber_id);

ALTER TABLE license_events ADD COLUMN org_id TEXT;
ALTER TABLE license_events ADD COLUMN subscription_id TEXT;
ALTER TABLE license_events ADD COLUMN source TEXT NOT NULL DEFAULT 'package';
ALTER TABLE license_events ADD COLUMN source_ref TEXT NOT NULL DEFAULT '';

ALTER TABLE license_applied ADD COLUMN refused_code INTEGER;
ALTER TABLE license_applied ADD COLUMN refused_detail TEXT;

-- Auto-license templates: an organization's (group_id '') and its
-- groups' (`licenses_json`: {"licenses": [..]}).
CREATE TABLE license_templates (
    org_id        TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    licenses_json TEXT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (org_id, group_id)
);
