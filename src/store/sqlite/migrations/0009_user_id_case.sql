-- User ids are compared without regard to ASCII case since issue 10
-- (`domain::ids::UserId::parse` lower-cases them). Ids stored before keep
-- working: each is lower-cased here, unless another stored id differs from
-- it only in case (two subscribers already exist for one user); those are
-- left as they are for an operator to resolve, and found by exact match.
UPDATE subscribers
SET user_id = lower(user_id)
WHERE user_id IS NOT NULL
  AND user_id <> lower(user_id)
  AND NOT EXISTS (
      SELECT 1 FROM subscribers AS other
      WHERE other.id <> subscribers.id
        AND lower(other.user_id) = lower(subscribers.user_id)
  );
