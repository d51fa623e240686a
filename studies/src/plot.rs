//! Line plots with ±std bands, one panel per subject, written as PNG and SVG.
//!
//! The font is embedded (DejaVu Sans, see assets/), so plots render the same on a machine with
//! no fonts installed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::stats::min_max;

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

/// Blue for small batch, red for large batch (and further colours for more series).
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// One curve: mean over seeds with a ±std band.
pub struct Series {
    /// Legend entry.
    pub label: String,
    /// Line colour.
    pub color: RGBColor,
    /// Dashed line (e.g. training data) or solid (test data).
    pub dashed: bool,
    /// x values.
    pub x: Vec<f64>,
    /// Mean at each x.
    pub mean: Vec<f64>,
    /// Standard deviation at each x (band half-width).
    pub std: Vec<f64>,
}

/// One panel of a figure.
pub struct Panel {
    /// Title above the panel.
    pub title: String,
    /// x-axis label, with unit.
    pub x_label: String,
    /// y-axis label, with unit.
    pub y_label: String,
    /// Curves.
    pub series: Vec<Series>,
    /// Logarithmic y axis (values must be positive; bands are not drawn).
    pub log_y: bool,
    /// Logarithmic x axis (values must be positive).
    pub log_x: bool,
    /// Symmetric-log x axis with linear range `c`: linear on [−c, c], logarithmic beyond, for
    /// values of both signs spanning decades (a Hessian's eigenvalues). Ticks at 0, ±c, ±10c, ….
    pub symlog_x: Option<f64>,
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
}

impl Panel {
    /// A linear-axis panel with the legend at the lower right.
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
        series: Vec<Series>,
    ) -> Panel {
        Panel {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            series,
            log_y: false,
            log_x: false,
            symlog_x: None,
            legend: SeriesLabelPosition::LowerRight,
        }
    }
}

/// A histogram as a step line: `counts` over `edges` (one more edge than counts).
pub fn histogram_series(label: String, color: RGBColor, values: &[f64], edges: &[f64]) -> Series {
    let mut counts = vec![0.0; edges.len() - 1];
    for &v in values {
        let bin = edges.windows(2).position(|e| v >= e[0] && v < e[1]).unwrap_or(if v < edges[0] {
            0
        } else {
            counts.len() - 1
        });
        counts[bin] += 1.0;
    }
    let (mut x, mut y) = (vec![edges[0]], vec![0.0]);
    for (i, c) in counts.iter().enumerate() {
        x.extend([edges[i], edges[i + 1]]);
        y.extend([*c, *c]);
    }
    x.push(edges[edges.len() - 1]);
    y.push(0.0);
    let n = x.len();
    Series { label, color, dashed: false, x, mean: y, std: vec![0.0; n] }
}

/// One row of a forest plot: an estimate with its interval.
pub struct ForestRow {
    /// The row's label, at the left.
    pub label: String,
    /// The estimate (drawn as a dot; NaN: not drawn).
    pub value: f64,
    /// The interval's ends (not drawn when not finite).
    pub low: f64,
    /// See [`ForestRow::low`].
    pub high: f64,
}

/// One panel of a forest plot: rows top to bottom, a vertical line at zero.
pub struct Forest {
    /// Title above the panel.
    pub title: String,
    /// x-axis label, with unit.
    pub x_label: String,
    /// The rows, first at the top.
    pub rows: Vec<ForestRow>,
}

/// Draws forest plots side by side into `<stem>.png` and `<stem>.svg`.
pub fn write_forests(stem: &Path, panels: &[Forest]) -> Result<()> {
    REGISTER.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let rows = panels.iter().map(|p| p.rows.len()).max().unwrap_or(1);
    let size = ((760 * panels.len().max(1)) as u32, (120 + 34 * rows) as u32);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_forests(&root, panels)?;
        root.present().map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw_forests(&root, panels)?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    Ok(())
}

fn draw_forests<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, panels: &[Forest]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (area, panel) in areas.iter().zip(panels) {
        draw_forest(area, panel).map_err(|e| anyhow!("drawing panel {}: {e}", panel.title))?;
    }
    Ok(())
}

