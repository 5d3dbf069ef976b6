//! The exported functions. Each checks its pointers, then calls the typed
//! code in `model` and `session` under `status::guard`.
//!
//! Conventions the header repeats per function:
//! - Ownership: a handle made by `sqz_*_load*`, `sqz_session_create` or
//!   `sqz_session_run_owned` belongs to the caller until its `*_free`.
//!   Pointers a getter returns are owned by the handle and live as long as it.
//! - Threads: models and outputs are immutable and may be shared by any
//!   number of threads; a session is entered by one thread at a time, and a
//!   second thread meanwhile gets `SQZ_STATUS_BUSY`.
//! - Errors: on any status but `SQZ_STATUS_OK`, `sqz_last_error` (of the calling
//!   thread) says why, and out-parameters are left untouched.

use std::ffi::{c_char, c_int, CStr};
use std::sync::Arc;

use squeeze::Model;

use crate::frame::{self, SqzFrame, SqzFrameOptions};
use crate::model::{
    self, SqzBufferMode, SqzLoadOptions, SqzModel, SqzModelMetadata, SqzTensorInfo,
};
use crate::session::{SqzInput, SqzOutput, SqzOutputs, SqzSession, SqzTensorView};
use crate::status::{self, guard, Failure, Outcome, SqzStatus};

/// The handle behind a pointer from C.
///
/// # Safety
/// `ptr` must be NULL or point at a live `T` made by this library.
unsafe fn handle<'a, T>(ptr: *const T, what: &str) -> Outcome<&'a T> {
    // SAFETY: forwarded from this function's contract.
    unsafe { ptr.as_ref() }.ok_or_else(|| Failure::null(what))
}

/// Checks an out-pointer before any work is done for it.
fn out_ptr<T>(ptr: *mut T, what: &str) -> Outcome<*mut T> {
    if ptr.is_null() {
        return Err(Failure::null(what));
    }
    Ok(ptr)
}

/// Writes a result through a checked out-pointer.
///
/// # Safety
/// `out` must be valid for a write of `T`.
unsafe fn put<T>(out: *mut T, value: T) {
    // SAFETY: forwarded from this function's contract.
    unsafe { out.write(value) }
}

/// `n` items from C; NULL is allowed for none.
///
/// # Safety
/// A non-NULL `ptr` must point at `n` readable items.
unsafe fn items<'a, T>(ptr: *const T, n: usize, what: &str) -> Outcome<&'a [T]> {
    match (ptr.is_null(), n) {
        (true, 0) => Ok(&[]),
        (true, _) => Err(Failure::null(what)),
        // SAFETY: forwarded from this function's contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(ptr, n) }),
    }
}

/// Releases a handle made by `Box::into_raw`; NULL is a no-op.
///
/// # Safety
/// `ptr` must be NULL or a live handle of this library not yet freed.
unsafe fn release<T>(ptr: *mut T) {
    if !ptr.is_null() {
        // SAFETY: forwarded from this function's contract; the handle was
        // made by `Box::into_raw` and is dropped exactly once.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe {
            drop(Box::from_raw(ptr))
        }));
    }
}

/// Loads a model and hands the caller its handle.
fn hand_out_model(out: *mut *mut SqzModel, load: impl FnOnce() -> Outcome<SqzModel>) -> SqzStatus {
    guard(
        || {},
        || {
            let out = out_ptr(out, "out")?;
            let model = load()?;
            // SAFETY: `out` is non-null and the caller's writable slot.
            unsafe { put(out, Box::into_raw(Box::new(model))) };
            Ok(())
        },
    )
}

/// Runs `body` on a model handle; a panic poisons it.
fn on_model(m: *const SqzModel, body: impl FnOnce(&SqzModel) -> Outcome) -> SqzStatus {
    // SAFETY: the caller passes NULL or a live model handle (header contract).
    let model = match unsafe { handle(m, "model") } {
        Ok(model) => model,
        Err(failure) => return guard(|| {}, || Err(failure)),
    };
    guard(
        || model.poison(),
        || {
            model.check_usable()?;
            body(model)
        },
    )
}

