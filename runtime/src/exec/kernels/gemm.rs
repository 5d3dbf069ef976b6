//! The ISA-neutral GEMM driver: `C[M×N] = epilogue(A[M×K] · B[K×N])`.
//!
//! A holds constant weights, packed once into MR-row panels. B is the
//! activation side (rows of a tensor, or im2col of a conv input), packed per
//! run into NR-column panels of one K block at a time in the worker's own
//! scratch. Each ISA supplies only the register-tiled [`MicroKernel`] and
//! its epilogue; blocking, packing, tails and threads live here once.
//!
//! Threads split the rows of C (contiguous, so each worker owns its slice),
//! every worker packing the B blocks it reads: scratch is one `KC × NC`
//! block per worker whatever the layer size. Where B is deep, that repeats
//! the im2col work per worker, so workers split the columns instead and
//! copy their stripes of C back ([`gemm`]); the transposed product for
//! small maps always splits columns first ([`gemm_transposed`]).

use std::fmt;

use super::contract::{AlignedF32, Epilogue, ReadOffsets, RegisterActivation, Threads, WorkerPart};

/// K rows per block. Each A micro-panel (`KC × MR`, 6 KB at MR=6) stays in
/// L1 while it meets every B panel of the block (`KC × NC`, 256 KB, in L2).
/// 256 rather than 128 halves the passes over C and the per-tile stores:
/// ResNet18 took 17 % less time on AVX2 (82 against 99 ms, the best of 5
/// interleaved runs each, before Winograd).
pub const KC: usize = 256;
/// Columns of B per packed block (a multiple of every NR).
pub const NC: usize = 256;
/// Largest `MR × NR` tile of any microkernel (the stack tile for a row tail).
pub const MAX_TILE: usize = 256;

/// A register-tiled `MR × NR` inner kernel of one ISA. Types implementing
/// it are proofs that the CPU has the ISA: they are only constructed after
/// feature detection, so their safe methods may run ISA code.
pub trait MicroKernel: Copy + Send + Sync + fmt::Debug + 'static {
    const MR: usize;
    const NR: usize;
    /// `c[i*ldc + j] (+)= Σ_p a[p*MR + i] · b[p*NR + j]` for `i < MR`,
    /// `j < cols <= NR`; overwrites unless `accumulate`. `a` holds `k*MR`
    /// values, `b` holds `k*NR`, `c` at least `(MR-1)*ldc + cols`. With
    /// `clamp`, row `i` becomes `act(sum + bias[i])` before the store.
    /// Columns past `cols` are computed and dropped, so a tail tile runs in
    /// place.
    #[allow(clippy::too_many_arguments)]
    fn tile(
        self,
        k: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
        clamp: Option<&TileClamp>,
    );
    /// [`MicroKernel::tile`] with B row `p` read in place at
    /// `b[rows.offsets()[p]..][..NR]` (implicit GEMM over a padded input).
    #[allow(clippy::too_many_arguments)]
    fn tile_gather(
        self,
        k: usize,
        a: &[f32],
        b: &[f32],
        rows: &ReadOffsets,
        c: &mut [f32],
        ldc: usize,
        cols: usize,
        accumulate: bool,
        clamp: Option<&TileClamp>,
    );
    /// [`Epilogue::apply_row`] compiled for this ISA.
    fn epilogue(self, e: &Epilogue, row: usize, y: &mut [f32], res: Option<&[f32]>);
    /// [`gemv_rows`] compiled for this ISA.
    fn gemv_rows(self, a: &PackedA, row0: usize, x: &[f32], y: &mut [f32], e: &Epilogue);
    /// [`untranspose`] compiled for this ISA.
    fn untranspose(self, ct: &[f32], nr: usize, c: &mut [f32], n: usize, col0: usize);
}

/// The fused epilogue of the last K block of a tile: per-row bias (`MR`
/// values; zeros past M), then the activation.
#[derive(Clone, Copy, Debug)]
pub struct TileClamp {
    pub bias: [f32; MAX_MR],
    pub act: RegisterActivation,
}

/// Largest MR of any microkernel.
pub const MAX_MR: usize = 8;

/// Constant A packed for microkernels with `mr` rows, in [`KC`] blocks of
/// K: `[k block][panel][kc][mr]`, rows past M zero. The driver reads one K
/// block of every panel in turn, so this order streams A sequentially
/// (what the hardware prefetcher follows best).
#[derive(Clone, Debug)]
pub struct PackedA {
    pub m: usize,
    pub k: usize,
    pub mr: usize,
    pub data: AlignedF32,
}

/// Where K block `k0` (of `kc` rows) of row panel `panel` starts in an
/// `m`-row matrix packed for `mr` rows: `[k block][panel][kc][mr]`.
fn block_offset(m: usize, mr: usize, panel: usize, k0: usize, kc: usize) -> usize {
    (k0 * m.div_ceil(mr) + panel * kc) * mr
}

