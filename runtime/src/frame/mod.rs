//! Camera frames to input tensors: YUV 4:2:0 (NV21, NV12, I420, Android's
//! YUV_420_888 with any strides) and packed RGBA/BGRA/RGB, cropped, rotated,
//! mirrored, resized and normalized in one pass into the model's input.
//!
//! The order of operations, which the tests' reference implementation
//! spells out step by step: crop the frame; rotate it clockwise by
//! 0/90/180/270 degrees; mirror it horizontally; resize it to the model's
//! input (bilinear with half-pixel centres, area averaging on an axis
//! shrunk by more than 2×; or [`Filter::Triangle`]), channel by channel (Y, U, V for YUV frames,
//! chroma replicated over its 2×2 block); convert YUV to RGB and clamp to
//! 0..=255; then `(value * scale - mean) / std` and lay out the channels.
//!
//! [`FrameConverter`] does this without any full-size intermediate: it
//! resamples in the frame's own orientation (rows first, reading each
//! source byte once), into three planes of the output's size, and applies
//! the rotation and mirror when it writes the output. Its tap tables and
//! row buffers are kept between frames of the same geometry, so a
//! steady camera stream allocates nothing.

mod color;
mod preprocess;
mod resample;
mod validate;

use crate::error::{Error, Result};
use crate::exec::kernels::frame::{ColorRow, FrameLoops};
use crate::exec::kernels::Isa;

pub use color::{YuvColor, YuvMatrix, YuvRange};
pub use preprocess::{ChannelOrder, Layout, Normalize, Preprocess};

/// One plane of a frame: its bytes and how to step through them.
#[derive(Clone, Copy, Debug)]
pub struct Plane<'a> {
    pub data: &'a [u8],
    /// Bytes from one row to the next.
    pub row_stride: usize,
    /// Bytes from one pixel to the next in a row (2 for NV21/NV12 chroma,
    /// 4 for RGBA).
    pub pixel_stride: usize,
}

/// The pixel formats a frame can come in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PixelFormat {
    /// Y plane, then interleaved V,U at half resolution (Android's default).
    Nv21,
    /// Y plane, then interleaved U,V at half resolution (iOS' bi-planar).
    Nv12,
    /// Y, U and V planes, the chroma ones at half resolution.
    I420,
    Rgba,
    Bgra,
    Rgb,
}

impl PixelFormat {
    /// The format named by a file extension or flag (`nv21`, `rgba`, ...).
    pub fn from_name(name: &str) -> Option<PixelFormat> {
        Some(match name.to_ascii_lowercase().as_str() {
            "nv21" => PixelFormat::Nv21,
            "nv12" => PixelFormat::Nv12,
            "i420" | "yuv420p" => PixelFormat::I420,
            "rgba" => PixelFormat::Rgba,
            "bgra" => PixelFormat::Bgra,
            "rgb" => PixelFormat::Rgb,
            _ => return None,
        })
    }

    /// Bytes of one pixel and the offsets of R and B in it, for the
    /// interleaved formats; `None` for the YUV ones.
    fn interleaved(self) -> Option<(usize, u8, u8)> {
        match self {
            PixelFormat::Rgba => Some((4, 0, 2)),
            PixelFormat::Bgra => Some((4, 2, 0)),
            PixelFormat::Rgb => Some((3, 0, 2)),
            PixelFormat::Nv21 | PixelFormat::Nv12 | PixelFormat::I420 => None,
        }
    }
}

