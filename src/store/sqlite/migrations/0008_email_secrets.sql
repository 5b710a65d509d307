-- 0008_email_secrets: emails no longer hold link tokens or codes. A row's
-- subject and bodies hold placeholders; secrets_json says how the mailer
-- makes each secret with the server key (not in the database) when it
-- sends (notify::secrets). Rows written before this carry their secrets in
-- clear: settled ones (sent or failed: the message went out or never
-- will) are redacted now; pending ones keep their words until they settle,
-- then are redacted (redact_when_settled).

-- serde_json array of notify::MailSecret; NULL: none
ALTER TABLE emails ADD COLUMN secrets_json TEXT;
-- 1: a row from before 0008 whose bodies hold secrets; redacted when it settles
ALTER TABLE emails ADD COLUMN redact_when_settled INTEGER NOT NULL DEFAULT 0;

UPDATE emails
SET subject = '(redacted: it carried a verification code)'
WHERE state <> 'pending' AND kind = 'verification_code';
UPDATE emails
SET text_body = '(redacted: the message carried a link or code that is not kept)',
    html_body = NULL
WHERE state <> 'pending'
  AND kind IN ('activation_link', 'verification_code', 'consent_migration',
               'org_attach_approval');
UPDATE emails SET redact_when_settled = 1
WHERE state = 'pending'
  AND kind IN ('activation_link', 'verification_code', 'consent_migration',
               'org_attach_approval');