/// The layout of a constant matrix A to pack.
#[derive(Clone, Copy, Debug)]
pub enum ALayout<'a> {
    /// `a(i, p) = data[i * ld + p]`: conv weights, a transposed Gemm B.
    RowMajor { data: &'a [f32], ld: usize },
    /// `a(i, p) = data[p * ld + i]`: a MatMul or Gemm B as stored.
    ColMajor { data: &'a [f32], ld: usize },
}

impl PackedA {
    /// Packs the `m × k` matrix `a`. Each source row (or column) moves
    /// as one run, without a bounds check per value: packing is most of
    /// a model's load.
    pub fn pack(m: usize, k: usize, mr: usize, a: ALayout) -> PackedA {
        let panels = m.div_ceil(mr);
        let mut packed = PackedA {
            m,
            k,
            mr,
            data: AlignedF32::zeros(panels * k * mr),
        };
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            for panel in 0..panels {
                let at = packed.offset(panel, k0, kc);
                let dst = &mut packed.data.as_mut_slice()[at..][..kc * mr];
                let rows = mr.min(m - panel * mr);
                let first = panel * mr;
                match a {
                    ALayout::RowMajor { data, ld } => {
                        // Rows read side by side, the panel written in order.
                        let src: smallvec::SmallVec<[&[f32]; 32]> = (0..rows)
                            .map(|i| &data[(first + i) * ld + k0..][..kc])
                            .collect();
                        interleave_rows(&src, mr, dst);
                    }
                    ALayout::ColMajor { data, ld } => {
                        for (p, d) in dst.chunks_exact_mut(mr).enumerate() {
                            d[..rows].copy_from_slice(&data[(k0 + p) * ld + first..][..rows]);
                        }
                    }
                }
            }
        }
        packed
    }

    /// The packing of an `m × k` matrix of zeros, for a kernel that
    /// computes its values straight into place ([`PackedA::index`]).
    pub fn zeroed(m: usize, k: usize, mr: usize) -> PackedA {
        PackedA {
            m,
            k,
            mr,
            data: AlignedF32::zeros(m.div_ceil(mr) * k * mr),
        }
    }

    /// Where value `(i, p)` (`i < m`, `p < k`) of an `m × k` matrix packed
    /// for `mr` rows lives in `data`.
    pub fn index(m: usize, k: usize, mr: usize, i: usize, p: usize) -> usize {
        let k0 = p / KC * KC;
        let kc = KC.min(k - k0);
        block_offset(m, mr, i / mr, k0, kc) + (p - k0) * mr + i % mr
    }

    /// Multiplies every packed value by `s` (padding stays zero).
    pub fn scale(&mut self, s: f32) {
        if s != 1.0 {
            self.data.as_mut_slice().iter_mut().for_each(|v| *v *= s);
        }
    }

    /// Where K block `k0` (of `kc` rows) of `panel` starts.
    fn offset(&self, panel: usize, k0: usize, kc: usize) -> usize {
        block_offset(self.m, self.mr, panel, k0, kc)
    }

    /// K block `k0..k0 + kc` of `panel`; `k0` is a multiple of [`KC`].
    fn panel(&self, panel: usize, k0: usize, kc: usize) -> &[f32] {
        &self.data.as_slice()[self.offset(panel, k0, kc)..][..kc * self.mr]
    }
}

/// `dst[p * mr + i] = rows[i][p]` for `p < dst.len() / mr`: rows side by
/// side, as a row panel of A. A whole panel of a common `mr` is written a
/// fixed-size group at a time from rows cut to length up front, so no
/// read is bounds-checked: a value at a time through the row list, this
/// was two thirds of loading MobileNetV2, and 2.3× slower (per value, in
/// a loop packing 960 × 320). Rows past `rows.len()` keep what `dst` holds.
fn interleave_rows(rows: &[&[f32]], mr: usize, dst: &mut [f32]) {
    fn fixed<const MR: usize>(rows: &[&[f32]], dst: &mut [f32]) -> bool {
        let kc = dst.len() / MR;
        let Ok(rows) = <&[&[f32]; MR]>::try_from(rows) else {
            return false;
        };
        let rows: [&[f32]; MR] = std::array::from_fn(|i| &rows[i][..kc]);
        for (p, group) in dst.chunks_exact_mut(MR).enumerate() {
            for (d, row) in group.iter_mut().zip(rows) {
                *d = row[p];
            }
        }
        true
    }
    let done = match mr {
        4 => fixed::<4>(rows, dst),
        6 => fixed::<6>(rows, dst),
        8 => fixed::<8>(rows, dst),
        16 => fixed::<16>(rows, dst),
        32 => fixed::<32>(rows, dst),
        _ => false,
    };
    if !done {
        for (p, group) in dst.chunks_exact_mut(mr).enumerate() {
            for (d, row) in group.iter_mut().zip(rows) {
                *d = row[p];
            }
        }
    }
}

/// Where the columns of B come from; packs one block into NR-wide panels
/// (`[panel][kc][nr]`, columns past N zero).
pub trait BSource: Sync {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]);
}

/// B read from a row-major `K × N` matrix with row stride `ld` (the
/// channels × pixels of an NCHW tensor: 1×1 convolution).
pub struct RowsB<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub n: usize,
}