fn draw_forest<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Forest,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let n = panel.rows.len().max(1);
    let ends = panel.rows.iter().flat_map(|r| [r.value, r.low, r.high]).chain([0.0]).filter(|v| v.is_finite());
    let (lo, hi) = finite_range(min_max(ends));
    let pad = (hi - lo) * 0.08;
    // Row i sits at y = n − i, so the first row is at the top.
    let labels: Vec<String> = panel.rows.iter().map(|r| r.label.clone()).collect();
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(170)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0.5..(n as f64 + 0.5))?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        .y_labels(0)
        .x_label_formatter(&|v| tick(*v))
        .draw()?;
    // The row labels, right-aligned left of the axis (plotters places numeric ticks only).
    let (base_x, base_y) = area.get_base_pixel();
    let style = TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
    for (i, label) in labels.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(lo - pad, (n - i) as f64));
        area.draw(&Text::new(label.clone(), (px - base_x - 8, py - base_y), style.clone()))?;
    }
    chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.5), (0.0, n as f64 + 0.5)], BLACK.mix(0.5))))?;
    for (i, row) in panel.rows.iter().enumerate() {
        let y = (n - i) as f64;
        if row.low.is_finite() && row.high.is_finite() {
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(row.low, y), (row.high, y)],
                PALETTE[0].stroke_width(2),
            )))?;
        }
        if row.value.is_finite() {
            chart.draw_series(std::iter::once(Circle::new((row.value, y), 4, PALETTE[0].filled())))?;
        }
    }
    Ok(())
}

/// Draws `panels` side by side into `<stem>.png` and `<stem>.svg`.
pub fn write_panels(stem: &Path, panels: &[Panel]) -> Result<()> {
    write_grid(stem, 1, panels)
}

/// Draws `panels` row by row, `rows` rows, into `<stem>.png` and `<stem>.svg`.
pub fn write_grid(stem: &Path, rows: usize, panels: &[Panel]) -> Result<()> {
    REGISTER.call_once(|| {
        // Registering the same bytes can only fail on a malformed font, which a test would catch.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let cols = panels.len().div_ceil(rows.max(1));
    let size = ((560 * cols) as u32, (440 * rows) as u32);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw(&root, rows, cols, panels)?;
        root.present().map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw(&root, rows, cols, panels)?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, rows: usize, cols: usize, panels: &[Panel]) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let areas = root.split_evenly((rows.max(1), cols));
    for (area, panel) in areas.iter().zip(panels) {
        draw_panel(area, panel).map_err(|e| anyhow!("drawing panel {}: {e}", panel.title))?;
    }
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // A log axis is drawn as log₁₀ of the values with ticks labelled 10^v.
    let log_series: Vec<Series>;
    let series: &[Series] = if panel.log_y || panel.log_x || panel.symlog_x.is_some() {
        let log = |v: &f64| v.max(1e-12).log10();
        let x_axis = |v: &f64| match panel.symlog_x {
            Some(c) => symlog(*v, c),
            None if panel.log_x => log(v),
            None => *v,
        };
        log_series = panel
            .series
            .iter()
            .map(|s| Series {
                label: s.label.clone(),
                color: s.color,
                dashed: s.dashed,
                x: s.x.iter().map(x_axis).collect(),
                mean: if panel.log_y { s.mean.iter().map(log).collect() } else { s.mean.clone() },
                std: if panel.log_y { vec![0.0; s.mean.len()] } else { s.std.clone() },
            })
            .collect();
        &log_series
    } else {
        &panel.series
    };
    // Finite values only; a panel with none (every run diverged) gets an empty unit frame.
    let xs = series.iter().flat_map(|s| s.x.iter().copied()).filter(|v| v.is_finite());
    let (x0, x1) = finite_range(min_max(xs));
    let ys = series
        .iter()
        .flat_map(|s| s.mean.iter().zip(&s.std).flat_map(|(m, d)| [m - d, m + d]))
        .filter(|v| v.is_finite());
    let (y0, y1) = finite_range(min_max(ys));
    let pad = ((y1 - y0) * 0.05).max(1e-9);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))?;
    chart
        .configure_mesh()
        .x_desc(&panel.x_label)
        .y_desc(&panel.y_label)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(WHITE.mix(0.0))
        // On a log axis, about one tick per decade so that ticks fall on powers of ten.
        .x_labels(if panel.log_x || panel.symlog_x.is_some() { 2 * ((x1 - x0).ceil() as usize + 1) } else { 10 })
        .y_labels(if panel.log_y { 2 * ((y1 - y0).ceil() as usize + 1) } else { 10 })
        .x_label_formatter(&|v| match panel.symlog_x {
            Some(c) => symlog_tick(*v, c),
            None if panel.log_x && x1 - x0 < 2.0 => log_tick_fine(*v),
            None if panel.log_x => log_tick(*v),
            None => tick(*v),
        })
        .y_label_formatter(&|v| match panel.log_y {
            true if y1 - y0 < 2.0 => log_tick_fine(*v),
            true => log_tick(*v),
            false => tick(*v),
        })
        .draw()?;
    for s in series {
        let upper = s.x.iter().zip(s.mean.iter().zip(&s.std)).map(|(&x, (m, d))| (x, m + d));
        let lower = s.x.iter().zip(s.mean.iter().zip(&s.std)).map(|(&x, (m, d))| (x, m - d)).rev();
        chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), s.color.mix(0.15))))?;
        let points: Vec<(f64, f64)> = s.x.iter().copied().zip(s.mean.iter().copied()).collect();
        let style = s.color.stroke_width(2);
        let color = s.color;
        let dashed = s.dashed;
        let anno = if s.dashed {
            chart.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else {
            chart.draw_series(LineSeries::new(points, style))?
        };
        anno.label(&s.label).legend(move |(x, y)| {
            // A dashed sample for dashed curves: two segments with a gap.
            let (first, second) =
                if dashed { (vec![(0, 0), (8, 0)], vec![(12, 0), (20, 0)]) } else { (vec![(0, 0), (20, 0)], vec![]) };
            EmptyElement::at((x, y))
                + PathElement::new(first, color.stroke_width(2))
                + PathElement::new(second, color.stroke_width(2))
        });
    }
    chart
        .configure_series_labels()
        .position(panel.legend.clone())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font(("sans-serif", 14))
        .draw()?;
    Ok(())
}

