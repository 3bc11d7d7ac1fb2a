// The benchmark report: a markdown table and an HTML page with inline SVG
// charts (bench/report.hpp). Every chart marks each of its series with
// data-series="<map>" so tests and readers can find them.
#include "bench/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

#include "bench/charts.hpp"

namespace polymap::bench {
namespace {

using charts::fmt_num;
using charts::series;
using charts::xml_escape;

// A label for a narrow table header: a line may break after "::" or "_"
// (names like polymap::concurrent_map have no spaces to break at).
std::string breakable(const std::string& label) {
  std::string out = xml_escape(label);
  for (const char* sep : {"::", "_"})
    for (auto p = out.find(sep); p != std::string::npos; p = out.find(sep, p + 7))
      out.insert(p + std::strlen(sep), "<wbr/>");
  return out;
}

std::string fmt_n(std::size_t n) {
  if (n >= 1'000'000 && n % 1'000'000 == 0) return fmt::format("{}M", n / 1'000'000);
  if (n >= 1'000 && n % 1'000 == 0) return fmt::format("{}k", n / 1'000);
  return fmt::format("{}", n);
}

std::vector<int> thread_counts(const results& r) {
  std::set<int> s;
  for (const auto& row : r.rows) s.insert(row.cfg.threads);
  return {s.begin(), s.end()};
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

charts::options chart_options(std::string id, std::string title, std::string y_unit, charts::y_scale scale,
                              std::string value_suffix) {
  charts::options o;
  o.id = std::move(id);
  o.title = std::move(title);
  o.y_unit = std::move(y_unit);
  o.scale = scale;
  o.value_suffix = std::move(value_suffix);
  return o;
}

// A map's style number (colour, marker, dash): its place in map_names(), so
// that a map looks the same in every chart of the report.
std::size_t style_of(const results& r, const std::string& map) {
  const auto names = map_names(r);
  return static_cast<std::size_t>(std::find(names.begin(), names.end(), map) - names.begin());
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

charts::chart throughput_chart(const results& r, workload w, key_kind k, std::size_t n, distribution d,
                               bool standalone) {
  const auto ts = thread_counts(r);
  std::vector<std::string> xs;
  for (int t : ts) xs.push_back(fmt::format("{}", t));
  std::vector<series> ss;
  for (const auto& m : map_names(r)) {
    series s{m, label_of(r, m), style_of(r, m), {}, m == nosync_map};
    bool any = false;
    for (int t : ts) {
      const auto* row = find_row(r, m, w, k, n, d, t);
      s.values.push_back(row ? std::optional<double>(row->median) : std::nullopt);
      any = any || row;
    }
    if (any) ss.push_back(std::move(s));
  }
  const std::string dist_text = w == workload::insert ? "" : fmt::format(", {}", name(d));
  charts::options o;
  o.id = fmt::format("tp-{}-{}-{}-{}", name(w), name(k), n, name(d));
  o.title = fmt::format("{}: {}, N={}{}", title(w), name(k), fmt_n(n), dist_text);
  o.x_title = "threads";
  o.y_unit = "Mops/s";
  o.standalone = standalone;
  o.value_suffix = " Mops/s";
  return charts::line_chart(o, xs, ss);
}

std::string ratio_chart(const results& r, workload w) {
  const auto ts = thread_counts(r);
  std::vector<std::string> groups;
  for (int t : ts) groups.push_back(fmt::format("{} thread{}", t, t == 1 ? "" : "s"));
  std::vector<series> ss;
  for (const auto& m : map_names(r)) {
    series s{m, label_of(r, m), style_of(r, m), {}, false};
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
  charts::options o;
  o.id = fmt::format("ratio-{}", name(w));
  o.title = fmt::format("{}: ratio to the baseline (geometric mean)", title(w));
  o.y_unit = "ratio to the baseline";
  o.reference_line = 1.0;
  o.value_suffix = "x";
  return charts::bar_chart(o, groups, ss).svg;
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
    series s{m, label_of(r, m), style_of(r, m), {}, false};
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
  // One peer's fixed start-up cost (libcuckoo: over 1,000 bytes per entry at
  // 10k) would flatten every other bar on a linear axis.
  return charts::bar_chart(chart_options("memory", "Heap bytes per entry (after inserting N keys, no reserve)",
                                         "bytes/entry", charts::y_scale::log, " bytes/entry"),
                           groups, ss)
      .svg;
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
      series s{hashes[i], hashes[i], i, {}, false};
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
    charts::options o;
    o.id = fmt::format("hashstat-{}", stat);
    o.title = fmt::format("hashstat: {}", what);
    o.y_unit = "slots or nodes";
    out += charts::bar_chart(o, groups, ss).svg;
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
    series s{hists[i].first, hists[i].first, i, {}, false};
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
  charts::options o;
  o.id = "hashstat";
  o.title = "hashstat: distribution (share of entries per bin)";
  o.y_unit = "% of entries";
  o.scale = charts::y_scale::linear;  // shares, with zeros
  return charts::bar_chart(o, groups, ss).svg;
}

// The CSS of every report page.
constexpr const char* page_style =

    "body { font-family: sans-serif; margin: 1.5em; color: #222; }\n"
    // Two charts side by side on a wide page, one on a narrow one; each
    // SVG scales to its cell (viewBox), so the charts use the page width.
    ".charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 16px; }\n"
    ".charts svg { width: 100%; height: auto; display: block; border: 1px solid #e4e4e4; }\n"
    "table { border-collapse: collapse; font-size: 12px; width: 100%; }\n"
    "td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; vertical-align: top; }\n"
    ".ratio { color: #666; font-size: 11px; }\n"
    "th { background: #f4f4f4; }\n";

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
  // A grid of the first scene's throughput charts, two to a row.
  const auto sc = scenes(r);
  const auto ws = workloads_in(r);
  std::vector<charts::chart> cs;
  if (!sc.empty()) {
    auto [k, n, d] = sc.front();
    for (auto w : ws) cs.push_back(throughput_chart(r, w, k, n, d, true));
  }
  const std::size_t cols = std::min<std::size_t>(2, std::max<std::size_t>(1, cs.size()));
  double row_h = 0;
  for (const auto& c : cs) row_h = std::max(row_h, c.height);
  const std::size_t rows = (cs.size() + cols - 1) / cols;
  const double head = 30;
  const double w = charts::chart_width * static_cast<double>(cols) + 10 * static_cast<double>(cols - 1);
  const double h = head + (row_h + 10) * static_cast<double>(std::max<std::size_t>(1, rows));
  std::string out = fmt::format(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" "
      "height=\"{1}\" viewBox=\"0 0 {0} {1}\" font-family=\"DejaVu Sans, Verdana, sans-serif\">\n<title>polymap "
      "bench: throughput against threads</title>\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      w, h);
  fmt::format_to(
      std::back_inserter(out), "<text x=\"8\" y=\"20\" font-size=\"13\">{}</text>\n",
      xml_escape(fmt::format("{} cores, {}; {} {}", r.machine.cores, r.machine.cpu, r.machine.date, r.machine.note)));
  for (std::size_t i = 0; i < cs.size(); ++i) {
    fmt::format_to(std::back_inserter(out), "<g transform=\"translate({},{})\">\n",
                   (charts::chart_width + 10) * static_cast<double>(i % cols),
                   head + (row_h + 10) * static_cast<double>(i / cols));
    out += cs[i].svg;
    out += "</g>\n";
  }
  out += "</svg>\n";
  return out;
}

std::string render_html(const results& r, const nlohmann::json* hashstat) {
  std::string out;
  out +=
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>polymap bench report</title>\n<style>\n" +
      std::string(page_style) + "</style>\n</head>\n<body>\n<h1>polymap bench report</h1>\n";
  fmt::format_to(std::back_inserter(out),
                 "<p><b>Machine:</b> {} ({} hardware threads), {}, {} build. <b>Run:</b> {}, {:.0f} s. {}</p>\n"
                 "<p><b>Host:</b> {}.</p>\n",
                 xml_escape(r.machine.cpu), r.machine.cores, xml_escape(r.machine.compiler),
                 xml_escape(r.machine.build_type), xml_escape(r.machine.date), r.elapsed_seconds,
                 xml_escape(r.machine.note), xml_escape(describe_host(r.machine)));
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
      out += throughput_chart(r, w, k, n, d, false).svg;
    }
    out += "</div>\n";
  }
  fmt::format_to(std::back_inserter(out),
                 "<h2>Ratio to the baseline</h2>\n<p>The baseline is {}, in the same run and configuration; the "
                 "dashed line is 1.0. Each bar is the geometric mean over the key types, sizes and key choices of "
                 "the run.</p>\n<div class=\"charts\">\n",
                 xml_escape(label_of(r, baseline_map)));
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
  for (const auto& m : maps) fmt::format_to(std::back_inserter(out), "<th>{}</th>", breakable(label_of(r, m)));
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
          // The ratio on a line of its own keeps the columns narrow enough
          // for nine maps on one page.
          if (row->ratio && m != baseline_map)
            line += fmt::format("<br/><span class=\"ratio\">{:.2f}x</span>", *row->ratio);
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

std::string render_latency_html(const latency::results& r) {
  using latency::format_ns;
  std::string out =
      "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n"
      "<title>polymap bench latency</title>\n<style>\n" +
      std::string(page_style) +
      "</style>\n</head>\n<body>\n<h1>polymap bench latency: operations while a map grows</h1>\n";
  fmt::format_to(std::back_inserter(out),
                 "<p><b>Machine:</b> {} ({} hardware threads), {}, {} build. <b>Run:</b> {}, {:.0f} s, load average "
                 "at the start {}. {}</p>\n<p><b>Host:</b> {}.</p>\n",
                 xml_escape(r.machine.cpu), r.machine.cores, xml_escape(r.machine.compiler),
                 xml_escape(r.machine.build_type), xml_escape(r.machine.date), r.elapsed_seconds,
                 xml_escape(r.load_average), xml_escape(r.machine.note), xml_escape(describe_host(r.machine)));
  fmt::format_to(std::back_inserter(out),
                 "<p><b>Method:</b> N = {} distinct uint64 keys inserted into an empty map ({}) by {} "
                 "thread(s), each insert timed alone; then a fresh map prefilled with N/2 keys takes 50/50 finds of "
                 "present keys and inserts of the other N/2 ({}), then N/2 finds on the filled map. "
                 "{} run(s) per map, interleaved; percentiles pooled over the runs. <b>Clock:</b> {}; two "
                 "back-to-back reads take {} (median), {} (p99), included in every sample. Percentiles come from a "
                 "log-linear histogram (at most 1.6% high); maxima are exact.</p>\n",
                 r.config.n, r.config.reserve ? "reserved for N first: no growth" : "no reserve", r.config.threads,
                 r.config.reserve ? "reserved too: no growth" : "crossing a growth", r.config.runs, xml_escape(r.clock),
                 format_ns(r.clock_p50_ns), format_ns(r.clock_p99_ns));
  if (!r.errors.empty()) {
    out += "<h2>Errors</h2>\n<ul>\n";
    for (const auto& e : r.errors) fmt::format_to(std::back_inserter(out), "<li>{}</li>\n", xml_escape(e));
    out += "</ul>\n";
  }
  auto label_of = [&](const std::string& m) {
    for (const auto& i : r.maps)
      if (i.name == m) return i.label;
    return m;
  };
  out += "<h2>Latency percentiles</h2>\n<div class=\"charts\">\n";
  const std::vector<std::string> xs = {"p50", "p99", "p99.9", "p99.99", "max"};
  std::vector<latency::phase> phases;
  for (auto ph : latency::all_phases()) {
    std::vector<series> ss;
    for (std::size_t i = 0; i < r.maps.size(); ++i) {
      const auto* x = latency::find_row(r, r.maps[i].name, ph);
      if (!x) continue;
      series s{r.maps[i].name, r.maps[i].label, i, {}, false};
      for (auto ns : {x->p50_ns, x->p99_ns, x->p999_ns, x->p9999_ns, x->max_ns})
        s.values.push_back(static_cast<double>(ns) / 1000.0);
      ss.push_back(std::move(s));
    }
    if (ss.empty()) continue;
    phases.push_back(ph);
    charts::options o;
    o.id = fmt::format("latency-{}", latency::name(ph));
    o.title = latency::title(ph, r.config.reserve);
    o.x_title = "percentile, pooled over the runs";
    o.y_unit = "microseconds";
    o.scale = charts::y_scale::log;
    o.value_suffix = " us";
    out += charts::line_chart(o, xs, ss).svg;
  }
  // The worst single operation: median over the runs, per phase.
  std::vector<std::string> groups;
  for (auto ph : phases) groups.push_back(latency::name(ph));
  std::vector<series> max_ss, tp_ss;
  for (std::size_t i = 0; i < r.maps.size(); ++i) {
    series m{r.maps[i].name, r.maps[i].label, i, {}, false}, t = m;
    for (auto ph : phases) {
      const auto* x = latency::find_row(r, r.maps[i].name, ph);
      m.values.push_back(x ? std::optional<double>(static_cast<double>(x->median_run_max_ns) / 1000.0) : std::nullopt);
      t.values.push_back(x ? std::optional<double>(x->median_mops) : std::nullopt);
    }
    max_ss.push_back(std::move(m));
    tp_ss.push_back(std::move(t));
  }
  out += charts::bar_chart(chart_options("latency-max", "Slowest single operation (median over runs of each run's max)",
                                         "microseconds", charts::y_scale::log, " us"),
                           groups, max_ss)
             .svg;
  out += charts::bar_chart(
             chart_options("latency-throughput", "Throughput of the same runs (median; clock reads included)", "Mops/s",
                           charts::y_scale::automatic, " Mops/s"),
             groups, tp_ss)
             .svg;
  out +=
      "</div>\n<h2>All rows</h2>\n<table>\n<tr><th>map</th><th>phase</th><th>ops</th><th>p50</th><th>p99</th>"
      "<th>p99.9</th><th>p99.99</th><th>max</th><th>max, median of runs</th><th>each run's max (its threads' "
      "involuntary context switches, time waited for a CPU)</th>"
      "<th>Mops/s, median</th></tr>\n";
  for (const auto& x : r.rows) {
    const std::string runs = latency::runs_with_switches(x);
    fmt::format_to(std::back_inserter(out),
                   "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
                   "<td>{}</td><td>{}</td><td>{:.2f}</td></tr>\n",
                   breakable(label_of(x.map)), latency::name(x.phase), x.ops, format_ns(x.p50_ns), format_ns(x.p99_ns),
                   format_ns(x.p999_ns), format_ns(x.p9999_ns), format_ns(x.max_ns), format_ns(x.median_run_max_ns),
                   runs, x.median_mops);
  }
  out += "</table>\n<h2>Maps</h2>\n<ul>\n";
  for (const auto& m : r.maps)
    fmt::format_to(std::back_inserter(out), "<li><b>{}</b> ({}): {}</li>\n", xml_escape(m.label), xml_escape(m.name),
                   xml_escape(m.description));
  out += "</ul>\n</body>\n</html>\n";
  return out;
}

}  // namespace polymap::bench
