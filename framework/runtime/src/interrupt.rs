//! What a person who stops a run with Ctrl-C (SIGINT) or a scheduler that
//! stops it (SIGTERM) is told: where the run was and what a rerun will
//! reuse. The runtime keeps a one-line account of where it is (`set`); the
//! signal handler writes it out and ends the process.
//!
//! Nothing needs cleaning up on the way out: checkpoints and outputs are
//! written to temporary names and renamed into place, so an interrupted
//! write leaves the last whole one. The handler only calls async-signal-safe
//! functions (an atomic load, `strlen`, `write`, `_exit`), so the account is
//! kept as a leaked C string behind an atomic pointer rather than a lock.

use std::ffi::CString;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Once;

static WHERE: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());

/// Records where the run is and what a rerun would resume, e.g. "during the
/// fit, epoch 3 of 6: ...". A few calls per run (per video, per epoch), so
/// the superseded strings are leaked rather than freed under the handler.
pub fn set(account: impl Into<String>) {
    let text = account.into().replace('\0', " ");
    let line = CString::new(text).expect("NULs replaced");
    WHERE.store(line.into_raw(), Ordering::Release);
}

/// The account last `set`, for tests and logs.
pub fn current() -> Option<String> {
    let ptr = WHERE.load(Ordering::Acquire);
    // SAFETY: every pointer stored comes from `CString::into_raw` and is never freed.
    (!ptr.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(ptr) }.to_string_lossy().into_owned())
}

/// Installs the handler for SIGINT and SIGTERM (once per process).
pub fn install() {
    static INSTALLED: Once = Once::new();
    INSTALLED.call_once(|| {
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a plain sigaction with a handler that only calls async-signal-safe functions.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as *const () as usize;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
    });
}

extern "C" fn on_signal(signal: libc::c_int) {
    let name: &[u8] = if signal == libc::SIGTERM { b"\nvigil: stopped by SIGTERM " } else { b"\nvigil: interrupted (SIGINT) " };
    write_all(name);
    let account = WHERE.load(Ordering::Acquire);
    if account.is_null() {
        write_all(b"before any work of this run; what earlier runs left in --out is unchanged.");
    } else {
        // SAFETY: a NUL-terminated string from `CString::into_raw`, never freed.
        let bytes = unsafe { std::slice::from_raw_parts(account as *const u8, libc::strlen(account)) };
        write_all(bytes);
    }
    write_all(b"\n");
    // SAFETY: `_exit` ends the process at once, as a handler may.
    unsafe { libc::_exit(128 + signal) }
}

fn write_all(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice to stderr.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return;
        }
        bytes = &bytes[n as usize..];
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_account_is_the_last_one_set() {
        super::set("during the fit, epoch 2 of 6");
        super::set("while scoring");
        assert_eq!(super::current().as_deref(), Some("while scoring"));
    }
}
