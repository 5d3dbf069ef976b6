//! The frame path against a slow, obvious reference: full-resolution
//! planes of the crop, rotated and mirrored as whole images, resized by
//! 2-D weights computed from their definition, converted with the
//! textbook BT.601/BT.709 formulas in f64. Every option within 1 unit at
//! 8 bits, on odd sizes, padded strides and both chroma pixel strides.

use super::*;

/// Deterministic bytes (xorshift), so failures reproduce.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

/// A plain image of `f64` channels.
#[derive(Clone)]
struct Img {
    w: usize,
    h: usize,
    c: Vec<Vec<f64>>,
}

impl Img {
    fn at(&self, ch: usize, x: usize, y: usize) -> f64 {
        self.c[ch][y * self.w + x]
    }

    fn map(&self, w: usize, h: usize, f: impl Fn(usize, usize) -> (usize, usize)) -> Img {
        let mut c = vec![vec![0.0; w * h]; self.c.len()];
        for y in 0..h {
            for x in 0..w {
                let (sx, sy) = f(x, y);
                for (ch, plane) in c.iter_mut().enumerate() {
                    plane[y * w + x] = self.at(ch, sx, sy);
                }
            }
        }
        Img { w, h, c }
    }

    /// Rotated a quarter turn clockwise: the output's top-left is the
    /// input's bottom-left.
    fn rotate_cw(&self) -> Img {
        let h = self.h;
        self.map(self.h, self.w, |x, y| (y, h - 1 - x))
    }

    fn mirror(&self) -> Img {
        let w = self.w;
        self.map(self.w, self.h, |x, y| (w - 1 - x, y))
    }
}

/// The weights of source pixels for output `o` on an axis of `from` to `to`.
fn weights(from: usize, to: usize, o: usize, filter: Filter) -> Vec<(usize, f64)> {
    let r = from as f64 / to as f64;
    match filter {
        Filter::Area if r > 2.0 => {
            let (lo, hi) = (o as f64 * r, (o + 1) as f64 * r);
            (0..from)
                .map(|i| {
                    (
                        i,
                        ((i as f64 + 1.0).min(hi) - (i as f64).max(lo)).max(0.0) / r,
                    )
                })
                .filter(|&(_, w)| w > 0.0)
                .collect()
        }
        Filter::Area => {
            let s = ((o as f64 + 0.5) * r - 0.5).clamp(0.0, from as f64 - 1.0);
            let i = s.floor() as usize;
            let f = s - i as f64;
            vec![(i, 1.0 - f), ((i + 1).min(from - 1), f)]
        }
        Filter::Triangle => {
            // PIL: tent of radius max(r, 1) around the centre, sampled at
            // pixel centres, renormalized inside the image.
            let (c, radius) = ((o as f64 + 0.5) * r, r.max(1.0));
            let raw: Vec<(usize, f64)> = (0..from)
                .map(|i| (i, (1.0 - ((i as f64 + 0.5 - c) / radius).abs()).max(0.0)))
                .filter(|&(_, w)| w > 0.0)
                .collect();
            let sum: f64 = raw.iter().map(|(_, w)| w).sum();
            raw.into_iter().map(|(i, w)| (i, w / sum)).collect()
        }
    }
}

fn resize(img: &Img, w: usize, h: usize, filter: Filter) -> Img {
    let mut c = vec![vec![0.0; w * h]; img.c.len()];
    for oy in 0..h {
        for ox in 0..w {
            for (ch, plane) in c.iter_mut().enumerate() {
                let mut sum = 0.0;
                for (sy, wy) in weights(img.h, h, oy, filter) {
                    for (sx, wx) in weights(img.w, w, ox, filter) {
                        sum += wx * wy * img.at(ch, sx, sy);
                    }
                }
                plane[oy * w + ox] = sum;
            }
        }
    }
    Img { w, h, c }
}

