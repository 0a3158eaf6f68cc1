//! The embedded default database: with no `DATABASE_URL`, start (or reuse) a private PostgreSQL
//! from the server binaries installed on the machine, in a git-ignored folder of the project.
//!
//! PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres`
//! system user, which then owns the data folder. Several processes may ask at once (a test run
//! starts many): a file lock next to the folder lets one of them start the server while the
//! others wait and then reuse it.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

mod run_as;

use run_as::RunAs;

pub const DB_NAME: &str = "billing";

const INSTALL_HINT: &str =
    "no PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or under \
/usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`; Fedora: \
`dnf install postgresql-server`; macOS: `brew install postgresql`) or set DATABASE_URL to an \
existing database, e.g. DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing";

/// Environment variables of the caller that would change how the PostgreSQL tools behave.
const FOREIGN_PG_ENV: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGSSLMODE",
    "PGOPTIONS",
    "PGSERVICE",
];

/// Where the data folder lives: `configured` (`BILLING_PGDATA`, `Config::embedded_pgdata`),
/// else `.pgdata` in the working directory. Always absolute, because the server tools run
/// from `/`.
pub fn data_dir(configured: Option<&Path>) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    cwd.join(configured.unwrap_or(Path::new(".pgdata")))
}

/// Finds the directory holding `initdb` and `pg_ctl`: PATH first, then the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout, not on PATH by default).
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    let has_tools = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_tools(d)) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e
                .file_name()
                .to_string_lossy()
                .split('.')
                .next()?
                .parse()
                .ok()?;
            let bin = e.path().join("bin");
            has_tools(&bin).then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates
        .pop()
        .map(|(_, p)| p)
        .ok_or_else(|| anyhow!(INSTALL_HINT))
}

