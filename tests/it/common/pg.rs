//! A PostgreSQL server of a test's own (initdb + pg_ctl into a temp folder, on a free loopback
//! port), for tests that stop it, restart it or configure it (TLS): the shared server must not
//! go down under the other tests. Uses the embedded database's tools (`db::embedded::Tools`).
//! Blocking: call from `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use billing_core::db::embedded::Tools;

pub struct OwnPostgres {
    pub dir: PathBuf,
    pub port: u16,
    tools: Tools,
}

impl OwnPostgres {
    /// Initializes a cluster, appends `conf` to its `postgresql.conf`, lets `prepare` put files
    /// in its folder (given to the server's account afterwards), and starts it.
    pub fn start(conf: &str, prepare: impl FnOnce(&Path)) -> OwnPostgres {
        let tools = Tools::find().expect("PostgreSQL server binaries");
        let dir =
            std::env::temp_dir().join(format!("billing-it-pg-{}", uuid::Uuid::new_v4().simple()));
        tools.init(&dir).expect("initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut settings = std::fs::read_to_string(dir.join("postgresql.conf")).unwrap();
        settings.push_str(&format!("\nport = {port}\nfsync = off\n{conf}\n"));
        std::fs::write(dir.join("postgresql.conf"), settings).unwrap();
        prepare(&dir);
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            tools.chown(&entry.path()).unwrap();
        }
        let pg = OwnPostgres { dir, port, tools };
        pg.resume();
        pg
    }

    /// `postgres://postgres@127.0.0.1:<port>/<db>` plus `query` (e.g. `?sslmode=require`).
    pub fn url(&self, db: &str, query: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}{query}", self.port)
    }

    /// Starts the (stopped) server again on its port and waits until it accepts connections.
    pub fn resume(&self) {
        let out = self
            .tools
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
        );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server the way a crash would: `pg_ctl stop -m immediate`.
    pub fn crash(&self) {
        let _ = self
            .tools
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
