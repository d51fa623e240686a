//! L-BFGS-B: limited-memory BFGS for bound-constrained minimization, min f(x) s.t. l ≤ x ≤ u.
//!
//! A faithful implementation of Byrd, Lu, Nocedal & Zhu (1995), "A limited memory algorithm for
//! bound constrained optimization", with the subspace step of L-BFGS-B 3.0 (Morales & Nocedal
//! 2011) — the code behind SciPy's `fmin_l_bfgs_b`, which Keskar et al. used for their sharpness
//! metric. Each iteration:
//! 1. the generalized Cauchy point: the first local minimizer of the quadratic model along the
//!    projected steepest-descent path (Byrd et al. §4, algorithm CP);
//! 2. subspace minimization of the model over the variables free at that point (§5.1, direct
//!    primal method), projected onto the box, with the 1995 truncation as fallback when the
//!    projected point is not a descent direction;
//! 3. a Moré–Thuente line search (MINPACK-2 `dcsrch`, ftol 1e-3, gtol 0.9, xtol 0.1, at most 20
//!    evaluations) capped at the largest step that stays in the box;
//! 4. the compact limited-memory update B = θI − W M Wᵀ, W = [Y θS] (Byrd, Nocedal & Schnabel
//!    1994), skipping pairs with sᵀy ≤ ε_mach · (−gᵀs).
//!
//! Every point at which f is evaluated lies inside the box.
//!
//! As in L-BFGS-B 3.0 (the `info ≠ 0` paths of `formt`, `formk` and `lnsrlb` in `mainlb`), a
//! limited-memory matrix that cannot be factorized (numerically singular or not finite), a
//! direction that is not a descent direction, or a failed line search does not end the run: the
//! stored correction pairs are discarded, the iteration restarts from the steepest-descent
//! (Cauchy) step, and [`Solution::memory_resets`] counts it.
//!
//! Degenerate inputs end the run without a panic: a NaN start coordinate or bound, or a lower
//! bound above its upper bound, gives [`Stop::InvalidInput`] without evaluating f; a non-finite f
//! or gradient at the start gives [`Stop::NonFinite`]; a non-finite f or gradient at a trial
//! point of the line search counts as a too-long step (the search steps back), so NaN never
//! enters the iterate and every run ends within `max_iter` iterations and `max_eval`
//! evaluations.

use crate::Objective;

/// Stopping settings; the defaults are SciPy's.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Correction pairs kept (SciPy's `m`).
    pub memory: usize,
    /// Iterations (line searches) at most.
    pub max_iter: usize,
    /// Function evaluations at most.
    pub max_eval: usize,
    /// Stop when (f_k − f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) ≤ factr · ε_mach.
    pub factr: f64,
    /// Stop when the projected gradient's largest component is ≤ pgtol.
    pub pgtol: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { memory: 10, max_iter: 15000, max_eval: 15000, factr: 1e7, pgtol: 1e-5 }
    }
}

/// Why the solver stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// The projected gradient fell below `pgtol`.
    ProjectedGradient,
    /// The relative reduction of f fell below `factr · ε_mach`.
    RelativeReduction,
    /// `max_iter` iterations ran.
    MaxIterations,
    /// `max_eval` evaluations ran.
    MaxEvaluations,
    /// The line search failed with an empty memory (SciPy's ABNORMAL_TERMINATION_IN_LNSRCH).
    LineSearchFailed,
    /// f or its gradient was not finite at the (projected) start point, so there is no descent
    /// direction to follow: the solution is the start point, with that value.
    NonFinite,
    /// The start point had a NaN coordinate, or the box a NaN bound or a lower bound above its
    /// upper bound: f was not evaluated and the solution's `f` is NaN.
    InvalidInput,
}

/// The result: the best point found and how the solver got there.
#[derive(Debug, Clone, PartialEq)]
pub struct Solution {
    /// The final iterate (inside the box).
    pub x: Vec<f64>,
    /// f at `x`.
    pub f: f64,
    /// Iterations completed.
    pub iterations: usize,
    /// Evaluations of f and its gradient.
    pub evaluations: usize,
    /// Largest component of the projected gradient at `x`.
    pub projected_gradient: f64,
    /// Why it stopped.
    pub stop: Stop,
    /// Times the limited memory was discarded and the iteration restarted from the
    /// steepest-descent (Cauchy) step: after a correction pair that left the middle matrix M, or
    /// the matrix of the subspace step, numerically singular or not finite (L-BFGS-B 3.0's
    /// `formt`/`formk` with `info ≠ 0`), after a direction that was not a descent direction, or
    /// after a failed line search with a nonempty memory.
    pub memory_resets: usize,
}

/// Counters of a run, carried into its [`Solution`].
#[derive(Default)]
struct Counts {
    iterations: usize,
    evaluations: usize,
    memory_resets: usize,
}

