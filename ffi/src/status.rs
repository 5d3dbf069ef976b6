//! Status codes, the thread-local last error, and the guard every export
//! runs its body in: a panic never crosses the boundary.

use std::cell::RefCell;
use std::ffi::{c_char, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// What a call returned. `SQZ_STATUS_OK` is 0; every other value names a failure,
/// and `sqz_last_error` then describes it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzStatus {
    Ok = 0,
    /// A required pointer argument was NULL.
    NullPointer = 1,
    /// An argument is out of range or inconsistent (an index, an option, a
    /// count of inputs, a string that is not UTF-8).
    InvalidArgument = 2,
    /// The file could not be opened, read or mapped.
    Io = 3,
    /// The model file is corrupt, truncated or fails its checksums.
    InvalidModel = 4,
    /// The model needs an operator or feature this build lacks.
    Unsupported = 5,
    /// A buffer's byte length is not what the tensor needs.
    BufferSize = 6,
    /// A buffer's element type is not the tensor's.
    Dtype = 7,
    /// A camera frame is inconsistent (planes, strides, crop, rotation).
    Frame = 8,
    /// The session is running on another thread; nothing was done.
    Busy = 9,
    /// The library panicked (a bug); the handle involved is now poisoned.
    Panic = 10,
    /// The handle panicked before and refuses further use; free it.
    Poisoned = 11,
}

/// A failed call: its status and the message `sqz_last_error` returns.
#[derive(Debug)]
pub(crate) struct Failure {
    pub status: SqzStatus,
    pub message: String,
}

impl Failure {
    pub fn new(status: SqzStatus, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
        }
    }

    pub fn null(what: &str) -> Failure {
        Failure::new(SqzStatus::NullPointer, format!("{what} is NULL"))
    }

    pub fn invalid(message: impl Into<String>) -> Failure {
        Failure::new(SqzStatus::InvalidArgument, message)
    }
}

impl From<squeeze::Error> for Failure {
    fn from(e: squeeze::Error) -> Failure {
        use squeeze::Error as E;
        let status = match &e {
            E::Io { .. } => SqzStatus::Io,
            E::UnsupportedOp { .. } | E::InputValueNeeded { .. } => SqzStatus::Unsupported,
            E::Frame(_) => SqzStatus::Frame,
            E::Input(_) | E::Shape(_) => SqzStatus::InvalidArgument,
            E::Malformed(_)
            | E::InvalidGraph { .. }
            | E::Cycle(_)
            | E::TooLarge { .. }
            | E::ExternalData(_)
            | E::Container(_)
            | E::Codec(_)
            | E::Pack(_) => SqzStatus::InvalidModel,
        };
        Failure::new(status, e.to_string())
    }
}

pub(crate) type Outcome<T = ()> = Result<T, Failure>;

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(message: &str) {
    // An interior NUL would cut the C string short; keep what precedes it.
    let text = message.split('\0').next().unwrap_or_default();
    let text = CString::new(text).unwrap_or_default();
    LAST_ERROR.with(|last| *last.borrow_mut() = text);
}

/// The last error's text as a pointer into the thread-local store, valid
/// until the next failing call on this thread.
pub(crate) fn last_error_ptr() -> *const c_char {
    LAST_ERROR.with(|last| last.borrow().as_ptr())
}

/// The last error's text, for copying out.
pub(crate) fn last_error_bytes() -> Vec<u8> {
    LAST_ERROR.with(|last| last.borrow().as_bytes().to_vec())
}

/// Runs an export's body: a failure becomes its status (and the last
/// error), a panic becomes `SQZ_STATUS_PANIC` after `on_panic` has poisoned
/// the handle involved. Success leaves the last error as it was.
pub(crate) fn guard(on_panic: impl FnOnce(), body: impl FnOnce() -> Outcome) -> SqzStatus {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => SqzStatus::Ok,
        Ok(Err(failure)) => {
            set_last_error(&failure.message);
            failure.status
        }
        Err(payload) => {
            on_panic();
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown payload".into());
            set_last_error(&format!("panic inside squeeze (handle poisoned): {what}"));
            SqzStatus::Panic
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_a_status_and_runs_the_poison_hook() {
        let mut poisoned = false;
        let status = guard(|| poisoned = true, || panic!("boom"));
        assert_eq!(status, SqzStatus::Panic);
        assert!(poisoned);
        let text = String::from_utf8(last_error_bytes()).unwrap();
        assert!(text.contains("boom"), "{text}");
    }

    #[test]
    fn a_failure_sets_the_last_error_and_success_keeps_it() {
        let status = guard(|| {}, || Err(Failure::invalid("bad index\0hidden")));
        assert_eq!(status, SqzStatus::InvalidArgument);
        assert_eq!(last_error_bytes(), b"bad index");
        assert_eq!(guard(|| {}, || Ok(())), SqzStatus::Ok);
        assert_eq!(last_error_bytes(), b"bad index");
    }
}
