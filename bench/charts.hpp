// bench/charts.hpp — the SVG charts of the benchmark reports (bench/report.hpp):
// line charts over categorical x values and grouped bar charts, with a
// linear or logarithmic y axis, as inline SVG (no script, no network).
//
// Readability rules every chart follows (issue 20):
//   * series are told apart by colour AND shape: Okabe & Ito's colour-blind-
//     safe palette, a marker shape per series and, on line charts, a dash
//     pattern, so they survive colour blindness and grey-scale printing;
//   * the legend sits below the plot, laid out in as many columns as the
//     chart's width holds for the longest label, so no label is cut off;
//   * the y axis is logarithmic where asked or, for `automatic`, where the
//     positive values span more than y_log_span (a 30x spread squeezes the
//     small values into the bottom pixels of a linear axis); a log axis says
//     "(log scale)" in its title;
//   * in HTML the SVG scales to its grid cell (viewBox, width 100%); a
//     standalone SVG has fixed pixel sizes.
// Every series is a <g class="series" data-series="NAME">, every legend entry
// a <g class="legend" data-series="NAME">, and the y axis group carries
// data-scale="linear|log", so tests and readers can find them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace polymap::bench::charts {

std::string xml_escape(std::string_view s);

// The viewBox width of every chart; a 1400-pixel page shows two side by side.
inline constexpr double chart_width = 640;
// Legend and tick text size, in viewBox units.
inline constexpr double text_size = 12;
// The estimated advance of one character of sans-serif text at text_size: a
// generous 0.62 em (DejaVu Sans averages about 0.55 em over map names), used
// to lay out the legend so that no label runs past the chart's edge.
inline constexpr double char_width = 0.62 * text_size;
// `automatic` picks a log axis above this ratio of largest to smallest value.
inline constexpr double y_log_span = 30;

enum class marker_shape { circle, square, triangle, diamond, triangle_down, cross, plus, star };
const char* name(marker_shape m);

// How series number i is drawn: a colour, a marker and a dash pattern
// ("" for solid). Distinct (colour, marker, dash) for every i below 64, and
// distinct colours below 8.
struct series_style {
  const char* colour;
  marker_shape marker;
  const char* dash;
};
series_style style_of(std::size_t i);

struct series {
  std::string name;                           // data-series (a map name)
  std::string label;                          // legend text, shown whole
  std::size_t style = 0;                      // style_of(style)
  std::vector<std::optional<double>> values;  // one per x category
  bool reference = false;                     // line charts: drawn as a dashed level at values[0]
};

enum class y_scale { linear, log, automatic };

struct options {
  std::string id;       // the svg's id
  std::string title;    // drawn above the plot
  std::string x_title;  // below the x labels ("" for none)
  std::string y_unit;   // axis title; " (log scale)" is appended on a log axis
  y_scale scale = y_scale::automatic;
  std::optional<double> reference_line;  // a dashed black level (1.0 for ratios)
  bool standalone = false;               // an SVG document of its own (xmlns, pixel size)
  std::string value_suffix;              // after a value in tooltips (" Mops/s")
};

struct chart {
  std::string svg;
  double width = 0, height = 0;  // viewBox size
};

// Lines over categorical x values; each point has the series' marker.
chart line_chart(const options& o, const std::vector<std::string>& xs, const std::vector<series>& ss);

// Grouped bars: one group per category, one bar per series, the series'
// marker on top of bars wide enough to hold one.
chart bar_chart(const options& o, const std::vector<std::string>& groups, const std::vector<series>& ss);

// A number for an axis tick or a table cell: 3 significant digits at most.
std::string fmt_num(double v);

}  // namespace polymap::bench::charts
