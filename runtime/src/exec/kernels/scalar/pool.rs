//! Max, average and Lp pooling (windowed and global), NCHW.

use crate::ir::{PoolGeometry, PoolKind};

/// `|v|^p`, one term of an Lp norm.
fn lp_term(v: f32, p: u32) -> f32 {
    match p {
        1 => v.abs(),
        2 => v * v,
        _ => v.abs().powi(p as i32),
    }
}

/// The `p`-th root of a sum of [`lp_term`]s.
fn lp_root(sum: f32, p: u32) -> f32 {
    match p {
        1 => sum,
        2 => sum.sqrt(),
        _ => sum.powf(1.0 / p as f32),
    }
}

/// The `p`-norm of `xs`.
#[inline(always)]
fn lp_norm(xs: &[f32], p: u32) -> f32 {
    lp_root(xs.iter().map(|&v| lp_term(v, p)).sum(), p)
}

pub fn pool2d(p: &PoolGeometry, input: [usize; 4], x: &[f32], output: [usize; 4], y: &mut [f32]) {
    let [n, c, ih, iw] = input;
    let [_, _, oh, ow] = output;
    let (pt, pl) = (p.pads[0] as isize, p.pads[1] as isize);
    for plane in 0..n * c {
        let xin = &x[plane * ih * iw..][..ih * iw];
        let out = &mut y[plane * oh * ow..][..oh * ow];
        for oy in 0..oh {
            for ox in 0..ow {
                let y0 = oy as isize * p.strides[0] as isize - pt;
                let x0 = ox as isize * p.strides[1] as isize - pl;
                let mut acc = match p.kind {
                    PoolKind::Max => f32::NEG_INFINITY,
                    PoolKind::Avg { .. } | PoolKind::Lp { .. } => 0.0,
                };
                let mut count = 0usize;
                for ky in 0..p.kernel[0] {
                    let iy = y0 + (ky * p.dilations[0]) as isize;
                    if iy < 0 || iy >= ih as isize {
                        continue;
                    }
                    for kx in 0..p.kernel[1] {
                        let ix = x0 + (kx * p.dilations[1]) as isize;
                        if ix < 0 || ix >= iw as isize {
                            continue;
                        }
                        let v = xin[iy as usize * iw + ix as usize];
                        match p.kind {
                            PoolKind::Max => acc = acc.max(v),
                            PoolKind::Avg { .. } => acc += v,
                            PoolKind::Lp { p } => acc += lp_term(v, p),
                        }
                        count += 1;
                    }
                }
                out[oy * ow + ox] = match p.kind {
                    PoolKind::Max => acc,
                    PoolKind::Lp { p } => lp_root(acc, p),
                    PoolKind::Avg {
                        count_include_pad: false,
                    } => acc / count.max(1) as f32,
                    PoolKind::Avg {
                        count_include_pad: true,
                    } => {
                        // The window is clipped to the padded extent, not the input.
                        let span = |o: isize, k: usize, len: usize, pad_end: usize| {
                            let end = (o + k as isize).min((len + pad_end) as isize);
                            (end - o).max(0) as usize
                        };
                        let hy = span(y0, p.kernel[0], ih, p.pads[2]);
                        let wx = span(x0, p.kernel[1], iw, p.pads[3]);
                        acc / (hy * wx).max(1) as f32
                    }
                };
            }
        }
    }
}

/// Pooling over all spatial positions of each (n, c) plane.
pub fn global_pool(kind: PoolKind, planes: usize, x: &[f32], y: &mut [f32]) {
    if planes == 0 {
        return;
    }
    let inner = x.len() / planes;
    for (o, xs) in y.iter_mut().zip(x.chunks(inner.max(1))) {
        *o = match kind {
            PoolKind::Max => xs.iter().copied().fold(f32::NEG_INFINITY, f32::max),
            PoolKind::Avg { .. } => xs.iter().sum::<f32>() / inner.max(1) as f32,
            PoolKind::Lp { p } => lp_norm(xs, p),
        };
    }
}

/// [`global_pool`] over 16 lanes per plane: independent partial sums (or
/// maxima) that the compiler keeps in vector registers, where a serial
/// sum waits on each addition. The order of additions differs from the
/// reference's, within f32 rounding.
#[inline(always)]
pub fn global_pool_lanes(kind: PoolKind, planes: usize, x: &[f32], y: &mut [f32]) {
    const LANES: usize = 16;
    if planes == 0 {
        return;
    }
    let inner = x.len() / planes;
    for (o, xs) in y.iter_mut().zip(x.chunks(inner.max(1))) {
        let chunks = xs.chunks_exact(LANES);
        let rest = chunks.remainder();
        *o = match kind {
            PoolKind::Max => {
                let mut acc = [f32::NEG_INFINITY; LANES];
                for c in chunks {
                    acc.iter_mut().zip(c).for_each(|(a, &v)| *a = a.max(v));
                }
                acc.iter()
                    .chain(rest)
                    .copied()
                    .fold(f32::NEG_INFINITY, f32::max)
            }
            PoolKind::Avg { .. } => {
                let mut acc = [0f32; LANES];
                for c in chunks {
                    acc.iter_mut().zip(c).for_each(|(a, &v)| *a += v);
                }
                (acc.iter().sum::<f32>() + rest.iter().sum::<f32>()) / inner.max(1) as f32
            }
            PoolKind::Lp { p } => lp_norm(xs, p),
        };
    }
}
