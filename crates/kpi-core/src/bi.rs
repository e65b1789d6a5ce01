//! Charts for kpi.html_report, drawn with plotters' SVG backend.
//!
//! The SVG carries no user text: metric names, units and labels go into the
//! HTML around it (escaped there), so the only text plotters writes is axis
//! numbers and dates. Times are seconds since the epoch of the wall clock the
//! caller wants on the axis (the report passes its session's local time).

use crate::error::{CoreError, CoreResult};
use chrono::DateTime;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, ValueFormatter};
use plotters::prelude::*;
use std::ops::Range;

/// A shaded band of values: from `lo` to `hi` (either may be infinite: to
/// the edge of the chart), in the colour of a severity rank (as
/// kpi.severity_level's order: 2 warning, 3 critical, 4 emergency).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Band {
    pub lo: f64,
    pub hi: f64,
    pub rank: u8,
}

/// The bands of kpi.severity for thresholds given as upper edges (lower is
/// better; lower edges when higher is better): each of warning, critical and
/// emergency reaches from the next defined threshold on the good side (or
/// the chart's edge) to its own threshold; emergency lies beyond the last.
pub fn severity_bands(
    optimal: Option<f64>,
    good: Option<f64>,
    warning: Option<f64>,
    critical: Option<f64>,
    higher_is_better: bool,
) -> Vec<Band> {
    let edges = crate::severity::thresholds::effective([optimal, good, warning, critical]);
    let (far_good, far_bad) = if higher_is_better {
        (f64::INFINITY, f64::NEG_INFINITY)
    } else {
        (f64::NEG_INFINITY, f64::INFINITY)
    };
    let before = |i: usize| edges[..i].iter().rev().find_map(|e| *e).unwrap_or(far_good);
    let mut out = Vec::new();
    for (i, rank) in [(2usize, 2u8), (3, 3)] {
        if let Some(e) = edges[i] {
            let from = before(i);
            out.push(Band {
                lo: from.min(e),
                hi: from.max(e),
                rank,
            });
        }
    }
    if let Some(last) = edges.iter().rev().find_map(|e| *e) {
        out.push(Band {
            lo: last.min(far_bad),
            hi: last.max(far_bad),
            rank: 4,
        });
    }
    out
}

/// A chart of one metric's p50 and p95 with its severity bands.
pub struct MetricChart<'a> {
    /// x range of the chart, seconds
    pub from: f64,
    pub to: f64,
    /// bucket width, seconds: two buckets further apart than 1.5 steps are
    /// not joined by a line (a gap in the data stays a gap)
    pub step: f64,
    pub times: &'a [f64],
    pub p50: &'a [f64],
    pub p95: &'a [f64],
    pub bands: &'a [Band],
    pub width: u32,
    pub height: u32,
}

/// One alert on the timeline: from `start` to `end` (seconds), severity rank
/// as kpi.severity_level's order (0 optimal .. 4 emergency; higher is drawn
/// darker and on top).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AlertSpan {
    pub start: f64,
    pub end: f64,
    pub rank: u8,
}

const P50_COLOR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P95_COLOR: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const WARN_FILL: RGBAColor = RGBAColor(0xff, 0xbf, 0x00, 0.18);
const CRIT_FILL: RGBAColor = RGBAColor(0xf0, 0x7a, 0x10, 0.18);
const EMERG_FILL: RGBAColor = RGBAColor(0xe0, 0x20, 0x20, 0.18);

fn band_fill(rank: u8) -> RGBAColor {
    match rank {
        0..=2 => WARN_FILL,
        3 => CRIT_FILL,
        _ => EMERG_FILL,
    }
}
const GRID: RGBColor = RGBColor(0xe6, 0xe6, 0xe6);

fn check_range(from: f64, to: f64) -> CoreResult<()> {
    if !(from.is_finite() && to.is_finite()) || from >= to {
        return Err(CoreError::invalid(
            "from",
            format!("the chart's time range must be finite and non-empty, got {from} to {to}"),
        ));
    }
    Ok(())
}

fn check_size(width: u32, height: u32) -> CoreResult<()> {
    if !(120..=4000).contains(&width) || !(40..=4000).contains(&height) {
        return Err(CoreError::invalid(
            "width",
            format!("chart size must be 120..4000 x 40..4000 pixels, got {width} x {height}"),
        ));
    }
    Ok(())
}