fn yuv_to_rgb(y: f64, u: f64, v: f64, color: YuvColor) -> [f64; 3] {
    let (y, u, v) = match color.range {
        YuvRange::Full => (y, u - 128.0, v - 128.0),
        YuvRange::Video => (
            (y - 16.0) * 255.0 / 219.0,
            (u - 128.0) * 255.0 / 224.0,
            (v - 128.0) * 255.0 / 224.0,
        ),
    };
    let [r, g, b] = match color.matrix {
        YuvMatrix::Bt601 => [
            y + 1.402 * v,
            y - 0.344136 * u - 0.714136 * v,
            y + 1.772 * u,
        ],
        YuvMatrix::Bt709 => [
            y + 1.5748 * v,
            y - 0.187324 * u - 0.468124 * v,
            y + 1.8556 * u,
        ],
    };
    [r, g, b].map(|c| c.clamp(0.0, 255.0))
}

/// What a frame shows: 8-bit channels at full (RGB) or 4:2:0 resolution.
enum Source {
    Yuv { y: Vec<u8>, u: Vec<u8>, v: Vec<u8> },
    Rgb(Vec<u8>),
}

/// The reference output: RGB values 0..=255 as NCHW f64.
fn reference(src: &Source, w: usize, opts: &FrameOptions, ow: usize, oh: usize) -> Vec<f64> {
    let crop = opts.crop.expect("tests give the crop");
    let cw = w.div_ceil(2);
    let full = |x: usize, y: usize| -> [f64; 3] {
        match src {
            Source::Yuv { y: l, u, v } => {
                let ci = (y / 2) * cw + x / 2;
                [l[y * w + x] as f64, u[ci] as f64, v[ci] as f64]
            }
            Source::Rgb(p) => std::array::from_fn(|c| p[(y * w + x) * 3 + c] as f64),
        }
    };
    let mut img = Img {
        w: crop.width,
        h: crop.height,
        c: vec![vec![0.0; crop.width * crop.height]; 3],
    };
    for y in 0..crop.height {
        for x in 0..crop.width {
            let p = full(crop.x + x, crop.y + y);
            for (plane, v) in img.c.iter_mut().zip(p) {
                plane[y * crop.width + x] = v;
            }
        }
    }
    let turns = match opts.rotation {
        Rotation::R0 => 0,
        Rotation::R90 => 1,
        Rotation::R180 => 2,
        Rotation::R270 => 3,
    };
    for _ in 0..turns {
        img = img.rotate_cw();
    }
    if opts.mirror {
        img = img.mirror();
    }
    let img = resize(&img, ow, oh, opts.filter);
    let mut out = vec![0.0; 3 * ow * oh];
    for i in 0..ow * oh {
        let px = [img.c[0][i], img.c[1][i], img.c[2][i]];
        let rgb = match src {
            Source::Yuv { .. } => yuv_to_rgb(px[0], px[1], px[2], opts.color),
            Source::Rgb(_) => px.map(|c| c.clamp(0.0, 255.0)),
        };
        for c in 0..3 {
            out[c * ow * oh + i] = rgb[c];
        }
    }
    out
}

/// The ways a test lays a source out in memory.
#[derive(Clone, Copy, Debug)]
enum Memory {
    Nv21,
    Nv12,
    I420,
    /// YUV_420_888 as Android hands it over: row strides padded, chroma
    /// interleaved with pixel stride 2 in separate slices.
    Android,
    /// I420 planes with padded rows.
    PaddedPlanar,
    Rgba,
    Bgra,
    /// RGB rows padded to a multiple of 16 bytes.
    PaddedRgb,
}

const ALL_MEMORY: [Memory; 8] = [
    Memory::Nv21,
    Memory::Nv12,
    Memory::I420,
    Memory::Android,
    Memory::PaddedPlanar,
    Memory::Rgba,
    Memory::Bgra,
    Memory::PaddedRgb,
];

/// Owned bytes for a frame and the frame over them.
struct Bytes {
    buffers: Vec<Vec<u8>>,
}

