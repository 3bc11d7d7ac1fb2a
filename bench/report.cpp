// The benchmark report: a markdown table and an HTML page with inline SVG
// charts (bench/report.hpp). Every chart marks each of its series with
// data-series="<map>" so tests and readers can find them.
#include "bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace polymap::bench {
namespace {

// Distinct colours that survive grey-scale printing reasonably well.
constexpr const char* palette[] = {"#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1",
                                   "#76b7b2", "#edc948", "#9c755f", "#ff9da7", "#bab0ac"};

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

std::string fmt_n(std::size_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return fmt::format("{}M", n / 1'000'000);
  if (n >= 1'000 && n % 1'000 == 0) return fmt::format("{}k", n / 1'000);
  return fmt::format("{}", n);
}

std::string fmt_num(double v) {
  if (v == 0) return "0";
  if (v >= 100) return fmt::format("{:.0f}", v);
  if (v >= 10) return fmt::format("{:.1f}", v);
  return fmt::format("{:.2f}", v);
}

// A round axis maximum at or above v, and a tick step.
std::pair<double, double> nice_axis(double v) {
  if (!(v > 0)) return {1, 0.25};
  const double mag = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (m * mag >= v) {
      const double top = m * mag;
      const double step = top / (m == 2.5 ? 5 : (m == 1.0 || m == 10.0 ? 5 : 4));
      return {top, step};
    }
  }
  return {10 * mag, 2 * mag};
}

struct series {
  std::string name;   // map name (data-series)
  std::string label;  // legend text
  std::string color;
  std::vector<std::optional<double>> values;  // one per x category
  bool reference = false;                     // drawn as a dashed level line
};

struct chart_box {
  double w = 460, h = 260;
  double left = 56, right = 150, top = 34, bottom = 40;
};

void legend(std::string& out, const std::vector<series>& ss, const chart_box& b) {
  double y = b.top + 4;
  for (const auto& s : ss) {
    fmt::format_to(std::back_inserter(out),
                   "<g class=\"legend\" data-series=\"{0}\"><rect x=\"{1}\" y=\"{2}\" width=\"10\" height=\"10\" "
                   "fill=\"{3}\"/><text x=\"{4}\" y=\"{5}\" font-size=\"10\">{6}</text></g>\n",
                   xml_escape(s.name), b.w - b.right + 10, y, s.color, b.w - b.right + 24, y + 9, xml_escape(s.label));
    y += 15;
  }
}

// y axis with grid lines; returns the axis maximum.
double y_axis(std::string& out, const chart_box& b, double max_value, const std::string& unit) {
  const auto [top, step] = nice_axis(max_value);
  const double ph = b.h - b.top - b.bottom;
  for (double v = 0; v <= top + step / 2; v += step) {
    const double y = b.top + ph - v / top * ph;
    fmt::format_to(std::back_inserter(out),
                   "<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>"
                   "<text x=\"{3}\" y=\"{4:.1f}\" font-size=\"10\" text-anchor=\"end\">{5}</text>\n",
                   b.left, y, b.w - b.right, b.left - 4, y + 3, fmt_num(v));
  }
  fmt::format_to(std::back_inserter(out),
                 "<text x=\"12\" y=\"{0}\" font-size=\"10\" transform=\"rotate(-90 12 {0})\" "
                 "text-anchor=\"middle\">{1}</text>\n",
                 b.top + ph / 2, xml_escape(unit));
  return top;
}

void frame_open(std::string& out, const chart_box& b, const std::string& title, const std::string& id,
                bool standalone) {
  fmt::format_to(std::back_inserter(out),
                 "<svg {}width=\"{}\" height=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" class=\"chart\" "
                 "id=\"{}\" font-family=\"sans-serif\">\n<title>{}</title>\n"
                 "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
                 "<text x=\"{}\" y=\"18\" font-size=\"12\" font-weight=\"bold\">{}</text>\n",
                 standalone ? "xmlns=\"http://www.w3.org/2000/svg\" " : "", b.w, b.h, b.w, b.h, xml_escape(id),
                 xml_escape(title), b.left, xml_escape(title));
}

// Lines over categorical x values (thread counts).
std::string line_chart(const std::string& id, const std::string& title, const std::vector<std::string>& xs,
                       const std::string& x_title, const std::vector<series>& ss, bool standalone = false) {
  chart_box b;
  std::string out;
  frame_open(out, b, title, id, standalone);
  double maxv = 0;
  for (const auto& s : ss)
    for (const auto& v : s.values)
      if (v) maxv = std::max(maxv, *v);
  const double top = y_axis(out, b, maxv * 1.05, "Mops/s");
  const double pw = b.w - b.left - b.right, ph = b.h - b.top - b.bottom;
  auto xpos = [&](std::size_t i) {
    return b.left + (static_cast<double>(i) + 0.5) * pw / static_cast<double>(xs.size());
  };
  auto ypos = [&](double v) { return b.top + ph - v / top * ph; };
  for (std::size_t i = 0; i < xs.size(); ++i)
    fmt::format_to(std::back_inserter(out),
                   "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n", xpos(i),
                   b.h - b.bottom + 14, xml_escape(xs[i]));
  fmt::format_to(std::back_inserter(out),
                 "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n", b.left + pw / 2,
                 b.h - 8, xml_escape(x_title));
  for (const auto& s : ss) {
    fmt::format_to(std::back_inserter(out), "<g class=\"series\" data-series=\"{}\">", xml_escape(s.name));
    if (s.reference) {
      // One-thread limit: a dashed level across the chart.
      if (s.values.size() && s.values[0]) {
        const double y = ypos(*s.values[0]);
        fmt::format_to(std::back_inserter(out),
                       "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"{}\" stroke-dasharray=\"5 3\"/>"
                       "<title>{}: {} Mops/s at 1 thread</title>",
                       b.left, y, b.w - b.right, y, s.color, xml_escape(s.label), fmt_num(*s.values[0]));
      }
    } else {
      std::string points;
      for (std::size_t i = 0; i < s.values.size(); ++i)
        if (s.values[i]) points += fmt::format("{:.1f},{:.1f} ", xpos(i), ypos(*s.values[i]));
      if (!points.empty())
        fmt::format_to(std::back_inserter(out),
                       "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>", s.color, points);
      for (std::size_t i = 0; i < s.values.size(); ++i)
        if (s.values[i])
          fmt::format_to(
              std::back_inserter(out),
              "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"{}\"><title>{}, {}: {} Mops/s</title></circle>",
              xpos(i), ypos(*s.values[i]), s.color, xml_escape(s.label), xml_escape(xs[i]), fmt_num(*s.values[i]));
    }
    out += "</g>\n";
  }
  legend(out, ss, b);
  out += "</svg>\n";
  return out;
}

// Grouped bars: one group per category, one bar per series. reference_line
// draws a level (1.0 for ratios).
std::string bar_chart(const std::string& id, const std::string& title, const std::vector<std::string>& groups,
                      const std::string& unit, const std::vector<series>& ss, std::optional<double> reference_line) {
  chart_box b;
  b.w = std::max(460.0, 150 + 56 + static_cast<double>(groups.size() * (ss.size() * 9 + 14)));
  std::string out;
  frame_open(out, b, title, id, false);
  double maxv = reference_line.value_or(0);
  for (const auto& s : ss)
    for (const auto& v : s.values)
      if (v) maxv = std::max(maxv, *v);
  const double top = y_axis(out, b, maxv * 1.05, unit);
  const double pw = b.w - b.left - b.right, ph = b.h - b.top - b.bottom;
  const double gw = pw / static_cast<double>(std::max<std::size_t>(1, groups.size()));
  const double bw = std::max(2.0, (gw - 10) / static_cast<double>(std::max<std::size_t>(1, ss.size())));
  for (std::size_t g = 0; g < groups.size(); ++g)
    fmt::format_to(std::back_inserter(out),
                   "<text x=\"{:.1f}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\">{}</text>\n",
                   b.left + (static_cast<double>(g) + 0.5) * gw, b.h - b.bottom + 14, xml_escape(groups[g]));
  for (std::size_t si = 0; si < ss.size(); ++si) {
    const auto& s = ss[si];
    fmt::format_to(std::back_inserter(out), "<g class=\"series\" data-series=\"{}\">", xml_escape(s.name));
    for (std::size_t g = 0; g < s.values.size() && g < groups.size(); ++g) {
      if (!s.values[g]) continue;
      const double h = *s.values[g] / top * ph;
      fmt::format_to(std::back_inserter(out),
                     "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"><title>{}, {}: "
                     "{}</title></rect>",
                     b.left + static_cast<double>(g) * gw + 5 + static_cast<double>(si) * bw, b.top + ph - h, bw - 1, h,
                     s.color, xml_escape(s.label), xml_escape(groups[g]), fmt_num(*s.values[g]));
    }
    out += "</g>\n";
  }
  if (reference_line) {
    const double y = b.top + ph - *reference_line / top * ph;
    fmt::format_to(
        std::back_inserter(out),
        "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"black\" stroke-dasharray=\"4 2\"/>\n", b.left,
        y, b.w - b.right, y);
  }
  legend(out, ss, b);
  out += "</svg>\n";
  return out;
}

std::vector<int> thread_counts(const results& r) {
  std::set<int> s;
  for (const auto& row : r.rows) s.insert(row.cfg.threads);
  return {s.begin(), s.end()};
}

std::string color_of(const results& r, const std::string& map) {
  for (std::size_t i = 0; i < r.maps.size(); ++i)
    if (r.maps[i].name == map) return palette[i % std::size(palette)];
  return "#000000";
}

std::string label_of(const results& r, const std::string& map) {
  for (const auto& m : r.maps)
    if (m.name == map) return m.label;
  return map;
}

// The maps in the order of r.maps, then any others the rows mention.
std::vector<std::string> map_names(const results& r) {
  std::vector<std::string> v;
  for (const auto& m : r.maps) v.push_back(m.name);
  for (const auto& row : r.rows)
    if (std::find(v.begin(), v.end(), row.cfg.map) == v.end()) v.push_back(row.cfg.map);
  return v;
}

const measurement* find_row(const results& r, const std::string& map, workload w, key_kind k, std::size_t n,
                            distribution d, int t) {
  for (const auto& row : r.rows)
    if (row.cfg.map == map && row.cfg.wl == w && row.cfg.keys == k && row.cfg.n == n && row.cfg.dist == d &&
        row.cfg.threads == t)
      return &row;
  return nullptr;
}

// (keys, n, dist) combinations present, in order of appearance.
std::vector<std::tuple<key_kind, std::size_t, distribution>> scenes(const results& r) {
  std::vector<std::tuple<key_kind, std::size_t, distribution>> v;
  for (const auto& row : r.rows) {
    auto t = std::make_tuple(row.cfg.keys, row.cfg.n, row.cfg.dist);
    if (std::find(v.begin(), v.end(), t) == v.end()) v.push_back(t);
  }
  return v;
}

std::vector<workload> workloads_in(const results& r) {
  std::vector<workload> v;
  for (auto w : all_workloads())
    for (const auto& row : r.rows)
      if (row.cfg.wl == w) {
        v.push_back(w);
        break;
      }
  return v;
}

std::string throughput_chart(const results& r, workload w, key_kind k, std::size_t n, distribution d, bool standalone) {
  const auto ts = thread_counts(r);
  std::vector<std::string> xs;
  for (int t : ts) xs.push_back(fmt::format("{}", t));
  std::vector<series> ss;
  for (const auto& m : map_names(r)) {
    series s{m, label_of(r, m), color_of(r, m), {}, m == nosync_map};
    bool any = false;
    for (int t : ts) {
      const auto* row = find_row(r, m, w, k, n, d, t);
      s.values.push_back(row ? std::optional<double>(row->median) : std::nullopt);
      any = any || row;
    }
    if (any) ss.push_back(std::move(s));
  }
  const std::string dist_text = w == workload::insert ? "" : fmt::format(", {}", name(d));
  return line_chart(fmt::format("tp-{}-{}-{}-{}", name(w), name(k), n, name(d)),
                    fmt::format("{}: {}, N={}{}", title(w), name(k), fmt_n(n), dist_text), xs, "threads", ss,
                    standalone);
}

std::string ratio_chart(const results& r, workload w) {
  const auto ts = thread_counts(r);
  std::vector<std::string> groups;
  for (int t : ts) groups.push_back(fmt::format("{} thread{}", t, t == 1 ? "" : "s"));
  std::vector<series> ss;
  for (const auto& m : map_names(r)) {
    series s{m, label_of(r, m), color_of(r, m), {}, false};
    bool any = false;
    for (int t : ts) {
      double log_sum = 0;
      int count = 0;
      for (const auto& row : r.rows)
        if (row.cfg.map == m && row.cfg.wl == w && row.cfg.threads == t && row.ratio && *row.ratio > 0) {
          log_sum += std::log(*row.ratio);
          ++count;
        }
      s.values.push_back(count ? std::optional<double>(std::exp(log_sum / count)) : std::nullopt);
      any = any || count;
    }
    if (any) ss.push_back(std::move(s));
  }
  return bar_chart(fmt::format("ratio-{}", name(w)),
                   fmt::format("{}: ratio to {} (geometric mean)", title(w), label_of(r, baseline_map)), groups,
                   "x baseline", ss, 1.0);
}

std::string memory_chart(const results& r) {
  std::vector<std::pair<key_kind, std::size_t>> cats;
  for (const auto& m : r.memory) {
    auto c = std::make_pair(m.keys, m.n);
    if (std::find(cats.begin(), cats.end(), c) == cats.end()) cats.push_back(c);
  }
  std::vector<std::string> groups;
  for (auto [k, n] : cats) groups.push_back(fmt::format("{}, N={}", name(k), fmt_n(n)));
  std::vector<series> ss;
  for (const auto& m : map_names(r)) {
    series s{m, label_of(r, m), color_of(r, m), {}, false};
    bool any = false;
    for (auto [k, n] : cats) {
      std::optional<double> v;
      for (const auto& row : r.memory)
        if (row.map == m && row.keys == k && row.n == n) v = row.bytes_per_entry;
      s.values.push_back(v);
      any = any || v;
    }
    if (any) ss.push_back(std::move(s));
  }
  return bar_chart("memory", "Heap bytes per entry", groups, "bytes/entry", ss, std::nullopt);
}

// Histograms found anywhere in a hashstat JSON: arrays of numbers under a
// key that names a histogram, labelled by the enclosing object's name.
void collect_histograms(const nlohmann::json& j, const std::string& path,
                        std::vector<std::pair<std::string, std::vector<double>>>& out) {
  if (j.is_object()) {
    std::string label = path;
    for (const char* k : {"name", "label", "hash", "map", "case", "config"})
      if (j.contains(k) && j[k].is_string()) {
        label = j[k].get<std::string>();
        break;
      }
    for (const auto& [k, v] : j.items()) {
      const bool hist_name = k.find("hist") != std::string::npos || k == "probe_lengths" || k == "buckets";
      if (hist_name && v.is_array() && !v.empty() &&
          std::all_of(v.begin(), v.end(), [](const auto& x) { return x.is_number(); })) {
        std::vector<double> h;
        for (const auto& x : v) h.push_back(x.get<double>());
        out.emplace_back(label.empty() ? k : label + " " + k, std::move(h));
      } else if (v.is_structured()) {
        collect_histograms(v, label.empty() ? k : label, out);
      }
    }
  } else if (j.is_array()) {
    for (std::size_t i = 0; i < j.size(); ++i) collect_histograms(j[i], path, out);
  }
}

// `polymap hashstat --json`: rows of (table, hash, keys) with average and
// maximum probe (open addressing) or chain (chaining) lengths. One chart per
// statistic: a group per (table, keys), a bar per hash function.
std::string hashstat_rows_chart(const nlohmann::json& rows) {
  std::vector<std::string> groups, hashes;
  auto text = [](const nlohmann::json& o, const char* k) {
    return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string();
  };
  auto number = [](const nlohmann::json& o, const char* k) -> std::optional<double> {
    if (o.contains(k) && o[k].is_number()) return o[k].get<double>();
    return std::nullopt;
  };
  for (const auto& o : rows) {
    if (!o.is_object() || (o.contains("available") && o["available"] == false)) continue;
    const std::string g = text(o, "table") + ", " + text(o, "keys");
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
    const std::string h = text(o, "hash");
    if (std::find(hashes.begin(), hashes.end(), h) == hashes.end()) hashes.push_back(h);
  }
  std::string out;
  const std::pair<const char*, const char*> stats[] = {{"avg", "average probe (or chain) length"},
                                                       {"max", "longest probe (or chain)"}};
  for (const auto& [stat, what] : stats) {
    std::vector<series> ss;
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      series s{hashes[i], hashes[i], palette[i % std::size(palette)], {}, false};
      for (const auto& g : groups) {
        std::optional<double> v;
        for (const auto& o : rows) {
          if (!o.is_object() || text(o, "hash") != hashes[i] || text(o, "table") + ", " + text(o, "keys") != g)
            continue;
          const std::string sk = std::string(stat);
          v = number(o, (sk + "_probe").c_str());
          if (!v) v = number(o, (sk + "_chain").c_str());
        }
        s.values.push_back(v);
      }
      ss.push_back(std::move(s));
    }
    out += bar_chart(fmt::format("hashstat-{}", stat), fmt::format("hashstat: {}", what), groups, "slots or nodes", ss,
                     std::nullopt);
  }
  return out;
}

