//! Model handles: loading (path, buffer, file descriptor) and what a model
//! says about itself. A model is immutable once loaded, so one handle may be
//! read from any number of threads at once.

use std::ffi::{c_char, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use squeeze::exec::kernels::Isa;
use squeeze::{DType, IoInfo, LoadOptions, Model};

use crate::status::{Failure, Outcome, SqzStatus};

/// Element types of tensors.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzDtype {
    F32 = 0,
    I64 = 1,
    U8 = 2,
    I8 = 3,
    I32 = 4,
}

from_code!(SqzDtype: F32, I64, U8, I8, I32);

impl From<DType> for SqzDtype {
    fn from(d: DType) -> SqzDtype {
        match d {
            DType::F32 => SqzDtype::F32,
            DType::I64 => SqzDtype::I64,
            DType::U8 => SqzDtype::U8,
            DType::I8 => SqzDtype::I8,
            DType::I32 => SqzDtype::I32,
        }
    }
}

/// Instruction sets a model's kernels may be forced to.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzIsa {
    /// The best the CPU has (or the `SQUEEZE_ISA` environment variable's).
    Auto = 0,
    Scalar = 1,
    Avx2 = 2,
    Avx512 = 3,
    Neon = 4,
}

from_code!(SqzIsa: Auto, Scalar, Avx2, Avx512, Neon);

/// How to load a model. Zero-initialised, it means the defaults.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzLoadOptions {
    /// Worker threads per session; 0: the available parallelism, at most 4.
    pub threads: u32,
    /// An `SqzIsa`.
    pub isa: u32,
    /// Check the whole-file SHA-256 too (per-section checksums always run):
    /// for models downloaded at run time.
    pub verify_sha256: bool,
}

/// Whether a memory buffer is copied or borrowed by `sqz_model_load_buffer`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzBufferMode {
    /// The library copies what it keeps; the buffer may be freed on return.
    Copy = 0,
    /// The library keeps pointers into the buffer (weights used in place):
    /// it must stay alive and unchanged until the model and every session
    /// made from it are freed.
    Borrow = 1,
}

from_code!(SqzBufferMode: Copy, Borrow);

/// Name, element type and shape of an input or output. The pointers are
/// owned by the model and valid until `sqz_model_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzTensorInfo {
    /// NUL-terminated UTF-8.
    pub name: *const c_char,
    pub dtype: SqzDtype,
    pub rank: usize,
    /// `rank` dimensions.
    pub shape: *const usize,
    /// Bytes a buffer for this tensor must have: elements × element size.
    pub byte_len: usize,
}

/// What the packer recorded about the model. Strings are NUL-terminated
/// UTF-8 owned by the model (empty when not recorded), valid until
/// `sqz_model_free`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzModelMetadata {
    pub name: *const c_char,
    pub version: *const c_char,
    pub producer: *const c_char,
    /// Class labels, read one by one with `sqz_model_label`.
    pub label_count: usize,
}

/// An input or output as the C side sees it, with its strings kept alive.
pub(crate) struct Port {
    pub info: IoInfo,
    name: CString,
    pub byte_len: usize,
}

impl Port {
    fn new(info: IoInfo) -> Port {
        let name = c_string(&info.name);
        let numel: usize = info.shape.iter().product();
        Port {
            byte_len: numel * info.dtype.size(),
            name,
            info,
        }
    }

    pub fn c_info(&self) -> SqzTensorInfo {
        SqzTensorInfo {
            name: self.name.as_ptr(),
            dtype: self.info.dtype.into(),
            rank: self.info.shape.len(),
            shape: self.info.shape.as_ptr(),
            byte_len: self.byte_len,
        }
    }
}

