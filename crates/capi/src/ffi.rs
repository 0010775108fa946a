//! The `extern "C"` entry points: the crate's only `unsafe` code.
//!
//! Each function turns its raw pointers into references and slices (after a null check), then
//! hands them to the safe layer ([`crate::model`], [`crate::conv`]) inside
//! [`crate::status::call`], which catches panics, maps errors to a [`ReparamStatus`] and sets
//! the thread's last-error message. Handles are `Box`es passed to C as raw pointers.

use crate::conv::{ReparamConv3x3, ReparamConvDesc};
use crate::model::ReparamModel;
use crate::status::{self, ApiError, ReparamStatus};
use std::ffi::{CStr, c_char};
use std::path::PathBuf;

/// `ptr` as a shared reference, or `INVALID_ARGUMENT` naming `name` when it is null.
///
/// # Safety
/// A non-null `ptr` must point to a valid `T` that nothing mutates during `'a`.
unsafe fn borrow<'a, T>(ptr: *const T, name: &str) -> Result<&'a T, ApiError> {
    // SAFETY: the caller guarantees a non-null `ptr` is valid and not mutated during 'a;
    // `as_ref` handles null.
    unsafe { ptr.as_ref() }.ok_or_else(|| null(name))
}

/// `ptr` as an exclusive reference, or `INVALID_ARGUMENT` naming `name` when it is null.
///
/// # Safety
/// A non-null `ptr` must point to a valid `T` that nothing else accesses during `'a`.
unsafe fn borrow_mut<'a, T>(ptr: *mut T, name: &str) -> Result<&'a mut T, ApiError> {
    // SAFETY: the caller guarantees a non-null `ptr` is valid and unaliased during 'a; `as_mut`
    // handles null.
    unsafe { ptr.as_mut() }.ok_or_else(|| null(name))
}

/// `len` floats at `ptr`, or `INVALID_ARGUMENT` naming `name` when it is null.
///
/// # Safety
/// A non-null `ptr` must point to `len` readable, initialized, suitably aligned floats that
/// nothing mutates during `'a`; `len · 4 ≤ isize::MAX`.
unsafe fn floats<'a>(ptr: *const f32, len: usize, name: &str) -> Result<&'a [f32], ApiError> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null, and the caller guarantees `len` valid, aligned, unmutated floats.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// Copies `values` to `out` (checked for null first, by the caller).
///
/// # Safety
/// `out` must be non-null, aligned and writable for `values.len()` floats that do not overlap
/// `values`.
unsafe fn write_floats(out: *mut f32, values: &[f32]) {
    // SAFETY: the caller guarantees `values.len()` writable, aligned floats at `out` apart from
    // `values`. Writing through the raw pointer (no `&mut [f32]`) lets them be uninitialized.
    unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), out, values.len()) }
}

/// A NUL-terminated C string as a path (bytes as they are on Unix, UTF-8 elsewhere).
///
/// # Safety
/// A non-null `ptr` must point to a NUL-terminated string that stays unchanged during the call.
unsafe fn c_path(ptr: *const c_char, name: &str) -> Result<PathBuf, ApiError> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated, unchanging string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    #[cfg(unix)]
    let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(bytes));
    #[cfg(not(unix))]
    let path = PathBuf::from(
        std::str::from_utf8(bytes)
            .map_err(|e| ApiError::invalid(format!("`{name}` is not UTF-8: {e}")))?,
    );
    Ok(path)
}

/// A NUL-terminated C string as UTF-8.
///
/// # Safety
/// As [`c_path`].
unsafe fn text<'a>(ptr: *const c_char, name: &str) -> Result<&'a str, ApiError> {
    if ptr.is_null() {
        return Err(null(name));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated, unchanging string.
    let bytes = unsafe { CStr::from_ptr(ptr) }.to_bytes();
    std::str::from_utf8(bytes).map_err(|e| ApiError::invalid(format!("`{name}` is not UTF-8: {e}")))
}

/// Stores `value` through the out-pointer `out` (checked for null first, by the caller).
///
/// # Safety
/// `out` must be non-null, aligned and writable.
unsafe fn store<T>(out: *mut T, value: T) {
    // SAFETY: the caller guarantees `out` is non-null, aligned and writable; `write` does not
    // drop the (possibly uninitialized) old value.
    unsafe { out.write(value) }
}

fn null(name: &str) -> ApiError {
    ApiError::invalid(format!("`{name}` is NULL"))
}

/// Moves `handle` to the heap and stores it through `out`.
///
/// # Safety
/// As [`store`].
unsafe fn give<T>(out: *mut *mut T, handle: T) {
    // SAFETY: forwarded from the caller.
    unsafe { store(out, Box::into_raw(Box::new(handle))) }
}

/// The message of the last failed call on this thread, NUL-terminated; an empty string after a
/// successful call. Never NULL.
///
/// # Safety
/// Always safe to call (it cannot panic, so it needs no guard). The pointer is valid until the next `reparam_*` call on this thread;
/// copy the text to keep it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_last_error() -> *const c_char {
    status::last_error_ptr()
}