std::string hashstat_chart(const nlohmann::json& hs) {
  if (hs.is_object() && hs.contains("rows") && hs["rows"].is_array()) return hashstat_rows_chart(hs["rows"]);
  std::vector<std::pair<std::string, std::vector<double>>> hists;
  collect_histograms(hs, "", hists);
  if (hists.empty()) return "<p>The hashstat JSON holds no histogram this report recognizes.</p>\n";
  constexpr std::size_t max_series = 10, max_bins = 16;
  if (hists.size() > max_series) hists.resize(max_series);
  std::size_t bins = 0;
  for (const auto& [_, h] : hists) bins = std::max(bins, std::min(h.size(), max_bins));
  std::vector<std::string> groups;
  for (std::size_t i = 0; i < bins; ++i)
    groups.push_back(i + 1 == max_bins ? fmt::format("{}+", i + 1) : fmt::format("{}", i + 1));
  std::vector<series> ss;
  for (std::size_t i = 0; i < hists.size(); ++i) {
    // Shares of the total, so tables of different sizes compare.
    const auto& h = hists[i].second;
    double total = 0;
    for (double x : h) total += x;
    series s{hists[i].first, hists[i].first, palette[i % std::size(palette)], {}, false};
    for (std::size_t b = 0; b < bins; ++b) {
      double x = 0;
      if (b + 1 < max_bins) {
        x = b < h.size() ? h[b] : 0;
      } else {
        for (std::size_t k = b; k < h.size(); ++k) x += h[k];
      }
      s.values.push_back(total > 0 ? x / total * 100 : 0);
    }
    ss.push_back(std::move(s));
  }
  return bar_chart("hashstat", "hashstat: distribution (share of entries per bin)", groups, "% of entries", ss,
                   std::nullopt);
}

}  // namespace