/// Minimizes `obj` over the box `lower ≤ x ≤ upper` from `x0` (projected onto the box first).
///
/// Bounds may be infinite. A NaN in `x0` or in a bound, or some `lower[i] > upper[i]`, returns
/// [`Stop::InvalidInput`] at once; a non-finite f or gradient at the start returns
/// [`Stop::NonFinite`] after that one evaluation.
///
/// # Panics
/// If the lengths of `x0`, `lower` or `upper` differ from `obj.dim()`.
pub fn minimize(obj: &mut dyn Objective, x0: &[f64], lower: &[f64], upper: &[f64], opts: &Options) -> Solution {
    let n = obj.dim();
    assert!(
        x0.len() == n && lower.len() == n && upper.len() == n,
        "L-BFGS-B: x0, lower and upper must have the objective's dimension {n}"
    );
    let finish = |x: Vec<f64>, f: f64, g: &[f64], counts: &Counts, stop| Solution {
        projected_gradient: projected_gradient_norm(&x, g, lower, upper),
        x,
        f,
        iterations: counts.iterations,
        evaluations: counts.evaluations,
        stop,
        memory_resets: counts.memory_resets,
    };
    // `l <= u` is false for a NaN bound too.
    let valid = lower.iter().zip(upper).all(|(l, u)| l <= u) && !x0.iter().any(|v| v.is_nan());
    if !valid {
        return finish(x0.to_vec(), f64::NAN, &vec![f64::NAN; n], &Counts::default(), Stop::InvalidInput);
    }
    let eps = f64::EPSILON;
    let mut x: Vec<f64> = x0.iter().zip(lower.iter().zip(upper)).map(|(&v, (&l, &u))| v.clamp(l, u)).collect();
    let mut g = vec![0.0; n];
    let mut f = obj.value_grad(&x, &mut g);
    let mut counts = Counts { evaluations: 1, ..Counts::default() };
    if !f.is_finite() || !all_finite(&g) {
        return finish(x, f, &g, &counts, Stop::NonFinite);
    }
    let mut memory = Memory::new(opts.memory);
    if projected_gradient_norm(&x, &g, lower, upper) <= opts.pgtol {
        return finish(x, f, &g, &counts, Stop::ProjectedGradient);
    }
    loop {
        if counts.iterations >= opts.max_iter {
            return finish(x, f, &g, &counts, Stop::MaxIterations);
        }
        if counts.evaluations >= opts.max_eval {
            return finish(x, f, &g, &counts, Stop::MaxEvaluations);
        }
        // Each reset below empties the memory, and with an empty memory none of them can
        // happen again without a return or an accepted step: the loop ends.
        let (xcp, c) = cauchy_point(&x, &g, lower, upper, &memory);
        let Some(xbar) = subspace_minimum(&x, &g, lower, upper, &memory, &xcp, &c) else {
            // The subspace step's matrix is singular (`formk`'s info ≠ 0): refresh the memory
            // and restart the iteration.
            memory.clear();
            counts.memory_resets += 1;
            continue;
        };
        let d: Vec<f64> = xbar.iter().zip(&x).map(|(a, b)| a - b).collect();
        let gd = dot(&g, &d);
        if gd >= 0.0 || gd.is_nan() {
            // Not a descent direction (rounding in the model): restart from steepest descent,
            // as L-BFGS-B does; with an empty memory there is nothing left to try.
            if memory.is_empty() {
                return finish(x, f, &g, &counts, Stop::LineSearchFailed);
            }
            memory.clear();
            counts.memory_resets += 1;
            continue;
        }
        // Largest step along d inside the box (L-BFGS-B's `lnsrlb`): at the first iteration d
        // already ends inside the box, so the step is capped at 1.
        let stpmax = if counts.iterations == 0 { 1.0 } else { max_feasible_step(&x, &d, lower, upper) };
        let budget = (opts.max_eval - counts.evaluations).min(20);
        let search = line_search(obj, &x, f, &d, gd, stpmax, budget, lower, upper);
        counts.evaluations += search.evaluations;
        let Some((stp, xt, ft, gt)) = search.accepted else {
            if memory.is_empty() {
                return finish(x, f, &g, &counts, Stop::LineSearchFailed);
            }
            memory.clear();
            counts.memory_resets += 1;
            continue;
        };
        counts.iterations += 1;
        let s: Vec<f64> = xt.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = gt.iter().zip(&g).map(|(a, b)| a - b).collect();
        let f_old = f;
        (x, f, g) = (xt, ft, gt);
        if projected_gradient_norm(&x, &g, lower, upper) <= opts.pgtol {
            return finish(x, f, &g, &counts, Stop::ProjectedGradient);
        }
        if f_old - f <= opts.factr * eps * f_old.abs().max(f.abs()).max(1.0) {
            return finish(x, f, &g, &counts, Stop::RelativeReduction);
        }
        let sy = dot(&s, &y);
        if sy > eps * (-gd * stp) && !memory.push(s, y, sy) {
            // M cannot be formed (`formt`'s info ≠ 0): refresh the memory; the next iteration
            // starts from the steepest-descent step at the new point.
            memory.clear();
            counts.memory_resets += 1;
        }
    }
}

fn all_finite(v: &[f64]) -> bool {
    v.iter().all(|a| a.is_finite())
}

