import Foundation
import XCTest

@testable import Squeeze

/// Camera frames, checked against the Rust CLI's results for the same files.
final class FrameTests: XCTestCase {
    let width = 96
    let height = 80
    var fixtures: Fixtures!
    var session: Session!

    override func setUpWithError() throws {
        fixtures = try Fixtures.load()
        session = try Model(path: fixtures.model).makeSession()
    }

    /// RGBA rotated 90°, as `squeeze run --input frame.rgba --frame-size 96x80 --rotate 90`.
    func testRGBAFrameMatchesCLI() throws {
        let rgba = try fixtures.data("frame.rgba")
        XCTAssertEqual(rgba.count, width * height * 4)
        let expected = try Npy(fixtures.data("fout/probs.npy")).values
        let options = FrameOptions(rotationDegrees: 90)

        let outputs = try rgba.withUnsafeBytes { bytes in
            try session.run(frame: Frame(format: .rgba, width: width, height: height, bytes: bytes), options: options)
        }
        assertClose(outputs[0].elements(of: Float.self), expected, "rgba")

        // The same pixels with padded rows (a row stride past width × 4)...
        let stride = width * 4 + 32
        var padded = Data(repeating: 0xEE, count: stride * (height - 1) + width * 4)
        for y in 0..<height {
            padded.replaceSubrange(y * stride..<(y * stride + width * 4), with: rgba[(y * width * 4)..<((y + 1) * width * 4)])
        }
        var probs = [Float](repeating: .nan, count: 10)
        try padded.withUnsafeBytes { bytes in
            try probs.withUnsafeMutableBytes { out in
                let frame = Frame(format: .rgba, width: width, height: height, bytes: bytes, rowStride: stride)
                try session.run(frame: frame, options: options, outputs: [out])
            }
        }
        assertClose(probs, expected, "padded rgba")

        // ...and as BGRA, the layout of kCVPixelFormatType_32BGRA.
        var bgra = rgba
        for i in Swift.stride(from: 0, to: bgra.count, by: 4) {
            bgra.swapAt(i, i + 2)
        }
        let fromBGRA = try bgra.withUnsafeBytes { bytes in
            try session.run(frame: Frame(format: .bgra, width: width, height: height, bytes: bytes), options: options)
        }
        assertClose(fromBGRA[0].elements(of: Float.self), expected, "bgra")
    }

    /// NV12 in two buffers, set up as the CVPixelBuffer path does for
    /// `420v` (U and V from the interleaved CbCr plane, pixel stride 2),
    /// as `squeeze run --input frame.nv12 --frame-size 96x80 --crop 8,4,64,72
    /// --rotate 270 --mirror --yuv-matrix bt709 --video-range`.
    func testNV12FrameMatchesCLI() throws {
        let nv12 = try fixtures.data("frame.nv12")
        XCTAssertEqual(nv12.count, width * height * 3 / 2)
        let expected = try Npy(fixtures.data("nout/probs.npy")).values
        // Separate allocations with padded rows, as a camera's planes are.
        let yStride = width + 16
        let cStride = width + 48
        let luma = UnsafeMutableRawBufferPointer.allocate(byteCount: yStride * height, alignment: 64)
        let chroma = UnsafeMutableRawBufferPointer.allocate(byteCount: cStride * height / 2, alignment: 64)
        defer {
            luma.deallocate()
            chroma.deallocate()
        }
        luma.initializeMemory(as: UInt8.self, repeating: 0x55)
        chroma.initializeMemory(as: UInt8.self, repeating: 0x99)
        nv12.withUnsafeBytes { src in
            for y in 0..<height {
                luma.baseAddress!.advanced(by: y * yStride)
                    .copyMemory(from: src.baseAddress!.advanced(by: y * width), byteCount: width)
            }
            for y in 0..<(height / 2) {
                chroma.baseAddress!.advanced(by: y * cStride)
                    .copyMemory(from: src.baseAddress!.advanced(by: width * height + y * width), byteCount: width)
            }
        }
        let cCount = (height / 2 - 1) * cStride + width
        let frame = Frame(format: .yuv420, width: width, height: height, planes: [
            .init(bytes: UnsafeRawBufferPointer(luma), rowStride: yStride, pixelStride: 1),
            .init(bytes: UnsafeRawBufferPointer(start: chroma.baseAddress, count: cCount), rowStride: cStride, pixelStride: 2),
            .init(bytes: UnsafeRawBufferPointer(start: chroma.baseAddress! + 1, count: cCount - 1), rowStride: cStride, pixelStride: 2),
        ])
        let options = FrameOptions(
            crop: .init(x: 8, y: 4, width: 64, height: 72), rotationDegrees: 270, mirror: true,
            yuvMatrix: .bt709, yuvRange: .video)
        let outputs = try session.run(frame: frame, options: options)
        assertClose(outputs[0].elements(of: Float.self), expected, "nv12")

        // Planes that do not hold the frame; then the good frame again.
        var bad = frame
        bad.planes[0].rowStride = width - 1
        assertThrows(.frame) { try session.run(frame: bad, options: options) }
        bad = frame
        bad.planes[1].bytes = UnsafeRawBufferPointer(start: chroma.baseAddress, count: 10)
        assertThrows(.frame) { try session.run(frame: bad, options: options) }
        bad = frame
        bad.planes[2].pixelStride = 0
        assertThrows(.frame) { try session.run(frame: bad, options: options) }
        bad = frame
        bad.planes[2].bytes = UnsafeRawBufferPointer(start: nil, count: 0)
        assertThrows(.nullPointer) { try session.run(frame: bad, options: options) }
        let again = try session.run(frame: frame, options: options)
        assertClose(again[0].elements(of: Float.self), expected, "nv12 after failures")

        // Full range BT.601 (the defaults) reads the same pixels differently.
        var defaults = options
        defaults.yuvMatrix = nil
        defaults.yuvRange = nil
        let other = try session.run(frame: frame, options: defaults)[0].elements(of: Float.self)
        XCTAssertNotEqual(other, outputs[0].elements(of: Float.self))
    }
}
