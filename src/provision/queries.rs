//! The read side of the use cases: what the faces look up (subscribers,
//! activations, emails, existing organizations, partners and their
//! subscribers and admin tokens, readiness). Faces read through
//! [`Queries`], never the store; a failure reaches them as [`DataError`].

use crate::commands::outbox::OutboxEntry;
use crate::domain::activation::ActivationView;
use crate::domain::email::{EmailFilter, EmailRecord};
use crate::domain::ids::UserId;
use crate::domain::license_ledger::LicenseEvent;
use crate::domain::lifecycle::{OrganizationRef, SubscriberRecord};
use crate::domain::org_report::ExistingOrgReport;
use crate::domain::subscriber_query::SubscriberQuery;
use crate::domain::Partner;
use crate::store::tx::OrgOrigin;
use std::sync::Arc;

use super::tenancy::TenancyGeneration;
use crate::store::SharedStore;

use super::DataError;

/// Read-only lookups for the faces.
pub struct Queries {
    store: SharedStore,
    tenancy: Arc<TenancyGeneration>,
}

impl Queries {
    /// Lookups on `store` that never see another node's tenancy changes
    /// (tests, tools).
    pub fn new(store: SharedStore) -> Queries {
        Self::following(store, Arc::default())
    }

    /// Lookups whose tenancy caches follow `tenancy` (the node's
    /// [`Provisioning::tenancy_generation`](super::Provisioning::tenancy_generation)).
    pub fn following(store: SharedStore, tenancy: Arc<TenancyGeneration>) -> Queries {
        Queries { store, tenancy }
    }

    /// Caches of partners' data compare this: another generation means
    /// another node changed partners or templates since they were filled.
    pub fn tenancy_generation(&self) -> u64 {
        self.tenancy.current()
    }

    /// A subscriber by BroadWorks user id (any case: ids are compared in
    /// their canonical form) or, failing that, by subscriber id.
    pub async fn subscriber(&self, key: &str) -> Result<Option<SubscriberRecord>, DataError> {
        if let Some(user_id) = UserId::canonical_key(key) {
            if let Some(found) = self.store.subscriber_by_user_id(user_id.as_str()).await? {
                return Ok(Some(found));
            }
        }
        Ok(self.store.subscriber(key).await?)
    }

    /// A subscriber by its canonical BroadWorks user id.
    pub async fn subscriber_by_user_id(
        &self,
        user_id: &str,
    ) -> Result<Option<SubscriberRecord>, DataError> {
        Ok(self.store.subscriber_by_user_id(user_id).await?)
    }

    /// The licenses a subscriber holds now.
    pub async fn licenses(&self, subscriber_id: &str) -> Result<Vec<String>, DataError> {
        Ok(self.store.licenses(subscriber_id).await?)
    }

    /// Every license grant and revocation of a subscriber.
    pub async fn license_events(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<LicenseEvent>, DataError> {
        Ok(self.store.license_events(subscriber_id).await?)
    }

    /// Every command about a subscriber, oldest first.
    pub async fn subscriber_commands(
        &self,
        subscriber_id: &str,
    ) -> Result<Vec<OutboxEntry>, DataError> {
        Ok(self.store.subscriber_commands(subscriber_id).await?)
    }

    /// A subscriber with its activation, if it has one.
    pub async fn activation(
        &self,
        subscriber_id: &str,
    ) -> Result<Option<ActivationView>, DataError> {
        Ok(self.store.activation(subscriber_id).await?)
    }

    /// Outbox emails matching `filter`, newest first, at most `limit`.
    pub async fn emails(
        &self,
        filter: &EmailFilter,
        limit: usize,
    ) -> Result<Vec<EmailRecord>, DataError> {
        Ok(self.store.emails(filter, limit).await?)
    }

    /// An existing organization with its link, partner roles, approval
    /// emails and commands.
    pub async fn existing_org(&self, id: &str) -> Result<Option<ExistingOrgReport>, DataError> {
        Ok(self.store.existing_org(id).await?)
    }

    /// An enterprise's organization (created or attached) by id, with how
    /// it came to be the enterprise's.
    pub async fn organization(
        &self,
        id: &str,
    ) -> Result<Option<(OrganizationRef, OrgOrigin)>, DataError> {
        Ok(self.store.organization(id).await?)
    }

    pub async fn partner(&self, id: &str) -> Result<Option<Partner>, DataError> {
        Ok(self.store.partner(id).await?)
    }

    /// The partner's subscribers matching `query`, in id order.
    pub async fn partner_subscribers(
        &self,
        query: &SubscriberQuery,
    ) -> Result<Vec<SubscriberRecord>, DataError> {
        Ok(self.store.partner_subscribers(query).await?)
    }

    /// One subscriber of one of the partner's templates; `None` for
    /// another partner's (or none).
    pub async fn partner_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
    ) -> Result<Option<SubscriberRecord>, DataError> {
        Ok(self
            .store
            .partner_subscriber(partner_id, subscriber_id)
            .await?)
    }