/// Largest component of the projected gradient P(x − g) − x; NaN when some gradient component
/// is NaN.
///
/// # Panics
/// If `g`, `lower` or `upper` is shorter than `x`.
pub fn projected_gradient_norm(x: &[f64], g: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    let mut norm: f64 = 0.0;
    for i in 0..x.len() {
        if g[i].is_nan() {
            return f64::NAN;
        }
        let gi = if g[i] < 0.0 { (x[i] - upper[i]).max(g[i]) } else { (x[i] - lower[i]).min(g[i]) };
        norm = norm.max(gi.abs());
    }
    norm
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_feasible_step(x: &[f64], d: &[f64], lower: &[f64], upper: &[f64]) -> f64 {
    let mut stpmax: f64 = 1e10;
    for i in 0..x.len() {
        if d[i] < 0.0 {
            let room = lower[i] - x[i];
            stpmax = if room >= 0.0 { 0.0 } else { stpmax.min(room / d[i]) };
        } else if d[i] > 0.0 {
            let room = upper[i] - x[i];
            stpmax = if room <= 0.0 { 0.0 } else { stpmax.min(room / d[i]) };
        }
    }
    stpmax
}

/// The limited-memory matrix B = θI − W M Wᵀ with W = [Y θS] (n × 2k) and
/// M = [[−D, Lᵀ], [L, θ SᵀS]]⁻¹ (Byrd, Nocedal & Schnabel 1994, eq. 3.5).
struct Memory {
    capacity: usize,
    s: Vec<Vec<f64>>,
    y: Vec<Vec<f64>>,
    theta: f64,
    /// M, row-major 2k × 2k.
    m: Vec<f64>,
}

impl Memory {
    fn new(capacity: usize) -> Memory {
        Memory { capacity, s: Vec::new(), y: Vec::new(), theta: 1.0, m: Vec::new() }
    }

    fn is_empty(&self) -> bool {
        self.s.is_empty()
    }

    fn clear(&mut self) {
        *self = Memory::new(self.capacity);
    }

    fn cols(&self) -> usize {
        2 * self.s.len()
    }

    /// Stores the pair (s, y) with sᵀy = `sy` > 0 and forms M; `false` when M cannot be formed
    /// (θ or the middle matrix not finite, or the middle matrix numerically singular), and the
    /// caller must then [`clear`](Memory::clear) the memory.
    fn push(&mut self, s: Vec<f64>, y: Vec<f64>, sy: f64) -> bool {
        if self.capacity == 0 {
            return true;
        }
        let theta = dot(&y, &y) / sy;
        if !(theta.is_finite() && theta > 0.0) {
            return false;
        }
        if self.s.len() == self.capacity {
            self.s.remove(0);
            self.y.remove(0);
        }
        self.theta = theta;
        self.s.push(s);
        self.y.push(y);
        let k = self.s.len();
        let mut middle = vec![0.0; 4 * k * k];
        let w = 2 * k;
        for i in 0..k {
            for j in 0..k {
                let sy_ij = dot(&self.s[i], &self.y[j]);
                if i == j {
                    middle[i * w + j] = -sy_ij; // −D
                }
                if i > j {
                    middle[(k + i) * w + j] = sy_ij; // L
                    middle[j * w + k + i] = sy_ij; // Lᵀ
                }
                middle[(k + i) * w + k + j] = self.theta * dot(&self.s[i], &self.s[j]);
            }
        }
        // In exact arithmetic the middle matrix is nonsingular whenever every sᵀy > 0 (its Schur
        // complement θSᵀS + L D⁻¹ Lᵀ is positive definite); in floating point it can still be
        // singular to working precision, e.g. when the stored steps differ in length by many
        // orders of magnitude.
        match invert(&middle, w) {
            Some(m) if all_finite(&m) => {
                self.m = m;
                true
            }
            _ => false,
        }
    }

    /// Row i of W: (y_1[i], …, y_k[i], θ s_1[i], …, θ s_k[i]).
    fn row(&self, i: usize, out: &mut [f64]) {
        let k = self.s.len();
        for j in 0..k {
            out[j] = self.y[j][i];
            out[k + j] = self.theta * self.s[j][i];
        }
    }

    fn m_times(&self, v: &[f64]) -> Vec<f64> {
        let w = self.cols();
        (0..w).map(|i| dot(&self.m[i * w..(i + 1) * w], v)).collect()
    }
}

/// Generalized Cauchy point (Byrd et al. 1995, algorithm CP) and c = Wᵀ(x_cp − x).
fn cauchy_point(x: &[f64], g: &[f64], lower: &[f64], upper: &[f64], mem: &Memory) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    let w = mem.cols();
    let mut t = vec![f64::INFINITY; n];
    let mut d = vec![0.0; n];
    for i in 0..n {
        if g[i] < 0.0 {
            t[i] = (x[i] - upper[i]) / g[i];
        } else if g[i] > 0.0 {
            t[i] = (x[i] - lower[i]) / g[i];
        }
        if t[i] > 0.0 {
            d[i] = -g[i];
        }
    }
    let mut breaks: Vec<usize> = (0..n).filter(|&i| t[i] > 0.0 && t[i].is_finite()).collect();
    breaks.sort_by(|&a, &b| t[a].total_cmp(&t[b]));

    let mut row = vec![0.0; w];
    let mut p = vec![0.0; w]; // Wᵀ d
    for (i, &di) in d.iter().enumerate() {
        if di != 0.0 {
            mem.row(i, &mut row);
            p.iter_mut().zip(&row).for_each(|(a, r)| *a += r * di);
        }
    }
    let mut c = vec![0.0; w];
    let mut xcp = x.to_vec();
    let dd = dot(&d, &d);
    let mut fp = -dd;
    if fp >= 0.0 {
        return (xcp, c);
    }
    let mp = mem.m_times(&p);
    let mut fpp = mem.theta * dd - dot(&p, &mp);
    let fpp0 = -mem.theta * fp;
    fpp = fpp.max(f64::EPSILON * fpp0);
    let mut dt_min = -fp / fpp;
    let mut t_old = 0.0;
    for &b in &breaks {
        let dt = t[b] - t_old;
        if dt_min < dt {
            break;
        }
        // Variable b reaches its bound: fix it there and update the slope f' and curvature f''.
        let bound = if d[b] > 0.0 { upper[b] } else { lower[b] };
        let zb = bound - x[b];
        xcp[b] = bound;
        c.iter_mut().zip(&p).for_each(|(ci, pi)| *ci += dt * pi);
        let gb = g[b];
        mem.row(b, &mut row);
        let m_row = mem.m_times(&row);
        let m_c = mem.m_times(&c);
        let m_p = mem.m_times(&p);
        fp += dt * fpp + gb * gb + mem.theta * gb * zb - gb * dot(&row, &m_c);
        fpp -= mem.theta * gb * gb + 2.0 * gb * dot(&row, &m_p) + gb * gb * dot(&row, &m_row);
        fpp = fpp.max(f64::EPSILON * fpp0);
        p.iter_mut().zip(&row).for_each(|(pi, r)| *pi += gb * r);
        d[b] = 0.0;
        dt_min = -fp / fpp;
        t_old = t[b];
    }
    let dt_min = dt_min.max(0.0);
    let t_cp = t_old + dt_min;
    for i in 0..n {
        if d[i] != 0.0 {
            xcp[i] = (x[i] + t_cp * d[i]).clamp(lower[i], upper[i]);
        }
    }
    c.iter_mut().zip(&p).for_each(|(ci, pi)| *ci += dt_min * pi);
    (xcp, c)
}

