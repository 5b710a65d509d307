-- A template removed from the configuration file is disabled, not deleted:
-- its subscribers and organizations stay, it accepts no provisioning, and
-- it is enabled again when the configuration declares it again.
-- NULL: enabled; otherwise when (unix ms) the start-up sync disabled it.
ALTER TABLE templates ADD COLUMN disabled_at INTEGER;
