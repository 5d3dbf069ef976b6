//! Turning the files given to `squeeze run`, `pack` and `bench` into input
//! tensors: `.npy` tensors, images and raw camera frames. Images and frames
//! both go through the library's frame path ([`crate::frame`]), so the
//! CLI converts pixels exactly as an app does.

use std::path::Path;

use crate::error::{Error, Result};
use crate::frame::{
    ChannelOrder, Filter, Frame, FrameOptions, Normalize, PixelFormat, Preprocess, Rect, Rotation,
    YuvColor, YuvMatrix, YuvRange,
};
use crate::ir::Tensor;
use crate::Model;

/// The preprocessing flags of `run` and `pack`.
#[derive(clap::Args, Clone, Debug)]
pub struct PreprocessArgs {
    /// Pixel scale applied before mean/std (default 1/255, mapping to 0..1;
    /// `run` on a .sqz defaults to what was recorded at pack time).
    #[arg(long)]
    pub scale: Option<f32>,
    /// Per-channel mean subtracted after scaling, e.g. 0.485,0.456,0.406.
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub mean: Option<Vec<f32>>,
    /// Per-channel std dividing after the mean, e.g. 0.229,0.224,0.225.
    #[arg(long, value_delimiter = ',', num_args = 1..=3)]
    pub std: Option<Vec<f32>>,
    /// Feed channels in BGR order.
    #[arg(long)]
    pub bgr: bool,
}

fn triple(v: &Option<Vec<f32>>, default: f32) -> [f32; 3] {
    match v.as_deref() {
        Some([a]) => [*a; 3],
        Some([a, b, c]) => [*a, *b, *c],
        _ => [default; 3],
    }
}

impl PreprocessArgs {
    /// True when any flag was given.
    pub fn given(&self) -> bool {
        self.scale.is_some() || self.mean.is_some() || self.std.is_some() || self.bgr
    }

    pub fn preprocess(&self) -> Preprocess {
        Preprocess {
            order: if self.bgr {
                ChannelOrder::Bgr
            } else {
                ChannelOrder::Rgb
            },
            normalize: Normalize {
                scale: self.scale.unwrap_or(1.0 / 255.0),
                mean: triple(&self.mean, 0.0),
                std: triple(&self.std, 1.0),
            },
            ..Preprocess::default()
        }
    }

    /// The flags if given, else what the model recorded at pack time, else
    /// the defaults.
    pub fn resolve(&self, model: &Model) -> Result<Preprocess> {
        if self.given() {
            return Ok(self.preprocess());
        }
        Ok(model.preprocess()?.unwrap_or_else(|| self.preprocess()))
    }
}

/// Raw camera frames and the geometry applied to frames and images.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct FrameArgs {
    /// Size of a raw frame input, WxH (e.g. 1920x1080).
    #[arg(long, alias = "frame", value_name = "WxH")]
    pub frame_size: Option<String>,
    /// Pixel format of a raw frame when its extension does not say:
    /// nv21, nv12, i420, rgba, bgra or rgb (planes tightly packed).
    #[arg(long)]
    pub frame_format: Option<String>,
    /// Clockwise rotation turning the frame upright: 0, 90, 180 or 270.
    #[arg(long, default_value_t = 0)]
    pub rotate: u32,
    /// Mirror horizontally after rotating.
    #[arg(long)]
    pub mirror: bool,
    /// The part of the frame to use: x,y,w,h in frame pixels.
    #[arg(long, value_delimiter = ',', value_name = "X,Y,W,H")]
    pub crop: Option<Vec<usize>>,
    /// YUV matrix: bt601 (cameras; the default) or bt709.
    #[arg(long)]
    pub yuv_matrix: Option<String>,
    /// YUV in video range (16..235) instead of full range.
    #[arg(long)]
    pub video_range: bool,
    /// Resize filter: area (bilinear, area averaging when shrinking more
    /// than 2x; the default) or triangle (PIL's antialiased bilinear).
    #[arg(long)]
    pub resize: Option<String>,
}