std::string render_table(const results& r) {
  std::string out;
  const auto maps = map_names(r);
  out += "| workload | keys | N | dist | threads |";
  for (const auto& m : maps) out += " " + label_of(r, m) + " |";
  out += "\n|---|---|---|---|---|";
  for (std::size_t i = 0; i < maps.size(); ++i) out += "---|";
  out += "\n";
  for (auto w : workloads_in(r)) {
    for (auto [k, n, d] : scenes(r)) {
      if (w == workload::insert && d != distribution::uniform) continue;
      for (int t : thread_counts(r)) {
        bool any = false;
        std::string line = fmt::format("| {} | {} | {} | {} | {} |", name(w), name(k), fmt_n(n),
                                       w == workload::insert ? "-" : name(d), t);
        for (const auto& m : maps) {
          const auto* row = find_row(r, m, w, k, n, d, t);
          if (!row) {
            line += " - |";
            continue;
          }
          any = true;
          line += " " + fmt_num(row->median);
          if (row->ratio && m != baseline_map) line += fmt::format(" ({:.2f}x)", *row->ratio);
          line += " |";
        }
        if (any) out += line + "\n";
      }
    }
  }
  if (!r.memory.empty()) {
    out += "\n| bytes/entry | N |";
    for (const auto& m : maps) out += " " + label_of(r, m) + " |";
    out += "\n|---|---|";
    for (std::size_t i = 0; i < maps.size(); ++i) out += "---|";
    out += "\n";
    std::vector<std::pair<key_kind, std::size_t>> cats;
    for (const auto& m : r.memory)
      if (std::find(cats.begin(), cats.end(), std::make_pair(m.keys, m.n)) == cats.end())
        cats.emplace_back(m.keys, m.n);
    for (auto [k, n] : cats) {
      out += fmt::format("| {} | {} |", name(k), fmt_n(n));
      for (const auto& m : maps) {
        std::string cell = " - |";
        for (const auto& row : r.memory)
          if (row.map == m && row.keys == k && row.n == n) cell = fmt::format(" {:.1f} |", row.bytes_per_entry);
        out += cell;
      }
      out += "\n";
    }
  }
  return out;
}