/// Time ticks at a round step (minutes, hours, days), about six over the
/// range, aligned to the clock of the seconds given.
fn time_ticks(from: f64, to: f64) -> (Vec<f64>, f64) {
    const STEPS: [f64; 17] = [
        1.0,
        5.0,
        15.0,
        60.0,
        300.0,
        600.0,
        900.0,
        1800.0,
        3600.0,
        7200.0,
        10_800.0,
        21_600.0,
        43_200.0,
        86_400.0,
        172_800.0,
        604_800.0,
        2_592_000.0,
    ];
    let span = to - from;
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 7.0)
        .unwrap_or_else(|| (span / 6.0 / 2_592_000.0).ceil() * 2_592_000.0);
    let mut ticks = Vec::new();
    let mut t = (from / step).ceil() * step;
    while t <= to && ticks.len() < 64 {
        ticks.push(t);
        t += step;
    }
    (ticks, step)
}

/// The time axis: linear in seconds, ticks at round times (time_ticks),
/// labelled by time_label.
struct TimeAxis {
    from: f64,
    to: f64,
    ticks: Vec<f64>,
    step: f64,
}

impl TimeAxis {
    fn new(from: f64, to: f64) -> Self {
        let (ticks, step) = time_ticks(from, to);
        TimeAxis {
            from,
            to,
            ticks,
            step,
        }
    }
}

impl Ranged for TimeAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.from) / (self.to - self.from);
        limit.0 + (f * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> Range<f64> {
        self.from..self.to
    }
}

impl ValueFormatter<f64> for TimeAxis {
    fn format(v: &f64) -> String {
        time_label(*v, 60.0, 86_400.0 * 2.0)
    }
    fn format_ext(&self, v: &f64) -> String {
        time_label(*v, self.step, self.to - self.from)
    }
}

/// Axis label of a time in seconds: the time of day, or the date, with as
/// much as the tick step and the range need.
fn time_label(t: f64, step: f64, span: f64) -> String {
    let Some(d) = DateTime::from_timestamp(t.round() as i64, 0) else {
        return String::new();
    };
    let d = d.naive_utc();
    let f = if step < 60.0 {
        "%H:%M:%S"
    } else if step < 86_400.0 && span <= 86_400.0 {
        "%H:%M"
    } else if step < 86_400.0 {
        "%m-%d %H:%M"
    } else if span <= 300.0 * 86_400.0 {
        "%m-%d"
    } else {
        "%Y-%m-%d"
    };
    d.format(f).to_string()
}

