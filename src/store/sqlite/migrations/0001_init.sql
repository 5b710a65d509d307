-- 0001_init: tenancy (partners, BroadWorks clusters, customer templates).
-- Timestamps are unix milliseconds (UTC). Ids are the caller's own strings.

CREATE TABLE partners (
    id          TEXT NOT NULL PRIMARY KEY,
    name        TEXT NOT NULL,
    admin_email TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE clusters (
    id          TEXT NOT NULL PRIMARY KEY,
    partner_id  TEXT NOT NULL REFERENCES partners (id),
    name        TEXT NOT NULL,
    xsp_url     TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX clusters_by_partner ON clusters (partner_id);

CREATE TABLE templates (
    provisioning_id            TEXT NOT NULL PRIMARY KEY,
    partner_id                 TEXT NOT NULL REFERENCES partners (id),
    cluster_id                 TEXT REFERENCES clusters (id),
    name                       TEXT NOT NULL,
    -- serde_json of domain::TemplateSettings
    settings_json              TEXT NOT NULL,
    provisioning_username      TEXT NOT NULL,
    -- argon2 PHC string; never a plain password
    provisioning_password_hash TEXT NOT NULL,
    -- 'config' | 'demo' | 'api' (checked when decoding, not here, so a
    -- later source does not need a table rebuild)
    source                     TEXT NOT NULL,
    created_at                 INTEGER NOT NULL,
    updated_at                 INTEGER NOT NULL
) STRICT;

CREATE INDEX templates_by_partner ON templates (partner_id);
CREATE INDEX templates_by_cluster ON templates (cluster_id) WHERE cluster_id IS NOT NULL;