fn fill(len: usize, seed: u64) -> Vec<u8> {
    noise(len, seed ^ 0xA5A5)
}

impl Memory {
    fn is_yuv(self) -> bool {
        !matches!(self, Memory::Rgba | Memory::Bgra | Memory::PaddedRgb)
    }

    /// The source and its bytes (padding holds noise too).
    fn make(self, w: usize, h: usize, seed: u64) -> (Source, Bytes) {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        if !self.is_yuv() {
            let rgb = noise(w * h * 3, seed);
            let bpp = if matches!(self, Memory::PaddedRgb) {
                3
            } else {
                4
            };
            let stride = if matches!(self, Memory::PaddedRgb) {
                (w * 3).div_ceil(16) * 16 + 16
            } else {
                w * 4
            };
            let mut buf = fill(stride * h, seed);
            for y in 0..h {
                for x in 0..w {
                    let p = &rgb[(y * w + x) * 3..][..3];
                    let at = y * stride + x * bpp;
                    let (r, b) = if matches!(self, Memory::Bgra) {
                        (2, 0)
                    } else {
                        (0, 2)
                    };
                    buf[at + r] = p[0];
                    buf[at + 1] = p[1];
                    buf[at + b] = p[2];
                }
            }
            return (Source::Rgb(rgb), Bytes { buffers: vec![buf] });
        }
        let (y, u, v) = (
            noise(w * h, seed),
            noise(cw * ch, seed + 1),
            noise(cw * ch, seed + 2),
        );
        let buffers = match self {
            Memory::Nv21 | Memory::Nv12 => {
                let mut buf = y.clone();
                for i in 0..cw * ch {
                    if matches!(self, Memory::Nv21) {
                        buf.extend([v[i], u[i]]);
                    } else {
                        buf.extend([u[i], v[i]]);
                    }
                }
                vec![buf]
            }
            Memory::I420 => vec![[y.clone(), u.clone(), v.clone()].concat()],
            Memory::Android => {
                let stride = w + 7;
                let mut luma = fill(stride * h, seed);
                for r in 0..h {
                    luma[r * stride..][..w].copy_from_slice(&y[r * w..][..w]);
                }
                // One interleaved V,U buffer as on most phones; U starts one
                // byte in. The last row stops at its last chroma byte.
                let cstride = 2 * cw + 5;
                let mut vu = fill(cstride * ch, seed + 3);
                for r in 0..ch {
                    for c in 0..cw {
                        vu[r * cstride + 2 * c] = v[r * cw + c];
                        vu[r * cstride + 2 * c + 1] = u[r * cw + c];
                    }
                }
                vu.truncate((ch - 1) * cstride + 2 * cw);
                vec![luma, vu]
            }
            Memory::PaddedPlanar => {
                let pad = |p: &[u8], cols: usize, rows: usize| {
                    let stride = cols + 3;
                    let mut out = fill(stride * rows, seed);
                    for r in 0..rows {
                        out[r * stride..][..cols].copy_from_slice(&p[r * cols..][..cols]);
                    }
                    out
                };
                vec![pad(&y, w, h), pad(&u, cw, ch), pad(&v, cw, ch)]
            }
            _ => unreachable!(),
        };
        (Source::Yuv { y, u, v }, Bytes { buffers })
    }

