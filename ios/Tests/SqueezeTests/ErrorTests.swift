import Foundation
import XCTest

@testable import Squeeze

/// Every error path reaches Swift as a `SqueezeError` with the library's
/// status and a message.
final class ErrorTests: XCTestCase {
    var fixtures: Fixtures!

    override func setUpWithError() throws {
        fixtures = try Fixtures.load()
    }

    func testBadPathIsIO() {
        assertThrows(.io) { try Model(path: fixtures.path("no-such-model.sqz")) }
        assertThrows(.io) { try Model(path: "/nonexistent/dir/model.sqz") }
    }

    func testCorruptFileIsInvalidModel() throws {
        var bytes = try fixtures.data("tiny.sqz")
        bytes[bytes.count / 2] ^= 0xFF
        let path = try fixtures.scratch("corrupt.sqz", bytes)
        assertThrows(.invalidModel, containing: "checksum") { try Model(path: path) }
        assertThrows(.invalidModel, containing: "checksum") { try Model(data: bytes) }

        var magic = try fixtures.data("tiny.sqz")
        magic[0] ^= 0xFF
        assertThrows(.invalidModel) { try Model(data: magic) }
        assertThrows(.invalidModel) { try Model(data: Data("not a model at all".utf8)) }
        assertThrows(.invalidModel) { try Model(data: Data()) }
    }

