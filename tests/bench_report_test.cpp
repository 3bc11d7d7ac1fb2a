// The benchmark report renders from a fixed JSON (tests/data/bench_small.json)
// into well-formed HTML and SVG that carry every series. Nothing is timed.
#include <gtest/gtest.h>

#ifdef POLYMAP_HAVE_BENCH

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <sched.h>

#include "bench/charts.hpp"
#include "bench/report.hpp"
#include "bench/results.hpp"

namespace {

namespace fs = std::filesystem;
using namespace polymap::bench;

const fs::path data_dir = POLYMAP_TEST_DATA_DIR;

nlohmann::json load(const char* name) {
  std::ifstream f(data_dir / name);
  EXPECT_TRUE(f) << "missing " << (data_dir / name);
  return nlohmann::json::parse(f);
}

// A small XML well-formedness checker: one root element, properly nested and
// matched tags, quoted and unique attributes, no raw '<' or '&' in text,
// known entities only. Accepts an XML declaration, a DOCTYPE and comments.
// Returns "" if well formed, else the first problem with its offset.
class xml_checker {
 public:
  explicit xml_checker(const std::string& s) : s_(s) {}

  std::string check() {
    skip_space();
    if (starts("<?xml")) {
      auto e = s_.find("?>", i_);
      if (e == std::string::npos) return err("unterminated XML declaration");
      i_ = e + 2;
    }
    skip_misc();
    if (starts("<!DOCTYPE")) {
      auto e = s_.find('>', i_);
      if (e == std::string::npos) return err("unterminated DOCTYPE");
      i_ = e + 1;
    }
    skip_misc();
    if (!starts("<")) return err("no root element");
    if (auto r = element(); !r.empty()) return r;
    skip_misc();
    if (i_ != s_.size()) return err("content after the root element");
    return "";
  }

  std::vector<std::string> element_names;  // every element seen, in order

 private:
  std::string err(const std::string& what) const { return what + " at offset " + std::to_string(i_); }
  bool starts(const char* p) const { return s_.compare(i_, std::char_traits<char>::length(p), p) == 0; }
  void skip_space() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  void skip_misc() {
    for (;;) {
      skip_space();
      if (!starts("<!--")) return;
      auto e = s_.find("-->", i_);
      i_ = e == std::string::npos ? s_.size() : e + 3;
    }
  }
  static bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' || c == '.';
  }
  std::string name() {
    const auto b = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    return s_.substr(b, i_ - b);
  }
  std::string entity() {  // at '&'
    const auto e = s_.find(';', i_);
    if (e == std::string::npos || e - i_ > 10) return err("bare '&'");
    const std::string ent = s_.substr(i_ + 1, e - i_ - 1);
    static const std::set<std::string> known = {"amp", "lt", "gt", "quot", "apos"};
    const bool numeric = ent.size() > 1 && ent[0] == '#' && ent.find_first_not_of("0123456789", 1) == std::string::npos;
    if (!known.count(ent) && !numeric) return err("unknown entity &" + ent + ";");
    i_ = e + 1;
    return "";
  }
  std::string element() {  // at '<'
    ++i_;
    const std::string tag = name();
    if (tag.empty()) return err("empty tag name");
    element_names.push_back(tag);
    std::set<std::string> attrs;
    for (;;) {
      skip_space();
      if (i_ >= s_.size()) return err("unterminated tag <" + tag);
      if (starts("/>")) {
        i_ += 2;
        return "";
      }
      if (s_[i_] == '>') {
        ++i_;
        break;
      }
      const std::string a = name();
      if (a.empty()) return err("bad attribute in <" + tag);
      if (!attrs.insert(a).second) return err("duplicate attribute " + a + " in <" + tag);
      skip_space();
      if (i_ >= s_.size() || s_[i_] != '=') return err("attribute " + a + " without value");
      ++i_;
      skip_space();
      if (i_ >= s_.size() || (s_[i_] != '"' && s_[i_] != '\'')) return err("unquoted attribute " + a);
      const char q = s_[i_++];
      while (i_ < s_.size() && s_[i_] != q) {
        if (s_[i_] == '<') return err("'<' in attribute " + a);
        if (s_[i_] == '&') {
          if (auto r = entity(); !r.empty()) return r;
        } else {
          ++i_;
        }
      }
      if (i_ >= s_.size()) return err("unterminated attribute " + a);
      ++i_;
    }
    // Content until the matching end tag.
    for (;;) {
      if (i_ >= s_.size()) return err("missing </" + tag + ">");
      if (starts("</")) {
        i_ += 2;
        const std::string end = name();
        skip_space();
        if (end != tag) return err("</" + end + "> closes <" + tag + ">");
        if (i_ >= s_.size() || s_[i_] != '>') return err("bad end tag");
        ++i_;
        return "";
      }
      if (starts("<!--")) {
        skip_misc();
        continue;
      }
      if (s_[i_] == '<') {
        if (auto r = element(); !r.empty()) return r;
        continue;
      }
      if (s_[i_] == '&') {
        if (auto r = entity(); !r.empty()) return r;
        continue;
      }
      ++i_;
    }
  }

