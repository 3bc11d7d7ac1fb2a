// The benchmark reports' SVG charts; the rules they follow are in
// bench/charts.hpp.
#include "bench/charts.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>

#include <fmt/format.h>

namespace polymap::bench::charts {
namespace {

// Okabe & Ito (2008), "Color Universal Design": colours told apart with
// every common colour-vision deficiency. Their yellow (#F0E442) is replaced
// by a mid grey: a yellow line on white was too faint to read in the
// rendered report. Black comes last, so the one-thread limit (usually the
// last map) is a black dotted level. Markers and bars have a dark outline.
constexpr const char* palette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                   "#E69F00", "#56B4E9", "#8C8C8C", "#000000"};
constexpr marker_shape shapes[] = {marker_shape::circle,  marker_shape::square,        marker_shape::triangle,
                                   marker_shape::diamond, marker_shape::triangle_down, marker_shape::cross,
                                   marker_shape::plus,    marker_shape::star};
constexpr const char* dashes[] = {"", "7 4", "2 3", "9 3 2 3"};
constexpr const char* outline = "#222222";

// Geometry in viewBox units.
constexpr double left = 70, right = 20, top = 40, plot_height = 250;
constexpr double legend_row = 19, legend_sample = 30, legend_gap = 18;

std::string tick_label(double v) {
  const double a = std::abs(v);
  if (a >= 1e6 && std::fmod(a, 1e6) == 0) return fmt::format("{:g}M", v / 1e6);
  if (a >= 1e4 && std::fmod(a, 1e3) == 0) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

// A round axis maximum at or above v, and a tick step.
std::pair<double, double> nice_axis(double v) {
  if (!(v > 0)) return {1, 0.25};
  const double mag = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= v) {
      const double top_value = m * mag;
      // Round steps: 0.2, 0.4, 0.5 or 1 times the magnitude.
      const double step = top_value / (m == 2.0 ? 4 : 5);
      return {top_value, step};
    }
  }
  return {10 * mag, 2 * mag};
}

// The y axis: maps values to viewBox y and draws ticks, grid and title.
struct y_axis {
  bool log = false;
  double lo = 0, hi = 1;  // axis range (lo > 0 on a log axis)
  double y_top = top, height = plot_height;

  double pos(double v) const {
    if (log) {
      v = std::max(v, lo);
      return y_top + height - std::log10(v / lo) / std::log10(hi / lo) * height;
    }
    return y_top + height - (v - lo) / (hi - lo) * height;
  }
  double bottom() const { return y_top + height; }
};

y_axis make_axis(const options& o, const std::vector<series>& ss) {
  double maxv = o.reference_line.value_or(0), minpos = o.reference_line.value_or(0);
  for (const auto& s : ss)
    for (const auto& v : s.values)
      if (v && *v > 0) {
        maxv = std::max(maxv, *v);
        minpos = minpos > 0 ? std::min(minpos, *v) : *v;
      }
  y_axis a;
  a.log = o.scale == y_scale::log || (o.scale == y_scale::automatic && minpos > 0 && maxv / minpos > y_log_span);
  if (a.log && minpos > 0) {
    a.lo = std::pow(10.0, std::floor(std::log10(minpos)));
    a.hi = std::pow(10.0, std::ceil(std::log10(maxv)));
    if (a.hi <= a.lo) a.hi = a.lo * 10;
  } else {
    a.log = a.log && minpos > 0;  // nothing positive: a log axis has no range
    a.lo = 0;
    a.hi = nice_axis(maxv * 1.05).first;
  }
  return a;
}

void draw_axis(std::string& out, const options& o, const y_axis& a) {
  auto it = std::back_inserter(out);
  fmt::format_to(it, "<g class=\"y-axis\" data-scale=\"{}\">\n", a.log ? "log" : "linear");
  std::vector<double> ticks;
  if (a.log) {
    const int decades = static_cast<int>(std::lround(std::log10(a.hi / a.lo)));
    for (int d = 0; d <= decades; ++d) {
      const double base = a.lo * std::pow(10.0, d);
      ticks.push_back(base);
      if (decades <= 2 && d < decades) {
        ticks.push_back(base * 2);
        ticks.push_back(base * 5);
      }
    }
  } else {
    const double step = nice_axis(a.hi).second;
    for (double v = 0; v <= a.hi + step / 2; v += step) ticks.push_back(v);
  }
  for (double v : ticks) {
    const double y = a.pos(v);
    fmt::format_to(it,
                   "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#d8d8d8\"/>"
                   "<text class=\"tick\" x=\"{3}\" y=\"{4:.1f}\" font-size=\"{5}\" text-anchor=\"end\">{6}</text>\n",
                   left, y, chart_width - right, left - 6, y + 4, text_size, tick_label(v));
  }
  const double mid = a.y_top + a.height / 2;
  fmt::format_to(it,
                 "<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"#555\"/>"
                 "<text class=\"axis-title\" x=\"16\" y=\"{3}\" font-size=\"{4}\" transform=\"rotate(-90 16 {3})\" "
                 "text-anchor=\"middle\">{5}</text>\n</g>\n",
                 left, a.y_top, a.bottom(), mid, text_size, xml_escape(o.y_unit + (a.log ? " (log scale)" : "")));
}

