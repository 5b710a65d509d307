-- 0004_orgs: existing organizations (from the identity system, loaded by
-- operators) that an enterprise may attach to, the partner's role in each,
-- and the approval tokens already used. The link itself is the
-- enterprise's row in `organizations` (origin 'attached', same id as the
-- existing organization): an existing organization is linked while such a
-- row exists.
-- Timestamps are unix milliseconds (UTC).
CREATE TABLE existing_orgs (
    id                    TEXT NOT NULL PRIMARY KEY,
    name                  TEXT NOT NULL,
    -- total users (may exceed the users listed in existing_org_users)
    user_count            INTEGER NOT NULL CHECK (user_count >= 0),
    -- serde_json arrays of lower-cased domain names
    verified_domains_json TEXT NOT NULL DEFAULT '[]',
    claimed_domains_json  TEXT NOT NULL DEFAULT '[]',
    -- serde_json of Vec<domain::organization::OrgLicense>
    licenses_json         TEXT NOT NULL DEFAULT '[]',
    -- opaque to the gateway, kept through an attach
    auth_settings_json    TEXT NOT NULL DEFAULT 'null',
    email_suppression     INTEGER NOT NULL DEFAULT 0,
    branding_json         TEXT,
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
) STRICT;

-- Users in listed order (`position`: the first five admins are notified).
CREATE TABLE existing_org_users (
    org_id   TEXT NOT NULL REFERENCES existing_orgs (id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    -- normalized (domain lower-cased); compared case-insensitively
    email    TEXT NOT NULL,
    is_admin INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, position)
) STRICT, WITHOUT ROWID;

-- "The existing organization with a user whose email is X" (attach).
CREATE INDEX existing_org_users_by_email ON existing_org_users (email COLLATE NOCASE);

-- The partner's rights in an existing organization, granted by an attach
-- or by the organization's admins (approval).
CREATE TABLE org_partner_roles (
    org_id     TEXT NOT NULL REFERENCES existing_orgs (id) ON DELETE CASCADE,
    partner_id TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('none', 'provisioning_admin', 'full_admin')),
    -- 'attach' | 'approval' | 'import'
    source     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (org_id, partner_id)
) STRICT, WITHOUT ROWID;

-- Approval tokens already used (by their MAC), so a link works once.
CREATE TABLE org_approvals (
    signature   TEXT NOT NULL PRIMARY KEY,
    org_id      TEXT NOT NULL,
    partner_id  TEXT NOT NULL,
    approved_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX org_approvals_by_org ON org_approvals (org_id, approved_at);
