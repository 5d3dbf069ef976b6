import CSqueeze

/// Element types of tensors (`SqzDtype`; raw values are the C ones).
public enum DType: UInt32, Sendable, CaseIterable {
    case f32 = 0
    case i64 = 1
    case u8 = 2
    case i8 = 3
    case i32 = 4

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f32, .i32: return 4
        case .i64: return 8
        case .u8, .i8: return 1
        }
    }
}

/// A Swift type whose values a tensor of `dtype` holds, in native byte order.
public protocol TensorElement {
    static var dtype: DType { get }
}

extension Float: TensorElement { public static var dtype: DType { .f32 } }
extension Int64: TensorElement { public static var dtype: DType { .i64 } }
extension UInt8: TensorElement { public static var dtype: DType { .u8 } }
extension Int8: TensorElement { public static var dtype: DType { .i8 } }
extension Int32: TensorElement { public static var dtype: DType { .i32 } }

/// Name, element type and shape of a model input or output.
public struct TensorInfo: Equatable, Sendable {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    /// Bytes a buffer for this tensor must have: elements × element size.
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }

    public init(name: String, dtype: DType, shape: [Int], byteCount: Int) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
    }
}

/// What the packer recorded about a model (empty strings when not recorded).
public struct ModelMetadata: Equatable, Sendable {
    public let name: String
    public let version: String
    public let producer: String
}

/// How to load a model. The defaults are the library's.
public struct LoadOptions: Equatable, Sendable {
    /// Instruction sets a model's kernels may be forced to (`SqzIsa`).
    public enum ISA: UInt32, Sendable, CaseIterable {
        /// The best the CPU has (or the `SQUEEZE_ISA` environment variable's).
        case auto = 0
        case scalar = 1
        case avx2 = 2
        case avx512 = 3
        case neon = 4
    }

    /// Worker threads per session; 0: the available parallelism, at most 4.
    public var threads: Int
    /// Forcing an ISA the CPU lacks fails with `.unsupported`.
    public var isa: ISA
    /// Check the whole-file SHA-256 too (per-section checksums always run):
    /// for models downloaded at run time.
    public var verifySHA256: Bool

    public init(threads: Int = 0, isa: ISA = .auto, verifySHA256: Bool = false) {
        self.threads = threads
        self.isa = isa
        self.verifySHA256 = verifySHA256
    }

    func c() throws -> SqzLoadOptions {
        SqzLoadOptions(
            threads: try uint32(threads, "LoadOptions.threads"),
            isa: isa.rawValue,
            verify_sha256: verifySHA256
        )
    }
}
