// bench/report.hpp — a benchmark run as a markdown table and as a
// self-contained HTML report with inline SVG charts (no script, no network).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "bench/latency.hpp"
#include "bench/results.hpp"

namespace polymap::bench {

// A markdown table: one row per configuration, one column per map, each cell
// "Mops/s (ratio to the baseline)", then bytes per entry.
std::string render_table(const results& r);

// The whole report as XHTML-compatible HTML5 (it parses as XML). hashstat, if
// not null, is the JSON `polymap hashstat --json` writes; its histograms get a
// chart of their own.
std::string render_html(const results& r, const nlohmann::json* hashstat = nullptr);

// The headline chart as a standalone SVG document: throughput against
// threads for each workload, at the first key type and N of the run.
std::string render_throughput_svg(const results& r);

// `polymap bench latency` as an HTML page: per phase, a chart of the latency
// percentiles of every map on a log axis; the maxima (median over runs);
// throughput; the table.
std::string render_latency_html(const latency::results& r);

}  // namespace polymap::bench
