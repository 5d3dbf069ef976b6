//! Weight storage encodings: pure functions from f32 tensors to bytes and
//! back. The container compresses the result (zstd) separately; these
//! encodings trade precision for size (F16, Int8, Palette) or reorder bytes so
//! zstd finds more redundancy (ByteShuffle). Layouts are in `docs/FORMAT.md`.
//!
//! A tensor is `channels` contiguous rows of `len / channels` values: the
//! rows of its leading axis (row-major), one Int8 scale per row. For Conv
//! weights and Gemm with transB=1 that axis is the output channel; for
//! ConvTranspose and Gemm with transB=0 it is the input axis.

use half::f16;
use half::slice::{HalfBitsSliceExt, HalfFloatSliceExt};
use rayon::prelude::*;

/// How weight values are stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightStorage {
    /// 4 bytes per value, little-endian, bit-exact.
    F32,
    /// 2 bytes per value, IEEE half, little-endian, round to nearest even.
    F16,
    /// Symmetric int8 with one f32 scale per row of the leading axis.
    Int8,
    /// k-means codebook of `2^bits` f16 centroids plus `bits`-bit indices
    /// (Deep Compression style). `bits` is in `2..=8`.
    Palette { bits: u8 },
}

/// Byte reordering applied to float storage before zstd.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Filter {
    #[default]
    None,
    /// All first bytes of each element, then all second bytes, and so on.
    /// Exponent/sign bytes of similar weights line up and compress far better.
    /// It is a no-op for Int8 and Palette, whose elements are single bytes.
    ByteShuffle,
}

/// Why encoding or decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error("{len} values cannot be split into {channels} output channels")]
    Shape { len: usize, channels: usize },
    #[error("palette bits must be in 2..=8, got {0}")]
    PaletteBits(u8),
    #[error("encoded weights must be {expected} bytes, found {found}")]
    Length { expected: usize, found: usize },
    #[error("encoded size of {len} values does not fit in memory")]
    Overflow { len: usize },
}

/// Largest number of values k-means trains on; the rest are only assigned.
const KMEANS_SAMPLE: usize = 1 << 16;
/// Lloyd iterations; 1-D k-means from a linear start converges in a few.
const KMEANS_ITERS: usize = 20;

fn check_shape(len: usize, channels: usize) -> Result<(), CodecError> {
    let ok = if channels == 0 {
        len == 0
    } else {
        len.is_multiple_of(channels)
    };
    if ok {
        Ok(())
    } else {
        Err(CodecError::Shape { len, channels })
    }
}

fn check_bits(bits: u8) -> Result<usize, CodecError> {
    if (2..=8).contains(&bits) {
        Ok(usize::from(bits))
    } else {
        Err(CodecError::PaletteBits(bits))
    }
}

/// Exact encoded size in bytes; `None` for an invalid shape or palette width,
/// or if the size overflows `usize`.
pub fn encoded_len(len: usize, channels: usize, storage: WeightStorage) -> Option<usize> {
    check_shape(len, channels).ok()?;
    match storage {
        WeightStorage::F32 => len.checked_mul(4),
        WeightStorage::F16 => len.checked_mul(2),
        WeightStorage::Int8 => channels.checked_mul(4)?.checked_add(len),
        WeightStorage::Palette { bits } => {
            let bits = check_bits(bits).ok()?;
            let index_bytes = len.checked_mul(bits)?.div_ceil(8);
            (2usize << bits).checked_add(index_bytes)
        }
    }
}

/// Checks shape and storage, and returns the exact encoded size.
fn expected_len(len: usize, channels: usize, storage: WeightStorage) -> Result<usize, CodecError> {
    check_shape(len, channels)?;
    if let WeightStorage::Palette { bits } = storage {
        check_bits(bits)?;
    }
    encoded_len(len, channels, storage).ok_or(CodecError::Overflow { len })
}

