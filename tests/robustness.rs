//! Hostile and malformed inputs give typed errors, never panics; plus the
//! structural claims: BN folding keeps results, the VGG16 table, `.sqz`
//! round trips (path, bytes, stream) with f32 storage bit-identical.

mod common;

use common::*;
use squeeze::inspect_totals;
use squeeze::pack::{self, Metadata, PackOptions, Storage};
use squeeze::{Error, LoadOptions, Model, Tensor};

fn load(bytes: &[u8]) -> squeeze::Result<Model> {
    Model::from_onnx_bytes(bytes, &LoadOptions::default())
}

fn tiny_path() -> std::path::PathBuf {
    repo_root().join("models/tiny-classifier.onnx")
}

fn conv_model(w_dims: &[i64], x_dims: &[i64]) -> Vec<u8> {
    let n: i64 = w_dims.iter().product();
    model_bytes(
        vec![node("Conv", &["x", "w"], &["y"], vec![])],
        vec![tensor_f32("w", w_dims, pseudo_random(n as usize, 1))],
        vec![value_info("x", x_dims)],
        vec![value_info("y", &[])],
        13,
    )
}

#[test]
fn truncated_onnx_is_a_typed_error() {
    let bytes = std::fs::read(tiny_path()).expect("fixture");
    for cut in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        match load(&bytes[..cut]) {
            Ok(_) => {} // a cut at a message boundary can still be a valid, smaller model
            Err(
                Error::Malformed(_)
                | Error::InvalidGraph { .. }
                | Error::Shape(_)
                | Error::Input(_),
            ) => {}
            Err(e) => panic!("cut at {cut}: unexpected error kind {e:?}"),
        }
    }
    assert!(matches!(
        load(&bytes[..bytes.len() / 2]),
        Err(Error::Malformed(_))
    ));
}

#[test]
fn unknown_op_names_type_node_and_opset() {
    let bytes = model_bytes(
        vec![node("FancyOp", &["x"], &["y"], vec![])],
        vec![],
        vec![value_info("x", &[1, 3])],
        vec![value_info("y", &[1, 3])],
        13,
    );
    match load(&bytes) {
        Err(Error::UnsupportedOp {
            op_type,
            node,
            opset,
            ..
        }) => {
            assert_eq!(
                (op_type.as_str(), node.as_str(), opset),
                ("FancyOp", "FancyOp_y", 13)
            );
        }
        other => panic!("expected UnsupportedOp, got {other:?}"),
    }
}

#[test]
fn cycle_is_refused() {
    let bytes = model_bytes(
        vec![
            node("Relu", &["b"], &["a"], vec![]),
            node("Relu", &["a"], &["b"], vec![]),
        ],
        vec![],
        vec![value_info("x", &[1])],
        vec![value_info("a", &[1])],
        13,
    );
    assert!(
        matches!(load(&bytes), Err(Error::Cycle(_))),
        "{:?}",
        load(&bytes).err()
    );
}

#[test]
fn mismatched_shapes_are_refused() {
    // Weights expect 4 input channels, the input has 3.
    let err = load(&conv_model(&[8, 4, 3, 3], &[1, 3, 16, 16])).expect_err("must fail");
    assert!(matches!(err, Error::InvalidGraph { .. }), "{err:?}");
    let add = model_bytes(
        vec![node("Add", &["x", "z"], &["y"], vec![])],
        vec![],
        vec![value_info("x", &[2, 3]), value_info("z", &[4, 5])],
        vec![value_info("y", &[])],
        13,
    );
    assert!(matches!(load(&add), Err(Error::InvalidGraph { .. })));
}