void marker(std::string& out, marker_shape m, double x, double y, const char* colour, const std::string& tooltip) {
  auto it = std::back_inserter(out);
  const double s = 4.8;
  const std::string tip = tooltip.empty() ? "" : "<title>" + xml_escape(tooltip) + "</title>";
  auto polygon = [&](std::initializer_list<std::pair<double, double>> pts) {
    std::string p;
    for (auto [dx, dy] : pts) p += fmt::format("{:.1f},{:.1f} ", x + dx * s, y + dy * s);
    fmt::format_to(it, "<polygon points=\"{}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"0.7\">{}</polygon>", p, colour,
                   outline, tip);
  };
  switch (m) {
    case marker_shape::circle:
      fmt::format_to(it, "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"{}\" fill=\"{}\" stroke=\"{}\" stroke-width=\"0.7\">",
                     x, y, s, colour, outline);
      out += tip + "</circle>";
      break;
    case marker_shape::square:
      polygon({{-0.85, -0.85}, {0.85, -0.85}, {0.85, 0.85}, {-0.85, 0.85}});
      break;
    case marker_shape::triangle:
      polygon({{0, -1.15}, {1.05, 0.8}, {-1.05, 0.8}});
      break;
    case marker_shape::diamond:
      polygon({{0, -1.25}, {1, 0}, {0, 1.25}, {-1, 0}});
      break;
    case marker_shape::triangle_down:
      polygon({{0, 1.15}, {1.05, -0.8}, {-1.05, -0.8}});
      break;
    case marker_shape::cross:  // a thick x
      polygon({{-1, -0.6},
               {-0.6, -1},
               {0, -0.4},
               {0.6, -1},
               {1, -0.6},
               {0.4, 0},
               {1, 0.6},
               {0.6, 1},
               {0, 0.4},
               {-0.6, 1},
               {-1, 0.6},
               {-0.4, 0}});
      break;
    case marker_shape::plus:
      polygon({{-0.3, -1.1},
               {0.3, -1.1},
               {0.3, -0.3},
               {1.1, -0.3},
               {1.1, 0.3},
               {0.3, 0.3},
               {0.3, 1.1},
               {-0.3, 1.1},
               {-0.3, 0.3},
               {-1.1, 0.3},
               {-1.1, -0.3},
               {-0.3, -0.3}});
      break;
    case marker_shape::star:
      polygon({{0, -1.3},
               {0.3, -0.42},
               {1.24, -0.4},
               {0.49, 0.16},
               {0.76, 1.05},
               {0, 0.52},
               {-0.76, 1.05},
               {-0.49, 0.16},
               {-1.24, -0.4},
               {-0.3, -0.42}});
      break;
  }
}

