import CSqueeze
import Foundation
import XCTest

@testable import Squeeze

/// Loading and running the bundled tiny classifier, checked against what the
/// Rust CLI computed for the same inputs.
final class ModelTests: XCTestCase {
    var fixtures: Fixtures!
    var input: Npy!
    var expected: Npy!

    override func setUpWithError() throws {
        fixtures = try Fixtures.load()
        input = try Npy(fixtures.data("x.npy"))
        expected = try Npy(fixtures.data("out/probs.npy"))
    }

    func testPortsMetadataAndLabels() throws {
        let model = try Model(path: fixtures.model)
        XCTAssertEqual(model.inputs, [TensorInfo(name: "image", dtype: .f32, shape: [1, 3, 64, 64], byteCount: 3 * 64 * 64 * 4)])
        XCTAssertEqual(model.outputs, [TensorInfo(name: "probs", dtype: .f32, shape: [1, 10], byteCount: 40)])
        XCTAssertEqual(model.inputs[0].elementCount, 3 * 64 * 64)
        XCTAssertEqual(model.metadata.name, "tiny")
        XCTAssertEqual(model.metadata.version, "3")
        XCTAssertTrue(model.metadata.producer.hasPrefix("squeeze"), model.metadata.producer)
        XCTAssertEqual(model.labels, (0..<10).map { "c\($0)" })
        XCTAssertFalse(Model.libraryVersion.isEmpty)
        XCTAssertTrue(model.metadata.producer.hasSuffix(Model.libraryVersion), model.metadata.producer)
    }

    /// The Swift enums' raw values are the header's.
    func testEnumsMirrorTheHeader() {
        XCTAssertEqual(DType.allCases.map(\.rawValue), [
            SQZ_DTYPE_F32, SQZ_DTYPE_I64, SQZ_DTYPE_U8, SQZ_DTYPE_I8, SQZ_DTYPE_I32,
        ].map(\.rawValue))
        XCTAssertEqual(LoadOptions.ISA.allCases.map(\.rawValue), [
            SQZ_ISA_AUTO, SQZ_ISA_SCALAR, SQZ_ISA_AVX2, SQZ_ISA_AVX512, SQZ_ISA_NEON,
        ].map(\.rawValue))
        XCTAssertEqual(Frame.PixelFormat.allCases.map(\.rawValue), [
            SQZ_PIXEL_FORMAT_YUV420, SQZ_PIXEL_FORMAT_RGBA, SQZ_PIXEL_FORMAT_BGRA, SQZ_PIXEL_FORMAT_RGB,
        ].map(\.rawValue))
        XCTAssertEqual(FrameOptions.YUVMatrix.allCases.map(\.rawValue),
                       [SQZ_YUV_MATRIX_BT601, SQZ_YUV_MATRIX_BT709].map(\.rawValue))
        XCTAssertEqual(FrameOptions.YUVRange.allCases.map(\.rawValue),
                       [SQZ_YUV_RANGE_FULL, SQZ_YUV_RANGE_VIDEO].map(\.rawValue))
        XCTAssertEqual(FrameOptions.Resize.allCases.map(\.rawValue),
                       [SQZ_RESIZE_AREA, SQZ_RESIZE_TRIANGLE].map(\.rawValue))
        let statuses: [(SqueezeError.Status, SqzStatus)] = [
            (.nullPointer, SQZ_STATUS_NULL_POINTER), (.invalidArgument, SQZ_STATUS_INVALID_ARGUMENT),
            (.io, SQZ_STATUS_IO), (.invalidModel, SQZ_STATUS_INVALID_MODEL),
            (.unsupported, SQZ_STATUS_UNSUPPORTED), (.bufferSize, SQZ_STATUS_BUFFER_SIZE),
            (.dtype, SQZ_STATUS_DTYPE), (.frame, SQZ_STATUS_FRAME), (.busy, SQZ_STATUS_BUSY),
            (.panic, SQZ_STATUS_PANIC), (.poisoned, SQZ_STATUS_POISONED),
        ]
        XCTAssertEqual(statuses.count, SqueezeError.Status.allCases.count - 1) // all but .unknown
        for (swift, c) in statuses {
            XCTAssertEqual(swift.rawValue, Int(c.rawValue), "\(swift)")
        }
        XCTAssertEqual(MemoryLayout<SqzStatus>.size, 4)
    }