/// A function on a grid, drawn as filled contours.
pub struct Heatmap {
    /// Title above the panel.
    pub title: String,
    /// x-axis label.
    pub x_label: String,
    /// y-axis label.
    pub y_label: String,
    /// Grid coordinates along x.
    pub x: Vec<f64>,
    /// Grid coordinates along y.
    pub y: Vec<f64>,
    /// Values, `z[j][i]` at (x[i], y[j]); positive (drawn on a log₁₀ scale).
    pub z: Vec<Vec<f64>>,
    /// Colour-bar label.
    pub z_label: String,
}

/// Draws `maps` row by row (`cols` per row) as filled contours of log₁₀ z, all on one colour
/// scale (so that panels compare), with a colour bar each and a cross at (0, 0), into
/// `<stem>.png` / `.svg`.
pub fn write_heatmaps(stem: &Path, maps: &[Heatmap], cols: usize, bands: usize) -> Result<()> {
    REGISTER.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let logs = maps.iter().flat_map(|m| m.z.iter().flatten().map(|v| v.max(1e-12).log10()));
    let (lo, hi) = min_max(logs);
    let cols = cols.clamp(1, maps.len().max(1));
    let rows = maps.len().div_ceil(cols);
    let size = ((660 * cols) as u32, (540 * rows) as u32);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_heatmaps(&root, maps, (rows, cols), lo, hi, bands)?;
        root.present().map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw_heatmaps(&root, maps, (rows, cols), lo, hi, bands)?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    Ok(())
}

/// A 2-D function drawn as filled contours (log₁₀ of f − floor) with paths over it.
pub struct ContourPaths {
    /// Title above the panel.
    pub title: String,
    /// Grid along x.
    pub x: Vec<f64>,
    /// Grid along y.
    pub y: Vec<f64>,
    /// `z[j][i]` at (x[i], y[j]); drawn as log₁₀(z − min z + 1e-3) so any function shows.
    pub z: Vec<Vec<f64>>,
    /// (label, colour, points) of each path.
    pub paths: Vec<LabelledPath>,
}

/// A path drawn over a contour plot: its legend label, colour and points.
pub type LabelledPath = (String, RGBColor, Vec<(f64, f64)>);

