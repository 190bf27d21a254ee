//! The writer's lease when a commit fails: nothing of the batch is kept, and
//! the lease goes on with the next commit as if the failed one never was.

use nomad_chronicle::store::StoreError;
use nomad_sim::{Generator, SimFrame};

use crate::common::{Archive, Backend, batch, expected, on_both_backends};

/// Every stored event's ID columns, read through the `events` view, in
/// stream order.
async fn id_columns(archive: &Archive) -> Vec<[Option<String>; 5]> {
    const SQL: &str = "SELECT key, job_id, node_id, eval_id, deployment_id FROM events \
                       ORDER BY raft_index, position";
    fn row<R: sqlx::Row>(r: R) -> [Option<String>; 5]
    where
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        std::array::from_fn(|i| r.get(i))
    }
    match archive.backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&archive.url).await.expect("open");
            let rows = sqlx::query(SQL).fetch_all(&pool).await.expect("read");
            rows.into_iter().map(row).collect()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&archive.url).await.expect("open");
            let rows = sqlx::query(SQL).fetch_all(&pool).await.expect("read");
            rows.into_iter().map(row).collect()
        }
    }
}

/// The ID columns the events of `frames` should have.
fn expected_ids(frames: &[SimFrame]) -> Vec<[Option<String>; 5]> {
    batch(frames, 1)
        .frames
        .into_iter()
        .flat_map(|f| f.frame.events)
        .map(|e| [Some(e.key), e.job_id, e.node_id, e.eval_id, e.deployment_id])
        .collect()
}

/// A failed commit takes the IDs it had just named with it. The names a
/// later batch adds may reuse their numbers, so the retry must name them
/// again rather than trust what the failed commit had resolved.
async fn a_failed_commit_stores_nothing_and_the_lease_goes_on(backend: Backend) {
    let archive = Archive::new(backend).await;
    let frames = Generator::new(71).frames(300);
    let (early, late) = frames.split_at(150);
    let (store, cluster, mut lease) = archive.writer("test").await;
    let fail = match backend {
        Backend::Sqlite => vec![
            "CREATE TABLE fail (reason TEXT)",
            "INSERT INTO fail VALUES ('disk trouble')",
            "CREATE TRIGGER fail BEFORE INSERT ON event_log \
             WHEN EXISTS (SELECT 1 FROM fail) BEGIN SELECT RAISE(ABORT, 'disk trouble'); END",
        ],
        Backend::Postgres => vec![
            "CREATE TABLE fail (reason TEXT)",
            "INSERT INTO fail VALUES ('disk trouble')",
            "CREATE FUNCTION fail() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM fail) THEN RAISE EXCEPTION 'disk trouble'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER fail BEFORE INSERT ON event_log FOR EACH ROW EXECUTE FUNCTION fail()",
        ],
    };
    archive.execute(&fail).await;

    let failed = lease
        .commit(&cluster, &batch(early, 1))
        .await
        .expect_err("the trigger refuses every event");
    assert!(failed.to_string().contains("disk trouble"), "{failed}");
    assert!(archive.events("test").await.is_empty());

    archive.execute(&["DELETE FROM fail"]).await;
    // The later events first: they name new objects, taking the numbers
    // the failed commit had given out.
    let later = lease
        .commit(&cluster, &batch(late, 1))
        .await
        .expect("commit");
    let retried = lease
        .commit(&cluster, &batch(early, 1))
        .await
        .expect("retry");
    drop(lease);

    let all = expected(&frames);
    assert_eq!(later.inserted + retried.inserted, all.len() as u64);
    // Each event refers to its own IDs, not to those that took the failed
    // commit's numbers.
    assert_eq!(id_columns(&archive).await, expected_ids(&frames));
    assert_eq!(archive.events("test").await, all);
    store.close().await;
}

on_both_backends!(a_failed_commit_stores_nothing_and_the_lease_goes_on);

/// PostgreSQL checks the events' cluster once per batch (migration 0009):
/// a cluster whose row was deleted under its writer gets nothing stored.
#[tokio::test]
async fn a_commit_for_a_deleted_cluster_stores_nothing_and_says_so() {
    if crate::common::pg::shared_admin_url().is_none() {
        return;
    }
    let archive = Archive::new(Backend::Postgres).await;
    let frames = Generator::new(72).frames(40);
    let (store, cluster, mut lease) = archive.writer("gone").await;
    // No events yet, so the delete guard lets it go.
    archive
        .execute(&["DELETE FROM clusters WHERE name = 'gone'"])
        .await;

    let refused = lease
        .commit(&cluster, &batch(&frames, 1))
        .await
        .expect_err("no cluster to store under");
    assert!(
        matches!(&refused, StoreError::ClusterMissing { cluster } if cluster == "gone"),
        "{refused:?}"
    );
    assert_eq!(
        refused.to_string(),
        "cluster `gone` is no longer in the archive: its row in `clusters` was deleted"
    );
    drop(lease);
    assert!(id_columns(&archive).await.is_empty());
    store.close().await;
}