/// A number on the value axis, with the decimals the axis span needs.
fn value_label(v: f64, span: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(1e-4..1e9).contains(&a) {
        return format!("{v:.2e}");
    }
    let decimals = if span > 0.0 && span.is_finite() {
        (2.0 - span.log10().floor()).clamp(0.0, 6.0) as usize
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Runs of consecutive points no more than 1.5 steps apart.
fn segments(times: &[f64], values: &[f64], step: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut last: Option<f64> = None;
    for (&t, &v) in times.iter().zip(values) {
        if !t.is_finite() || !v.is_finite() {
            last = None;
            continue;
        }
        match (last, out.last_mut()) {
            (Some(p), Some(seg)) if t - p <= 1.5 * step => seg.push((t, v)),
            _ => out.push(vec![(t, v)]),
        }
        last = Some(t);
    }
    out
}

fn draw_err<E: std::fmt::Debug>(e: E) -> CoreError {
    CoreError::invalid("chart", format!("could not draw the chart: {e:?}"))
}

/// The y range: the data and the thresholds, padded by 5 %.
fn y_range(c: &MetricChart) -> (f64, f64) {
    let vals = c
        .p50
        .iter()
        .chain(c.p95)
        .copied()
        .chain(c.bands.iter().flat_map(|b| [b.lo, b.hi]))
        .filter(|v| v.is_finite());
    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.05
    } else {
        lo.abs().max(1.0) * 0.1
    };
    let lo = if lo >= 0.0 && lo - pad < 0.0 {
        0.0
    } else {
        lo - pad
    };
    (lo, hi + pad)
}

/// An SVG chart of p50 and p95 over time with its bands shaded (warning,
/// critical and emergency: see severity_bands).
pub fn metric_chart_svg(c: &MetricChart) -> CoreResult<String> {
    check_range(c.from, c.to)?;
    check_size(c.width, c.height)?;
    if c.times.len() != c.p50.len() || c.times.len() != c.p95.len() {
        return Err(CoreError::invalid(
            "times",
            "times, p50 and p95 must have the same length",
        ));
    }
    if !(c.step.is_finite() && c.step > 0.0) {
        return Err(CoreError::invalid(
            "step",
            "must be a positive number of seconds",
        ));
    }
    let (ylo, yhi) = y_range(c);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (c.width, c.height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(56)
            .build_cartesian_2d(TimeAxis::new(c.from, c.to), ylo..yhi)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .y_labels(5)
            .y_label_formatter(&|v| value_label(*v, yhi - ylo))
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        for b in c.bands {
            if b.lo.is_nan() || b.hi.is_nan() {
                continue;
            }
            let (lo, hi) = (b.lo.clamp(ylo, yhi), b.hi.clamp(ylo, yhi));
            if lo < hi {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(c.from, lo), (c.to, hi)],
                        band_fill(b.rank).filled(),
                    )))
                    .map_err(draw_err)?;
            }
        }
        // the legend is the HTML's caption
        for (values, color) in [(c.p95, P95_COLOR), (c.p50, P50_COLOR)] {
            for seg in segments(c.times, values, c.step) {
                if seg.len() == 1 {
                    // a lone bucket: a dot, so that it is not lost
                    chart
                        .draw_series(seg.iter().map(|&p| Circle::new(p, 2, color.filled())))
                        .map_err(draw_err)?;
                } else {
                    chart
                        .draw_series(LineSeries::new(seg, color.stroke_width(2)))
                        .map_err(draw_err)?;
                }
            }
        }
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

/// Colour of a severity rank on the timeline.
fn rank_color(rank: u8) -> RGBColor {
    match rank {
        0 | 1 => RGBColor(0x7f, 0xa7, 0xd8),
        2 => RGBColor(0xf2, 0xc1, 0x4e),
        3 => RGBColor(0xf0, 0x8a, 0x24),
        _ => RGBColor(0xd6, 0x27, 0x28),
    }
}