/// Runs `body` on a session handle, entered by this thread alone.
fn on_session(
    s: *const SqzSession,
    body: impl FnOnce(&SqzSession, &mut crate::session::Running) -> Outcome,
) -> SqzStatus {
    guard(
        || {},
        || {
            // SAFETY: the caller passes NULL or a live session (header contract).
            let session = unsafe { handle(s, "session")? };
            session.enter(|running| body(session, running))
        },
    )
}

/// The library's version, e.g. `"0.1.0"`: a static string, never freed.
#[no_mangle]
pub extern "C" fn sqz_version() -> *const c_char {
    concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast()
}

/// The calling thread's last error message (empty if none yet): owned by
/// the library, valid until the next failing call on this thread.
#[no_mangle]
pub extern "C" fn sqz_last_error() -> *const c_char {
    status::last_error_ptr()
}

/// Copies the calling thread's last error message into `buffer` (at most
/// `capacity` bytes, always NUL-terminated when `capacity` > 0) and returns
/// its full length without the NUL: a result ≥ `capacity` means it was cut.
/// `buffer` may be NULL when `capacity` is 0.
///
/// # Safety
/// `buffer` must be NULL or point at `capacity` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn sqz_last_error_copy(buffer: *mut c_char, capacity: usize) -> usize {
    let text = status::last_error_bytes();
    if !buffer.is_null() && capacity > 0 {
        let n = text.len().min(capacity - 1);
        // SAFETY: `buffer` holds `capacity` > n bytes (caller's contract);
        // the source is our own vector, so the ranges cannot overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr().cast::<c_char>(), buffer, n);
            buffer.add(n).write(0);
        }
    }
    text.len()
}

/// Loads the model file at `path` (NUL-terminated UTF-8): a `.sqz` is
/// memory-mapped, its weights used in place. `options` may be NULL for the
/// defaults. On success `*out` is a new model for `sqz_model_free`.
/// Errors: `SQZ_STATUS_NULL_POINTER`, `SQZ_STATUS_IO`, `SQZ_STATUS_INVALID_MODEL`,
/// `SQZ_STATUS_UNSUPPORTED`, `SQZ_STATUS_INVALID_ARGUMENT`.
///
/// # Safety
/// `path` must be NULL or a NUL-terminated string; `options` NULL or valid;
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_load_path(
    path: *const c_char,
    options: *const SqzLoadOptions,
    out: *mut *mut SqzModel,
) -> SqzStatus {
    hand_out_model(out, || {
        if path.is_null() {
            return Err(Failure::null("path"));
        }
        // SAFETY: non-null and NUL-terminated (caller's contract).
        let path = model::path_arg(unsafe { CStr::from_ptr(path) })?;
        // SAFETY: NULL or a valid options struct (caller's contract).
        let opts = model::load_options(unsafe { options.as_ref() })?;
        model::load_path(path, &opts)
    })
}

/// A caller's buffer lent to a model for its whole life (`SQZ_BUFFER_MODE_BORROW`).
struct BorrowedBytes {
    data: *const u8,
    len: usize,
}

// SAFETY: the bytes are only read, and the caller keeps them alive and
// unchanged while any model or session uses them (the borrow contract).
unsafe impl Send for BorrowedBytes {}
// SAFETY: as above: shared reads of memory nobody writes.
unsafe impl Sync for BorrowedBytes {}

impl AsRef<[u8]> for BorrowedBytes {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `data` is non-null with `len` readable bytes for as long
        // as this value lives (checked at construction; the borrow contract).
        unsafe { std::slice::from_raw_parts(self.data, self.len) }
    }
}