    /// `(partner id, PHC hash)` of every partner with an admin token.
    pub async fn partner_admin_tokens(&self) -> Result<Vec<(String, String)>, DataError> {
        Ok(self.store.partner_admin_tokens().await?)
    }

    /// A cheap round trip through the store, for readiness.
    pub async fn ping(&self) -> Result<(), DataError> {
        Ok(self.store.ping().await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::StoreConfig;
    use crate::domain::phone::DirectoryNumber;
    use crate::domain::subscriber::{NewSubscriber, Operation};
    use crate::domain::template::TemplateSource;
    use crate::domain::{CustomerTemplate, TemplateSettings};
    use crate::provision::testing::UseCases;
    use crate::provision::AcceptBatch;
    use crate::store::sqlite::SqliteStore;
    use crate::store::Store;

    async fn store_with(dir: &tempfile::TempDir, user_id: &str) -> Arc<SqliteStore> {
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("bwgate.db"), &StoreConfig::default())
                .await
                .expect("open store"),
        );
        store
            .upsert_partner(&Partner {
                id: "acme".into(),
                name: "Acme".into(),
                admin_email: None,
            })
            .await
            .expect("partner");
        let template = CustomerTemplate {
            provisioning_id: "tpl".into(),
            partner_id: "acme".into(),
            cluster_id: None,
            name: "Template".into(),
            settings: TemplateSettings {
                enterprise_mode: true,
                trusted_emails: true,
                ..TemplateSettings::default()
            },
            provisioning_username: "prov".into(),
            provisioning_password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            source: TemplateSource::Api,
            disabled_at: None,
        };
        store.upsert_template(&template).await.expect("template");
        let add = Operation::AddUser(NewSubscriber {
            user_id: UserId::parse(user_id).expect("user id"),
            service_provider_id: "ENT1".into(),
            group_id: "G1".into(),
            first_name: "Alice".into(),
            last_name: "Smith".into(),
            email: Some("alice@acme.example".into()),
            phone_number: Some(DirectoryNumber::parse("+12405550100").expect("phone")),
            extension: None,
            mobile_phone_number: None,
            language: None,
            time_zone: None,
            package: None,
            is_trunk_user: false,
            has_route_list: false,
            service_provider_name: None,
            group_name: None,
        });
        let out = store
            .accept(AcceptBatch {
                template,
                tracking_id: "T1".into(),
                request_id: None,
                now: 1_000,
                operations: vec![(0, add)],
                invalid: Vec::new(),
                sent_user_ids: Vec::new(),
                approvals: None,
                activations: None,
                self_activation: false,
            })
            .await
            .expect("accept");
        assert!(
            out.results.iter().all(|r| r.error_code.is_none()),
            "{out:?}"
        );
        store
    }

    /// The admin lookup: a user id in any case, else a subscriber id.
    #[tokio::test]
    async fn a_subscriber_is_found_by_user_id_in_any_case_or_by_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(&dir, "alice@acme.example").await;
        let queries = Queries::new(store);
        let by_user = queries
            .subscriber("Alice@ACME.example")
            .await
            .expect("lookup")
            .expect("found by user id");
        assert_eq!(
            by_user.user_id.as_ref().map(UserId::as_str),
            Some("alice@acme.example")
        );
        let by_id = queries
            .subscriber(&by_user.id)
            .await
            .expect("lookup")
            .expect("found by id");
        assert_eq!(by_id.id, by_user.id);
        assert_eq!(
            queries
                .subscriber("bob@acme.example")
                .await
                .expect("lookup"),
            None
        );
        assert_eq!(
            queries.subscriber("no-such-id").await.expect("lookup"),
            None
        );
        // The canonical form is what `subscriber_by_user_id` takes.
        assert!(queries
            .subscriber_by_user_id("alice@acme.example")
            .await
            .expect("lookup")
            .is_some());
    }

    /// A closed store reaches a face as a retryable `DataError`.
    #[tokio::test]
    async fn a_closed_store_is_a_retryable_data_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = store_with(&dir, "alice@acme.example").await;
        let queries = Queries::new(store.clone());
        queries.ping().await.expect("ping while open");
        store.close().await.expect("close");
        let e = queries.ping().await.expect_err("closed");
        assert!(e.is_retryable(), "{e}");
    }
}
