//! The typed preprocessing of a model input: what `.sqz` metadata records as
//! strings, parsed once into enums so nothing downstream compares text.

use crate::error::{Error, Result};
use crate::pack::Preprocessing;

/// Where channels go in the input tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Layout {
    /// `[1, 3, H, W]`
    #[default]
    Nchw,
    /// `[1, H, W, 3]`
    Nhwc,
}

/// The order of the three colour channels the model expects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChannelOrder {
    #[default]
    Rgb,
    Bgr,
}

impl ChannelOrder {
    /// For each output channel, the RGB channel it takes.
    pub(crate) fn source_channels(self) -> [usize; 3] {
        match self {
            ChannelOrder::Rgb => [0, 1, 2],
            ChannelOrder::Bgr => [2, 1, 0],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ChannelOrder::Rgb => "RGB",
            ChannelOrder::Bgr => "BGR",
        }
    }
}

impl Layout {
    pub fn name(self) -> &'static str {
        match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
        }
    }
}

/// `(value * scale - mean[c]) / std[c]` per channel, in the model's
/// channel order, from 8-bit values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalize {
    pub scale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for Normalize {
    /// 0..=255 to 0..=1.
    fn default() -> Self {
        Normalize {
            scale: 1.0 / 255.0,
            mean: [0.0; 3],
            std: [1.0; 3],
        }
    }
}

impl Normalize {
    /// Per channel `(gain, offset)` with `value * gain + offset` equal to
    /// the normalized value.
    pub(crate) fn affine(&self) -> [(f32, f32); 3] {
        std::array::from_fn(|c| (self.scale / self.std[c], -self.mean[c] / self.std[c]))
    }
}

/// How an image becomes a model input: layout, channel order and
/// normalization, plus the input size recorded at pack time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Preprocess {
    pub layout: Layout,
    pub order: ChannelOrder,
    pub normalize: Normalize,
    /// `[height, width]`, when recorded.
    pub input_size: Option<[usize; 2]>,
}

impl TryFrom<&Preprocessing> for Preprocess {
    type Error = Error;

    /// Parses the metadata's strings; an unknown one is a typed error.
    fn try_from(p: &Preprocessing) -> Result<Preprocess> {
        let layout = match p.layout.as_str() {
            "NCHW" => Layout::Nchw,
            "NHWC" => Layout::Nhwc,
            other => return Err(Error::Pack(format!("unknown input layout {other:?}"))),
        };
        let order = match p.color_order.as_str() {
            "RGB" => ChannelOrder::Rgb,
            "BGR" => ChannelOrder::Bgr,
            other => return Err(Error::Pack(format!("unknown colour order {other:?}"))),
        };
        let normalize = Normalize {
            scale: p.scale,
            mean: p.mean,
            std: p.std,
        };
        if !normalize.scale.is_finite() || normalize.std.iter().any(|s| !s.is_normal()) {
            return Err(Error::Pack(format!(
                "preprocessing scale {} / std {:?} unusable",
                p.scale, p.std
            )));
        }
        let input_size = (p.input_size != [0, 0]).then_some(p.input_size);
        Ok(Preprocess {
            layout,
            order,
            normalize,
            input_size,
        })
    }
}

impl From<&Preprocess> for Preprocessing {
    fn from(p: &Preprocess) -> Preprocessing {
        Preprocessing {
            layout: p.layout.name().into(),
            color_order: p.order.name().into(),
            scale: p.normalize.scale,
            mean: p.normalize.mean,
            std: p.normalize.std,
            input_size: p.input_size.unwrap_or([0, 0]),
        }
    }
}
