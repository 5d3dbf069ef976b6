//! Session handles: one arena and its threads per handle, entered by one
//! thread at a time. A second thread gets `SQZ_STATUS_BUSY`, never a data race.

use std::sync::{Arc, Mutex, TryLockError};

use squeeze::frame::{Frame, FrameConverter, FrameOptions};
use squeeze::{Session, Tensor};

use crate::model::{Loaded, Port, SqzDtype};
use crate::status::{Failure, Outcome, SqzStatus};

/// A tensor the caller passes in: `byte_len` bytes at `data`, of element
/// type `dtype` (an `SqzDtype`), in native byte order, densely packed.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzInput {
    pub dtype: u32,
    pub data: *const std::ffi::c_void,
    pub byte_len: usize,
}

/// A buffer the caller lends for an output: `byte_len` writable bytes at
/// `data`. A NULL `data` skips that output.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzOutput {
    pub dtype: u32,
    pub data: *mut std::ffi::c_void,
    pub byte_len: usize,
}

/// One output of `sqz_session_run_owned`, owned by its `SqzOutputs`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzTensorView {
    pub dtype: SqzDtype,
    pub rank: usize,
    pub shape: *const usize,
    pub data: *const std::ffi::c_void,
    pub byte_len: usize,
}

/// Outputs the library owns (opaque to C); freed with `sqz_outputs_free`.
pub struct SqzOutputs {
    pub(crate) tensors: Vec<Tensor>,
}

/// What one thread at a time may touch.
pub(crate) struct Running {
    pub session: Session,
    /// The frame converter of input 0, made at the first frame.
    pub converter: Option<FrameConverter>,
}

/// A session (opaque to C).
pub struct SqzSession {
    pub(crate) loaded: Arc<Loaded>,
    /// `try_lock` gives the busy status; a panic while held poisons it,
    /// and so the handle.
    pub(crate) running: Mutex<Running>,
}

impl SqzSession {
    pub(crate) fn new(loaded: &Arc<Loaded>) -> Outcome<SqzSession> {
        Ok(SqzSession {
            running: Mutex::new(Running {
                session: loaded.model.session()?,
                converter: None,
            }),
            loaded: Arc::clone(loaded),
        })
    }

    /// Enters the session unless another thread is in it or it panicked.
    pub(crate) fn enter<T>(&self, body: impl FnOnce(&mut Running) -> Outcome<T>) -> Outcome<T> {
        let mut running = match self.running.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::WouldBlock) => {
                return Err(Failure::new(
                    SqzStatus::Busy,
                    "the session is running on another thread",
                ))
            }
            Err(TryLockError::Poisoned(_)) => {
                return Err(Failure::new(
                    SqzStatus::Poisoned,
                    "the session handle is poisoned",
                ))
            }
        };
        body(&mut running)
    }
}

/// Checks a caller's buffer against the port it is for.
fn check_buffer(port: &Port, dtype: u32, byte_len: usize, what: &str) -> Outcome {
    let want = SqzDtype::from(port.info.dtype);
    let given = SqzDtype::from_code(dtype, "dtype")?;
    if given != want {
        return Err(Failure::new(
            SqzStatus::Dtype,
            format!(
                "{what} {:?} is {want:?}, the buffer says {given:?}",
                port.info.name
            ),
        ));
    }
    if byte_len != port.byte_len {
        return Err(Failure::new(
            SqzStatus::BufferSize,
            format!(
                "{what} {:?} takes {} bytes, the buffer has {byte_len}",
                port.info.name, port.byte_len
            ),
        ));
    }
    Ok(())
}

/// A byte slice the caller passed in.
///
/// # Safety
/// `data` must point at `len` readable bytes for the borrow's life.
unsafe fn input_bytes<'a>(
    data: *const std::ffi::c_void,
    len: usize,
    what: &str,
) -> Outcome<&'a [u8]> {
    if data.is_null() {
        return Err(Failure::null(what));
    }
    // SAFETY: non-null, and the caller vouches for `len` readable bytes.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

