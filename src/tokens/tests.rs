use super::*;

fn settings() -> TokenSettings {
    TokenSettings {
        issuer: "bwgate-test".into(),
        bearer_lifetime_secs: 720 * 3600,
    }
}

const NOW: i64 = 1_800_000_000;

#[test]
fn a_key_is_made_once_owner_only_and_bearer_tokens_verify_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    assert_eq!(again.key_id(), issuer.key_id(), "the same key on restart");

    let token = issuer.issue_bearer("ann@acme.example", NOW).unwrap();
    // A JWT whose payload names the user as `sub` (what Webex clients read).
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "ann@acme.example");
    assert_eq!(claims["iss"], "bwgate-test");
    assert_eq!(claims["exp"], NOW + 720 * 3600);
    let v = again.verify_bearer(&token, NOW + 10).unwrap();
    assert_eq!(v.user_id, "ann@acme.example");
    assert_eq!(v.issued_at, NOW);
    assert_eq!(
        again.verify_bearer(&token, NOW + 720 * 3600),
        Err(Rejected::Expired)
    );
}

#[test]
fn altered_foreign_and_wrong_kind_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    let token = issuer.issue_bearer("ann@acme.example", NOW).unwrap();
    // Another payload under the same signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    let forged = serde_json::json!({"iss":"bwgate-test","sub":"eve@acme.example","iat":NOW,"exp":NOW+99,"jti":"x","typ":"bearer"});
    parts[1] = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        forged.to_string(),
    );
    assert_eq!(
        issuer.verify_bearer(&parts.join("."), NOW),
        Err(Rejected::Invalid)
    );
    // Signed by another server's key.
    let other_dir = tempfile::tempdir().unwrap();
    let other = TokenIssuer::load_or_create(other_dir.path(), settings()).unwrap();
    let foreign = other.issue_bearer("ann@acme.example", NOW).unwrap();
    assert_eq!(issuer.verify_bearer(&foreign, NOW), Err(Rejected::Invalid));
    // Another issuer name.
    let renamed = TokenIssuer::load_or_create(
        dir.path(),
        TokenSettings {
            issuer: "someone-else".into(),
            ..settings()
        },
    )
    .unwrap();
    let theirs = renamed.issue_bearer("ann@acme.example", NOW).unwrap();
    assert_eq!(issuer.verify_bearer(&theirs, NOW), Err(Rejected::Invalid));
    // A login token is not a bearer token, nor the other way round.
    let login = issuer.issue_login("ann@acme.example", NOW).unwrap();
    assert_eq!(issuer.verify_bearer(&login, NOW), Err(Rejected::WrongKind));
    assert_eq!(issuer.check_login(&token, NOW), Err(Rejected::WrongKind));
    assert_eq!(
        issuer.verify_bearer("not.a.jwt", NOW),
        Err(Rejected::Invalid)
    );
}

#[test]
fn login_tokens_work_within_sixty_seconds_and_each_has_its_own_id() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    let login = issuer.issue_login("ann@acme.example", NOW).unwrap();
    let checked = issuer.check_login(&login, NOW + 1).unwrap();
    assert_eq!(checked.verified.user_id, "ann@acme.example");
    assert_eq!(checked.verified.expires_at, NOW + LOGIN_TOKEN_SECS);
    // Single use is the store's (see the suite's `use_once`): the token
    // itself checks out again, under the same id.
    assert_eq!(issuer.check_login(&login, NOW + 2).unwrap().id, checked.id);
    let other = issuer.issue_login("ann@acme.example", NOW).unwrap();
    assert_ne!(issuer.check_login(&other, NOW + 1).unwrap().id, checked.id);
    assert_eq!(
        issuer.check_login(&other, NOW + LOGIN_TOKEN_SECS),
        Err(Rejected::Expired)
    );
}

#[test]
fn after_a_rotation_the_previous_key_still_verifies_and_both_are_published() {
    let dir = tempfile::tempdir().unwrap();
    let before = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    let old_token = before.issue_bearer("ann@acme.example", NOW).unwrap();
    let new_kid = TokenIssuer::rotate(dir.path()).unwrap();
    assert_ne!(new_kid, before.key_id());
    let after = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    assert_eq!(after.key_id(), new_kid);
    assert_eq!(
        after.verify_bearer(&old_token, NOW).unwrap().user_id,
        "ann@acme.example",
        "tokens of the previous key keep working"
    );
    let jwks = serde_json::to_value(after.jwks()).unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, [new_kid.as_str(), before.key_id()]);
    assert!(jwks["keys"][0]["d"].is_null(), "no private part published");
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    // A second rotation drops the oldest key: its tokens stop working.
    TokenIssuer::rotate(dir.path()).unwrap();
    let later = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    assert_eq!(later.verify_bearer(&old_token, NOW), Err(Rejected::Invalid));
}

#[test]
fn a_token_verifies_with_the_published_jwks_alone() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = TokenIssuer::load_or_create(dir.path(), settings()).unwrap();
    let token = issuer.issue_bearer("ann@acme.example", NOW).unwrap();
    let jwks: JwkSet =
        serde_json::from_value(serde_json::to_value(issuer.jwks()).unwrap()).unwrap();
    let kid = jsonwebtoken::decode_header(&token).unwrap().kid.unwrap();
    let jwk = jwks.find(&kid).expect("published");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::ES256);
    validation.validate_exp = false;
    let data = jsonwebtoken::decode::<serde_json::Value>(&token, &key, &validation).unwrap();
    assert_eq!(data.claims["sub"], "ann@acme.example");
}