    fn frame<'a>(self, b: &'a Bytes, w: usize, h: usize) -> Frame<'a> {
        let (cw, _) = (w.div_ceil(2), h.div_ceil(2));
        let plane = |data: &'a [u8], row_stride, pixel_stride| Plane {
            data,
            row_stride,
            pixel_stride,
        };
        let packed = |f| Frame::packed(f, &b.buffers[0], w, h).expect("valid frame");
        match self {
            Memory::Nv21 => packed(PixelFormat::Nv21),
            Memory::Nv12 => packed(PixelFormat::Nv12),
            Memory::I420 => packed(PixelFormat::I420),
            Memory::Rgba => packed(PixelFormat::Rgba),
            Memory::Bgra => packed(PixelFormat::Bgra),
            Memory::Android => Frame {
                width: w,
                height: h,
                pixels: Pixels::Yuv420 {
                    y: plane(&b.buffers[0], w + 7, 1),
                    u: plane(&b.buffers[1][1..], 2 * cw + 5, 2),
                    v: plane(&b.buffers[1][..b.buffers[1].len() - 1], 2 * cw + 5, 2),
                },
            },
            Memory::PaddedPlanar => Frame {
                width: w,
                height: h,
                pixels: Pixels::Yuv420 {
                    y: plane(&b.buffers[0], w + 3, 1),
                    u: plane(&b.buffers[1], cw + 3, 1),
                    v: plane(&b.buffers[2], cw + 3, 1),
                },
            },
            Memory::PaddedRgb => Frame {
                width: w,
                height: h,
                pixels: Pixels::Packed {
                    plane: plane(&b.buffers[0], (w * 3).div_ceil(16) * 16 + 16, 3),
                    r: 0,
                    g: 1,
                    b: 2,
                },
            },
        }
    }
}

/// Identity normalization: the output is the RGB value 0..=255.
fn raw_spec(width: usize, height: usize) -> TensorSpec {
    TensorSpec {
        width,
        height,
        layout: Layout::Nchw,
        order: ChannelOrder::Rgb,
        normalize: Normalize {
            scale: 1.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        },
    }
}

/// Largest difference, in 8-bit units, from the reference.
fn worst(
    mem: Memory,
    (w, h): (usize, usize),
    opts: FrameOptions,
    (ow, oh): (usize, usize),
    seed: u64,
) -> f64 {
    let (src, bytes) = mem.make(w, h, seed);
    let frame = mem.frame(&bytes, w, h);
    let full = Rect {
        x: 0,
        y: 0,
        width: w,
        height: h,
    };
    let want = reference(
        &src,
        w,
        &FrameOptions {
            crop: Some(opts.crop.unwrap_or(full)),
            ..opts
        },
        ow,
        oh,
    );
    // Every ISA's loops on this CPU, scalar included.
    let mut worst = 0.0;
    for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
        let mut conv = FrameConverter::with_isa(raw_spec(ow, oh), isa).unwrap();
        let mut out = vec![0f32; ow * oh * 3];
        conv.convert_f32(&frame, &opts, &mut out).unwrap();
        worst = out
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(worst, f64::max);
    }
    worst
}

const ROTATIONS: [Rotation; 4] = [Rotation::R0, Rotation::R90, Rotation::R180, Rotation::R270];

#[test]
fn every_layout_rotation_and_mirror_matches_the_reference() {
    // Odd frame sizes; the outputs shrink by more than 2x (area), by less
    // (bilinear) and grow, on axes that rotation swaps.
    for (i, mem) in ALL_MEMORY.into_iter().enumerate() {
        for (frame, out) in [((37, 23), (8, 5)), ((13, 9), (10, 6)), ((7, 5), (9, 16))] {
            for rotation in ROTATIONS {
                for mirror in [false, true] {
                    let opts = FrameOptions {
                        rotation,
                        mirror,
                        ..Default::default()
                    };
                    let d = worst(mem, frame, opts, out, i as u64);
                    assert!(
                        d <= 1.0,
                        "{mem:?} {frame:?}->{out:?} {rotation:?} mirror {mirror}: off by {d}"
                    );
                }
            }
        }
    }
}

#[test]
fn crops_at_the_edges_match_the_reference() {
    let (w, h) = (41, 29);
    let crops = [
        (0, 0, 1, 1),
        (40, 28, 1, 1),
        (33, 0, 8, 29),
        (1, 3, 40, 26),
        (0, 21, 41, 8),
        (17, 11, 5, 7),
    ];
    for mem in [
        Memory::Nv21,
        Memory::Android,
        Memory::PaddedPlanar,
        Memory::Bgra,
    ] {
        for (x, y, cw, ch) in crops {
            for rotation in ROTATIONS {
                let opts = FrameOptions {
                    crop: Some(Rect {
                        x,
                        y,
                        width: cw,
                        height: ch,
                    }),
                    rotation,
                    mirror: x % 2 == 1,
                    ..Default::default()
                };
                let d = worst(mem, (w, h), opts, (6, 4), 7);
                assert!(
                    d <= 1.0,
                    "{mem:?} crop {x},{y} {cw}x{ch} {rotation:?}: off by {d}"
                );
            }
        }
    }
}