impl BSource for RowsB<'_> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        for (pi, jp) in (j0..j0 + nc).step_by(nr).enumerate() {
            let w = nr.min(self.n - jp);
            let panel = &mut out[pi * kc * nr..][..kc * nr];
            for p in 0..kc {
                let src = &self.data[(k0 + p) * self.ld + jp..][..w];
                let dst = &mut panel[p * nr..][..nr];
                copy_run(&mut dst[..w], src);
                dst[w..].fill(0.0);
            }
        }
    }
}

/// Copies `src` into `dst` (same length). A whole panel row of a common
/// width is a fixed-size copy, which compiles to vector moves where a
/// `memcpy` call would cost more than the copy.
/// (Each size is its own function: inlined, the three copies would merge
/// back into one `memcpy` of variable length.)
#[inline(always)]
pub fn copy_run(dst: &mut [f32], src: &[f32]) {
    #[inline(never)]
    fn fixed<const N: usize>(dst: &mut [f32], src: &[f32]) {
        let dst: &mut [f32; N] = dst.try_into().expect("N values");
        *dst = src.try_into().expect("N values");
    }
    match dst.len() {
        32 => fixed::<32>(dst, src),
        16 => fixed::<16>(dst, src),
        8 => fixed::<8>(dst, src),
        // AVX2's MR: the panels of the transposed product's B.
        6 => fixed::<6>(dst, src),
        _ => dst.copy_from_slice(src),
    }
}

/// B read transposed: `B[p][j] = data[j*ld + p]` (a Gemm input `x[batch][K]`).
pub struct ColsB<'a> {
    pub data: &'a [f32],
    pub ld: usize,
    pub n: usize,
}

impl BSource for ColsB<'_> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        for (pi, jp) in (j0..j0 + nc).step_by(nr).enumerate() {
            let w = nr.min(self.n - jp);
            let panel = &mut out[pi * kc * nr..][..kc * nr];
            for p in 0..kc {
                let dst = &mut panel[p * nr..][..nr];
                for (j, d) in dst[..w].iter_mut().enumerate() {
                    *d = self.data[(jp + j) * self.ld + k0 + p];
                }
                dst[w..].fill(0.0);
            }
        }
    }
}

/// Scratch words one worker needs for B blocks of microkernel `K`.
pub fn scratch_words<K: MicroKernel>() -> usize {
    KC * NC.div_ceil(K::NR) * K::NR
}

/// Columns of each worker's stripe when [`gemm`] splits an `n`-column
/// product among `workers`: whole NR panels.
fn stripe_cols<K: MicroKernel>(n: usize, workers: usize) -> usize {
    n.div_ceil(workers.max(1)).div_ceil(K::NR) * K::NR
}

/// Workers [`gemm`] splits the columns of an `m × k · k × n` product with
/// packed B among, on `threads`; 1 when it splits rows. Rows split: every
/// other worker packs all of B again (`k × n` values). Columns: C is
/// copied once more (`m × n`). Whichever moves less, a copy being cheaper
/// per value than packing.
fn column_workers<K: MicroKernel>(m: usize, k: usize, n: usize, threads: usize) -> usize {
    let workers = threads.min(n.div_ceil(K::NR)).max(1);
    if (workers - 1) * k > 2 * m {
        workers
    } else {
        1
    }
}

/// Scratch words of [`gemm`] with B packed, for an `m × k · k × n` product
/// on `threads`: each worker's B blocks and, when it splits columns, the
/// stripe of C it computes.
pub fn packed_scratch_words<K: MicroKernel>(m: usize, k: usize, n: usize, threads: usize) -> usize {
    let workers = column_workers::<K>(m, k, n, threads);
    let stripe = if workers > 1 {
        m * stripe_cols::<K>(n, workers)
    } else {
        0
    };
    threads * (scratch_words::<K>() + stripe)
}

/// A column range of another B source, so a worker packs only its stripe.
struct Stripe<'a> {
    src: &'a dyn BSource,
    first: usize,
}

impl BSource for Stripe<'_> {
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        self.src.pack(k0, kc, self.first + j0, nc, nr, out)
    }
}

/// Where the columns of B come from for [`gemm`].
pub enum B<'a> {
    /// Packed per block into each worker's scratch.
    Packed(&'a dyn BSource),
    /// Read in place: a padded input ([`Gathered`]).
    Gathered(&'a Gathered<'a>),
}

/// B read in place from a padded, phase-split input (implicit GEMM): row
/// `p` of the panel at output `(oy, ox)` is the `NR` values at
/// `data[oy * row_step + ox + offsets[p]]`. Panels never cross an output
/// row; the padding makes every read of a step stay inside `data`.
pub struct Gathered<'a> {
    pub data: &'a [f32],
    pub offsets: &'a [usize],
    pub row_step: usize,
    pub oh: usize,
    pub ow: usize,
}

