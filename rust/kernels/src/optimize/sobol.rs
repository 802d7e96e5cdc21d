//! Sobol points in up to 64 dimensions, in Gray-code order (Antonov–Saleev),
//! with the Joe & Kuo (2008) direction numbers (file new-joe-kuo-6.21201,
//! as shipped by SciPy), 32 bits per coordinate, and an optional random
//! digital shift (each coordinate XOR-ed with a fixed random 32-bit word).

use crate::error::{Result, invalid};

/// The highest supported dimension.
pub const MAX_DIM: usize = 64;
const BITS: usize = 32;

/// (primitive polynomial with both end bits, initial m_1..m_s) per dimension.
/// Dimension 0 (polynomial 1) is the van der Corput sequence (m_k = 1).
const TABLE: [(u32, [u32; 9]); MAX_DIM] = [
    (1, [1, 0, 0, 0, 0, 0, 0, 0, 0]),
    (3, [1, 0, 0, 0, 0, 0, 0, 0, 0]),
    (7, [1, 3, 0, 0, 0, 0, 0, 0, 0]),
    (11, [1, 3, 1, 0, 0, 0, 0, 0, 0]),
    (13, [1, 1, 1, 0, 0, 0, 0, 0, 0]),
    (19, [1, 1, 3, 3, 0, 0, 0, 0, 0]),
    (25, [1, 3, 5, 13, 0, 0, 0, 0, 0]),
    (37, [1, 1, 5, 5, 17, 0, 0, 0, 0]),
    (41, [1, 1, 5, 5, 5, 0, 0, 0, 0]),
    (47, [1, 1, 7, 11, 19, 0, 0, 0, 0]),
    (55, [1, 1, 5, 1, 1, 0, 0, 0, 0]),
    (59, [1, 1, 1, 3, 11, 0, 0, 0, 0]),
    (61, [1, 3, 5, 5, 31, 0, 0, 0, 0]),
    (67, [1, 3, 3, 9, 7, 49, 0, 0, 0]),
    (91, [1, 1, 1, 15, 21, 21, 0, 0, 0]),
    (97, [1, 3, 1, 13, 27, 49, 0, 0, 0]),
    (103, [1, 1, 1, 15, 7, 5, 0, 0, 0]),
    (109, [1, 3, 1, 15, 13, 25, 0, 0, 0]),
    (115, [1, 1, 5, 5, 19, 61, 0, 0, 0]),
    (131, [1, 3, 7, 11, 23, 15, 103, 0, 0]),
    (137, [1, 3, 7, 13, 13, 15, 69, 0, 0]),
    (143, [1, 1, 3, 13, 7, 35, 63, 0, 0]),
    (145, [1, 3, 5, 9, 1, 25, 53, 0, 0]),
    (157, [1, 3, 1, 13, 9, 35, 107, 0, 0]),
    (167, [1, 3, 1, 5, 27, 61, 31, 0, 0]),
    (171, [1, 1, 5, 11, 19, 41, 61, 0, 0]),
    (185, [1, 3, 5, 3, 3, 13, 69, 0, 0]),
    (191, [1, 1, 7, 13, 1, 19, 1, 0, 0]),
    (193, [1, 3, 7, 5, 13, 19, 59, 0, 0]),
    (203, [1, 1, 3, 9, 25, 29, 41, 0, 0]),
    (211, [1, 3, 5, 13, 23, 1, 55, 0, 0]),
    (213, [1, 3, 7, 3, 13, 59, 17, 0, 0]),
    (229, [1, 3, 1, 3, 5, 53, 69, 0, 0]),
    (239, [1, 1, 5, 5, 23, 33, 13, 0, 0]),
    (241, [1, 1, 7, 7, 1, 61, 123, 0, 0]),
    (247, [1, 1, 7, 9, 13, 61, 49, 0, 0]),
    (253, [1, 3, 3, 5, 3, 55, 33, 0, 0]),
    (285, [1, 3, 1, 15, 31, 13, 49, 245, 0]),
    (299, [1, 3, 5, 15, 31, 59, 63, 97, 0]),
    (301, [1, 3, 1, 11, 11, 11, 77, 249, 0]),
    (333, [1, 3, 1, 11, 27, 43, 71, 9, 0]),
    (351, [1, 1, 7, 15, 21, 11, 81, 45, 0]),
    (355, [1, 3, 7, 3, 25, 31, 65, 79, 0]),
    (357, [1, 3, 1, 1, 19, 11, 3, 205, 0]),
    (361, [1, 1, 5, 9, 19, 21, 29, 157, 0]),
    (369, [1, 3, 7, 11, 1, 33, 89, 185, 0]),
    (391, [1, 3, 3, 3, 15, 9, 79, 71, 0]),
    (397, [1, 3, 7, 11, 15, 39, 119, 27, 0]),
    (425, [1, 1, 3, 1, 11, 31, 97, 225, 0]),
    (451, [1, 1, 1, 3, 23, 43, 57, 177, 0]),
    (463, [1, 3, 7, 7, 17, 17, 37, 71, 0]),
    (487, [1, 3, 1, 5, 27, 63, 123, 213, 0]),
    (501, [1, 1, 3, 5, 11, 43, 53, 133, 0]),
    (529, [1, 3, 5, 5, 29, 17, 47, 173, 479]),
    (539, [1, 3, 3, 11, 3, 1, 109, 9, 69]),
    (545, [1, 1, 1, 5, 17, 39, 23, 5, 343]),
    (557, [1, 3, 1, 5, 25, 15, 31, 103, 499]),
    (563, [1, 1, 1, 11, 11, 17, 63, 105, 183]),
    (601, [1, 1, 5, 11, 9, 29, 97, 231, 363]),
    (607, [1, 1, 5, 15, 19, 45, 41, 7, 383]),
    (617, [1, 3, 7, 7, 31, 19, 83, 137, 221]),
    (623, [1, 1, 1, 3, 23, 15, 111, 223, 83]),
    (631, [1, 1, 5, 13, 31, 15, 55, 25, 161]),
    (637, [1, 1, 3, 13, 25, 47, 39, 87, 257]),
];