impl Running {
    /// Copies the caller's inputs into the arena.
    ///
    /// # Safety
    /// Each input's `data` must point at its `byte_len` readable bytes.
    pub unsafe fn write_inputs(&mut self, ports: &[Port], inputs: &[SqzInput]) -> Outcome {
        if inputs.len() != ports.len() {
            return Err(Failure::invalid(format!(
                "the model takes {} inputs, {} were given",
                ports.len(),
                inputs.len()
            )));
        }
        for (i, (port, input)) in ports.iter().zip(inputs).enumerate() {
            check_buffer(port, input.dtype, input.byte_len, "input")?;
            // SAFETY: forwarded from this function's contract.
            let src = unsafe { input_bytes(input.data, input.byte_len, "an input's data")? };
            let mut dst = self.session.input_bytes_mut(i)?;
            // An input the graph never reads has no room in the arena; the
            // others have exactly `byte_len` bytes (checked above).
            if !dst.is_empty() {
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }

    /// Converts a frame straight into input 0.
    pub fn write_frame(&mut self, loaded: &Loaded, frame: &Frame, opts: &FrameOptions) -> Outcome {
        if loaded.inputs.len() != 1 {
            return Err(Failure::invalid(format!(
                "frames go to a model with one image input; this one has {}",
                loaded.inputs.len()
            )));
        }
        let converter = match &mut self.converter {
            Some(c) => c,
            empty => empty.insert(loaded.model.frame_converter(0, None)?),
        };
        Ok(self.session.write_frame(0, converter, frame, opts)?)
    }

    /// Runs on the inputs in the arena and copies outputs into the caller's
    /// buffers (the only copy: the arena is reused by the next run).
    ///
    /// # Safety
    /// Each output's non-NULL `data` must point at `byte_len` writable bytes.
    pub unsafe fn run_into(&mut self, ports: &[Port], outputs: &[SqzOutput]) -> Outcome {
        if outputs.len() != ports.len() {
            return Err(Failure::invalid(format!(
                "the model has {} outputs, {} buffers were given",
                ports.len(),
                outputs.len()
            )));
        }
        for (port, out) in ports.iter().zip(outputs) {
            if !out.data.is_null() {
                check_buffer(port, out.dtype, out.byte_len, "output")?;
            }
        }
        self.session.run_in_place()?;
        for (i, out) in outputs.iter().enumerate() {
            if out.data.is_null() {
                continue;
            }
            let src = self.session.output_bytes(i)?;
            // SAFETY: non-null, `byte_len` equals the output's size (checked
            // above), and the caller vouches for that many writable bytes
            // that do not overlap the library's own memory.
            let dst =
                unsafe { std::slice::from_raw_parts_mut(out.data.cast::<u8>(), out.byte_len) };
            dst.copy_from_slice(&src);
        }
        Ok(())
    }

    /// Runs on the inputs in the arena; outputs the library owns.
    pub fn run_owned(&mut self, ports: &[Port]) -> Outcome<SqzOutputs> {
        self.session.run_in_place()?;
        let tensors = ports
            .iter()
            .enumerate()
            .map(|(i, port)| {
                let bytes = self.session.output_bytes(i)?;
                Ok(Tensor::from_le_bytes(
                    port.info.dtype,
                    port.info.shape.clone(),
                    &bytes,
                )?)
            })
            .collect::<Outcome<Vec<Tensor>>>()?;
        Ok(SqzOutputs { tensors })
    }
}

impl SqzOutputs {
    pub(crate) fn view(&self, index: usize) -> Outcome<SqzTensorView> {
        let t = self
            .tensors
            .get(index)
            .ok_or_else(|| Failure::invalid(format!("no output {index}")))?;
        let bytes = t.as_bytes();
        Ok(SqzTensorView {
            dtype: t.dtype().into(),
            rank: t.shape().len(),
            shape: t.shape().as_ptr(),
            data: bytes.as_ptr().cast(),
            byte_len: bytes.len(),
        })
    }
}