impl BSource for Gathered<'_> {
    /// Copies each B row's runs out of the padded input: every run is
    /// contiguous and inside `data` (the padding holds the zeros), so
    /// unlike an im2col of the raw input this needs no bounds checks, no
    /// strided reads and no zero fill but the last panel's unused lanes.
    fn pack(&self, k0: usize, kc: usize, j0: usize, nc: usize, nr: usize, out: &mut [f32]) {
        let panels = nc.div_ceil(nr);
        let tail = nc % nr;
        if tail != 0 {
            let last = &mut out[(panels - 1) * kc * nr..][..kc * nr];
            for row in last.chunks_exact_mut(nr) {
                row[tail..].fill(0.0);
            }
        }
        let offsets = &self.offsets[k0..k0 + kc];
        let mut j = j0;
        while j < j0 + nc {
            let (oy, ox0) = (j / self.ow, j % self.ow);
            let ox1 = self.ow.min(ox0 + (j0 + nc - j));
            let row = &self.data[oy * self.row_step..];
            let mut ox = ox0;
            while ox < ox1 {
                let col = j - j0 + (ox - ox0);
                let lane = col % nr;
                let len = (ox1 - ox).min(nr - lane);
                let panel = &mut out[(col / nr) * kc * nr + lane..];
                for (p, &off) in offsets.iter().enumerate() {
                    copy_run(&mut panel[p * nr..][..len], &row[ox + off..][..len]);
                }
                ox += len;
            }
            j += ox1 - ox0;
        }
    }
}

/// One GEMM: `c` is `M × n` row-major (row stride `ldc`), `residual` the
/// same layout. Overwrites `c`. Threads split the rows of C; with B
/// packed, deep (K well above M) and scratch for it
/// ([`packed_scratch_words`]), the columns instead (`gemm_by_stripes`):
/// one decision, `column_workers`, sizes the scratch and picks the split.
#[allow(clippy::too_many_arguments)]
pub fn gemm<K: MicroKernel>(
    micro: K,
    a: &PackedA,
    b: B,
    n: usize,
    c: &mut [f32],
    ldc: usize,
    epilogue: &Epilogue,
    residual: Option<&[f32]>,
    scratch: &mut [f32],
    threads: &Threads,
) {
    debug_assert_eq!(a.mr, K::MR);
    let m = a.m;
    if m == 0 || n == 0 {
        return;
    }
    let panels = m.div_ceil(K::MR);
    let per_worker = match b {
        B::Packed(_) => scratch_words::<K>(),
        B::Gathered(_) => 0,
    };
    let run = |row0: usize, c: &mut [f32], s: &mut [f32]| {
        let res = residual.map(|r| &r[row0 * ldc..]);
        let rows = Rows {
            a,
            row0,
            ldc,
            epilogue,
            residual: res,
        };
        match b {
            B::Packed(src) => rows.packed(micro, src, n, c, s),
            B::Gathered(g) => rows.gathered(micro, g, c),
        }
    };
    if let B::Packed(src) = b {
        let workers = column_workers::<K>(m, a.k, n, threads.count());
        let stripe = stripe_cols::<K>(n, workers);
        let per = per_worker + m * stripe;
        if workers > 1 && scratch.len() >= workers * per {
            let g = Stripes {
                a,
                src,
                n,
                stripe,
                per,
            };
            return gemm_by_stripes(micro, &g, c, ldc, epilogue, residual, scratch, threads);
        }
    }
    // Split by whole MR panels; each worker gets the rows of its panels.
    let workers = threads.count().min(panels).max(1);
    if workers == 1 {
        return run(0, c, scratch);
    }
    let rows_per = panels.div_ceil(workers) * K::MR;
    // Pair each worker's rows of C with its scratch; rows are contiguous.
    let mut parts: smallvec::SmallVec<[WorkerPart; 8]> = smallvec::SmallVec::new();
    let mut rest_c = &mut c[..];
    let mut rest_s = &mut scratch[..];
    let mut row = 0;
    while row < m {
        let rows = rows_per.min(m - row);
        let len = if row + rows == m {
            rest_c.len()
        } else {
            rows * ldc
        };
        let (cc, tc) = std::mem::take(&mut rest_c).split_at_mut(len);
        let (ss, ts) = std::mem::take(&mut rest_s).split_at_mut(per_worker);
        parts.push((row, cc, ss));
        rest_c = tc;
        rest_s = ts;
        row += rows;
    }
    threads.for_each_part(&mut parts, |(row0, cc, ss)| run(*row0, cc, ss));
}

/// The shape of a [`gemm_by_stripes`] run: `n` columns of B from `src` in
/// stripes of `stripe` columns, each worker's scratch `per` words.
struct Stripes<'a> {
    a: &'a PackedA,
    src: &'a dyn BSource,
    n: usize,
    stripe: usize,
    per: usize,
}