impl FrameArgs {
    /// The geometry and colour flags as frame options.
    pub fn options(&self) -> Result<FrameOptions> {
        let name = self.yuv_matrix.as_deref().unwrap_or("bt601");
        let matrix = match name.to_ascii_lowercase().as_str() {
            "bt601" => YuvMatrix::Bt601,
            "bt709" => YuvMatrix::Bt709,
            other => {
                return Err(Error::Input(format!(
                    "--yuv-matrix {other:?}: bt601 or bt709"
                )))
            }
        };
        let crop = match self.crop.as_deref() {
            None => None,
            Some(&[x, y, width, height]) => Some(Rect {
                x,
                y,
                width,
                height,
            }),
            Some(other) => {
                return Err(Error::Input(format!(
                    "--crop takes x,y,w,h: {} values given",
                    other.len()
                )))
            }
        };
        let filter = match self.resize.as_deref().unwrap_or("area") {
            "area" => Filter::Area,
            "triangle" => Filter::Triangle,
            other => {
                return Err(Error::Input(format!(
                    "--resize {other:?}: area or triangle"
                )))
            }
        };
        Ok(FrameOptions {
            crop,
            filter,
            rotation: Rotation::from_degrees(self.rotate)?,
            mirror: self.mirror,
            color: YuvColor {
                matrix,
                range: if self.video_range {
                    YuvRange::Video
                } else {
                    YuvRange::Full
                },
            },
        })
    }

    /// `--frame-size` as (width, height).
    pub fn size(&self) -> Result<Option<(usize, usize)>> {
        let Some(s) = &self.frame_size else {
            return Ok(None);
        };
        let bad = || Error::Input(format!("--frame-size {s:?}: use WxH, e.g. 1920x1080"));
        let (w, h) = s.split_once(['x', 'X']).ok_or_else(bad)?;
        Ok(Some((
            w.trim().parse().map_err(|_| bad())?,
            h.trim().parse().map_err(|_| bad())?,
        )))
    }

    /// The raw format of `path`, from `--frame-format` or its extension;
    /// `None` for other files.
    fn format(&self, path: &Path) -> Result<Option<PixelFormat>> {
        if let Some(f) = &self.frame_format {
            return PixelFormat::from_name(f)
                .map(Some)
                .ok_or_else(|| Error::Input(format!("--frame-format {f:?}: unknown")));
        }
        Ok(path
            .extension()
            .and_then(|e| e.to_str())
            .and_then(PixelFormat::from_name))
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })
}

/// Converts `frame` into model input `slot` as a tensor.
pub fn frame_tensor(
    model: &Model,
    slot: usize,
    frame: &Frame,
    opts: &FrameOptions,
    pre: &Preprocess,
) -> Result<Tensor> {
    let mut converter = model.frame_converter(slot, Some(pre))?;
    let mut data = vec![0f32; converter.spec().len()];
    converter.convert_f32(frame, opts, &mut data)?;
    Tensor::from_f32(model.inputs()[slot].shape.clone(), data)
}

/// Loads input `slot` from `.npy`, a raw frame (by extension or
/// `--frame-format`) or an image.
pub fn load(
    path: &Path,
    model: &Model,
    slot: usize,
    pre: &Preprocess,
    frame: &FrameArgs,
) -> Result<Tensor> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "npy" {
        return crate::npy::read(path);
    }
    let opts = frame.options()?;
    if let Some(format) = frame.format(path)? {
        let (w, h) = frame.size()?.ok_or_else(|| {
            Error::Input(format!(
                "{}: a raw frame needs --frame-size WxH",
                path.display()
            ))
        })?;
        let bytes = read(path)?;
        let f = Frame::packed(format, &bytes, w, h)?;
        return frame_tensor(model, slot, &f, &opts, pre);
    }
    let img = image::open(path)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?
        .to_rgb8();
    let (w, h) = (img.width() as usize, img.height() as usize);
    let f = Frame::packed(PixelFormat::Rgb, img.as_raw(), w, h)?;
    frame_tensor(model, slot, &f, &opts, pre)
}

/// Class labels, one per line.
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(text.lines().map(str::to_string).collect())
}