impl<'a> Pixels<'a> {
    /// Interleaved pixels of `format` (RGBA, BGRA or RGB) in `plane`. A
    /// pixel stride shorter than the format's pixel is an error: the
    /// channel offsets alone do not count an alpha byte, so it would
    /// otherwise read overlapping pixels silently.
    pub fn interleaved(format: PixelFormat, plane: Plane<'a>) -> Result<Pixels<'a>> {
        let (bpp, r, b) = format
            .interleaved()
            .ok_or_else(|| Error::Frame(format!("{format:?} is not an interleaved format")))?;
        if plane.pixel_stride < bpp {
            return Err(Error::Frame(format!(
                "{format:?}: pixel stride {} under the {bpp} bytes of a pixel",
                plane.pixel_stride
            )));
        }
        Ok(Pixels::Packed { plane, r, g: 1, b })
    }
}

/// The pixels of a frame.
#[derive(Clone, Copy, Debug)]
pub enum Pixels<'a> {
    /// 8-bit 4:2:0: full-resolution luma, chroma at half width and height
    /// (rounded up), each plane with its own strides.
    Yuv420 {
        y: Plane<'a>,
        u: Plane<'a>,
        v: Plane<'a>,
    },
    /// Interleaved 8-bit pixels; `r`, `g`, `b` are the byte offsets of the
    /// channels inside one pixel (RGBA: 0, 1, 2; BGRA: 2, 1, 0).
    Packed {
        plane: Plane<'a>,
        r: u8,
        g: u8,
        b: u8,
    },
}

/// A camera frame: its size in pixels and its planes.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    pub width: usize,
    pub height: usize,
    pub pixels: Pixels<'a>,
}

impl<'a> Frame<'a> {
    /// A frame whose planes are tightly packed one after another in `data`,
    /// as a file or a single camera buffer holds them (chroma rows of an
    /// odd width are rounded up to whole pairs).
    pub fn packed(
        format: PixelFormat,
        data: &'a [u8],
        width: usize,
        height: usize,
    ) -> Result<Frame<'a>> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        let luma = validate::product(&[width, height])?;
        let plane = |data: &'a [u8], row_stride, pixel_stride| Plane {
            data,
            row_stride,
            pixel_stride,
        };
        let tail = |at: usize| data.get(at..).unwrap_or(&[]);
        let pixels = match format {
            PixelFormat::Nv21 | PixelFormat::Nv12 => {
                let (u, v) = if format == PixelFormat::Nv21 {
                    (luma + 1, luma)
                } else {
                    (luma, luma + 1)
                };
                Pixels::Yuv420 {
                    y: plane(data, width, 1),
                    u: plane(tail(u), 2 * cw, 2),
                    v: plane(tail(v), 2 * cw, 2),
                }
            }
            PixelFormat::I420 => {
                let chroma = validate::product(&[cw, ch])?;
                Pixels::Yuv420 {
                    y: plane(data, width, 1),
                    u: plane(tail(luma), cw, 1),
                    v: plane(tail(luma + chroma), cw, 1),
                }
            }
            PixelFormat::Rgba | PixelFormat::Bgra | PixelFormat::Rgb => {
                let bpp = format.interleaved().map_or(1, |(bpp, ..)| bpp);
                let row = validate::product(&[width, bpp])?;
                Pixels::interleaved(format, plane(data, row, bpp))?
            }
        };
        let frame = Frame {
            width,
            height,
            pixels,
        };
        validate::frame(&frame)?;
        Ok(frame)
    }
}

/// A rectangle of the frame, in frame pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Clockwise rotation that turns the frame upright (Android's
/// `ImageInfo.rotationDegrees`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Rotation {
    #[default]
    R0,
    R90,
    R180,
    R270,
}

impl Rotation {
    pub fn from_degrees(degrees: u32) -> Result<Rotation> {
        Ok(match degrees {
            0 => Rotation::R0,
            90 => Rotation::R90,
            180 => Rotation::R180,
            270 => Rotation::R270,
            d => return Err(Error::Frame(format!("rotation {d}: not 0, 90, 180 or 270"))),
        })
    }

    /// Whether the rotation swaps width and height.
    fn swaps_axes(self) -> bool {
        matches!(self, Rotation::R90 | Rotation::R270)
    }
}

/// How the frame is resized to the input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Filter {
    /// Bilinear with half-pixel centres, area averaging on an axis shrunk
    /// by more than 2×: each source pixel is read once (the camera default).
    #[default]
    Area,
    /// A tent as wide as the shrink factor, as PIL's and torchvision's
    /// antialiased bilinear resize: smoother, about twice the work when
    /// shrinking. Matches the preprocessing many models were trained with.
    Triangle,
}

