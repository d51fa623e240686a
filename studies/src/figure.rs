//! What the figure studies share (Figures 4–6, the 2-D landscape, the optimizers): their flags,
//! the networks and data of the chosen scale, loaded and checked before any training, and the
//! grid options.

use std::path::PathBuf;

use anyhow::Result;
use datasets::Dataset;
use nets::train::{NetSpec, TrainConfig};

use crate::data::{DataDir, DataSpec};
use crate::harness::{self, GridArgs};
use crate::scale::{Scale, ScaleSpec, scale_spec};
use crate::usage;

/// Arguments shared by the figure studies (Figures 4–6, the 2-D landscape), which reuse this
/// study's networks and data at the small scales.
#[derive(clap::Args, Debug)]
pub struct FigureArgs {
    /// `smoke` (seconds, for tests) or `default` (generated MNIST-1D, minutes).
    #[arg(long, value_enum, default_value_t = Scale::Default)]
    pub scale: Scale,
    /// Networks, comma-separated (F1, F2, C1, C2) [default: the figure's own].
    #[arg(long, value_delimiter = ',')]
    pub nets: Option<Vec<String>>,
    /// Seeds per point [default: the figure's own].
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Train on this data instead of the scale's own (networks adapt to its shape): mnist1d,
    /// mnist1d-frozen, mnist, fashion-mnist, cifar-10, cifar-10-subset, cifar-100, optdigits, timit, npy:DIR.
    #[arg(long, value_parser = crate::data::data_name)]
    pub data: Option<String>,
    /// Folder holding real datasets [default: $FLATLAND_DATA, else the platform cache folder].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub grid: GridArgs,
}

/// What a figure study needs: its networks with their data loaded, the scale's settings, the
/// device and the grid options.
pub struct FigureSetup {
    /// (name, network, data) of each chosen network.
    pub nets: Vec<(String, NetSpec, DataSpec)>,
    /// Every dataset the networks use.
    pub data: Vec<(DataSpec, Dataset)>,
    /// The scale's batch sizes, epochs and step size.
    pub scale: ScaleSpec,
    /// Seeds per point.
    pub seeds: usize,
    /// Where the tensors live.
    pub device: nets::Device,
    /// How the grid runs.
    pub opts: harness::GridOptions,
}

impl FigureSetup {
    /// Validates `args` (the figures exist at the smoke and default scales) and loads the data.
    pub fn new(args: &FigureArgs, default_nets: &[&str], default_seeds: usize) -> Result<FigureSetup> {
        if args.scale == Scale::Paper {
            usage!("--scale paper: this figure runs at the small scales only; accepted: smoke, default");
        }
        let scale = scale_spec(args.scale);
        let known: Vec<&str> = scale.nets.iter().map(|(n, ..)| *n).collect();
        let given: Vec<String> = match &args.nets {
            Some(list) => list.iter().map(|n| n.trim().to_string()).collect(),
            None => default_nets.iter().map(|s| s.to_string()).collect(),
        };
        let mut nets = Vec::new();
        for n in &given {
            match scale.nets.iter().find(|(k, ..)| k.eq_ignore_ascii_case(n)) {
                Some((k, spec, data)) => nets.push((k.to_string(), spec.clone(), data.clone())),
                None => usage!("--nets: unknown network '{n}'; accepted: {}", known.join(", ")),
            }
        }
        if nets.is_empty() {
            usage!("--nets: no network given; accepted: {}", known.join(", "));
        }
        let seeds = args.seeds.unwrap_or(default_seeds);
        if seeds == 0 {
            usage!("--seeds 0: at least one seed is needed (accepted: 1 or more)");
        }
        let (backend, device, jobs) = args.grid.validate()?;
        let dir = DataDir::resolve(args.data_dir.as_deref());
        let (nets, data) = crate::data::on_data(nets, args.data.as_deref(), &dir)?;
        let env = crate::env::Env::capture(backend, &device, jobs).with_datasets(&data, &dir)?;
        let opts = args.grid.options(jobs, env)?;
        Ok(FigureSetup { nets, data, scale, seeds, device, opts })
    }

    /// The loaded dataset `spec`.
    pub fn dataset(&self, spec: &DataSpec) -> &Dataset {
        &self.data.iter().find(|(d, _)| d == spec).expect("every network's data is loaded").1
    }

    /// Adam settings at `batch_size` for `epochs`.
    pub fn train_config(&self, batch_size: usize, epochs: usize) -> TrainConfig {
        TrainConfig::adam(batch_size, epochs, self.scale.learning_rate)
    }
}
