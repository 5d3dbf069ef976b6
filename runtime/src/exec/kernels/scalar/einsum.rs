//! Einsum over f32 operands: every output element the sum, over the
//! labels the output drops, of the product of the operands' elements at
//! the labels' indices. One loop over all label indices, so it suits the
//! small contractions of model heads, not large matrix products.

use smallvec::SmallVec;

use super::Dims;

/// Each operand's stride per label: the sum of the strides of its axes
/// with that label (a repeated label walks the diagonal), 0 on an axis of
/// length 1 (broadcast) or without the label.
fn label_strides(shape: &[usize], labels: &[u8], label_count: usize) -> Dims {
    let mut strides = Dims::from_elem(0, label_count);
    let mut stride = 1;
    for (&dim, &label) in shape.iter().zip(labels).rev() {
        if dim > 1 {
            strides[label as usize] += stride;
        }
        stride *= dim;
    }
    strides
}

/// `y[output labels] = Σ Π x_i[terms[i] labels]`; `sizes[l]` is label
/// `l`'s length, `output` the output's labels in order.
pub fn einsum(
    xs: &[(&[f32], &[usize])],
    terms: &[Vec<u8>],
    output: &[u8],
    sizes: &[usize],
    y: &mut [f32],
) {
    let label_count = sizes.len();
    let strides: SmallVec<[Dims; 4]> = xs
        .iter()
        .zip(terms)
        .map(|(&(_, shape), labels)| label_strides(shape, labels, label_count))
        .collect();
    // Output labels first (outermost first), then the summed ones.
    let mut order: Dims = output.iter().map(|&l| l as usize).collect();
    order.extend((0..label_count).filter(|l| !output.contains(&(*l as u8))));
    let summed: usize = order[output.len()..].iter().map(|&l| sizes[l]).product();
    let mut index = Dims::from_elem(0, label_count);
    let mut offsets: Dims = Dims::from_elem(0, xs.len());
    for out in y.iter_mut() {
        let mut sum = 0.0;
        for _ in 0..summed {
            let mut product = 1.0;
            for (&(x, _), &at) in xs.iter().zip(&offsets) {
                product *= x[at];
            }
            sum += product;
            step(
                &order,
                sizes,
                &strides,
                &mut index,
                &mut offsets,
                output.len(),
            );
        }
        *out = sum;
        if !output.is_empty() {
            step(
                &order[..output.len()],
                sizes,
                &strides,
                &mut index,
                &mut offsets,
                0,
            );
        }
    }
}

/// Advances the odometer over `order[from..]` (the last label fastest),
/// keeping every operand's offset in step; wraps to zero at the end.
fn step(
    order: &[usize],
    sizes: &[usize],
    strides: &[Dims],
    index: &mut Dims,
    offsets: &mut Dims,
    from: usize,
) {
    for &l in order[from..].iter().rev() {
        index[l] += 1;
        for (off, s) in offsets.iter_mut().zip(strides) {
            *off += s[l];
        }
        if index[l] < sizes[l] {
            return;
        }
        for (off, s) in offsets.iter_mut().zip(strides) {
            *off -= s[l] * sizes[l];
        }
        index[l] = 0;
    }
}