    /// `run(inputs: [Data])`, run twice on one session (the arena is reused).
    func testRunDataMatchesCLI() throws {
        let session = try Model(path: fixtures.model).makeSession()
        for round in 0..<2 {
            let outputs = try session.run(inputs: [input.bytes])
            XCTAssertEqual(outputs.count, 1)
            XCTAssertEqual(outputs[0].count, 40)
            assertClose(outputs[0].elements(of: Float.self), expected.values, "round \(round)")
        }
    }

    /// Typed inputs.
    func testRunTypedMatchesCLI() throws {
        let session = try Model(path: fixtures.model).makeSession()
        let outputs = try session.run([input.values])
        assertClose(outputs[0].elements(of: Float.self), expected.values)
    }

    /// The zero-copy run into the caller's buffers; an output with no buffer is skipped.
    func testRunIntoCallerBuffersMatchesCLI() throws {
        let session = try Model(path: fixtures.model).makeSession()
        var probs = [Float](repeating: .nan, count: 10)
        try input.values.withUnsafeBytes { x in
            try probs.withUnsafeMutableBytes { out in
                try session.run(inputs: [x], outputs: [out])
            }
        }
        assertClose(probs, expected.values)
        try input.values.withUnsafeBytes { x in
            try session.run(inputs: [x], outputs: [UnsafeMutableRawBufferPointer(start: nil, count: 0)])
        }
    }

    /// Several sessions of one model, and a session outliving the caller's model reference.
    func testSessionsShareTheModel() throws {
        var model: Model? = try Model(path: fixtures.model, options: LoadOptions(threads: 1, verifySHA256: true))
        let first = try model!.makeSession()
        let second = try model!.makeSession()
        model = nil
        assertClose(try first.run(inputs: [input.bytes])[0].elements(of: Float.self), expected.values)
        assertClose(try second.run(inputs: [input.bytes])[0].elements(of: Float.self), expected.values)
        XCTAssertEqual(first.model.outputs[0].name, "probs")
    }

    /// Loading from memory copies: the buffer may change afterwards.
    func testLoadFromDataCopies() throws {
        var bytes = try fixtures.data("tiny.sqz")
        let model = try Model(data: bytes)
        bytes.resetBytes(in: 0..<bytes.count)
        bytes = Data()
        let outputs = try model.makeSession().run(inputs: [input.bytes])
        assertClose(outputs[0].elements(of: Float.self), expected.values)
        XCTAssertEqual(model.labels.count, 10)
    }

    /// A model stored inside a larger file, loaded through a descriptor
    /// that is closed right after.
    func testLoadFromFileDescriptorRegion() throws {
        let sqz = try fixtures.data("tiny.sqz")
        let prefix = Data((0..<1234).map { UInt8(truncatingIfNeeded: $0 * 7) })
        let suffix = Data(repeating: 0xAB, count: 567)
        let bundle = try fixtures.scratch("bundle.bin", prefix + sqz + suffix)
        let tail = try fixtures.scratch("tail.bin", prefix + sqz)

        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: bundle))
        let model = try Model(fileDescriptor: handle.fileDescriptor, offset: UInt64(prefix.count), length: UInt64(sqz.count))
        handle.closeFile()
        assertClose(try model.makeSession().run(inputs: [input.bytes])[0].elements(of: Float.self), expected.values)
        XCTAssertEqual(model.metadata.name, "tiny")

        // length 0: to the end of the file
        let tailHandle = try XCTUnwrap(FileHandle(forReadingAtPath: tail))
        defer { tailHandle.closeFile() }
        let toEnd = try Model(fileDescriptor: tailHandle.fileDescriptor, offset: UInt64(prefix.count))
        assertClose(try toEnd.makeSession().run(inputs: [input.bytes])[0].elements(of: Float.self), expected.values)
    }

    func testLoadFromWholeFileDescriptor() throws {
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: fixtures.model))
        defer { handle.closeFile() }
        let model = try Model(fileDescriptor: handle.fileDescriptor)
        XCTAssertEqual(model.outputs.first?.name, "probs")
    }
}
