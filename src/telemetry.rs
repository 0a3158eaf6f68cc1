//! Logging: JSON (`LOG_FORMAT=json`) or human-readable, filtered by `RUST_LOG`.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset or does not parse.
pub const DEFAULT_FILTER: &str = "info,sqlx=warn,tower_http=warn";

/// `filter` is `RUST_LOG`'s value and `no_color` is `NO_COLOR`'s (both from `Config`).
pub fn init(format: LogFormat, filter: Option<&str>, no_color: Option<&str>) {
    let filter = filter
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let colour = use_colour(
        std::io::stderr().is_terminal(),
        no_color.map(std::ffi::OsStr::new),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour);
    let _ = match format {
        // The request span's fields once, under `span`: the list of every open span (`spans`)
        // would repeat them on each line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// Colours only for a person at a terminal: a file, a pipe or a log collector would store the
/// escape codes as text. `NO_COLOR` set to anything but the empty string turns them off too
/// (<https://no-color.org>).
fn use_colour(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

#[cfg(test)]
mod tests {
    use super::use_colour;
    use std::ffi::OsStr;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(use_colour(true, None));
        assert!(!use_colour(false, None), "a file or pipe gets plain text");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
        // The convention: an empty NO_COLOR does not count.
        assert!(use_colour(true, Some(OsStr::new(""))));
    }
}