std::string render_throughput_svg(const results& r) {
  // A 2x2 (or fewer) grid of throughput charts for the first scene.
  const auto sc = scenes(r);
  const auto ws = workloads_in(r);
  chart_box b;
  const std::size_t cols = std::min<std::size_t>(2, std::max<std::size_t>(1, ws.size()));
  const std::size_t rows = (ws.size() + cols - 1) / cols;
  const double w = b.w * static_cast<double>(cols), h = b.h * static_cast<double>(std::max<std::size_t>(1, rows)) + 30;
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" "
      "height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\">\n<title>polymap bench: throughput against "
      "threads</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      w, h);
  fmt::format_to(
      std::back_inserter(out), "<text x=\"8\" y=\"18\" font-size=\"11\">{}</text>\n",
      xml_escape(fmt::format("{} cores, {}; {} {}", r.machine.cores, r.machine.cpu, r.machine.date, r.machine.note)));
  if (!sc.empty()) {
    auto [k, n, d] = sc.front();
    for (std::size_t i = 0; i < ws.size(); ++i) {
      fmt::format_to(std::back_inserter(out), "<g transform=\"translate({},{})\">\n",
                     b.w * static_cast<double>(i % cols), 30 + b.h * static_cast<double>(i / cols));
      out += throughput_chart(r, ws[i], k, n, d, false);
      out += "</g>\n";
    }
  }
  out += "</svg>\n";
  return out;
}

