import Foundation
import XCTest

@testable import Squeeze

/// The files scripts/test-swift.sh makes with the Rust CLI, in the directory
/// named by SQUEEZE_SWIFT_FIXTURES:
///
/// - tiny.sqz: models/tiny-classifier.onnx packed with a name, version 3,
///   labels c0...c9 and ImageNet mean/std (input `image` f32 [1,3,64,64],
///   output `probs` f32 [1,10]);
/// - x.npy: the input, x[i] = ((i*37) % 101)/100; out/probs.npy: the CLI's output;
/// - frame.rgba: 96x80 RGBA, byte (x*3 + y*5 + c*7) % 256; fout/probs.npy:
///   the CLI's output for it rotated 90°;
/// - frame.nv12: 96x80 NV12 (see test-swift.sh); nout/probs.npy: the CLI's
///   output for it with crop 8,4,64,72, rotation 270, mirror, BT.709, video range.
struct Fixtures {
    let dir: URL

    static let variable = "SQUEEZE_SWIFT_FIXTURES"

    static func load() throws -> Fixtures {
        guard let path = ProcessInfo.processInfo.environment[variable], !path.isEmpty else {
            throw FixtureError("\(variable) is not set: run the tests through scripts/test-swift.sh, which makes the fixtures")
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue else {
            throw FixtureError("\(variable)=\(path) is not a directory")
        }
        return Fixtures(dir: URL(fileURLWithPath: path))
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func data(_ name: String) throws -> Data {
        try Data(contentsOf: dir.appendingPathComponent(name))
    }

    var model: String { path("tiny.sqz") }

    /// A fresh file in a scratch directory of the fixtures.
    func scratch(_ name: String, _ contents: Data) throws -> String {
        let scratch = dir.appendingPathComponent("scratch")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        let url = scratch.appendingPathComponent(name)
        try contents.write(to: url)
        return url.path
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A little-endian f32 .npy file (numpy format 1.0 to 3.0): shape and values.
struct Npy {
    let shape: [Int]
    let values: [Float]
    /// The raw little-endian bytes of the values.
    let bytes: Data

    init(_ data: Data) throws {
        let d = [UInt8](data)
        guard d.count >= 10, d[0] == 0x93, Array(d[1...5]) == Array("NUMPY".utf8) else {
            throw FixtureError("not a .npy file")
        }
        let major = d[6]
        let (lengthBytes, start) = major == 1 ? (2, 10) : (4, 12)
        guard d.count >= start else { throw FixtureError("a truncated .npy header") }
        var headerLength = 0
        for i in (0..<lengthBytes).reversed() { headerLength = headerLength << 8 | Int(d[8 + i]) }
        guard d.count >= start + headerLength else { throw FixtureError("a truncated .npy header") }
        let header = String(decoding: d[start..<(start + headerLength)], as: UTF8.self)
        guard header.contains("'descr': '<f4'"), header.contains("'fortran_order': False") else {
            throw FixtureError("not a C-order little-endian f32 .npy: \(header)")
        }
        guard let open = header.range(of: "'shape': ("),
              let close = header.range(of: ")", range: open.upperBound..<header.endIndex)
        else { throw FixtureError("no shape in \(header)") }
        shape = header[open.upperBound..<close.lowerBound]
            .split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty }
            .map { Int($0)! }
        let count = shape.reduce(1, *)
        bytes = data.subdata(in: (data.startIndex + start + headerLength)..<data.endIndex)
        guard bytes.count == count * 4 else {
            throw FixtureError(".npy of shape \(shape) has \(bytes.count) data bytes")
        }
        values = bytes.withUnsafeBytes { raw in
            (0..<count).map { i in
                Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)))
            }
        }
    }
}

/// Asserts two float vectors agree within `tolerance` everywhere.
func assertClose(
    _ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5,
    _ what: String = "", file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(actual.count, expected.count, "\(what): element count", file: file, line: line)
    var worst: Float = 0
    var worstAt = -1
    for (i, (a, e)) in zip(actual, expected).enumerated() {
        let diff = abs(a - e)
        if diff.isNaN || diff > worst {
            worst = diff
            worstAt = i
            if diff.isNaN { break }
        }
    }
    XCTAssertTrue(worst <= tolerance, "\(what): max |diff| \(worst) at \(worstAt) > \(tolerance): \(actual) vs \(expected)",
                  file: file, line: line)
}

/// Asserts `body` throws a `SqueezeError` of `status` with a message
/// (containing `text`, if given).
func assertThrows<T>(
    _ status: SqueezeError.Status, containing text: String? = nil,
    file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("no error; expected \(status)", file: file, line: line)
    } catch let error as SqueezeError {
        XCTAssertEqual(error.status, status, "\(error)", file: file, line: line)
        XCTAssertEqual(error.code, status.rawValue, file: file, line: line)
        XCTAssertFalse(error.message.isEmpty, "an empty message for \(status)", file: file, line: line)
        if let text = text {
            XCTAssertTrue(error.message.contains(text), "\(error) does not mention \(text)", file: file, line: line)
        }
    } catch {
        XCTFail("not a SqueezeError: \(error)", file: file, line: line)
    }
}