/// The 32 direction numbers v_k = m_k · 2^(32-k) of dimension `j`.
fn directions(j: usize) -> [u32; BITS] {
    let (poly, init) = TABLE[j];
    let s = (31 - poly.leading_zeros()) as usize; // the degree
    let mut m = [0u64; BITS + 1]; // m[k], k = 1..=32
    for k in 1..=BITS {
        m[k] = if s == 0 {
            1
        } else if k <= s {
            u64::from(init[k - 1])
        } else {
            // m_k = 2^s m_{k-s} ^ m_{k-s} ^ sum_i a_i 2^i m_{k-i}
            let mut v = (m[k - s] << s) ^ m[k - s];
            for i in 1..s {
                if (poly >> (s - i)) & 1 == 1 {
                    v ^= m[k - i] << i;
                }
            }
            v
        };
    }
    let mut out = [0u32; BITS];
    for (k, o) in out.iter_mut().enumerate() {
        *o = (m[k + 1] << (BITS - 1 - k)) as u32;
    }
    out
}

/// The first `n` Sobol points in `d` dimensions (row-major, n × d, in [0, 1)),
/// each coordinate j XOR-ed with `shift[j]` when given.
pub fn points(n: usize, d: usize, shift: Option<&[u32]>) -> Result<Vec<f64>> {
    if d == 0 || d > MAX_DIM {
        return Err(invalid(format!(
            "Sobol initialisation supports 1 to {MAX_DIM} dimensions, got {d}"
        )));
    }
    if n as u64 > 1u64 << BITS {
        return Err(invalid("too many Sobol points (at most 2^32)"));
    }
    if shift.is_some_and(|s| s.len() != d) {
        return Err(invalid("the Sobol shift needs one word per dimension"));
    }
    let dirs: Vec<[u32; BITS]> = (0..d).map(directions).collect();
    let scale = 1.0 / (1u64 << BITS) as f64;
    let mut x = vec![0u32; d];
    let mut out = Vec::with_capacity(n * d);
    for i in 0..n {
        if i > 0 {
            // Gray code: flip the direction of the lowest zero bit of i - 1.
            let c = (!(i - 1)).trailing_zeros() as usize;
            for (xj, dir) in x.iter_mut().zip(&dirs) {
                *xj ^= dir[c];
            }
        }
        for (j, &xj) in x.iter().enumerate() {
            let w = shift.map_or(xj, |s| xj ^ s[j]);
            out.push(f64::from(w) * scale);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_points_and_limits() {
        let p = points(4, 2, None).unwrap();
        assert_eq!(p, vec![0.0, 0.0, 0.5, 0.5, 0.75, 0.25, 0.25, 0.75]);
        assert!(points(4, MAX_DIM + 1, None).is_err());
        assert!(points(4, 0, None).is_err());
        // Each dimension's first 2^k points are a permutation of the k-bit grid.
        let n = 256;
        let p = points(n, MAX_DIM, None).unwrap();
        for j in 0..MAX_DIM {
            let mut cells: Vec<usize> = (0..n)
                .map(|i| (p[i * MAX_DIM + j] * n as f64) as usize)
                .collect();
            cells.sort_unstable();
            assert!(cells.iter().enumerate().all(|(i, &c)| i == c), "dim {j}");
        }
    }
}
