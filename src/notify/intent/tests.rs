use super::*;
use crate::domain::activation::ActivationPurpose;

fn token() -> MailSecret {
    MailSecret::SignedToken {
        purpose: "activation".into(),
        fields: vec!["sub-1".into(), "n".into(), "email_input".into()],
        expires_at: 0,
    }
}

fn link() -> EmailIntent {
    EmailIntent::ActivationLink(LinkIntent {
        portal_base: "https://portal.example".into(),
        language: "en".into(),
        first_name: "Ann".into(),
        last_name: "Lee".into(),
        to: "a@x.example".into(),
        purpose: ActivationPurpose::EmailInput,
        link_expires_at: 0,
        contact: Contact::default(),
        token: token(),
    })
}

#[test]
fn intents_round_trip_versioned_and_draft_the_same_words() {
    let intent = link();
    let json = intent.to_stored_json().unwrap();
    assert!(
        json.starts_with(r#"{"v":1,"type":"activation_link""#),
        "{json}"
    );
    assert_eq!(EmailIntent::from_stored_json(&json).unwrap(), intent);
    let draft = intent.draft();
    assert_eq!(draft.subject, "Activate your Webex account");
    assert!(draft.text_body.starts_with("Hello Ann Lee,"));
    assert!(
        draft
            .text_body
            .contains("https://portal.example/activate?token=[[bwgate-secret-0]]"),
        "{}",
        draft.text_body
    );
    assert!(draft.text_body.contains("until 1970-01-01 00:00 UTC"));
    assert_eq!(draft.secrets, [token()]);
    // Another version is refused, not misread.
    let newer = json.replacen(r#""v":1"#, r#""v":2"#, 1);
    assert!(EmailIntent::from_stored_json(&newer)
        .unwrap_err()
        .contains("version 2"));
}

#[test]
fn a_plain_message_keeps_its_words() {
    let plain = EmailIntent::Plain(PlainMessage {
        subject: "s".into(),
        text_body: "t [[bwgate-secret-0]]".into(),
        html_body: None,
        secrets: vec![token()],
    });
    let json = plain.to_stored_json().unwrap();
    let back = EmailIntent::from_stored_json(&json).unwrap();
    let d = back.draft();
    assert_eq!(
        (d.subject.as_str(), d.text_body.as_str(), d.secrets.len()),
        ("s", "t [[bwgate-secret-0]]", 1)
    );
}

#[test]
fn validate_knows_every_word_the_composers_put_in_the_subject() {
    // `EmailMessage::validate` (domain) checks only the intent's
    // `subject_input()` for line breaks; it must agree with the composed
    // subject. Every string a flow gives carries a line break here, so a
    // composer putting another one into the subject makes them disagree.
    let nl = "x\r\ny";
    let contact = Contact {
        partner_admin_name: Some(nl.into()),
        partner_admin_email: Some(nl.into()),
    };
    let intents = [
        EmailIntent::ActivationLink(LinkIntent {
            portal_base: nl.into(),
            language: nl.into(),
            first_name: nl.into(),
            last_name: nl.into(),
            to: nl.into(),
            purpose: ActivationPurpose::ConsentMigration,
            link_expires_at: 0,
            contact: contact.clone(),
            token: token(),
        }),
        EmailIntent::VerificationCode(CodeIntent {
            portal_base: nl.into(),
            language: nl.into(),
            to: nl.into(),
            code_ttl_minutes: 10,
            contact,
            token: token(),
            code: token(),
        }),
        EmailIntent::OrgAttachApproval(ApprovalIntent {
            portal_base: nl.into(),
            org_name: nl.into(),
            partner_id: nl.into(),
            partner_admin_name: Some(nl.into()),
            partner_admin_email: None,
            token: token(),
        }),
        EmailIntent::Plain(PlainMessage {
            subject: nl.into(),
            text_body: nl.into(),
            html_body: Some(nl.into()),
            secrets: Vec::new(),
        }),
    ];
    for intent in intents {
        let msg = EmailMessage {
            to: vec!["a@example.com".into()],
            kind: crate::notify::EmailKind::Test,
            subscriber_id: None,
            dedupe_key: None,
            intent,
        };
        let multi_line = msg.draft().subject.contains(['\r', '\n']);
        assert_eq!(
            msg.validate(),
            if multi_line {
                Err(crate::notify::InvalidMessage::MultiLineSubject)
            } else {
                Ok(())
            },
            "{:?}",
            msg.intent
        );
    }
}
