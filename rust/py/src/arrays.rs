//! Borrowing numpy input without a copy when it is already contiguous.

use numpy::{Element, PyReadonlyArray1};
use std::borrow::Cow;

/// A contiguous view of a 1-D array; copies only when strided.
pub fn view<'a, T: Element + Copy>(arr: &'a PyReadonlyArray1<'_, T>) -> Cow<'a, [T]> {
    match arr.as_slice() {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(arr.as_array().iter().copied().collect()),
    }
}

/// A contiguous view of a 1-D float64 array; copies only when strided.
pub fn slice1<'a>(arr: &'a PyReadonlyArray1<'_, f64>) -> Cow<'a, [f64]> {
    view(arr)
}