/// Minimizes the quadratic model over the variables free at the Cauchy point (direct primal
/// method, Byrd et al. §5.1), then projects onto the box (L-BFGS-B 3.0), falling back to the
/// largest feasible fraction of the step when the projection is not a descent direction.
/// `None` when the reduced model's matrix is singular to working precision (L-BFGS-B's `formk`
/// failing): the caller resets the memory.
fn subspace_minimum(
    x: &[f64],
    g: &[f64],
    lower: &[f64],
    upper: &[f64],
    mem: &Memory,
    xcp: &[f64],
    c: &[f64],
) -> Option<Vec<f64>> {
    let n = x.len();
    let w = mem.cols();
    let theta = mem.theta;
    let free: Vec<usize> = (0..n).filter(|&i| xcp[i] > lower[i] && xcp[i] < upper[i]).collect();
    if free.is_empty() {
        return Some(xcp.to_vec());
    }
    // Reduced gradient r = Zᵀ(g + θ(x_cp − x) − W M c).
    let mc = if w > 0 { mem.m_times(c) } else { Vec::new() };
    let mut row = vec![0.0; w];
    let mut r = Vec::with_capacity(free.len());
    let mut v = vec![0.0; w]; // Wᵀ Z r
    let mut wzzw = vec![0.0; w * w]; // Wᵀ Z Zᵀ W
    for &i in &free {
        mem.row(i, &mut row);
        let ri = g[i] + theta * (xcp[i] - x[i]) - dot(&row, &mc);
        r.push(ri);
        for a in 0..w {
            v[a] += row[a] * ri;
            for b in 0..w {
                wzzw[a * w + b] += row[a] * row[b];
            }
        }
    }
    let mut dhat: Vec<f64> = r.iter().map(|ri| -ri / theta).collect();
    if w > 0 {
        // v ← N⁻¹ M v with N = I − (1/θ) M Wᵀ Z Zᵀ W; d̂ = −r/θ − Zᵀ W v / θ².
        let mv = mem.m_times(&v);
        let mut big_n = vec![0.0; w * w];
        for a in 0..w {
            for b in 0..w {
                let m_wzzw: f64 = (0..w).map(|k| mem.m[a * w + k] * wzzw[k * w + b]).sum();
                big_n[a * w + b] = if a == b { 1.0 } else { 0.0 } - m_wzzw / theta;
            }
        }
        let ninv = invert(&big_n, w)?;
        let sol: Vec<f64> = (0..w).map(|a| dot(&ninv[a * w..(a + 1) * w], &mv)).collect();
        for (k, &i) in free.iter().enumerate() {
            mem.row(i, &mut row);
            dhat[k] -= dot(&row, &sol) / (theta * theta);
        }
    }
    let mut projected = xcp.to_vec();
    for (k, &i) in free.iter().enumerate() {
        projected[i] = (xcp[i] + dhat[k]).clamp(lower[i], upper[i]);
    }
    let descent: f64 = (0..n).map(|i| (projected[i] - x[i]) * g[i]).sum();
    if descent <= 0.0 {
        return Some(projected);
    }
    // Byrd et al. 1995: the largest α ≤ 1 keeping x_cp + α Z d̂ in the box.
    let mut alpha: f64 = 1.0;
    for (k, &i) in free.iter().enumerate() {
        if dhat[k] < 0.0 {
            alpha = alpha.min((lower[i] - xcp[i]) / dhat[k]);
        } else if dhat[k] > 0.0 {
            alpha = alpha.min((upper[i] - xcp[i]) / dhat[k]);
        }
    }
    let mut truncated = xcp.to_vec();
    for (k, &i) in free.iter().enumerate() {
        truncated[i] = (xcp[i] + alpha * dhat[k]).clamp(lower[i], upper[i]);
    }
    Some(truncated)
}

/// Inverse of a small dense row-major matrix by Gauss–Jordan elimination with partial pivoting;
/// `None` when singular to working precision (a pivot at most 1e-14 times the largest entry) or
/// when an entry is not finite.
pub(crate) fn invert(a: &[f64], n: usize) -> Option<Vec<f64>> {
    let mut m = a.to_vec();
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        inv[i * n + i] = 1.0;
    }
    let scale = a.iter().fold(0.0f64, |s, v| s.max(v.abs())).max(f64::MIN_POSITIVE);
    for col in 0..n {
        let pivot = (col..n).max_by(|&p, &q| m[p * n + col].abs().total_cmp(&m[q * n + col].abs()))?;
        // A NaN pivot fails too, and so does every pivot when some entry is infinite.
        let magnitude = m[pivot * n + col].abs();
        if magnitude.is_nan() || magnitude <= 1e-14 * scale {
            return None;
        }
        for k in 0..n {
            m.swap(col * n + k, pivot * n + k);
            inv.swap(col * n + k, pivot * n + k);
        }
        let p = m[col * n + col];
        for k in 0..n {
            m[col * n + k] /= p;
            inv[col * n + k] /= p;
        }
        for r in 0..n {
            if r != col {
                let factor = m[r * n + col];
                if factor != 0.0 {
                    for k in 0..n {
                        m[r * n + k] -= factor * m[col * n + k];
                        inv[r * n + k] -= factor * inv[col * n + k];
                    }
                }
            }
        }
    }
    Some(inv)
}

