//! The embedded default database: with no `DATABASE_URL`, start (or reuse) a private PostgreSQL
//! from the server binaries installed on the machine, in a git-ignored folder of the project.
//!
//! PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres`
//! system user, which then owns the data folder.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};

pub const DB_NAME: &str = "billing";

const INSTALL_HINT: &str = "no PostgreSQL server binaries (initdb, pg_ctl) were found on PATH or under \
/usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: `apt-get install postgresql`; macOS: \
`brew install postgresql`) or set DATABASE_URL to an existing database, e.g. \
DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing";

/// Where the data folder lives: `BILLING_PGDATA`, else `.pgdata` in the working directory.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("BILLING_PGDATA") {
        Some(p) => PathBuf::from(p),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")).join(".pgdata"),
    }
}

/// Finds the directory holding `initdb` and `pg_ctl`.
pub fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
                return Ok(dir);
            }
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().split('.').next()?.parse().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, p)| p).ok_or_else(|| anyhow!(INSTALL_HINT))
}

/// The account the server runs under: ourselves, or `postgres` when we are root.
struct RunAs {
    uid: Option<(u32, u32)>,
}

fn current_uid() -> u32 {
    fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1)
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

impl RunAs {
    fn detect() -> anyhow::Result<Self> {
        if current_uid() != 0 {
            return Ok(RunAs { uid: None });
        }
        let ids = lookup_user("postgres").ok_or_else(|| {
            anyhow!("running as root, and PostgreSQL will not run as root: create a `postgres` system \
                     user (the postgresql package does), run as another user, or set DATABASE_URL")
        })?;
        Ok(RunAs { uid: Some(ids) })
    }

    fn command(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = self.uid {
            c.uid(uid).gid(gid);
        }
        c.env_remove("PGDATA").env("LC_ALL", "C");
        c
    }

    fn prepare_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.uid {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Whether the server account can reach `dir` (every ancestor searchable).
    fn can_reach(&self, dir: &Path) -> bool {
        let Some((uid, _)) = self.uid else { return true };
        let mut p = dir.parent();
        while let Some(d) = p {
            if let Ok(m) = fs::metadata(d) {
                let mode = m.permissions().mode();
                let owner = std::os::unix::fs::MetadataExt::uid(&m);
                if mode & 0o001 == 0 && owner != uid {
                    return false;
                }
            }
            p = d.parent();
        }
        true
    }
}

fn read_port(dir: &Path) -> Option<u16> {
    let pid = fs::read_to_string(dir.join("postmaster.pid")).ok()?;
    pid.lines().nth(3)?.trim().parse().ok()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn run(mut cmd: Command, what: &str, log: &Path) -> anyhow::Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).to_string();
        if let Ok(mut f) = File::open(log) {
            let mut tail = String::new();
            let _ = f.read_to_string(&mut tail);
            let start = tail.len().saturating_sub(2000);
            text.push_str(&tail[start..]);
        }
        bail!("{what} failed: {}", text.trim());
    }
    Ok(())
}

/// Starts the embedded server if it is not running, creates the `billing` database, and returns
/// its URL. Safe to call from several processes at once (a file lock serializes them).
pub fn ensure_running() -> anyhow::Result<String> {
    let mut dir = data_dir();
    let run_as = RunAs::detect()?;
    if !run_as.can_reach(&dir) {
        // The project folder is private to root; keep the data next to it in /tmp instead.
        let tag = format!("{:x}", simple_hash(dir.to_string_lossy().as_bytes()));
        dir = std::env::temp_dir().join(format!("billing-core-pgdata-{tag}"));
        tracing::warn!(path = %dir.display(), "project folder not reachable by the postgres user");
    }
    let bin = find_bin_dir()?;
    fs::create_dir_all(dir.parent().unwrap_or(Path::new(".")))?;
    let lock_path = dir.with_extension("lock");
    let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path)?;
    lock.lock().context("locking the embedded database folder")?;

    let log = dir.join("server.log");
    if !dir.join("PG_VERSION").exists() {
        run_as.prepare_dir(&dir)?;
        let mut c = run_as.command(bin.join("initdb"));
        c.arg("-D").arg(&dir).args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"]);
        run(c, "initdb", &log)?;
        let mut conf = OpenOptions::new().append(true).open(dir.join("postgresql.conf"))?;
        writeln!(conf, "\n# billing-core embedded settings\nlisten_addresses = '127.0.0.1'\nmax_connections = 300\nunix_socket_directories = '{}'", dir.display())?;
    }

    let running = run_as
        .command(bin.join("pg_ctl"))
        .arg("status")
        .arg("-D")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    let port = match (running, read_port(&dir)) {
        (true, Some(p)) => p,
        _ => {
            let port = free_port()?;
            let mut c = run_as.command(bin.join("pg_ctl"));
            c.arg("-D").arg(&dir).arg("-l").arg(&log).arg("-w").arg("-t").arg("60")
                .arg("-o").arg(format!("-p {port}")).arg("start")
                .stdout(Stdio::null());
            run(c, "pg_ctl start", &log)?;
            port
        }
    };
    wait_for_port(port, Duration::from_secs(30))?;
    ensure_database(&bin, &run_as, port)?;
    drop(lock);
    Ok(format!("postgres://postgres@127.0.0.1:{port}/{DB_NAME}"))
}

/// Stops the embedded server if it runs.
pub fn stop() -> anyhow::Result<bool> {
    let dir = data_dir();
    if !dir.join("postmaster.pid").exists() {
        return Ok(false);
    }
    let bin = find_bin_dir()?;
    let run_as = RunAs::detect()?;
    let mut c = run_as.command(bin.join("pg_ctl"));
    c.arg("-D").arg(&dir).args(["-m", "fast", "-w", "stop"]).stdout(Stdio::null());
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

fn ensure_database(bin: &Path, run_as: &RunAs, port: u16) -> anyhow::Result<()> {
    let psql = [bin.join("psql"), PathBuf::from("/usr/bin/psql")]
        .into_iter()
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow!("psql not found next to the server binaries"))?;
    let query = |sql: &str| -> anyhow::Result<String> {
        let out = run_as
            .command(psql.clone())
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-tAc", sql])
            .output()?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    if query(&format!("SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"))? != "1" {
        query(&format!("CREATE DATABASE {DB_NAME}"))?;
    }
    Ok(())
}

fn simple_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x100000001b3))
}