/// Encodes `values` (`channels` rows, channel axis first).
pub fn encode(
    values: &[f32],
    channels: usize,
    storage: WeightStorage,
    filter: Filter,
) -> Result<Vec<u8>, CodecError> {
    let expected = expected_len(values.len(), channels, storage)?;
    let out = match storage {
        WeightStorage::F32 => {
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            apply_filter(bytes, 4, filter)
        }
        WeightStorage::F16 => {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|&v| f16::from_f32(v).to_le_bytes())
                .collect();
            apply_filter(bytes, 2, filter)
        }
        WeightStorage::Int8 => encode_int8(values, channels),
        WeightStorage::Palette { bits } => encode_palette(values, check_bits(bits)?),
    };
    debug_assert_eq!(out.len(), expected);
    Ok(out)
}

/// Decodes `len` values. The byte length is checked exactly before anything
/// is allocated; any bytes of the right length decode without panicking
/// (NaN or infinite scales and codebook entries pass through).
pub fn decode(
    bytes: &[u8],
    len: usize,
    channels: usize,
    storage: WeightStorage,
    filter: Filter,
) -> Result<Vec<f32>, CodecError> {
    let expected = expected_len(len, channels, storage)?;
    if bytes.len() != expected {
        return Err(CodecError::Length {
            expected,
            found: bytes.len(),
        });
    }
    let out = match storage {
        // Shuffled data is read straight from its byte planes: no
        // intermediate unshuffled copy.
        WeightStorage::F32 => match filter {
            Filter::None => bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Filter::ByteShuffle => {
                let (p0, rest) = bytes.split_at(len);
                let (p1, rest) = rest.split_at(len);
                let (p2, p3) = rest.split_at(len);
                (0..len)
                    .map(|i| f32::from_le_bytes([p0[i], p1[i], p2[i], p3[i]]))
                    .collect()
            }
        },
        WeightStorage::F16 => {
            let bits: Vec<u16> = match filter {
                Filter::None => bytes
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect(),
                Filter::ByteShuffle => {
                    let (lo, hi) = bytes.split_at(len);
                    lo.iter()
                        .zip(hi)
                        .map(|(&l, &h)| u16::from_le_bytes([l, h]))
                        .collect()
                }
            };
            // Bulk conversion uses the CPU's f16 instructions where it has them.
            let mut out = vec![0f32; len];
            bits.reinterpret_cast::<f16>()
                .convert_to_f32_slice(&mut out);
            out
        }
        WeightStorage::Int8 => decode_int8(bytes, len, channels),
        WeightStorage::Palette { bits } => decode_palette(bytes, len, check_bits(bits)?),
    };
    Ok(out)
}

fn apply_filter(bytes: Vec<u8>, elem: usize, filter: Filter) -> Vec<u8> {
    match filter {
        Filter::None => bytes,
        Filter::ByteShuffle => {
            let n = bytes.len() / elem;
            let mut out = vec![0u8; bytes.len()];
            for (i, e) in bytes.chunks_exact(elem).enumerate() {
                for (b, &byte) in e.iter().enumerate() {
                    out[b * n + i] = byte;
                }
            }
            out
        }
    }
}

fn encode_int8(values: &[f32], channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(channels * 4 + values.len());
    if channels == 0 {
        return out;
    }
    let row = values.len() / channels;
    let scales: Vec<f32> = (0..channels)
        .map(|c| {
            let max = values[c * row..(c + 1) * row]
                .iter()
                .fold(0.0f32, |m, v| m.max(v.abs()));
            max / 127.0
        })
        .collect();
    for s in &scales {
        out.extend_from_slice(&s.to_le_bytes());
    }
    for (c, &scale) in scales.iter().enumerate() {
        for &v in &values[c * row..(c + 1) * row] {
            // `as` saturates and maps NaN to 0, so no value can wrap.
            let q = if scale == 0.0 {
                0
            } else {
                (v / scale).round().clamp(-127.0, 127.0) as i8
            };
            out.push(q as u8);
        }
    }
    out
}

