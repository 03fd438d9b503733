//! Progress bars on stderr, hidden when it is not a terminal or under CI.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub fn visible(wanted: bool) -> bool {
    wanted && std::io::stderr().is_terminal() && std::env::var_os("CI").is_none()
}

pub fn bar(wanted: bool, total: u64, prefix: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if !visible(wanted) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg} ({elapsed})").expect("valid template").progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar
}