struct Search {
    evaluations: usize,
    /// Step, point, value and gradient of an accepted step.
    accepted: Option<(f64, Vec<f64>, f64, Vec<f64>)>,
}

/// Moré–Thuente line search along `d` from `x` (MINPACK-2 `dcsrch` as L-BFGS-B calls it).
#[allow(clippy::too_many_arguments)]
fn line_search(
    obj: &mut dyn Objective,
    x: &[f64],
    f0: f64,
    d: &[f64],
    gd0: f64,
    stpmax: f64,
    budget: usize,
    lower: &[f64],
    upper: &[f64],
) -> Search {
    let mut search = Dcsrch::new(1.0f64.min(stpmax), f0, gd0, 1e-3, 0.9, 0.1, 0.0, stpmax);
    let mut evaluations = 0;
    let mut gt = vec![0.0; x.len()];
    while evaluations < budget {
        let stp = search.stp;
        if !stp.is_finite() {
            break;
        }
        let xt: Vec<f64> = (0..x.len()).map(|i| (x[i] + stp * d[i]).clamp(lower[i], upper[i])).collect();
        let ft = obj.value_grad(&xt, &mut gt);
        evaluations += 1;
        let gdt = dot(&gt, d);
        if !ft.is_finite() || !gdt.is_finite() || !all_finite(&gt) {
            // Step back towards the start, as if the value were huge.
            search.stp = search.stx + 0.5 * (stp - search.stx);
            if search.stp <= 0.0 {
                break;
            }
            continue;
        }
        match search.next(ft, gdt) {
            Task::Done => return Search { evaluations, accepted: Some((stp, xt, ft, gt)) },
            Task::Evaluate => {}
            Task::Error => break,
        }
    }
    Search { evaluations, accepted: None }
}

enum Task {
    Evaluate,
    Done,
    Error,
}

/// State of MINPACK-2's `dcsrch` (Moré & Thuente 1994), after the first trial step.
struct Dcsrch {
    stp: f64,
    gtol: f64,
    xtol: f64,
    stpmin: f64,
    stpmax: f64,
    brackt: bool,
    stage: u8,
    finit: f64,
    ginit: f64,
    gtest: f64,
    width: f64,
    width1: f64,
    stx: f64,
    fx: f64,
    gx: f64,
    sty: f64,
    fy: f64,
    gy: f64,
    stmin: f64,
    stmax: f64,
}

impl Dcsrch {
    #[allow(clippy::too_many_arguments)]
    fn new(stp: f64, f: f64, g: f64, ftol: f64, gtol: f64, xtol: f64, stpmin: f64, stpmax: f64) -> Dcsrch {
        Dcsrch {
            stp,
            gtol,
            xtol,
            stpmin,
            stpmax,
            brackt: false,
            stage: 1,
            finit: f,
            ginit: g,
            gtest: ftol * g,
            width: stpmax - stpmin,
            width1: 2.0 * (stpmax - stpmin),
            stx: 0.0,
            fx: f,
            gx: g,
            sty: 0.0,
            fy: f,
            gy: g,
            stmin: 0.0,
            stmax: stp + 4.0 * stp,
        }
    }