/// Loads a `.sqz` held in memory: `length` bytes at `data`. `mode` is an
/// `SqzBufferMode`: `SQZ_BUFFER_MODE_COPY` copies what the model keeps (the
/// buffer may be freed on return); `SQZ_BUFFER_MODE_BORROW` uses the weights in
/// place, and the buffer must then stay alive and unchanged until the model
/// and all its sessions are freed. `options` may be NULL.
/// Errors: as `sqz_model_load_path`.
///
/// # Safety
/// `data` must be NULL or point at `length` readable bytes (for the model's
/// life when borrowed); `options` NULL or valid; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_load_buffer(
    data: *const u8,
    length: usize,
    mode: u32,
    options: *const SqzLoadOptions,
    out: *mut *mut SqzModel,
) -> SqzStatus {
    hand_out_model(out, || {
        if data.is_null() {
            return Err(Failure::null("data"));
        }
        // SAFETY: NULL or a valid options struct (caller's contract).
        let opts = model::load_options(unsafe { options.as_ref() })?;
        let loaded = match SqzBufferMode::from_code(mode, "mode")? {
            SqzBufferMode::Copy => {
                // SAFETY: non-null with `length` readable bytes during the call.
                let bytes = unsafe { std::slice::from_raw_parts(data, length) };
                Model::from_sqz_bytes(bytes, &opts)?
            }
            SqzBufferMode::Borrow => {
                Model::from_sqz_shared(Arc::new(BorrowedBytes { data, len: length }), &opts)?
            }
        };
        Ok(SqzModel::new(loaded))
    })
}

/// Loads a `.sqz` stored in `length` bytes of the open file `fd` from
/// `offset` (`length` 0: to the end of the file) by mapping that region:
/// how an Android app reads a model stored uncompressed in its APK through
/// `AssetFileDescriptor` (`getParcelFileDescriptor().getFd()`,
/// `getStartOffset()`, `getLength()`), without copying it. The descriptor
/// stays the caller's: it is neither closed nor kept, and may be closed on
/// return. `options` may be NULL. Errors: as `sqz_model_load_path`, and
/// `SQZ_STATUS_INVALID_ARGUMENT` for a negative descriptor or a region outside
/// the file; `SQZ_STATUS_UNSUPPORTED` where descriptors are not files.
///
/// # Safety
/// `fd` must be an open descriptor or negative; `options` NULL or valid;
/// `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_load_fd(
    fd: c_int,
    offset: u64,
    length: u64,
    options: *const SqzLoadOptions,
    out: *mut *mut SqzModel,
) -> SqzStatus {
    hand_out_model(out, || {
        if fd < 0 {
            return Err(Failure::invalid(format!("file descriptor {fd}")));
        }
        // SAFETY: NULL or a valid options struct (caller's contract).
        let opts = model::load_options(unsafe { options.as_ref() })?;
        #[cfg(unix)]
        {
            use std::os::fd::BorrowedFd;
            // SAFETY: `fd` is open for the duration of this call (caller's
            // contract); it is duplicated, so the caller's stays untouched.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let file = std::fs::File::from(
                borrowed
                    .try_clone_to_owned()
                    .map_err(|e| Failure::new(SqzStatus::Io, format!("descriptor {fd}: {e}")))?,
            );
            model::load_region(&file, offset, length, &opts)
        }
        #[cfg(not(unix))]
        {
            let _ = (offset, length, opts);
            Err(Failure::new(
                SqzStatus::Unsupported,
                "file descriptors are Unix-only",
            ))
        }
    })
}

/// Frees a model; NULL is a no-op. Sessions made from it stay usable (they
/// share what they need) and are freed on their own.
///
/// # Safety
/// `model` must be NULL or a live model not yet freed, used by no other
/// call at the time.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_free(model: *mut SqzModel) {
    // SAFETY: forwarded from this function's contract.
    unsafe { release(model) }
}

