//! The gateway two-phase flow, one for card and Tharwatt payments and for their refunds. The
//! gateway is called between two transactions, never inside one (a slow gateway must not hold
//! row locks):
//! 1. claim the Idempotency-Key (a finished request replays) and open the row to send (commit);
//! 2. call the gateway with our row's id as its idempotency key, outside any transaction;
//! 3. apply its answer in a second transaction, which stores the answer under the key, or,
//!    when the request failed, releases the key so a retry runs again (what step 3 wrote,
//!    such as a failed payment, is committed either way).
//!
//! A duplicate arriving during step 2 finds the key claimed without an answer: 409
//! `idempotency_request_in_progress`. A retry after a released key continues with the same
//! row (the flow's `open` finds it), so the gateway sees the same idempotency key and cannot
//! act twice.

use sqlx::{PgConnection, PgPool};

use crate::services::idempotency::{
    self, Claim, IdempotencyError, IdempotencyKey, Outcome, StoredResponse,
};

/// What step 1 came to: a row for the gateway, or an answer needing no gateway (an offline
/// refund is applied at once), stored in the first transaction.
pub enum Opened<C> {
    Call(C),
    Done(StoredResponse),
}

/// One request through the flow. Its steps get the transaction they run in; `call` none.
#[allow(async_fn_in_trait)] // used with concrete types only, so the futures stay `Send`
pub trait GatewayFlow {
    /// What step 1 opened for the gateway.
    type Call;
    /// What the gateway answered (an unreachable gateway included).
    type Answer;
    type Error: From<IdempotencyError>;

    /// Step 1, after the key is claimed: find the row a retry continues, or open a new one.
    async fn open(&mut self, conn: &mut PgConnection) -> Result<Opened<Self::Call>, Self::Error>;

    /// Step 2, outside any transaction.
    async fn call(&mut self, call: &Self::Call) -> Result<Self::Answer, Self::Error>;

    /// Step 3: the answer applied and rendered to what the key keeps.
    async fn settle(
        &mut self,
        conn: &mut PgConnection,
        call: Self::Call,
        answer: Self::Answer,
    ) -> Result<StoredResponse, Self::Error>;
}

fn db<E: From<IdempotencyError>>(e: sqlx::Error) -> E {
    E::from(IdempotencyError::Database(e))
}

/// Runs `flow` under `key` (see the module's steps).
pub async fn run<F: GatewayFlow>(
    pool: &PgPool,
    scope: &str,
    key: Option<&IdempotencyKey>,
    fingerprint: &str,
    mut flow: F,
) -> Result<Outcome, F::Error> {
    let mut tx = pool.begin().await.map_err(db)?;
    if let Some(k) = key {
        if let Claim::Replay(done) = idempotency::claim(&mut tx, scope, k, fingerprint).await? {
            return Ok(done);
        }
    }
    let call = match flow.open(&mut tx).await? {
        Opened::Call(call) => call,
        Opened::Done(answer) => {
            let answer = store(&mut tx, scope, key, answer).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            return Ok(Outcome::fresh(answer));
        }
    };
    tx.commit().await.map_err(db)?;

    let answer = flow.call(&call).await;

    let mut tx = pool.begin().await.map_err(db)?;
    let settled = match answer {
        Ok(answer) => flow.settle(&mut tx, call, answer).await,
        Err(e) => Err(e),
    };
    let result = match settled {
        Ok(answer) => Ok(store(&mut tx, scope, key, answer).await.map_err(db)?),
        Err(e) => {
            if let Some(k) = key {
                idempotency::release(&mut tx, scope, k).await.map_err(db)?;
            }
            Err(e)
        }
    };
    tx.commit().await.map_err(db)?;
    result.map(Outcome::fresh)
}

/// The answer as it is stored (U+0000 replaced) and so answered: the first answer is the
/// same as its replays.
async fn store(
    conn: &mut PgConnection,
    scope: &str,
    key: Option<&IdempotencyKey>,
    mut answer: StoredResponse,
) -> sqlx::Result<StoredResponse> {
    crate::storable::scrub(&mut answer.body);
    if let Some(k) = key {
        idempotency::complete(conn, scope, k, &answer).await?;
    }
    Ok(answer)
}
