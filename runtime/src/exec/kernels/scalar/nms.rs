//! NonMaxSuppression: per batch and class, the best-scoring boxes that no
//! better one overlaps too much, picked greedily as ONNX defines it.

use crate::ir::Nms;

/// A box as `[y1, x1, y2, x2]` with `y1 <= y2` and `x1 <= x2`.
fn corners(b: &[f32], centre: bool) -> [f32; 4] {
    if centre {
        let (xc, yc, w, h) = (b[0], b[1], b[2], b[3]);
        [yc - h / 2.0, xc - w / 2.0, yc + h / 2.0, xc + w / 2.0]
    } else {
        [
            b[0].min(b[2]),
            b[1].min(b[3]),
            b[0].max(b[2]),
            b[1].max(b[3]),
        ]
    }
}

/// Whether `a` and `b` overlap by more than `threshold` (intersection over
/// union); a box without area overlaps nothing.
fn overlaps(a: [f32; 4], b: [f32; 4], threshold: f32) -> bool {
    let area = |c: [f32; 4]| (c[2] - c[0]) * (c[3] - c[1]);
    let (area_a, area_b) = (area(a), area(b));
    if area_a <= 0.0 || area_b <= 0.0 {
        return false;
    }
    let h = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let w = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = h * w;
    inter / (area_a + area_b - inter) > threshold
}

/// The selection of `p` over `boxes` (`[batch, n, 4]`) by `scores`
/// (`[batch, classes, n]`) into `rows` (`[batch, class, box]` triples, the
/// rest [`Nms::FREE_ROW`]), sorting each class's candidates in `order` (`n`
/// positions, the kernel's scratch). Candidates score above the threshold
/// (every box without one) and go best first, ties by the lower index.
pub fn nms(
    p: &Nms,
    boxes: &[f32],
    scores: &[f32],
    [batch, classes, n]: [usize; 3],
    order: &mut [u32],
    rows: &mut [i64],
) {
    rows.fill(Nms::FREE_ROW);
    let mut written = 0;
    for b in 0..batch {
        let corner = |i: usize| corners(&boxes[(b * n + i) * 4..][..4], p.centre_point_box);
        for c in 0..classes {
            let s = &scores[(b * classes + c) * n..][..n];
            let mut m = 0;
            let candidate = |v: f32| p.score_threshold.is_none_or(|t| v > t);
            for (j, _) in s.iter().enumerate().filter(|(_, &v)| candidate(v)) {
                order[m] = j as u32;
                m += 1;
            }
            let candidates = &mut order[..m];
            candidates
                .sort_unstable_by(|&x, &y| s[y as usize].total_cmp(&s[x as usize]).then(x.cmp(&y)));
            let first = written;
            for &j in candidates.iter() {
                if written - first == p.max_per_class {
                    break;
                }
                let box_j = corner(j as usize);
                let suppressed = (first..written)
                    .any(|r| overlaps(corner(rows[r * 3 + 2] as usize), box_j, p.iou_threshold));
                if !suppressed {
                    rows[written * 3..][..3].copy_from_slice(&[b as i64, c as i64, i64::from(j)]);
                    written += 1;
                }
            }
        }
    }
}