#[test]
fn huge_declared_dims_are_refused_before_allocation() {
    let input = model_bytes(
        vec![node("Relu", &["x"], &["y"], vec![])],
        vec![],
        vec![value_info("x", &[1 << 20, 1 << 20, 1 << 20])],
        vec![value_info("y", &[])],
        13,
    );
    assert!(matches!(load(&input), Err(Error::TooLarge { .. })));
    let shape = tensor_i64("s", &[3], vec![1 << 30, 1 << 30, 1 << 30]);
    let cos = model_bytes(
        vec![node("ConstantOfShape", &["s"], &["y"], vec![])],
        vec![shape],
        vec![],
        vec![value_info("y", &[])],
        13,
    );
    assert!(matches!(load(&cos), Err(Error::TooLarge { .. })));
    // An initializer claiming far more elements than its data holds.
    let lying = pb_lying_initializer();
    assert!(matches!(
        load(&lying),
        Err(Error::TooLarge { .. } | Error::Malformed(_))
    ));
}

fn pb_lying_initializer() -> Vec<u8> {
    let mut w = tensor_f32("w", &[1 << 16, 1 << 16], vec![]);
    w.raw_data = vec![0; 16];
    model_bytes(
        vec![node("Relu", &["w"], &["y"], vec![])],
        vec![w],
        vec![],
        vec![value_info("y", &[])],
        13,
    )
}

#[test]
fn external_data_cannot_escape_the_model_folder() {
    let dir = std::env::temp_dir().join(format!("squeeze-ext-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp");
    // A symlink inside the folder that leads outside it.
    let outside = std::env::temp_dir().join(format!("squeeze-outside-{}.bin", std::process::id()));
    std::fs::write(&outside, [0u8; 16]).expect("outside file");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, dir.join("link.bin")).expect("symlink");
    for location in [
        "../secret.bin",
        "/etc/passwd",
        "sub/../../x.bin",
        "link.bin",
    ] {
        let mut w = tensor_f32("w", &[4], vec![]);
        w.data_location = Some(1);
        w.external_data = vec![tract_onnx::pb::StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
        }];
        let bytes = model_bytes(
            vec![node("Relu", &["w"], &["y"], vec![])],
            vec![w],
            vec![],
            vec![value_info("y", &[4])],
            13,
        );
        let path = dir.join("m.onnx");
        std::fs::write(&path, bytes).expect("write");
        let err = Model::load(&path, &LoadOptions::default()).expect_err("must refuse");
        assert!(matches!(err, Error::ExternalData(_)), "{location}: {err:?}");
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_file(&outside).ok();
}

#[test]
fn wrong_input_is_a_typed_error() {
    let model = Model::load(&tiny_path(), &LoadOptions::default()).expect("fixture");
    let mut s = model.session().expect("session");
    let wrong = Tensor::from_f32(vec![1, 3, 32, 32], vec![0.0; 3 * 32 * 32]).expect("tensor");
    assert!(matches!(s.run(&[&wrong]), Err(Error::Input(_))));
    assert!(matches!(s.run(&[]), Err(Error::Input(_))));
}

fn tiny_input() -> Tensor {
    Tensor::from_f32(vec![1, 3, 64, 64], pseudo_random(3 * 64 * 64, 5)).expect("tensor")
}

fn run_model(m: &Model) -> Vec<f32> {
    m.session()
        .expect("session")
        .run(&[&tiny_input()])
        .expect("run")[0]
        .to_f32_vec()
}

#[test]
fn batchnorm_folding_drops_nodes_and_keeps_results() {
    let opts = |optimize| LoadOptions {
        optimize,
        ..LoadOptions::default()
    };
    let plain = Model::load(&tiny_path(), &opts(false)).expect("load");
    let folded = Model::load(&tiny_path(), &opts(true)).expect("load");
    let count_bn = |m: &Model| {
        m.graph()
            .nodes
            .iter()
            .filter(|n| n.op.name() == "BatchNormalization")
            .count()
    };
    assert_eq!(count_bn(&plain), 5);
    assert_eq!(count_bn(&folded), 0);
    assert!(
        folded.graph().nodes.len() * 2 < plain.graph().nodes.len(),
        "{} vs {}",
        folded.graph().nodes.len(),
        plain.graph().nodes.len()
    );
    let report = folded
        .passes()
        .iter()
        .find(|p| p.name == "fold-batchnorm")
        .expect("pass");
    assert_eq!(report.rewrites, 5);
    let (a, b) = (run_model(&plain), run_model(&folded));
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= 1e-5 * x.abs().max(1.0), "{x} vs {y}");
    }
}

