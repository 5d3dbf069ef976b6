//! The JNI side of the Android library (`android/`): the static natives of
//! `dev.squeeze.Native`, each a thin call into the C ABI of this crate, so
//! Java takes the same checked path as C. Handles are the C pointers held
//! in a Java `long`; a failed status becomes a `SqueezeException` carrying
//! it, and buffers are direct `ByteBuffer`s used in place.

use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use jni::objects::{JByteBuffer, JClass, JIntArray, JObject, JObjectArray, JString};
use jni::sys::{jboolean, jint, jlong, jlongArray, jobjectArray, JNI_TRUE};
use jni::JNIEnv;
use smallvec::SmallVec;

use crate::api::*;
use crate::frame::{SqzFrame, SqzFrameOptions, SqzPlane, SqzRect};
use crate::model::{SqzLoadOptions, SqzModel, SqzModelMetadata, SqzTensorInfo};
use crate::session::{SqzInput, SqzOutput, SqzSession};
use crate::status::SqzStatus;

/// A failure on the Java side: the status for `SqueezeException`.
struct Thrown(SqzStatus, String);

type JResult<T> = Result<T, Thrown>;

impl From<jni::errors::Error> for Thrown {
    fn from(e: jni::errors::Error) -> Thrown {
        Thrown(SqzStatus::InvalidArgument, format!("JNI: {e}"))
    }
}

/// A status from the C ABI, with the last error's text when it failed.
fn check(status: SqzStatus) -> JResult<()> {
    if status == SqzStatus::Ok {
        return Ok(());
    }
    // SAFETY: sqz_last_error returns a NUL-terminated string that lives
    // until the next failing call on this thread.
    let message = unsafe { CStr::from_ptr(sqz_last_error()) };
    Err(Thrown(status, message.to_string_lossy().into_owned()))
}

/// Runs a native's body; a failure or a panic is thrown as a
/// `SqueezeException` and `fallback` returned to Java (which ignores it).
fn java<T>(env: &mut JNIEnv, fallback: T, body: impl FnOnce(&mut JNIEnv) -> JResult<T>) -> T {
    let thrown = match catch_unwind(AssertUnwindSafe(|| body(env))) {
        Ok(Ok(value)) => return value,
        Ok(Err(thrown)) => thrown,
        Err(_) => Thrown(SqzStatus::Panic, "panic inside the squeeze JNI glue".into()),
    };
    if !env.exception_check().unwrap_or(true) {
        throw(env, thrown);
    }
    fallback
}

fn throw(env: &mut JNIEnv, Thrown(status, message): Thrown) {
    let made = env.new_string(message).and_then(|text| {
        env.new_object(
            "dev/squeeze/SqueezeException",
            "(ILjava/lang/String;)V",
            &[(status as jint).into(), (&text).into()],
        )
    });
    if let Ok(exception) = made {
        let _ = env.throw(jni::objects::JThrowable::from(exception));
    }
}

fn options(threads: jint, isa: jint, verify: jboolean) -> JResult<SqzLoadOptions> {
    let (Ok(threads), Ok(isa)) = (u32::try_from(threads), u32::try_from(isa)) else {
        return Err(Thrown(
            SqzStatus::InvalidArgument,
            "negative threads or ISA".into(),
        ));
    };
    Ok(SqzLoadOptions {
        threads,
        isa,
        verify_sha256: verify == JNI_TRUE,
    })
}

fn model_ptr(handle: jlong) -> *const SqzModel {
    handle as usize as *const SqzModel
}

fn session_ptr(handle: jlong) -> *const SqzSession {
    handle as usize as *const SqzSession
}

/// The bytes of a direct `ByteBuffer`, from its start to its capacity.
fn direct(env: &JNIEnv, buffer: JObject) -> JResult<(*mut u8, usize)> {
    if buffer.is_null() {
        return Err(Thrown(
            SqzStatus::NullPointer,
            "a ByteBuffer is null".into(),
        ));
    }
    let buffer = JByteBuffer::from(buffer);
    let not_direct = |_| {
        Thrown(
            SqzStatus::InvalidArgument,
            "a ByteBuffer is not direct".into(),
        )
    };
    let address = env.get_direct_buffer_address(&buffer).map_err(not_direct)?;
    let capacity = env
        .get_direct_buffer_capacity(&buffer)
        .map_err(not_direct)?;
    Ok((address, capacity))
}