  const std::string& s_;
  std::size_t i_ = 0;
};

std::string check_xml(const std::string& s) {
  return xml_checker(s).check();
}

// Every <svg ...>...</svg> in a document (they do not nest here).
std::vector<std::string> svg_parts(const std::string& html) {
  std::vector<std::string> out;
  for (auto b = html.find("<svg"); b != std::string::npos; b = html.find("<svg", b + 1)) {
    const auto e = html.find("</svg>", b);
    if (e == std::string::npos) break;
    out.push_back(html.substr(b, e + 6 - b));
  }
  return out;
}

std::string svg_with_id(const std::string& html, const std::string& id) {
  for (const auto& part : svg_parts(html))
    if (part.find("id=\"" + id + "\"") != std::string::npos) return part;
  return "";
}

bool has_series(const std::string& svg, const std::string& map) {
  return svg.find("class=\"series\" data-series=\"" + map + "\"") != std::string::npos;
}

TEST(BenchReport, CheckerRejectsBrokenXml) {
  EXPECT_EQ(check_xml("<a><b x=\"1\"/>t &amp; u</a>"), "");
  EXPECT_NE(check_xml("<a><b></a>"), "");
  EXPECT_NE(check_xml("<a x=1></a>"), "");
  EXPECT_NE(check_xml("<a>x & y</a>"), "");
  EXPECT_NE(check_xml("<a x=\"1\" x=\"2\"></a>"), "");
  EXPECT_NE(check_xml("<a></a><b></b>"), "");
}

TEST(BenchReport, HtmlIsWellFormedAndCarriesEverySeries) {
  const auto j = load("bench_small.json");
  const auto hashstat = load("hashstat_small.json");
  const results r = from_json(j);
  ASSERT_EQ(r.maps.size(), 4u);
  const std::string html = render_html(r, &hashstat);

  ASSERT_EQ(check_xml(html), "") << html.substr(0, 2000);
  EXPECT_EQ(html.find("<script"), std::string::npos) << "the report must not need JavaScript";
  EXPECT_EQ(html.find("http://", html.find("<body")), std::string::npos) << "no network references";
  EXPECT_EQ(html.find("https://"), std::string::npos);
  // The description with markup characters arrives escaped.
  EXPECT_NE(html.find("&lt;around&gt; a &amp; &quot;std&quot; map"), std::string::npos);

  const auto svgs = svg_parts(html);
  // 2 workloads x throughput + insert, 3 ratio charts, memory, hashstat.
  EXPECT_GE(svgs.size(), 8u);
  for (const auto& s : svgs) EXPECT_EQ(check_xml(s), "") << s.substr(0, 400);

  for (const char* wl : {"find100", "find50", "insert"}) {
    const std::string tp = svg_with_id(html, std::string("tp-") + wl + "-u64-10000-uniform");
    ASSERT_FALSE(tp.empty()) << wl;
    const std::string ratio = svg_with_id(html, std::string("ratio-") + wl);
    ASSERT_FALSE(ratio.empty()) << wl;
    for (const auto& m : r.maps) {
      EXPECT_TRUE(has_series(tp, m.name)) << wl << " throughput lacks " << m.name;
      EXPECT_TRUE(has_series(ratio, m.name)) << wl << " ratio lacks " << m.name;
    }
  }
  const std::string mem = svg_with_id(html, "memory");
  for (const auto& m : r.maps) EXPECT_TRUE(has_series(mem, m.name)) << "memory lacks " << m.name;
  for (const char* id : {"hashstat-avg", "hashstat-max"}) {
    const std::string hs = svg_with_id(html, id);
    ASSERT_FALSE(hs.empty()) << id;
    EXPECT_TRUE(has_series(hs, "std::hash")) << hs.substr(0, 600);
    EXPECT_TRUE(has_series(hs, "polymap::hash")) << hs.substr(0, 600);
  }
}