/// [`gemm`] with the columns split among workers, in two parallel steps.
/// Each worker packs only its stripe of B (the im2col copies are not
/// repeated per worker, as they are when rows are split) and computes its
/// stripe of `A · B` into scratch; then workers take rows of C, copy them
/// from every stripe and run the epilogue while the rows are in cache.
#[allow(clippy::too_many_arguments)]
fn gemm_by_stripes<K: MicroKernel>(
    micro: K,
    g: &Stripes,
    c: &mut [f32],
    ldc: usize,
    epilogue: &Epilogue,
    residual: Option<&[f32]>,
    scratch: &mut [f32],
    threads: &Threads,
) {
    let (m, n, stripe) = (g.a.m, g.n, g.stripe);
    let raw = Epilogue::default();
    let mut parts: smallvec::SmallVec<[WorkerPart; 8]> = scratch
        .chunks_exact_mut(g.per)
        .take(n.div_ceil(stripe))
        .enumerate()
        .map(|(w, s)| {
            let (bpack, sums) = s.split_at_mut(scratch_words::<K>());
            (w * stripe, sums, bpack)
        })
        .collect();
    threads.for_each_part(&mut parts, |(col0, sums, bpack)| {
        let cols = stripe.min(n - *col0);
        let rows = Rows {
            a: g.a,
            row0: 0,
            ldc: cols,
            epilogue: &raw,
            residual: None,
        };
        let src = Stripe {
            src: g.src,
            first: *col0,
        };
        rows.packed(micro, &src, cols, &mut sums[..m * cols], bpack);
    });
    let sums: smallvec::SmallVec<[(usize, &[f32]); 8]> = parts
        .iter()
        .map(|(col0, sums, _)| (*col0, &**sums))
        .collect();
    let workers = threads.count().min(m).max(1);
    let per_rows = m.div_ceil(workers);
    let mut rows: smallvec::SmallVec<[WorkerPart; 8]> = c[..(m - 1) * ldc + n]
        .chunks_mut(per_rows * ldc)
        .enumerate()
        .map(|(w, c)| (w * per_rows, c, &mut [][..]))
        .collect();
    threads.for_each_part(&mut rows, |(row0, c, _)| {
        let count = per_rows.min(m - *row0);
        for r in 0..count {
            let row = &mut c[r * ldc..][..n];
            for &(col0, part) in &sums {
                let cols = stripe.min(n - col0);
                row[col0..col0 + cols].copy_from_slice(&part[(*row0 + r) * cols..][..cols]);
            }
            let at = (*row0 + r) * ldc;
            let res = residual.map(|x| &x[at..at + n]);
            micro.epilogue(epilogue, *row0 + r, row, res);
        }
    });
}

/// Whether [`gemm_transposed`] computes an `m × n` product with fewer
/// padded lanes than [`gemm`]: with few columns (a 7×7 or 14×14 feature
/// map) and wide vectors, most of the last NR panel of each row would be
/// padding, while channels fill the vectors exactly. At most
/// [`TRANSPOSED_MAX_N`] columns, which bounds its scratch.
pub fn transposed_pays<K: MicroKernel>(m: usize, n: usize) -> bool {
    let padded = |v: usize, t: usize| v.div_ceil(t) * t;
    let normal = padded(m, K::MR) * padded(n, K::NR);
    let transposed = padded(n, K::MR) * padded(m, K::NR);
    n <= TRANSPOSED_MAX_N && transposed * 10 < normal * 9
}

/// Most columns [`gemm_transposed`] takes.
pub const TRANSPOSED_MAX_N: usize = 1024;

/// Scratch words of [`gemm_transposed`] for an `m × n` product: all of
/// `Cᵀ`, and the workers' B blocks (together one block of every column).
pub fn transposed_scratch_words<K: MicroKernel>(m: usize, n: usize) -> usize {
    let (panels, n_pad) = (m.div_ceil(K::NR), n.div_ceil(K::MR) * K::MR);
    (panels * K::NR + KC) * n_pad
}