/// Buffers of one call, on the stack for up to this many (no allocation
/// per frame).
type Buffers<T> = SmallVec<[T; 8]>;

/// Every element of a `ByteBuffer[]` as direct bytes.
fn directs(env: &mut JNIEnv, array: &JObjectArray) -> JResult<Buffers<(*mut u8, usize)>> {
    if array.is_null() {
        return Err(Thrown(
            SqzStatus::NullPointer,
            "a ByteBuffer[] is null".into(),
        ));
    }
    let n = env.get_array_length(array)?;
    (0..n)
        .map(|i| {
            let element = env.get_object_array_element(array, i)?;
            direct(env, element)
        })
        .collect()
}

/// The C output buffers for direct `ByteBuffer`s, typed as the model's outputs.
fn output_buffers(
    env: &mut JNIEnv,
    session: jlong,
    outputs: &JObjectArray,
) -> JResult<Buffers<SqzOutput>> {
    let buffers = directs(env, outputs)?;
    buffers
        .into_iter()
        .enumerate()
        .map(|(i, (data, byte_len))| {
            Ok(SqzOutput {
                dtype: port_dtype(session, true, i)?,
                data: data.cast(),
                byte_len,
            })
        })
        .collect()
}

/// The element type of a session's model port (Java buffers carry none).
fn port_dtype(session: jlong, outputs: bool, index: usize) -> JResult<u32> {
    // SAFETY: Java passes a live session handle (Session checks it is open).
    let s = unsafe { session_ptr(session).as_ref() }
        .ok_or_else(|| Thrown(SqzStatus::NullPointer, "session is closed".into()))?;
    let ports = s.loaded.ports(outputs);
    // A port past the end leaves the count check to the C call.
    Ok(ports
        .get(index)
        .map_or(0, |p| crate::model::SqzDtype::from(p.info.dtype) as u32))
}