/// How many inputs (`outputs` false) or outputs (`outputs` true) the model
/// has, into `*count`. Thread-safe. Errors: `SQZ_STATUS_NULL_POINTER`.
///
/// # Safety
/// `model` must be NULL or a live model; `count` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_port_count(
    model: *const SqzModel,
    outputs: bool,
    count: *mut usize,
) -> SqzStatus {
    on_model(model, |m| {
        let count = out_ptr(count, "count")?;
        let n = m.loaded.ports(outputs).len();
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(count, n) };
        Ok(())
    })
}

/// Name, element type, shape and byte size of input (`outputs` false) or
/// output (`outputs` true) number `index`, into `*info`; its pointers are
/// the model's, valid until `sqz_model_free`. Thread-safe.
/// Errors: `SQZ_STATUS_NULL_POINTER`, `SQZ_STATUS_INVALID_ARGUMENT` (index).
///
/// # Safety
/// `model` must be NULL or a live model; `info` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_port_info(
    model: *const SqzModel,
    outputs: bool,
    index: usize,
    info: *mut SqzTensorInfo,
) -> SqzStatus {
    on_model(model, |m| {
        let info = out_ptr(info, "info")?;
        let port = m.loaded.ports(outputs).get(index).ok_or_else(|| {
            let side = if outputs { "output" } else { "input" };
            Failure::invalid(format!("no {side} {index}"))
        })?;
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(info, port.c_info()) };
        Ok(())
    })
}

/// The metadata the packer recorded (name, version, producer, label
/// count), into `*metadata`; strings are the model's. Thread-safe.
/// Errors: `SQZ_STATUS_NULL_POINTER`.
///
/// # Safety
/// `model` must be NULL or a live model; `metadata` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_metadata(
    model: *const SqzModel,
    metadata: *mut SqzModelMetadata,
) -> SqzStatus {
    on_model(model, |m| {
        let metadata = out_ptr(metadata, "metadata")?;
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(metadata, m.metadata()) };
        Ok(())
    })
}

/// Class label number `index` (NUL-terminated UTF-8, the model's), into
/// `*label`. Thread-safe. Errors: `SQZ_STATUS_NULL_POINTER`,
/// `SQZ_STATUS_INVALID_ARGUMENT` (index).
///
/// # Safety
/// `model` must be NULL or a live model; `label` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_model_label(
    model: *const SqzModel,
    index: usize,
    label: *mut *const c_char,
) -> SqzStatus {
    on_model(model, |m| {
        let label = out_ptr(label, "label")?;
        let text = m.label(index)?;
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(label, text) };
        Ok(())
    })
}

/// A new session of `model`: its own activation memory and worker threads.
/// Any number of sessions may run one model at once, one per thread.
/// On success `*out` is for `sqz_session_free`.
/// Errors: `SQZ_STATUS_NULL_POINTER`, `SQZ_STATUS_POISONED`.
///
/// # Safety
/// `model` must be NULL or a live model; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_session_create(
    model: *const SqzModel,
    out: *mut *mut SqzSession,
) -> SqzStatus {
    on_model(model, |m| {
        let out = out_ptr(out, "out")?;
        let session = SqzSession::new(&m.loaded)?;
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(out, Box::into_raw(Box::new(session))) };
        Ok(())
    })
}

/// Frees a session; NULL is a no-op.
///
/// # Safety
/// `session` must be NULL or a live session not yet freed, used by no
/// other call at the time.
#[no_mangle]
pub unsafe extern "C" fn sqz_session_free(session: *mut SqzSession) {
    // SAFETY: forwarded from this function's contract.
    unsafe { release(session) }
}

