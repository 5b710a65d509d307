-- 0005_activation: the activation portal's state per subscriber (untrusted
-- email input and verification, consent to move an account,
-- self-activation), and each organization's admin subscriber ("provision
-- admin first"). Timestamps are unix milliseconds (UTC).

CREATE TABLE activations (
    subscriber_id   TEXT NOT NULL PRIMARY KEY REFERENCES subscribers (id),
    -- domain::activation::ActivationPurpose::as_str
    purpose         TEXT NOT NULL,
    -- carried by the signed link; replaced when a new link is sent
    nonce           TEXT NOT NULL,
    link_expires_at INTEGER NOT NULL,
    -- entered on the portal, not yet verified
    pending_email   TEXT,
    -- keyed hash (HMAC with the server secret) of the current code
    code_hash       TEXT,
    code_expires_at INTEGER,
    code_attempts   INTEGER NOT NULL DEFAULT 0,
    codes_sent      INTEGER NOT NULL DEFAULT 0,
    locked_until    INTEGER,
    -- the flow finished: the link is used up
    completed_at    INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The subscriber who is (or becomes, on activation) the organization's
-- admin; NULL for attached organizations, whose first user is not made
-- admin, and until someone activates when "provision admin first" is off.
ALTER TABLE organizations ADD COLUMN admin_subscriber_id TEXT;