/// Loads a checkpoint (training-time checkpoints are re-parameterized; deployed ones run as
/// they are) and stores a new model in `*out`. `threads` 0 means one per core. Fails with
/// `IO` for a file that cannot be read, `CHECKPOINT` for one that is not a valid checkpoint.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `out` NULL or writable. On success the
/// caller owns `*out` and must release it with `reparam_model_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_model_load(
    path: *const c_char,
    threads: usize,
    out: *mut *mut ReparamModel,
) -> ReparamStatus {
    status::call("reparam_model_load", || {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: the caller guarantees `path` is NULL or a NUL-terminated string.
        let path = unsafe { c_path(path, "path") }?;
        let model = ReparamModel::load(&path, threads)?;
        // SAFETY: `out` is non-null (checked above) and writable (the caller's guarantee).
        unsafe { give(out, model) };
        Ok(())
    })
}

/// Creates the official architecture `model_name` (`"A0"`, `"RepVGG-B1g4"`, ...) with the
/// deterministic synthetic weights of `seed`, re-parameterized, and stores it in `*out`.
/// `threads` 0 means one per core. An unknown name is `INVALID_ARGUMENT`.
///
/// # Safety
/// `model_name` must be NULL or a NUL-terminated string; `out` NULL or writable. On success
/// the caller owns `*out` and must release it with `reparam_model_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_model_new_synthetic(
    model_name: *const c_char,
    seed: u64,
    threads: usize,
    out: *mut *mut ReparamModel,
) -> ReparamStatus {
    status::call("reparam_model_new_synthetic", || {
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: the caller guarantees `model_name` is NULL or a NUL-terminated string.
        let name = unsafe { text(model_name, "model_name") }?;
        let model = ReparamModel::synthetic(name, seed, threads)?;
        // SAFETY: `out` is non-null (checked above) and writable (the caller's guarantee).
        unsafe { give(out, model) };
        Ok(())
    })
}

/// Stores the number of classes (the length of one image's logits) in `*out`.
///
/// # Safety
/// `model` must be NULL or a live handle from `reparam_model_load`/`_new_synthetic`; `out`
/// NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_model_num_classes(
    model: *const ReparamModel,
    out: *mut usize,
) -> ReparamStatus {
    status::call("reparam_model_num_classes", || {
        // SAFETY: the caller guarantees `model` is NULL or a live handle.
        let model = unsafe { borrow(model, "model") }?;
        if out.is_null() {
            return Err(null("out"));
        }
        // SAFETY: `out` is non-null (checked above) and writable (the caller's guarantee).
        unsafe { store(out, model.num_classes()) };
        Ok(())
    })
}

/// Runs `n` images (NCHW f32, `n·c·h·w` floats at `input_nchw`) and writes `n·num_classes`
/// logits to the front of `logits` (which holds `logits_len` floats). The engine is prepared
/// for `h × w` on the first run and rebuilt when `h` or `w` changes. A buffer too small, a
/// size of zero, a wrong `c` or a non-finite input is `INVALID_ARGUMENT`.
///
/// # Safety
/// `model` must be NULL or a live handle not used by another thread during the call;
/// `input_nchw` NULL or `n·c·h·w` readable floats; `logits` NULL or `logits_len` writable
/// floats not overlapping the input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_model_run(
    model: *mut ReparamModel,
    input_nchw: *const f32,
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    logits: *mut f32,
    logits_len: usize,
) -> ReparamStatus {
    status::call("reparam_model_run", || {
        // SAFETY: the caller guarantees `model` is NULL or a live handle used only here.
        let model = unsafe { borrow_mut(model, "model") }?;
        let len = crate::check::buffer_len(&[("n", n), ("c", c), ("h", h), ("w", w)])?;
        // SAFETY: the caller guarantees `input_nchw` is NULL or `n·c·h·w` readable floats;
        // `buffer_len` checked that the count is addressable.
        let input = unsafe { floats(input_nchw, len, "input_nchw") }?;
        if logits.is_null() {
            return Err(null("logits"));
        }
        let values = model.run([n, c, h, w], input, logits_len)?;
        // SAFETY: `logits` is non-null (checked above) and, by the caller's guarantee, holds
        // `logits_len` ≥ `values.len()` (checked by `run`) writable floats apart from the
        // input; `values` is the model's own buffer.
        unsafe { write_floats(logits, values) };
        Ok(())
    })
}

/// Releases a model. NULL is a no-op.
///
/// # Safety
/// `model` must be NULL or a live handle, which is dangling afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_model_free(model: *mut ReparamModel) {
    if !model.is_null() {
        // SAFETY: a non-null `model` came from `Box::into_raw` in `give` and is freed once (the
        // caller's guarantee).
        let model = unsafe { Box::from_raw(model) };
        status::call("reparam_model_free", || {
            drop(model);
            Ok(())
        });
    }
}