#[test]
fn vgg16_reproduces_the_classic_table() {
    let m = Model::load(
        &repo_root().join("models/vgg16-shapes.onnx"),
        &LoadOptions::default(),
    )
    .expect("vgg16");
    let t = inspect_totals(m.graph());
    assert_eq!(t.parameters, 138_357_544);
    assert_eq!(t.activation_elements, 15_237_608);
    assert!(
        m.graph().nodes.iter().all(|n| n.op.name() != "Identity"),
        "dropout removed"
    );
}

fn packed_tiny(storage: Storage) -> (Model, Vec<u8>) {
    let float = Model::load(&tiny_path(), &LoadOptions::default()).expect("fixture");
    let opts = PackOptions {
        weights: storage,
        min_quantized_elements: 16,
        ..PackOptions::default()
    };
    let (bytes, _) = pack::pack(float.graph(), &Metadata::default(), &opts, &|| ()).expect("pack");
    (float, bytes)
}

#[test]
fn sqz_f32_is_bit_identical_from_bytes_path_and_stream() {
    let (float, bytes) = packed_tiny(Storage::F32);
    let want = run_model(&float);
    let path = std::env::temp_dir().join(format!("squeeze-rt-{}.sqz", std::process::id()));
    std::fs::write(&path, &bytes).expect("write");
    let opts = LoadOptions::default();
    for m in [
        Model::from_sqz_bytes(&bytes, &opts).expect("bytes"),
        Model::load(&path, &opts).expect("path"),
        Model::from_sqz_reader(&mut bytes.as_slice(), &opts).expect("stream"),
    ] {
        assert_eq!(run_model(&m), want);
        assert!(m.package().is_some());
    }
    std::fs::remove_file(&path).ok();
}

#[test]
fn sqz_quantized_storage_stays_close() {
    let (float, _) = packed_tiny(Storage::F32);
    let want = run_model(&float);
    for storage in [Storage::F16, Storage::Int8, Storage::Palette { bits: 6 }] {
        let (_, bytes) = packed_tiny(storage);
        let got = run_model(&Model::from_sqz_bytes(&bytes, &LoadOptions::default()).expect("load"));
        let dot: f32 = got.iter().zip(&want).map(|(a, b)| a * b).sum();
        let cos = dot
            / (got.iter().map(|a| a * a).sum::<f32>().sqrt()
                * want.iter().map(|a| a * a).sum::<f32>().sqrt());
        assert!(cos > 0.99, "{storage:?}: cosine {cos}");
    }
}

#[test]
fn every_truncation_and_byte_flip_of_a_sqz_is_a_typed_error() {
    let (_, bytes) = packed_tiny(Storage::Int8);
    let mut opts = LoadOptions::default();
    opts.limits.verify_sha256 = true;
    for cut in 0..bytes.len() {
        assert!(
            Model::from_sqz_bytes(&bytes[..cut], &opts).is_err(),
            "truncated at {cut} loaded"
        );
        assert!(
            Model::from_sqz_reader(&mut &bytes[..cut], &opts).is_err(),
            "stream cut at {cut} loaded"
        );
    }
    let mut flipped = bytes.clone();
    for i in 0..bytes.len() {
        flipped[i] ^= 0x5a;
        assert!(
            Model::from_sqz_bytes(&flipped, &opts).is_err(),
            "byte {i} changed and loaded"
        );
        flipped[i] = bytes[i];
    }
    assert!(Model::from_sqz_bytes(&bytes, &opts).is_ok());
}

