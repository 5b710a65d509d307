-- Workspaces provisioned through the partner API (issue 15): a BroadWorks
-- user id standing for a place, in an enterprise's organization. A removed
-- workspace keeps its row (status 'removed'); its user id may be used
-- again.
CREATE TABLE workspaces (
    id               TEXT NOT NULL PRIMARY KEY,
    provisioning_id  TEXT NOT NULL,
    partner_id       TEXT NOT NULL,
    sp_enterprise_id TEXT NOT NULL,
    enterprise_key   TEXT NOT NULL,
    org_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    display_name     TEXT NOT NULL,
    phone_number     TEXT,
    extension        TEXT,
    status           TEXT NOT NULL,
    errors_json      TEXT NOT NULL DEFAULT '[]',
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE UNIQUE INDEX workspaces_live_user_id ON workspaces (user_id)
    WHERE status <> 'removed';
CREATE INDEX workspaces_by_org ON workspaces (org_id);
