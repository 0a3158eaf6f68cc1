//! TLS to PostgreSQL: `sslmode=require`, `verify-ca` and `verify-full` against a server of the
//! test's own with `ssl = on` and a certificate from a CA the test makes (with the `openssl`
//! command; the test skips, loudly, without it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::pg::OwnPostgres;
use crate::common::TestApp;

/// A CA and a server certificate for `localhost` (only: 127.0.0.1 is deliberately not in it)
/// signed by it, plus a second CA that signed nothing. Returns the folder, or `None` without
/// `openssl`.
fn make_certs() -> Option<PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("billing-it-tls-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let openssl = |args: &[&str]| {
        Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .map(|o| {
                assert!(
                    o.status.success(),
                    "openssl {args:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            })
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let (key, crt, subj) = (
            format!("{ca}.key"),
            format!("{ca}.crt"),
            format!("/CN=billing-it {ca}"),
        );
        let mut args = vec![
            "req", "-x509", "-days", "2", "-subj", &subj, "-keyout", &key, "-out", &crt,
        ];
        args.extend(ec);
        args.extend([
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        if openssl(&args).is_err() {
            return None;
        }
    }
    let mut args = vec![
        "req",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ];
    args.extend(ec);
    openssl(&args).ok()?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        "server.crt",
        "-extfile",
        "server.ext",
    ])
    .ok()?;
    Some(dir)
}

/// Whether a connection to `url` works and is encrypted; the error text when it does not.
async fn connect(url: &str) -> Result<bool, String> {
    let pool = billing_core::db::connect(&billing_core::config::Config::for_tests(url), url)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    Ok(ssl)
}

#[tokio::test]
async fn tls_require_and_verify_full_connect_and_a_wrong_ca_or_host_is_refused() {
    let Some(certs) = make_certs() else {
        eprintln!("SKIPPED: no openssl command to make the test CA");
        return;
    };
    let from = certs.clone();
    let pg = tokio::task::spawn_blocking(move || {
        OwnPostgres::start(
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'",
            |dir: &Path| {
                for f in ["server.crt", "server.key"] {
                    std::fs::copy(from.join(f), dir.join(f)).unwrap();
                }
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    dir.join("server.key"),
                    std::fs::Permissions::from_mode(0o600),
                )
                .unwrap();
            },
        )
    })
    .await
    .unwrap();
    let port = pg.port;
    let ca = certs.join("ca.crt").display().to_string();
    let other = certs.join("other-ca.crt").display().to_string();
    let url =
        |host: &str, query: &str| format!("postgres://postgres@{host}:{port}/postgres?{query}");

    assert_eq!(
        connect(&url("127.0.0.1", "sslmode=require")).await,
        Ok(true)
    );
    let full = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    );
    assert_eq!(connect(&full).await, Ok(true));
    let by_ca = url("localhost", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    assert_eq!(connect(&by_ca).await, Ok(true));
    // Known limitation of the locked sqlx 0.8.6 with rustls >= 0.23.24 (sqlx issue #3793, fixed
    // upstream after 0.8.6): verify-ca checks the host name too, like verify-full. When this
    // starts to connect, sqlx is fixed: update DATABASE_SETUP.md and flip the assertion.
    let by_ca_on_ip = url("127.0.0.1", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    assert!(connect(&by_ca_on_ip).await.is_err());
    // The plain default still works against a server that offers TLS (it is used).
    assert_eq!(connect(&url("127.0.0.1", "sslmode=prefer")).await, Ok(true));

    let wrong_ca = connect(&url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={other}"),
    ))
    .await;
    let e = wrong_ca.expect_err("a certificate from another CA is refused");
    println!("wrong CA: {e}");
    assert!(e.contains("certificate"), "{e}");
    let wrong_host = connect(&url(
        "127.0.0.1",
        &format!("sslmode=verify-full&sslrootcert={ca}"),
    ))
    .await;
    let e = wrong_host.expect_err("a certificate for another name is refused");
    println!("wrong host: {e}");
    assert!(e.contains("certificate"), "{e}");

    // The service itself on verify-full: migrated and ready.
    let admin = sqlx::PgPool::connect(&full).await.unwrap();
    sqlx::query("CREATE DATABASE billing")
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let billing = format!(
        "postgres://postgres@localhost:{port}/billing?sslmode=verify-full&sslrootcert={ca}"
    );
    let pool = sqlx::PgPool::connect(&billing).await.unwrap();
    billing_core::db::MIGRATOR.run(&pool).await.unwrap();
    pool.close().await;
    let app = TestApp::spawn_on(&billing, |_| {}).await;
    let r = app.get("/readyz", crate::common::Auth::None).await;
    assert_status!(r, 200);
    drop(pg);
    let _ = std::fs::remove_dir_all(certs);
}