#[test]
fn a_small_sqz_claiming_gigabytes_is_refused_at_once() {
    let (_, mut bytes) = packed_tiny(Storage::F32);
    bytes.truncate(1024);
    // Header: magic(8) major(2) minor(2) count(4) file_len(8): claim 4 GiB,
    // over the 1 GiB default cap: refused from the header alone.
    bytes[16..24].copy_from_slice(&(4u64 << 30).to_le_bytes());
    let err = Model::from_sqz_reader(&mut bytes.as_slice(), &LoadOptions::default())
        .expect_err("refused");
    assert!(matches!(err, Error::Container(_)), "{err:?}");
    // Under the cap but longer than the stream: an error once the data ends.
    bytes[16..24].copy_from_slice(&(512u64 << 20).to_le_bytes());
    let err = Model::from_sqz_reader(&mut bytes.as_slice(), &LoadOptions::default())
        .expect_err("refused");
    assert!(matches!(err, Error::Pack(_)), "{err:?}");
    let mut newer = packed_tiny(Storage::F32).1;
    newer[8..10].copy_from_slice(&2u16.to_le_bytes());
    let err = Model::from_sqz_bytes(&newer, &LoadOptions::default()).expect_err("refused");
    assert!(err.to_string().contains("version"), "{err}");
}

#[test]
fn in_place_f32_weights_point_into_the_file() {
    let float = Model::load(&tiny_path(), &LoadOptions::default()).expect("fixture");
    let opts = PackOptions {
        in_place: true,
        ..PackOptions::default()
    };
    let (bytes, _) = pack::pack(float.graph(), &Metadata::default(), &opts, &|| ()).expect("pack");
    let path = std::env::temp_dir().join(format!("squeeze-inplace-{}.sqz", std::process::id()));
    std::fs::write(&path, &bytes).expect("write");
    let mapped = Model::load(&path, &LoadOptions::default()).expect("load");
    let shared = |m: &Model| {
        m.graph()
            .values
            .iter()
            .filter_map(|v| v.constant.as_ref())
            .filter(|t| matches!(t.data(), squeeze::ir::TensorData::SharedF32(_)))
            .count()
    };
    assert!(
        shared(&mapped) > 5,
        "weights of a mapped in-place file are not copied"
    );
    let copied = Model::from_sqz_bytes(&bytes, &LoadOptions::default()).expect("bytes");
    assert_eq!(shared(&copied), 0, "borrowed bytes are copied, never kept");
    assert_eq!(run_model(&mapped), run_model(&float));
    assert_eq!(run_model(&copied), run_model(&float));
    std::fs::remove_file(&path).ok();
}

/// Xorshift: deterministic bytes for mutation tests.
fn xorshift(mut state: u64) -> impl FnMut() -> u64 {
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// Loads `n` mutants of `base` (each from `rebuild`) and plans and runs
/// those that load; any panic fails. Returns how many loaded.
fn survive_mutants(
    n: usize,
    base: &[u8],
    seed: u64,
    rebuild: impl Fn(Vec<u8>) -> Vec<u8>,
    load: impl Fn(&[u8]) -> squeeze::Result<Model>,
) -> usize {
    let input = tiny_input();
    let mut next = xorshift(seed);
    let mut loaded = 0;
    for i in 0..n {
        let mut data = base.to_vec();
        for _ in 0..1 + (next() % 3) {
            let at = (next() as usize) % data.len();
            data[at] = next() as u8;
        }
        let file = rebuild(data);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let Ok(m) = load(&file) else { return 0 };
            if let Ok(mut session) = m.session() {
                if session.arena_bytes() < 64 << 20 {
                    let _ = session.run(&[&input]);
                }
            }
            1
        }));
        loaded += outcome.unwrap_or_else(|_| panic!("mutant {i} panicked"));
    }
    loaded
}