#[test]
fn every_colour_matrix_and_range_matches_the_reference() {
    for matrix in [YuvMatrix::Bt601, YuvMatrix::Bt709] {
        for range in [YuvRange::Full, YuvRange::Video] {
            for mem in [Memory::Nv12, Memory::I420] {
                let opts = FrameOptions {
                    color: YuvColor { matrix, range },
                    rotation: Rotation::R90,
                    ..Default::default()
                };
                let d = worst(mem, (30, 20), opts, (12, 9), 3);
                assert!(d <= 1.0, "{matrix:?} {range:?} {mem:?}: off by {d}");
            }
        }
    }
}

#[test]
fn the_triangle_filter_matches_the_reference() {
    for mem in [Memory::Nv21, Memory::PaddedPlanar, Memory::Rgba] {
        for (frame, out) in [((37, 23), (8, 5)), ((13, 9), (10, 6)), ((7, 5), (9, 16))] {
            for rotation in ROTATIONS {
                let opts = FrameOptions {
                    rotation,
                    mirror: rotation == Rotation::R270,
                    filter: Filter::Triangle,
                    ..Default::default()
                };
                let d = worst(mem, frame, opts, out, 4);
                assert!(
                    d <= 1.0,
                    "{mem:?} {frame:?}->{out:?} {rotation:?}: off by {d}"
                );
            }
        }
    }
}

#[test]
fn a_camera_sized_frame_matches_the_reference() {
    // 640x480 to 224x224, rotated: area averaging on one axis, bilinear on
    // the other.
    let opts = FrameOptions {
        rotation: Rotation::R270,
        mirror: true,
        ..Default::default()
    };
    let d = worst(Memory::Android, (640, 480), opts, (100, 150), 11);
    assert!(d <= 1.0, "off by {d}");
}

#[test]
fn normalization_channel_order_and_layout() {
    // A flat colour: every output pixel is that colour.
    let (w, h) = (6, 4);
    let rgb: Vec<u8> = (0..w * h).flat_map(|_| [200u8, 100, 50]).collect();
    let frame = Frame::packed(PixelFormat::Rgb, &rgb, w, h).unwrap();
    let normalize = Normalize {
        scale: 1.0 / 255.0,
        mean: [0.5, 0.25, 0.125],
        std: [0.5, 0.25, 0.125],
    };
    let expect = |c: usize, v: f32| (v / 255.0 - normalize.mean[c]) / normalize.std[c];
    for layout in [Layout::Nchw, Layout::Nhwc] {
        for order in [ChannelOrder::Rgb, ChannelOrder::Bgr] {
            let spec = TensorSpec {
                width: 3,
                height: 2,
                layout,
                order,
                normalize,
            };
            let mut conv = FrameConverter::new(spec).unwrap();
            let mut out = vec![0f32; spec.len()];
            conv.convert_f32(&frame, &FrameOptions::default(), &mut out)
                .unwrap();
            let values = match order {
                ChannelOrder::Rgb => [200.0, 100.0, 50.0],
                ChannelOrder::Bgr => [50.0, 100.0, 200.0],
            };
            for p in 0..6 {
                for (c, &value) in values.iter().enumerate() {
                    let i = match layout {
                        Layout::Nchw => c * 6 + p,
                        Layout::Nhwc => p * 3 + c,
                    };
                    let want = expect(c, value);
                    assert!(
                        (out[i] - want).abs() < 1e-5,
                        "{layout:?} {order:?} [{i}]: {} vs {want}",
                        out[i]
                    );
                }
            }
        }
    }
}

