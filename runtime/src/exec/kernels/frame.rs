//! The row loops of camera-frame conversion ([`crate::frame`]): summing
//! weighted source rows of bytes, splitting interleaved channels, and the
//! short weighted sums of the column pass. Written once here and compiled
//! per ISA through [`Simd`] (`#[target_feature]`), so each ISA's loops
//! are these loops vectorized for it; [`FrameLoops`] picks them once per
//! converter, and the tests below hold each ISA to the scalar build
//! bit for bit.

use super::simd::Simd;
use super::Isa;

/// Taps of one output are padded to a multiple of this many, with zero
/// weights, so the column pass runs in fixed-width chunks.
pub const TAP_CHUNK: usize = 4;

/// `acc[i] += weight * row[i]` over the shorter of the two.
#[inline(always)]
pub fn accumulate_row(acc: &mut [f32], row: &[u8], weight: f32) {
    for (a, &b) in acc.iter_mut().zip(row) {
        *a += weight * b as f32;
    }
}

/// `out[i] = interleaved[i * stride + offset]` for every `i` of `out`.
#[inline(always)]
pub fn gather_channel(interleaved: &[f32], stride: usize, offset: usize, out: &mut [f32]) {
    let channel = interleaved.get(offset..).unwrap_or(&[]);
    match stride {
        2 => gather_fixed::<2>(channel, out),
        3 => gather_fixed::<3>(channel, out),
        4 => gather_fixed::<4>(channel, out),
        _ => gather_tail(channel, stride, out),
    }
}

/// [`gather_channel`] for a stride known at compile time, which the
/// compiler turns into shuffles; the last, partial pixel by [`gather_tail`].
#[inline(always)]
fn gather_fixed<const S: usize>(channel: &[f32], out: &mut [f32]) {
    let whole = channel.len() / S;
    for (o, p) in out.iter_mut().zip(channel.chunks_exact(S)) {
        *o = p[0];
    }
    if let (Some(rest), Some(src)) = (out.get_mut(whole..), channel.get(whole * S..)) {
        gather_tail(src, S, rest);
    }
}

#[inline(always)]
fn gather_tail(channel: &[f32], stride: usize, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(channel.iter().step_by(stride)) {
        *o = v;
    }
}

/// `out[o] = Σ_k weights[o * width + k] * acc[starts[o] + k]`, `k < width`
/// (a multiple of [`TAP_CHUNK`]), summed in `TAP_CHUNK` lanes.
#[inline(always)]
pub fn weighted_sums(
    acc: &[f32],
    starts: &[usize],
    weights: &[f32],
    width: usize,
    out: &mut [f32],
) {
    for ((o, &start), w) in out.iter_mut().zip(starts).zip(weights.chunks_exact(width)) {
        let a = &acc[start..start + width];
        let mut lanes = [0f32; TAP_CHUNK];
        for (wc, ac) in w.chunks_exact(TAP_CHUNK).zip(a.chunks_exact(TAP_CHUNK)) {
            for l in 0..TAP_CHUNK {
                lanes[l] += wc[l] * ac[l];
            }
        }
        *o = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
    }
}

/// Colour conversion and normalization of a run of pixels: for output
/// channel `o`, `clamp(Σ_k matrix[o][k] * (src[k][i] - offset[k]), 0, 255)
/// * gain[o] + bias[o]` (the channel order is folded into `matrix`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ColorRow {
    pub offset: [f32; 3],
    pub matrix: [[f32; 3]; 3],
    pub gain: [f32; 3],
    pub bias: [f32; 3],
}

/// [`ColorRow`] over the shortest of `src`'s rows, into `out[o]`.
#[inline(always)]
pub fn color_row(src: [&[f32]; 3], k: &ColorRow, out: [&mut [f32]; 3]) {
    let [s0, s1, s2] = src;
    let [o0, o1, o2] = out;
    let n = s0
        .len()
        .min(s1.len())
        .min(s2.len())
        .min(o0.len())
        .min(o1.len())
        .min(o2.len());
    let (s0, s1, s2) = (&s0[..n], &s1[..n], &s2[..n]);
    let (o0, o1, o2) = (&mut o0[..n], &mut o1[..n], &mut o2[..n]);
    let m = &k.matrix;
    for i in 0..n {
        let (a, b, c) = (
            s0[i] - k.offset[0],
            s1[i] - k.offset[1],
            s2[i] - k.offset[2],
        );
        let channel = |o: usize| {
            let v = m[o][0] * a + m[o][1] * b + m[o][2] * c;
            v.clamp(0.0, 255.0) * k.gain[o] + k.bias[o]
        };
        o0[i] = channel(0);
        o1[i] = channel(1);
        o2[i] = channel(2);
    }
}

/// The frame loops of one ISA, chosen once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLoops {
    isa: Isa,
}

/// Runs `$call` with the token of `$isa`'s [`Simd`] type, or `$scalar`.
macro_rules! on_isa {
    ($isa:expr, |$s:ident| $call:expr, $scalar:expr) => {
        match $isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => match super::x86_64::Avx2::detect() {
                Some($s) => $call,
                None => $scalar,
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => match super::x86_64::Avx512::detect() {
                Some($s) => $call,
                None => $scalar,
            },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => match super::aarch64::Neon::detect() {
                Some($s) => $call,
                None => $scalar,
            },
            _ => $scalar,
        }
    };
}

