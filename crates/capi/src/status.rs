//! [`ReparamStatus`], the error of the safe layer ([`ApiError`]), the thread-local last-error
//! message and [`call`], the guard every entry point runs its body in.

use reparam_winograd::ConvError;
use repvgg::CheckpointError;
use std::any::Any;
use std::cell::RefCell;
use std::ffi::{CString, c_char};
use std::panic::{self, AssertUnwindSafe};

/// What a call of the C API returned. Every value but `REPARAM_STATUS_OK` comes with a message
/// from `reparam_last_error`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReparamStatus {
    /// Success.
    Ok = 0,
    /// A null pointer, a size of zero or too large, a count that does not fit the model or
    /// layer, a caller buffer too small, a non-finite input, an unknown model name.
    InvalidArgument = 1,
    /// A file could not be read (the message names it).
    Io = 2,
    /// The file is not a valid checkpoint, or its network cannot be re-parameterized.
    Checkpoint = 3,
    /// This CPU or build cannot run what was asked (e.g. `REPARAM_ISA` forces a missing ISA).
    Unsupported = 4,
    /// Running (or preparing to run) failed for another reason, e.g. no thread pool.
    Run = 5,
    /// A panic inside the library was caught at the boundary: a bug in reparam.
    Panic = 6,
}

/// An error of the safe layer: the status the C caller gets and the message it can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Never [`ReparamStatus::Ok`].
    pub status: ReparamStatus,
    /// What went wrong, naming the argument, field or file.
    pub message: String,
}

impl ApiError {
    /// An error with `status` and `message`.
    pub fn new(status: ReparamStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// A [`ReparamStatus::InvalidArgument`] error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ReparamStatus::InvalidArgument, message)
    }

    /// `IO` for a file that cannot be read, `CHECKPOINT` for everything else.
    pub fn from_checkpoint(error: CheckpointError) -> Self {
        let status = match error {
            CheckpointError::Io { .. } => ReparamStatus::Io,
            _ => ReparamStatus::Checkpoint,
        };
        Self::new(status, error.to_string())
    }

    /// `UNSUPPORTED` for an ISA, algorithm or precision this CPU/build lacks, `INVALID_ARGUMENT`
    /// for a bad operand, `RUN` otherwise.
    pub fn from_conv(error: ConvError) -> Self {
        let status = match error {
            ConvError::Tensor(_) => ReparamStatus::InvalidArgument,
            ConvError::IsaUnavailable { .. }
            | ConvError::UnknownIsa { .. }
            | ConvError::UnsupportedAlgorithm { .. }
            | ConvError::PrecisionUnavailable { .. } => ReparamStatus::Unsupported,
            _ => ReparamStatus::Run,
        };
        Self::new(status, error.to_string())
    }
}

impl From<repvgg::Error> for ApiError {
    /// Bad configs and tensor operands are the caller's (`INVALID_ARGUMENT`), checkpoint errors
    /// as [`ApiError::from_checkpoint`], kernel errors as [`ApiError::from_conv`], the rest
    /// (thread pool, GPU) `RUN`.
    fn from(error: repvgg::Error) -> Self {
        match error {
            repvgg::Error::Config(_) | repvgg::Error::Tensor(_) => Self::invalid(error.to_string()),
            repvgg::Error::Checkpoint(e) => Self::from_checkpoint(e),
            repvgg::Error::Kernel(e) => Self::from_conv(e),
            other => Self::new(ReparamStatus::Run, other.to_string()),
        }
    }
}

impl From<repvgg::ConfigError> for ApiError {
    fn from(error: repvgg::ConfigError) -> Self {
        Self::invalid(error.to_string())
    }
}

impl From<reparam_tensor::TensorError> for ApiError {
    fn from(error: reparam_tensor::TensorError) -> Self {
        Self::invalid(error.to_string())
    }
}