fn c_string(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

/// The model every handle and session shares.
pub(crate) struct Loaded {
    pub model: Model,
    pub inputs: Vec<Port>,
    pub outputs: Vec<Port>,
    name: CString,
    version: CString,
    producer: CString,
    labels: Vec<CString>,
}

/// A loaded model (opaque to C).
pub struct SqzModel {
    pub(crate) loaded: Arc<Loaded>,
    /// Set when a call on this handle panicked: it refuses further use.
    pub(crate) poisoned: AtomicBool,
}

impl SqzModel {
    pub(crate) fn new(model: Model) -> SqzModel {
        let meta = model
            .package()
            .map(|p| p.metadata.clone())
            .unwrap_or_default();
        let loaded = Loaded {
            inputs: model.inputs().into_iter().map(Port::new).collect(),
            outputs: model.outputs().into_iter().map(Port::new).collect(),
            name: c_string(&meta.name),
            version: c_string(&meta.version),
            producer: c_string(&meta.producer),
            labels: meta.labels.iter().map(|l| c_string(l)).collect(),
            model,
        };
        SqzModel {
            loaded: Arc::new(loaded),
            poisoned: AtomicBool::new(false),
        }
    }

    /// Refuses a handle that panicked before.
    pub(crate) fn check_usable(&self) -> Outcome {
        if self.poisoned.load(Ordering::Acquire) {
            return Err(Failure::new(
                SqzStatus::Poisoned,
                "the model handle is poisoned",
            ));
        }
        Ok(())
    }

    pub(crate) fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    pub(crate) fn metadata(&self) -> SqzModelMetadata {
        let l = &self.loaded;
        SqzModelMetadata {
            name: l.name.as_ptr(),
            version: l.version.as_ptr(),
            producer: l.producer.as_ptr(),
            label_count: l.labels.len(),
        }
    }

    pub(crate) fn label(&self, index: usize) -> Outcome<*const c_char> {
        self.loaded
            .labels
            .get(index)
            .map(|l| l.as_ptr())
            .ok_or_else(|| Failure::invalid(format!("no label {index}")))
    }
}

impl Loaded {
    pub fn ports(&self, outputs: bool) -> &[Port] {
        if outputs {
            &self.outputs
        } else {
            &self.inputs
        }
    }
}

/// The Rust load options for C's (NULL: the defaults).
pub(crate) fn load_options(opts: Option<&SqzLoadOptions>) -> Outcome<LoadOptions> {
    let mut out = LoadOptions::default();
    let Some(opts) = opts else {
        return Ok(out);
    };
    out.threads = opts.threads as usize;
    out.limits.verify_sha256 = opts.verify_sha256;
    out.isa = match SqzIsa::from_code(opts.isa, "isa")? {
        SqzIsa::Auto => None,
        SqzIsa::Scalar => Some(Isa::Scalar),
        SqzIsa::Avx2 => Some(Isa::Avx2),
        SqzIsa::Avx512 => Some(Isa::Avx512),
        SqzIsa::Neon => Some(Isa::Neon),
    };
    if let Some(isa) = out.isa {
        Isa::choose(Some(isa)).map_err(|e| Failure::new(SqzStatus::Unsupported, e.to_string()))?;
    }
    Ok(out)
}

/// Loads the model file at `path` (a `.sqz` is memory-mapped).
pub(crate) fn load_path(path: &str, opts: &LoadOptions) -> Outcome<SqzModel> {
    Ok(SqzModel::new(Model::load(Path::new(path), opts)?))
}

/// A NUL-terminated UTF-8 path from C.
pub(crate) fn path_arg(path: &CStr) -> Outcome<&str> {
    path.to_str()
        .map_err(|_| Failure::invalid("the path is not UTF-8"))
}

/// Loads a `.sqz` from `len` bytes of the open file `file` at `offset`
/// (`len` 0: to the end of the file). The file may be closed afterwards.
pub(crate) fn load_region(
    file: &std::fs::File,
    offset: u64,
    len: u64,
    opts: &LoadOptions,
) -> Outcome<SqzModel> {
    let len = if len == 0 {
        let size = file
            .metadata()
            .map_err(|e| Failure::new(SqzStatus::Io, e.to_string()))?
            .len();
        size.checked_sub(offset).ok_or_else(|| {
            Failure::invalid(format!(
                "offset {offset} is past the end of the {size} byte file"
            ))
        })?
    } else {
        len
    };
    Ok(SqzModel::new(Model::load_sqz_region(
        file, offset, len, opts,
    )?))
}
