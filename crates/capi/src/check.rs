//! Argument checks shared by the handles: sizes of caller buffers.

use crate::status::ApiError;

/// The element count of an `f32` buffer with the named dimensions: every one must be at least
/// 1, and the product must fit a slice (`≤ isize::MAX` bytes), so that a buffer of this length
/// can be addressed at all.
pub fn buffer_len(dims: &[(&str, usize)]) -> Result<usize, ApiError> {
    let mut len = 1_usize;
    for &(name, value) in dims {
        if value == 0 {
            return Err(ApiError::invalid(format!("`{name}` must be at least 1")));
        }
        len = len.checked_mul(value).ok_or_else(|| too_large(dims))?;
    }
    if len > isize::MAX as usize / size_of::<f32>() {
        return Err(too_large(dims));
    }
    Ok(len)
}

/// A caller buffer of `len` floats must hold at least `needed`.
pub fn room(name: &str, len: usize, needed: usize) -> Result<(), ApiError> {
    if len < needed {
        return Err(ApiError::invalid(format!(
            "`{name}` holds {len} floats but {needed} are needed"
        )));
    }
    Ok(())
}

fn too_large(dims: &[(&str, usize)]) -> ApiError {
    let shape: Vec<String> = dims.iter().map(|(n, v)| format!("{n}={v}")).collect();
    ApiError::invalid(format!(
        "a buffer of {} floats is too large to address",
        shape.join(" x ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReparamStatus;

    #[test]
    fn lengths_are_products_of_positive_dimensions() {
        assert_eq!(
            buffer_len(&[("n", 2), ("c", 3), ("h", 4), ("w", 5)]),
            Ok(120)
        );
        let zero = buffer_len(&[("n", 1), ("h", 0)]).unwrap_err();
        assert_eq!(zero.status, ReparamStatus::InvalidArgument);
        assert!(zero.message.contains("`h`"), "{}", zero.message);
        let huge = buffer_len(&[("n", usize::MAX), ("c", 2)]).unwrap_err();
        assert!(huge.message.contains("too large"), "{}", huge.message);
        assert!(buffer_len(&[("n", isize::MAX as usize / 2)]).is_err());
    }

    #[test]
    fn a_short_buffer_is_named() {
        assert!(room("logits", 1000, 1000).is_ok());
        let short = room("logits", 10, 1000).unwrap_err();
        assert_eq!(
            short.message,
            "`logits` holds 10 floats but 1000 are needed"
        );
    }
}