/// Draws `panels` side by side (`cols` per row): filled contours with paths on top and a legend,
/// into `<stem>.png` / `.svg`. Paths are clipped to the panel.
pub fn write_contour_paths(stem: &Path, panels: &[ContourPaths], cols: usize) -> Result<()> {
    REGISTER.call_once(|| {
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
    let cols = cols.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(cols);
    let size = ((560 * cols) as u32, (500 * rows) as u32);
    let png = stem.with_extension("png");
    let svg = stem.with_extension("svg");
    {
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        draw_contour_paths(&root, panels, (rows, cols))?;
        root.present().map_err(|e| anyhow!("writing {}: {e}", png.display()))?;
    }
    let root = SVGBackend::new(&svg, size).into_drawing_area();
    draw_contour_paths(&root, panels, (rows, cols))?;
    root.present().map_err(|e| anyhow!("writing {}: {e}", svg.display()))?;
    Ok(())
}

fn draw_contour_paths<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    panels: &[ContourPaths],
    grid: (usize, usize),
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    const BANDS: usize = 16;
    for (area, p) in root.split_evenly(grid).iter().zip(panels) {
        let e = |err| anyhow!("drawing {}: {err}", p.title);
        let floor = p.z.iter().flatten().fold(f64::INFINITY, |a, &v| a.min(v));
        let level = |v: f64| (v - floor + 1e-3).log10();
        let (lo, hi) = min_max(p.z.iter().flatten().map(|&v| level(v)));
        let span = (hi - lo).max(1e-9);
        let (x0, x1) = (p.x[0], *p.x.last().expect("grid"));
        let (y0, y1) = (p.y[0], *p.y.last().expect("grid"));
        let mut chart = ChartBuilder::on(area)
            .caption(&p.title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(44)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .label_style(("sans-serif", 13))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(e)?;
        let half = |v: &[f64], i: usize| {
            let left = if i == 0 { v[0] } else { 0.5 * (v[i - 1] + v[i]) };
            let right = if i + 1 == v.len() { v[i] } else { 0.5 * (v[i] + v[i + 1]) };
            (left, right)
        };
        // One rectangle per run of equal bands along a row (not one per grid cell): the same
        // picture with a tenth of the shapes, which keeps the SVG small.
        let mut cells = Vec::new();
        for (j, row) in p.z.iter().enumerate() {
            let bands: Vec<usize> = row
                .iter()
                .map(|&v| (((level(v) - lo) / span * BANDS as f64).floor() as usize).min(BANDS - 1))
                .collect();
            let (ya, yb) = half(&p.y, j);
            let mut start = 0;
            for i in 1..=bands.len() {
                if i == bands.len() || bands[i] != bands[start] {
                    // Light colours, so that the paths stand out.
                    let c = ramp((bands[start] as f64 + 0.5) / BANDS as f64).mix(0.45);
                    let (xa, xb) = (half(&p.x, start).0, half(&p.x, i - 1).1);
                    cells.push(Rectangle::new([(xa, ya), (xb, yb)], c.filled()));
                    start = i;
                }
            }
        }
        chart.draw_series(cells).map_err(e)?;
        for (label, color, points) in &p.paths {
            // Very short segments (a converged path repeats nearly the same point) make plotters'
            // wide-line drawing emit stray strokes across the image: keep a point only once it
            // is 1/400 of the window away from the last kept one.
            let (sx, sy) = ((x1 - x0) / 400.0, (y1 - y0) / 400.0);
            let mut inside: Vec<(f64, f64)> = Vec::new();
            for (a, b) in points
                .iter()
                .copied()
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .map(|(a, b)| (a.clamp(x0, x1), b.clamp(y0, y1)))
            {
                if inside
                    .last()
                    .is_none_or(|&(pa, pb): &(f64, f64)| ((a - pa) / sx).abs() > 1.0 || ((b - pb) / sy).abs() > 1.0)
                {
                    inside.push((a, b));
                }
            }
            let color = *color;
            // Segment by segment: a wide polyline's miter joins at the near-180° turns of a
            // zig-zagging path shoot spikes across the image.
            chart
                .draw_series(inside.windows(2).map(|w| PathElement::new(vec![w[0], w[1]], color.stroke_width(2))))
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(e)?;
    }
    Ok(())
}

/// Viridis-like ramp from dark blue (low) to yellow (high).
fn ramp(t: f64) -> RGBColor {
    const STOPS: [(f64, (u8, u8, u8)); 5] = [
        (0.0, (68, 1, 84)),
        (0.25, (59, 82, 139)),
        (0.5, (33, 145, 140)),
        (0.75, (94, 201, 98)),
        (1.0, (253, 231, 37)),
    ];
    let t = t.clamp(0.0, 1.0);
    let k = STOPS.iter().position(|s| s.0 >= t).unwrap_or(4).max(1);
    let (t0, c0) = STOPS[k - 1];
    let (t1, c1) = STOPS[k];
    let f = (t - t0) / (t1 - t0);
    let mix = |a: u8, b: u8| (a as f64 + f * (b as f64 - a as f64)).round() as u8;
    RGBColor(mix(c0.0, c1.0), mix(c0.1, c1.1), mix(c0.2, c1.2))
}

fn draw_heatmaps<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    maps: &[Heatmap],
    grid: (usize, usize),
    lo: f64,
    hi: f64,
    bands: usize,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let span = (hi - lo).max(1e-9);
    let bands = bands.max(2);
    // Band index of a value: filled contours at `bands` evenly spaced levels of log₁₀ z.
    let band = |v: f64| (((v.max(1e-12).log10() - lo) / span * bands as f64).floor() as usize).min(bands - 1);
    let color = |b: usize| ramp((b as f64 + 0.5) / bands as f64);
    for (area, map) in root.split_evenly(grid).iter().zip(maps) {
        let (main, bar) = area.split_horizontally(area.dim_in_pixel().0 as i32 - 130);
        let e = |err| anyhow!("drawing {}: {err}", map.title);
        let (x0, x1) = (map.x[0], *map.x.last().expect("grid"));
        let (y0, y1) = (map.y[0], *map.y.last().expect("grid"));
        let mut chart = ChartBuilder::on(&main)
            .caption(&map.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&map.x_label)
            .y_desc(&map.y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .disable_mesh()
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(e)?;
        // Each grid point colours the cell around it.
        let half = |v: &[f64], i: usize| {
            let left = if i == 0 { v[0] } else { 0.5 * (v[i - 1] + v[i]) };
            let right = if i + 1 == v.len() { v[i] } else { 0.5 * (v[i] + v[i + 1]) };
            (left, right)
        };
        let mut cells = Vec::new();
        for (j, row) in map.z.iter().enumerate() {
            for (i, &v) in row.iter().enumerate() {
                let (xa, xb) = half(&map.x, i);
                let (ya, yb) = half(&map.y, j);
                cells.push(Rectangle::new([(xa, ya), (xb, yb)], color(band(v)).filled()));
            }
        }
        chart.draw_series(cells).map_err(e)?;
        chart.draw_series(std::iter::once(Cross::new((0.0, 0.0), 8, WHITE.stroke_width(3)))).map_err(e)?;
        // Colour bar: the bands with their levels.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(44)
            .margin_bottom(52)
            .margin_right(40)
            .y_label_area_size(52)
            .caption(&map.z_label, ("sans-serif", 13))
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .map_err(e)?;
        cb.configure_mesh()
            .disable_x_axis()
            .disable_mesh()
            // One tick per decade or so: log₁₀ values near integers.
            .y_labels(((hi - lo).ceil() as usize + 1).max(2))
            .label_style(("sans-serif", 13))
            .y_label_formatter(&|v| log_tick(*v))
            .draw()
            .map_err(e)?;
        cb.draw_series((0..bands).map(|b| {
            let a = lo + span * b as f64 / bands as f64;
            let c = lo + span * (b + 1) as f64 / bands as f64;
            Rectangle::new([(0.0, a), (1.0, c)], color(b).filled())
        }))
        .map_err(e)?;
    }
    Ok(())
}

/// The tick label of log₁₀ value `v`: "1e-3", "0.1", "1", "10", "1000", "1e4"; ticks between powers
/// of ten stay unlabelled (their grid lines remain), so labels are round numbers.
fn log_tick(v: f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        return String::new();
    }
    let x = 10f64.powf(v.round());
    if (0.01..=1e3).contains(&x) { tick(x) } else { format!("{x:.0e}") }
}

/// The symmetric-log coordinate of `x` with linear range `c`: x/c on [−c, c], and
/// ±(1 + log₁₀(|x|/c)) beyond, so that ±c·10^k sits at ±(k + 1).
pub fn symlog(x: f64, c: f64) -> f64 {
    if x.abs() <= c { x / c } else { x.signum() * (1.0 + (x.abs() / c).log10()) }
}

/// The inverse of [`symlog`].
pub fn inverse_symlog(v: f64, c: f64) -> f64 {
    if v.abs() <= 1.0 { v * c } else { v.signum() * c * 10f64.powf(v.abs() - 1.0) }
}

/// The tick label of symmetric-log coordinate `v`: only at integers (0, ±c, ±10c, …).
fn symlog_tick(v: f64, c: f64) -> String {
    if (v - v.round()).abs() > 1e-6 {
        return String::new();
    }
    let k = v.round();
    if k == 0.0 {
        return "0".into();
    }
    let x = c * 10f64.powf(k.abs() - 1.0);
    let label = if (0.01..=1e3).contains(&x) { tick(x) } else { format!("{x:.0e}") };
    if k < 0.0 { format!("-{label}") } else { label }
}

/// A tick label without trailing zeros: "40", "0.5", "97.25".
fn tick(v: f64) -> String {
    // Two decimals from 0.1 up; below, enough for two significant digits, so that ticks of a
    // small range (0.004, 0.006, …) stay apart. Rounding noise around zero is "0".
    if v.abs() < 1e-12 {
        return "0".into();
    }
    // Six digits and more would not fit the label area: "-2.5e7", "1e6".
    if v.abs() >= 1e5 {
        let s = format!("{v:.2e}");
        let (mantissa, exponent) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exponent}", mantissa.trim_end_matches('0').trim_end_matches('.'));
    }
    let decimals = if v.abs() >= 0.1 { 2 } else { (1 - v.abs().log10().floor() as i64) as usize };
    let s = format!("{v:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

/// The tick label of log₁₀ value `v` on an axis spanning under two decades, where powers of ten
/// alone would leave one label or none: 10^v to two significant digits (within 5 % of the tick's
/// value, e.g. 316 shown as "320": a shift the eye cannot see on a log axis).
fn log_tick_fine(v: f64) -> String {
    let x = 10f64.powf(v);
    let unit = 10f64.powi(x.log10().floor() as i32 - 1);
    let rounded = (x / unit).round() * unit;
    if rounded >= 10.0 { format!("{rounded:.0}") } else { tick(rounded) }
}

/// `(lo, hi)` as an axis range: (0, 1) when there was no finite value, widened around a single
/// value.
fn finite_range((lo, hi): (f64, f64)) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        (0.0, 1.0)
    } else if hi <= lo {
        (lo - 0.5, hi + 0.5)
    } else {
        (lo, hi)
    }
}

#[cfg(test)]
mod tests {
    use super::{inverse_symlog, log_tick, log_tick_fine, symlog, symlog_tick, tick};

    #[test]
    fn log_ticks_label_powers_of_ten_only() {
        assert_eq!(log_tick(2.0), "100");
        assert_eq!(log_tick(3.0), "1000");
        assert_eq!(log_tick(-1.0), "0.1");
        assert_eq!(log_tick(-3.0), "1e-3");
        assert_eq!(log_tick(1.5), "");
    }

    #[test]
    fn symlog_is_linear_inside_and_logarithmic_outside_its_range() {
        assert_eq!(symlog(0.005, 0.01), 0.5);
        assert_eq!(symlog(-0.01, 0.01), -1.0);
        assert!((symlog(1.0, 0.01) - 3.0).abs() < 1e-12 && (symlog(-10.0, 0.01) + 4.0).abs() < 1e-12);
        assert_eq!(
            (symlog_tick(3.0, 0.01), symlog_tick(-1.0, 0.01), symlog_tick(0.0, 0.01)),
            ("1".into(), "-0.01".into(), "0".into())
        );
        assert_eq!(symlog_tick(2.5, 0.01), "");
        for x in [-30.0, -0.004, 0.0, 0.02, 7.5] {
            assert!((inverse_symlog(symlog(x, 0.01), 0.01) - x).abs() <= 1e-12 * (1.0 + x.abs()));
        }
    }

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick(-1e-17), "0");
        assert_eq!(tick(0.0035), "0.0035");
        assert_eq!(tick(0.004), "0.004");
        assert_eq!(tick(-0.05), "-0.05");
        assert_eq!(log_tick_fine(1.6), "40");
        assert_eq!(log_tick_fine(2.4), "250");
        assert_eq!(log_tick_fine(-0.3), "0.5");
        assert_eq!(tick(40.0), "40");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(97.25), "97.25");
        assert_eq!(tick(-25_000_000.0), "-2.5e7");
        assert_eq!(tick(1e6), "1e6");
        assert_eq!(tick(99_999.0), "99999");
    }
}
