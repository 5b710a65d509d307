-- Webex Calling inventory (issue 15): an organization's locations and the
-- numbers pre-provisioned in them; a number is held by at most one user or
-- service (holder_kind/holder_ref NULL: free). A number belongs to one
-- organization (E.164 numbers are unique), so it is the key.
CREATE TABLE calling_locations (
    org_id      TEXT NOT NULL,
    location_id TEXT NOT NULL,
    name        TEXT NOT NULL,
    country     TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (org_id, location_id)
) STRICT;

CREATE TABLE calling_numbers (
    number         TEXT NOT NULL PRIMARY KEY,
    org_id         TEXT NOT NULL,
    location_id    TEXT NOT NULL,
    holder_kind    TEXT CHECK (holder_kind IN ('user', 'service')),
    holder_ref     TEXT,
    holder_user_id TEXT,
    assigned_at    INTEGER,
    created_at     INTEGER NOT NULL,
    FOREIGN KEY (org_id, location_id) REFERENCES calling_locations (org_id, location_id),
    CHECK ((holder_kind IS NULL) = (holder_ref IS NULL))
) STRICT;
CREATE INDEX calling_numbers_by_org ON calling_numbers (org_id, number);
-- One user holds one number (its primary).
CREATE UNIQUE INDEX calling_numbers_by_user ON calling_numbers (holder_ref)
    WHERE holder_kind = 'user';

-- Users provisioned without Webex Calling, and why (the report, and what
-- a package change decides again from).
CREATE TABLE calling_withheld (
    subscriber_id    TEXT NOT NULL PRIMARY KEY,
    org_id           TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    directory_number TEXT,
    reason           TEXT NOT NULL,
    at               INTEGER NOT NULL
) STRICT;
CREATE INDEX calling_withheld_by_org ON calling_withheld (org_id, user_id);

-- A command key applied with a notice (Calling withheld) answers it again.
ALTER TABLE license_applied ADD COLUMN notice_code INTEGER;
ALTER TABLE license_applied ADD COLUMN notice_detail TEXT;

-- Device activations the core allowed (the code is derived from the
-- command key by the gateway, never stored); Webex Go's last 90 days.
CREATE TABLE device_activations (
    command_key   TEXT NOT NULL PRIMARY KEY,
    org_id        TEXT NOT NULL,
    subscriber_id TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    device_type   TEXT,
    mac_address   TEXT,
    issued_at     INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX device_activations_by_org ON device_activations (org_id, user_id, issued_at);