#[test]
fn quantized_output_is_the_rounded_f32_output() {
    let (src, bytes) = Memory::Nv21.make(50, 30, 5);
    drop(src);
    let frame = Memory::Nv21.frame(&bytes, 50, 30);
    let spec = TensorSpec {
        width: 16,
        height: 16,
        layout: Layout::Nhwc,
        order: ChannelOrder::Rgb,
        normalize: Normalize {
            scale: 1.0 / 255.0,
            mean: [0.485, 0.456, 0.406],
            std: [0.229, 0.224, 0.225],
        },
    };
    let opts = FrameOptions::default();
    let mut conv = FrameConverter::new(spec).unwrap();
    let mut f = vec![0f32; spec.len()];
    conv.convert_f32(&frame, &opts, &mut f).unwrap();
    let (scale, zp) = (0.0186, 114u8);
    let mut q = vec![0u8; spec.len()];
    let element = Element::U8 {
        scale,
        zero_point: zp,
    };
    conv.convert_quantized(&frame, &opts, element, &mut q)
        .unwrap();
    for (&x, &got) in f.iter().zip(&q) {
        let want = ((x / scale).round() + zp as f32).clamp(0.0, 255.0);
        assert!((got as f32 - want).abs() <= 1.0, "{x}: {got} vs {want}");
    }
    let element = Element::I8 {
        scale,
        zero_point: -14,
    };
    conv.convert_quantized(&frame, &opts, element, &mut q)
        .unwrap();
    for (&x, &got) in f.iter().zip(&q) {
        let want = ((x / scale).round() - 14.0).clamp(-128.0, 127.0);
        assert!(
            (got as i8 as f32 - want).abs() <= 1.0,
            "{x}: {got} vs {want}"
        );
    }
}

#[test]
fn a_steady_stream_reuses_its_buffers() {
    let (_, bytes) = Memory::Nv21.make(64, 48, 1);
    let frame = Memory::Nv21.frame(&bytes, 64, 48);
    let mut conv = FrameConverter::new(raw_spec(20, 20)).unwrap();
    let mut out = vec![0f32; 1200];
    let opts = FrameOptions::default();
    conv.convert_f32(&frame, &opts, &mut out).unwrap();
    let first = conv.resampler.as_ref().unwrap().buffers();
    conv.convert_f32(&frame, &opts, &mut out).unwrap();
    assert_eq!(conv.resampler.as_ref().unwrap().buffers(), first);
    // A rotation that keeps the axes keeps the tables too.
    let flipped = FrameOptions {
        rotation: Rotation::R180,
        ..opts
    };
    conv.convert_f32(&frame, &flipped, &mut out).unwrap();
    assert_eq!(conv.resampler.as_ref().unwrap().buffers(), first);
}

fn err_text(r: Result<()>) -> String {
    match r {
        Err(Error::Frame(m)) => m,
        other => panic!("expected a frame error, got {other:?}"),
    }
}

