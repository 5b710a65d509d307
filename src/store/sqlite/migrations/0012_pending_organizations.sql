-- 0012_pending_organizations: an organization created for an enterprise
-- whose first subscriber's email is not trusted waits, unannounced to the
-- license core, until a user of the enterprise verifies an email: that
-- email decides whether the enterprise attaches to an existing
-- organization instead (an unverified address must not). `origin` stays
-- 'created'; `pending` = 1 until then.
ALTER TABLE organizations ADD COLUMN pending INTEGER NOT NULL DEFAULT 0 CHECK (pending IN (0, 1));
