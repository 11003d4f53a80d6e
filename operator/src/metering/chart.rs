//! A year's spend as an SVG chart (pure): a bar per month, stacked by group, with a legend and the
//! figures in the chart's text alternative, readable without JavaScript.

use std::fmt::Write as _;

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

use super::annual::Annual;

/// Colours from the GOV.UK Design System palette, distinguishable side by side.
const COLOURS: [&str; 8] =
    ["#1d70b8", "#f47738", "#00703c", "#912b88", "#d4351c", "#5694ca", "#85994b", "#6f72af"];
/// More groups than this are drawn together as "Others".
const SHOWN: usize = 7;
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The chart: 12 stacked bars, the largest groups first, the rest as "Others".
pub fn svg(a: &Annual) -> String {
    let mut series: Vec<(String, Vec<Decimal>)> =
        a.rows.iter().take(SHOWN).map(|r| (r.group.clone(), r.months.clone())).collect();
    if a.rows.len() > SHOWN {
        let others = (0..12).map(|m| a.rows[SHOWN..].iter().map(|r| r.months[m]).sum()).collect();
        series.push(("Others".into(), others));
    }
    let peak = a.month_totals.iter().copied().max().unwrap_or_default().max(Decimal::ONE);
    let (left, top, plot_w, plot_h, bar_w) = (80.0, 50.0, 720.0, 300.0, 40.0);
    let legend_top = top + plot_h + 50.0;
    let height = legend_top + 22.0 * series.len() as f64 + 10.0;
    let title = format!("Spend in {} by {}, {}", a.year, a.by.word(), a.currency);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"840\" height=\"{height:.0}\" viewBox=\"0 0 840 {height:.0}\" role=\"img\" aria-labelledby=\"title desc\" font-family=\"Arial, sans-serif\" font-size=\"14\">\n"
    );
    let _ = writeln!(out, "<title id=\"title\">{}</title>", escape(&title));
    let mut desc = format!("Total {} {}.", a.total, a.currency);
    for r in &a.rows {
        let _ = write!(desc, " {}: {} {}.", r.group, r.total, a.currency);
    }
    let _ = writeln!(out, "<desc id=\"desc\">{}</desc>", escape(&desc));
    let _ = writeln!(
        out,
        "<text x=\"{left}\" y=\"28\" font-size=\"19\" font-weight=\"bold\" fill=\"#0b0c0c\">{}</text>",
        escape(&title)
    );
    // Axis and gridlines at quarters of the peak.
    for q in 0..=4 {
        let y = top + plot_h - plot_h * f64::from(q) / 4.0;
        let value = (peak * Decimal::from(q) / Decimal::from(4)).round_dp(2);
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#b1b4b6\" stroke-width=\"1\"/>",
            left + plot_w
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#0b0c0c\">{value}</text>",
            left - 8.0,
            y + 5.0
        );
    }
    let scale = |d: Decimal| d.to_f64().unwrap_or(0.0) / peak.to_f64().unwrap_or(1.0) * plot_h;
    for (m, name) in MONTHS.iter().enumerate() {
        let x = left + (plot_w / 12.0) * m as f64 + (plot_w / 12.0 - bar_w) / 2.0;
        let mut y = top + plot_h;
        for (i, (group, months)) in series.iter().enumerate() {
            let h = scale(months[m]);
            if h <= 0.0 {
                continue;
            }
            y -= h;
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar_w}\" height=\"{h:.1}\" fill=\"{}\"><title>{} {}: {} {}</title></rect>",
                COLOURS[i % COLOURS.len()],
                escape(group),
                name,
                months[m],
                a.currency
            );
        }
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#0b0c0c\">{name}</text>",
            x + bar_w / 2.0,
            top + plot_h + 22.0
        );
    }
    for (i, (group, months)) in series.iter().enumerate() {
        let y = legend_top + 22.0 * i as f64;
        let total: Decimal = months.iter().sum();
        let _ = writeln!(
            out,
            "<rect x=\"{left}\" y=\"{:.1}\" width=\"16\" height=\"16\" fill=\"{}\"/>",
            y - 13.0,
            COLOURS[i % COLOURS.len()]
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{y:.1}\" fill=\"#0b0c0c\">{} ({total} {})</text>",
            left + 24.0,
            escape(group),
            a.currency
        );
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metering::annual::{Row, build};
    use crate::metering::report::By;
    use rust_decimal::dec;

    #[test]
    fn the_chart_names_every_group_and_its_figures_for_people_who_cannot_see_it() {
        let mut a = build(2026, By::Sector, "GBP", &vec![None; 12], vec![]);
        a.rows = (0..9)
            .map(|i| {
                let mut months = vec![Decimal::ZERO; 12];
                months[10] = Decimal::from(10 - i);
                Row { group: format!("group <{i}>"), total: months[10], months }
            })
            .collect();
        a.month_totals[10] = dec!(54);
        a.total = dec!(54);
        let s = svg(&a);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("<title id=\"title\">Spend in 2026 by sector, GBP</title>"), "{s}");
        assert!(s.contains("group &lt;0&gt;: 10 GBP."), "every group in the text alternative: {s}");
        assert!(s.contains(">Others (5 GBP)<"), "groups beyond seven drawn together: {s}");
        assert_eq!(s.matches("<rect").count(), 8 + 8, "eight stacked bars in November, eight legend keys");
    }
}
