import CSqueeze

/// A failed call: the library's status and its message.
///
/// Every throwing call of this package throws a `SqueezeError`. Errors from
/// the library carry its `SqzStatus` and `sqz_last_error()` text; the few
/// the Swift layer finds itself (a value that does not fit the C types, an
/// unsupported `CVPixelBuffer` format) use the status the library would.
public struct SqueezeError: Error, Equatable, CustomStringConvertible, Sendable {
    /// `SqzStatus` without `SQZ_STATUS_OK`; raw values are the C ones.
    public enum Status: Int, Sendable, CaseIterable {
        /// A required pointer argument was NULL.
        case nullPointer = 1
        /// An argument is out of range or inconsistent.
        case invalidArgument = 2
        /// The file could not be opened, read or mapped.
        case io = 3
        /// The model file is corrupt, truncated or fails its checksums.
        case invalidModel = 4
        /// The model needs an operator or feature this build lacks.
        case unsupported = 5
        /// A buffer's byte length is not what the tensor needs.
        case bufferSize = 6
        /// A buffer's element type is not the tensor's.
        case dtype = 7
        /// A camera frame is inconsistent (planes, strides, crop, rotation).
        case frame = 8
        /// The session is running on another thread; nothing was done.
        case busy = 9
        /// The library panicked (a bug); the handle involved is poisoned.
        case panic = 10
        /// The handle panicked before and refuses further use.
        case poisoned = 11
        /// A status this Swift layer does not know (a newer library).
        case unknown = -1
    }

    public let status: Status
    /// The raw `SqzStatus` value (differs from `status.rawValue` only for `.unknown`).
    public let code: Int
    public let message: String

    public init(_ status: Status, _ message: String) {
        self.status = status
        self.code = status.rawValue
        self.message = message
    }

    init(code: Int, message: String) {
        self.status = Status(rawValue: code) ?? .unknown
        self.code = code
        self.message = message
    }

    public var description: String { "squeeze: \(status) (\(code)): \(message)" }
}

/// Throws the calling thread's last error unless `status` is OK. Call it
/// right after the C call, on the same thread: the message is thread-local.
@inline(__always)
func check(_ status: SqzStatus) throws {
    if status == SQZ_STATUS_OK { return }
    throw SqueezeError(code: Int(status.rawValue), message: String(cString: sqz_last_error()))
}

/// `value` as a C `uint32_t`, or an `.invalidArgument` error naming it.
func uint32(_ value: Int, _ what: @autoclosure () -> String) throws -> UInt32 {
    guard let v = UInt32(exactly: value) else {
        throw SqueezeError(.invalidArgument, "\(what()) = \(value) does not fit a uint32_t")
    }
    return v
}
