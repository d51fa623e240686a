//! Line plots with ±std bands, one panel per subject, written as PNG and SVG.
//!
//! The font is embedded (DejaVu Sans, see assets/), so plots render the same on a machine with
//! no fonts installed.

use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

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
    /// Where the legend goes.
    pub legend: SeriesLabelPosition,
}

impl Panel {
    /// A linear-axis panel with the legend at the lower right.
    pub fn new(title: impl Into<String>, x_label: impl Into<String>, y_label: impl Into<String>, series: Vec<Series>) -> Panel {
        Panel { title: title.into(), x_label: x_label.into(), y_label: y_label.into(), series, log_y: false, legend: SeriesLabelPosition::LowerRight }
    }
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

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    // A log axis is drawn as log₁₀ of the values with ticks labelled 10^v.
    let log_series: Vec<Series>;
    let series: &[Series] = if panel.log_y {
        log_series = panel
            .series
            .iter()
            .map(|s| Series {
                label: s.label.clone(),
                color: s.color,
                dashed: s.dashed,
                x: s.x.clone(),
                mean: s.mean.iter().map(|m| m.max(1e-12).log10()).collect(),
                std: vec![0.0; s.mean.len()],
            })
            .collect();
        &log_series
    } else {
        &panel.series
    };
    let xs = series.iter().flat_map(|s| s.x.iter().copied());
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let ys = series.iter().flat_map(|s| s.mean.iter().zip(&s.std).flat_map(|(m, d)| [m - d, m + d]));
    let (y0, y1) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| (lo.min(y), hi.max(y)));
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
        .x_label_formatter(&|v| tick(*v))
        .y_label_formatter(&|v| if panel.log_y { log_tick(*v) } else { tick(*v) })
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
            let (first, second) = if dashed { (vec![(0, 0), (8, 0)], vec![(12, 0), (20, 0)]) } else { (vec![(0, 0), (20, 0)], vec![]) };
            EmptyElement::at((x, y)) + PathElement::new(first, color.stroke_width(2)) + PathElement::new(second, color.stroke_width(2))
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

/// The tick label of log₁₀ value `v`: "1e-3", "0.1", "1", "10".
fn log_tick(v: f64) -> String {
    let x = 10f64.powf(v);
    if (0.01..1000.0).contains(&x) { format!("{}", tick(x)) } else { format!("{x:.0e}") }
}

/// A tick label without trailing zeros: "40", "0.5", "97.25".
fn tick(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::tick;

    #[test]
    fn tick_labels_drop_trailing_zeros() {
        assert_eq!(tick(40.0), "40");
        assert_eq!(tick(0.5), "0.5");
        assert_eq!(tick(97.25), "97.25");
    }
}