    /// Takes f and its directional derivative at `self.stp`; says whether to stop or sets the
    /// next trial step.
    fn next(&mut self, f: f64, g: f64) -> Task {
        const XTRAPL: f64 = 1.1;
        const XTRAPU: f64 = 4.0;
        let ftest = self.finit + self.stp * self.gtest;
        if self.stage == 1 && f <= ftest && g >= 0.0 {
            self.stage = 2;
        }
        // Warnings end the search with the current step, as in L-BFGS-B.
        if self.brackt && (self.stp <= self.stmin || self.stp >= self.stmax) {
            return Task::Done;
        }
        if self.brackt && self.stmax - self.stmin <= self.xtol * self.stmax {
            return Task::Done;
        }
        if self.stp == self.stpmax && f <= ftest && g <= self.gtest {
            return Task::Done;
        }
        if self.stp == self.stpmin && (f > ftest || g >= self.gtest) {
            return if f <= self.finit { Task::Done } else { Task::Error };
        }
        if f <= ftest && g.abs() <= self.gtol * (-self.ginit) {
            return Task::Done;
        }
        if self.stage == 1 && f <= self.fx && f > ftest {
            // Modified function ψ(α) = f(α) − f(0) − α·ftol·f'(0) (Moré–Thuente §3).
            let mut fxm = self.fx - self.stx * self.gtest;
            let mut fym = self.fy - self.sty * self.gtest;
            let mut gxm = self.gx - self.gtest;
            let mut gym = self.gy - self.gtest;
            let fm = f - self.stp * self.gtest;
            let gm = g - self.gtest;
            dcstep(
                &mut self.stx,
                &mut fxm,
                &mut gxm,
                &mut self.sty,
                &mut fym,
                &mut gym,
                &mut self.stp,
                fm,
                gm,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
            self.fx = fxm + self.stx * self.gtest;
            self.fy = fym + self.sty * self.gtest;
            self.gx = gxm + self.gtest;
            self.gy = gym + self.gtest;
        } else {
            dcstep(
                &mut self.stx,
                &mut self.fx,
                &mut self.gx,
                &mut self.sty,
                &mut self.fy,
                &mut self.gy,
                &mut self.stp,
                f,
                g,
                &mut self.brackt,
                self.stmin,
                self.stmax,
            );
        }
        if self.brackt {
            if (self.sty - self.stx).abs() >= 0.66 * self.width1 {
                self.stp = self.stx + 0.5 * (self.sty - self.stx);
            }
            self.width1 = self.width;
            self.width = (self.sty - self.stx).abs();
            self.stmin = self.stx.min(self.sty);
            self.stmax = self.stx.max(self.sty);
        } else {
            self.stmin = self.stp + XTRAPL * (self.stp - self.stx);
            self.stmax = self.stp + XTRAPU * (self.stp - self.stx);
        }
        self.stp = self.stp.max(self.stpmin).min(self.stpmax);
        if self.brackt
            && (self.stp <= self.stmin || self.stp >= self.stmax || self.stmax - self.stmin <= self.xtol * self.stmax)
        {
            self.stp = self.stx;
        }
        Task::Evaluate
    }
}

/// One safeguarded step of Moré–Thuente (MINPACK-2 `dcstep`): updates the interval of
/// uncertainty [stx, sty] and computes the next trial step by cubic or quadratic interpolation.
#[allow(clippy::too_many_arguments)]
fn dcstep(
    stx: &mut f64,
    fx: &mut f64,
    dx: &mut f64,
    sty: &mut f64,
    fy: &mut f64,
    dy: &mut f64,
    stp: &mut f64,
    fp: f64,
    dp: f64,
    brackt: &mut bool,
    stpmin: f64,
    stpmax: f64,
) {
    let sgnd = dp * (*dx / dx.abs());
    let stpf;
    if fp > *fx {
        // Case 1: higher value; the minimum is bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp < *stx {
            gamma = -gamma;
        }
        let p = (gamma - *dx) + theta;
        let q = ((gamma - *dx) + gamma) + dp;
        let r = p / q;
        let stpc = *stx + r * (*stp - *stx);
        let stpq = *stx + ((*dx / ((*fx - fp) / (*stp - *stx) + *dx)) / 2.0) * (*stp - *stx);
        stpf = if (stpc - *stx).abs() < (stpq - *stx).abs() { stpc } else { stpc + (stpq - stpc) / 2.0 };
        *brackt = true;
    } else if sgnd < 0.0 {
        // Case 2: lower value, derivatives of opposite sign; bracketed.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = ((gamma - dp) + gamma) + *dx;
        let r = p / q;
        let stpc = *stp + r * (*stx - *stp);
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        stpf = if (stpc - *stp).abs() > (stpq - *stp).abs() { stpc } else { stpq };
        *brackt = true;
    } else if dp.abs() < dx.abs() {
        // Case 3: lower value, same sign, derivative decreasing in magnitude.
        let theta = 3.0 * (*fx - fp) / (*stp - *stx) + *dx + dp;
        let s = theta.abs().max(dx.abs()).max(dp.abs());
        let mut gamma = s * ((theta / s).powi(2) - (*dx / s) * (dp / s)).max(0.0).sqrt();
        if *stp > *stx {
            gamma = -gamma;
        }
        let p = (gamma - dp) + theta;
        let q = (gamma + (*dx - dp)) + gamma;
        let r = p / q;
        let stpc = if r < 0.0 && gamma != 0.0 {
            *stp + r * (*stx - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
        let stpq = *stp + (dp / (dp - *dx)) * (*stx - *stp);
        if *brackt {
            let mut v = if (stpc - *stp).abs() < (stpq - *stp).abs() { stpc } else { stpq };
            v = if *stp > *stx { v.min(*stp + 0.66 * (*sty - *stp)) } else { v.max(*stp + 0.66 * (*sty - *stp)) };
            stpf = v;
        } else {
            let v = if (stpc - *stp).abs() > (stpq - *stp).abs() { stpc } else { stpq };
            stpf = v.min(stpmax).max(stpmin);
        }
    } else {
        // Case 4: lower value, same sign, derivative not decreasing.
        stpf = if *brackt {
            let theta = 3.0 * (fp - *fy) / (*sty - *stp) + *dy + dp;
            let s = theta.abs().max(dy.abs()).max(dp.abs());
            let mut gamma = s * ((theta / s).powi(2) - (*dy / s) * (dp / s)).max(0.0).sqrt();
            if *stp > *sty {
                gamma = -gamma;
            }
            let p = (gamma - dp) + theta;
            let q = ((gamma - dp) + gamma) + *dy;
            let r = p / q;
            *stp + r * (*sty - *stp)
        } else if *stp > *stx {
            stpmax
        } else {
            stpmin
        };
    }
    if fp > *fx {
        *sty = *stp;
        *fy = fp;
        *dy = dp;
    } else {
        if sgnd < 0.0 {
            *sty = *stx;
            *fy = *fx;
            *dy = *dx;
        }
        *stx = *stp;
        *fx = fp;
        *dx = dp;
    }
    *stp = stpf;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quadratic;

    /// Wraps an objective and records whether any evaluation left the box.
    struct Watched<'a> {
        inner: &'a mut dyn Objective,
        lower: Vec<f64>,
        upper: Vec<f64>,
        outside: usize,
    }

    impl Objective for Watched<'_> {
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            if x.iter().zip(self.lower.iter().zip(&self.upper)).any(|(v, (l, u))| v < l || v > u) {
                self.outside += 1;
            }
            self.inner.value_grad(x, grad)
        }
    }

    struct Rosenbrock;

    impl Objective for Rosenbrock {
        fn dim(&self) -> usize {
            2
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            let (a, b) = (x[0], x[1]);
            grad[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            grad[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        }
    }

    #[test]
    fn unconstrained_rosenbrock_reaches_the_minimum() {
        let big = vec![1e10; 2];
        let neg: Vec<f64> = big.iter().map(|v| -v).collect();
        let sol = minimize(&mut Rosenbrock, &[-1.2, 1.0], &neg, &big, &Options::default());
        assert!((sol.x[0] - 1.0).abs() < 1e-4 && (sol.x[1] - 1.0).abs() < 1e-4, "{sol:?}");
        assert!(sol.iterations < 100, "{sol:?}");
    }

    #[test]
    fn bounded_rosenbrock_stops_on_the_active_bound() {
        // On x₀ ≤ 0.5 the minimizer is x₀ = 0.5, x₁ = x₀² = 0.25 (the valley floor): the KKT point
        // with ∂f/∂x₀ = −2(1 − 0.5) < 0 pushing against the bound.
        let sol = minimize(&mut Rosenbrock, &[-1.2, 1.0], &[-2.0, -2.0], &[0.5, 2.0], &Options::default());
        assert!((sol.x[0] - 0.5).abs() < 1e-9, "{sol:?}");
        assert!((sol.x[1] - 0.25).abs() < 1e-5, "{sol:?}");
        assert_eq!(sol.stop, Stop::ProjectedGradient);
    }

    #[test]
    fn box_constrained_quadratic_matches_projected_gradient_reference() {
        // A coupled convex quadratic whose unconstrained minimum lies outside the box; the
        // reference is projected gradient descent with step 1/L run to a fixed point.
        let n = 6;
        let mut h = vec![0.0; n * n];
        for i in 0..n {
            h[i * n + i] = 2.0 + i as f64;
            if i + 1 < n {
                h[i * n + i + 1] = 0.7;
                h[(i + 1) * n + i] = 0.7;
            }
        }
        let center = vec![3.0, -2.0, 0.5, 4.0, -5.0, 0.1];
        let mut q = Quadratic { h, center };
        let lower = vec![-1.0; n];
        let upper = vec![1.0; n];
        let mut reference = vec![0.0; n];
        let mut g = vec![0.0; n];
        for _ in 0..100_000 {
            q.value_grad(&reference, &mut g);
            for ((r, gi), (l, u)) in reference.iter_mut().zip(&g).zip(lower.iter().zip(&upper)) {
                *r = (*r - gi / 10.0).clamp(*l, *u);
            }
        }
        let mut watched = Watched { inner: &mut q, lower: lower.clone(), upper: upper.clone(), outside: 0 };
        let sol = minimize(&mut watched, &vec![0.0; n], &lower, &upper, &Options::default());
        assert_eq!(watched.outside, 0, "L-BFGS-B evaluated f outside the box");
        for (i, (x, r)) in sol.x.iter().zip(&reference).enumerate() {
            assert!((x - r).abs() < 1e-6, "coordinate {i}: {x} vs {r}");
        }
    }

    #[test]
    fn maximizing_a_convex_quadratic_finds_the_far_corner_and_stays_inside() {
        // max ½ Σ hᵢ (zᵢ − cᵢ)² over |zᵢ| ≤ bᵢ is at zᵢ = −sign(cᵢ) bᵢ.
        struct Negated(Quadratic);
        impl Objective for Negated {
            fn dim(&self) -> usize {
                self.0.dim()
            }
            fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
                let v = self.0.value_grad(x, grad);
                grad.iter_mut().for_each(|g| *g = -*g);
                -v
            }
        }
        let eig = [1.0, 10.0, 100.0, 0.5];
        let mut q = Quadratic::diagonal(&eig);
        q.center = vec![1e-4, -2e-4, 3e-5, -1e-6];
        let b = [0.01, 0.02, 0.005, 0.03];
        let lower: Vec<f64> = b.iter().map(|v| -v).collect();
        let upper = b.to_vec();
        let mut neg = Negated(q.clone());
        let mut watched = Watched { inner: &mut neg, lower: lower.clone(), upper: upper.clone(), outside: 0 };
        let sol = minimize(&mut watched, &[0.0; 4], &lower, &upper, &Options { max_iter: 10, ..Options::default() });
        assert_eq!(watched.outside, 0);
        let best: f64 = (0..4).map(|i| 0.5 * eig[i] * (b[i] + q.center[i].abs()).powi(2)).sum();
        assert!((-sol.f - best).abs() < 1e-12, "{} vs {best}", -sol.f);
    }

    #[test]
    fn a_middle_matrix_singular_to_working_precision_is_refused() {
        // Two pairs whose curvatures sᵀy differ by 1e15: the middle matrix
        // diag(−1e15, −1, θ, θ) with θ = 1 has a pivot below 1e-14 of its largest entry.
        let mut memory = Memory::new(5);
        assert!(memory.push(vec![1.0, 0.0], vec![1e15, 0.0], 1e15));
        assert!(!memory.push(vec![0.0, 1.0], vec![0.0, 1.0], 1.0));
        // Pairs that do not give a finite θ are refused too.
        let mut memory = Memory::new(5);
        assert!(!memory.push(vec![1.0, 0.0], vec![f64::INFINITY, 0.0], f64::INFINITY));
        assert!(!memory.push(vec![1.0, 0.0], vec![f64::NAN, 0.0], 1.0));
    }

    #[test]
    fn a_singular_middle_matrix_resets_the_memory_and_the_solver_still_converges() {
        // Curvatures 1e12, 1 and 1/2: the first step is along the stiff axis and the next ones
        // along the soft axes, and the pairs' sᵀy then differ by more than the 1e14 that the
        // middle matrix's factorization tolerates (this panicked before the reset was added).
        // The minimizer over the box [−1, 2]³ is the centre clamped: (0.3, 1.3, 2).
        let mut q = Quadratic::diagonal(&[1e12, 1.0, 0.5]);
        q.center = vec![0.3, 1.3, 2.3];
        let (lower, upper) = (vec![-1.0; 3], vec![2.0; 3]);
        let mut watched = Watched { inner: &mut q, lower: lower.clone(), upper: upper.clone(), outside: 0 };
        let sol = minimize(&mut watched, &[-1.0; 3], &lower, &upper, &Options::default());
        assert_eq!(watched.outside, 0, "L-BFGS-B evaluated f outside the box");
        assert!(sol.memory_resets >= 1, "{sol:?}");
        assert_eq!(sol.stop, Stop::ProjectedGradient, "{sol:?}");
        for (x, expected) in sol.x.iter().zip([0.3, 1.3, 2.0]) {
            assert!((x - expected).abs() < 1e-6, "{sol:?}");
        }
        assert!((sol.f - 0.5 * 0.5 * 0.3 * 0.3).abs() < 1e-10, "{sol:?}");
    }

    /// f(x) = (3/2)‖x‖², except that the gradient, and the value unless `nan_gradient_only`, are
    /// NaN once `nan_after` evaluations are done and wherever x₀ > `wall`.
    struct Poisoned {
        evaluations: usize,
        nan_after: usize,
        wall: f64,
        nan_gradient_only: bool,
        poisoned: usize,
    }

    impl Poisoned {
        fn new(nan_after: usize, wall: f64, nan_gradient_only: bool) -> Poisoned {
            Poisoned { evaluations: 0, nan_after, wall, nan_gradient_only, poisoned: 0 }
        }
    }

    impl Objective for Poisoned {
        fn dim(&self) -> usize {
            2
        }
        fn value_grad(&mut self, x: &[f64], grad: &mut [f64]) -> f64 {
            self.evaluations += 1;
            let poisoned = self.evaluations > self.nan_after || x[0] > self.wall;
            self.poisoned += usize::from(poisoned);
            grad.iter_mut().zip(x).for_each(|(g, v)| *g = if poisoned { f64::NAN } else { 3.0 * v });
            if poisoned && !self.nan_gradient_only { f64::NAN } else { 1.5 * x.iter().map(|v| v * v).sum::<f64>() }
        }
    }

    #[test]
    fn a_nan_objective_ends_the_run_without_nan_iterates() {
        let (lower, upper) = (vec![-10.0; 2], vec![10.0; 2]);
        // NaN at the start: nothing to minimize.
        let mut obj = Poisoned::new(0, f64::INFINITY, false);
        let sol = minimize(&mut obj, &[3.0, 4.0], &lower, &upper, &Options::default());
        assert_eq!((sol.stop, sol.evaluations, obj.evaluations), (Stop::NonFinite, 1, 1), "{sol:?}");
        assert_eq!(sol.x, vec![3.0, 4.0]);
        // A finite value with a NaN gradient at the start is no better.
        let mut obj = Poisoned::new(0, f64::INFINITY, true);
        let sol = minimize(&mut obj, &[3.0, 4.0], &lower, &upper, &Options::default());
        assert_eq!(sol.stop, Stop::NonFinite, "{sol:?}");
        // NaN everywhere after the first evaluation: every trial step fails, the run ends at the
        // start point with a finite value, within the evaluation budget.
        for nan_gradient_only in [false, true] {
            let mut obj = Poisoned::new(1, f64::INFINITY, nan_gradient_only);
            let sol = minimize(&mut obj, &[3.0, 4.0], &lower, &upper, &Options::default());
            assert_eq!(sol.stop, Stop::LineSearchFailed, "{sol:?}");
            assert_eq!(sol.x, vec![3.0, 4.0]);
            assert_eq!(sol.f, 37.5);
            assert!(sol.evaluations <= 21 && sol.evaluations == obj.evaluations, "{sol:?}");
        }
        // NaN beyond the wall x₀ = 1: the first trial step from (−3, 4), to (6, −8), lands past
        // it; the line search steps back and the run still reaches the minimizer 0.
        let mut obj = Poisoned::new(usize::MAX, 1.0, false);
        let sol = minimize(&mut obj, &[-3.0, 4.0], &lower, &upper, &Options::default());
        assert!(obj.poisoned > 0, "the test should reach the NaN region");
        assert!(sol.f.is_finite() && sol.x.iter().all(|v| v.abs() < 1e-5), "{sol:?}");
    }

    #[test]
    fn invalid_boxes_and_starts_return_without_evaluating() {
        let mut q = Quadratic::diagonal(&[1.0, 2.0]);
        for (x0, lower, upper) in [
            ([0.0, 0.0], [1.0, -1.0], [-1.0, 1.0]),      // lower > upper
            ([0.0, 0.0], [f64::NAN, -1.0], [1.0, 1.0]),  // NaN bound
            ([f64::NAN, 0.0], [-1.0, -1.0], [1.0, 1.0]), // NaN start
        ] {
            let sol = minimize(&mut q, &x0, &lower, &upper, &Options::default());
            assert_eq!((sol.stop, sol.evaluations, sol.iterations), (Stop::InvalidInput, 0, 0), "{sol:?}");
            assert!(sol.f.is_nan());
        }
        // Zero dimension, infinite bounds, an empty box {c}: all well defined.
        let mut empty = Quadratic::diagonal(&[]);
        let sol = minimize(&mut empty, &[], &[], &[], &Options::default());
        assert_eq!((sol.stop, sol.f), (Stop::ProjectedGradient, 0.0));
        let sol = minimize(&mut q, &[3.0, -2.0], &[f64::NEG_INFINITY; 2], &[f64::INFINITY; 2], &Options::default());
        assert!(sol.x.iter().all(|v| v.abs() < 1e-6), "{sol:?}");
        let sol = minimize(&mut q, &[3.0, -2.0], &[0.5, 0.5], &[0.5, 0.5], &Options::default());
        assert_eq!((sol.x, sol.stop), (vec![0.5, 0.5], Stop::ProjectedGradient));
    }
}