/// Runs the model on `inputs` (one per model input, in order) and writes
/// each output into the caller's buffer in `outputs` (one per model output;
/// a NULL `data` skips it). Nothing is allocated after the first run; the
/// only copies are the inputs into the session and the outputs out of it.
/// Errors: `SQZ_STATUS_NULL_POINTER`, `SQZ_STATUS_INVALID_ARGUMENT` (counts),
/// `SQZ_STATUS_DTYPE`, `SQZ_STATUS_BUFFER_SIZE`, `SQZ_STATUS_BUSY` (another thread
/// is in this session), `SQZ_STATUS_POISONED`.
///
/// # Safety
/// `session` must be NULL or a live session; `inputs` and `outputs` NULL or
/// arrays of their counts, whose buffers hold `byte_len` readable
/// (inputs) or writable (outputs) bytes.
#[no_mangle]
pub unsafe extern "C" fn sqz_session_run(
    session: *const SqzSession,
    inputs: *const SqzInput,
    input_count: usize,
    outputs: *const SqzOutput,
    output_count: usize,
) -> SqzStatus {
    on_session(session, |s, running| {
        // SAFETY: arrays of their counts (caller's contract).
        let (inputs, outputs) = unsafe {
            (
                items(inputs, input_count, "inputs")?,
                items(outputs, output_count, "outputs")?,
            )
        };
        // SAFETY: each buffer holds its `byte_len` bytes (caller's contract).
        unsafe {
            running.write_inputs(&s.loaded.inputs, inputs)?;
            running.run_into(&s.loaded.outputs, outputs)
        }
    })
}

/// Runs the model on `inputs` and returns outputs the library owns in
/// `*out`: read them with `sqz_outputs_get`, free them with
/// `sqz_outputs_free`. Errors: as `sqz_session_run`.
///
/// # Safety
/// As `sqz_session_run`; `out` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_session_run_owned(
    session: *const SqzSession,
    inputs: *const SqzInput,
    input_count: usize,
    out: *mut *mut SqzOutputs,
) -> SqzStatus {
    on_session(session, |s, running| {
        let out = out_ptr(out, "out")?;
        // SAFETY: an array of its count (caller's contract).
        let inputs = unsafe { items(inputs, input_count, "inputs")? };
        // SAFETY: each buffer holds its `byte_len` bytes (caller's contract).
        unsafe { running.write_inputs(&s.loaded.inputs, inputs)? };
        let outputs = running.run_owned(&s.loaded.outputs)?;
        // SAFETY: checked non-null, the caller's writable slot.
        unsafe { put(out, Box::into_raw(Box::new(outputs))) };
        Ok(())
    })
}

/// Runs the model on a camera frame: converts `frame` (cropped, rotated,
/// mirrored and resized per `options`, which may be NULL) straight into the
/// model's one image input with the preprocessing recorded in the `.sqz`,
/// then writes the outputs as `sqz_session_run` does. The frame is read in
/// place. Errors: as `sqz_session_run`, and `SQZ_STATUS_FRAME` for planes,
/// strides or a crop that do not fit the frame, `SQZ_STATUS_INVALID_ARGUMENT`
/// for a model without exactly one `[1,3,H,W]`/`[1,H,W,3]` f32 input.
///
/// # Safety
/// `session` must be NULL or a live session; `frame` NULL or a frame whose
/// planes hold their `byte_len` readable bytes; `options` NULL or valid;
/// `outputs` as in `sqz_session_run`.
#[no_mangle]
pub unsafe extern "C" fn sqz_session_run_frame(
    session: *const SqzSession,
    frame: *const SqzFrame,
    options: *const SqzFrameOptions,
    outputs: *const SqzOutput,
    output_count: usize,
) -> SqzStatus {
    on_session(session, |s, running| {
        // SAFETY: NULL or a valid frame, options and output array (caller's contract).
        let (c_frame, options, outputs) = unsafe {
            (
                handle(frame, "frame")?,
                options.as_ref(),
                items(outputs, output_count, "outputs")?,
            )
        };
        // SAFETY: the planes hold their `byte_len` bytes (caller's contract).
        let frame = unsafe { frame::frame(c_frame)? };
        let opts = frame::options(options)?;
        running.write_frame(&s.loaded, &frame, &opts)?;
        // SAFETY: each output buffer holds its `byte_len` bytes (caller's contract).
        unsafe { running.run_into(&s.loaded.outputs, outputs) }
    })
}