/// Plans a 3x3 convolution layer and stores it in `*out`: `weight` holds
/// `out_channels · in_channels/groups · 9` floats (`[C_out, C_in/groups, 3, 3]`), `bias`
/// `out_channels` floats or is NULL (no bias). A bad field of `desc` is `INVALID_ARGUMENT`
/// naming it.
///
/// # Safety
/// `desc` must be NULL or a valid descriptor; `weight` NULL or that many readable floats;
/// `bias` NULL or `out_channels` readable floats; `out` NULL or writable. On success the caller
/// owns `*out` and must release it with `reparam_conv3x3_free`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_conv3x3_new(
    desc: *const ReparamConvDesc,
    weight: *const f32,
    bias: *const f32,
    out: *mut *mut ReparamConv3x3,
) -> ReparamStatus {
    status::call("reparam_conv3x3_new", || {
        // SAFETY: the caller guarantees `desc` is NULL or a valid descriptor.
        let desc = unsafe { borrow(desc, "desc") }?;
        if out.is_null() {
            return Err(null("out"));
        }
        let len = desc.weight_len()?;
        // SAFETY: the caller guarantees `weight` is NULL or `weight_len` readable floats, a
        // count `weight_len` checked to be addressable.
        let weight = unsafe { floats(weight, len, "weight") }?;
        let bias = if bias.is_null() {
            None
        } else {
            // SAFETY: non-null, so the caller guarantees `out_channels` readable floats
            // (`out_channels` ≤ the weight count, so addressable).
            Some(unsafe { floats(bias, desc.out_channels, "bias") }?)
        };
        let conv = ReparamConv3x3::new(desc, weight, bias)?;
        // SAFETY: `out` is non-null (checked above) and writable (the caller's guarantee).
        unsafe { give(out, conv) };
        Ok(())
    })
}

/// The output of a layer for an `n × in_channels × h × w` input: `*out_h`, `*out_w` and the
/// float count `*out_len = n · out_channels · out_h · out_w`. Any of the three may be NULL.
///
/// # Safety
/// `conv` must be NULL or a live handle; each out-pointer NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_conv3x3_output_size(
    conv: *const ReparamConv3x3,
    n: usize,
    h: usize,
    w: usize,
    out_h: *mut usize,
    out_w: *mut usize,
    out_len: *mut usize,
) -> ReparamStatus {
    status::call("reparam_conv3x3_output_size", || {
        // SAFETY: the caller guarantees `conv` is NULL or a live handle.
        let conv = unsafe { borrow(conv, "conv") }?;
        let ([_, _, oh, ow], len) = conv.output_shape(n, h, w)?;
        for (ptr, value) in [(out_h, oh), (out_w, ow), (out_len, len)] {
            if !ptr.is_null() {
                // SAFETY: non-null, so writable (the caller's guarantee).
                unsafe { store(ptr, value) };
            }
        }
        Ok(())
    })
}

/// Runs the layer on `n` images (NCHW f32, `n·in_channels·h·w` floats at `input_nchw`) and
/// writes the NCHW output to the front of `output` (`output_len` floats, at least the count of
/// `reparam_conv3x3_output_size`). A handle may run on several threads at once.
///
/// # Safety
/// `conv` must be NULL or a live handle; `input_nchw` NULL or `n·in_channels·h·w` readable
/// floats; `output` NULL or `output_len` writable floats not overlapping the input.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_conv3x3_run(
    conv: *const ReparamConv3x3,
    input_nchw: *const f32,
    n: usize,
    h: usize,
    w: usize,
    output: *mut f32,
    output_len: usize,
) -> ReparamStatus {
    status::call("reparam_conv3x3_run", || {
        // SAFETY: the caller guarantees `conv` is NULL or a live handle.
        let conv = unsafe { borrow(conv, "conv") }?;
        let (_, len) = conv.input_shape(n, h, w)?;
        // SAFETY: the caller guarantees `input_nchw` is NULL or `n·in_channels·h·w` readable
        // floats, a count `input_shape` checked to be addressable.
        let input = unsafe { floats(input_nchw, len, "input_nchw") }?;
        if output.is_null() {
            return Err(null("output"));
        }
        let values = conv.run([n, h, w], input, output_len)?;
        // SAFETY: `output` is non-null (checked above) and, by the caller's guarantee, holds
        // `output_len` ≥ `values.len()` (checked by `run`) writable floats; `values` is a new
        // tensor.
        unsafe { write_floats(output, values.data()) };
        Ok(())
    })
}

/// Releases a layer. NULL is a no-op.
///
/// # Safety
/// `conv` must be NULL or a live handle, which is dangling afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn reparam_conv3x3_free(conv: *mut ReparamConv3x3) {
    if !conv.is_null() {
        // SAFETY: a non-null `conv` came from `Box::into_raw` in `give` and is freed once (the
        // caller's guarantee).
        let conv = unsafe { Box::from_raw(conv) };
        status::call("reparam_conv3x3_free", || {
            drop(conv);
            Ok(())
        });
    }
}
