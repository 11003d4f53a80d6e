//! The API's audit record and idempotency keys in both real ledger stores: SQLite (a fresh file)
//! and PostgreSQL (a fresh database on the server e2e/postgres.sh runs). Many writers at once
//! while a reader pages through the record: the reader sees every record exactly once and in
//! order (PostgreSQL commits the ids in order); the record refuses changes; a key is claimed once,
//! answered, refused for another call, and freed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::collections::BTreeSet;
use std::sync::Arc;

use commons_api::v1::record::{AuditRecord, CallStore, KeyState, StoredAnswer};
use commons_e2e::ledgers::{fresh_postgres, psql};
use commons_operator::ledger::Ledger;
use commons_operator::ledger::calls::LedgerCalls;

const WRITERS: usize = 8;
const EACH: usize = 40;

fn record(writer: usize, n: usize) -> AuditRecord {
    AuditRecord {
        id: 0,
        at_ms: 1_796_000_000_000,
        actor: format!("oidc:writer-{writer}"),
        credential: "token".into(),
        method: "POST".into(),
        path: "/v1/tenancy-requests".into(),
        object: format!("/v1/tenancy-requests/r-{writer}-{n}"),
        status: 201,
        idempotency_key: String::new(),
    }
}

async fn the_record_is_read_whole_and_in_order_while_it_is_written(calls: Arc<LedgerCalls>) {
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let calls = calls.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..EACH {
                calls.audit(record(w, n)).await.unwrap();
            }
        }));
    }
    // Paging as a platform admin's client does, from the start, while the writers write.
    let (mut after, mut seen) = (0_i64, Vec::new());
    while seen.len() < WRITERS * EACH {
        let page = calls.audit_since(after, 7).await.unwrap();
        if let Some(last) = page.last() {
            after = last.id;
        } else {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        seen.extend(page.into_iter().map(|r| r.object));
        assert!(seen.len() <= WRITERS * EACH, "read more than was written");
        if writers.iter().all(|w| w.is_finished()) {
            // Whatever the reader has not reached yet is still to come after `after`.
            let rest = calls.audit_since(after, 10_000).await.unwrap();
            seen.extend(rest.into_iter().map(|r| r.object));
            break;
        }
    }
    for w in writers {
        w.await.unwrap();
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(
        (seen.len(), unique.len()),
        (WRITERS * EACH, WRITERS * EACH),
        "every record read once: none passed over by a later commit"
    );
}

async fn a_key_is_claimed_once_answered_and_freed(calls: &LedgerCalls) {
    let now = jiff::Timestamp::now().as_millisecond();
    let claim = |key: &'static str, print: &'static str| calls.begin("oidc:nora", key, print, now);
    assert!(matches!(claim("k1", "a").await.unwrap(), KeyState::New));
    assert!(matches!(claim("k1", "a").await.unwrap(), KeyState::Running));
    assert!(
        matches!(calls.begin("oidc:sam", "k1", "a", now).await.unwrap(), KeyState::New),
        "keys are per caller"
    );
    let answer = StoredAnswer {
        status: 201,
        content_type: "application/json".into(),
        location: "/v1/tenancy-requests/r1".into(),
        body: b"{}".to_vec(),
    };
    calls.answer("oidc:nora", "k1", answer).await.unwrap();
    match claim("k1", "a").await.unwrap() {
        KeyState::Answered(a) => {
            assert_eq!((a.status, a.location.as_str()), (201, "/v1/tenancy-requests/r1"))
        }
        other => panic!("not the first answer: {other:?}"),
    }
    assert!(matches!(claim("k1", "b").await.unwrap(), KeyState::Mismatch));
    assert!(matches!(claim("k2", "a").await.unwrap(), KeyState::New));
    calls.release("oidc:nora", "k2").await.unwrap();
    assert!(matches!(claim("k2", "a").await.unwrap(), KeyState::New), "a freed key runs again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_keeps_the_record_in_commit_order_and_append_only() {
    let url = fresh_postgres("commons_e2e_api_calls").unwrap();
    let ledger = Ledger::open(&url).unwrap();
    ledger.migrate().await.unwrap();
    let calls = Arc::new(LedgerCalls(ledger));
    the_record_is_read_whole_and_in_order_while_it_is_written(calls.clone()).await;
    a_key_is_claimed_once_answered_and_freed(&calls).await;
    for change in ["UPDATE api_audit SET status = 200", "DELETE FROM api_audit"] {
        assert!(psql(&url, change).is_err(), "{change} was allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_the_record_in_order_too() {
    let dir = std::env::temp_dir().join(format!("commons-e2e-api-calls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ledger.db");
    let _ = std::fs::remove_file(&file);
    let ledger = Ledger::open(&format!("sqlite://{}", file.display())).unwrap();
    ledger.migrate().await.unwrap();
    let calls = Arc::new(LedgerCalls(ledger));
    the_record_is_read_whole_and_in_order_while_it_is_written(calls.clone()).await;
    a_key_is_claimed_once_answered_and_freed(&calls).await;
    let _ = std::fs::remove_dir_all(&dir);
}
