-- 0010_leases_and_intents: work is claimed with a lease, and an email row
-- holds what to send rather than its words.
--
-- Leases: a worker claims due outbox commands and emails by setting
-- lease_owner (its node id, `server.node_id`) and lease_until (unix ms) in
-- one statement; others skip a row while its lease runs, and take it when
-- the lease expired (its worker died). 0 = never leased. A retry releases
-- the lease; a settled row leaves the pending indexes anyway.
ALTER TABLE outbox ADD COLUMN lease_owner TEXT;
ALTER TABLE outbox ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE emails ADD COLUMN lease_owner TEXT;
ALTER TABLE emails ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;

-- The claim reads the lease from the index alone, like the due time.
DROP INDEX outbox_pending_by_seq;
CREATE INDEX outbox_pending_by_seq
    ON outbox (seq, enterprise_key, next_attempt_at, lease_until)
    WHERE state = 'pending';
-- Pending rows that carry a lease (running or expired): an enterprise
-- whose earlier command is leased by another worker is not claimed.
CREATE INDEX outbox_pending_leased ON outbox (lease_until, enterprise_key)
    WHERE state = 'pending' AND lease_until > 0;

-- Email intents: serde_json of notify::StoredIntent (versioned, one
-- variant per kind: recipient-facing parameters and how to make each link
-- or code, never the words or a secret). The mailer composes the message
-- when it sends. NULL: a row from before 0010, sent with its stored words
-- (subject, bodies with placeholders, secrets_json) as they are. New rows
-- leave subject and bodies empty.
ALTER TABLE emails ADD COLUMN intent_json TEXT;
