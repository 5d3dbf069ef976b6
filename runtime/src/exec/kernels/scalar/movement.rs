//! Data movement, generic over the element type: transpose, slice, concat,
//! split, gather, scatter, tile, pad.

use crate::ir::{AxisSlice, PadMode, ScatterReduction};

fn row_major_strides(shape: &[usize]) -> super::Dims {
    let mut s: super::Dims = smallvec::smallvec![1; shape.len()];
    for d in (0..shape.len().saturating_sub(1)).rev() {
        s[d] = s[d + 1] * shape[d + 1];
    }
    s
}

/// Walks every index of `shape` in row-major order.
fn for_each_index(shape: &[usize], mut f: impl FnMut(&[usize])) {
    if shape.contains(&0) {
        return;
    }
    let mut idx: super::Dims = smallvec::smallvec![0usize; shape.len()];
    loop {
        f(&idx);
        let mut d = shape.len();
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

pub fn transpose<T: Copy>(x: &[T], shape: &[usize], perm: &[usize], y: &mut [T]) {
    let strides = row_major_strides(shape);
    let out_shape: super::Dims = perm.iter().map(|&p| shape[p]).collect();
    let src_strides: super::Dims = perm.iter().map(|&p| strides[p]).collect();
    let mut o = 0;
    // Trailing axes that stay in place move as contiguous blocks (a channel
    // shuffle moves whole planes).
    let mut kept = perm.len();
    while kept > 0 && perm[kept - 1] == kept - 1 {
        kept -= 1;
    }
    let block: usize = shape[kept..].iter().product();
    if block > 1 {
        for_each_index(&out_shape[..kept], |idx| {
            let src: usize = idx.iter().zip(&src_strides).map(|(i, s)| i * s).sum();
            y[o..o + block].copy_from_slice(&x[src..src + block]);
            o += block;
        });
        return;
    }
    for_each_index(&out_shape, |idx| {
        y[o] = x[idx
            .iter()
            .zip(&src_strides)
            .map(|(i, s)| i * s)
            .sum::<usize>()];
        o += 1;
    });
}

pub fn slice<T: Copy>(x: &[T], shape: &[usize], axes: &[AxisSlice], y: &mut [T]) {
    let strides = row_major_strides(shape);
    let out_shape: super::Dims = axes.iter().map(|a| a.len).collect();
    let mut o = 0;
    // Trailing axes taken whole, and the step-1 axis before them, copy as
    // contiguous runs (a channel slice copies whole planes).
    let mut kept = axes.len();
    while kept > 0 && {
        let a = &axes[kept - 1];
        a.start == 0 && a.step == 1 && a.len == shape[kept - 1]
    } {
        kept -= 1;
    }
    if kept > 0 && axes[kept - 1].step == 1 {
        let run: usize = axes[kept - 1].len * shape[kept..].iter().product::<usize>();
        if run > 1 {
            let inner = kept - 1;
            for_each_index(&out_shape[..inner], |idx| {
                let mut src = axes[inner].start * strides[inner];
                for ((i, a), st) in idx.iter().zip(axes).zip(&strides) {
                    src = (src as isize + (a.start as isize + a.step * *i as isize) * *st as isize)
                        as usize;
                }
                y[o..o + run].copy_from_slice(&x[src..src + run]);
                o += run;
            });
            return;
        }
    }
    for_each_index(&out_shape, |idx| {
        let mut src = 0isize;
        for ((i, a), s) in idx.iter().zip(axes).zip(&strides) {
            src += (a.start as isize + a.step * *i as isize) * *s as isize;
        }
        y[o] = x[src as usize];
        o += 1;
    });
}

/// Concatenation along `axis`: each input contributes one block per outer index.
pub fn concat<T: Copy>(inputs: &[(&[T], &[usize])], axis: usize, y: &mut [T]) {
    let outer: usize = inputs[0].1[..axis].iter().product();
    let mut o = 0;
    for i in 0..outer {
        for (x, shape) in inputs {
            let block: usize = shape[axis..].iter().product();
            y[o..o + block].copy_from_slice(&x[i * block..][..block]);
            o += block;
        }
    }
}

pub fn split<T: Copy>(x: &[T], shape: &[usize], axis: usize, outputs: &mut [&mut [T]]) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let total = shape[axis] * inner;
    let mut offset = 0;
    for out in outputs.iter_mut() {
        let block = out.len().checked_div(outer).unwrap_or(0);
        for o in 0..outer {
            out[o * block..][..block].copy_from_slice(&x[o * total + offset..][..block]);
        }
        offset += block;
    }
}

/// Gathers along `axis`; indices were range-checked by the caller.
pub fn gather<T: Copy>(x: &[T], shape: &[usize], axis: usize, indices: &[usize], y: &mut [T]) {
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product();
    let n = shape[axis];
    let mut o = 0;
    for i in 0..outer {
        for &k in indices {
            y[o..o + inner].copy_from_slice(&x[(i * n + k) * inner..][..inner]);
            o += inner;
        }
    }
}

/// GatherElements along `axis`: each output element takes `x` at its own
/// position with the `axis` coordinate replaced by its index (negative
/// counts from the end). An index out of range is an error.
pub fn gather_elements<T: Copy>(
    x: &[T],
    shape: &[usize],
    indices: &[i64],
    index_shape: &[usize],
    axis: usize,
    y: &mut [T],
) -> Result<(), i64> {
    let rank = shape.len();
    let strides = row_major_strides(shape);
    let mut pos: super::Dims = smallvec::smallvec![0; rank];
    for (o, &i) in y.iter_mut().zip(indices) {
        let j = wrap_index(i, shape[axis])?;
        let at: usize = (0..rank)
            .map(|d| if d == axis { j } else { pos[d] } * strides[d])
            .sum();
        *o = x[at];
        next_position(&mut pos, index_shape);
    }
    Ok(())
}

/// Tile: `y` is `x` (of `shape`) repeated `repeats[d]` times along each
/// axis; each output row copies one input row `repeats[last]` times.
pub fn tile<T: Copy>(x: &[T], shape: &[usize], repeats: &[usize], y: &mut [T]) {
    let rank = shape.len();
    if y.is_empty() {
        return;
    }
    if rank == 0 {
        y.copy_from_slice(x);
        return;
    }
    let inner = shape[rank - 1];
    let out: super::Dims = shape.iter().zip(repeats).map(|(&d, &r)| d * r).collect();
    let strides = row_major_strides(shape);
    // The output row's coordinates on the axes before the last.
    let mut pos: super::Dims = smallvec::smallvec![0; rank - 1];
    for row in y.chunks_mut(out[rank - 1]) {
        let at: usize = (0..rank - 1)
            .map(|d| (pos[d] % shape[d]) * strides[d])
            .sum();
        for piece in row.chunks_mut(inner) {
            piece.copy_from_slice(&x[at..at + inner]);
        }
        next_position(&mut pos, &out[..rank - 1]);
    }
}

/// Trilu: each matrix of the last two axes with the elements off the kept
/// triangle zeroed; kept are those with `col - row >= k` (`upper`) or
/// `col - row <= k`.
pub fn trilu<T: Copy + Default>(x: &[T], shape: &[usize], upper: bool, k: i64, y: &mut [T]) {
    let (rows, cols) = (shape[shape.len() - 2], shape[shape.len() - 1]);
    for (i, (yr, xr)) in y.chunks_mut(cols).zip(x.chunks(cols)).enumerate() {
        let row = (i % rows) as i64;
        for (j, (o, &v)) in yr.iter_mut().zip(xr).enumerate() {
            let d = j as i64 - row;
            *o = if (upper && d >= k) || (!upper && d <= k) {
                v
            } else {
                T::default()
            };
        }
    }
}

/// CumSum of `x` (of `shape`) along `axis`: each element the sum of those
/// before it (and itself unless `exclusive`), counted from the end when
/// `reverse`.
pub fn cumsum<T: Copy + Default + std::ops::Add<Output = T>>(
    x: &[T],
    shape: &[usize],
    axis: usize,
    exclusive: bool,
    reverse: bool,
    y: &mut [T],
) {
    let n = shape[axis];
    let inner: usize = shape[axis + 1..].iter().product();
    for (xs, ys) in x.chunks(n * inner).zip(y.chunks_mut(n * inner)) {
        for i in 0..inner {
            let mut acc = T::default();
            for step in 0..n {
                let at = if reverse { n - 1 - step } else { step } * inner + i;
                let with = acc + xs[at];
                ys[at] = if exclusive { acc } else { with };
                acc = with;
            }
        }
    }
}

/// Steps `pos` to the next coordinate of `shape` in row-major order
/// (back to all zeros after the last).
fn next_position(pos: &mut [usize], shape: &[usize]) {
    for d in (0..pos.len()).rev() {
        pos[d] += 1;
        if pos[d] < shape[d] {
            return;
        }
        pos[d] = 0;
    }
}

/// An index along an axis of `n`, negative counting from the end; the raw
/// index when out of range.
fn wrap_index(i: i64, n: usize) -> Result<usize, i64> {
    let j = if i < 0 { i + n as i64 } else { i };
    usize::try_from(j).ok().filter(|&j| j < n).ok_or(i)
}

/// ScatterElements into `y` (a copy of the data, of `shape`): each update
/// goes to its own position with the `axis` coordinate replaced by its
/// index, combined by `reduction`. An index out of range is an error.
pub fn scatter_elements(
    shape: &[usize],
    indices: &[i64],
    index_shape: &[usize],
    updates: &[f32],
    axis: usize,
    reduction: ScatterReduction,
    y: &mut [f32],
) -> Result<(), i64> {
    let rank = shape.len();
    let strides = row_major_strides(shape);
    let mut pos: super::Dims = smallvec::smallvec![0; rank];
    for (&i, &u) in indices.iter().zip(updates) {
        let j = wrap_index(i, shape[axis])?;
        let at: usize = (0..rank)
            .map(|d| if d == axis { j } else { pos[d] } * strides[d])
            .sum();
        y[at] = reduction.apply(y[at], u);
        next_position(&mut pos, index_shape);
    }
    Ok(())
}

/// ScatterND into `y` (a copy of the data, of `shape`): each index tuple
/// (the last axis of `indices`, `q` long) selects the slice of the axes
/// from `q` on that its update replaces or combines with.
pub fn scatter_nd(
    shape: &[usize],
    indices: &[i64],
    q: usize,
    updates: &[f32],
    reduction: ScatterReduction,
    y: &mut [f32],
) -> Result<(), i64> {
    let strides = row_major_strides(shape);
    let slice: usize = shape[q..].iter().product();
    if q == 0 || slice == 0 {
        return Ok(());
    }
    for (tuple, update) in indices.chunks(q).zip(updates.chunks(slice)) {
        let mut at = 0;
        for (d, &i) in tuple.iter().enumerate() {
            at += wrap_index(i, shape[d])? * strides[d];
        }
        for (o, &u) in y[at..at + slice].iter_mut().zip(update) {
            *o = reduction.apply(*o, u);
        }
    }
    Ok(())
}

pub fn pad(
    x: &[f32],
    shape: &[usize],
    pads: &[(usize, usize)],
    mode: PadMode,
    value: f32,
    y: &mut [f32],
) {
    let strides = row_major_strides(shape);
    let out_shape: super::Dims = shape.iter().zip(pads).map(|(d, p)| d + p.0 + p.1).collect();
    let mut o = 0;
    for_each_index(&out_shape, |idx| {
        let mut src = 0usize;
        let mut inside = true;
        for (d, &i) in idx.iter().enumerate() {
            let len = shape[d] as isize;
            let mut p = i as isize - pads[d].0 as isize;
            if p < 0 || p >= len {
                match mode {
                    PadMode::Constant => inside = false,
                    PadMode::Edge => p = p.clamp(0, len - 1),
                    PadMode::Reflect => {
                        // Mirror without repeating the edge; period 2(len-1).
                        let period = 2 * (len - 1).max(1);
                        p = p.rem_euclid(period);
                        if p >= len {
                            p = period - p;
                        }
                    }
                }
            }
            src += p.max(0) as usize * strides[d];
        }
        y[o] = if inside { x[src] } else { value };
        o += 1;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tile against the definition: y at each output coordinate is x at
    /// that coordinate modulo x's shape.
    #[test]
    fn tile_matches_its_definition() {
        for (shape, repeats) in [
            (vec![2, 3], vec![2, 1]),
            (vec![2, 3], vec![1, 3]),
            (vec![1, 2, 1], vec![3, 2, 4]),
            (vec![4], vec![1]),
        ] {
            let x: Vec<i64> = (0..shape.iter().product::<usize>() as i64).collect();
            let out: Vec<usize> = shape.iter().zip(&repeats).map(|(d, r)| d * r).collect();
            let mut y = vec![-1i64; out.iter().product()];
            tile(&x, &shape, &repeats, &mut y);
            for (flat, &v) in y.iter().enumerate() {
                let (mut rest, mut at, mut stride) = (flat, 0usize, 1usize);
                for d in (0..out.len()).rev() {
                    at += (rest % out[d] % shape[d]) * stride;
                    rest /= out[d];
                    stride *= shape[d];
                }
                assert_eq!(v, x[at], "tile {shape:?} by {repeats:?} at {flat}");
            }
        }
    }
}

/// A tensor seen as `outer × len × inner` around one axis: `len` values
/// `inner` apart for each of `outer × inner` lines.
#[derive(Clone, Copy, Debug)]
pub struct Lines {
    pub outer: usize,
    pub len: usize,
    pub inner: usize,
}

impl Lines {
    pub fn new(shape: &[usize], axis: usize) -> Lines {
        Lines {
            outer: shape[..axis].iter().product(),
            len: shape[axis],
            inner: shape[axis + 1..].iter().product(),
        }
    }
}

/// TopK along the lines of `x`: each line's `k` largest (or smallest)
/// values in order, ties by the lower index, into `values` and `indices`
/// (lines of `k`), sorting each line's positions in `order` (`lines.len`
/// of them, the kernel's scratch). NaN counts as larger than any number.
pub fn top_k(
    x: &[f32],
    lines: Lines,
    (k, largest): (usize, bool),
    order: &mut [u32],
    values: &mut [f32],
    indices: &mut [i64],
) {
    let Lines { outer, len, inner } = lines;
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: u32| x[(o * len + j as usize) * inner + i];
            order.iter_mut().zip(0..).for_each(|(d, j)| *d = j);
            // Ties go by position, so an unstable sort gives one order.
            order.sort_unstable_by(|&a, &b| {
                let by_value = at(a).total_cmp(&at(b));
                let by_value = if largest {
                    by_value.reverse()
                } else {
                    by_value
                };
                by_value.then(a.cmp(&b))
            });
            for (r, &j) in order.iter().take(k).enumerate() {
                let out = (o * k + r) * inner + i;
                values[out] = at(j);
                indices[out] = i64::from(j);
            }
        }
    }
}

/// Where [`gather_nd`] reads: x's shape and the i64 indices with theirs.
pub struct NdIndex<'a> {
    pub shape: &'a [usize],
    pub indices: &'a [i64],
    pub index_shape: &'a [usize],
    pub batch_dims: usize,
}