/// How many tensors `outputs` holds, into `*count`.
/// Errors: `SQZ_STATUS_NULL_POINTER`.
///
/// # Safety
/// `outputs` must be NULL or live; `count` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_outputs_count(
    outputs: *const SqzOutputs,
    count: *mut usize,
) -> SqzStatus {
    guard(
        || {},
        || {
            // SAFETY: NULL or live outputs (caller's contract).
            let outputs = unsafe { handle(outputs, "outputs")? };
            let count = out_ptr(count, "count")?;
            // SAFETY: checked non-null, the caller's writable slot.
            unsafe { put(count, outputs.tensors.len()) };
            Ok(())
        },
    )
}

/// Output number `index` of `outputs` into `*view`; its pointers are owned
/// by `outputs` and valid until `sqz_outputs_free`.
/// Errors: `SQZ_STATUS_NULL_POINTER`, `SQZ_STATUS_INVALID_ARGUMENT` (index).
///
/// # Safety
/// `outputs` must be NULL or live; `view` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn sqz_outputs_get(
    outputs: *const SqzOutputs,
    index: usize,
    view: *mut SqzTensorView,
) -> SqzStatus {
    guard(
        || {},
        || {
            // SAFETY: NULL or live outputs (caller's contract).
            let outputs = unsafe { handle(outputs, "outputs")? };
            let view = out_ptr(view, "view")?;
            let v = outputs.view(index)?;
            // SAFETY: checked non-null, the caller's writable slot.
            unsafe { put(view, v) };
            Ok(())
        },
    )
}

/// Frees outputs of `sqz_session_run_owned`; NULL is a no-op.
///
/// # Safety
/// `outputs` must be NULL or live and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sqz_outputs_free(outputs: *mut SqzOutputs) {
    // SAFETY: forwarded from this function's contract.
    unsafe { release(outputs) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SqzModel;

    /// A one-node model (Relu on 1x4) built in memory: no file, no ONNX import.
    fn relu_model() -> *mut SqzModel {
        use squeeze::ir::{Graph, Node, Op, TypeInfo, UnaryOp};
        let mut graph = Graph::default();
        let x = graph.add_value("x", TypeInfo::f32(vec![1, 4]));
        let y = graph.add_value("y", TypeInfo::f32(vec![1, 4]));
        graph.nodes.push(Node {
            name: "relu".into(),
            op: Op::Unary(UnaryOp::Relu),
            inputs: vec![x],
            outputs: vec![y],
        });
        graph.inputs.push(x);
        graph.outputs.push(y);
        let model = Model::from_graph(graph, &Default::default(), Default::default())
            .expect("a one-node model");
        Box::into_raw(Box::new(SqzModel::new(model)))
    }

    #[test]
    fn a_panic_inside_a_session_poisons_it_and_only_it() {
        let model = relu_model();
        let mut first = std::ptr::null_mut();
        let mut second = std::ptr::null_mut();
        // SAFETY: a live model and writable out slots.
        unsafe {
            assert_eq!(sqz_session_create(model, &mut first), SqzStatus::Ok);
            assert_eq!(sqz_session_create(model, &mut second), SqzStatus::Ok);
        }
        let status = on_session(first, |_, _| panic!("injected"));
        assert_eq!(status, SqzStatus::Panic);
        assert_eq!(on_session(first, |_, _| Ok(())), SqzStatus::Poisoned);
        assert_eq!(on_session(second, |_, _| Ok(())), SqzStatus::Ok);
        let status = on_model(model, |_| panic!("injected"));
        assert_eq!(status, SqzStatus::Panic);
        let mut count = 0;
        // SAFETY: a live (poisoned) model and a writable slot.
        let status = unsafe { sqz_model_port_count(model, false, &mut count) };
        assert_eq!(status, SqzStatus::Poisoned);
        // SAFETY: each handle is live and freed once.
        unsafe {
            sqz_session_free(first);
            sqz_session_free(second);
            sqz_model_free(model);
        }
    }
}
