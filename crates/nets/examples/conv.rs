// scratch: time conv pieces of C1 on flex
use burn::tensor::{Device, Distribution, Tensor};
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
fn time(name: &str, f: impl Fn()) {
    f();
    let t = std::time::Instant::now();
    for _ in 0..3 { f(); }
    println!("{name}: {:.1} ms", t.elapsed().as_secs_f64() * 1000.0 / 3.0);
}
fn main() {
    let threads: usize = std::env::args().nth(1).unwrap().parse().unwrap();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    pool.install(|| {
        let d = Device::flex();
        for (cin, hw) in [(3usize, 32usize), (64, 16)] {
            let n = 256;
            let x = Tensor::<4>::random([n, cin, hw, hw], Distribution::Normal(0.0, 1.0), &d);
            let w = Tensor::<4>::random([64, cin, 5, 5], Distribution::Normal(0.0, 1.0), &d);
            let dy = Tensor::<4>::random([n, 64, hw, hw], Distribution::Normal(0.0, 1.0), &d);
            let opt = ConvOptions::new([1, 1], [2, 2], [1, 1], 1);
            let flops = 2.0 * (n * 64 * cin * 25 * hw * hw) as f64;
            println!("cin {cin} hw {hw}: {:.2} GFLOP per conv", flops / 1e9);
            time("forward", || { let _ = conv2d(x.clone(), w.clone(), None, opt.clone()).into_data(); });
            time("weight grad (Burn: swapped conv)", || {
                let _ = conv2d(x.clone().swap_dims(0, 1), dy.clone().swap_dims(0, 1), None, opt.clone()).swap_dims(0, 1).into_data();
            });
            time("matmul of same flops (64 x 1600 x n*hw*hw)", || {
                let a = Tensor::<2>::ones([64, n * hw * hw], &d);
                let b = Tensor::<2>::ones([n * hw * hw, cin * 25], &d);
                let _ = a.matmul(b).into_data();
            });
        }
    });
}
