//! Minimal `.npy` reading and writing (little-endian f32/f64/i32/i64,
//! C order), so results can be exchanged with numpy and other runtimes.
//! f16 and f64 arrays are read as f32, the type squeeze computes in.

use std::io::Write;
use std::path::Path;

use crate::error::{Error, Result};
use crate::ir::{checked_numel, Tensor, TensorData};

const MAGIC: &[u8] = b"\x93NUMPY";

fn bad(path: &str, m: impl Into<String>) -> Error {
    Error::Input(format!("{path}: {}", m.into()))
}

/// Parses `.npy` bytes; `what` names the source in errors.
pub fn parse(bytes: &[u8], what: &str) -> Result<Tensor> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad(what, "not a .npy file"));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(what, format!("unsupported .npy version {v}"))),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| bad(what, "truncated header"))?;
    let header =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| bad(what, "header is not text"))?;
    let field = |key: &str| -> Result<&str> {
        let at = header
            .find(key)
            .ok_or_else(|| bad(what, format!("header has no {key}")))?;
        Ok(header[at + key.len()..].trim_start_matches([' ', ':']))
    };
    let descr = field("'descr'")?;
    let descr = descr
        .trim_start_matches('\'')
        .split('\'')
        .next()
        .unwrap_or("");
    if field("'fortran_order'")?.starts_with("True") {
        return Err(bad(what, "Fortran order is not supported"));
    }
    let shape_txt = field("'shape'")?;
    let inner = shape_txt
        .trim_start_matches('(')
        .split(')')
        .next()
        .unwrap_or("");
    let shape: Vec<usize> = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().map_err(|_| bad(what, format!("bad dim {s:?}"))))
        .collect::<Result<_>>()?;
    let n = checked_numel(&shape, what)?;
    let body = &bytes[end..];
    let size = match descr {
        "<f2" => 2,
        "<f4" | "<i4" => 4,
        "<f8" | "<i8" => 8,
        "|u1" | "|i1" | "|b1" => 1,
        d => return Err(bad(what, format!("unsupported dtype {d}"))),
    };
    if body.len() != n * size {
        return Err(bad(
            what,
            format!("{} data bytes for shape {shape:?} of {descr}", body.len()),
        ));
    }
    let c = body.chunks_exact(size);
    let data = match descr {
        "<f4" => TensorData::F32(
            c.map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        "<f2" => TensorData::F32(
            c.map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
        ),
        "<f8" => TensorData::F32(
            c.map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as f32)
                .collect(),
        ),
        "<i4" => TensorData::I64(
            c.map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
        ),
        "<i8" => TensorData::I64(
            c.map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect(),
        ),
        "|i1" => TensorData::I64(body.iter().map(|&b| b as i8 as i64).collect()),
        _ => TensorData::I64(body.iter().map(|&b| b as i64).collect()),
    };
    Tensor::new(shape, data)
}

pub fn read(path: &Path) -> Result<Tensor> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(&bytes, &path.display().to_string())
}

/// Serializes a tensor as `.npy` version 1.
pub fn to_bytes(t: &Tensor) -> Vec<u8> {
    let descr = match t.data() {
        TensorData::I64(_) => "<i8",
        _ => "<f4",
    };
    let dims: Vec<String> = t.shape().iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + t.len() * 8);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    match t.as_f32() {
        Some(v) => v
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        None => t
            .as_i64()
            .unwrap_or(&[])
            .iter()
            .for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
    }
    out
}

pub fn write(path: &Path, t: &Tensor) -> Result<()> {
    let io = |e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let mut f = std::fs::File::create(path).map_err(io)?;
    f.write_all(&to_bytes(t)).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An f16 array is read as the same values in f32.
    #[test]
    fn f16_arrays_read_as_f32() {
        let values = [0.5f32, -2.0, 65504.0, 1.0e-3];
        let mut bytes = MAGIC.to_vec();
        let header = "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }";
        let header = format!("{header:<117}\n");
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        for v in values {
            bytes.extend(half::f16::from_f32(v).to_le_bytes());
        }
        let t = parse(&bytes, "test").expect("parse");
        assert_eq!(t.shape(), &[2, 2]);
        let want: Vec<f32> = values
            .iter()
            .map(|&v| half::f16::from_f32(v).to_f32())
            .collect();
        assert_eq!(t.to_f32_vec(), want);
    }
}
