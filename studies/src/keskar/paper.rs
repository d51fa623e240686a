//! Keskar et al. 2017's published numbers, beside which every table prints ours: Table 1's data,
//! Table 2's accuracies, Tables 3 and 4's sharpness (the paper's means).

use super::Regime;

/// Where each paper-scale network's data comes from (Keskar Table 1).
pub const PAPER_DATA: [(&str, &str); 6] = [
    ("F1", "MNIST"),
    ("F2", "TIMIT frame features (user-supplied)"),
    ("C1", "CIFAR-10"),
    ("C2", "CIFAR-10"),
    ("C3", "CIFAR-100"),
    ("C4", "CIFAR-100"),
];

/// Keskar Table 2, mean accuracies (%): train SB, train LB, test SB, test LB.
pub const PAPER_TABLE2: [(&str, [f64; 4]); 6] = [
    ("F1", [99.66, 99.92, 98.03, 97.81]),
    ("F2", [99.99, 98.35, 64.02, 59.45]),
    ("C1", [99.89, 99.66, 80.04, 77.26]),
    ("C2", [99.99, 99.99, 89.24, 87.26]),
    ("C3", [99.56, 99.88, 49.58, 46.45]),
    ("C4", [99.10, 99.57, 63.08, 57.81]),
];

/// Keskar Table 3 (A = I) and Table 4 (p = 100): mean sharpness SB ε=1e-3, LB ε=1e-3,
/// SB ε=5e-4, LB ε=5e-4.
pub const PAPER_TABLE3: [(&str, [f64; 4]); 6] = [
    ("F1", [1.23, 205.14, 0.61, 42.90]),
    ("F2", [1.39, 310.64, 0.90, 93.15]),
    ("C1", [28.58, 707.23, 7.08, 227.31]),
    ("C2", [8.68, 925.32, 2.07, 175.31]),
    ("C3", [29.85, 258.75, 8.56, 105.11]),
    ("C4", [12.83, 421.84, 4.07, 109.35]),
];
// C2's LB value at ε = 5e-4 is 6.28 in the paper, not 2π.
#[allow(clippy::approx_constant)]
pub const PAPER_TABLE4: [(&str, [f64; 4]); 6] = [
    ("F1", [0.11, 9.22, 0.05, 9.17]),
    ("F2", [0.29, 23.63, 0.05, 6.28]),
    ("C1", [2.18, 137.25, 0.71, 29.50]),
    ("C2", [0.95, 25.09, 0.31, 5.82]),
    ("C3", [17.02, 236.03, 4.03, 86.96]),
    ("C4", [6.05, 72.99, 1.89, 19.85]),
];

/// The paper's mean sharpness for `net`, `regime` and ε (1e-3 or 5e-4) from `table`.
pub fn paper_sharpness(table: &[(&str, [f64; 4]); 6], net: &str, regime: Regime, epsilon: f64) -> Option<f64> {
    let (_, v) = table.iter().find(|(n, _)| *n == net)?;
    let col = match (regime, epsilon) {
        (Regime::SB, 1e-3) => 0,
        (Regime::LB, 1e-3) => 1,
        (Regime::SB, 5e-4) => 2,
        (Regime::LB, 5e-4) => 3,
        _ => return None,
    };
    Some(v[col])
}

/// The paper's (train, test) accuracy for `net` in `regime`, if it reports that net.
pub fn paper_row(net: &str, regime: Regime) -> Option<(f64, f64)> {
    let (_, v) = PAPER_TABLE2.iter().find(|(n, _)| *n == net)?;
    Some(match regime {
        Regime::SB => (v[0], v[2]),
        Regime::LB => (v[1], v[3]),
    })
}

