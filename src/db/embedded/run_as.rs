//! The account the embedded server runs under. PostgreSQL refuses to run as root, so when we
//! are root it runs as the `postgres` system user, which then owns the data folder.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{anyhow, Context};

use super::{data_dir, simple_hash, FOREIGN_PG_ENV};

/// The account the server runs under: ourselves, or `postgres` when we are root.
pub(super) struct RunAs {
    pub(super) uid: Option<(u32, u32)>,
}

fn current_uid() -> u32 {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(1)
}

fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == name).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

impl RunAs {
    pub(super) fn detect() -> anyhow::Result<Self> {
        if current_uid() != 0 {
            return Ok(RunAs { uid: None });
        }
        let ids = lookup_user("postgres").ok_or_else(|| {
            anyhow!(
                "running as root, and PostgreSQL will not run as root: create a `postgres` system \
                 user (the postgresql package does; or `useradd --system postgres`), run as another \
                 user, or set DATABASE_URL"
            )
        })?;
        Ok(RunAs { uid: Some(ids) })
    }

    pub(super) fn command(&self, program: PathBuf) -> Command {
        let mut c = Command::new(program);
        if let Some((uid, gid)) = self.uid {
            c.uid(uid).gid(gid);
        }
        // The tools look up their own location through the working directory, which the
        // `postgres` account may not be allowed to enter.
        c.current_dir("/").stdin(Stdio::null()).env("LC_ALL", "C");
        for var in FOREIGN_PG_ENV {
            c.env_remove(var);
        }
        c
    }

    pub(super) fn prepare_dir(&self, dir: &Path) -> anyhow::Result<()> {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        if let Some((uid, gid)) = self.uid {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))?;
        }
        Ok(())
    }

    /// Whether the server account can reach `dir` (every ancestor searchable by it).
    pub(super) fn can_reach(&self, dir: &Path) -> bool {
        let Some((uid, _)) = self.uid else {
            return true;
        };
        dir.ancestors().skip(1).all(|d| match fs::metadata(d) {
            Ok(m) => {
                m.permissions().mode() & 0o001 != 0
                    || std::os::unix::fs::MetadataExt::uid(&m) == uid
            }
            Err(_) => true,
        })
    }

    /// The data folder actually used: the configured one, or a stable folder under the temp
    /// directory when the project folder is private to root.
    pub(super) fn resolve_dir(&self, configured: Option<&Path>) -> PathBuf {
        let dir = data_dir(configured);
        if self.can_reach(&dir) {
            return dir;
        }
        let tag = format!("{:x}", simple_hash(dir.to_string_lossy().as_bytes()));
        let fallback = std::env::temp_dir().join(format!("billing-core-pgdata-{tag}"));
        tracing::warn!(path = %fallback.display(), "project folder not reachable by the postgres user; using a temp folder");
        fallback
    }
}
