//! Logs go to a file (the terminal belongs to the explorer): `<data folder>/logs/kneecam.log`.
//! `KNEECAM_LOG` sets the filter (default `info`), e.g. `KNEECAM_LOG=kneecam=debug`.
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

/// Starts file logging; without a writable log folder kneecam runs on, unlogged.
pub fn init() -> Option<WorkerGuard> {
    let log_file = crate::paths::Folders::locate().ok()?.log_file();
    let dir = log_file.parent()?;
    std::fs::create_dir_all(dir).ok()?;
    let appender = tracing_appender::rolling::never(dir, log_file.file_name()?);
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter = EnvFilter::try_from_env("KNEECAM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_writer(writer)
        .with_ansi(false)
        .with_env_filter(filter)
        .try_init()
        .ok()?;
    Some(guard)
}
