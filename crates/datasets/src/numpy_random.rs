//! NumPy's legacy `RandomState` stream, draw for draw: the generator the MNIST-1D authors made
//! their frozen split with (`np.random.seed(42)`, then `rand`, `randn`, `choice` and
//! `permutation`).
//!
//! Hand-written because no maintained crate reproduces NumPy's *derived* legacy draws; the
//! Mersenne Twister itself is `rand_mt`'s (`init_genrand` seeding, tested against its
//! published outputs). Each method below transcribes the C routine NumPy's legacy path calls
//! (`numpy/random/src/legacy/legacy-distributions.c`, `distributions.c`), named in its doc.

use rand_mt::Mt;

/// NumPy's `RandomState` seeded with an integer: MT19937 plus the cached second Gaussian of
/// the polar method.
#[derive(Debug, Clone)]
pub struct RandomState {
    mt: Mt,
    /// The second value of the last polar pair, returned by the next Gaussian draw.
    cached_gauss: Option<f64>,
}

impl RandomState {
    /// `np.random.seed(seed)`: MT19937's `init_genrand(seed)`, no cached Gaussian.
    pub fn new(seed: u32) -> RandomState {
        RandomState { mt: Mt::new(seed), cached_gauss: None }
    }

    /// The next raw 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        self.mt.next_u32()
    }

    /// `random_sample()` / `rand()`: 53 random bits from two outputs (`mt19937_next_double`).
    pub fn random_sample(&mut self) -> f64 {
        let a = (self.next_u32() >> 5) as f64;
        let b = (self.next_u32() >> 6) as f64;
        (a * 67_108_864.0 + b) / 9_007_199_254_740_992.0
    }

    /// `randn()`: the polar Box–Muller method, which makes two values per accepted pair and
    /// returns the second on the next call (`legacy_gauss`).
    pub fn gauss(&mut self) -> f64 {
        if let Some(g) = self.cached_gauss.take() {
            return g;
        }
        loop {
            let x1 = 2.0 * self.random_sample() - 1.0;
            let x2 = 2.0 * self.random_sample() - 1.0;
            let r2 = x1 * x1 + x2 * x2;
            if r2 < 1.0 && r2 != 0.0 {
                let f = (-2.0 * r2.ln() / r2).sqrt();
                self.cached_gauss = Some(f * x1);
                return f * x2;
            }
        }
    }

    /// A uniform integer in `0..=max` by masked rejection: draw 32 bits, keep the lowest bits
    /// up to `max`'s highest, retry above `max` (`random_interval`, and `randint`'s legacy
    /// masked path for ranges below 2³²). `randint(0, n)` and `choice(n)` are `interval(n − 1)`.
    pub fn interval(&mut self, max: u32) -> u32 {
        if max == 0 {
            return 0;
        }
        let mask = u32::MAX >> max.leading_zeros();
        loop {
            let v = self.next_u32() & mask;
            if v <= max {
                return v;
            }
        }
    }

    /// `shuffle(x)` of a 1-D array: Fisher–Yates from the last position down.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.interval(i as u32) as usize;
            x.swap(i, j);
        }
    }

    /// `permutation(n)`: `arange(n)` shuffled.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut p: Vec<usize> = (0..n).collect();
        self.shuffle(&mut p);
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MT19937 seeded by `init_genrand(5489)` (C++'s `std::mt19937` default): first output
    /// 3499211612, 10,000th output 4123659995 (the C++ standard's check value).
    #[test]
    fn mersenne_twister_matches_its_reference_outputs() {
        let mut r = RandomState::new(5489);
        assert_eq!(r.next_u32(), 3_499_211_612);
        for _ in 1..9_999 {
            r.next_u32();
        }
        assert_eq!(r.next_u32(), 4_123_659_995);
    }

    /// Values NumPy prints: `np.random.seed(42); np.random.rand()` = 0.3745401188473625;
    /// `np.random.seed(42); np.random.randn(2)` = [0.4967141530112327, -0.13826430117118466];
    /// `np.random.seed(0); np.random.rand()` = 0.5488135039273248.
    #[test]
    fn uniform_and_gaussian_draws_match_numpy() {
        assert_eq!(RandomState::new(42).random_sample(), 0.3745401188473625);
        assert_eq!(RandomState::new(0).random_sample(), 0.5488135039273248);
        let mut r = RandomState::new(42);
        assert_eq!(r.gauss(), 0.4967141530112327);
        assert_eq!(r.gauss(), -0.13826430117118466);
    }

    /// `np.random.seed(42); np.random.permutation(10)` = [8, 1, 5, 0, 7, 2, 9, 4, 3, 6];
    /// `np.random.seed(42); np.random.randint(0, 48, 5)` = [38, 28, 14, 42, 7].
    #[test]
    fn integer_draws_match_numpy() {
        assert_eq!(RandomState::new(42).permutation(10), vec![8, 1, 5, 0, 7, 2, 9, 4, 3, 6]);
        let mut r = RandomState::new(42);
        let draws: Vec<u32> = (0..5).map(|_| r.interval(47)).collect();
        assert_eq!(draws, vec![38, 28, 14, 42, 7]);
    }
}