#[test]
fn bad_frames_are_typed_errors_before_any_pixel_is_read() {
    let buf = vec![0u8; 64 * 48 * 3 / 2];
    let mut conv = FrameConverter::new(raw_spec(8, 8)).unwrap();
    let mut out = vec![0f32; 192];
    let opts = FrameOptions::default();
    let plane = |data, row_stride, pixel_stride| Plane {
        data,
        row_stride,
        pixel_stride,
    };
    let yuv = |y, u, v| Frame {
        width: 64,
        height: 48,
        pixels: Pixels::Yuv420 { y, u, v },
    };
    let (luma, chroma) = buf.split_at(64 * 48);
    let cases: Vec<(&str, Frame)> = vec![
        (
            "row stride",
            yuv(
                plane(luma, 63, 1),
                plane(chroma, 64, 2),
                plane(chroma, 64, 2),
            ),
        ),
        (
            "needs",
            yuv(
                plane(&luma[1..], 64, 1),
                plane(chroma, 64, 2),
                plane(chroma, 64, 2),
            ),
        ),
        (
            "needs",
            yuv(
                plane(luma, 64, 1),
                plane(&chroma[2..], 64, 2),
                plane(chroma, 64, 2),
            ),
        ),
        (
            "pixel stride",
            yuv(
                plane(luma, 64, 0),
                plane(chroma, 64, 2),
                plane(chroma, 64, 2),
            ),
        ),
        (
            "empty frame",
            Frame {
                width: 0,
                height: 48,
                pixels: Pixels::Yuv420 {
                    y: plane(luma, 64, 1),
                    u: plane(chroma, 64, 2),
                    v: plane(chroma, 64, 2),
                },
            },
        ),
        (
            "overflows",
            Frame {
                width: usize::MAX / 2,
                height: 3,
                pixels: Pixels::Packed {
                    plane: plane(&buf, usize::MAX, 4),
                    r: 0,
                    g: 1,
                    b: 2,
                },
            },
        ),
        (
            "stride 3 under the 4",
            Frame {
                width: 8,
                height: 8,
                pixels: Pixels::Packed {
                    plane: plane(&buf, 32, 3),
                    r: 3,
                    g: 1,
                    b: 2,
                },
            },
        ),
    ];
    for (want, frame) in cases {
        let msg = err_text(conv.convert_f32(&frame, &opts, &mut out));
        assert!(msg.contains(want), "{msg:?} should say {want:?}");
    }
    // Odd sizes whose chroma rounds up: a planar buffer sized with the
    // chroma rounded down is refused.
    let odd = vec![0u8; 9 * 7 + 2 * (4 * 3)];
    assert!(Frame::packed(PixelFormat::I420, &odd, 9, 7).is_err());
    let fits = vec![0u8; 9 * 7 + 2 * (5 * 4)];
    assert!(Frame::packed(PixelFormat::I420, &fits, 9, 7).is_ok());
    assert!(Frame::packed(PixelFormat::Nv21, &buf, usize::MAX, 2).is_err());
    let frame = Frame::packed(PixelFormat::Nv21, &buf, 64, 48).unwrap();
    for (x, y, w, h) in [
        (60, 0, 5, 1),
        (0, 48, 1, 1),
        (0, 0, 0, 4),
        (usize::MAX, 0, 2, 2),
    ] {
        let crop = FrameOptions {
            crop: Some(Rect {
                x,
                y,
                width: w,
                height: h,
            }),
            ..opts
        };
        let msg = err_text(conv.convert_f32(&frame, &crop, &mut out));
        assert!(msg.contains("crop"), "{msg}");
    }
    assert!(err_text(conv.convert_f32(&frame, &opts, &mut out[1..])).contains("output holds"));
    assert!(FrameConverter::new(raw_spec(0, 4)).is_err());
    assert!(FrameConverter::new(raw_spec(usize::MAX, 4)).is_err());
    assert!(Rotation::from_degrees(45).is_err());
    let bad_q = Element::U8 {
        scale: 0.0,
        zero_point: 0,
    };
    let mut q = vec![0u8; 192];
    assert!(conv
        .convert_quantized(&frame, &opts, bad_q, &mut q)
        .is_err());
}

#[test]
fn interleaved_pixels_need_their_whole_pixel() {
    let data = [0u8; 64];
    let plane = |pixel_stride| Plane {
        data: &data,
        row_stride: 16,
        pixel_stride,
    };
    for (format, bpp) in [
        (PixelFormat::Rgba, 4),
        (PixelFormat::Bgra, 4),
        (PixelFormat::Rgb, 3),
    ] {
        assert!(matches!(
            Pixels::interleaved(format, plane(bpp - 1)),
            Err(Error::Frame(_))
        ));
        assert!(Pixels::interleaved(format, plane(bpp)).is_ok());
    }
    assert!(Pixels::interleaved(PixelFormat::Nv21, plane(4)).is_err());
}
