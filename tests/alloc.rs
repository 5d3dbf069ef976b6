//! Nothing is allocated per frame: after a session's first run, further
//! runs on inputs written in place allocate nothing, on every model in
//! `$SQUEEZE_TEST_MODELS` that squeeze loads, at 1 and 2 threads. A
//! counting global allocator sees every thread's allocations, the
//! session's workers included.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use squeeze::{LoadOptions, Model};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Set while this thread is asking its own name (which may allocate).
    static ASKING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Set while frames are measured: a counted allocation then also records
/// where it came from, so that a failure names its culprit.
static WATCHING: AtomicBool = AtomicBool::new(false);

/// The thread and stack of the first few allocations while watching.
static CULPRITS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn record_culprit(thread: &str) {
    let Ok(mut culprits) = CULPRITS.try_lock() else {
        return;
    };
    if culprits.len() < 3 {
        let trace = std::backtrace::Backtrace::force_capture();
        culprits.push(format!("on thread {thread}:\n{trace}"));
    }
}

/// Counts an allocation unless it is the test harness's own: libtest's
/// coordinating `main` thread allocates on its own schedule (timeouts,
/// reports). The session's workers and the test's thread all count.
fn count() {
    ASKING.with(|asking| {
        if asking.replace(true) {
            return;
        }
        let thread = std::thread::current();
        if thread.name() != Some("main") {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            if WATCHING.load(Ordering::Relaxed) {
                record_culprit(thread.name().unwrap_or("unnamed"));
            }
        }
        asking.set(false);
    });
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Runs measured after the first.
const RUNS: usize = 20;

/// The counter is global: the tests of this file take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Input shapes of models with dynamic dims, as the references use them.
fn input_shapes(stem: &str) -> HashMap<String, Vec<usize>> {
    let meta = common::cache_dir()
        .join("refs")
        .join(stem)
        .join("meta.json");
    let Ok(text) = std::fs::read_to_string(meta) else {
        return HashMap::new();
    };
    let meta: serde_json::Value = serde_json::from_str(&text).expect("meta.json");
    meta["inputs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            let shape = i["shape"].as_array().expect("shape");
            (
                i["name"].as_str().expect("name").to_string(),
                shape
                    .iter()
                    .map(|d| d.as_u64().expect("dim") as usize)
                    .collect(),
            )
        })
        .collect()
}

/// Allocations during `runs` runs after the first, at `threads`.
fn allocations_per_frame(model: &Model, threads_note: usize, runs: usize) -> usize {
    let mut session = model.session().expect("session");
    for i in 0..model.inputs().len() {
        if let Ok(mut x) = session.input_mut(i) {
            x.iter_mut()
                .enumerate()
                .for_each(|(k, v)| *v = (k % 251) as f32 / 251.0);
        }
    }
    session.run_in_place().expect("first run");
    let first = session
        .output(0)
        .map_or(0.0, |y| y.first().copied().unwrap_or(0.0));
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    WATCHING.store(true, Ordering::SeqCst);
    let mut same = true;
    for _ in 0..runs {
        session.run_in_place().expect("run");
        let y0 = session
            .output(0)
            .map_or(0.0, |y| y.first().copied().unwrap_or(0.0));
        same &= y0.to_bits() == first.to_bits();
    }
    WATCHING.store(false, Ordering::SeqCst);
    let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
    // Runs on inputs written once must repeat exactly: the inputs are not
    // overwritten and the work split is static.
    assert!(
        same && first.is_finite(),
        "threads {threads_note}: output changed between runs on the same input"
    );
    n
}