fn decode_int8(bytes: &[u8], len: usize, channels: usize) -> Vec<f32> {
    if channels == 0 {
        return Vec::new();
    }
    let row = len / channels;
    let (scale_bytes, q) = bytes.split_at(channels * 4);
    let dequantize_rows = |first: usize, dst: &mut Vec<f32>, rows: usize| {
        for c in first..first + rows {
            let s = &scale_bytes[c * 4..c * 4 + 4];
            let scale = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
            dst.extend(
                q[c * row..(c + 1) * row]
                    .iter()
                    .map(|&b| f32::from(b as i8) * scale),
            );
        }
    };
    // Blocks of rows in parallel, each written once (no zero-fill first),
    // then joined; a single thread writes the output directly.
    const BLOCK: usize = 64;
    if rayon::current_num_threads() == 1 || channels <= BLOCK {
        let mut out = Vec::with_capacity(len);
        dequantize_rows(0, &mut out, channels);
        return out;
    }
    let blocks: Vec<Vec<f32>> = (0..channels.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let rows = BLOCK.min(channels - b * BLOCK);
            let mut v = Vec::with_capacity(rows * row);
            dequantize_rows(b * BLOCK, &mut v, rows);
            v
        })
        .collect();
    blocks.concat()
}

/// 1-D k-means (Lloyd) on a sorted, deterministic subsample: with sorted
/// data every cluster is a contiguous range, so each iteration is `k` binary
/// searches plus prefix-sum means. Returns `k` sorted centroids.
fn kmeans_1d(values: &[f32], k: usize) -> Vec<f32> {
    let n = values.len();
    let mut sample: Vec<f32> = if n <= KMEANS_SAMPLE {
        values.iter().copied().filter(|v| v.is_finite()).collect()
    } else {
        (0..KMEANS_SAMPLE)
            .map(|i| values[(i as u128 * n as u128 / KMEANS_SAMPLE as u128) as usize])
            .filter(|v| v.is_finite())
            .collect()
    };
    sample.sort_by(f32::total_cmp);
    let (Some(&lo), Some(&hi)) = (sample.first(), sample.last()) else {
        return vec![0.0; k];
    };
    let (lo, hi) = (f64::from(lo), f64::from(hi));
    let mut centroids: Vec<f64> = (0..k)
        .map(|j| lo + (hi - lo) * j as f64 / (k - 1) as f64)
        .collect();
    let mut prefix = Vec::with_capacity(sample.len() + 1);
    prefix.push(0.0f64);
    let mut acc = 0.0f64;
    for &v in &sample {
        acc += f64::from(v);
        prefix.push(acc);
    }
    let mut bounds = vec![0usize; k + 1];
    for _ in 0..KMEANS_ITERS {
        bounds[k] = sample.len();
        for j in 1..k {
            let mid = 0.5 * (centroids[j - 1] + centroids[j]);
            let b = sample.partition_point(|&v| f64::from(v) < mid);
            bounds[j] = b.max(bounds[j - 1]);
        }
        let mut changed = false;
        for j in 0..k {
            let (a, b) = (bounds[j], bounds[j + 1]);
            // An empty cluster keeps its centroid, which stays in order.
            if b > a {
                let mean = (prefix[b] - prefix[a]) / (b - a) as f64;
                changed |= mean != centroids[j];
                centroids[j] = mean;
            }
        }
        if !changed {
            break;
        }
    }
    centroids.into_iter().map(|c| c as f32).collect()
}

