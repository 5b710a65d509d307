//! Tests run the use cases straight on a store (no workers to wake): the
//! same calls the store offered before the use cases moved here, so a
//! test reads as what it does.

use std::sync::Arc;

use async_trait::async_trait;

use crate::activation::ActivationLinks;
use crate::domain::lifecycle::Rejection;
use crate::domain::Package;
use crate::store::{transact, ActivationView, Store, StoreError};

use super::{
    accept, activation, delivery, orgs, partner, AcceptBatch, AcceptOutcome, ActivationStep,
    AdminChange, DeliveryOutcome, DetachOutcome,
};

#[async_trait]
pub(crate) trait UseCases {
    async fn accept(&self, batch: AcceptBatch) -> Result<AcceptOutcome, StoreError>;
    async fn complete_command(
        &self,
        seq: i64,
        outcome: DeliveryOutcome,
        now: i64,
    ) -> Result<(), StoreError>;
    async fn activation_step(
        &self,
        step: ActivationStep,
    ) -> Result<Result<ActivationView, Rejection>, StoreError>;
    async fn renew_activation(
        &self,
        links: Arc<ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        now: i64,
    ) -> Result<Result<ActivationView, Rejection>, StoreError>;
    async fn retry_activation(
        &self,
        links: Arc<ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        now: i64,
    ) -> Result<Result<activation::Retry, Rejection>, StoreError>;
    async fn partner_delete_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError>;
    async fn partner_change_package(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        package: Package,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError>;
    async fn detach(
        &self,
        partner_id: &str,
        enterprise_key: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<DetachOutcome, StoreError>;
}

#[async_trait]
impl<S: Store + ?Sized> UseCases for S {
    async fn accept(&self, batch: AcceptBatch) -> Result<AcceptOutcome, StoreError> {
        accept::run(self, batch).await
    }

    async fn complete_command(
        &self,
        seq: i64,
        outcome: DeliveryOutcome,
        now: i64,
    ) -> Result<(), StoreError> {
        // The worker knows the command it delivered; a test names it by seq.
        transact(self, move |tx| {
            let Some(entry) = tx.command(seq)? else {
                return Err(StoreError::MissingReference {
                    entity: "outbox entry",
                    id: seq.to_string(),
                });
            };
            delivery::complete_command(tx, seq, &entry.envelope.command, &outcome, now)
        })
        .await
    }

    async fn activation_step(
        &self,
        step: ActivationStep,
    ) -> Result<Result<ActivationView, Rejection>, StoreError> {
        transact(self, move |tx| activation::step(tx, &step, None)).await
    }

    async fn renew_activation(
        &self,
        links: Arc<ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        now: i64,
    ) -> Result<Result<ActivationView, Rejection>, StoreError> {
        let id = subscriber_id.to_string();
        transact(self, move |tx| {
            activation::renew(tx, &links, &id, email.clone(), now)
        })
        .await
    }

    async fn retry_activation(
        &self,
        links: Arc<ActivationLinks>,
        subscriber_id: &str,
        email: Option<String>,
        now: i64,
    ) -> Result<Result<activation::Retry, Rejection>, StoreError> {
        let id = subscriber_id.to_string();
        transact(self, move |tx| {
            activation::retry(tx, &links, &id, email.clone(), true, now)
        })
        .await
    }

    async fn partner_delete_subscriber(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError> {
        let (p, id, t) = (
            partner_id.to_string(),
            subscriber_id.to_string(),
            tracking_id.to_string(),
        );
        transact(self, move |tx| partner::delete(tx, &p, &id, &t, now)).await
    }

    async fn partner_change_package(
        &self,
        partner_id: &str,
        subscriber_id: &str,
        package: Package,
        tracking_id: &str,
        now: i64,
    ) -> Result<Result<AdminChange, Rejection>, StoreError> {
        let (p, id, t) = (
            partner_id.to_string(),
            subscriber_id.to_string(),
            tracking_id.to_string(),
        );
        transact(self, move |tx| {
            partner::change_package(tx, &p, &id, package, &t, now)
        })
        .await
    }

    async fn detach(
        &self,
        partner_id: &str,
        enterprise_key: &str,
        tracking_id: &str,
        now: i64,
    ) -> Result<DetachOutcome, StoreError> {
        let (p, k, t) = (
            partner_id.to_string(),
            enterprise_key.to_string(),
            tracking_id.to_string(),
        );
        transact(self, move |tx| orgs::detach(tx, &p, &k, &t, now)).await
    }
}
