// Prometheus text exposition of stats_t; see polymap/metrics.hpp.
#include "polymap/metrics.hpp"

#include <cmath>
#include <cstdint>
#include <iterator>

#include <fmt/format.h>

namespace polymap {
namespace {

// Escapes a label value: backslash, double quote and line feed.
std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string labels(const named_stats& m) {
  return fmt::format("instance=\"{}\",type=\"{}\"", escape_label(m.instance), escape_label(m.stats.map));
}

// A float sample value as the format spells it (NaN and infinities included).
std::string number(double x) {
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", x);
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

}  // namespace

std::string to_prometheus(const std::vector<named_stats>& maps) {
  std::string out;
  auto scalar = [&](std::string_view name, std::string_view type, std::string_view help, auto get) {
    family(out, name, type, help);
    for (const auto& m : maps) fmt::format_to(std::back_inserter(out), "{}{{{}}} {}\n", name, labels(m), get(m.stats));
  };
  scalar("polymap_map_entries", "gauge", "Entries in the map.",
         [](const stats_t& s) { return fmt::format("{}", s.size); });
  scalar("polymap_map_capacity", "gauge", "Slots (or buckets) allocated.",
         [](const stats_t& s) { return fmt::format("{}", s.capacity); });
  scalar("polymap_map_load_factor", "gauge", "Entries per slot (size / capacity).",
         [](const stats_t& s) { return number(s.load_factor); });
  scalar("polymap_map_memory_bytes", "gauge", "Memory held by the table, approximate (0 if unknown).",
         [](const stats_t& s) { return fmt::format("{}", s.bytes); });
  scalar("polymap_map_growths_total", "counter", "Rehashes into a larger table since construction.",
         [](const stats_t& s) { return fmt::format("{}", s.growths); });
  scalar("polymap_map_lock_waits_total", "counter", "Lock acquisitions that found the lock taken.",
         [](const stats_t& s) { return fmt::format("{}", s.lock_waits); });
  scalar("polymap_reclaim_pending_objects", "gauge",
         "Objects retired in the map's epoch domain and not yet freed (shared by the maps of the domain).",
         [](const stats_t& s) { return fmt::format("{}", s.retired_pending); });
  scalar("polymap_reclaim_pending_bytes", "gauge", "Bytes of those objects, as far as known (a lower bound).",
         [](const stats_t& s) { return fmt::format("{}", s.retired_pending_bytes); });

  // Probe lengths: histogram[i] counts entries found after i+1 probes, so the
  // cumulative bucket le="i+1" sums histogram[0..i].
  const std::string_view h = "polymap_map_probe_length";
  family(out, h, "histogram", "Groups (or chain steps) probed to find an entry, over the entries present.");
  for (const auto& m : maps) {
    const auto lbl = labels(m);
    std::uint64_t cumulative = 0;
    double sum = 0;
    const auto& hist = m.stats.probe_length_histogram;
    for (std::size_t i = 0; i < hist.size(); ++i) {
      cumulative += hist[i];
      sum += static_cast<double>(i + 1) * static_cast<double>(hist[i]);
      fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"{}\"}} {}\n", h, lbl, i + 1, cumulative);
    }
    fmt::format_to(std::back_inserter(out), "{}_bucket{{{},le=\"+Inf\"}} {}\n", h, lbl, cumulative);
    fmt::format_to(std::back_inserter(out), "{}_sum{{{}}} {}\n", h, lbl, number(sum));
    fmt::format_to(std::back_inserter(out), "{}_count{{{}}} {}\n", h, lbl, cumulative);
  }
  return out;
}

std::string to_prometheus(const stats_t& s, std::string_view instance_label) {
  return to_prometheus(std::vector<named_stats>{named_stats{std::string(instance_label), s}});
}

}  // namespace polymap
