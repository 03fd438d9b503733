//! A plugin library has its own copy of `tracing`, invisible to the host's
//! subscriber. When the host loads a plugin it hands over a log callback; this
//! module installs a subscriber in the plugin that formats each event and
//! passes it to that callback, so plugin authors just use `tracing::warn!`.

use crate::plugin::{HostLogger, LogLevel};
use abi_stable::std_types::RStr;
use std::io::Write;
use std::sync::OnceLock;
use tracing::Level;

static HOST_LOGGER: OnceLock<HostLogger> = OnceLock::new();

/// Root module entry point: called once by the host after loading.
pub extern "C" fn set_host_logger(logger: HostLogger) {
    if HOST_LOGGER.set(logger).is_ok() {
        let subscriber = tracing_subscriber::fmt()
            .with_writer(HostWriterFactory)
            .with_ansi(false)
            .without_time()
            .with_level(false)
            .with_target(false)
            .with_max_level(Level::TRACE)
            .finish();
        // Fails only if the plugin installed its own subscriber; keep that one.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
}

struct HostWriterFactory;

/// Buffers one formatted event and sends it to the host when dropped.
pub struct HostWriter {
    level: LogLevel,
    target: String,
    buffer: Vec<u8>,
}

impl Write for HostWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for HostWriter {
    fn drop(&mut self) {
        if let Some(logger) = HOST_LOGGER.get() {
            let text = String::from_utf8_lossy(&self.buffer);
            (logger.log)(self.level, RStr::from_str(&self.target), RStr::from_str(text.trim_end()));
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for HostWriterFactory {
    type Writer = HostWriter;
    fn make_writer(&'a self) -> HostWriter {
        HostWriter { level: LogLevel::Info, target: String::new(), buffer: Vec::new() }
    }
    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> HostWriter {
        let level = match *meta.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            Level::TRACE => LogLevel::Trace,
        };
        HostWriter { level, target: meta.target().to_string(), buffer: Vec::new() }
    }
}
