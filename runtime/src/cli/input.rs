//! Turning the files given to `squeeze run` into input tensors: images
//! (resized, scaled, normalized, RGB or BGR, NCHW) and `.npy` tensors.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::Tensor;
use crate::session::IoInfo;

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
            scale: self.scale.unwrap_or(1.0 / 255.0),
            mean: triple(&self.mean, 0.0),
            std: triple(&self.std, 1.0),
            bgr: self.bgr,
        }
    }
}

/// Pixel preprocessing: `(pixel * scale - mean[c]) / std[c]`.
#[derive(Clone, Debug)]
pub struct Preprocess {
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
    pub bgr: bool,
}

/// Decodes an image and lays it out as the NCHW f32 tensor `info` wants.
pub fn image_tensor(path: &Path, info: &IoInfo, p: &Preprocess) -> Result<Tensor> {
    let [n, c, h, w] = info.shape[..] else {
        return Err(Error::Input(format!(
            "input {:?} is not NCHW: {:?}",
            info.name, info.shape
        )));
    };
    if n != 1 || c != 3 {
        return Err(Error::Input(format!(
            "an image feeds a 1x3xHxW input; {:?} is {:?}",
            info.name, info.shape
        )));
    }
    let img = image::open(path)
        .map_err(|e| Error::Input(format!("{}: {e}", path.display())))?
        .to_rgb8();
    let img = image::imageops::resize(
        &img,
        w as u32,
        h as u32,
        image::imageops::FilterType::Triangle,
    );
    let mut data = vec![0f32; 3 * h * w];
    for (x, y, px) in img.enumerate_pixels() {
        for ch in 0..3 {
            let src = if p.bgr { 2 - ch } else { ch };
            data[(ch * h + y as usize) * w + x as usize] =
                (px[src] as f32 * p.scale - p.mean[ch]) / p.std[ch];
        }
    }
    Tensor::from_f32(vec![1, 3, h, w], data)
}

/// Class labels, one per line.
pub fn read_labels(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    Ok(text.lines().map(str::to_string).collect())
}

/// Loads `.npy` or an image, by extension.
pub fn load(path: &Path, info: &IoInfo, p: &Preprocess) -> Result<Tensor> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ext == "npy" {
        crate::npy::read(path)
    } else {
        image_tensor(path, info, p)
    }
}