// Legend rows below the plot, starting at y; returns the y below them.
double legend(std::string& out, const std::vector<series>& ss, double y, bool bars) {
  std::size_t longest = 0;
  for (const auto& s : ss) longest = std::max(longest, s.label.size());
  const double item = legend_sample + 6 + static_cast<double>(longest) * char_width + legend_gap;
  const double avail = chart_width - 2 * 12;
  const std::size_t cols = std::max<std::size_t>(1, static_cast<std::size_t>(avail / item));
  // Spread the columns over the whole width.
  const double col_w = cols > 1 ? avail / static_cast<double>(cols) : item;
  auto it = std::back_inserter(out);
  for (std::size_t i = 0; i < ss.size(); ++i) {
    const auto& s = ss[i];
    const auto st = style_of(s.style);
    const double x = 12 + static_cast<double>(i % cols) * col_w;
    const double yy = y + static_cast<double>(i / cols) * legend_row;
    fmt::format_to(it, "<g class=\"legend\" data-series=\"{}\">", xml_escape(s.name));
    if (bars) {
      fmt::format_to(it,
                     "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"12\" fill=\"{}\" stroke=\"{}\" "
                     "stroke-width=\"0.7\"/>",
                     x, yy - 6, st.colour, outline);
      marker(out, st.marker, x + 23, yy, st.colour, "");
    } else {
      fmt::format_to(it,
                     "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"{}\" stroke-width=\"2.2\" "
                     "stroke-dasharray=\"{}\"/>",
                     x, yy, x + legend_sample, yy, st.colour, s.reference ? "3 3" : st.dash);
      marker(out, st.marker, x + legend_sample / 2, yy, st.colour, "");
    }
    fmt::format_to(it, "<text x=\"{}\" y=\"{}\" font-size=\"{}\">{}</text></g>\n", x + legend_sample + 6, yy + 4,
                   text_size, xml_escape(s.label));
  }
  const std::size_t rows = (ss.size() + cols - 1) / cols;
  return y + static_cast<double>(rows) * legend_row;
}

// The opening of a chart; the height is filled in at the end (placeholder).
constexpr std::string_view height_mark = "@HEIGHT@";

void frame_open(std::string& out, const options& o) {
  fmt::format_to(std::back_inserter(out),
                 "<svg {}viewBox=\"0 0 {} {}\" role=\"img\" class=\"chart\" id=\"{}\" "
                 "font-family=\"DejaVu Sans, Verdana, sans-serif\">\n<title>{}</title>\n"
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
                 "<text x=\"{}\" y=\"22\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
                 o.standalone ? fmt::format("xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" ",
                                            chart_width, height_mark)
                              : std::string(),
                 chart_width, height_mark, xml_escape(o.id), xml_escape(o.title), 12, xml_escape(o.title));
}

chart frame_close(std::string& out, double height) {
  out += "</svg>\n";
  const std::string h = fmt::format("{:.0f}", std::ceil(height));
  for (auto p = out.find(height_mark); p != std::string::npos; p = out.find(height_mark, p))
    out.replace(p, height_mark.size(), h);
  return {std::move(out), chart_width, std::ceil(height)};
}