/// GatherND: for each index tuple (the last axis of the indices), the
/// slice of x it addresses within its batch. An index out of range is
/// returned as the error.
pub fn gather_nd<T: Copy>(x: &[T], at: &NdIndex, y: &mut [T]) -> Result<(), i64> {
    let (shape, b) = (at.shape, at.batch_dims);
    let q = at.index_shape.len();
    let m = at.index_shape[q - 1];
    let batches: usize = shape[..b].iter().product();
    let tuples: usize = at.index_shape[b..q - 1].iter().product();
    let slice: usize = shape[b + m..].iter().product();
    let batch_len: usize = shape[b..].iter().product();
    for batch in 0..batches {
        for t in 0..tuples {
            let n = batch * tuples + t;
            let tuple = &at.indices[n * m..][..m];
            let mut from = batch * batch_len;
            for (d, &i) in tuple.iter().enumerate() {
                let len = shape[b + d] as i64;
                let j = if i < 0 { i + len } else { i };
                if !(0..len).contains(&j) {
                    return Err(i);
                }
                let stride: usize = shape[b + d + 1..].iter().product();
                from += j as usize * stride;
            }
            y[n * slice..][..slice].copy_from_slice(&x[from..from + slice]);
        }
    }
    Ok(())
}

/// OneHot: `y` (lines of `depth` along the new axis) is `on` where the
/// line's position equals its index (`index(p)` at index position `p`,
/// negative from `depth`), else `off`.
pub fn one_hot<T: Copy>(
    index: impl Fn(usize) -> i64,
    depth: usize,
    [off, on]: [T; 2],
    lines: Lines,
    y: &mut [T],
) {
    let Lines { outer, inner, .. } = lines;
    y.fill(off);
    for o in 0..outer {
        for i in 0..inner {
            let index = index(o * inner + i);
            let d = depth as i64;
            let at = if index < 0 { index + d } else { index };
            if (0..d).contains(&at) {
                y[(o * depth + at as usize) * inner + i] = on;
            }
        }
    }
}
