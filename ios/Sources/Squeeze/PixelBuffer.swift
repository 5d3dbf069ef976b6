// Camera frames as iOS and macOS hand them out: CVPixelBuffer, e.g. from
// AVCaptureVideoDataOutput's sample buffers (CMSampleBufferGetImageBuffer).
// Only on Apple platforms: nothing here is compiled on Linux.
#if canImport(CoreVideo)
import CoreVideo
import Foundation

extension Session {
    /// Runs the model on a `CVPixelBuffer` read in place (its base address
    /// locked read-only meanwhile), as `run(frame:options:outputs:)` does.
    /// Pixel formats: `kCVPixelFormatType_420YpCbCr8BiPlanarFullRange`
    /// ("420f") and `...VideoRange` ("420v"), `kCVPixelFormatType_32BGRA`,
    /// `kCVPixelFormatType_32RGBA` and `kCVPixelFormatType_24RGB`; others
    /// throw `.unsupported`. `options.yuvRange` and `options.yuvMatrix`, when
    /// nil, come from the buffer (see `FrameOptions`).
    public func run(
        pixelBuffer: CVPixelBuffer, options: FrameOptions = FrameOptions(),
        outputs: [UnsafeMutableRawBufferPointer]
    ) throws {
        try Frame.withPixelBuffer(pixelBuffer, options: options) { frame, options in
            try run(frame: frame, options: options, outputs: outputs)
        }
    }

    /// `run(pixelBuffer:options:outputs:)` returning one `Data` per output.
    public func run(pixelBuffer: CVPixelBuffer, options: FrameOptions = FrameOptions()) throws -> [Data] {
        try Frame.withPixelBuffer(pixelBuffer, options: options) { frame, options in
            try run(frame: frame, options: options)
        }
    }
}

extension Frame {
    /// Calls `body` with a `Frame` over `pixelBuffer`'s memory, locked
    /// read-only for the call, and `options` with a nil `yuvRange` and
    /// `yuvMatrix` filled in from the buffer. The frame must not escape `body`.
    public static func withPixelBuffer<R>(
        _ pixelBuffer: CVPixelBuffer, options: FrameOptions = FrameOptions(),
        _ body: (Frame, FrameOptions) throws -> R
    ) throws -> R {
        let locked = CVPixelBufferLockBaseAddress(pixelBuffer, .readOnly)
        guard locked == kCVReturnSuccess else {
            throw SqueezeError(.frame, "CVPixelBufferLockBaseAddress failed (CVReturn \(locked))")
        }
        defer { _ = CVPixelBufferUnlockBaseAddress(pixelBuffer, .readOnly) }
        var options = options
        let frame = try Frame(lockedPixelBuffer: pixelBuffer, options: &options)
        return try body(frame, options)
    }

