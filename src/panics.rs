//! Panics: the one place that catches them and the one process-wide hook.
//!
//! tch turns libtorch errors into panics, so kneecam catches some (see [`catch`]) and makes
//! them an error of the one request that raised them. A caught panic must touch nothing: the
//! hook only logs it. Any other panic ends the process: the hook first runs the restore
//! function registered with [`on_fatal`] (the explorer puts the terminal back), then the
//! hook that was installed before (Rust's default prints the message and the backtrace).
use std::any::Any;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

thread_local! {
    /// How many [`catch`] calls this thread is inside.
    static CATCHING: Cell<u32> = const { Cell::new(0) };
}

/// What a fatal panic runs before the previous hook prints (at most one at a time).
static ON_FATAL: Mutex<Option<fn()>> = Mutex::new(None);
static INSTALLED: Once = Once::new();

/// Runs `work`; a panic inside becomes its message. While `work` runs, a panic on this thread
/// is not reported by the hook (only logged), so nothing reaches the screen.
pub fn catch<R>(work: impl FnOnce() -> R) -> Result<R, String> {
    install_hook();
    CATCHING.with(|depth| depth.set(depth.get() + 1));
    let outcome = panic::catch_unwind(AssertUnwindSafe(work));
    CATCHING.with(|depth| depth.set(depth.get().saturating_sub(1)));
    outcome.map_err(|payload| message(payload.as_ref()))
}

/// The text of a panic's payload.
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

/// Registers what a panic that ends the process runs first (None: nothing).
pub fn on_fatal(restore: Option<fn()>) {
    install_hook();
    if let Ok(mut slot) = ON_FATAL.lock() {
        *slot = restore;
    }
}

/// Whether this thread is inside [`catch`] now.
pub fn is_catching() -> bool {
    CATCHING.with(Cell::get) > 0
}

/// Installs kneecam's hook over the current one, once per process.
pub fn install_hook() {
    INSTALLED.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if is_catching() {
                let place = info
                    .location()
                    .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
                tracing::warn!("caught panic{place}: {}", message(info.payload()));
                return;
            }
            let restore = ON_FATAL.lock().ok().and_then(|slot| *slot);
            if let Some(restore) = restore {
                restore();
            }
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_become_messages_and_the_depth_is_restored() {
        assert_eq!(catch(|| 7), Ok(7));
        assert_eq!(
            catch::<()>(|| panic!("literal")),
            Err("literal".to_string())
        );
        assert_eq!(
            catch::<()>(|| panic!("formatted {}", 42)),
            Err("formatted 42".to_string())
        );
        assert_eq!(
            catch::<()>(|| std::panic::panic_any(3u8)),
            Err("a panic without a message".to_string())
        );
        let nested = catch(|| catch::<()>(|| panic!("inner")).is_err() && is_catching());
        assert_eq!(nested, Ok(true));
        assert!(!is_catching(), "the depth is back to 0 after panics");
    }

    static RESTORED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// Counts restores on this test's own threads only (other tests may panic meanwhile).
    fn restore() {
        let name = std::thread::current().name().map(str::to_string);
        if name.is_some_and(|n| n.starts_with("panics-test")) {
            RESTORED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn only_a_panic_that_is_not_caught_runs_the_restore() {
        on_fatal(Some(restore));
        let run = |name: &str, work: fn()| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(work)
                .expect("thread")
                .join()
        };
        let caught = run("panics-test-caught", || {
            assert!(catch::<()>(|| panic!("a libtorch error")).is_err());
        });
        assert!(caught.is_ok());
        assert_eq!(RESTORED.load(std::sync::atomic::Ordering::SeqCst), 0);
        let fatal = run("panics-test-fatal", || panic!("a bug"));
        assert!(fatal.is_err());
        assert_eq!(RESTORED.load(std::sync::atomic::Ordering::SeqCst), 1);
        on_fatal(None);
    }
}
