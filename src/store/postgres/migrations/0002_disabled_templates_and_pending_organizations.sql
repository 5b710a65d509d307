-- 0002: templates removed from the configuration are disabled, not
-- deleted (NULL: enabled; else when the start-up sync disabled it; its
-- subscribers and organizations stay); an organization created for an
-- untrusted template's first subscriber is pending (not announced to the
-- license core) until the first verified email decides whether the
-- enterprise attaches to an existing organization instead.
ALTER TABLE templates ADD COLUMN disabled_at BIGINT;
ALTER TABLE organizations ADD COLUMN pending BOOLEAN NOT NULL DEFAULT FALSE;
