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

//!
//! `vigil score` watches footage until the input ends, which for a camera
//! is never: there the first signal only asks it to stop ([`stop_softly`],
//! [`stop_requested`]), so it scores what it has decoded, closes the open
//! event and writes its report before it exits. A second signal ends the
//! process at once, as above.

use std::ffi::CString;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::Once;

static WHERE: AtomicPtr<libc::c_char> = AtomicPtr::new(std::ptr::null_mut());
/// Whether the first signal only asks to stop.
static SOFT: AtomicBool = AtomicBool::new(false);
/// The signal that asked to stop, 0 while none has.
static REQUESTED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// From now on the first SIGINT or SIGTERM asks to stop instead of ending
/// the process; the caller polls [`stop_requested`].
pub fn stop_softly() {
    SOFT.store(true, Ordering::Release);
}

/// The signal's name, once one asked to stop.
pub fn stop_requested() -> Option<&'static str> {
    match REQUESTED.load(Ordering::Acquire) {
        0 => None,
        libc::SIGTERM => Some("SIGTERM"),
        _ => Some("SIGINT"),
    }
}

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
    if SOFT.load(Ordering::Acquire) && REQUESTED.compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire).is_ok() {
        write_all(b"\nvigil: stopping: scoring what was decoded, then writing the outputs (a second signal stops at once)\n");
        return;
    }
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
