//! The JetStream side of the relay: which stream and subjects it publishes to, making sure the
//! stream captures them (the platform's own `BILLING` stream included), and connecting.

use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, stream};

pub const STREAM_NAME: &str = "BILLING";
/// The root of every stored subject (`OutboxRepository::record` writes `sahool.billing.<type>`).
pub const SUBJECT_ROOT: &str = "sahool.billing";
/// How long JetStream remembers a `Nats-Msg-Id`. Generous, so that a relay that crashed after
/// publishing and came back well within the hour cannot duplicate what it had sent.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Where events go. Production uses the default; tests use a stream and subject root of their
/// own so that parallel test processes sharing one NATS server never see each other's messages
/// (JetStream refuses two streams with overlapping subjects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamTarget {
    pub name: String,
    pub subject_root: String,
}

impl Default for StreamTarget {
    fn default() -> Self {
        StreamTarget {
            name: STREAM_NAME.into(),
            subject_root: SUBJECT_ROOT.into(),
        }
    }
}

impl StreamTarget {
    pub fn subjects(&self) -> String {
        format!("{}.>", self.subject_root)
    }

    /// The subject to publish a stored subject on: the stored root swapped for this target's.
    pub fn subject_for(&self, stored: &str) -> String {
        match stored.strip_prefix(SUBJECT_ROOT) {
            Some(rest) if rest.starts_with('.') => format!("{}{rest}", self.subject_root),
            _ => stored.to_string(),
        }
    }
}

/// The stream cannot be made to capture the relay's subjects (e.g. another stream holds some of
/// them). Distinct from "NATS unreachable" so readiness can say which.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StreamMisconfigured(pub String);

/// Whether the subject pattern `pattern` matches every subject that `subject` (itself possibly a
/// pattern with `*` and `>`) matches. `sahool.billing.>` covers `sahool.billing.*`, not the
/// reverse; `>` covers everything.
pub fn covers(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    for (i, pt) in p.iter().enumerate() {
        if *pt == ">" {
            return i < s.len();
        }
        let Some(st) = s.get(i) else { return false };
        if *st == ">" || (*pt != "*" && (*st == "*" || pt != st)) {
            return false;
        }
    }
    p.len() == s.len()
}