/// `C = epilogue(A · B)` computed as `Cᵀ = Bᵀ · Aᵀ`: the microkernel's MR
/// rows run over the `n` columns of B and its NR lanes over the rows of A,
/// which `a` holds packed in NR-row panels (`PackedA` with `mr = NR`).
///
/// Two parallel steps. First each worker takes whole MR-column panels of
/// B, packs only those (im2col work is not repeated across workers) and
/// accumulates its columns of `Cᵀ` for every row of A over all K blocks.
/// Then workers take whole NR-row panels of C, gather their rows from
/// every worker's part of `Cᵀ` and run the epilogue.
#[allow(clippy::too_many_arguments)]
pub fn gemm_transposed<K: MicroKernel>(
    micro: K,
    a: &PackedA,
    b: &dyn BSource,
    n: usize,
    c: &mut [f32],
    epilogue: &Epilogue,
    residual: Option<&[f32]>,
    scratch: &mut [f32],
    threads: &Threads,
) {
    debug_assert_eq!(a.mr, K::NR);
    let (m, k, mr, nr) = (a.m, a.k, K::MR, K::NR);
    if m == 0 || n == 0 {
        return;
    }
    let (panels, n_pad) = (m.div_ceil(nr), n.div_ceil(mr) * mr);
    let (ct_all, bpacks) = scratch.split_at_mut(panels * nr * n_pad);
    // Step 1: columns of Cᵀ. Part w holds `[A panel][its columns][NR]`.
    let col_panels = n_pad / mr;
    let workers = threads.count().min(col_panels).max(1);
    let span = col_panels.div_ceil(workers) * mr;
    let spans: smallvec::SmallVec<[(usize, usize); 8]> = (0..n)
        .step_by(span)
        .map(|col0| (col0, span.min(n - col0)))
        .collect();
    let mut parts: smallvec::SmallVec<[WorkerPart; 8]> = smallvec::SmallVec::new();
    let (mut rest_ct, mut rest_b) = (&mut ct_all[..], &mut bpacks[..]);
    for &(col0, cols) in &spans {
        let own_pad = cols.div_ceil(mr) * mr;
        let (ct, tc) = std::mem::take(&mut rest_ct).split_at_mut(panels * nr * own_pad);
        let (bp, tb) = std::mem::take(&mut rest_b).split_at_mut(KC * own_pad);
        parts.push((col0, ct, bp));
        (rest_ct, rest_b) = (tc, tb);
    }
    threads.for_each_part(&mut parts, |(col0, ct, bpack)| {
        let cols = span.min(n - *col0);
        let own_pad = cols.div_ceil(mr) * mr;
        for k0 in (0..k).step_by(KC) {
            let kc = KC.min(k - k0);
            let bpack = &mut bpack[..kc * own_pad];
            b.pack(k0, kc, *col0, cols, mr, bpack);
            for j in 0..panels {
                let ap = a.panel(j, k0, kc);
                for (i, bp) in bpack.chunks_exact(kc * mr).enumerate() {
                    let tile = &mut ct[(j * own_pad + i * mr) * nr..][..mr * nr];
                    micro.tile(kc, bp, ap, tile, nr, nr, k0 > 0, None);
                }
            }
        }
    });
    // Step 2: rows of C, from every part of Cᵀ.
    let cts: smallvec::SmallVec<[(usize, usize, &[f32]); 8]> = spans
        .iter()
        .zip(&parts)
        .map(|(&(col0, cols), (_, ct, _))| (col0, cols, &**ct))
        .collect();
    let workers = threads.count().min(panels).max(1);
    let per = panels.div_ceil(workers);
    let mut rows: smallvec::SmallVec<[WorkerPart; 8]> = c[..m * n]
        .chunks_mut(per * nr * n)
        .enumerate()
        .map(|(w, rows)| (w * per, rows, &mut [][..]))
        .collect();
    threads.for_each_part(&mut rows, |(first, c, _)| {
        for (jj, panel_rows) in c.chunks_mut(nr * n).enumerate() {
            let j = *first + jj;
            for &(col0, cols, ct) in &cts {
                let own_pad = cols.div_ceil(mr) * mr;
                let src = &ct[j * own_pad * nr..][..cols * nr];
                micro.untranspose(src, nr, panel_rows, n, col0);
            }
        }
        for (r, row) in c.chunks_exact_mut(n).enumerate() {
            let at = (*first * nr + r) * n;
            let res = residual.map(|x| &x[at..at + n]);
            micro.epilogue(epilogue, *first * nr + r, row, res);
        }
    });
}

/// Writes columns `col0..` of the rows of `c` (row stride `n`, at most
/// `nr` rows) from `ct`, which holds them transposed (`ct[col * nr +
/// row]`, `ct.len() / nr` columns), in 8×8 blocks: a whole block moves
/// without bounds checks, so the transpose stays cheap beside the product.
#[inline(always)]
pub fn untranspose(ct: &[f32], nr: usize, c: &mut [f32], n: usize, col0: usize) {
    const B: usize = 8;
    let (h, cols) = (c.len() / n, ct.len() / nr);
    for r0 in (0..h).step_by(B) {
        let rh = B.min(h - r0);
        for c0 in (0..cols).step_by(B) {
            let cw = B.min(cols - c0);
            let mut t = [[0f32; B]; B];
            if rh == B && cw == B {
                for (x, col) in t.iter_mut().enumerate() {
                    *col = ct[(c0 + x) * nr + r0..][..B].try_into().expect("8 lanes");
                }
                for r in 0..B {
                    let row: &mut [f32; B] = (&mut c[(r0 + r) * n + col0 + c0..][..B])
                        .try_into()
                        .expect("8 columns");
                    for (v, col) in row.iter_mut().zip(&t) {
                        *v = col[r];
                    }
                }
            } else {
                for r in 0..rh {
                    for x in 0..cw {
                        c[(r0 + r) * n + col0 + c0 + x] = ct[(c0 + x) * nr + r0 + r];
                    }
                }
            }
        }
    }
}

/// `y = epilogue(A · x)` for one column: a matrix-vector product reads each
/// packed weight once, where a tile would spend NR-1 of NR lanes on padding.
/// Workers split the rows of `y` by whole MR panels; each streams its part
/// of the weights (the classifier of a mobile net is most of its bytes).
pub fn gemv<K: MicroKernel>(
    micro: K,
    a: &PackedA,
    x: &[f32],
    y: &mut [f32],
    epilogue: &Epilogue,
    threads: &Threads,
) {
    let (m, mr) = (a.m, K::MR);
    let workers = threads.count().min(m.div_ceil(mr)).max(1);
    let per = m.div_ceil(mr).div_ceil(workers) * mr;
    let mut parts: smallvec::SmallVec<[WorkerPart; 8]> = y[..m]
        .chunks_mut(per.max(1))
        .enumerate()
        .map(|(w, ys)| (w * per, ys, &mut [][..]))
        .collect();
    threads.for_each_part(&mut parts, |(row0, ys, _)| {
        micro.gemv_rows(a, *row0, x, ys, epilogue)
    });
}

