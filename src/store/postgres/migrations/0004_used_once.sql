-- 0004_used_once: see SQLite's 0014.
CREATE TABLE used_once (
    key        TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_once_expires ON used_once (expires_at);