/// Creates the stream when missing, and makes an existing one capture every subject the relay
/// publishes. An existing stream keeps its other settings and subjects (operators may have
/// tuned retention; the platform's script creates `BILLING` with `sahool.billing.*`,
/// `sahool.payment.*` and `sahool.subscription.*`, and `sahool.billing.*` stores none of our
/// two-token subjects such as `sahool.billing.invoice.paid`). Subjects that `<root>.>` covers
/// are replaced by it, because JetStream refuses overlapping subjects within one stream. When
/// the stream cannot be fixed (JetStream refuses the update, e.g. another stream captures some of
/// those subjects) the error is a [`StreamMisconfigured`] and nothing is published: a publish no
/// stream captures reaches plain subscribers and is never acknowledged, so every retry would
/// deliver it to them again.
pub async fn ensure_stream(js: &jetstream::Context, target: &StreamTarget) -> anyhow::Result<()> {
    let wanted = target.subjects();
    let mut stream = js
        .get_or_create_stream(stream::Config {
            name: target.name.clone(),
            subjects: vec![wanted.clone()],
            storage: stream::StorageType::File,
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| creation_error(e, target))?;
    let mut config = stream
        .info()
        .await
        .context("reading stream info")?
        .config
        .clone();
    if !config.subjects.iter().any(|s| covers(s, &wanted)) {
        let before = config.subjects.join(", ");
        config.subjects.retain(|s| !covers(&wanted, s));
        config.subjects.push(wanted.clone());
        js.update_stream(&config).await.map_err(|e| {
            StreamMisconfigured(format!(
                "JetStream stream {} captures [{before}], not {wanted}, and adding it was refused ({e}); events stay in the outbox until the stream captures {wanted}",
                target.name
            ))
        })?;
        tracing::warn!(
            job = "outbox_relay",
            stream = %target.name,
            before = %before,
            after = %config.subjects.join(", "),
            "stream did not capture every subject the relay publishes; its subjects were extended"
        );
    }
    let window = config.duplicate_window;
    if window < DUPLICATE_WINDOW {
        tracing::warn!(
            job = "outbox_relay",
            stream = %target.name,
            window_s = window.as_secs(),
            "stream duplicate window is shorter than the relay expects; redeliveries after it may duplicate"
        );
    }
    Ok(())
}

/// A stream that could not be found or created. The server answering that it has no JetStream,
/// or JetStream refusing to create the stream (e.g. another stream captures some of its
/// subjects), is a [`StreamMisconfigured`]: NATS is up, and publishing would reach plain
/// subscribers with nothing stored. A timeout or a lost connection stays an ordinary error.
fn creation_error(e: CreateStreamError, target: &StreamTarget) -> anyhow::Error {
    let wanted = target.subjects();
    let why = match e.kind() {
        CreateStreamErrorKind::JetStreamUnavailable => format!(
            "the NATS server does not run JetStream (start nats-server with -js), so stream {} for {wanted} cannot exist; events stay in the outbox",
            target.name
        ),
        CreateStreamErrorKind::JetStream(api) => format!(
            "JetStream refused to create stream {} for {wanted} ({api}); events stay in the outbox until it can be created",
            target.name
        ),
        _ => {
            return anyhow::Error::new(e)
                .context(format!("creating or finding JetStream stream {}", target.name))
        }
    };
    StreamMisconfigured(why).into()
}

/// Connects and makes sure the stream captures the relay's subjects. The client reconnects by
/// itself afterwards; the relay runs this again after any failed batch (and so after a
/// reconnect that lost a publish), so a stream changed or replaced meanwhile is checked again.
pub async fn connect(nats_url: &str, target: &StreamTarget) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("billing-core-outbox-relay")
        .connection_timeout(Duration::from_secs(5))
        .connect(nats_url)
        .await
        // The kind only: the error could otherwise echo a URL with credentials.
        .map_err(|e| anyhow::anyhow!("NATS unreachable ({})", e.kind()))?;
    let js = jetstream::new(client);
    ensure_stream(&js, target).await?;
    Ok(js)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_target_publishes_stored_subjects_unchanged() {
        let t = StreamTarget::default();
        assert_eq!(t.subjects(), "sahool.billing.>");
        assert_eq!(
            t.subject_for("sahool.billing.invoice.paid"),
            "sahool.billing.invoice.paid"
        );
    }

    #[test]
    fn covers_is_subject_subsumption() {
        assert!(covers("sahool.billing.>", "sahool.billing.*"));
        assert!(covers("sahool.billing.>", "sahool.billing.invoice.paid"));
        assert!(covers("sahool.billing.>", "sahool.billing.>"));
        assert!(covers("sahool.*.>", "sahool.billing.>"));
        assert!(covers(">", "sahool.billing.>"));
        assert!(!covers("sahool.billing.*", "sahool.billing.>"));
        assert!(!covers("sahool.billing.*", "sahool.billing.invoice.paid"));
        assert!(!covers("sahool.billing.>", "sahool.billing"));
        assert!(!covers("sahool.billing.>", "sahool.payment.*"));
        assert!(!covers("sahool.billing.invoice", "sahool.billing.*"));
        assert!(covers("sahool.*", "sahool.billing"));
    }

    #[test]
    fn another_target_swaps_only_the_subject_root() {
        let t = StreamTarget {
            name: "X".into(),
            subject_root: "t1.sahool.billing".into(),
        };
        assert_eq!(
            t.subject_for("sahool.billing.tenant.created"),
            "t1.sahool.billing.tenant.created"
        );
        assert_eq!(t.subject_for("sahool.billingx.a"), "sahool.billingx.a");
    }
}