/// K steps [`gemv_rows`] takes at a time: 4 × MR packed weights fill whole
/// vectors for every MR (6 × 4: 3 AVX2 registers; 8 × 4: 2 AVX-512 or 8
/// NEON ones). 8 steps measured slower on AVX2 (spills).
const GEMV_GROUP: usize = 4;

/// Rows `row0..row0 + y.len()` of [`gemv`] (`row0` a multiple of MR).
///
/// A panel holds MR weights per K step, which matches no vector width
/// when MR is 6; so [`GEMV_GROUP`] K steps are summed as one run of
/// `GEMV_GROUP * MR` lanes (each weight times its step's `x`), folded into
/// the MR rows once per panel.
#[inline(always)]
pub fn gemv_rows<K: MicroKernel>(a: &PackedA, row0: usize, x: &[f32], y: &mut [f32], e: &Epilogue) {
    let (mr, k) = (K::MR, a.k);
    let width = GEMV_GROUP * mr;
    y.fill(0.0);
    // K blocks outer, panels inner: the order A is packed in.
    for k0 in (0..k).step_by(KC) {
        let kc = KC.min(k - k0);
        let xs = &x[k0..k0 + kc];
        let grouped = kc / GEMV_GROUP * GEMV_GROUP;
        for (i, ys) in y.chunks_mut(mr).enumerate() {
            let ap = a.panel(row0 / mr + i, k0, kc);
            let mut lanes = [0f32; GEMV_GROUP * MAX_MR];
            let steps = ap.chunks_exact(width).zip(xs.chunks_exact(GEMV_GROUP));
            for (w, xg) in steps {
                for (j, l) in lanes[..width].iter_mut().enumerate() {
                    *l += w[j] * xg[j / mr];
                }
            }
            let mut acc = [0f32; MAX_MR];
            acc[..ys.len()].copy_from_slice(ys);
            for group in lanes[..width].chunks_exact(mr) {
                for (s, &v) in acc[..mr].iter_mut().zip(group) {
                    *s += v;
                }
            }
            let tail = ap[grouped * mr..].chunks_exact(mr).zip(&xs[grouped..]);
            for (col, &xv) in tail {
                for (s, &w) in acc[..mr].iter_mut().zip(col) {
                    *s += w * xv;
                }
            }
            let rows = ys.len();
            ys.copy_from_slice(&acc[..rows]);
        }
    }
    for (r, v) in y.iter_mut().enumerate() {
        e.apply_row(row0 + r, std::slice::from_mut(v), None);
    }
}

/// The rows `row0..` of C held in one worker's slice `c`.
struct Rows<'a> {
    a: &'a PackedA,
    row0: usize,
    ldc: usize,
    epilogue: &'a Epilogue,
    residual: Option<&'a [f32]>,
}

