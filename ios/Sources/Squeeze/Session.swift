import CSqueeze
import Foundation

/// A session of a model: its activation memory and worker threads, entered
/// by one thread at a time. A call made while another thread is inside
/// throws `.busy` and does nothing, so a `Session` may be shared, but the
/// way to run on several threads is one session per thread.
public final class Session: @unchecked Sendable {
    /// The model; the session keeps it alive.
    public let model: Model
    let handle: OpaquePointer

    init(model: Model) throws {
        var raw: OpaquePointer?
        try check(sqz_session_create(model.handle, &raw))
        guard let handle = raw else {
            throw SqueezeError(.nullPointer, "the library returned no session")
        }
        self.model = model
        self.handle = handle
    }

    deinit {
        sqz_session_free(handle)
    }

    // MARK: Tensors

    /// Runs the model without copies of its own: reads one buffer per model
    /// input (in order, of the input's `byteCount` bytes and element type)
    /// and writes each output into the buffer at its index (of the output's
    /// `byteCount` bytes; a buffer with no address skips that output). The
    /// library allocates nothing after the first run, and this layer's
    /// descriptors of the buffers live on the stack.
    public func run(inputs: [UnsafeRawBufferPointer], outputs: [UnsafeMutableRawBufferPointer]) throws {
        try run(inputs: inputs, dtype: { i in
            i < model.inputs.count ? model.inputs[i].dtype : .f32
        }, outputs: outputs)
    }

    /// Runs the model on one `Data` per input (raw bytes in native order,
    /// of the input's `byteCount`) and returns one `Data` per output.
    public func run(inputs: [Data]) throws -> [Data] {
        try Session.withBuffers(inputs) { ins in
            try withOutputs { outs in try run(inputs: ins, outputs: outs) }
        }
    }

    /// Runs the model on typed inputs, one array per input, whose element
    /// type must be the input's (else `.dtype`), and returns one `Data` per
    /// output (read it with `Data.elements(of:)`).
    public func run<T: TensorElement>(_ inputs: [[T]]) throws -> [Data] {
        try Session.withArrays(inputs) { ins in
            try withOutputs { outs in
                try run(inputs: ins, dtype: { _ in T.dtype }, outputs: outs)
            }
        }
    }

    private func run(
        inputs: [UnsafeRawBufferPointer], dtype: (Int) -> DType, outputs: [UnsafeMutableRawBufferPointer]
    ) throws {
        let status = withUnsafeTemporaryAllocation(of: SqzInput.self, capacity: inputs.count) { ins in
            for (i, buffer) in inputs.enumerated() {
                ins.baseAddress!.advanced(by: i).initialize(to: SqzInput(
                    dtype: dtype(i).rawValue, data: buffer.baseAddress, byte_len: buffer.count))
            }
            return withOutputDescriptors(outputs) { outs in
                sqz_session_run(handle, ins.baseAddress, inputs.count, outs.baseAddress, outputs.count)
            }
        }
        try check(status)
    }

    // MARK: Frames

    /// Runs the model on a camera frame: crops, rotates, mirrors and
    /// resizes it per `options` straight into the model's one image input,
    /// with the preprocessing recorded in the `.sqz`, and writes the outputs
    /// as `run(inputs:outputs:)` does. The frame is read in place.
    public func run(frame: Frame, options: FrameOptions = FrameOptions(), outputs: [UnsafeMutableRawBufferPointer]) throws {
        var cFrame = try frame.c()
        var cOptions = try options.c()
        let status = withOutputDescriptors(outputs) { outs in
            sqz_session_run_frame(handle, &cFrame, &cOptions, outs.baseAddress, outputs.count)
        }
        try check(status)
    }

    /// `run(frame:options:outputs:)` returning one `Data` per output.
    public func run(frame: Frame, options: FrameOptions = FrameOptions()) throws -> [Data] {
        try withOutputs { outs in try run(frame: frame, options: options, outputs: outs) }
    }

    // MARK: Buffers

    /// Calls `body` with the C descriptors of `buffers` (on the stack).
    private func withOutputDescriptors<R>(
        _ buffers: [UnsafeMutableRawBufferPointer], _ body: (UnsafeMutableBufferPointer<SqzOutput>) -> R
    ) -> R {
        withUnsafeTemporaryAllocation(of: SqzOutput.self, capacity: buffers.count) { outs in
            for (i, buffer) in buffers.enumerated() {
                let dtype = i < model.outputs.count ? model.outputs[i].dtype : .f32
                outs.baseAddress!.advanced(by: i).initialize(to: SqzOutput(
                    dtype: dtype.rawValue, data: buffer.baseAddress, byte_len: buffer.count))
            }
            return body(outs)
        }
    }

    /// Calls `body` with a fresh buffer per model output; returns them as
    /// `Data` that owns them (no copy).
    func withOutputs(_ body: ([UnsafeMutableRawBufferPointer]) throws -> Void) throws -> [Data] {
        let buffers = model.outputs.map {
            UnsafeMutableRawBufferPointer.allocate(byteCount: $0.byteCount, alignment: 16)
        }
        do {
            try body(buffers)
        } catch {
            buffers.forEach { $0.deallocate() }
            throw error
        }
        return buffers.map { buffer in
            guard let base = buffer.baseAddress, buffer.count > 0 else {
                buffer.deallocate()
                return Data()
            }
            return Data(bytesNoCopy: base, count: buffer.count, deallocator: .custom { pointer, _ in
                pointer.deallocate()
            })
        }
    }

    /// Calls `body` with the bytes of every `Data`, each pinned meanwhile.
    static func withBuffers<R>(_ datas: [Data], _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
        var buffers: [UnsafeRawBufferPointer] = []
        func go(_ i: Int) throws -> R {
            if i == datas.count { return try body(buffers) }
            return try datas[i].withUnsafeBytes { buffer in
                buffers.append(buffer)
                return try go(i + 1)
            }
        }
        return try go(0)
    }

    /// Calls `body` with the bytes of every array, each pinned meanwhile.
    static func withArrays<T, R>(_ arrays: [[T]], _ body: ([UnsafeRawBufferPointer]) throws -> R) throws -> R {
        var buffers: [UnsafeRawBufferPointer] = []
        func go(_ i: Int) throws -> R {
            if i == arrays.count { return try body(buffers) }
            return try arrays[i].withUnsafeBytes { buffer in
                buffers.append(buffer)
                return try go(i + 1)
            }
        }
        return try go(0)
    }
}

extension Data {
    /// The elements of a tensor's bytes (native byte order), e.g.
    /// `outputs[0].elements(of: Float.self)`. Trailing bytes that do not
    /// make a whole element are ignored.
    public func elements<T: TensorElement>(of type: T.Type) -> [T] {
        let n = count / MemoryLayout<T>.stride
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            let copied = copyBytes(to: buffer)
            initialized = copied / MemoryLayout<T>.stride
        }
    }
}
