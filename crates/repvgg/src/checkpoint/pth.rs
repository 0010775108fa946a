//! PyTorch checkpoints as `torch.save` writes them (the zip format, PyTorch ≥ 1.6).
//!
//! The archive holds `<name>/data.pkl` (the pickled object: a state dict, or a dict that nests
//! one under `state_dict` or `model`), `<name>/data/<key>` (one record per storage, raw
//! little-endian elements) and `<name>/byteorder` (`little`; absent in older files, which were
//! little-endian too). Records are stored uncompressed, so contiguous tensors are borrowed from
//! the file's bytes (after their CRC-32 is checked); a tensor with other strides (e.g. `channels_last` weights) is gathered into
//! row-major order element by element. Offsets and strides are bounds-checked against the
//! storage before any byte is read.

use super::pickle::{self, StorageRef, TensorRef};
use crate::error::CheckpointError;
use safetensors::Dtype;
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// The bytes of one tensor in row-major order, with its dtype and shape.
#[derive(Debug, Clone)]
pub(crate) struct RawTensor<'a> {
    /// Element type.
    pub dtype: Dtype,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Row-major little-endian elements.
    pub data: Cow<'a, [u8]>,
}

/// Whether `bytes` start like a zip archive (`PK\x03\x04`), i.e. a `torch.save` file.
pub(crate) fn is_zip(bytes: &[u8]) -> bool {
    bytes.starts_with(b"PK\x03\x04")
}

fn invalid(reason: impl Into<String>) -> CheckpointError {
    CheckpointError::Torch {
        reason: reason.into(),
    }
}

/// The element type of a storage class, and its size in bytes.
fn dtype_of(storage: &StorageRef) -> Result<(Dtype, usize), CheckpointError> {
    Ok(match storage.class.as_str() {
        "FloatStorage" => (Dtype::F32, 4),
        "HalfStorage" => (Dtype::F16, 2),
        "BFloat16Storage" => (Dtype::BF16, 2),
        "DoubleStorage" => (Dtype::F64, 8),
        "LongStorage" => (Dtype::I64, 8),
        "IntStorage" => (Dtype::I32, 4),
        "ShortStorage" => (Dtype::I16, 2),
        "CharStorage" => (Dtype::I8, 1),
        "ByteStorage" => (Dtype::U8, 1),
        "BoolStorage" => (Dtype::BOOL, 1),
        other => {
            return Err(invalid(format!(
                "storage type `torch.{other}` is not supported"
            )));
        }
    })
}

/// Every tensor of the state dict in a `torch.save` archive, by key.
pub(crate) fn tensors(bytes: &[u8]) -> Result<Vec<(String, RawTensor<'_>)>, CheckpointError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| invalid(format!("not a readable zip archive: {e}")))?;
    let mut records: HashMap<String, Cow<'_, [u8]>> = HashMap::new();
    for i in 0..archive.len() {
        let mut file = archive
            .by_index(i)
            .map_err(|e| invalid(format!("zip record {i}: {e}")))?;
        let name = file.name().to_string();
        let stored = file.compression() == zip::CompressionMethod::Stored;
        let start = usize::try_from(file.data_start()).unwrap_or(usize::MAX);
        let len = usize::try_from(file.size()).unwrap_or(usize::MAX);
        let data = match start.checked_add(len).and_then(|end| bytes.get(start..end)) {
            Some(raw) if stored => {
                // Borrowed records skip the zip reader, so check their CRC-32 here.
                if crc32fast::hash(raw) != file.crc32() {
                    return Err(invalid(format!(
                        "zip record `{name}` fails its CRC-32 check"
                    )));
                }
                Cow::Borrowed(raw)
            }
            _ => {
                let mut out = Vec::new();
                file.read_to_end(&mut out)
                    .map_err(|e| invalid(format!("zip record `{name}`: {e}")))?;
                Cow::Owned(out)
            }
        };
        records.insert(name, data);
    }
    let pkl = records
        .keys()
        .filter(|n| n.ends_with("/data.pkl") || n.as_str() == "data.pkl")
        .min_by_key(|n| n.len())
        .cloned()
        .ok_or_else(|| invalid("the archive has no data.pkl record (not a torch.save file)"))?;
    let prefix = &pkl[..pkl.len() - "data.pkl".len()];
    if let Some(order) = records.get(&format!("{prefix}byteorder"))
        && order.as_ref() != b"little"
    {
        return Err(invalid(format!(
            "byte order `{}` is not supported (only little-endian)",
            String::from_utf8_lossy(order)
        )));
    }
    let root = pickle::unpickle(&records[&pkl]).map_err(|e| invalid(format!("data.pkl: {e}")))?;
    let entries = pickle::state_dict(&root).map_err(|e| invalid(format!("data.pkl: {e}")))?;
    entries
        .into_iter()
        .map(|(key, tensor)| {
            let record = format!("{prefix}data/{}", tensor.storage.key);
            let storage = records
                .get(&record)
                .ok_or_else(|| invalid(format!("`{key}`: storage record `{record}` is missing")))?;
            let raw = view(&key, &tensor, storage)?;
            Ok((key, raw))
        })
        .collect()
}