TEST(BenchReport, HashstatHistogramsAnywhereInTheJson) {
  const results r = from_json(load("bench_small.json"));
  const auto hs = nlohmann::json::parse(R"({"cases": [
      {"name": "mixed", "probe_length_histogram": [90, 8, 2]},
      {"name": "identity", "probe_length_histogram": [30, 20, 15, 10, 8, 6, 4, 3, 2, 1, 1, 0, 0, 0, 0, 0, 0, 1]}]})");
  const std::string html = render_html(r, &hs);
  ASSERT_EQ(check_xml(html), "");
  const std::string chart = svg_with_id(html, "hashstat");
  EXPECT_TRUE(has_series(chart, "mixed probe_length_histogram")) << chart.substr(0, 800);
  EXPECT_TRUE(has_series(chart, "identity probe_length_histogram"));
}

TEST(BenchReport, StandaloneSvgIsWellFormed) {
  const results r = from_json(load("bench_small.json"));
  const std::string svg = render_throughput_svg(r);
  ASSERT_EQ(check_xml(svg), "") << svg.substr(0, 600);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  for (const auto& m : r.maps) EXPECT_TRUE(has_series(svg, m.name)) << m.name;

  // A second opinion from a real XML parser, where python3 is installed.
  if (std::system("python3 -c 'import xml.dom.minidom' >/dev/null 2>&1") == 0) {
    const auto path = fs::temp_directory_path() / "polymap_bench_report_test.svg";
    std::ofstream(path) << svg;
    const std::string cmd = "python3 -c 'import sys, xml.dom.minidom; xml.dom.minidom.parse(sys.argv[1])' " +
                            path.string() + " >/dev/null 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << "python's minidom rejects the SVG";
    fs::remove(path);
  }
}

TEST(BenchReport, RatiosTableAndJsonRoundTrip) {
  const auto j = load("bench_small.json");
  const results r = from_json(j);
  for (const auto& row : r.rows) {
    ASSERT_TRUE(row.ratio.has_value()) << row.cfg.map;
    if (row.cfg.map == baseline_map) {
      EXPECT_DOUBLE_EQ(*row.ratio, 1.0);
    }
  }
  const std::string table = render_table(r);
  for (const auto& m : r.maps) EXPECT_NE(table.find(m.label), std::string::npos) << m.label;
  EXPECT_NE(table.find("| find100 | u64 | 10k | uniform | 1 | 40.0 | 100 (2.50x) |"), std::string::npos) << table;

  const results again = from_json(to_json(r));
  ASSERT_EQ(again.rows.size(), r.rows.size());
  ASSERT_EQ(again.memory.size(), r.memory.size());
  EXPECT_EQ(to_json(again), to_json(r));
}

// --- readability (issue 20): whole legends, distinct series, log axes ------

struct legend_entry {
  std::string series, text;
  double text_x = 0;
  std::string colour;  // the sample's fill or stroke
};