/// Where in the frame to look and how to turn it.
#[derive(Clone, Copy, Debug, Default)]
pub struct FrameOptions {
    /// The part of the frame to use; the whole frame when `None`.
    pub crop: Option<Rect>,
    pub rotation: Rotation,
    /// Mirror horizontally after rotating (a front camera's preview).
    pub mirror: bool,
    /// How YUV frames encode colour; ignored for RGB frames.
    pub color: YuvColor,
    pub filter: Filter,
}

/// The element type written to the tensor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Element {
    F32,
    /// `q = round(x / scale) + zero_point`, clamped to 0..=255.
    U8 {
        scale: f32,
        zero_point: u8,
    },
    /// `q = round(x / scale) + zero_point`, clamped to -128..=127.
    I8 {
        scale: f32,
        zero_point: i8,
    },
}

/// The tensor a frame becomes: its size, layout, channel order and
/// normalization.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TensorSpec {
    pub width: usize,
    pub height: usize,
    pub layout: Layout,
    pub order: ChannelOrder,
    pub normalize: Normalize,
}

impl TensorSpec {
    /// Elements of the tensor (3 channels).
    pub fn len(&self) -> usize {
        self.width * self.height * 3
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Converts frames into one tensor shape; keeps its tables and buffers
/// between frames of the same geometry.
#[derive(Debug)]
pub struct FrameConverter {
    spec: TensorSpec,
    loops: FrameLoops,
    resampler: Option<resample::Resampler>,
}

impl FrameConverter {
    /// A converter writing `spec`-shaped tensors with the best loops this
    /// CPU has (or `SQUEEZE_ISA`'s); refuses empty sizes.
    pub fn new(spec: TensorSpec) -> Result<FrameConverter> {
        FrameConverter::with_isa(spec, Isa::choose(None)?)
    }

    /// A converter using `isa`'s loops (scalar where the CPU lacks it).
    pub fn with_isa(spec: TensorSpec, isa: Isa) -> Result<FrameConverter> {
        validate::spec(&spec)?;
        Ok(FrameConverter {
            spec,
            loops: FrameLoops::new(isa),
            resampler: None,
        })
    }

    pub fn spec(&self) -> &TensorSpec {
        &self.spec
    }

    /// Writes `frame` as f32 into `out` (`spec().len()` elements).
    pub fn convert_f32(
        &mut self,
        frame: &Frame,
        opts: &FrameOptions,
        out: &mut [f32],
    ) -> Result<()> {
        self.convert(frame, opts, out, |x| x)
    }

    /// Writes `frame` quantized to u8 or i8 (as `Element` says) into `out`.
    pub fn convert_quantized(
        &mut self,
        frame: &Frame,
        opts: &FrameOptions,
        element: Element,
        out: &mut [u8],
    ) -> Result<()> {
        match element {
            Element::F32 => Err(Error::Frame("f32 output needs convert_f32".into())),
            Element::U8 { scale, zero_point } => {
                let (inv, zp) = validate::quantization(scale, zero_point as f32)?;
                self.convert(frame, opts, out, |x| {
                    ((x * inv).round_ties_even() + zp).clamp(0.0, 255.0) as u8
                })
            }
            Element::I8 { scale, zero_point } => {
                let (inv, zp) = validate::quantization(scale, zero_point as f32)?;
                self.convert(frame, opts, out, |x| {
                    ((x * inv).round_ties_even() + zp).clamp(-128.0, 127.0) as i8 as u8
                })
            }
        }
    }

    fn convert<T>(
        &mut self,
        frame: &Frame,
        opts: &FrameOptions,
        out: &mut [T],
        store: impl Fn(f32) -> T,
    ) -> Result<()> {
        if out.len() != self.spec.len() {
            return Err(Error::Frame(format!(
                "output holds {} elements; {}x{}x3 needs {}",
                out.len(),
                self.spec.width,
                self.spec.height,
                self.spec.len()
            )));
        }
        let crop = validate::frame_and_crop(frame, opts.crop)?;
        let key = resample::Key {
            crop,
            swap: opts.rotation.swaps_axes(),
            filter: opts.filter,
        };
        let resampler = match &mut self.resampler {
            Some(r) if r.key() == key => r,
            slot => slot.insert(resample::Resampler::new(key, &self.spec, self.loops)?),
        };
        let planes = resampler.resample(frame);
        write_output(self.loops, &self.spec, opts, planes, out, store);
        Ok(())
    }
}

/// Colour conversion, rotation, mirror, normalization and layout, from the
/// three resampled planes (in the frame's orientation) to the tensor.
fn write_output<T>(
    loops: FrameLoops,
    spec: &TensorSpec,
    opts: &FrameOptions,
    planes: resample::Planes<'_>,
    out: &mut [T],
    store: impl Fn(f32) -> T,
) {
    let walk = PlaneWalk::new(spec, opts, &planes);
    let (offset, rgb) = match planes.yuv {
        true => opts.color.coefficients().affine(),
        false => (
            [0.0; 3],
            [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        ),
    };
    let norm = spec.normalize.affine();
    let source = spec.order.source_channels();
    let color = ColorRow {
        offset,
        matrix: source.map(|c| rgb[c]),
        gain: norm.map(|(g, _)| g),
        bias: norm.map(|(_, b)| b),
    };
    let (w, h) = (spec.width, spec.height);
    // Output index of channel `o` at (ox, oy): o * channel + oy * row + ox * pixel.
    let (channel, row, pixel) = match spec.layout {
        Layout::Nchw => (w * h, w, 1),
        Layout::Nhwc => (1, 3 * w, 3),
    };
    let [p0, p1, p2] = planes.data;
    let mut read = [[0f32; WRITE_TILE]; 3];
    let mut values = [[0f32; WRITE_TILE]; 3];
    // Square tiles: a rotation walks the planes down their columns, and a
    // tile's columns stay in L1 while it is written.
    for oy0 in (0..h).step_by(WRITE_TILE) {
        for ox0 in (0..w).step_by(WRITE_TILE) {
            let n = WRITE_TILE.min(w - ox0);
            for oy in oy0..(oy0 + WRITE_TILE).min(h) {
                let mut at = walk.origin + oy as isize * walk.dy + ox0 as isize * walk.dx;
                let [r0, r1, r2] = &mut read;
                let pixels = r0[..n].iter_mut().zip(&mut r1[..n]).zip(&mut r2[..n]);
                for ((c0, c1), c2) in pixels {
                    let a = at as usize;
                    (*c0, *c1, *c2) = (p0[a], p1[a], p2[a]);
                    at += walk.dx;
                }
                let [v0, v1, v2] = &mut values;
                loops.color_row(
                    [&read[0][..n], &read[1][..n], &read[2][..n]],
                    &color,
                    [v0, v1, v2],
                );
                for (o, v) in values.iter().enumerate() {
                    let first = o * channel + oy * row + ox0 * pixel;
                    for (i, &x) in v[..n].iter().enumerate() {
                        out[first + i * pixel] = store(x);
                    }
                }
            }
        }
    }
}

/// Where output pixel `(ox, oy)` reads the resampled planes: rotation and
/// mirror are affine in the pixel coordinates, so the plane index is
/// `origin + ox * dx + oy * dy`.
struct PlaneWalk {
    origin: isize,
    dx: isize,
    dy: isize,
}

impl PlaneWalk {
    fn new(spec: &TensorSpec, opts: &FrameOptions, planes: &resample::Planes) -> PlaneWalk {
        let (w, pw, ph) = (spec.width, planes.width, planes.height);
        let at = |ox: usize, oy: usize| -> isize {
            let vx = if opts.mirror { w - 1 - ox } else { ox };
            let (px, py) = match opts.rotation {
                Rotation::R0 => (vx, oy),
                Rotation::R90 => (oy, ph - 1 - vx),
                Rotation::R180 => (pw - 1 - vx, ph - 1 - oy),
                Rotation::R270 => (pw - 1 - oy, vx),
            };
            (py * pw + px) as isize
        };
        let origin = at(0, 0);
        PlaneWalk {
            origin,
            dx: if spec.width > 1 { at(1, 0) - origin } else { 0 },
            dy: if spec.height > 1 {
                at(0, 1) - origin
            } else {
                0
            },
        }
    }
}

/// The side of the output tiles [`write_output`] writes one after another.
const WRITE_TILE: usize = 16;

#[cfg(test)]
mod tests;
