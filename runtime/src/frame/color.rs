//! YUV to RGB: BT.601 or BT.709, full or video range.

/// The matrix of a YUV frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YuvMatrix {
    /// SD and JPEG; what Android cameras deliver.
    #[default]
    Bt601,
    /// HD video.
    Bt709,
}

/// The value range of a YUV frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum YuvRange {
    /// Y and chroma span 0..=255 (Android's camera YUV_420_888, iOS'
    /// `...FullRange` pixel buffers).
    #[default]
    Full,
    /// Y in 16..=235, chroma in 16..=240 (iOS' `...VideoRange`).
    Video,
}

/// How a YUV frame encodes colour. The default, BT.601 full range, is what
/// Android's camera delivers; iOS capture sessions say theirs in the pixel
/// format (`420f` full, `420v` video range).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct YuvColor {
    pub matrix: YuvMatrix,
    pub range: YuvRange,
}

/// `rgb = y_gain * (Y - y0) + chroma terms * (C - 128)`, unclamped.
#[derive(Clone, Copy, Debug)]
pub(crate) struct YuvToRgb {
    y0: f32,
    y_gain: f32,
    r_v: f32,
    g_u: f32,
    g_v: f32,
    b_u: f32,
}

impl YuvColor {
    pub(crate) fn coefficients(&self) -> YuvToRgb {
        let (kr, kb) = match self.matrix {
            YuvMatrix::Bt601 => (0.299f32, 0.114f32),
            YuvMatrix::Bt709 => (0.2126, 0.0722),
        };
        let kg = 1.0 - kr - kb;
        let (y0, y_gain, c_gain) = match self.range {
            YuvRange::Full => (0.0, 1.0, 1.0),
            YuvRange::Video => (16.0, 255.0 / 219.0, 255.0 / 224.0),
        };
        YuvToRgb {
            y0,
            y_gain,
            r_v: 2.0 * (1.0 - kr) * c_gain,
            g_u: -2.0 * kb * (1.0 - kb) / kg * c_gain,
            g_v: -2.0 * kr * (1.0 - kr) / kg * c_gain,
            b_u: 2.0 * (1.0 - kb) * c_gain,
        }
    }
}

impl YuvToRgb {
    /// The conversion as `matrix · ([y, u, v] - offset)`, rows R, G, B.
    pub(crate) fn affine(&self) -> ([f32; 3], [[f32; 3]; 3]) {
        let g = self.y_gain;
        (
            [self.y0, 128.0, 128.0],
            [
                [g, 0.0, self.r_v],
                [g, self.g_u, self.g_v],
                [g, self.b_u, 0.0],
            ],
        )
    }
}
