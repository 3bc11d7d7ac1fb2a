// Names, ratios and the JSON form of a benchmark run (bench/results.hpp).
#include "bench/results.hpp"

#include <map>
#include <stdexcept>
#include <tuple>

#include <fmt/format.h>

namespace polymap::bench {

const char* name(workload w) {
  switch (w) {
    case workload::find100:
      return "find100";
    case workload::find95:
      return "find95";
    case workload::find50:
      return "find50";
    case workload::insert:
      return "insert";
  }
  return "?";
}
const char* title(workload w) {
  switch (w) {
    case workload::find100:
      return "100% find";
    case workload::find95:
      return "95% find / 5% insert_or_assign";
    case workload::find50:
      return "50% find / 50% insert_or_assign";
    case workload::insert:
      return "insert only, from empty";
  }
  return "?";
}
const char* name(key_kind k) {
  return k == key_kind::u64 ? "u64" : "str";
}
const char* title(key_kind k) {
  return k == key_kind::u64 ? "uint64 keys" : "16-24 char string keys";
}
const char* name(distribution d) {
  return d == distribution::uniform ? "uniform" : "zipf";
}

std::vector<workload> all_workloads() {
  return {workload::find100, workload::find95, workload::find50, workload::insert};
}

std::optional<workload> parse_workload(const std::string& s) {
  for (auto w : all_workloads())
    if (s == name(w)) return w;
  if (s == "100" || s == "find") return workload::find100;
  if (s == "95/5" || s == "95") return workload::find95;
  if (s == "50/50" || s == "50") return workload::find50;
  return std::nullopt;
}
std::optional<key_kind> parse_keys(const std::string& s) {
  if (s == "u64" || s == "uint64") return key_kind::u64;
  if (s == "str" || s == "string") return key_kind::str;
  return std::nullopt;
}
std::optional<distribution> parse_distribution(const std::string& s) {
  if (s == "uniform") return distribution::uniform;
  if (s == "zipf") return distribution::zipf;
  return std::nullopt;
}

namespace {

auto config_key(const config& c) {
  return std::make_tuple(c.wl, c.keys, c.n, c.dist, c.threads);
}

template <class E>
E parse_enum(const nlohmann::json& j, const char* field, std::optional<E> (*parse)(const std::string&)) {
  const auto s = j.at(field).get<std::string>();
  auto v = parse(s);
  if (!v) throw std::runtime_error(std::string("bench JSON: unknown ") + field + " '" + s + "'");
  return *v;
}

}  // namespace

void compute_ratios(results& r) {
  std::map<decltype(config_key(config{})), double> base;
  for (const auto& row : r.rows)
    if (row.cfg.map == baseline_map) base[config_key(row.cfg)] = row.median;
  for (auto& row : r.rows) {
    auto it = base.find(config_key(row.cfg));
    if (it != base.end() && it->second > 0)
      row.ratio = row.median / it->second;
    else
      row.ratio.reset();
  }
}

nlohmann::json machine_json(const machine_info& m, const nlohmann::json& extra) {
  nlohmann::json j = {{"cpu", m.cpu},
                      {"cores", m.cores},
                      {"compiler", m.compiler},
                      {"build_type", m.build_type},
                      {"date", m.date},
                      {"note", m.note},
                      {"host_probe", {{"start", to_json(m.probe_start)}, {"end", to_json(m.probe_end)}}}};
  j.update(extra);
  return j;
}

std::string describe_host(const machine_info& m) {
  const host_probe &a = m.probe_start, &b = m.probe_end;
  if (a.measured && b.measured && a.cpu_a == b.cpu_a && a.cpu_b == b.cpu_b)
    return fmt::format(
        "a cache line's round trip between CPUs {} and {} took {:.0f} ns at the start of the run and {:.0f} ns "
        "at its end",
        a.cpu_a, a.cpu_b, a.round_trip_ns, b.round_trip_ns);
  return fmt::format("the probe at the start of the run: {}; at its end: {}", describe(a), describe(b));
}

machine_info machine_from_json(const nlohmann::json& mj) {
  machine_info m;
  m.cpu = mj.value("cpu", "");
  m.cores = mj.value("cores", 0);
  m.compiler = mj.value("compiler", "");
  m.build_type = mj.value("build_type", "");
  m.date = mj.value("date", "");
  m.note = mj.value("note", "");
  const auto hp = mj.find("host_probe");
  const nlohmann::json none;
  m.probe_start = host_probe_from_json(hp != mj.end() && hp->is_object() ? hp->value("start", none) : none);
  m.probe_end = host_probe_from_json(hp != mj.end() && hp->is_object() ? hp->value("end", none) : none);
  return m;
}

nlohmann::json to_json(const results& r) {
  using nlohmann::json;
  json j;
  j["schema"] = "polymap-bench/1";
  j["machine"] = machine_json(r.machine);
  j["settings"] = {{"repeats", r.settings.repeats},
                   {"seconds_per_run", r.settings.seconds_per_run},
                   {"ops_per_run", r.settings.ops_per_run},
                   {"memory_method", r.settings.memory_method},
                   {"timing_method", r.settings.timing_method},
                   {"baseline", baseline_map}};
  j["elapsed_seconds"] = r.elapsed_seconds;
  j["maps"] = json::array();
  for (const auto& m : r.maps)
    j["maps"].push_back(
        {{"name", m.name}, {"label", m.label}, {"description", m.description}, {"concurrent", m.concurrent}});
  j["results"] = json::array();
  for (const auto& row : r.rows) {
    json o = {{"map", row.cfg.map}, {"workload", name(row.cfg.wl)}, {"keys", name(row.cfg.keys)},
              {"n", row.cfg.n},     {"dist", name(row.cfg.dist)},   {"threads", row.cfg.threads},
              {"mops", row.mops},   {"mops_median", row.median}};
    o["ratio_to_baseline"] = row.ratio ? json(*row.ratio) : json(nullptr);
    j["results"].push_back(std::move(o));
  }
  j["memory"] = json::array();
  for (const auto& m : r.memory)
    j["memory"].push_back({{"map", m.map}, {"keys", name(m.keys)}, {"n", m.n}, {"bytes_per_entry", m.bytes_per_entry}});
  return j;
}

results from_json(const nlohmann::json& j) {
  results r;
  try {
    if (j.value("schema", "") != "polymap-bench/1")
      throw std::runtime_error("bench JSON: schema is not polymap-bench/1");
    r.machine = machine_from_json(j.at("machine"));
    const auto& sj = j.at("settings");
    r.settings.repeats = sj.value("repeats", 0);
    r.settings.seconds_per_run = sj.value("seconds_per_run", 0.0);
    r.settings.ops_per_run = sj.value("ops_per_run", std::size_t{0});
    r.settings.memory_method = sj.value("memory_method", "");
    r.settings.timing_method = sj.value("timing_method", "");
    r.elapsed_seconds = j.value("elapsed_seconds", 0.0);
    for (const auto& m : j.at("maps"))
      r.maps.push_back({m.at("name").get<std::string>(), m.value("label", m.at("name").get<std::string>()),
                        m.value("description", ""), m.value("concurrent", true)});
    for (const auto& o : j.at("results")) {
      measurement row;
      row.cfg.map = o.at("map").get<std::string>();
      row.cfg.wl = parse_enum<workload>(o, "workload", &parse_workload);
      row.cfg.keys = parse_enum<key_kind>(o, "keys", &parse_keys);
      row.cfg.n = o.at("n").get<std::size_t>();
      row.cfg.dist = parse_enum<distribution>(o, "dist", &parse_distribution);
      row.cfg.threads = o.at("threads").get<int>();
      row.mops = o.value("mops", std::vector<double>{});
      row.median = o.at("mops_median").get<double>();
      r.rows.push_back(std::move(row));
    }
    if (j.contains("memory")) {
      for (const auto& o : j.at("memory"))
        r.memory.push_back({o.at("map").get<std::string>(), parse_enum<key_kind>(o, "keys", &parse_keys),
                            o.at("n").get<std::size_t>(), o.at("bytes_per_entry").get<double>()});
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("bench JSON: ") + e.what());
  }
  compute_ratios(r);
  return r;
}

}  // namespace polymap::bench
