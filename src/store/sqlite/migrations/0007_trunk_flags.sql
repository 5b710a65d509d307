-- 0007_trunk_flags: the BroadWorks trunk flags of a subscriber, so a later
-- ModifyUser setting one of them is checked against the stored other (a
-- trunk user with a route list is refused with 9006). Subscribers stored
-- before this migration count as neither (nothing could be learned of them).
ALTER TABLE subscribers ADD COLUMN is_trunk_user INTEGER NOT NULL DEFAULT 0
    CHECK (is_trunk_user IN (0, 1));
ALTER TABLE subscribers ADD COLUMN has_route_list INTEGER NOT NULL DEFAULT 0
    CHECK (has_route_list IN (0, 1));