/// The row-major bytes of `tensor`, borrowed when its strides are already row-major.
fn view<'a>(
    key: &str,
    tensor: &TensorRef,
    storage: &Cow<'a, [u8]>,
) -> Result<RawTensor<'a>, CheckpointError> {
    let (dtype, width) = dtype_of(&tensor.storage)?;
    let bad = |what: String| invalid(format!("`{key}`: {what}"));
    if tensor.size.len() != tensor.stride.len() {
        return Err(bad(format!(
            "{} sizes but {} strides",
            tensor.size.len(),
            tensor.stride.len()
        )));
    }
    let numel = tensor
        .size
        .iter()
        .try_fold(1usize, |n, &s| n.checked_mul(s))
        .ok_or_else(|| bad("element count overflows".into()))?;
    let storage_bytes = tensor
        .storage
        .numel
        .checked_mul(width)
        .filter(|&b| b <= storage.len())
        .ok_or_else(|| {
            bad(format!(
                "storage of {} elements needs more than the record's {} bytes",
                tensor.storage.numel,
                storage.len()
            ))
        })?;
    let shape = tensor.size.clone();
    let contiguous = numel == 0 || tensor.stride == row_major(&tensor.size);
    if !contiguous {
        let gathered = gather(key, tensor, &storage[..storage_bytes], width, numel)?;
        return Ok(RawTensor {
            dtype,
            shape,
            data: Cow::Owned(gathered),
        });
    }
    let start = tensor.offset.checked_mul(width);
    let end = tensor
        .offset
        .checked_add(numel)
        .and_then(|e| e.checked_mul(width))
        .filter(|&e| e <= storage_bytes);
    let (Some(start), Some(end)) = (start, end) else {
        return Err(bad(format!(
            "offset {} + {numel} elements run past its storage of {}",
            tensor.offset, tensor.storage.numel
        )));
    };
    let data = match storage {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
        Cow::Owned(v) => Cow::Owned(v[start..end].to_vec()),
    };
    Ok(RawTensor { dtype, shape, data })
}

/// Row-major strides of `size`.
fn row_major(size: &[usize]) -> Vec<usize> {
    let mut strides = vec![1usize; size.len()];
    for i in (0..size.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * size[i + 1];
    }
    strides
}

/// Copies a strided tensor element by element into row-major order, after checking that its
/// last element lies inside the storage.
fn gather(
    key: &str,
    tensor: &TensorRef,
    storage: &[u8],
    width: usize,
    numel: usize,
) -> Result<Vec<u8>, CheckpointError> {
    if numel == 0 {
        return Ok(Vec::new());
    }
    let last = tensor
        .size
        .iter()
        .zip(&tensor.stride)
        .try_fold(tensor.offset, |acc, (&n, &s)| {
            (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d))
        });
    if last.is_none_or(|l| l >= storage.len() / width) {
        return Err(invalid(format!(
            "`{key}`: sizes {:?}, strides {:?} and offset {} reach past its storage of {} elements",
            tensor.size,
            tensor.stride,
            tensor.offset,
            storage.len() / width
        )));
    }
    let mut out = Vec::with_capacity(numel * width);
    let mut index = vec![0usize; tensor.size.len()];
    for _ in 0..numel {
        let element: usize = tensor.offset
            + index
                .iter()
                .zip(&tensor.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&storage[element * width..(element + 1) * width]);
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < tensor.size[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage(numel: usize) -> StorageRef {
        StorageRef {
            class: "FloatStorage".into(),
            key: "0".into(),
            numel,
        }
    }

    fn floats(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn transposed_views_are_gathered_row_major() {
        // A 2 x 3 tensor stored column-major: storage [a d b e c f].
        let bytes = floats(&[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        let t = TensorRef {
            storage: storage(6),
            offset: 0,
            size: vec![2, 3],
            stride: vec![1, 2],
        };
        let raw = view("w", &t, &Cow::Borrowed(&bytes)).unwrap();
        assert!(matches!(raw.data, Cow::Owned(_)));
        assert_eq!(raw.data.as_ref(), floats(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
        let row = TensorRef {
            storage: storage(6),
            offset: 2,
            size: vec![2],
            stride: vec![1],
        };
        let raw = view("w", &row, &Cow::Borrowed(&bytes)).unwrap();
        assert!(matches!(raw.data, Cow::Borrowed(_)));
        assert_eq!(raw.data.as_ref(), floats(&[2.0, 5.0]));
    }

    #[test]
    fn views_past_their_storage_are_refused() {
        let bytes = floats(&[0.0; 6]);
        for (offset, size, stride) in [
            (5, vec![2], vec![1]),
            (0, vec![2, 3], vec![1, 3]),
            (0, vec![7], vec![1]),
        ] {
            let t = TensorRef {
                storage: storage(6),
                offset,
                size,
                stride,
            };
            let e = view("w", &t, &Cow::Borrowed(&bytes))
                .unwrap_err()
                .to_string();
            assert!(e.contains("`w`"), "{e}");
        }
        let big = TensorRef {
            storage: storage(7),
            offset: 0,
            size: vec![6],
            stride: vec![1],
        };
        let e = view("w", &big, &Cow::Borrowed(&bytes))
            .unwrap_err()
            .to_string();
        assert!(e.contains("more than the record"), "{e}");
    }
}
