-- 0006_partner_admin: partner admins (subscriber status page and JSON API).

-- The partner admin token as an argon2 PHC string (never the token itself),
-- from `[[partners]] admin_token_hash` or generated for the demo partner.
-- NULL: the partner has no admin access.
ALTER TABLE partners ADD COLUMN admin_token_hash TEXT;

-- A partner's subscribers in keyset (id) order, per template: the status
-- list walks it for one template without sorting, and seeks to the cursor.
CREATE INDEX subscribers_by_template ON subscribers (provisioning_id, id);
