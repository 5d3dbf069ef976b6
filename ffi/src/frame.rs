//! Camera frames as C describes them: planes with their strides, the way
//! Android's `ImageProxy`/`Image` and iOS' `CVPixelBuffer` hand them out.

use squeeze::frame::{
    Filter, Frame, FrameOptions, PixelFormat, Pixels, Plane, Rect, Rotation, YuvColor, YuvMatrix,
    YuvRange,
};

use crate::status::{Failure, Outcome};

/// How a frame's pixels are laid out.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzPixelFormat {
    /// 8-bit 4:2:0 in three planes Y, U, V, each with its own row and pixel
    /// strides: NV21 and NV12 (U and V planes interleaved, pixel stride 2),
    /// I420 (pixel stride 1), and Android's `YUV_420_888` as it comes.
    Yuv420 = 0,
    /// Interleaved R, G, B, A bytes in plane 0 (pixel stride 4).
    Rgba = 1,
    /// Interleaved B, G, R, A bytes in plane 0 (iOS' `kCVPixelFormatType_32BGRA`).
    Bgra = 2,
    /// Interleaved R, G, B bytes in plane 0 (pixel stride 3).
    Rgb = 3,
}

from_code!(SqzPixelFormat: Yuv420, Rgba, Bgra, Rgb);

/// One plane of a frame: `byte_len` readable bytes from `data`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzPlane {
    pub data: *const u8,
    pub byte_len: usize,
    /// Bytes from one row to the next.
    pub row_stride: usize,
    /// Bytes from one pixel to the next within a row.
    pub pixel_stride: usize,
}

/// A camera frame: its size in pixels and up to three planes (Y, U, V for
/// `SQZ_PIXEL_FORMAT_YUV420`; only `planes[0]` for the packed RGB formats).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzFrame {
    /// An `SqzPixelFormat`.
    pub format: u32,
    pub width: u32,
    pub height: u32,
    pub planes: [SqzPlane; 3],
}

/// The YUV colour matrix.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzYuvMatrix {
    /// BT.601: what Android cameras deliver.
    Bt601 = 0,
    /// BT.709: HD video.
    Bt709 = 1,
}

from_code!(SqzYuvMatrix: Bt601, Bt709);

/// The YUV value range.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzYuvRange {
    /// 0..=255 (Android's camera, iOS' `...FullRange`).
    Full = 0,
    /// Y in 16..=235 (iOS' `...VideoRange`).
    Video = 1,
}

from_code!(SqzYuvRange: Full, Video);

/// The resize filter.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SqzResize {
    /// Bilinear, area-averaging when shrinking more than 2× (the default).
    Area = 0,
    /// PIL's antialiased bilinear: smoother, about twice the work.
    Triangle = 1,
}

from_code!(SqzResize: Area, Triangle);

/// A rectangle in frame pixels.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct SqzRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

/// Where in the frame to look and how to turn it. Zero-initialised, it
/// means the whole frame, upright, BT.601 full range, area resize.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SqzFrameOptions {
    /// The part of the frame to use; a zero width or height: the whole frame.
    pub crop: SqzRect,
    /// Clockwise rotation turning the frame upright: 0, 90, 180 or 270
    /// (Android's `ImageInfo.getRotationDegrees()`).
    pub rotation_degrees: u32,
    /// Mirror horizontally after rotating (a front camera's preview).
    pub mirror: bool,
    /// An `SqzYuvMatrix`.
    pub yuv_matrix: u32,
    /// An `SqzYuvRange`.
    pub yuv_range: u32,
    /// An `SqzResize`.
    pub resize: u32,
}

impl SqzPlane {
    /// The plane's bytes.
    ///
    /// # Safety
    /// `data` must point at `byte_len` readable bytes for the borrow's life.
    unsafe fn bytes<'a>(&self, which: &str) -> Outcome<Plane<'a>> {
        if self.data.is_null() {
            return Err(Failure::null(which));
        }
        // SAFETY: non-null, and the caller vouches for `byte_len` readable
        // bytes that outlive the call (the documented contract of SqzFrame).
        let data = unsafe { std::slice::from_raw_parts(self.data, self.byte_len) };
        Ok(Plane {
            data,
            row_stride: self.row_stride,
            pixel_stride: self.pixel_stride,
        })
    }
}

/// The runtime's frame for C's. Strides, sizes and plane lengths are
/// checked by the converter, which refuses anything it would read past.
///
/// # Safety
/// Each plane used must point at `byte_len` readable bytes for `'a`.
pub(crate) unsafe fn frame<'a>(f: &SqzFrame) -> Outcome<Frame<'a>> {
    // SAFETY (each `bytes` call): forwarded from this function's contract.
    let interleaved = |format| -> Outcome<Pixels<'a>> {
        let plane = unsafe { f.planes[0].bytes("planes[0].data")? };
        Ok(Pixels::interleaved(format, plane)?)
    };
    let pixels = match SqzPixelFormat::from_code(f.format, "format")? {
        SqzPixelFormat::Yuv420 => Pixels::Yuv420 {
            y: unsafe { f.planes[0].bytes("planes[0].data")? },
            u: unsafe { f.planes[1].bytes("planes[1].data")? },
            v: unsafe { f.planes[2].bytes("planes[2].data")? },
        },
        SqzPixelFormat::Rgba => interleaved(PixelFormat::Rgba)?,
        SqzPixelFormat::Bgra => interleaved(PixelFormat::Bgra)?,
        SqzPixelFormat::Rgb => interleaved(PixelFormat::Rgb)?,
    };
    Ok(Frame {
        width: f.width as usize,
        height: f.height as usize,
        pixels,
    })
}

/// The runtime's frame options for C's (NULL: the defaults).
pub(crate) fn options(o: Option<&SqzFrameOptions>) -> Outcome<FrameOptions> {
    let Some(o) = o else {
        return Ok(FrameOptions::default());
    };
    let crop = (o.crop.width > 0 && o.crop.height > 0).then_some(Rect {
        x: o.crop.x as usize,
        y: o.crop.y as usize,
        width: o.crop.width as usize,
        height: o.crop.height as usize,
    });
    Ok(FrameOptions {
        crop,
        rotation: Rotation::from_degrees(o.rotation_degrees)?,
        mirror: o.mirror,
        color: YuvColor {
            matrix: match SqzYuvMatrix::from_code(o.yuv_matrix, "yuv_matrix")? {
                SqzYuvMatrix::Bt601 => YuvMatrix::Bt601,
                SqzYuvMatrix::Bt709 => YuvMatrix::Bt709,
            },
            range: match SqzYuvRange::from_code(o.yuv_range, "yuv_range")? {
                SqzYuvRange::Full => YuvRange::Full,
                SqzYuvRange::Video => YuvRange::Video,
            },
        },
        filter: match SqzResize::from_code(o.resize, "resize")? {
            SqzResize::Area => Filter::Area,
            SqzResize::Triangle => Filter::Triangle,
        },
    })
}