impl FrameLoops {
    /// The loops of `isa` (scalar where this CPU lacks it).
    pub fn new(isa: Isa) -> FrameLoops {
        let isa = if isa.available() { isa } else { Isa::Scalar };
        FrameLoops { isa }
    }

    pub fn isa(self) -> Isa {
        self.isa
    }

    pub fn accumulate_row(self, acc: &mut [f32], row: &[u8], weight: f32) {
        on_isa!(
            self.isa,
            |s| s.frame_accumulate(acc, row, weight),
            accumulate_row(acc, row, weight)
        )
    }

    pub fn gather_channel(
        self,
        interleaved: &[f32],
        stride: usize,
        offset: usize,
        out: &mut [f32],
    ) {
        on_isa!(
            self.isa,
            |s| s.frame_gather(interleaved, stride, offset, out),
            gather_channel(interleaved, stride, offset, out)
        )
    }

    pub fn color_row(self, src: [&[f32]; 3], k: &ColorRow, out: [&mut [f32]; 3]) {
        on_isa!(
            self.isa,
            |s| s.frame_color_row(src, k, out),
            color_row(src, k, out)
        )
    }

    pub fn weighted_sums(
        self,
        acc: &[f32],
        starts: &[usize],
        weights: &[f32],
        width: usize,
        out: &mut [f32],
    ) {
        on_isa!(
            self.isa,
            |s| s.frame_weighted_sums(acc, starts, weights, width, out),
            weighted_sums(acc, starts, weights, width, out)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        (0..n as u32)
            .map(|i| (i.wrapping_mul(2654435761).wrapping_add(seed) >> 13) as u8)
            .collect()
    }

    fn floats(n: usize, seed: u32) -> Vec<f32> {
        bytes(n, seed)
            .iter()
            .map(|&b| b as f32 / 7.0 - 11.0)
            .collect()
    }

    /// Every available ISA's loops equal the scalar ones exactly, on
    /// lengths around every vector width.
    #[test]
    fn every_isa_matches_the_scalar_loops() {
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            let loops = FrameLoops::new(isa);
            for n in (0..70).chain([255, 1920]) {
                let row = bytes(n + 3, n as u32);
                let (mut want, mut got) = (floats(n, 1), floats(n, 1));
                accumulate_row(&mut want, &row, 0.37);
                loops.accumulate_row(&mut got, &row, 0.37);
                assert_eq!(want, got, "{isa:?} accumulate {n}");
                for (stride, offset) in [(1, 0), (2, 0), (2, 1), (3, 2), (4, 3)] {
                    let src = floats(n * stride + offset, 3);
                    let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
                    gather_channel(&src, stride, offset, &mut want);
                    loops.gather_channel(&src, stride, offset, &mut got);
                    assert_eq!(want, got, "{isa:?} gather {n} {stride} {offset}");
                }
                for width in [4, 8, 12] {
                    let acc = floats(n + width, 5);
                    let starts: Vec<usize> = (0..n).map(|o| (o * 7) % (n + 1)).collect();
                    let weights = floats(n * width, 9);
                    let (mut want, mut got) = (vec![0.0; n], vec![1.0; n]);
                    weighted_sums(&acc, &starts, &weights, width, &mut want);
                    loops.weighted_sums(&acc, &starts, &weights, width, &mut got);
                    assert_eq!(want, got, "{isa:?} sums {n} {width}");
                }
            }
        }
    }

    #[test]
    fn every_isa_converts_colour_as_the_scalar_loop() {
        let k = ColorRow {
            offset: [16.0, 128.0, 128.0],
            matrix: [[1.16, 0.0, 1.6], [1.16, -0.39, -0.81], [1.16, 2.0, 0.0]],
            gain: [0.017, 0.0175, 0.0174],
            bias: [-2.1, -2.0, -1.8],
        };
        for isa in Isa::ALL.into_iter().filter(|i| i.available()) {
            for n in (0..40).chain([224]) {
                let src = [floats(n, 1), floats(n, 2), floats(n, 3)]
                    .map(|v| v.iter().map(|x| x * 20.0 + 128.0).collect::<Vec<f32>>());
                let mut want = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
                let mut got = want.clone();
                let [w0, w1, w2] = &mut want;
                color_row([&src[0], &src[1], &src[2]], &k, [w0, w1, w2]);
                let [g0, g1, g2] = &mut got;
                FrameLoops::new(isa).color_row([&src[0], &src[1], &src[2]], &k, [g0, g1, g2]);
                assert_eq!(want, got, "{isa:?} colour {n}");
            }
        }
    }

    #[test]
    fn the_scalar_loops_compute_what_they_say() {
        let mut acc = vec![1.0, 2.0, 3.0];
        accumulate_row(&mut acc, &[10, 20], 0.5);
        assert_eq!(acc, [6.0, 12.0, 3.0]);
        let mut out = [0.0; 2];
        gather_channel(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], 3, 1, &mut out);
        assert_eq!(out, [1.0, 4.0]);
        let acc = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let mut out = [0.0; 2];
        weighted_sums(
            &acc,
            &[0, 2],
            &[1.0, 1.0, 0.0, 0.0, 0.5, 0.0, 0.0, 2.0],
            4,
            &mut out,
        );
        assert_eq!(out, [3.0, 1.5 + 12.0]);
    }
}
