-- 0003_email: the durable email outbox (notify). A message is written here
-- (possibly in the same transaction as the state change it follows from)
-- and delivered at least once by the mailer; rows are kept as the record
-- of what was sent.
-- Timestamps are unix milliseconds (UTC).
CREATE TABLE emails (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    -- notify::EmailKind::as_str
    kind            TEXT NOT NULL,
    -- serde_json array of recipient addresses (at least one)
    to_json         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT,
    subscriber_id   TEXT,
    -- a caller's key: a second message with the same key is not enqueued
    -- (UNIQUE ignores NULLs, so messages without one never collide)
    dedupe_key      TEXT UNIQUE,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER,
    -- random, fixed at enqueue: the Message-ID's left part, so every
    -- attempt (and an at-least-once duplicate) carries the same Message-ID
    message_token   TEXT NOT NULL,
    -- the Message-ID header as sent
    message_id      TEXT
) STRICT;

-- due_emails: pending rows by due time (partial: sent and failed rows
-- never enter it, so it stays as small as the backlog).
CREATE INDEX emails_pending_due ON emails (next_attempt_at, id)
    WHERE state = 'pending';
CREATE INDEX emails_by_subscriber ON emails (subscriber_id, id)
    WHERE subscriber_id IS NOT NULL;
CREATE INDEX emails_by_kind ON emails (kind, id);