impl Rows<'_> {
    /// The fused clamp of the tile at rows `i0..i0+h`, on its last K block.
    fn clamp(&self, last: bool, i0: usize, h: usize) -> Option<TileClamp> {
        let act = self.epilogue.in_registers().filter(|_| last)?;
        let mut bias = [0f32; MAX_MR];
        if let Some(b) = &self.epilogue.bias {
            bias[..h].copy_from_slice(&b.as_slice()[self.row0 + i0..][..h]);
        }
        Some(TileClamp { bias, act })
    }

    /// Runs `tile` for the `h × w` tile at row `i0`, column `col` of `c`:
    /// in place when it has all `MR` rows (a column tail included), else
    /// through a stack tile; then the general
    /// epilogue on the last K block when the tile could not fuse it. A
    /// residual with a fusable epilogue is loaded into the tile before its
    /// first K block, so the sums accumulate onto it. `fused` is
    /// [`Rows::clamp`] of the tile's rows, found once per row panel (per
    /// tile it cost as much as a short-K tile itself).
    #[allow(clippy::too_many_arguments)]
    fn step<K: MicroKernel>(
        &self,
        micro: K,
        c: &mut [f32],
        (i0, h): (usize, usize),
        (col, w): (usize, usize),
        (accumulate, last): (bool, bool),
        fused: Option<&TileClamp>,
        tile: impl Fn(&mut [f32], usize, usize, bool, Option<&TileClamp>),
    ) {
        let (mr, nr, ldc) = (K::MR, K::NR, self.ldc);
        let fusable = self.epilogue.in_registers().is_some();
        let preload = self.residual.filter(|_| !accumulate && fusable);
        let start = |i: usize| (i0 + i) * ldc + col;
        if h == mr && c.len() >= (i0 + mr - 1) * ldc + col + w {
            if let Some(res) = preload {
                for i in 0..mr {
                    c[start(i)..][..w].copy_from_slice(&res[start(i)..][..w]);
                }
            }
            tile(
                &mut c[start(0)..],
                ldc,
                w,
                accumulate || preload.is_some(),
                fused,
            );
        } else {
            let mut t = [0f32; MAX_TILE];
            let from = preload.or(accumulate.then_some(&*c));
            if let Some(src) = from {
                for i in 0..h {
                    copy_run(&mut t[i * nr..i * nr + w], &src[start(i)..][..w]);
                }
            }
            tile(&mut t, nr, nr, from.is_some(), fused);
            for i in 0..h {
                copy_run(&mut c[start(i)..][..w], &t[i * nr..][..w]);
            }
        }
        if last && fused.is_none() {
            for i in 0..h {
                let res = self.residual.map(|x| &x[start(i)..][..w]);
                micro.epilogue(
                    self.epilogue,
                    self.row0 + i0 + i,
                    &mut c[start(i)..][..w],
                    res,
                );
            }
        }
    }

    fn rows(&self, c: &[f32]) -> usize {
        (self.a.m - self.row0).min(c.len().div_ceil(self.ldc))
    }

    /// B packed block by block into `bpack`.
    fn packed<K: MicroKernel>(
        &self,
        micro: K,
        b: &dyn BSource,
        n: usize,
        c: &mut [f32],
        bpack: &mut [f32],
    ) {
        let (mr, nr, k) = (K::MR, K::NR, self.a.k);
        let rows = self.rows(c);
        for j0 in (0..n).step_by(NC) {
            let nc = NC.min(n - j0);
            let npanels = nc.div_ceil(nr);
            for k0 in (0..k.max(1)).step_by(KC) {
                let kc = KC.min(k - k0);
                let last = k0 + kc >= k;
                b.pack(k0, kc, j0, nc, nr, &mut bpack[..npanels * kc * nr]);
                // Each A panel stays in L1 while it meets every B panel of
                // the block (in L2): A streams from memory once per block.
                for i0 in (0..rows).step_by(mr) {
                    let ap = self.a.panel((self.row0 + i0) / mr, k0, kc);
                    let h = mr.min(rows - i0);
                    let fused = self.clamp(last, i0, h);
                    for jp in 0..npanels {
                        let bp = &bpack[jp * kc * nr..][..kc * nr];
                        let col = j0 + jp * nr;
                        let tile = |t: &mut [f32],
                                    ld: usize,
                                    cols: usize,
                                    acc: bool,
                                    cl: Option<&TileClamp>| {
                            micro.tile(kc, ap, bp, t, ld, cols, acc, cl)
                        };
                        let w = nr.min(n - col);
                        let blocks = (k0 > 0, last);
                        self.step(micro, c, (i0, h), (col, w), blocks, fused.as_ref(), tile);
                    }
                }
            }
        }
    }

    /// B read in place, one output row of panels at a time.
    fn gathered<K: MicroKernel>(&self, micro: K, g: &Gathered, c: &mut [f32]) {
        let (mr, nr, k) = (K::MR, K::NR, self.a.k);
        let rows = self.rows(c);
        for k0 in (0..k.max(1)).step_by(KC) {
            let kc = KC.min(k - k0);
            let last = k0 + kc >= k;
            let offsets = ReadOffsets::new(&g.offsets[k0..k0 + kc]);
            for oy in 0..g.oh {
                for ox in (0..g.ow).step_by(nr) {
                    let base = &g.data[oy * g.row_step + ox..];
                    let col = oy * g.ow + ox;
                    for i0 in (0..rows).step_by(mr) {
                        let ap = self.a.panel((self.row0 + i0) / mr, k0, kc);
                        let tile = |t: &mut [f32],
                                    ld: usize,
                                    cols: usize,
                                    acc: bool,
                                    cl: Option<&TileClamp>| {
                            micro.tile_gather(kc, ap, base, &offsets, t, ld, cols, acc, cl)
                        };
                        let (h, w) = (mr.min(rows - i0), nr.min(g.ow - ox));
                        let fused = self.clamp(last, i0, h);
                        let blocks = (k0 > 0, last);
                        self.step(micro, c, (i0, h), (col, w), blocks, fused.as_ref(), tile);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every packing of A puts value `(i, p)` where [`PackedA::index`]
    /// says and zeros in the padding rows: row-major and column-major
    /// sources, every MR with a fixed-size path and one without, M not a
    /// multiple of MR, K across a block boundary.
    #[test]
    fn packed_a_holds_each_value_at_its_index() {
        for mr in [4, 5, 6, 8, 16, 32] {
            for (m, k) in [(1, 1), (7, 3), (13, KC + 9), (33, 2 * KC)] {
                let value = |i: usize, p: usize| (i * 1000 + p) as f32 + 0.5;
                let row_major: Vec<f32> = (0..m * k).map(|x| value(x / k, x % k)).collect();
                let col_major: Vec<f32> = (0..m * k).map(|x| value(x % m, x / m)).collect();
                let layouts = [
                    ALayout::RowMajor {
                        data: &row_major,
                        ld: k,
                    },
                    ALayout::ColMajor {
                        data: &col_major,
                        ld: m,
                    },
                ];
                for layout in layouts {
                    let a = PackedA::pack(m, k, mr, layout);
                    let data = a.data.as_slice();
                    assert_eq!(data.len(), m.div_ceil(mr) * mr * k);
                    let mut expected = vec![0.0; data.len()];
                    for i in 0..m {
                        for p in 0..k {
                            expected[PackedA::index(m, k, mr, i, p)] = value(i, p);
                        }
                    }
                    assert_eq!(data, &expected[..], "mr {mr}, {m}x{k}, {layout:?}");
                }
            }
        }
    }
}