    func testTruncatedFileIsInvalidModel() throws {
        let whole = try fixtures.data("tiny.sqz")
        let half = whole.prefix(whole.count / 2)
        let path = try fixtures.scratch("truncated.sqz", half)
        assertThrows(.invalidModel, containing: "truncated") { try Model(path: path) }
        assertThrows(.invalidModel) { try Model(data: half) }
        assertThrows(.invalidModel) { try Model(data: whole.prefix(16)) }

        // A descriptor region one byte short of the model.
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: fixtures.model))
        defer { handle.closeFile() }
        assertThrows(.invalidModel) {
            try Model(fileDescriptor: handle.fileDescriptor, offset: 0, length: UInt64(whole.count - 1))
        }
    }

    func testBadDescriptorRegions() throws {
        let handle = try XCTUnwrap(FileHandle(forReadingAtPath: fixtures.model))
        defer { handle.closeFile() }
        let size = UInt64(try fixtures.data("tiny.sqz").count)
        assertThrows(.invalidArgument) { try Model(fileDescriptor: -1) }
        assertThrows(.invalidArgument) { try Model(fileDescriptor: handle.fileDescriptor, offset: size + 1) }
        assertThrows(.invalidArgument) {
            try Model(fileDescriptor: handle.fileDescriptor, offset: 0, length: size + 100)
        }
        // Not where the model starts.
        assertThrows(.invalidModel) { try Model(fileDescriptor: handle.fileDescriptor, offset: 3) }
    }

    func testWrongBufferSize() throws {
        let session = try Model(path: fixtures.model).makeSession()
        let input = try Npy(fixtures.data("x.npy"))
        assertThrows(.bufferSize, containing: "image") { try session.run(inputs: [input.bytes.prefix(100)]) }
        assertThrows(.bufferSize) { try session.run(inputs: [input.bytes + Data(count: 4)]) }
        assertThrows(.bufferSize) { try session.run([[Float](repeating: 0, count: 10)]) }
        var small = [Float](repeating: 0, count: 9)
        assertThrows(.bufferSize, containing: "probs") {
            try input.values.withUnsafeBytes { x in
                try small.withUnsafeMutableBytes { out in try session.run(inputs: [x], outputs: [out]) }
            }
        }
        // The session is still fine afterwards.
        let outputs = try session.run(inputs: [input.bytes])
        assertClose(outputs[0].elements(of: Float.self), try Npy(fixtures.data("out/probs.npy")).values)
    }

    /// An element type the input is not: i32 has f32's size, so only the type is wrong.
    func testWrongDtype() throws {
        let session = try Model(path: fixtures.model).makeSession()
        assertThrows(.dtype, containing: "image") { try session.run([[Int32](repeating: 0, count: 3 * 64 * 64)]) }
        assertThrows(.dtype) { try session.run([[UInt8](repeating: 0, count: 3 * 64 * 64 * 4)]) }
    }

    func testWrongCounts() throws {
        let session = try Model(path: fixtures.model).makeSession()
        let input = try Npy(fixtures.data("x.npy"))
        assertThrows(.invalidArgument) { try session.run(inputs: [Data]()) }
        assertThrows(.invalidArgument) { try session.run(inputs: [input.bytes, input.bytes]) }
        assertThrows(.invalidArgument) {
            try input.values.withUnsafeBytes { x in try session.run(inputs: [x], outputs: []) }
        }
    }

    func testBadFrames() throws {
        let session = try Model(path: fixtures.model).makeSession()
        let (w, h) = (96, 80)
        let rgba = try fixtures.data("frame.rgba")
        rgba.withUnsafeBytes { bytes in
            func frame(rowStride: Int? = nil, pixelStride: Int = 4, count: Int? = nil) -> Frame {
                let plane = Frame.Plane(
                    bytes: UnsafeRawBufferPointer(rebasing: bytes[0..<(count ?? bytes.count)]),
                    rowStride: rowStride ?? w * 4, pixelStride: pixelStride)
                return Frame(format: .rgba, width: w, height: h, planes: [plane])
            }
            // Rows that overlap: a row stride under width × pixel stride.
            assertThrows(.frame) { try session.run(frame: frame(rowStride: w * 4 - 4)) }
            // A pixel stride too small for RGBA.
            assertThrows(.frame) { try session.run(frame: frame(pixelStride: 3)) }
            // Strides that run past the plane's bytes.
            assertThrows(.frame) { try session.run(frame: frame(rowStride: w * 4 + 4)) }
            assertThrows(.frame) { try session.run(frame: frame(count: bytes.count - w * 4)) }
            // A frame larger than its bytes.
            assertThrows(.frame) {
                try session.run(frame: Frame(format: .rgba, width: w, height: h + 1, bytes: bytes))
            }
            // Options that do not fit the frame.
            assertThrows(.frame) { try session.run(frame: frame(), options: FrameOptions(rotationDegrees: 45)) }
            assertThrows(.frame) { try session.run(frame: frame(), options: FrameOptions(rotationDegrees: -90)) }
            assertThrows(.frame) {
                try session.run(frame: frame(), options: FrameOptions(crop: .init(x: 90, y: 0, width: 10, height: 10)))
            }
            assertThrows(.frame) {
                try session.run(frame: frame(), options: FrameOptions(crop: .init(x: 0, y: 0, width: 0, height: 10)))
            }
            // Planes the format does not have.
            assertThrows(.frame) {
                try session.run(frame: Frame(format: .yuv420, width: w, height: h, planes: frame().planes))
            }
            // A plane without memory.
            assertThrows(.nullPointer) {
                try session.run(frame: Frame(format: .rgba, width: w, height: h, planes: [
                    .init(bytes: UnsafeRawBufferPointer(start: nil, count: 0), rowStride: w * 4, pixelStride: 4),
                ]))
            }
        }
    }

    /// Forcing an instruction set this CPU lacks.
    func testUnsupportedISA() throws {
        #if arch(x86_64)
        assertThrows(.unsupported) { try Model(path: fixtures.model, options: LoadOptions(isa: .neon)) }
        #elseif arch(arm64)
        assertThrows(.unsupported) { try Model(path: fixtures.model, options: LoadOptions(isa: .avx2)) }
        #endif
        XCTAssertNoThrow(try Model(path: fixtures.model, options: LoadOptions(isa: .scalar)))
    }

    func testNegativeThreadCount() {
        assertThrows(.invalidArgument) { try Model(path: fixtures.model, options: LoadOptions(threads: -1)) }
    }
}
