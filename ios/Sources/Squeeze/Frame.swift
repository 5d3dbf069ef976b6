import CSqueeze

/// A camera frame described in place: its size and its planes' bytes and
/// strides. It does not own the bytes: they must stay valid while a
/// `Session.run(frame:...)` reads them.
public struct Frame {
    /// How the pixels are laid out (`SqzPixelFormat`).
    public enum PixelFormat: UInt32, Sendable, CaseIterable {
        /// 8-bit 4:2:0 in three planes Y, U (Cb), V (Cr), each with its own
        /// strides: NV12 (iOS' `420YpCbCr8BiPlanar`: U and V interleaved,
        /// pixel stride 2, V one byte after U), NV21, I420 (pixel stride 1).
        case yuv420 = 0
        /// R, G, B, A bytes in one plane (pixel stride 4).
        case rgba = 1
        /// B, G, R, A bytes in one plane (iOS' `kCVPixelFormatType_32BGRA`).
        case bgra = 2
        /// R, G, B bytes in one plane (pixel stride 3).
        case rgb = 3

        /// How many planes the format has.
        public var planeCount: Int { self == .yuv420 ? 3 : 1 }
    }

    public struct Plane {
        /// The plane's bytes, from its first pixel; at least up to its last.
        public var bytes: UnsafeRawBufferPointer
        /// Bytes from one row to the next.
        public var rowStride: Int
        /// Bytes from one pixel to the next within a row.
        public var pixelStride: Int

        public init(bytes: UnsafeRawBufferPointer, rowStride: Int, pixelStride: Int) {
            self.bytes = bytes
            self.rowStride = rowStride
            self.pixelStride = pixelStride
        }
    }

    public var format: PixelFormat
    public var width: Int
    public var height: Int
    /// Y, U, V for `.yuv420`; one plane for the packed formats.
    public var planes: [Plane]

    public init(format: PixelFormat, width: Int, height: Int, planes: [Plane]) {
        self.format = format
        self.width = width
        self.height = height
        self.planes = planes
    }

    /// A packed frame (`.rgba`, `.bgra`, `.rgb`) in one plane; `rowStride`
    /// nil means rows are `width` pixels without padding.
    public init(format: PixelFormat, width: Int, height: Int, bytes: UnsafeRawBufferPointer, rowStride: Int? = nil) {
        let pixelStride = format == .rgb ? 3 : 4
        self.init(format: format, width: width, height: height, planes: [
            Plane(bytes: bytes, rowStride: rowStride ?? width * pixelStride, pixelStride: pixelStride),
        ])
    }

    func c() throws -> SqzFrame {
        guard planes.count == format.planeCount else {
            throw SqueezeError(.frame, "a \(format) frame has \(format.planeCount) plane(s), this one \(planes.count)")
        }
        var c = SqzFrame()
        c.format = format.rawValue
        guard let w = UInt32(exactly: width), let h = UInt32(exactly: height) else {
            throw SqueezeError(.frame, "frame size \(width)x\(height) is out of range")
        }
        c.width = w
        c.height = h
        func plane(_ i: Int) throws -> SqzPlane {
            guard i < planes.count else { return SqzPlane() }
            let p = planes[i]
            guard p.rowStride >= 0, p.pixelStride >= 0 else {
                throw SqueezeError(.frame, "plane \(i) has a negative stride")
            }
            return SqzPlane(
                data: p.bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                byte_len: p.bytes.count, row_stride: p.rowStride, pixel_stride: p.pixelStride)
        }
        c.planes = (try plane(0), try plane(1), try plane(2))
        return c
    }
}

/// Where in the frame to look and how to turn it (`SqzFrameOptions`). The
/// defaults: the whole frame, upright, BT.601 full range, area resize.
public struct FrameOptions: Equatable, Sendable {
    /// A rectangle in frame pixels (before rotation).
    public struct Rect: Equatable, Sendable {
        public var x: Int
        public var y: Int
        public var width: Int
        public var height: Int

        public init(x: Int, y: Int, width: Int, height: Int) {
            self.x = x
            self.y = y
            self.width = width
            self.height = height
        }
    }

    /// The YUV colour matrix (`SqzYuvMatrix`).
    public enum YUVMatrix: UInt32, Sendable, CaseIterable {
        /// BT.601: SD video, Android cameras.
        case bt601 = 0
        /// BT.709: HD video (iPhone capture buffers are usually tagged so).
        case bt709 = 1
    }

    /// The YUV value range (`SqzYuvRange`).
    public enum YUVRange: UInt32, Sendable, CaseIterable {
        /// 0...255 (`...FullRange`).
        case full = 0
        /// Y in 16...235 (`...VideoRange`).
        case video = 1
    }

    /// The resize filter (`SqzResize`).
    public enum Resize: UInt32, Sendable, CaseIterable {
        /// Bilinear, area-averaging when shrinking more than 2×.
        case area = 0
        /// PIL's antialiased bilinear: smoother, about twice the work.
        case triangle = 1
    }

    /// The part of the frame to use; nil: the whole frame.
    public var crop: Rect?
    /// Clockwise rotation turning the frame upright: 0, 90, 180 or 270.
    public var rotationDegrees: Int
    /// Mirror horizontally after rotating (a front camera's preview).
    public var mirror: Bool
    /// nil: BT.601 for a `Frame`; for a `CVPixelBuffer`, its
    /// `kCVImageBufferYCbCrMatrixKey` attachment (BT.601 without one).
    public var yuvMatrix: YUVMatrix?
    /// nil: full range for a `Frame`; for a `CVPixelBuffer`, what its pixel
    /// format says (`...FullRange` or `...VideoRange`).
    public var yuvRange: YUVRange?
    public var resize: Resize

    public init(
        crop: Rect? = nil, rotationDegrees: Int = 0, mirror: Bool = false,
        yuvMatrix: YUVMatrix? = nil, yuvRange: YUVRange? = nil, resize: Resize = .area
    ) {
        self.crop = crop
        self.rotationDegrees = rotationDegrees
        self.mirror = mirror
        self.yuvMatrix = yuvMatrix
        self.yuvRange = yuvRange
        self.resize = resize
    }

    func c() throws -> SqzFrameOptions {
        var c = SqzFrameOptions()
        // Out-of-range geometry is a frame error, as the library's own is.
        func field(_ value: Int, _ name: String) throws -> UInt32 {
            guard let v = UInt32(exactly: value) else {
                throw SqueezeError(.frame, "\(name) = \(value) is out of range")
            }
            return v
        }
        if let crop = crop {
            // The C struct reads a zero-sized crop as "no crop".
            guard crop.width > 0, crop.height > 0 else {
                throw SqueezeError(.frame, "crop \(crop.width)x\(crop.height) is empty")
            }
            c.crop = SqzRect(
                x: try field(crop.x, "crop.x"), y: try field(crop.y, "crop.y"),
                width: try field(crop.width, "crop.width"),
                height: try field(crop.height, "crop.height"))
        }
        c.rotation_degrees = try field(rotationDegrees, "rotationDegrees")
        c.mirror = mirror
        c.yuv_matrix = (yuvMatrix ?? .bt601).rawValue
        c.yuv_range = (yuvRange ?? .full).rawValue
        c.resize = resize.rawValue
        return c
    }
}
