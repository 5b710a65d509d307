//! Leased claims on the outbox: two workers on one store never hold the
//! same command, nor commands of one enterprise at once; order is kept; a
//! lease that expired (its worker died) is taken by another.

use super::*;
use crate::provision::testing::UseCases;
use crate::provision::DeliveryOutcome;
use crate::store::{Lease, OutboxEntry};

fn lease(owner: &str, now: i64) -> Lease {
    Lease {
        owner: owner.into(),
        now,
        until: now + 10_000,
    }
}

fn enterprise(e: &OutboxEntry) -> &str {
    e.envelope.enterprise_key.as_str()
}

pub(crate) async fn two_claimers_never_share_an_enterprise_and_keep_its_order(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let (a, b) = two_enterprises(s).await;
    let mut all = [a.clone(), b.clone()].concat();
    all.sort();
    assert_eq!(all[0], a[0], "A's first command comes first");

    // X takes the head (A's first command); Y then gets all of B and none
    // of A: A's later commands wait behind X's lease.
    let x = s
        .claim_commands(&lease("x", NOW), 1)
        .await
        .expect("claim x");
    assert_eq!(seqs(&x), [a[0]]);
    let y = s
        .claim_commands(&lease("y", NOW), 100)
        .await
        .expect("claim y");
    assert_eq!(seqs(&y), b, "B in seq order, nothing of A");
    assert!(y.iter().all(|e| enterprise(e) == "B"));
    // Everything due is held: a third claimer gets nothing, and the
    // read-back of what is due agrees.
    assert!(s
        .claim_commands(&lease("z", NOW), 100)
        .await
        .unwrap()
        .is_empty());
    assert!(s.due_commands(NOW, 100).await.unwrap().is_empty());

    // X settles its command: A's next two are free, in order, for anyone.
    s.complete_command(a[0], DeliveryOutcome::delivered(), NOW)
        .await
        .expect("delivered");
    let z = s.claim_commands(&lease("z", NOW + 1), 100).await.unwrap();
    assert_eq!(seqs(&z), a[1..]);
}

pub(crate) async fn concurrent_claims_split_the_work_without_overlap(factory: &dyn StoreFactory) {
    let fx = fixture(factory).await;
    let s = &fx;
    let (a, b) = two_enterprises(s).await;
    let (lx, ly) = (lease("x", NOW), lease("y", NOW));
    let (x, y) = tokio::join!(s.claim_commands(&lx, 100), s.claim_commands(&ly, 100));
    let (x, y) = (x.expect("x"), y.expect("y"));
    let mut taken = [seqs(&x), seqs(&y)].concat();
    taken.sort();
    let mut all = [a, b].concat();
    all.sort();
    assert_eq!(taken, all, "each command claimed exactly once");
    for (mine, theirs) in [(&x, &y), (&y, &x)] {
        for e in mine {
            assert!(
                theirs.iter().all(|t| enterprise(t) != enterprise(e)),
                "one enterprise, one holder"
            );
        }
        assert!(seqs(mine).windows(2).all(|w| w[0] < w[1]), "seq order");
    }
}

pub(crate) async fn an_expired_lease_is_retaken_and_a_retry_or_release_frees_it_early(
    factory: &dyn StoreFactory,
) {
    let fx = fixture(factory).await;
    let s = &fx;
    let (a, _) = two_enterprises(s).await;
    let x = s.claim_commands(&lease("x", NOW), 100).await.unwrap();
    assert_eq!(x.len(), 5);
    let until = NOW + 10_000;

    // X "died": nothing is claimable while its lease runs, all of it after.
    assert!(s
        .claim_commands(&lease("y", until - 1), 100)
        .await
        .unwrap()
        .is_empty());
    let y = s.claim_commands(&lease("y", until), 100).await.unwrap();
    assert_eq!(seqs(&y), seqs(&x), "retaken in the same order");

    // A retry releases the lease: due again at its retry time, not later.
    s.complete_command(
        a[0],
        DeliveryOutcome::Retry {
            error: "core down".into(),
            retry_at: until + 5,
        },
        until,
    )
    .await
    .unwrap();
    let z = s.claim_commands(&lease("z", until + 5), 100).await.unwrap();
    assert_eq!(seqs(&z), [a[0]], "A's head only: A's rest is still Y's");

    // A restarted node with a fixed id takes its leases back at once.
    assert_eq!(s.release_leases("y").await.unwrap(), 4);
    assert_eq!(s.release_leases("y").await.unwrap(), 0);
    let y2 = s.claim_commands(&lease("y", until + 6), 100).await.unwrap();
    assert_eq!(y2.len(), 2, "B's two; A waits behind z's head: {y2:?}");
    assert!(y2.iter().all(|e| enterprise(e) == "B"));
}