std::vector<legend_entry> legend_entries(const std::string& svg) {
  std::vector<legend_entry> out;
  static const std::regex entry(
      R"re(<g class="legend" data-series="([^"]*)">(.*?)<text x="([0-9.]+)"[^>]*>([^<]*)</text></g>)re");
  static const std::regex colour(R"re((?:fill|stroke)="(#[0-9A-Fa-f]{6})")re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), entry), end; it != end; ++it) {
    legend_entry e{(*it)[1], (*it)[4], std::stod((*it)[3]), ""};
    const std::string sample = (*it)[2];
    std::smatch m;
    if (std::regex_search(sample, m, colour)) e.colour = m[1];
    out.push_back(e);
  }
  return out;
}

double viewbox_width(const std::string& svg) {
  std::smatch m;
  static const std::regex vb(R"re(viewBox="0 0 ([0-9.]+) ([0-9.]+)")re");
  if (!std::regex_search(svg, m, vb)) return 0;
  return std::stod(m[1]);
}

// The characters a reader sees of an escaped text.
std::size_t shown_length(const std::string& escaped) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < escaped.size(); ++i, ++n)
    if (escaped[i] == '&') i = escaped.find(';', i);
  return n;
}

// A run with ten maps whose labels are long, as a real run with every peer
// and the opt-in maps has.
results ten_long_maps() {
  results r = from_json(load("bench_small.json"));
  const char* extra[][2] = {{"locked_map", "polymap::locked_map"},
                            {"snapshot_map", "polymap::snapshot_map"},
                            {"sharded_flat", "16 x flat_map + shared_mutex"},
                            {"cuckoo_map", "libcuckoo cuckoohash_map"},
                            {"boost_cfm", "boost::concurrent_flat_map"},
                            {"xenium_hm", "xenium harris_michael_hash_map"}};
  for (auto [n, l] : extra) {
    r.maps.push_back({n, l, "a map", true});
    for (const auto& row : std::vector<measurement>(r.rows)) {
      if (row.cfg.map != "concurrent_map") continue;
      measurement copy = row;
      copy.cfg.map = n;
      r.rows.push_back(copy);
    }
    r.memory.push_back({n, key_kind::u64, 10000, 50});
  }
  r.memory.push_back({"cuckoo_map", key_kind::str, 10000, 1100});
  compute_ratios(r);
  return r;
}

TEST(BenchReport, EveryLegendShowsEveryLabelWholeInsideTheChart) {
  const results r = ten_long_maps();
  ASSERT_EQ(r.maps.size(), 10u);
  const std::string html = render_html(r);
  ASSERT_EQ(check_xml(html), "");
  std::size_t charts_checked = 0;
  for (const auto& svg : svg_parts(html)) {
    const auto entries = legend_entries(svg);
    if (entries.empty()) continue;
    ++charts_checked;
    const double width = viewbox_width(svg);
    ASSERT_GT(width, 0) << svg.substr(0, 300);
    std::set<std::string> in_legend;
    for (const auto& e : entries) {
      in_legend.insert(e.series);
      // The label is the map's whole label, not a prefix of it.
      std::string label;
      for (const auto& m : r.maps)
        if (m.name == e.series) label = m.label;
      ASSERT_FALSE(label.empty()) << e.series;
      EXPECT_EQ(e.text, polymap::bench::charts::xml_escape(label));
      // ...and it ends inside the chart at a generous character width.
      const double end = e.text_x + static_cast<double>(shown_length(e.text)) * polymap::bench::charts::char_width;
      EXPECT_LE(end, width) << "legend '" << e.text << "' runs past the chart's edge (" << end << " > " << width << ")";
    }
    // Every series drawn is in the legend.
    static const std::regex drawn(R"re(class="series" data-series="([^"]*)")re");
    for (std::sregex_iterator it(svg.begin(), svg.end(), drawn), end; it != end; ++it)
      EXPECT_TRUE(in_legend.count((*it)[1])) << (*it)[1] << " is drawn but not in the legend";
  }
  EXPECT_GE(charts_checked, 7u);  // 3 throughput, 3 ratio, 1 memory
  // The standalone SVG's charts too.
  const std::string svg = render_throughput_svg(r);
  ASSERT_EQ(check_xml(svg), "");
  const auto entries = legend_entries(svg);
  EXPECT_GE(entries.size(), 10u);
  for (const auto& e : entries)
    EXPECT_LE(e.text_x + static_cast<double>(shown_length(e.text)) * polymap::bench::charts::char_width,
              polymap::bench::charts::chart_width);
}

TEST(BenchReport, SeriesDifferInColourAndShapeAndKeepThemAcrossCharts) {
  using namespace polymap::bench::charts;
  // Okabe-Ito's colours (yellow replaced by grey), distinct for 8 series;
  // (colour, marker, dash) distinct for many more.
  const std::set<std::string> okabe_ito = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                           "#E69F00", "#56B4E9", "#000000", "#8C8C8C"};
  std::set<std::string> colours;
  std::set<std::tuple<std::string, std::string, std::string>> looks;
  std::set<std::string> markers;
  for (std::size_t i = 0; i < 64; ++i) {
    const auto st = style_of(i);
    EXPECT_TRUE(okabe_ito.count(st.colour)) << st.colour;
    if (i < 8) colours.insert(st.colour), markers.insert(name(st.marker));
    EXPECT_TRUE(looks.emplace(st.colour, name(st.marker), st.dash).second) << "series " << i << " looks like another";
  }
  EXPECT_EQ(colours.size(), 8u);
  EXPECT_EQ(markers.size(), 8u) << "the first 8 series have 8 different markers";

  // In the report a map has one look everywhere: its legend sample has the
  // same colour in every chart, and no two maps share one in a chart.
  const results r = ten_long_maps();
  const std::string html = render_html(r);
  std::map<std::string, std::string> colour_of;
  for (const auto& svg : svg_parts(html)) {
    if (svg.find("id=\"hashstat") != std::string::npos) continue;
    std::set<std::string> seen;
    for (const auto& e : legend_entries(svg)) {
      ASSERT_FALSE(e.colour.empty()) << e.series;
      auto [it, fresh] = colour_of.emplace(e.series, e.colour);
      EXPECT_EQ(it->second, e.colour) << e.series << " changes colour between charts";
    }
  }
  // Markers: each line chart's points carry a shape per series; the first
  // eight maps' shapes differ (a circle, a square, a triangle...).
  const std::string tp = svg_with_id(html, "tp-find100-u64-10000-uniform");
  ASSERT_FALSE(tp.empty());
  EXPECT_NE(tp.find("<circle"), std::string::npos);
  EXPECT_NE(tp.find("<polygon"), std::string::npos);
  EXPECT_NE(tp.find("stroke-dasharray=\"7 4\""), std::string::npos) << "no dashed series";
}

// The y of each tick label on a chart's axis, by its text.
std::map<std::string, double> tick_positions(const std::string& svg) {
  std::map<std::string, double> out;
  static const std::regex tick(
      R"re(<text class="tick" x="[0-9.]+" y="([0-9.]+)"[^>]*text-anchor="end">([^<]*)</text>)re");
  for (std::sregex_iterator it(svg.begin(), svg.end(), tick), end; it != end; ++it) out[(*it)[2]] = std::stod((*it)[1]);
  return out;
}

// The height of the bar of `map` in a bar chart's first group.
double bar_top(const std::string& svg, const std::string& map) {
  const auto b = svg.find("class=\"series\" data-series=\"" + map + "\"");
  if (b == std::string::npos) return -1;
  std::smatch m;
  static const std::regex rect(R"re(<rect x="[0-9.]+" y="([0-9.]+)")re");
  const std::string rest = svg.substr(b);
  if (!std::regex_search(rest, m, rect)) return -1;
  return std::stod(m[1]);
}

TEST(BenchReport, BytesPerEntryIsOnALogAxisThatSaysSo) {
  const results r = ten_long_maps();  // cuckoo_map: 1,100 bytes/entry beside 38-66
  const std::string mem = svg_with_id(render_html(r), "memory");
  ASSERT_FALSE(mem.empty());
  EXPECT_NE(mem.find("data-scale=\"log\""), std::string::npos);
  EXPECT_NE(mem.find("bytes/entry (log scale)"), std::string::npos);
  // Decades are evenly spaced, and a bar's top sits at log10 of its value.
  const auto ticks = tick_positions(mem);
  ASSERT_TRUE(ticks.count("10") && ticks.count("100") && ticks.count("1000")) << mem.substr(0, 1500);
  const double decade = ticks.at("10") - ticks.at("100");
  EXPECT_GT(decade, 20);
  EXPECT_NEAR(ticks.at("100") - ticks.at("1000"), decade, 0.2);
  const double y = bar_top(mem, "std_shared_mutex");  // 48.2 bytes/entry
  // (A tick's text baseline is 4 units below its grid line.)
  EXPECT_NEAR(y, ticks.at("10") - 4 - decade * std::log10(48.2 / 10), 0.2);

  // Even when the values are close, bytes per entry stay on the log axis...
  const results small = from_json(load("bench_small.json"));
  EXPECT_NE(svg_with_id(render_html(small), "memory").find("data-scale=\"log\""), std::string::npos);
  // ...while throughput picks linear for a narrow spread and log for a wide one.
  const std::string html = render_html(small);
  const std::string tp = svg_with_id(html, "tp-find100-u64-10000-uniform");
  ASSERT_FALSE(tp.empty());
  EXPECT_NE(tp.find("data-scale=\"linear\""), std::string::npos) << "find100 spans under 30x in the fixture";
  results wide = small;
  for (auto& row : wide.rows)
    if (row.cfg.map == "std_shared_mutex" && row.cfg.wl == workload::find100) row.median = 0.5;
  const std::string wide_tp = svg_with_id(render_html(wide), "tp-find100-u64-10000-uniform");
  EXPECT_NE(wide_tp.find("data-scale=\"log\""), std::string::npos);
  EXPECT_NE(wide_tp.find("Mops/s (log scale)"), std::string::npos);
}

TEST(BenchReport, ChartsScaleToThePageWidth) {
  const std::string html = render_html(from_json(load("bench_small.json")));
  // The grid's cells share the page, and the SVGs fill their cells.
  EXPECT_NE(html.find(".charts svg { width: 100%"), std::string::npos);
  EXPECT_NE(html.find("grid-template-columns"), std::string::npos);
  for (const auto& svg : svg_parts(html)) {
    const auto head = svg.substr(0, svg.find('>'));
    EXPECT_EQ(head.find(" width=\""), std::string::npos) << "an inline chart with a fixed width: " << head;
  }
}

TEST(BenchReport, LatencyPageChartsPercentilesOnALogAxis) {
  namespace bl = polymap::bench::latency;
  bl::results r;
  r.machine.cpu = "test <cpu>";
  r.config.n = 1000;
  r.config.runs = 2;
  r.clock = "steady_clock";
  r.maps = {{"concurrent_map", "polymap::concurrent_map", "d", true},
            {"tbb_hash_map", "tbb::concurrent_hash_map", "d", true},
            {"cuckoo_map", "libcuckoo cuckoohash_map", "d", true}};
  std::uint64_t scale = 1;
  for (const auto& m : r.maps) {
    for (auto ph : bl::all_phases()) {
      bl::row x;
      x.map = m.name;
      x.phase = ph;
      x.ops = 2000;
      x.p50_ns = 80 * scale;
      x.p99_ns = 900 * scale;
      x.p999_ns = 5'000 * scale;
      x.p9999_ns = 40'000 * scale;
      x.max_ns = 65'000'000 * scale;
      x.run_max_ns = {x.max_ns, x.max_ns / 2};
      x.median_run_max_ns = x.max_ns * 3 / 4;
      x.mops = {1.5, 2.5};
      x.median_mops = 2;
      r.rows.push_back(x);
    }
    scale *= 2;
  }
  const std::string html = render_latency_html(r);
  ASSERT_EQ(check_xml(html), "") << html.substr(0, 1500);
  EXPECT_NE(html.find("test &lt;cpu&gt;"), std::string::npos);
  for (auto ph : bl::all_phases()) {
    const std::string chart = svg_with_id(html, std::string("latency-") + bl::name(ph));
    ASSERT_FALSE(chart.empty()) << bl::name(ph);
    EXPECT_NE(chart.find("data-scale=\"log\""), std::string::npos);
    EXPECT_NE(chart.find("microseconds (log scale)"), std::string::npos);
    for (const char* x : {">p50<", ">p99<", ">p99.9<", ">p99.99<", ">max<"})
      EXPECT_NE(chart.find(x), std::string::npos);
    for (const auto& m : r.maps) {
      EXPECT_TRUE(has_series(chart, m.name)) << m.name;
      EXPECT_NE(chart.find(">" + m.label + "</text>"), std::string::npos) << m.label << " not in the legend";
    }
    // The log axis spans the 80 ns p50 to the 260 ms max: 0.01 us to 1,000,000 us.
    const auto ticks = tick_positions(chart);
    EXPECT_TRUE(ticks.count("0.01") && ticks.count("1M")) << chart.substr(0, 2000);
  }
  const std::string maxima = svg_with_id(html, "latency-max");
  ASSERT_FALSE(maxima.empty());
  EXPECT_NE(maxima.find("data-scale=\"log\""), std::string::npos);
  EXPECT_FALSE(svg_with_id(html, "latency-throughput").empty());
  // Each run's max is in the table.
  EXPECT_NE(html.find("65 ms, 32.5 ms"), std::string::npos);
  EXPECT_NE(html.find("crossing a growth"), std::string::npos);
  // A --reserve run says so, and names no growth it did not have.
  r.config.reserve = true;
  const std::string reserved = render_latency_html(r);
  ASSERT_EQ(check_xml(reserved), "");
  EXPECT_NE(reserved.find("reserved for N first: no growth"), std::string::npos);
  EXPECT_NE(svg_with_id(reserved, "latency-mixed_find").find("reserved: no growth"), std::string::npos);
  EXPECT_EQ(reserved.find("crossing a growth"), std::string::npos);
  EXPECT_EQ(reserved.find("after the growth"), std::string::npos);
}

TEST(BenchReport, MalformedJsonIsAnErrorNotACrash) {
  auto j = load("bench_small.json");
  j["results"][0]["workload"] = "find33";
  EXPECT_THROW(from_json(j), std::runtime_error);
  auto k = load("bench_small.json");
  k.erase("maps");
  EXPECT_THROW(from_json(k), std::runtime_error);
  EXPECT_THROW(from_json(nlohmann::json::object()), std::runtime_error);

  // A hostile host probe: an error or "not measured", never a crash.
  const auto with_probe = [](nlohmann::json probe) {
    auto j = load("bench_small.json");
    j["machine"]["host_probe"] = {{"start", std::move(probe)}};
    return j;
  };
  EXPECT_THROW(from_json(with_probe({{"measured", true}})), std::runtime_error);  // no cpus, no round trip
  EXPECT_THROW(from_json(with_probe({{"measured", true}, {"cpus", {0}}, {"round_trip_ns", 1.0}})), std::runtime_error);
  EXPECT_THROW(from_json(with_probe({{"measured", true}, {"cpus", {0, 1}}, {"round_trip_ns", nullptr}})),
               std::runtime_error);
  EXPECT_THROW(from_json(with_probe({{"measured", "yes"}})), std::runtime_error);
  EXPECT_THROW(from_json(with_probe({{"measured", true}, {"cpus", "0,1"}, {"round_trip_ns", 1.0}})),
               std::runtime_error);
  const results odd = from_json(with_probe(42));  // not an object: not measured
  EXPECT_FALSE(odd.machine.probe_start.measured);
  EXPECT_FALSE(odd.machine.probe_end.measured);
  auto deep = nlohmann::json::array();
  for (int i = 0; i < 10000; ++i) deep = nlohmann::json::array({std::move(deep)});
  const results nested = from_json(with_probe(std::move(deep)));
  EXPECT_FALSE(nested.machine.probe_start.measured);
  const results huge = from_json(with_probe({{"measured", true}, {"cpus", {0, 1}}, {"round_trip_ns", 1e308}}));
  EXPECT_TRUE(huge.machine.probe_start.measured);
  EXPECT_NE(render_html(huge, nullptr).find("<b>Host:</b>"), std::string::npos);
}

// --- the host probe (bench/host_probe.hpp) -----------------------------------

cpu_set_t own_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  EXPECT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  return set;
}

TEST(HostProbe, MeasuresARoundTripBetweenTwoCpusAndLeavesTheCallersAffinity) {
  const cpu_set_t before = own_cpus();
  const host_probe p = probe_host();
  const cpu_set_t after = own_cpus();
  EXPECT_TRUE(CPU_EQUAL(&before, &after)) << "the probe pinned the calling thread";
  if (CPU_COUNT(&before) < 2) {
    EXPECT_FALSE(p.measured);
    EXPECT_EQ(p.why_not, "fewer than two CPUs to run on");
    return;
  }
  ASSERT_TRUE(p.measured) << p.why_not;
  EXPECT_NE(p.cpu_a, p.cpu_b);
  EXPECT_TRUE(CPU_ISSET(p.cpu_a, &before));
  EXPECT_TRUE(CPU_ISSET(p.cpu_b, &before));
  EXPECT_TRUE(std::isfinite(p.round_trip_ns));
  EXPECT_GT(p.round_trip_ns, 0);
  EXPECT_NE(describe(p).find("a cache line's round trip"), std::string::npos) << describe(p);
}

TEST(HostProbe, OnOneCpuItSaysWhyItDidNotMeasure) {
  host_probe p;
  std::thread t([&] {
    const cpu_set_t all = own_cpus();
    int first = 0;
    while (!CPU_ISSET(first, &all)) ++first;
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    p = probe_host();
  });
  t.join();
  EXPECT_FALSE(p.measured);
  EXPECT_EQ(p.why_not, "fewer than two CPUs to run on");
  EXPECT_EQ(describe(p), "not measured: fewer than two CPUs to run on");
}

TEST(HostProbe, TravelsInTheMachineJsonAndTheReport) {
  machine_info m;
  m.cpu = "test cpu";
  m.probe_start.measured = true;
  m.probe_start.cpu_a = 0;
  m.probe_start.cpu_b = 3;
  m.probe_start.round_trip_ns = 182.5;
  m.probe_end.why_not = "fewer than two CPUs to run on";
  const nlohmann::json j = machine_json(m, {{"load_average_at_start", "0.10 0.20 0.30"}});
  EXPECT_EQ(j.at("load_average_at_start"), "0.10 0.20 0.30");
  EXPECT_EQ(j.at("host_probe").at("start").at("round_trip_ns"), 182.5);
  const machine_info back = machine_from_json(j);
  EXPECT_EQ(back.cpu, "test cpu");
  EXPECT_TRUE(back.probe_start.measured);
  EXPECT_EQ(back.probe_start.cpu_a, 0);
  EXPECT_EQ(back.probe_start.cpu_b, 3);
  EXPECT_DOUBLE_EQ(back.probe_start.round_trip_ns, 182.5);
  EXPECT_FALSE(back.probe_end.measured);
  EXPECT_EQ(back.probe_end.why_not, "fewer than two CPUs to run on");
  EXPECT_EQ(describe_host(back),
            "the probe at the start of the run: CPUs 0 and 3: a cache line's round trip 182 ns; at its end: not "
            "measured: fewer than two CPUs to run on");
  m.probe_end = m.probe_start;
  m.probe_end.round_trip_ns = 410;
  EXPECT_EQ(describe_host(m),
            "a cache line's round trip between CPUs 0 and 3 took 182 ns at the start of the run and 410 ns at its "
            "end");

  // A file written before the probe existed reads as not measured.
  const machine_info old = machine_from_json(nlohmann::json{{"cpu", "old"}});
  EXPECT_FALSE(old.probe_start.measured);
  EXPECT_EQ(old.probe_start.why_not, "not in this file");

  // The HTML report says it.
  results r = from_json(load("bench_small.json"));
  r.machine.probe_start = m.probe_start;
  r.machine.probe_end = m.probe_end;
  const std::string html = render_html(r, nullptr);
  EXPECT_NE(html.find("<b>Host:</b> a cache line&#39;s round trip between CPUs 0 and 3 took 182 ns"), std::string::npos)
      << html.substr(0, 2000);
}

}  // namespace

#else
TEST(BenchReport, SkippedWithoutBench) {
  GTEST_SKIP() << "built with POLYMAP_BUILD_BENCH=OFF";
}
#endif