#[test]
fn no_allocation_per_frame_on_every_model() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = common::models_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return common::skip("allocation test", &format!("{} missing", dir.display()));
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .collect();
    paths.sort();
    let mut checked = 0;
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().to_string();
        for threads in [1, 2] {
            let opts = LoadOptions {
                input_shapes: input_shapes(&stem),
                threads,
                ..LoadOptions::default()
            };
            let model = match Model::load(&path, &opts) {
                Ok(m) => m,
                Err(e) => {
                    // Dynamic quantization (ConvInteger) is not supported yet.
                    eprintln!("{stem}: not loadable here, not checked: {e}");
                    break;
                }
            };
            let n = allocations_per_frame(&model, threads, RUNS);
            eprintln!("{stem} threads={threads}: {n} allocations in {RUNS} runs after the first");
            if n != 0 {
                let culprits = CULPRITS.lock().unwrap_or_else(|e| e.into_inner());
                panic!(
                    "{stem} at {threads} threads allocated {n} times per {RUNS} frames; first:\n{}",
                    culprits.join("\n")
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 0, "no model checked");
}

/// Camera frames: after the first, converting a frame into the input
/// (rotated, cropped, every pixel format) and running allocates nothing.
#[test]
fn no_allocation_per_camera_frame() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    use squeeze::frame::{Frame, FrameOptions, PixelFormat, Rect, Rotation};
    let path = common::models_dir().join("mobilenetv2.onnx");
    if !path.exists() {
        return common::skip("camera-frame allocation test", "mobilenetv2.onnx missing");
    }
    let model = Model::load(&path, &LoadOptions::default()).expect("model");
    let mut session = model.session().expect("session");
    let mut converter = model.frame_converter(0, None).expect("converter");
    let (w, h) = (640, 480);
    let bytes: Vec<u8> = (0..w * h * 4).map(|i| (i * 7 % 251) as u8).collect();
    let opts = FrameOptions {
        crop: Some(Rect {
            x: 3,
            y: 5,
            width: 600,
            height: 400,
        }),
        rotation: Rotation::R90,
        ..Default::default()
    };
    for format in [PixelFormat::Nv21, PixelFormat::I420, PixelFormat::Bgra] {
        let frame = Frame::packed(format, &bytes, w, h).expect("frame");
        session
            .write_frame(0, &mut converter, &frame, &opts)
            .expect("first frame");
        session.run_in_place().expect("first run");
        let before = ALLOCATIONS.load(Ordering::SeqCst);
        WATCHING.store(true, Ordering::SeqCst);
        for _ in 0..RUNS {
            session
                .write_frame(0, &mut converter, &frame, &opts)
                .expect("frame");
            session.run_in_place().expect("run");
        }
        WATCHING.store(false, Ordering::SeqCst);
        let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
        if n != 0 {
            let culprits = CULPRITS.lock().unwrap_or_else(|e| e.into_inner());
            panic!(
                "{format:?}: {n} allocations in {RUNS} frames; first:\n{}",
                culprits.join("\n")
            );
        }
    }
}

/// A model with dynamic dims back at shapes it ran before: switching
/// between them and running plans and allocates nothing.
#[test]
fn no_allocation_when_shapes_repeat() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let stem = "ppocr-rec-v4";
    let path = common::models_dir().join(format!("{stem}.onnx"));
    let shapes = input_shapes(stem);
    if !path.exists() || shapes.is_empty() {
        return common::skip(
            "allocation test at repeated shapes",
            "model or reference missing",
        );
    }
    let opts = LoadOptions {
        input_shapes: shapes.clone(),
        threads: 2,
        ..LoadOptions::default()
    };
    let model = Model::load(&path, &opts).expect("load");
    let mut session = model.session().expect("session");
    let first = shapes.values().next().expect("one input").clone();
    let mut second = first.clone();
    second[3] += 96;
    let mut run_at = |shape: &[usize]| {
        session.set_input_shapes(&[shape]).expect("shape");
        session.run_in_place().expect("run");
    };
    run_at(&first);
    run_at(&second);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    WATCHING.store(true, Ordering::SeqCst);
    for _ in 0..RUNS {
        run_at(&first);
        run_at(&second);
    }
    WATCHING.store(false, Ordering::SeqCst);
    let n = ALLOCATIONS.load(Ordering::SeqCst) - before;
    let culprits = CULPRITS.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        n,
        0,
        "{stem}: allocations at repeated shapes; first:\n{}",
        culprits.join("\n")
    );
}