std::string render_html(const results& r, const nlohmann::json* hashstat) {
  std::string out;
  out +=
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>polymap bench report</title>\n<style>\n"
      "body { font-family: sans-serif; margin: 1.5em; color: #222; }\n"
      ".charts { display: flex; flex-wrap: wrap; gap: 8px; }\n"
      "table { border-collapse: collapse; font-size: 12px; }\n"
      "td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }\n"
      "th { background: #f4f4f4; }\n"
      "</style>\n</head>\n<body>\n<h1>polymap bench report</h1>\n";
  fmt::format_to(std::back_inserter(out),
                 "<p><b>Machine:</b> {} ({} hardware threads), {}, {} build. <b>Run:</b> {}, {:.0f} s. {}</p>\n",
                 xml_escape(r.machine.cpu), r.machine.cores, xml_escape(r.machine.compiler),
                 xml_escape(r.machine.build_type), xml_escape(r.machine.date), r.elapsed_seconds,
                 xml_escape(r.machine.note));
  fmt::format_to(std::back_inserter(out),
                 "<p><b>Timing:</b> {}. <b>Ratios</b> are each map's median over the median of {} in the same run "
                 "and configuration. <b>Memory:</b> {}.</p>\n",
                 xml_escape(r.settings.timing_method), xml_escape(label_of(r, baseline_map)),
                 xml_escape(r.settings.memory_method));
  out += "<h2>Throughput against threads</h2>\n";
  for (auto [k, n, d] : scenes(r)) {
    fmt::format_to(std::back_inserter(out), "<h3>{}, N = {}, {} key choice</h3>\n<div class=\"charts\">\n", title(k),
                   fmt_n(n), name(d));
    for (auto w : workloads_in(r)) {
      if (w == workload::insert && d != distribution::uniform) continue;
      out += throughput_chart(r, w, k, n, d, false);
    }
    out += "</div>\n";
  }
  out += "<h2>Ratio to the baseline</h2>\n<div class=\"charts\">\n";
  for (auto w : workloads_in(r)) out += ratio_chart(r, w);
  out += "</div>\n";
  if (!r.memory.empty()) {
    out += "<h2>Bytes per entry</h2>\n<div class=\"charts\">\n" + memory_chart(r) + "</div>\n";
  }
  if (hashstat) {
    out += "<h2>Hash statistics</h2>\n<div class=\"charts\">\n" + hashstat_chart(*hashstat) + "</div>\n";
  }
  // The numbers, as a table.
  out +=
      "<h2>All results (Mops/s, median; ratio to the baseline)</h2>\n<table>\n<tr><th>workload</th><th>keys</th>"
      "<th>N</th><th>dist</th><th>threads</th>";
  const auto maps = map_names(r);
  for (const auto& m : maps) fmt::format_to(std::back_inserter(out), "<th>{}</th>", xml_escape(label_of(r, m)));
  out += "</tr>\n";
  for (auto w : workloads_in(r))
    for (auto [k, n, d] : scenes(r))
      for (int t : thread_counts(r)) {
        std::string line = fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>", name(w), name(k),
                                       fmt_n(n), name(d), t);
        bool any = false;
        for (const auto& m : maps) {
          const auto* row = find_row(r, m, w, k, n, d, t);
          if (!row) {
            line += "<td>-</td>";
            continue;
          }
          any = true;
          line += fmt::format("<td>{}", fmt_num(row->median));
          if (row->ratio && m != baseline_map) line += fmt::format(" ({:.2f}x)", *row->ratio);
          line += "</td>";
        }
        if (any) out += line + "</tr>\n";
      }
  out += "</table>\n<h2>Maps</h2>\n<ul>\n";
  for (const auto& m : r.maps)
    fmt::format_to(std::back_inserter(out), "<li><b>{}</b> ({}): {}</li>\n", xml_escape(m.label), xml_escape(m.name),
                   xml_escape(m.description));
  out += "</ul>\n</body>\n</html>\n";
  return out;
}

}  // namespace polymap::bench