fn encode_palette(values: &[f32], bits: usize) -> Vec<u8> {
    let k = 1usize << bits;
    // Assignment uses the f16-rounded codebook, exactly what decode will see.
    let mut codebook: Vec<f16> = kmeans_1d(values, k)
        .into_iter()
        .map(f16::from_f32)
        .collect();
    codebook.sort_by(|a, b| a.to_f32().total_cmp(&b.to_f32()));
    let mids: Vec<f64> = codebook
        .windows(2)
        .map(|w| 0.5 * (f64::from(w[0].to_f32()) + f64::from(w[1].to_f32())))
        .collect();
    let mut out = Vec::with_capacity(2 * k + (values.len() * bits).div_ceil(8));
    for c in &codebook {
        out.extend_from_slice(&c.to_le_bytes());
    }
    // Bit-pack LSB-first: index i occupies bits [i*bits, (i+1)*bits).
    let mut acc: u32 = 0;
    let mut filled = 0usize;
    for &v in values {
        // NaN compares false with everything and lands on index 0.
        let idx = mids.partition_point(|&m| m < f64::from(v)) as u32;
        acc |= idx << filled;
        filled += bits;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
    out
}

fn decode_palette(bytes: &[u8], len: usize, bits: usize) -> Vec<f32> {
    let k = 1usize << bits;
    let (book, packed) = bytes.split_at(2 * k);
    let codebook: Vec<f32> = book
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    let mask = (1u32 << bits) - 1;
    let mut out = Vec::with_capacity(len);
    let mut acc: u32 = 0;
    let mut filled = 0usize;
    let mut bytes = packed.iter();
    while out.len() < len {
        if filled < bits {
            // The length check guarantees enough bytes; 0 keeps this total.
            acc |= u32::from(*bytes.next().unwrap_or(&0)) << filled;
            filled += 8;
        }
        out.push(codebook[(acc & mask) as usize]);
        acc >>= bits;
        filled -= bits;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Deterministic roughly normal weights (sum of uniforms), std ~`scale`.
    fn normalish(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut uniform = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        (0..n)
            .map(|_| (uniform() + uniform() + uniform() + uniform()) * scale * 1.7)
            .collect()
    }

    fn mse(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).powi(2))
            .sum::<f64>()
            / a.len() as f64
    }

    fn round_trip(values: &[f32], channels: usize, s: WeightStorage, f: Filter) -> Vec<f32> {
        let bytes = encode(values, channels, s, f).unwrap();
        assert_eq!(Some(bytes.len()), encoded_len(values.len(), channels, s));
        decode(&bytes, values.len(), channels, s, f).unwrap()
    }

    fn distinct(values: &[f32]) -> usize {
        let mut bits: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
        bits.sort_unstable();
        bits.dedup();
        bits.len()
    }

    #[test]
    fn f32_is_bit_exact_with_both_filters() {
        let mut values = normalish(1000, 1, 0.05);
        values.extend([f32::NAN, f32::INFINITY, -0.0, f32::MIN_POSITIVE / 4.0]);
        for f in [Filter::None, Filter::ByteShuffle] {
            let back = round_trip(&values, 4, WeightStorage::F32, f);
            let a: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = back.iter().map(|v| v.to_bits()).collect();
            assert_eq!(a, b);
        }
        let plain = encode(&values, 1, WeightStorage::F32, Filter::None).unwrap();
        let shuffled = encode(&values, 1, WeightStorage::F32, Filter::ByteShuffle).unwrap();
        assert_ne!(plain, shuffled);
        assert_eq!(shuffled[0], plain[0]);
        assert_eq!(shuffled[1], plain[4]);
    }

    #[test]
    fn f16_rounds_to_nearest() {
        let values = normalish(999, 2, 1.0);
        for f in [Filter::None, Filter::ByteShuffle] {
            let back = round_trip(&values, 3, WeightStorage::F16, f);
            for (v, b) in values.iter().zip(&back) {
                assert_eq!(*b, f16::from_f32(*v).to_f32());
                assert!((v - b).abs() <= v.abs() * 1e-3 + 1e-7);
            }
        }
    }

    #[test]
    fn int8_error_within_half_scale_per_channel() {
        let channels = 8;
        let mut values = normalish(channels * 37, 3, 0.1);
        // Channel 2 all zeros, channel 5 with a large outlier.
        values[2 * 37..3 * 37].iter_mut().for_each(|v| *v = 0.0);
        values[5 * 37 + 3] = 10.0;
        let bytes = encode(&values, channels, WeightStorage::Int8, Filter::None).unwrap();
        let back = decode(
            &bytes,
            values.len(),
            channels,
            WeightStorage::Int8,
            Filter::None,
        )
        .unwrap();
        for c in 0..channels {
            let scale = f32::from_le_bytes(bytes[c * 4..c * 4 + 4].try_into().unwrap());
            let row = &values[c * 37..(c + 1) * 37];
            let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            assert_eq!(scale, max / 127.0);
            for (v, b) in row.iter().zip(&back[c * 37..(c + 1) * 37]) {
                assert!(
                    (v - b).abs() <= scale * 0.5 * (1.0 + 1e-5),
                    "{v} {b} {scale}"
                );
            }
        }
        assert!(back[2 * 37..3 * 37].iter().all(|&v| v == 0.0));
    }

    #[test]
    fn palette_all_widths_and_error_decreases() {
        // 1001 values: packing ends mid-byte for every odd width.
        let values = normalish(1001, 4, 0.02);
        let mut last = f64::INFINITY;
        for bits in 2..=8u8 {
            let s = WeightStorage::Palette { bits };
            let back = round_trip(&values, 7, s, Filter::None);
            assert!(distinct(&back) <= 1 << bits);
            let e = mse(&values, &back);
            assert!(e < last, "bits {bits}: mse {e} not below {last}");
            last = e;
        }
    }

    #[test]
    fn palette_is_deterministic_and_handles_big_and_odd_tensors() {
        let big = normalish(200_003, 5, 0.01);
        let s = WeightStorage::Palette { bits: 5 };
        let a = encode(&big, 1, s, Filter::None).unwrap();
        let b = encode(&big, 1, s, Filter::None).unwrap();
        assert_eq!(a, b);
        let back = decode(&a, big.len(), 1, s, Filter::None).unwrap();
        assert!(distinct(&back) <= 32);
        assert!(mse(&big, &back) < 1e-6);
        // Constant, empty, single and non-finite inputs.
        for values in [
            vec![0.5f32; 13],
            vec![],
            vec![-3.0],
            vec![f32::NAN, 1.0, f32::INFINITY],
        ] {
            for bits in [2u8, 3, 7] {
                let s = WeightStorage::Palette { bits };
                let n = values.len();
                let back = round_trip(&values, usize::from(n > 0), s, Filter::None);
                assert_eq!(back.len(), n);
            }
        }
        assert_eq!(
            round_trip(
                &[0.5; 13],
                1,
                WeightStorage::Palette { bits: 3 },
                Filter::None
            ),
            vec![0.5; 13]
        );
    }

    #[test]
    fn byte_shuffle_helps_zstd_on_smooth_weights() {
        let values: Vec<f32> = (0..65536)
            .map(|i| 0.01 * (i as f32 * 0.001).sin())
            .collect();
        for s in [WeightStorage::F32, WeightStorage::F16] {
            let plain = encode(&values, 1, s, Filter::None).unwrap();
            let shuffled = encode(&values, 1, s, Filter::ByteShuffle).unwrap();
            let zp = zstd::bulk::compress(&plain, 3).unwrap().len();
            let zs = zstd::bulk::compress(&shuffled, 3).unwrap().len();
            assert!(zs <= zp, "{s:?}: shuffled {zs} > plain {zp}");
        }
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let v = [1.0f32; 6];
        assert_eq!(
            encode(&v, 4, WeightStorage::F32, Filter::None),
            Err(CodecError::Shape {
                len: 6,
                channels: 4
            })
        );
        assert!(encode(&v, 0, WeightStorage::Int8, Filter::None).is_err());
        assert!(encode(&[], 0, WeightStorage::Int8, Filter::None)
            .unwrap()
            .is_empty());
        for bits in [0u8, 1, 9, 255] {
            let s = WeightStorage::Palette { bits };
            assert_eq!(
                encode(&v, 1, s, Filter::None),
                Err(CodecError::PaletteBits(bits))
            );
            assert_eq!(
                decode(&[], 6, 1, s, Filter::None),
                Err(CodecError::PaletteBits(bits))
            );
            assert_eq!(encoded_len(6, 1, s), None);
        }
        assert_eq!(
            decode(&[0; 23], 6, 1, WeightStorage::F32, Filter::None),
            Err(CodecError::Length {
                expected: 24,
                found: 23
            })
        );
        // Lengths whose encoded size overflows are refused, not allocated.
        assert_eq!(
            decode(&[], usize::MAX, 1, WeightStorage::F32, Filter::None),
            Err(CodecError::Overflow { len: usize::MAX })
        );
        assert!(decode(
            &[],
            usize::MAX,
            1,
            WeightStorage::Palette { bits: 8 },
            Filter::None
        )
        .is_err());
        assert_eq!(encoded_len(usize::MAX, 1, WeightStorage::Int8), None);
        assert_eq!(
            encoded_len(10, 2, WeightStorage::Palette { bits: 3 }),
            Some(16 + 4)
        );
    }

    fn storage() -> impl Strategy<Value = WeightStorage> {
        prop_oneof![
            Just(WeightStorage::F32),
            Just(WeightStorage::F16),
            Just(WeightStorage::Int8),
            (0u8..=10).prop_map(|bits| WeightStorage::Palette { bits }),
        ]
    }

    fn filter() -> impl Strategy<Value = Filter> {
        prop_oneof![Just(Filter::None), Just(Filter::ByteShuffle)]
    }

    /// (values, channels) with channels dividing the length.
    fn tensor() -> impl Strategy<Value = (Vec<f32>, usize)> {
        (1usize..6, 0usize..60).prop_flat_map(|(channels, row)| {
            (
                prop::collection::vec(-100.0f32..100.0, channels * row),
                Just(channels),
            )
        })
    }

    proptest! {
        #[test]
        fn prop_f32_bit_exact(values in prop::collection::vec(any::<f32>(), 0..200), f in filter()) {
            let back = round_trip(&values, 1, WeightStorage::F32, f);
            let a: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            let b: Vec<u32> = back.iter().map(|v| v.to_bits()).collect();
            prop_assert_eq!(a, b);
        }

        #[test]
        fn prop_f16_matches_half((values, channels) in tensor(), f in filter()) {
            let back = round_trip(&values, channels, WeightStorage::F16, f);
            for (v, b) in values.iter().zip(&back) {
                prop_assert_eq!(*b, f16::from_f32(*v).to_f32());
            }
        }

        #[test]
        fn prop_int8_within_half_scale((values, channels) in tensor()) {
            let back = round_trip(&values, channels, WeightStorage::Int8, Filter::None);
            let row = values.len() / channels;
            for c in 0..channels {
                let r = &values[c * row..(c + 1) * row];
                let scale = r.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
                for (v, b) in r.iter().zip(&back[c * row..(c + 1) * row]) {
                    prop_assert!((v - b).abs() <= scale * 0.5 * (1.0 + 1e-5) + 1e-30);
                }
            }
        }

        /// Every value decodes to the nearest entry of the stored codebook.
        #[test]
        fn prop_palette_nearest((values, channels) in tensor(), bits in 2u8..=8) {
            let s = WeightStorage::Palette { bits };
            let bytes = encode(&values, channels, s, Filter::None).unwrap();
            let back = decode(&bytes, values.len(), channels, s, Filter::None).unwrap();
            let k = 1usize << bits;
            let book: Vec<f32> = bytes[..2 * k]
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect();
            for (v, b) in values.iter().zip(&back) {
                prop_assert!(book.contains(b));
                let best = book.iter().fold(f32::INFINITY, |m, c| m.min((v - c).abs()));
                prop_assert!((v - b).abs() <= best * (1.0 + 1e-6) + 1e-12);
            }
        }

        #[test]
        fn prop_decode_random_bytes_never_panics(
            bytes in prop::collection::vec(any::<u8>(), 0..2000),
            len in 0usize..400,
            channels in 0usize..5,
            s in storage(),
            f in filter(),
        ) {
            let _ = decode(&bytes, len, channels, s, f);
        }

        /// Same, with bytes of exactly the accepted length, so decoding runs.
        #[test]
        fn prop_decode_exact_length_random_bytes(
            (len, channels, s, f, seed) in (0usize..300, 1usize..5, storage(), filter(), any::<u64>())
        ) {
            let len = len - len % channels;
            if let Some(n) = encoded_len(len, channels, s) {
                let mut x = seed | 1;
                let bytes: Vec<u8> = (0..n).map(|_| { x ^= x << 13; x ^= x >> 7; x ^= x << 17; x as u8 }).collect();
                let out = decode(&bytes, len, channels, s, f).unwrap();
                prop_assert_eq!(out.len(), len);
            }
        }
    }
}
