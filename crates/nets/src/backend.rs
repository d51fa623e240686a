//! The Burn backend a run uses, chosen at run time among those compiled in.

use std::fmt;
use std::str::FromStr;

use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A Burn execution backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Pure-Rust CPU backend (Burn's default CPU backend since 0.22).
    Flex,
    /// The deprecated burn-ndarray CPU backend.
    Ndarray,
    /// wgpu (Vulkan, Metal, DirectX or WebGPU).
    Wgpu,
    /// CUDA.
    Cuda,
}

impl Backend {
    /// Every backend flatland knows, compiled in or not.
    pub const ALL: [Backend; 4] = [Backend::Flex, Backend::Ndarray, Backend::Wgpu, Backend::Cuda];

    /// Name used on the command line and in records.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Flex => "flex",
            Backend::Ndarray => "ndarray",
            Backend::Wgpu => "wgpu",
            Backend::Cuda => "cuda",
        }
    }

    /// Cargo feature that compiles this backend in.
    pub fn is_compiled(self) -> bool {
        match self {
            Backend::Flex => cfg!(feature = "flex"),
            Backend::Ndarray => cfg!(feature = "ndarray"),
            Backend::Wgpu => cfg!(feature = "wgpu"),
            Backend::Cuda => cfg!(feature = "cuda"),
        }
    }

    /// The backends compiled into this build.
    pub fn compiled() -> Vec<Backend> {
        Self::ALL.into_iter().filter(|b| b.is_compiled()).collect()
    }

    /// The device (without autodiff) of this backend, or `None` when it is not compiled in.
    #[allow(unreachable_code)]
    pub fn device(self) -> Option<Device> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Some(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)] // kept selectable on purpose: the issue asks for it
            Backend::Ndarray => Some(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Some(Device::wgpu(Default::default())),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Some(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|b| b.name()).collect();
            format!("unknown backend '{s}'; accepted: {}", names.join(", "))
        })
    }
}

/// Whether `device` computes f64 `exp` and `log` correctly (to 1e-12). The f64 objective needs
/// both (softmax cross-entropy). On wgpu over Vulkan they are not: SPIR-V's GLSL.std.450 `Exp`
/// and `Log` are defined for 16- and 32-bit floats only, and lavapipe returns wrong values for
/// f64 operands (`crates/nets/tests/wgpu.rs` shows which operations differ from flex).
pub fn exact_f64_exp_log(device: &Device) -> bool {
    let x = [0.5f64, 2.0];
    let t = Tensor::<1>::from_data(TensorData::new(x.to_vec(), [2]), device).cast(burn::tensor::DType::F64);
    let read = |t: Tensor<1>| t.into_data().convert::<f64>().try_to_vec::<f64>().unwrap_or_default();
    let (exp, log) = (read(t.clone().exp()), read(t.log()));
    let close = |got: &[f64], want: fn(f64) -> f64| {
        got.len() == x.len() && got.iter().zip(x).all(|(g, v)| (g - want(v)).abs() <= 1e-12 * want(v).abs().max(1.0))
    };
    close(&exp, f64::exp) && close(&log, f64::ln)
}

/// A timer of an n × n single-precision matrix multiply on `device`: after one untimed
/// multiply, each call times one more and gives its GFLOP/s (the threads are those of the
/// current rayon pool).
pub fn matmul_timer(n: usize, device: &Device) -> impl FnMut() -> f64 + use<> {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let mut random = || {
        Tensor::<2>::from_data(
            TensorData::new((0..n * n).map(|_| rng.random_range(-1.0f32..1.0)).collect::<Vec<f32>>(), [n, n]),
            device,
        )
    };
    let (a, b) = (random(), random());
    let _ = a.clone().matmul(b.clone()).into_data();
    move || {
        let start = std::time::Instant::now();
        let _ = a.clone().matmul(b.clone()).into_data();
        2.0 * (n as f64).powi(3) / start.elapsed().as_secs_f64() / 1e9
    }
}

/// The choices Burn's CPU kernels make at run time from the machine, which a record must carry
/// because they change results in the last bits: the SIMD level that flex's and ndarray's
/// element-wise and reduction kernels dispatch to (crate `macerator`: V4 = AVX-512, V3 = AVX2 +
/// FMA), and the caches as the `gemm` crate sees them, from which it derives its blocking (and
/// so the order in which each dot product is summed). gemm's own micro-kernel is AVX2 + FMA on
/// every x86-64 CPU that has them: its AVX-512 kernel needs the `x86-v4` feature, which this
/// build does not enable.
pub fn kernel_dispatch() -> Vec<String> {
    let caches = gemm_common::cache::CACHE_INFO
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!("L{} {} B, {}-way, {} B lines", i + 1, c.cache_bytes, c.associativity, c.cache_line_bytes)
        })
        .collect::<Vec<_>>()
        .join("; ");
    vec![simd_level(), format!("gemm blocking from caches: {caches}")]
}

#[cfg(target_arch = "x86_64")]
fn simd_level() -> String {
    format!("element-wise SIMD level (macerator): {:?}", macerator::Arch::detect())
}

#[cfg(not(target_arch = "x86_64"))]
fn simd_level() -> String {
    format!("element-wise SIMD level (macerator): default for {}", std::env::consts::ARCH)
}