    /// A frame over a pixel buffer whose base address is locked.
    private init(lockedPixelBuffer pb: CVPixelBuffer, options: inout FrameOptions) throws {
        let format = CVPixelBufferGetPixelFormatType(pb)
        switch format {
        case kCVPixelFormatType_420YpCbCr8BiPlanarFullRange,
             kCVPixelFormatType_420YpCbCr8BiPlanarVideoRange:
            // NV12: plane 0 is Y, plane 1 interleaved Cb, Cr pairs. U and V
            // are the same plane seen from its first and second byte, each
            // with pixel stride 2.
            guard CVPixelBufferIsPlanar(pb), CVPixelBufferGetPlaneCount(pb) == 2,
                  let y = CVPixelBufferGetBaseAddressOfPlane(pb, 0),
                  let cbcr = CVPixelBufferGetBaseAddressOfPlane(pb, 1)
            else {
                throw SqueezeError(.frame, "a '\(Frame.fourCC(format))' pixel buffer without its two planes")
            }
            let width = CVPixelBufferGetWidthOfPlane(pb, 0)
            let height = CVPixelBufferGetHeightOfPlane(pb, 0)
            let yStride = CVPixelBufferGetBytesPerRowOfPlane(pb, 0)
            let cWidth = CVPixelBufferGetWidthOfPlane(pb, 1) // Cb, Cr pairs
            let cHeight = CVPixelBufferGetHeightOfPlane(pb, 1)
            let cStride = CVPixelBufferGetBytesPerRowOfPlane(pb, 1)
            guard width > 0, height > 0, cWidth > 0, cHeight > 0 else {
                throw SqueezeError(.frame, "an empty pixel buffer")
            }
            // Each plane up to its last pixel's byte: nothing promises the
            // last row's padding is there.
            let yCount = (height - 1) * yStride + width
            let cCount = (cHeight - 1) * cStride + cWidth * 2
            self.init(format: .yuv420, width: width, height: height, planes: [
                Plane(bytes: UnsafeRawBufferPointer(start: y, count: yCount),
                      rowStride: yStride, pixelStride: 1),
                Plane(bytes: UnsafeRawBufferPointer(start: cbcr, count: cCount),
                      rowStride: cStride, pixelStride: 2),
                Plane(bytes: UnsafeRawBufferPointer(start: cbcr + 1, count: cCount - 1),
                      rowStride: cStride, pixelStride: 2),
            ])
            if options.yuvRange == nil {
                options.yuvRange = format == kCVPixelFormatType_420YpCbCr8BiPlanarFullRange ? .full : .video
            }
            if options.yuvMatrix == nil {
                options.yuvMatrix = Frame.yuvMatrix(of: pb)
            }
        case kCVPixelFormatType_32BGRA, kCVPixelFormatType_32RGBA, kCVPixelFormatType_24RGB:
            let packed: PixelFormat =
                format == kCVPixelFormatType_32BGRA ? .bgra
                : format == kCVPixelFormatType_32RGBA ? .rgba : .rgb
            let pixelStride = packed == .rgb ? 3 : 4
            let width = CVPixelBufferGetWidth(pb)
            let height = CVPixelBufferGetHeight(pb)
            let stride = CVPixelBufferGetBytesPerRow(pb)
            guard let base = CVPixelBufferGetBaseAddress(pb), width > 0, height > 0 else {
                throw SqueezeError(.frame, "an empty pixel buffer")
            }
            let count = (height - 1) * stride + width * pixelStride
            self.init(format: packed, width: width, height: height, planes: [
                Plane(bytes: UnsafeRawBufferPointer(start: base, count: count),
                      rowStride: stride, pixelStride: pixelStride),
            ])
        default:
            throw SqueezeError(.unsupported, """
                pixel format '\(Frame.fourCC(format))' is not supported: use 420f, 420v or BGRA \
                (AVCaptureVideoDataOutput.videoSettings[kCVPixelBufferPixelFormatTypeKey])
                """)
        }
    }

    /// BT.709 when the buffer is tagged BT.709 (or BT.2020, whose
    /// coefficients are closer to BT.709's than to BT.601's), else BT.601.
    private static func yuvMatrix(of pb: CVPixelBuffer) -> FrameOptions.YUVMatrix {
        let value: CFTypeRef?
        if #available(iOS 15, macOS 12, tvOS 15, watchOS 8, *) {
            value = CVBufferCopyAttachment(pb, kCVImageBufferYCbCrMatrixKey, nil)
        } else {
            value = CVBufferGetAttachment(pb, kCVImageBufferYCbCrMatrixKey, nil)?.takeUnretainedValue()
        }
        guard let matrix = value else { return .bt601 }
        if CFEqual(matrix, kCVImageBufferYCbCrMatrix_ITU_R_709_2)
            || CFEqual(matrix, kCVImageBufferYCbCrMatrix_ITU_R_2020) {
            return .bt709
        }
        return .bt601
    }

    /// "420f" for a four-character code, else its number.
    static func fourCC(_ code: OSType) -> String {
        let bytes = [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: code >> $0) }
        guard bytes.allSatisfy({ (0x20..<0x7f).contains($0) }) else { return String(code) }
        return String(decoding: bytes, as: UTF8.self)
    }
}
#endif