thread_local! {
    /// The message of the last call on this thread (empty after a success).
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

/// Runs `body`, the work of the entry point `function`, so that no panic leaves it: the result
/// becomes the returned status, and the message (`function: ...`, empty on success) is stored
/// as this thread's last error. A panic gives [`ReparamStatus::Panic`] with its payload.
pub fn call(function: &str, body: impl FnOnce() -> Result<(), ApiError>) -> ReparamStatus {
    // Unwind safety: a handle whose method panicked holds no half-updated state that a later
    // call trusts (the model's engine is taken out while it runs and dropped by the unwind).
    let (status, message) = match panic::catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => (ReparamStatus::Ok, String::new()),
        Ok(Err(e)) => (e.status, format!("{function}: {}", e.message)),
        Err(payload) => (
            ReparamStatus::Panic,
            format!(
                "{function}: panic inside reparam (a bug): {}",
                panic_message(&*payload)
            ),
        ),
    };
    set_last_error(&message);
    status
}

/// The text of a panic payload (`&str` or `String`; anything else is unnamed).
fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

/// Stores `message` (interior NULs become `?`) as this thread's last error.
fn set_last_error(message: &str) {
    let c = CString::new(message.replace('\0', "?")).expect("NULs were replaced");
    // `try_with`: during thread teardown the slot may be gone; then there is no one to read it.
    let _ = LAST_ERROR.try_with(|last| *last.borrow_mut() = c);
}

/// This thread's last error as a NUL-terminated string, valid until the next call on this
/// thread replaces it (never null; empty after a success).
pub fn last_error_ptr() -> *const c_char {
    // Cannot panic: no `borrow_mut` is alive outside `set_last_error`, and a slot already torn
    // down (thread exit) gives a static string instead.
    LAST_ERROR
        .try_with(|last| last.borrow().as_ptr())
        .unwrap_or(c"reparam_last_error: called during thread teardown".as_ptr())
}

/// This thread's last error as a Rust string (for tests of the safe layer).
pub fn last_error() -> String {
    LAST_ERROR
        .try_with(|last| last.borrow().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_success_clears_the_message() {
        let status = call("f", || Err(ApiError::invalid("bad `n`")));
        assert_eq!(status, ReparamStatus::InvalidArgument);
        assert_eq!(last_error(), "f: bad `n`");
        assert_eq!(call("g", || Ok(())), ReparamStatus::Ok);
        assert_eq!(last_error(), "");
    }

    #[test]
    fn a_panic_is_caught_and_reported() {
        let status = call("h", || panic!("boom {}", 42));
        assert_eq!(status, ReparamStatus::Panic);
        assert_eq!(last_error(), "h: panic inside reparam (a bug): boom 42");
        assert_eq!(
            call("h", || std::panic::panic_any(7_u8)),
            ReparamStatus::Panic
        );
        assert!(last_error().ends_with("non-string panic payload"));
    }

    #[test]
    fn interior_nuls_do_not_lose_the_message() {
        call("f", || Err(ApiError::invalid("a\0b")));
        assert_eq!(last_error(), "f: a?b");
    }

    #[test]
    fn errors_map_to_their_status() {
        let io = CheckpointError::Io {
            path: "/x.safetensors".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let e = ApiError::from(repvgg::Error::Checkpoint(io));
        assert_eq!(e.status, ReparamStatus::Io);
        assert!(e.message.contains("/x.safetensors"), "{}", e.message);
        let wrong = CheckpointError::MissingKeys {
            keys: vec!["linear.weight".into()],
        };
        assert_eq!(
            ApiError::from_checkpoint(wrong).status,
            ReparamStatus::Checkpoint
        );
        let isa = ConvError::UnknownIsa {
            value: "mmx".into(),
        };
        assert_eq!(ApiError::from_conv(isa).status, ReparamStatus::Unsupported);
        let unknown = repvgg::Config::official("Z9").unwrap_err();
        assert_eq!(
            ApiError::from(unknown).status,
            ReparamStatus::InvalidArgument
        );
        let pool = repvgg::Error::ThreadPool {
            threads: 3,
            reason: "no".into(),
        };
        assert_eq!(ApiError::from(pool).status, ReparamStatus::Run);
    }
}
