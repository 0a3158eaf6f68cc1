//! The URL of a per-test database that drops the database when the last holder of it goes away.
//!
//! `fresh_database()` clones a `t_<hex>` database for every test; without this, a run of the
//! suite left a few hundred of them (gigabytes) until the next run's sweep. The drop happens in
//! `Drop`, so it also runs when the test panics (unwinding drops the test's locals), and under
//! nextest, where every test is a process of its own that exits right after: the drop finishes
//! before the test returns. A run that is killed leaves its databases to the sweep in
//! `scripts/test`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use sqlx::{Connection, PgConnection};

/// Owns one test database; dropping the last reference drops the database.
struct Owner {
    /// A URL of the server's `postgres` database, to drop from.
    admin_url: String,
    name: String,
    url: String,
}

/// The live test databases by URL, so `TestApp::spawn_on(&url)` (a second replica, or an app on
/// a database the test created first) keeps the database alive as long as the app.
fn live() -> &'static Mutex<HashMap<String, Weak<Owner>>> {
    static LIVE: OnceLock<Mutex<HashMap<String, Weak<Owner>>>> = OnceLock::new();
    LIVE.get_or_init(Default::default)
}

/// A database URL (derefs to `&str`); while any clone of it (or an app on it) lives, so does
/// the database.
#[derive(Clone)]
pub struct DbUrl {
    url: String,
    owner: Option<Arc<Owner>>,
}

impl DbUrl {
    /// A database `name` this test created, to be dropped through `admin_url` at the end.
    pub(super) fn owned(admin_url: String, name: String, url: String) -> DbUrl {
        let owner = Arc::new(Owner {
            admin_url,
            name,
            url: url.clone(),
        });
        let mut map = live().lock().unwrap_or_else(|e| e.into_inner());
        map.insert(url.clone(), Arc::downgrade(&owner));
        DbUrl {
            url,
            owner: Some(owner),
        }
    }

    /// `url`, sharing ownership with the test database of that URL when there is one (any other
    /// URL, e.g. a server of the test's own, is just carried).
    pub fn lookup(url: &str) -> DbUrl {
        let map = live().lock().unwrap_or_else(|e| e.into_inner());
        DbUrl {
            url: url.to_string(),
            owner: map.get(url).and_then(Weak::upgrade),
        }
    }
}

impl Deref for DbUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.url
    }
}

impl AsRef<str> for DbUrl {
    fn as_ref(&self) -> &str {
        &self.url
    }
}

impl AsRef<std::ffi::OsStr> for DbUrl {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.url.as_ref()
    }
}

impl fmt::Display for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url)
    }
}

impl fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.url, f)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        {
            let mut map = live().lock().unwrap_or_else(|e| e.into_inner());
            // Only our own entry: the URL is unique per database, but stay exact.
            if map.get(&self.url).is_some_and(|w| w.strong_count() == 0) {
                map.remove(&self.url);
            }
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // `Drop` may run on a runtime's thread (the test's), where blocking on another future is
        // not allowed: a thread of its own with a small runtime does the drop, and we wait for it
        // so a nextest process does not exit first. FORCE ends the connections the test's pools
        // and servers still hold.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async move {
                let mut admin = PgConnection::connect(&admin_url)
                    .await
                    .map_err(|e| e.to_string())?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map_err(|e| e.to_string())?;
                admin.close().await.ok();
                Ok::<(), String>(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // Not a test failure: the sweep in `scripts/test` gets it next time.
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} not dropped: the drop panicked", self.name),
        }
    }
}
