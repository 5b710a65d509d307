-- 0014_used_once: keys good once (XSI login tokens' ids) until they
-- expire, so a login token works once whichever node it reaches.
CREATE TABLE used_once (
    key        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX used_once_expires ON used_once (expires_at);