// x labels under the plot and the x title; returns the y below them.
double x_labels(std::string& out, const options& o, const std::vector<std::string>& xs, double bottom,
                double (*pos)(std::size_t, std::size_t)) {
  auto it = std::back_inserter(out);
  for (std::size_t i = 0; i < xs.size(); ++i)
    fmt::format_to(it, "<text class=\"tick\" x=\"{:.1f}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   pos(i, xs.size()), bottom + 18, text_size, xml_escape(xs[i]));
  double y = bottom + 24;
  if (!o.x_title.empty()) {
    fmt::format_to(it, "<text x=\"{}\" y=\"{}\" font-size=\"{}\" text-anchor=\"middle\">{}</text>\n",
                   left + (chart_width - left - right) / 2, bottom + 38, text_size, xml_escape(o.x_title));
    y = bottom + 44;
  }
  return y;
}

double category_x(std::size_t i, std::size_t n) {
  const double pw = chart_width - left - right;
  return left + (static_cast<double>(i) + 0.5) * pw / static_cast<double>(std::max<std::size_t>(1, n));
}

// The end of every chart: the reference level, the x labels, the legend.
chart finish(std::string& out, const options& o, const y_axis& a, const std::vector<std::string>& xs,
             const std::vector<series>& ss, bool bars) {
  if (o.reference_line) {
    const double y = a.pos(*o.reference_line);
    fmt::format_to(
        std::back_inserter(out),
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"black\" stroke-dasharray=\"4 2\"/>\n", left, y,
        chart_width - right, y);
  }
  const double below = x_labels(out, o, xs, a.bottom(), category_x);
  return frame_close(out, legend(out, ss, below + 14, bars) + 4);
}

std::string tooltip(const series& s, const std::string& x, double v, const options& o) {
  return fmt::format("{}, {}: {}{}", s.label, x, fmt_num(v), o.value_suffix);
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* name(marker_shape m) {
  switch (m) {
    case marker_shape::circle:
      return "circle";
    case marker_shape::square:
      return "square";
    case marker_shape::triangle:
      return "triangle";
    case marker_shape::diamond:
      return "diamond";
    case marker_shape::triangle_down:
      return "triangle_down";
    case marker_shape::cross:
      return "cross";
    case marker_shape::plus:
      return "plus";
    case marker_shape::star:
      return "star";
  }
  return "?";
}

series_style style_of(std::size_t i) {
  constexpr std::size_t n = std::size(palette);
  return {palette[i % n], shapes[(i + i / n) % std::size(shapes)], dashes[i % std::size(dashes)]};
}

std::string fmt_num(double v) {
  if (v == 0) return "0";
  const double a = std::abs(v);
  if (a >= 100) return fmt::format("{:.0f}", v);
  if (a >= 10) return fmt::format("{:.1f}", v);
  if (a >= 0.01) return fmt::format("{:.2f}", v);
  return fmt::format("{:.2g}", v);
}

chart line_chart(const options& o, const std::vector<std::string>& xs, const std::vector<series>& ss) {
  std::string out;
  frame_open(out, o);
  const y_axis a = make_axis(o, ss);
  draw_axis(out, o, a);
  auto it = std::back_inserter(out);
  for (const auto& s : ss) {
    const auto st = style_of(s.style);
    fmt::format_to(it, "<g class=\"series\" data-series=\"{}\">", xml_escape(s.name));
    if (s.reference) {
      // A one-thread limit: a dotted level across the chart, marked at each x.
      if (!s.values.empty() && s.values[0]) {
        const double v = *s.values[0], y = a.pos(v);
        fmt::format_to(it,
                       "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-width=\"2\" "
                       "stroke-dasharray=\"3 3\"/>",
                       left, y, chart_width - right, y, st.colour);
        for (std::size_t i = 0; i < xs.size(); ++i)
          marker(out, st.marker, category_x(i, xs.size()), y, st.colour,
                 fmt::format("{}: {}{} at 1 thread", s.label, fmt_num(v), o.value_suffix));
      }
    } else {
      std::string points;
      for (std::size_t i = 0; i < s.values.size(); ++i)
        if (s.values[i]) points += fmt::format("{:.1f},{:.1f} ", category_x(i, xs.size()), a.pos(*s.values[i]));
      if (!points.empty())
        fmt::format_to(it,
                       "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2.2\" stroke-dasharray=\"{}\" "
                       "points=\"{}\"/>",
                       st.colour, st.dash, points);
      for (std::size_t i = 0; i < s.values.size() && i < xs.size(); ++i)
        if (s.values[i])
          marker(out, st.marker, category_x(i, xs.size()), a.pos(*s.values[i]), st.colour,
                 tooltip(s, xs[i], *s.values[i], o));
    }
    out += "</g>\n";
  }
  return finish(out, o, a, xs, ss, false);
}

chart bar_chart(const options& o, const std::vector<std::string>& groups, const std::vector<series>& ss) {
  std::string out;
  frame_open(out, o);
  const y_axis a = make_axis(o, ss);
  draw_axis(out, o, a);
  auto it = std::back_inserter(out);
  const double pw = chart_width - left - right;
  const double gw = pw / static_cast<double>(std::max<std::size_t>(1, groups.size()));
  const double bw = std::max(2.0, (gw - 12) / static_cast<double>(std::max<std::size_t>(1, ss.size())));
  for (std::size_t si = 0; si < ss.size(); ++si) {
    const auto& s = ss[si];
    const auto st = style_of(s.style);
    fmt::format_to(it, "<g class=\"series\" data-series=\"{}\">", xml_escape(s.name));
    for (std::size_t g = 0; g < s.values.size() && g < groups.size(); ++g) {
      if (!s.values[g]) continue;
      const double v = *s.values[g];
      const double y = a.pos(v), x = left + static_cast<double>(g) * gw + 6 + static_cast<double>(si) * bw;
      fmt::format_to(it,
                     "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\" stroke=\"{}\" "
                     "stroke-width=\"0.5\"><title>{}</title></rect>",
                     x, y, bw - 1, std::max(0.0, a.bottom() - y), st.colour, outline,
                     xml_escape(tooltip(s, groups[g], v, o)));
      // The series' marker just above the bar, where the bar is wide enough.
      if (bw >= 11) marker(out, st.marker, x + (bw - 1) / 2, y - 7, st.colour, "");
    }
    out += "</g>\n";
  }
  // A group's centre is category_x: the groups split the plot's width evenly.
  return finish(out, o, a, groups, ss, true);
}

}  // namespace polymap::bench::charts