/// An SVG strip of the alerts over [from, to): one bar per alert, clipped to
/// the range, in its severity's colour.
pub fn alert_timeline_svg(
    from: f64,
    to: f64,
    spans: &[AlertSpan],
    width: u32,
    height: u32,
) -> CoreResult<String> {
    check_range(from, to)?;
    check_size(width, height)?;
    let span = to - from;
    let mut sorted: Vec<AlertSpan> = spans
        .iter()
        .filter(|s| s.start.is_finite() && s.end.is_finite() && s.end >= s.start)
        .copied()
        .collect();
    sorted.sort_by(|a, b| a.rank.cmp(&b.rank).then(a.start.total_cmp(&b.start)));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(22)
            .y_label_area_size(56)
            .build_cartesian_2d(TimeAxis::new(from, to), 0.0..1.0)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .disable_y_axis()
            .light_line_style(WHITE)
            .bold_line_style(GRID)
            .label_style(("sans-serif", 12))
            .draw()
            .map_err(draw_err)?;
        // at least one pixel wide, so that a short alert shows
        let min_w = span / f64::from(width);
        chart
            .draw_series(sorted.iter().filter_map(|s| {
                let a = s.start.max(from);
                let b = s.end.min(to).max(a + min_w);
                (a < to)
                    .then(|| Rectangle::new([(a, 0.15), (b, 0.85)], rank_color(s.rank).filled()))
            }))
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BANDS: &[Band] = &[
        Band {
            lo: f64::NEG_INFINITY,
            hi: 50.0,
            rank: 2,
        },
        Band {
            lo: 50.0,
            hi: 80.0,
            rank: 3,
        },
        Band {
            lo: 80.0,
            hi: f64::INFINITY,
            rank: 4,
        },
    ];

    fn chart<'a>(t: &'a [f64], a: &'a [f64], b: &'a [f64]) -> MetricChart<'a> {
        MetricChart {
            from: 0.0,
            to: 3600.0,
            step: 60.0,
            times: t,
            p50: a,
            p95: b,
            bands: BANDS,
            width: 600,
            height: 200,
        }
    }

    #[test]
    fn chart_has_two_lines_and_two_bands() {
        let t: Vec<f64> = (0..60).map(|i| f64::from(i) * 60.0).collect();
        let a: Vec<f64> = (0..60).map(|i| 20.0 + f64::from(i % 7)).collect();
        let b: Vec<f64> = a.iter().map(|v| v * 2.5).collect();
        let svg = metric_chart_svg(&chart(&t, &a, &b)).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        // one line per series
        assert_eq!(
            svg.matches("stroke=\"#1F77B4\" stroke-width=\"2\"").count(),
            1,
            "{svg}"
        );
        assert_eq!(
            svg.matches("stroke=\"#D62728\" stroke-width=\"2\"").count(),
            1,
            "{svg}"
        );
        assert!(
            svg.matches("<rect").count() >= 3,
            "background and two bands"
        );
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn gaps_split_lines_and_lone_points_are_dots() {
        let t = [0.0, 60.0, 120.0, 1800.0, 3000.0, 3060.0];
        let v = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let segs = segments(&t, &v, 60.0);
        assert_eq!(segs.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 1, 2]);
        let svg = metric_chart_svg(&chart(&t, &v, &v)).unwrap();
        assert!(svg.contains("<circle"));
        let nan = [1.0, f64::NAN, 3.0];
        assert_eq!(segments(&t[..3], &nan, 60.0).len(), 2);
    }

    #[test]
    fn empty_chart_and_bad_arguments() {
        let svg = metric_chart_svg(&chart(&[], &[], &[])).unwrap();
        assert!(svg.contains("<svg"));
        let mut c = chart(&[], &[], &[]);
        c.to = c.from;
        assert_eq!(metric_chart_svg(&c).unwrap_err().sqlstate(), "22023");
        let mut c = chart(&[1.0], &[], &[]);
        c.from = 0.0;
        assert!(metric_chart_svg(&c).is_err());
        let mut c = chart(&[], &[], &[]);
        c.width = 10;
        assert!(metric_chart_svg(&c).is_err());
        let mut c = chart(&[], &[], &[]);
        c.step = 0.0;
        assert!(metric_chart_svg(&c).is_err());
    }

    #[test]
    fn y_range_covers_data_and_thresholds() {
        let t = [0.0];
        let a = [10.0];
        let b = [20.0];
        let (lo, hi) = y_range(&chart(&t, &a, &b));
        assert_eq!((lo, hi), (6.5, 83.5));
        let mut c = chart(&t, &a, &b);
        c.bands = &[];
        assert_eq!(y_range(&c), (9.5, 20.5));
    }

    #[test]
    fn bands_follow_kpi_severity() {
        let b = severity_bands(Some(100.0), Some(200.0), Some(500.0), Some(1000.0), false);
        assert_eq!(
            b,
            vec![
                Band {
                    lo: 200.0,
                    hi: 500.0,
                    rank: 2
                },
                Band {
                    lo: 500.0,
                    hi: 1000.0,
                    rank: 3
                },
                Band {
                    lo: 1000.0,
                    hi: f64::INFINITY,
                    rank: 4
                }
            ]
        );
        // without good and optimal, everything up to warning is warning
        let b = severity_bands(None, None, Some(80.0), Some(95.0), false);
        assert_eq!(
            b[0],
            Band {
                lo: f64::NEG_INFINITY,
                hi: 80.0,
                rank: 2
            }
        );
        // higher is better: mirrored
        let b = severity_bands(Some(99.99), Some(99.95), Some(99.9), Some(99.8), true);
        assert_eq!(
            b,
            vec![
                Band {
                    lo: 99.9,
                    hi: 99.95,
                    rank: 2
                },
                Band {
                    lo: 99.8,
                    hi: 99.9,
                    rank: 3
                },
                Band {
                    lo: f64::NEG_INFINITY,
                    hi: 99.8,
                    rank: 4
                }
            ]
        );
        // no critical: emergency beyond warning; no thresholds: no bands
        let b = severity_bands(None, Some(1.0), Some(2.0), None, false);
        assert_eq!(
            b.last().copied(),
            Some(Band {
                lo: 2.0,
                hi: f64::INFINITY,
                rank: 4
            })
        );
        assert!(severity_bands(None, None, None, None, false).is_empty());
        assert!(severity_bands(None, None, Some(f64::INFINITY), None, false).is_empty());
    }

    proptest::proptest! {
        /// A value lies in the band of its kpi.severity level (warning or
        /// worse), and in no band when it is optimal or good.
        #[test]
        fn bands_agree_with_classify(mut t in proptest::array::uniform4(proptest::option::of(-1e3f64..1e3)),
                                     v in -2e3f64..2e3, hib in proptest::bool::ANY) {
            use crate::severity::{classify, thresholds::Direction};
            // thresholds in their direction's order
            let mut defined: Vec<f64> = t.iter().flatten().copied().collect();
            defined.sort_by(f64::total_cmp);
            if hib { defined.reverse(); }
            let mut it = defined.into_iter();
            for x in t.iter_mut() { if x.is_some() { *x = it.next(); } }
            let dir = if hib { Direction::HigherIsBetter } else { Direction::LowerIsBetter };
            proptest::prop_assume!(t.iter().flatten().all(|e| (e - v).abs() > 1e-9));
            let bands = severity_bands(t[0], t[1], t[2], t[3], hib);
            let inside: Vec<u8> = bands.iter().filter(|b| b.lo < v && v < b.hi).map(|b| b.rank).collect();
            match classify(v, dir, t) {
                Some(s) if s as u8 >= 2 => proptest::prop_assert_eq!(inside, vec![s as u8]),
                _ => proptest::prop_assert!(inside.is_empty(), "{:?} {:?} {}", t, bands, v),
            }
        }
    }

    #[test]
    fn timeline_bars() {
        let spans = [
            AlertSpan {
                start: -100.0,
                end: 200.0,
                rank: 4,
            },
            AlertSpan {
                start: 1000.0,
                end: 1000.0,
                rank: 2,
            },
            AlertSpan {
                start: 5000.0,
                end: 6000.0,
                rank: 3,
            },
            AlertSpan {
                start: 10.0,
                end: f64::NAN,
                rank: 3,
            },
        ];
        let svg = alert_timeline_svg(0.0, 3600.0, &spans, 600, 60).unwrap();
        // background + two bars (the one after the range and the NaN one are left out)
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(alert_timeline_svg(1.0, 0.0, &spans, 600, 60).is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(time_label(0.0, 600.0, 3600.0), "00:00");
        assert_eq!(
            time_label(86_400.0 * 3.0, 43_200.0, 86_400.0 * 3.0),
            "01-04 00:00"
        );
        assert_eq!(
            time_label(86_400.0 * 3.0, 86_400.0, 86_400.0 * 7.0),
            "01-04"
        );
        assert_eq!(
            time_label(86_400.0 * 3.0, 2_592_000.0, 86_400.0 * 400.0),
            "1970-01-04"
        );
        assert_eq!(value_label(12.345, 100.0), "12");
        assert_eq!(value_label(12.345, 10.0), "12.3");
        assert_eq!(value_label(99.95, 0.3), "99.95");
        assert_eq!(value_label(100.0, 0.3), "100");
        assert_eq!(value_label(0.0123, 0.05), "0.0123");
        assert_eq!(value_label(1.5e10, 1e10), "1.50e10");
    }

    #[test]
    fn ticks_are_round_times() {
        // 2 days from 18:33: every 6 hours, on the hour
        let from = 86_400.0 * 10.0 + 18.0 * 3600.0 + 33.0 * 60.0;
        let (t, step) = time_ticks(from, from + 2.0 * 86_400.0);
        assert_eq!(step, 43_200.0);
        assert!(t.iter().all(|x| x % 43_200.0 == 0.0 && *x >= from));
        assert_eq!(t.len(), 4);
        let (t, step) = time_ticks(0.0, 90.0 * 86_400.0);
        assert_eq!(step, 2_592_000.0);
        assert_eq!(t.len(), 4);
        let (t, _) = time_ticks(0.0, 3.0e9);
        assert!(t.len() <= 7 && !t.is_empty());
    }
}