/// A hostile file can carry valid checksums: mutate the graph section,
/// rebuild a well-formed container, and load, plan and run it. Every
/// outcome must be a value or a typed error; a panic fails the test.
#[test]
fn hostile_graph_sections_with_valid_checksums_never_panic() {
    use squeeze::pack::container::{
        write_container, Codec, Container, Limits, SectionInput, WriteOptions,
    };
    let (_, bytes) = packed_tiny(Storage::F32);
    let c = Container::parse(&bytes, &Limits::default()).expect("parse");
    let sections: Vec<SectionInput> = c
        .sections()
        .iter()
        .map(|e| SectionInput {
            kind: e.kind,
            codec: Codec::None,
            data: c.decode(e).expect("decode").to_vec(),
        })
        .collect();
    let g = sections
        .iter()
        .position(|s| s.kind == 2)
        .expect("graph section");
    let rebuild = |graph: Vec<u8>| {
        let mut s = sections.clone();
        s[g].data = graph;
        write_container(
            &s,
            &WriteOptions {
                zstd_level: 1,
                min_saving_percent: 0,
            },
        )
        .expect("write")
    };
    let loaded = survive_mutants(
        5000,
        &sections[g].data,
        0x2545_F491_4F6C_DD1D,
        rebuild,
        |f| Model::from_sqz_bytes(f, &LoadOptions::default()),
    );
    eprintln!("hostile graph sections: {loaded} of 5000 still loaded");
}

/// Random byte changes to an ONNX file: import, optimize, plan and run
/// must return a value or a typed error, never panic.
#[test]
fn mutated_onnx_files_never_panic() {
    let bytes = std::fs::read(tiny_path()).expect("fixture");
    let loaded = survive_mutants(3000, &bytes, 0x9E37_79B9_7F4A_7C15, |d| d, load);
    eprintln!("mutated ONNX: {loaded} of 3000 still loaded");
}

