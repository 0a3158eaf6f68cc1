//! Whether the database answers, known to every request without asking it. SPEC section 8: while
//! it is unreachable, requests fail fast (503 within 2 s) and service resumes by itself within
//! 2 s of its return.
//!
//! One state per database (address, database name, user), shared by every pool on it. A call that
//! fails at the connection level reports it ([`DbHealth::suspect`]); a probe then opens a
//! connection of its own. If that fails too, the database is marked down and the probe keeps
//! trying every [`PROBE_EVERY`] until one succeeds. While it is down, requests that need the
//! database answer 503 `database_unavailable` at once instead of queueing for a connection.
//! Connections opened before an outage are dropped when next taken from the pool (a restarted
//! server has closed them all), so the first requests after the return do not fail on them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// How often a probe tries to connect while the database is down.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// The longest one probe waits for a connection (an unreachable host drops packets silently).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

pub struct DbHealth {
    down: AtomicBool,
    probing: AtomicBool,
    /// When the last outage was noticed, in nanoseconds since [`epoch`] (0: never).
    outage_at: AtomicU64,
    options: PgConnectOptions,
}

/// The health of the database `options` point at (created on first use).
pub fn of(options: &PgConnectOptions) -> Arc<DbHealth> {
    static ALL: OnceLock<Mutex<HashMap<String, Arc<DbHealth>>>> = OnceLock::new();
    let key = format!(
        "{}:{}:{:?}/{}@{}",
        options.get_host(),
        options.get_port(),
        options.get_socket(),
        options.get_database().unwrap_or_default(),
        options.get_username()
    );
    epoch();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    all.entry(key)
        .or_insert_with(|| {
            Arc::new(DbHealth {
                down: AtomicBool::new(false),
                probing: AtomicBool::new(false),
                outage_at: AtomicU64::new(0),
                // Quiet: a probe failing every 250 ms must not fill the log.
                options: options.clone().disable_statement_logging(),
            })
        })
        .clone()
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn nanos_since_epoch(at: Instant) -> u64 {
    at.saturating_duration_since(epoch()).as_nanos() as u64
}

impl DbHealth {
    /// True while the database is known to be unreachable.
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    /// Whether a pooled connection of this `age` was opened after the last outage began (else it
    /// belongs to the server that went away and is dropped rather than handed out).
    pub fn survives(&self, age: Duration) -> bool {
        let outage = self.outage_at.load(Ordering::Relaxed);
        if outage == 0 {
            return true;
        }
        let opened = Instant::now().checked_sub(age).unwrap_or_else(epoch);
        nanos_since_epoch(opened) > outage
    }

    /// Reports a failed database call: a connection-level failure starts a probe.
    pub fn report(self: &Arc<Self>, err: &sqlx::Error) {
        if is_connection_error(err) {
            self.suspect();
        }
    }

    /// Starts a probe unless one runs: it marks the database down when it cannot connect, and
    /// up again once it can.
    pub fn suspect(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let health = self.clone();
        runtime.spawn(async move {
            loop {
                if health.probe().await {
                    if health.down.swap(false, Ordering::AcqRel) {
                        tracing::info!("database reachable again; serving requests");
                    }
                    break;
                }
                if !health.down.swap(true, Ordering::AcqRel) {
                    health
                        .outage_at
                        .store(nanos_since_epoch(Instant::now()).max(1), Ordering::Relaxed);
                    tracing::warn!(
                        "database unreachable; requests answer 503 database_unavailable until it returns"
                    );
                }
                tokio::time::sleep(PROBE_EVERY).await;
            }
            health.probing.store(false, Ordering::Release);
        });
    }

    /// One connection attempt. A server that answers with an error of its own (too many
    /// connections, say) is reachable; only one that cannot be reached, is shutting down or
    /// starting up counts as down.
    async fn probe(&self) -> bool {
        match tokio::time::timeout(PROBE_TIMEOUT, self.options.connect()).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                true
            }
            Ok(Err(e)) => !is_connection_error(&e),
            Err(_) => false,
        }
    }
}

/// A failure of the connection rather than of the statement: the database could not be reached,
/// the connection broke, or the server is shutting down or starting up. The statement may or may
/// not have run, so such an error is answered 503 and a retry (with the same event id or
/// Idempotency-Key) is safe.
pub fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // Class 08: connection exception; 57P01-57P03: admin/crash shutdown, cannot connect now.
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// The connection-level database error somewhere in `err`'s chain, if any.
pub fn connection_error_in(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<sqlx::Error>()
            .is_some_and(is_connection_error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooled_connections_from_before_an_outage_do_not_survive_it() {
        let health = of(&PgConnectOptions::new().port(1).database("health_unit"));
        assert!(health.survives(Duration::from_secs(3600)));
        std::thread::sleep(Duration::from_millis(5));
        health
            .outage_at
            .store(nanos_since_epoch(Instant::now()).max(1), Ordering::Relaxed);
        assert!(!health.survives(Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(health.survives(Duration::from_millis(1)));
    }

    #[test]
    fn connection_failures_are_told_from_statement_failures() {
        assert!(is_connection_error(&sqlx::Error::PoolTimedOut));
        assert!(is_connection_error(&sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        ))));
        assert!(!is_connection_error(&sqlx::Error::RowNotFound));
        let wrapped = anyhow::Error::new(sqlx::Error::PoolClosed).context("reading");
        assert!(connection_error_in(&wrapped));
    }
}
