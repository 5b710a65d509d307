-- 0003_provisioning_events: see SQLite's 0013. `seq` comes from a
-- sequence: on several nodes a lower seq can commit after a higher one,
-- so the tailer waits on gaps for a while (`crate::events::tail`).
CREATE TABLE provisioning_events (
    seq  BIGSERIAL PRIMARY KEY,
    at   BIGINT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL
);

CREATE TABLE event_subscriptions (
    id         TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    body       TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    acked_seq  BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