#[test]
fn external_data_inside_the_model_folder_loads() {
    let dir = std::env::temp_dir().join(format!("squeeze-ext-ok-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).expect("tmp");
    let values = [1.5f32, -2.0, 3.25, -0.5];
    let raw: Vec<u8> = [0u8; 8]
        .into_iter()
        .chain(values.iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    std::fs::write(dir.join("data/w.bin"), raw).expect("data");
    let mut w = tensor_f32("w", &[4], vec![]);
    w.data_location = Some(1);
    w.external_data = [
        ("location", "data/w.bin"),
        ("offset", "8"),
        ("length", "16"),
    ]
    .iter()
    .map(|(k, v)| tract_onnx::pb::StringStringEntryProto {
        key: k.to_string(),
        value: v.to_string(),
    })
    .collect();
    let bytes = model_bytes(
        vec![node("Add", &["x", "w"], &["y"], vec![])],
        vec![w],
        vec![value_info("x", &[4])],
        vec![value_info("y", &[4])],
        13,
    );
    let path = dir.join("m.onnx");
    std::fs::write(&path, bytes).expect("write");
    let m = Model::load(&path, &LoadOptions::default()).expect("load");
    let x = Tensor::from_f32(vec![4], vec![1.0; 4]).expect("x");
    let y = m.session().expect("session").run(&[&x]).expect("run");
    assert_eq!(y[0].to_f32_vec(), vec![2.5, -1.0, 4.25, 0.5]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn importer_refuses_unbounded_or_malformed_folds() {
    // Three 2^28-element constants: each under the tensor cap, together over the import budget.
    let shape = tensor_i64("s", &[1], vec![1 << 28]);
    let nodes = (0..3)
        .map(|i| node("ConstantOfShape", &["s"], &[&format!("c{i}")], vec![]))
        .collect();
    let outs = (0..3).map(|i| value_info(&format!("c{i}"), &[])).collect();
    assert!(matches!(
        load(&model_bytes(nodes, vec![shape], vec![], outs, 13)),
        Err(Error::TooLarge { .. })
    ));
    // num_outputs far above the outputs named.
    let split = model_bytes(
        vec![node(
            "Split",
            &["x"],
            &["a", "b"],
            vec![attr_i("num_outputs", 1 << 40)],
        )],
        vec![],
        vec![value_info("x", &[4])],
        vec![value_info("a", &[]), value_info("b", &[])],
        18,
    );
    assert!(matches!(load(&split), Err(Error::InvalidGraph { .. })));
    // Range over an empty start tensor.
    let range = model_bytes(
        vec![node("Range", &["s", "l", "d"], &["y"], vec![])],
        vec![
            tensor_i64("s", &[0], vec![]),
            tensor_i64("l", &[], vec![4]),
            tensor_i64("d", &[], vec![1]),
        ],
        vec![],
        vec![value_info("y", &[])],
        13,
    );
    assert!(matches!(load(&range), Err(Error::InvalidGraph { .. })));
    // An axis of a scalar.
    let squeeze = model_bytes(
        vec![node("Squeeze", &["k", "axes"], &["y"], vec![])],
        vec![
            tensor_f32("k", &[], vec![1.0]),
            tensor_i64("axes", &[1], vec![0]),
        ],
        vec![],
        vec![value_info("y", &[])],
        13,
    );
    assert!(matches!(load(&squeeze), Err(Error::InvalidGraph { .. })));
}

/// `squeeze inspect m | head -1`: the CLI ends quietly when its reader
/// closes the pipe, instead of panicking on the write. The pipe's reading
/// end is closed before the CLI starts, so its first write meets it.
#[cfg(feature = "cli")]
#[test]
fn cli_output_into_a_closed_pipe_is_no_panic() {
    use std::process::{Command, Stdio};
    let model =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/tiny-classifier.onnx");
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_squeeze"))
        .arg("inspect")
        .arg(model)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run the CLI");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{:?}: {stderr}",
        out.status
    );
}

/// A model whose file leaves H and W dynamic runs at any H×W in one
/// session, each shape giving what a load fixed at that shape gives (the
/// same kernels, so bit for bit), and a shape the file fixes otherwise, or
/// of another rank, is a typed error that leaves the session usable.
#[test]
fn dynamic_dims_run_at_every_shape_in_one_session() {
    let pads = attr_ints("pads", &[1, 1, 1, 1]);
    let bytes = model_bytes(
        vec![node("Conv", &["x", "w"], &["y"], vec![pads])],
        vec![tensor_f32("w", &[4, 2, 3, 3], pseudo_random(72, 7))],
        vec![value_info("x", &[1, 2, -1, -1])],
        vec![value_info("y", &[])],
        13,
    );
    let at = |h: usize, w: usize| LoadOptions {
        input_shapes: [("x".to_string(), vec![1, 2, h, w])].into(),
        ..LoadOptions::default()
    };
    let model = Model::from_onnx_bytes(&bytes, &at(5, 7)).expect("load");
    assert!(model.is_dynamic());
    let mut session = model.session().expect("session");
    for (h, w) in [(5, 7), (9, 3), (1, 1), (16, 16), (5, 7), (9, 3)] {
        let x = Tensor::from_f32(vec![1, 2, h, w], pseudo_random(2 * h * w, h as u64)).unwrap();
        let got = session.run(&[&x]).expect("run");
        let fixed = Model::from_onnx_bytes(&bytes, &at(h, w)).expect("fixed load");
        let want = fixed.session().unwrap().run(&[&x]).expect("fixed run");
        assert_eq!(got[0].shape(), &[1, 4, h, w]);
        assert_eq!(got[0].to_f32_vec(), want[0].to_f32_vec(), "{h}x{w}");
    }
    for bad in [vec![1, 3, 5, 7], vec![2, 2, 5, 7], vec![1, 2, 5]] {
        let n = bad.iter().product();
        let x = Tensor::from_f32(bad.clone(), vec![0.5; n]).unwrap();
        match session.run(&[&x]) {
            Err(Error::Input(_)) => {}
            other => panic!("{bad:?}: expected a typed input error, got {other:?}"),
        }
    }
    let x = Tensor::from_f32(vec![1, 2, 5, 7], vec![0.5; 70]).unwrap();
    session.run(&[&x]).expect("usable after the errors");
    // A model whose file fixes its shapes keeps them.
    let fixed = conv_model(&[4, 2, 3, 3], &[1, 2, 5, 7]);
    let model = load(&fixed).expect("load");
    assert!(!model.is_dynamic());
    let x = Tensor::from_f32(vec![1, 2, 6, 7], vec![0.5; 84]).unwrap();
    assert!(matches!(
        model.session().unwrap().run(&[&x]),
        Err(Error::Input(_))
    ));
}

/// An input feeding an operand that must be known when the model is
/// prepared (here a Reshape's target shape) is named by a typed error at
/// load. Given its value at load, it becomes a constant: the model takes
/// only its other inputs and reshapes to that value. A value whose type
/// does not fit the input's declared one is refused.
#[test]
fn inputs_needed_to_prepare_are_named_then_fixed_at_load() {
    let mut shape_input = value_info("shape", &[2]);
    if let Some(tract_onnx::pb::type_proto::Value::TensorType(t)) =
        shape_input.r#type.as_mut().and_then(|t| t.value.as_mut())
    {
        t.elem_type = 7; // int64
    }
    let bytes = model_bytes(
        vec![node("Reshape", &["x", "shape"], &["y"], vec![])],
        vec![],
        vec![value_info("x", &[2, 3, 4]), shape_input],
        vec![value_info("y", &[])],
        13,
    );
    match Model::from_onnx_bytes(&bytes, &LoadOptions::default()) {
        Err(Error::InputValueNeeded { input, op_type, .. }) => {
            assert_eq!((input.as_str(), op_type.as_str()), ("shape", "Reshape"))
        }
        other => panic!("expected the input to be named, got {other:?}"),
    }
    let with = |value: Tensor| LoadOptions {
        input_values: [("shape".to_string(), value)].into(),
        ..LoadOptions::default()
    };
    let shape = Tensor::from_i64(vec![2], vec![4, -1]).unwrap();
    let model = Model::from_onnx_bytes(&bytes, &with(shape)).expect("load");
    let names: Vec<String> = model.inputs().into_iter().map(|i| i.name).collect();
    assert_eq!(names, ["x"]);
    let x = Tensor::from_f32(vec![2, 3, 4], pseudo_random(24, 3)).unwrap();
    let y = model.session().unwrap().run(&[&x]).expect("run");
    assert_eq!(y[0].shape(), &[4, 6]);
    assert_eq!(y[0].to_f32_vec(), x.to_f32_vec());
    for bad in [
        Tensor::from_f32(vec![2], vec![4.0, 6.0]).unwrap(),
        Tensor::from_i64(vec![3], vec![4, 6, 1]).unwrap(),
    ] {
        match Model::from_onnx_bytes(&bytes, &with(bad)) {
            Err(Error::Input(_)) => {}
            other => panic!("expected a typed input error, got {other:?}"),
        }
    }
}

/// Recurrent layers with inconsistent weights or unsupported settings give
/// typed errors, never a panic.
#[test]
fn malformed_recurrent_layers_are_typed_errors() {
    let lstm = |w: &[i64], r: &[i64], attrs: Vec<_>| {
        let n = |d: &[i64]| d.iter().product::<i64>() as usize;
        model_bytes(
            vec![node("LSTM", &["x", "w", "r"], &["y"], attrs)],
            vec![
                tensor_f32("w", w, pseudo_random(n(w), 1)),
                tensor_f32("r", r, pseudo_random(n(r), 2)),
            ],
            vec![value_info("x", &[4, 1, 3])],
            vec![value_info("y", &[])],
            14,
        )
    };
    // W for 2 features where x has 3; R not square per gate; 3 gates.
    for (w, r) in [
        (vec![1, 8, 2], vec![1, 8, 2]),
        (vec![1, 8, 3], vec![1, 8, 3]),
        (vec![1, 6, 3], vec![1, 6, 2]),
    ] {
        match load(&lstm(&w, &r, vec![])) {
            Err(Error::InvalidGraph { .. } | Error::Malformed(_)) => {}
            other => panic!("W {w:?}, R {r:?}: expected a typed error, got {other:?}"),
        }
    }
    let coupled = lstm(&[1, 8, 3], &[1, 8, 2], vec![attr_i("input_forget", 1)]);
    assert!(matches!(load(&coupled), Err(Error::UnsupportedOp { .. })));
    let good = lstm(&[1, 8, 3], &[1, 8, 2], vec![]);
    let model = load(&good).expect("a well-formed LSTM loads");
    let x = Tensor::from_f32(vec![4, 1, 3], pseudo_random(12, 3)).unwrap();
    let y = model.session().unwrap().run(&[&x]).expect("run");
    assert_eq!(y[0].shape(), &[4, 1, 1, 2]);
}

/// NonMaxSuppression's row count depends on the data: a session returns
/// the rows selected (also when its inputs are constants, which are not
/// folded), a node reading them is refused with a typed error (its padding
/// rows would reach it), and so is an IoU threshold outside [0, 1].
#[test]
fn non_max_suppression_returns_its_rows_and_only_as_an_output() {
    // Three boxes as corners; the second overlaps the first by IoU 0.82.
    let boxes = vec![
        0.0, 0.0, 1.0, 1.0, //
        0.0, 0.1, 1.0, 1.1, //
        0.0, 2.0, 1.0, 3.0,
    ];
    let scores = vec![0.9, 0.95, 0.5];
    // The model with `iou`, `scores` as an input or a constant, and the
    // nodes `extra` after the NMS giving output `out`.
    let model = |iou: f32, constant_scores: bool, extra: Vec<_>, out: &str| {
        let mut inits = vec![
            tensor_f32("boxes", &[1, 3, 4], boxes.clone()),
            tensor_i64("limit", &[1], vec![3]),
            tensor_f32("iou", &[1], vec![iou]),
        ];
        let mut inputs = vec![];
        if constant_scores {
            inits.push(tensor_f32("scores", &[1, 1, 3], scores.clone()));
        } else {
            inputs.push(value_info("scores", &[1, 1, 3]));
        }
        let ins = ["boxes", "scores", "limit", "iou"];
        let mut nodes = vec![node("NonMaxSuppression", &ins, &["selected"], vec![])];
        nodes.extend(extra);
        let bytes = model_bytes(nodes, inits, inputs, vec![value_info(out, &[])], 11);
        Model::from_onnx_bytes(&bytes, &LoadOptions::default())
    };
    let x = Tensor::from_f32(vec![1, 1, 3], scores.clone()).unwrap();
    let y = model(0.5, false, vec![], "selected").expect("load");
    let y = y.session().unwrap().run(&[&x]).expect("run");
    assert_eq!(y[0].shape(), &[2, 3], "box 0 is suppressed by box 1");
    assert_eq!(y[0].to_i64_vec(), [0, 0, 1, 0, 0, 2]);

    let y = model(0.5, true, vec![], "selected").expect("load");
    let y = y.session().unwrap().run(&[]).expect("run");
    assert_eq!(y[0].to_i64_vec(), [0, 0, 1, 0, 0, 2], "constant scores");

    let read = node("Cast", &["selected"], &["f"], vec![attr_i("to", 1)]);
    match model(0.5, false, vec![read], "f") {
        Err(Error::InvalidGraph { reason, .. }) => assert!(reason.contains("NonMaxSuppression")),
        other => panic!("expected a typed error, got {other:?}"),
    }
    match model(-0.1, false, vec![], "selected") {
        Err(Error::InvalidGraph { reason, .. }) => assert!(reason.contains("iou_threshold")),
        other => panic!("expected a typed error, got {other:?}"),
    }
}