fn load(out: impl FnOnce(*mut *mut SqzModel) -> SqzStatus) -> JResult<jlong> {
    let mut model: *mut SqzModel = ptr::null_mut();
    check(out(&mut model))?;
    Ok(model as usize as jlong)
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_version<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
) -> jni::sys::jstring {
    java(&mut env, ptr::null_mut(), |env| {
        // SAFETY: sqz_version returns a static NUL-terminated string.
        let version = unsafe { CStr::from_ptr(sqz_version()) };
        Ok(env.new_string(version.to_string_lossy())?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelLoadPath<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    path: JString<'l>,
    threads: jint,
    isa: jint,
    verify: jboolean,
) -> jlong {
    java(&mut env, 0, |env| {
        if path.is_null() {
            return Err(Thrown(SqzStatus::NullPointer, "path is null".into()));
        }
        let path: String = env.get_string(&path)?.into();
        let path = CString::new(path)
            .map_err(|_| Thrown(SqzStatus::InvalidArgument, "the path holds a NUL".into()))?;
        let opts = options(threads, isa, verify)?;
        // SAFETY: a NUL-terminated path, valid options and out-pointer.
        load(|out| unsafe { sqz_model_load_path(path.as_ptr(), &opts, out) })
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelLoadFd<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    fd: jint,
    offset: jlong,
    length: jlong,
    threads: jint,
    isa: jint,
    verify: jboolean,
) -> jlong {
    java(&mut env, 0, |_| {
        let (Ok(offset), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
            return Err(Thrown(
                SqzStatus::InvalidArgument,
                "negative offset or length".into(),
            ));
        };
        let opts = options(threads, isa, verify)?;
        // SAFETY: the descriptor is the caller's open one (or negative,
        // refused); valid options and out-pointer.
        load(|out| unsafe { sqz_model_load_fd(fd, offset, length, &opts, out) })
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelLoadBuffer<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    buffer: JObject<'l>,
    threads: jint,
    isa: jint,
    verify: jboolean,
) -> jlong {
    java(&mut env, 0, |env| {
        let (data, len) = direct(env, buffer)?;
        let opts = options(threads, isa, verify)?;
        // SAFETY: the direct buffer's memory holds `len` bytes during the
        // call, and is copied (Java may free it afterwards).
        load(|out| unsafe {
            sqz_model_load_buffer(
                data,
                len,
                crate::model::SqzBufferMode::Copy as u32,
                &opts,
                out,
            )
        })
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelFree<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
) {
    // SAFETY: Model.close() passes its handle once, then forgets it.
    unsafe { sqz_model_free(model_ptr(model).cast_mut()) }
}

fn port_info(model: jlong, outputs: jboolean, index: jint) -> JResult<SqzTensorInfo> {
    let index = usize::try_from(index)
        .map_err(|_| Thrown(SqzStatus::InvalidArgument, format!("index {index}")))?;
    let mut info = std::mem::MaybeUninit::<SqzTensorInfo>::uninit();
    // SAFETY: a live model handle (Model checks it is open) and a writable slot.
    check(unsafe {
        sqz_model_port_info(
            model_ptr(model),
            outputs == JNI_TRUE,
            index,
            info.as_mut_ptr(),
        )
    })?;
    // SAFETY: SQZ_STATUS_OK means the slot was written.
    Ok(unsafe { info.assume_init() })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelPortCount<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    outputs: jboolean,
) -> jint {
    java(&mut env, 0, |_| {
        let mut count = 0usize;
        // SAFETY: a live model handle and a writable slot.
        check(unsafe { sqz_model_port_count(model_ptr(model), outputs == JNI_TRUE, &mut count) })?;
        Ok(count as jint)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelPortName<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    outputs: jboolean,
    index: jint,
) -> jni::sys::jstring {
    java(&mut env, ptr::null_mut(), |env| {
        let info = port_info(model, outputs, index)?;
        // SAFETY: the name is a NUL-terminated string the model owns.
        let name = unsafe { CStr::from_ptr(info.name) }.to_string_lossy();
        Ok(env.new_string(name)?.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelPortDtype<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    outputs: jboolean,
    index: jint,
) -> jint {
    java(&mut env, 0, |_| {
        Ok(port_info(model, outputs, index)?.dtype as jint)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelPortShape<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
    outputs: jboolean,
    index: jint,
) -> jlongArray {
    java(&mut env, ptr::null_mut(), |env| {
        let info = port_info(model, outputs, index)?;
        // SAFETY: `rank` dimensions the model owns.
        let dims = unsafe { std::slice::from_raw_parts(info.shape, info.rank) };
        let dims: Vec<jlong> = dims.iter().map(|&d| d as jlong).collect();
        let array = env.new_long_array(dims.len() as jint)?;
        env.set_long_array_region(&array, 0, &dims)?;
        Ok(array.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_modelLabels<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
) -> jobjectArray {
    java(&mut env, ptr::null_mut(), |env| {
        let mut meta = std::mem::MaybeUninit::<SqzModelMetadata>::uninit();
        // SAFETY: a live model handle and a writable slot.
        check(unsafe { sqz_model_metadata(model_ptr(model), meta.as_mut_ptr()) })?;
        // SAFETY: SQZ_STATUS_OK means the slot was written.
        let count = unsafe { meta.assume_init() }.label_count;
        let array = env.new_object_array(count as jint, "java/lang/String", JObject::null())?;
        for i in 0..count {
            let mut label: *const c_char = ptr::null();
            // SAFETY: a live model handle, an index below the count, a writable slot.
            check(unsafe { sqz_model_label(model_ptr(model), i, &mut label) })?;
            // SAFETY: the label is a NUL-terminated string the model owns.
            let text = env.new_string(unsafe { CStr::from_ptr(label) }.to_string_lossy())?;
            env.set_object_array_element(&array, i as jint, &text)?;
            // Free each label's local reference as it is stored: 1,000
            // labels overflow the table (512 entries on Android 7).
            env.delete_local_ref(text)?;
        }
        Ok(array.into_raw())
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_sessionCreate<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    model: jlong,
) -> jlong {
    java(&mut env, 0, |_| {
        let mut session: *mut SqzSession = ptr::null_mut();
        // SAFETY: a live model handle and a writable slot.
        check(unsafe { sqz_session_create(model_ptr(model), &mut session) })?;
        Ok(session as usize as jlong)
    })
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_sessionFree<'l>(
    _env: JNIEnv<'l>,
    _class: JClass<'l>,
    session: jlong,
) {
    // SAFETY: Session.close() passes its handle once, then forgets it.
    unsafe { sqz_session_free(session_ptr(session).cast_mut()) }
}

#[no_mangle]
pub extern "system" fn Java_dev_squeeze_Native_sessionRun<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    session: jlong,
    inputs: JObjectArray<'l>,
    outputs: JObjectArray<'l>,
) {
    java(&mut env, (), |env| {
        let inputs = directs(env, &inputs)?
            .into_iter()
            .enumerate()
            .map(|(i, (data, byte_len))| {
                Ok(SqzInput {
                    dtype: port_dtype(session, false, i)?,
                    data: data.cast_const().cast(),
                    byte_len,
                })
            })
            .collect::<JResult<Buffers<_>>>()?;
        let outputs = output_buffers(env, session, &outputs)?;
        // SAFETY: a live session; each direct buffer holds its capacity in
        // bytes and stays reachable from Java for the call.
        check(unsafe {
            sqz_session_run(
                session_ptr(session),
                inputs.as_ptr(),
                inputs.len(),
                outputs.as_ptr(),
                outputs.len(),
            )
        })
    })
}

#[no_mangle]
#[allow(clippy::too_many_arguments)]
pub extern "system" fn Java_dev_squeeze_Native_sessionRunFrame<'l>(
    mut env: JNIEnv<'l>,
    _class: JClass<'l>,
    session: jlong,
    format: jint,
    width: jint,
    height: jint,
    planes: JObjectArray<'l>,
    strides: JIntArray<'l>,
    rotation: jint,
    mirror: jboolean,
    crop: JIntArray<'l>,
    outputs: JObjectArray<'l>,
) {
    java(&mut env, (), |env| {
        let buffers = directs(env, &planes)?;
        // Row and pixel stride per plane, interleaved.
        let mut steps = [0 as jint; 6];
        if strides.is_null() || env.get_array_length(&strides)? as usize != 2 * buffers.len() {
            return Err(Thrown(SqzStatus::Frame, "two strides per plane".into()));
        }
        env.get_int_array_region(&strides, 0, &mut steps[..2 * buffers.len().min(3)])?;
        let mut c_planes = [SqzPlane {
            data: ptr::null(),
            byte_len: 0,
            row_stride: 0,
            pixel_stride: 0,
        }; 3];
        for (i, (plane, (data, len))) in c_planes.iter_mut().zip(buffers).enumerate() {
            let (Ok(row), Ok(pixel)) = (
                usize::try_from(steps[2 * i]),
                usize::try_from(steps[2 * i + 1]),
            ) else {
                return Err(Thrown(SqzStatus::Frame, "a negative stride".into()));
            };
            *plane = SqzPlane {
                data: data.cast_const(),
                byte_len: len,
                row_stride: row,
                pixel_stride: pixel,
            };
        }
        let mut rect = [0 as jint; 4];
        if !crop.is_null() {
            env.get_int_array_region(&crop, 0, &mut rect)?;
        }
        let unsigned = |v: jint| {
            u32::try_from(v).map_err(|_| Thrown(SqzStatus::Frame, format!("negative value {v}")))
        };
        let frame = SqzFrame {
            format: unsigned(format)?,
            width: unsigned(width)?,
            height: unsigned(height)?,
            planes: c_planes,
        };
        let opts = SqzFrameOptions {
            crop: SqzRect {
                x: unsigned(rect[0])?,
                y: unsigned(rect[1])?,
                width: unsigned(rect[2])?,
                height: unsigned(rect[3])?,
            },
            rotation_degrees: unsigned(rotation)?,
            mirror: mirror == JNI_TRUE,
            yuv_matrix: 0,
            yuv_range: 0,
            resize: 0,
        };
        let outputs = output_buffers(env, session, &outputs)?;
        // SAFETY: a live session; the planes and outputs are direct
        // buffers holding their capacity in bytes during the call.
        check(unsafe {
            sqz_session_run_frame(
                session_ptr(session),
                &frame,
                &opts,
                outputs.as_ptr(),
                outputs.len(),
            )
        })
    })
}

/// Logs go to logcat under the tag `squeeze` once Java loads the library.
#[cfg(target_os = "android")]
#[no_mangle]
pub extern "system" fn JNI_OnLoad(_vm: jni::JavaVM, _reserved: *mut std::ffi::c_void) -> jint {
    android_logger::init_once(
        android_logger::Config::default()
            .with_max_level(log::LevelFilter::Info)
            .with_tag("squeeze"),
    );
    jni::sys::JNI_VERSION_1_6
}
