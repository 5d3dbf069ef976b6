//! Direct 2-D convolution and transposed convolution, NCHW, any groups,
//! strides, dilations and pads; bias and activation in the epilogue.

use crate::ir::{ConvGeometry, UnaryOp};

/// Shapes of one convolution call (input \[n,c,h,w\] and output \[n,m,oh,ow\]).
#[derive(Clone, Copy, Debug)]
pub struct ConvShape<'a> {
    pub geometry: &'a ConvGeometry,
    pub input: [usize; 4],
    pub output: [usize; 4],
}

fn epilogue(y: &mut [f32], bias: f32, act: Option<UnaryOp>) {
    match act {
        Some(a) => y.iter_mut().for_each(|v| *v = a.apply(*v + bias)),
        None => y.iter_mut().for_each(|v| *v += bias),
    }
}

/// `w` is \[m, c/groups, kh, kw\]; `y` is overwritten.
pub fn conv2d(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<UnaryOp>,
    y: &mut [f32],
) {
    let g = s.geometry;
    let [n, c, ih, iw] = s.input;
    let [_, m, oh, ow] = s.output;
    let (cg, mg) = (c / g.groups, m / g.groups);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilations;
    let (pt, pl) = (g.pads[0] as isize, g.pads[1] as isize);
    // Output columns whose tap `kx` lands inside the input: [lo, hi).
    let col_range = |kx: usize| -> (usize, usize) {
        let off = (kx * dw) as isize - pl;
        let lo = if off < 0 {
            ((-off) as usize).div_ceil(sw)
        } else {
            0
        };
        let hi_excl = iw as isize - off; // need ox*sw < hi_excl
        let hi = if hi_excl <= 0 {
            0
        } else {
            ((hi_excl as usize).div_ceil(sw)).min(ow)
        };
        (lo.min(hi), hi)
    };
    for b in 0..n {
        for oc in 0..m {
            let grp = oc / mg;
            let out = &mut y[(b * m + oc) * oh * ow..][..oh * ow];
            out.fill(0.0);
            for icg in 0..cg {
                let ic = grp * cg + icg;
                let plane = &x[(b * c + ic) * ih * iw..][..ih * iw];
                let wk = &w[(oc * cg + icg) * kh * kw..][..kh * kw];
                for ky in 0..kh {
                    for kx in 0..kw {
                        let wv = wk[ky * kw + kx];
                        let (lo, hi) = col_range(kx);
                        let xoff = (kx * dw) as isize - pl;
                        for oy in 0..oh {
                            let iy = (oy * sh + ky * dh) as isize - pt;
                            if iy < 0 || iy >= ih as isize {
                                continue;
                            }
                            let row = &plane[iy as usize * iw..][..iw];
                            let orow = &mut out[oy * ow..][..ow];
                            for ox in lo..hi {
                                orow[ox] += wv * row[(ox as isize * sw as isize + xoff) as usize];
                            }
                        }
                    }
                }
            }
            epilogue(out, bias.map_or(0.0, |b| b[oc]), act);
        }
    }
}

/// `w` is \[c, m/groups, kh, kw\]; `y` is overwritten.
pub fn conv_transpose2d(
    s: &ConvShape,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    act: Option<UnaryOp>,
    y: &mut [f32],
) {
    let g = s.geometry;
    let [n, c, ih, iw] = s.input;
    let [_, m, oh, ow] = s.output;
    let (cg, mg) = (c / g.groups, m / g.groups);
    let [kh, kw] = g.kernel;
    let [sh, sw] = g.strides;
    let [dh, dw] = g.dilations;
    let (pt, pl) = (g.pads[0] as isize, g.pads[1] as isize);
    y.fill(0.0);
    for b in 0..n {
        for ic in 0..c {
            let grp = ic / cg;
            let plane = &x[(b * c + ic) * ih * iw..][..ih * iw];
            for ocg in 0..mg {
                let oc = grp * mg + ocg;
                let out = &mut y[(b * m + oc) * oh * ow..][..oh * ow];
                let wk = &w[(ic * mg + ocg) * kh * kw..][..kh * kw];
                for iy in 0..ih {
                    for ky in 0..kh {
                        let oy = (iy * sh + ky * dh) as isize - pt;
                        if oy < 0 || oy >= oh as isize {
                            continue;
                        }
                        let orow = &mut out[oy as usize * ow..][..ow];
                        for kx in 0..kw {
                            let wv = wk[ky * kw + kx];
                            for ix in 0..iw {
                                let ox = (ix * sw + kx * dw) as isize - pl;
                                if ox >= 0 && ox < ow as isize {
                                    orow[ox as usize] += wv * plane[iy * iw + ix];
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    for b in 0..n {
        for oc in 0..m {
            epilogue(
                &mut y[(b * m + oc) * oh * ow..][..oh * ow],
                bias.map_or(0.0, |b| b[oc]),
                act,
            );
        }
    }
}
