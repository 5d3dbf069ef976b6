import CSqueeze
import Foundation

/// A loaded model: immutable, shareable by any number of threads. Make one
/// `Session` per thread that runs it.
public final class Model: @unchecked Sendable {
    let handle: OpaquePointer
    public let inputs: [TensorInfo]
    public let outputs: [TensorInfo]
    public let metadata: ModelMetadata
    /// The class labels the packer recorded (`squeeze pack --labels`).
    public let labels: [String]

    /// Loads the model file at `path`: a `.sqz` is memory-mapped and its
    /// weights used in place (the way to load one bundled with an app).
    public convenience init(path: String, options: LoadOptions = LoadOptions()) throws {
        var opts = try options.c()
        try self.init { out in sqz_model_load_path(path, &opts, out) }
    }

    /// Loads a `.sqz` held in memory. The library copies what it keeps, so
    /// `data` need not outlive the call.
    public convenience init(data: Data, options: LoadOptions = LoadOptions()) throws {
        var opts = try options.c()
        try self.init { out in
            data.withUnsafeBytes { bytes -> SqzStatus in
                // An empty Data may have no address; the library reports
                // NULL as such, so hand it a valid one for "0 bytes".
                var none: UInt8 = 0
                guard let base = bytes.baseAddress else {
                    return sqz_model_load_buffer(&none, 0, SQZ_BUFFER_MODE_COPY.rawValue, &opts, out)
                }
                return sqz_model_load_buffer(
                    base.assumingMemoryBound(to: UInt8.self), bytes.count,
                    SQZ_BUFFER_MODE_COPY.rawValue, &opts, out)
            }
        }
    }

    /// Loads a `.sqz` stored in `length` bytes of the open file
    /// `fileDescriptor` from `offset` (`length` 0: to the end of the file)
    /// by mapping that region, e.g. a model inside a larger asset file. The
    /// descriptor stays the caller's and may be closed on return.
    public convenience init(
        fileDescriptor: Int32, offset: UInt64 = 0, length: UInt64 = 0,
        options: LoadOptions = LoadOptions()
    ) throws {
        var opts = try options.c()
        try self.init { out in sqz_model_load_fd(fileDescriptor, offset, length, &opts, out) }
    }

    private init(load: (UnsafeMutablePointer<OpaquePointer?>) -> SqzStatus) throws {
        var raw: OpaquePointer?
        try check(load(&raw))
        guard let handle = raw else {
            throw SqueezeError(.nullPointer, "the library returned no model")
        }
        do {
            inputs = try Model.ports(handle, outputs: false)
            outputs = try Model.ports(handle, outputs: true)
            var meta = SqzModelMetadata()
            try check(sqz_model_metadata(handle, &meta))
            metadata = ModelMetadata(
                name: String(cString: meta.name),
                version: String(cString: meta.version),
                producer: String(cString: meta.producer))
            labels = try (0..<meta.label_count).map { i in
                var label: UnsafePointer<CChar>?
                try check(sqz_model_label(handle, i, &label))
                return label.map { String(cString: $0) } ?? ""
            }
        } catch {
            sqz_model_free(handle)
            throw error
        }
        self.handle = handle
    }

    private static func ports(_ handle: OpaquePointer, outputs: Bool) throws -> [TensorInfo] {
        var count = 0
        try check(sqz_model_port_count(handle, outputs, &count))
        return try (0..<count).map { i in
            var info = SqzTensorInfo()
            try check(sqz_model_port_info(handle, outputs, i, &info))
            guard let dtype = DType(rawValue: info.dtype) else {
                throw SqueezeError(.unsupported, "element type \(info.dtype) is unknown to this Swift layer")
            }
            let shape = (0..<info.rank).map { Int(info.shape[$0]) }
            return TensorInfo(
                name: String(cString: info.name), dtype: dtype, shape: shape,
                byteCount: info.byte_len)
        }
    }

    deinit {
        sqz_model_free(handle)
    }

    /// A new session: its own activation memory and worker threads.
    public func makeSession() throws -> Session {
        try Session(model: self)
    }

    /// The library's version, e.g. "0.1.0".
    public static var libraryVersion: String { String(cString: sqz_version()) }
}