/// Holds the folder's lock file for as long as it lives (released on drop or process exit).
fn lock_folder(dir: &Path) -> anyhow::Result<File> {
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let lock_path = dir.with_extension("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .with_context(|| format!("opening {}", lock_path.display()))?;
    lock.lock()
        .context("locking the embedded database folder")?;
    Ok(lock)
}

/// The port of the server running on `dir`, or `None` when none runs. A `postmaster.pid` left by
/// a crash or a reboot (its process gone, or its pid now taken by another program) is removed,
/// so the next start does not trip over it.
fn running_port(bin: &Path, run_as: &RunAs, dir: &Path) -> Option<u16> {
    let pid_file = dir.join("postmaster.pid");
    let text = fs::read_to_string(&pid_file).ok()?;
    let mut lines = text.lines();
    let pid: u32 = lines.next()?.trim().parse().ok()?;
    let port: Option<u16> = lines.nth(2).and_then(|l| l.trim().parse().ok());
    let alive = if Path::new("/proc/self").exists() {
        // The pid must belong to a PostgreSQL process. Deliberately not stricter (for example
        // matching the folder in its command line): deleting the pid file of a live server
        // would let a second postmaster start on the same data.
        fs::read(format!("/proc/{pid}/cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains("postgres"))
    } else {
        run_as
            .command(bin.join("pg_ctl"))
            .arg("status")
            .arg("-D")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !alive {
        tracing::warn!(path = %pid_file.display(), pid, "removing a stale postmaster.pid (server not running)");
        let _ = fs::remove_file(&pid_file);
        return None;
    }
    port
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn log_tail(log: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = File::open(log) {
        let _ = f.read_to_string(&mut text);
    }
    let mut start = text.len().saturating_sub(2000);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_string()
}

fn run(mut cmd: Command, what: &str, log: &Path) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        bail!("{what} failed: {}\n{}", stderr.trim(), log_tail(log));
    }
    Ok(())
}

/// Starts the embedded server if it is not running, creates the `billing` database, and returns
/// its URL. Safe to call from several processes at once. `pgdata`: the configured data folder.
pub fn ensure_running(pgdata: Option<&Path>) -> anyhow::Result<String> {
    let run_as = RunAs::detect()?;
    let bin = find_bin_dir()?;
    let dir = run_as.resolve_dir(pgdata);
    let _lock = lock_folder(&dir)?;

    let log = dir.join("server.log");
    if !dir.join("PG_VERSION").exists() {
        init_cluster(&bin, &run_as, &dir, &log)?;
    }
    let (port, started) = match running_port(&bin, &run_as, &dir) {
        Some(port) => (port, false),
        None => (start(&bin, &run_as, &dir, &log)?, true),
    };
    wait_for_port(port, Duration::from_secs(30))?;
    ensure_database(&bin, &run_as, port)?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/{DB_NAME}");
    // The port is chosen afresh at every start, so the log is where one finds it (for psql).
    // Trust authentication on loopback: the URL holds no password to hide.
    tracing::info!(%url, started, data = %dir.display(), "embedded PostgreSQL ready");
    Ok(url)
}

fn init_cluster(bin: &Path, run_as: &RunAs, dir: &Path, log: &Path) -> anyhow::Result<()> {
    if dir.read_dir().is_ok_and(|mut d| d.next().is_some()) {
        bail!(
            "{} exists but is not a PostgreSQL data folder (no PG_VERSION); remove it or point \
             BILLING_PGDATA elsewhere",
            dir.display()
        );
    }
    init_loopback(bin, run_as, dir, log)
}

/// `initdb` (trust authentication, UTF-8) into `dir`, listening on loopback TCP only: no Unix
/// socket, whose path length limit a deep project folder exceeds.
fn init_loopback(bin: &Path, run_as: &RunAs, dir: &Path, log: &Path) -> anyhow::Result<()> {
    run_as.prepare_dir(dir)?;
    let mut c = run_as.command(bin.join("initdb"));
    c.arg("-D").arg(dir).args([
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    ]);
    run(c, "initdb", log)?;
    let mut conf = OpenOptions::new()
        .append(true)
        .open(dir.join("postgresql.conf"))?;
    writeln!(
        conf,
        "\n# billing-core embedded settings\nlisten_addresses = '127.0.0.1'\nmax_connections = 300\n\
         unix_socket_directories = ''"
    )?;
    Ok(())
}

/// The server tools for a cluster of the caller's own (the fault and TLS tests run servers they
/// stop and configure), run the way the embedded server runs them.
pub struct Tools {
    bin: PathBuf,
    run_as: RunAs,
}

impl Tools {
    pub fn find() -> anyhow::Result<Tools> {
        Ok(Tools {
            bin: find_bin_dir()?,
            run_as: RunAs::detect()?,
        })
    }

    /// `initdb` into `dir` as [`ensure_running`] does (loopback only, trust authentication).
    pub fn init(&self, dir: &Path) -> anyhow::Result<()> {
        init_loopback(&self.bin, &self.run_as, dir, &dir.join("initdb.log"))
    }

    /// A tool (`pg_ctl`, ...) run as the server's account, without the caller's PG* variables.
    pub fn command(&self, tool: &str) -> Command {
        self.run_as.command(self.bin.join(tool))
    }

    /// Gives `path` to the server's account (when we are root).
    pub fn chown(&self, path: &Path) -> std::io::Result<()> {
        match self.run_as.uid {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

/// Starts the server on a free loopback port; tries another port if the chosen one was taken
/// between choosing and binding.
fn start(bin: &Path, run_as: &RunAs, dir: &Path, log: &Path) -> anyhow::Result<u16> {
    let mut last_error = None;
    for _ in 0..3 {
        let port = free_port()?;
        let mut c = run_as.command(bin.join("pg_ctl"));
        c.arg("-D")
            .arg(dir)
            .arg("-l")
            .arg(log)
            .args(["-w", "-t", "60"]);
        c.arg("-o")
            .arg(format!("-p {port}"))
            .arg("start")
            .stdout(Stdio::null());
        match run(c, "pg_ctl start", log) {
            Ok(()) => return Ok(port),
            Err(e)
                if e.to_string().contains("could not bind")
                    || e.to_string().contains("already in use") =>
            {
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow!("pg_ctl start failed")))
}

/// Stops the embedded server if it runs; `Ok(false)` when it was not running.
pub fn stop(pgdata: Option<&Path>) -> anyhow::Result<bool> {
    let run_as = RunAs::detect()?;
    let dir = run_as.resolve_dir(pgdata);
    if !dir.join("postmaster.pid").exists() {
        return Ok(false);
    }
    let bin = find_bin_dir()?;
    let _lock = lock_folder(&dir)?;
    if running_port(&bin, &run_as, &dir).is_none() {
        return Ok(false);
    }
    let mut c = run_as.command(bin.join("pg_ctl"));
    c.arg("-D")
        .arg(&dir)
        .args(["-m", "fast", "-w", "stop"])
        .stdout(Stdio::null());
    run(c, "pg_ctl stop", &dir.join("server.log"))?;
    Ok(true)
}

fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the embedded PostgreSQL did not accept connections on port {port}")
}

fn find_psql(bin: &Path) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("psql"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(bin.join("psql"))
        .chain(on_path)
        .find(|p| p.is_file())
}

fn ensure_database(bin: &Path, run_as: &RunAs, port: u16) -> anyhow::Result<()> {
    let psql = find_psql(bin)
        .ok_or_else(|| anyhow!("psql was not found next to the server binaries or on PATH; install the PostgreSQL client"))?;
    let query = |sql: &str| -> anyhow::Result<String> {
        let out = run_as
            .command(psql.clone())
            .args([
                "-X",
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-tAc",
                sql,
            ])
            .output()?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if query(&format!(
        "SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"
    ))? != "1"
    {
        query(&format!("CREATE DATABASE {DB_NAME}"))?;
    }
    Ok(())
}

fn simple_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100000001b3)
    })
}
