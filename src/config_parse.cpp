// config_parse.cpp — JSON and TOML files to validated, flattened documents.
//
// Both parsers produce a list of (dotted key, value, line) in file order;
// validation against the schema is shared. nlohmann-json reports a byte
// offset for syntax errors (turned into a line here) but no positions for
// values; toml++ reports a source line for every node, so TOML errors about a
// key name its line too. toml++ is used header-only (this is its one
// translation unit), so the installed library needs no toml++ at link time.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include <toml++/toml.h>
#include <nlohmann/json.hpp>

#include "polymap/config/config_store.hpp"

namespace polymap::config {

namespace {

struct raw_entry {
  std::string key;
  value val;
  int line = 0;
};

[[noreturn]] void fail(const std::string& origin, int line, std::string key, const std::string& problem) {
  throw config_error(origin, line, std::move(key), problem);
}

std::string join_key(const std::string& prefix, std::string_view k) {
  return prefix.empty() ? std::string(k) : prefix + "." + std::string(k);
}

// --- JSON --------------------------------------------------------------------

int line_of_offset(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n'));
}

void flatten_json(const nlohmann::json& j, const std::string& prefix, const std::string& origin,
                  std::vector<raw_entry>& out) {
  using t = nlohmann::json::value_t;
  switch (j.type()) {
    case t::object:
      if (j.empty() && !prefix.empty()) fail(origin, 0, prefix, "an empty table sets nothing");
      for (const auto& [k, v] : j.items()) {
        if (k.empty()) fail(origin, 0, prefix, "an empty key name");
        flatten_json(v, join_key(prefix, k), origin, out);
      }
      return;
    case t::boolean:
      out.push_back({prefix, value(j.get<bool>()), 0});
      return;
    case t::number_integer:
      out.push_back({prefix, value(j.get<std::int64_t>()), 0});
      return;
    case t::number_unsigned: {
      const auto u = j.get<std::uint64_t>();
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        fail(origin, 0, prefix, fmt::format("integer {} does not fit int64", u));
      out.push_back({prefix, value(static_cast<std::int64_t>(u)), 0});
      return;
    }
    case t::number_float:
      out.push_back({prefix, value(j.get<double>()), 0});
      return;
    case t::string:
      out.push_back({prefix, value(j.get<std::string>()), 0});
      return;
    case t::array:
      fail(origin, 0, prefix, "arrays are not supported");
    case t::null:
      fail(origin, 0, prefix, "null is not a value (remove the key to use its default)");
    default:
      fail(origin, 0, prefix, "unsupported value");
  }
}

std::vector<raw_entry> parse_json(std::string_view text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string msg = e.what();
    // "[json.exception.parse_error.101] parse error at line 3, column 5: syntax error ..." -> after the ": "
    if (auto p = msg.find("]"); p != std::string::npos) msg = msg.substr(p + 2);
    fail(origin, line_of_offset(text, e.byte > 0 ? e.byte - 1 : 0), "", "malformed JSON: " + msg);
  }
  if (!j.is_object()) fail(origin, 1, "", "the top level must be an object");
  std::vector<raw_entry> out;
  flatten_json(j, "", origin, out);
  return out;
}

// --- TOML --------------------------------------------------------------------

void flatten_toml(const toml::node& n, const std::string& prefix, const std::string& origin,
                  std::vector<raw_entry>& out) {
  const int line = static_cast<int>(n.source().begin.line);
  switch (n.type()) {
    case toml::node_type::table: {
      const auto& tbl = *n.as_table();
      if (tbl.empty() && !prefix.empty()) fail(origin, line, prefix, "an empty table sets nothing");
      for (const auto& [k, v] : tbl) flatten_toml(v, join_key(prefix, k.str()), origin, out);
      return;
    }
    case toml::node_type::boolean:
      out.push_back({prefix, value(n.as_boolean()->get()), line});
      return;
    case toml::node_type::integer:
      out.push_back({prefix, value(n.as_integer()->get()), line});
      return;
    case toml::node_type::floating_point:
      out.push_back({prefix, value(n.as_floating_point()->get()), line});
      return;
    case toml::node_type::string:
      out.push_back({prefix, value(n.as_string()->get()), line});
      return;
    case toml::node_type::array:
      fail(origin, line, prefix, "arrays are not supported");
    default:
      fail(origin, line, prefix, "dates and times are not supported (use a string)");
  }
}

std::vector<raw_entry> parse_toml(std::string_view text, const std::string& origin) {
  toml::table tbl;
  try {
    tbl = toml::parse(text, std::string_view(origin));
  } catch (const toml::parse_error& e) {
    fail(origin, static_cast<int>(e.source().begin.line), "",
         fmt::format("malformed TOML: {} (column {})", e.description(), e.source().begin.column));
  }
  std::vector<raw_entry> out;
  flatten_toml(tbl, "", origin, out);
  return out;
}

file_format sniff(std::string_view text) {
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    return c == '{' ? file_format::json : file_format::toml;
  }
  return file_format::json;  // empty: let the JSON parser say so
}

// Reads a whole file; the error names the file and the system's reason.
std::string read_file(const std::filesystem::path& file) {
  const std::string name = file.string();
  const int fd = ::open(name.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(name, 0, "", fmt::format("cannot open: {}", std::strerror(errno)));
  std::string text;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      ::close(fd);
      fail(name, 0, "", fmt::format("cannot read: {}", std::strerror(err)));
    }
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return text;
}

}  // namespace

std::string_view kind_name(value::kind k) noexcept {
  switch (k) {
    case value::kind::boolean:
      return "bool";
    case value::kind::int64:
      return "int64";
    case value::kind::float64:
      return "double";
    case value::kind::string:
      return "string";
    default:
      return "unsupported";
  }
}

schema& schema::add(key_spec s) {
  if (s.name.empty()) throw std::invalid_argument("schema: a key needs a name");
  if (kind_name(s.kind) == "unsupported")
    throw std::invalid_argument(fmt::format("schema: key '{}' has an unsupported type", s.name));
  if (find(s.name)) throw std::invalid_argument(fmt::format("schema: key '{}' declared twice", s.name));
  if (!s.required && s.default_value.which() != s.kind)
    throw std::invalid_argument(fmt::format("schema: key '{}': default is {}, declared {}", s.name,
                                            s.default_value.type_name(), kind_name(s.kind)));
  keys_.push_back(std::move(s));
  return *this;
}

const key_spec* schema::find(std::string_view name) const noexcept {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

schema schema::any() {
  schema s;
  s.allow_unknown(true);
  return s;
}

schema schema::demo() {
  schema s;
  s.add(config_key<std::string>("http.host", "localhost", non_empty(), "address to listen on").spec());
  s.add(config_key<std::int64_t>("http.port", 8080, in_range(1, 65535), "TCP port").spec());
  s.add(config_key<std::int64_t>("http.timeout_ms", 3000, in_range(1, 60000), "request timeout").spec());
  s.add(
      config_key<std::string>("log.level", "info", one_of({"debug", "info", "warn", "error"}), "log verbosity").spec());
  s.add(config_key<bool>("feature.new_ui", false, {}, "serve the new UI").spec());
  s.add(config_key<double>("limits.sample_ratio", 0.1, in_range(0.0, 1.0), "fraction of requests traced").spec());
  return s;
}

schema schema::from_json(std::string_view text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    std::string msg = e.what();
    if (auto p = msg.find("]"); p != std::string::npos) msg = msg.substr(p + 2);
    fail(origin, line_of_offset(text, e.byte > 0 ? e.byte - 1 : 0), "", "malformed schema JSON: " + msg);
  }
  if (!j.is_object() || !j.contains("keys") || !j["keys"].is_object())
    fail(origin, 0, "", "a schema is an object with a \"keys\" object");
  schema s;
  if (j.contains("allow_unknown")) {
    if (!j["allow_unknown"].is_boolean()) fail(origin, 0, "allow_unknown", "must be true or false");
    s.allow_unknown(j["allow_unknown"].get<bool>());
  }
  static const std::set<std::string> known_fields{"type", "default", "required",  "min",
                                                  "max",  "one_of",  "non_empty", "description"};
  for (const auto& item : j["keys"].items()) {
    // Plain names, not a structured binding: clang 14 cannot capture those.
    const std::string name = item.key();
    const nlohmann::json& d = item.value();
    if (!d.is_object()) fail(origin, 0, name, "a key's description must be an object");
    for (const auto& [field, _] : d.items()) {
      if (!known_fields.count(field)) fail(origin, 0, name, fmt::format("unknown field '{}'", field));
    }
    if (!d.contains("type") || !d["type"].is_string()) fail(origin, 0, name, "needs a \"type\"");
    const std::string type = d["type"].get<std::string>();
    key_spec k;
    k.name = name;
    if (type == "bool" || type == "boolean") {
      k.kind = value::kind::boolean;
    } else if (type == "int64" || type == "int" || type == "integer") {
      k.kind = value::kind::int64;
    } else if (type == "double" || type == "float" || type == "number") {
      k.kind = value::kind::float64;
    } else if (type == "string") {
      k.kind = value::kind::string;
    } else {
      fail(origin, 0, name, fmt::format("unknown type '{}' (bool, int64, double, string)", type));
    }
    k.required = d.value("required", false);
    if (d.contains("description") && d["description"].is_string()) k.description = d["description"];

    std::vector<std::function<std::string(const value&)>> checks;
    auto number = [&](const char* field) -> double {
      if (!d[field].is_number()) fail(origin, 0, name, fmt::format("\"{}\" must be a number", field));
      if (k.kind != value::kind::int64 && k.kind != value::kind::float64)
        fail(origin, 0, name, fmt::format("\"{}\" applies to numbers only", field));
      return d[field].get<double>();
    };
    auto as_double = [](const value& v) {
      return v.which() == value::kind::int64 ? static_cast<double>(*v.get_if<std::int64_t>()) : *v.get_if<double>();
    };
    if (d.contains("min")) {
      const double lo = number("min");
      checks.push_back([lo, as_double](const value& v) -> std::string {
        return as_double(v) < lo ? fmt::format("{} is below the minimum {}", v, lo) : "";
      });
    }
    if (d.contains("max")) {
      const double hi = number("max");
      checks.push_back([hi, as_double](const value& v) -> std::string {
        return as_double(v) > hi ? fmt::format("{} is above the maximum {}", v, hi) : "";
      });
    }
    if (d.contains("one_of")) {
      if (k.kind != value::kind::string || !d["one_of"].is_array())
        fail(origin, 0, name, "\"one_of\" is an array and applies to strings only");
      std::vector<std::string> allowed;
      for (const auto& a : d["one_of"]) {
        if (!a.is_string()) fail(origin, 0, name, "\"one_of\" lists strings");
        allowed.push_back(a.get<std::string>());
      }
      checks.push_back([f = one_of(std::move(allowed))](const value& v) { return f(*v.get_if<std::string>()); });
    }
    if (d.value("non_empty", false)) {
      if (k.kind != value::kind::string) fail(origin, 0, name, "\"non_empty\" applies to strings only");
      checks.push_back([](const value& v) { return non_empty()(*v.get_if<std::string>()); });
    }
    if (!checks.empty()) {
      k.check = [checks](const value& v) -> std::string {
        for (const auto& c : checks) {
          if (auto why = c(v); !why.empty()) return why;
        }
        return {};
      };
    }
    if (d.contains("default")) {
      const auto& dv = d["default"];
      value v;
      switch (k.kind) {
        case value::kind::boolean:
          if (!dv.is_boolean()) fail(origin, 0, name, "default must be a bool");
          v = value(dv.get<bool>());
          break;
        case value::kind::int64:
          if (!dv.is_number_integer()) fail(origin, 0, name, "default must be an integer");
          v = value(dv.get<std::int64_t>());
          break;
        case value::kind::float64:
          if (!dv.is_number()) fail(origin, 0, name, "default must be a number");
          v = value(dv.get<double>());
          break;
        default:
          if (!dv.is_string()) fail(origin, 0, name, "default must be a string");
          v = value(dv.get<std::string>());
          break;
      }
      if (k.check) {
        if (auto why = k.check(v); !why.empty()) fail(origin, 0, name, "default rejected: " + why);
      }
      k.default_value = v;
    } else if (!k.required) {
      fail(origin, 0, name, "needs a \"default\" or \"required\": true");
    }
    try {
      s.add(std::move(k));
    } catch (const std::invalid_argument& e) {
      fail(origin, 0, name, e.what());
    }
  }
  return s;
}

schema schema::from_json_file(const std::filesystem::path& file) {
  const std::string text = read_file(file);
  return from_json(text, file.string());
}

document parse_document(std::string_view text, file_format format, const std::string& origin, const schema& s) {
  return validate_settings(parse_settings(text, format, origin), s, origin);
}

document load_document(const std::filesystem::path& file, const schema& s, file_format format) {
  const std::string text = read_file(file);
  return parse_document(text, format_for(file, format), file.string(), s);
}

// --- settings: the halves of parse_document, for sources and layers ----------

file_format format_for(const std::filesystem::path& file, file_format format) noexcept {
  if (format != file_format::automatic) return format;
  const auto ext = file.extension();
  if (ext == ".json") return file_format::json;
  if (ext == ".toml") return file_format::toml;
  return format;
}

std::vector<raw_setting> parse_settings(std::string_view text, file_format format, const std::string& origin) {
  if (format == file_format::automatic) format = sniff(text);
  std::vector<raw_entry> raw = format == file_format::json ? parse_json(text, origin) : parse_toml(text, origin);
  std::vector<raw_setting> out;
  out.reserve(raw.size());
  std::set<std::string> seen;
  for (auto& r : raw) {
    if (!seen.insert(r.key).second) fail(origin, r.line, r.key, "set twice");
    raw_setting rs;
    rs.key = std::move(r.key);
    rs.val = std::move(r.val);
    rs.origin = origin;
    rs.line = r.line;
    out.push_back(std::move(rs));
  }
  return out;
}

namespace {

// A text setting (environment variable, etcd plain value) as the schema's type.
value from_text(const raw_setting& r, value::kind k) {
  const std::string& t = *r.val.get_if<std::string>();
  auto bad = [&](std::string_view what) {
    fail(r.origin, r.line, r.key, fmt::format("expected {}, found text '{}'{}", kind_name(k), t, what));
  };
  switch (k) {
    case value::kind::boolean: {
      std::string low(t);
      std::transform(low.begin(), low.end(), low.begin(), [](unsigned char c) { return std::tolower(c); });
      if (low == "true" || low == "1") return value(true);
      if (low == "false" || low == "0") return value(false);
      bad(" (true, false, 1 or 0)");
      break;
    }
    case value::kind::int64: {
      std::int64_t v = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc::result_out_of_range) bad(": out of the int64 range");
      if (ec != std::errc() || end != t.data() + t.size() || t.empty()) bad("");
      return value(v);
    }
    case value::kind::float64: {
      double v = 0;
      const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec == std::errc::result_out_of_range) bad(": out of the double range");
      if (ec != std::errc() || end != t.data() + t.size() || t.empty()) bad("");
      if (!std::isfinite(v)) bad(": not a finite number");
      return value(v);
    }
    default:
      break;
  }
  return r.val;  // string: as it is
}

}  // namespace

document validate_settings(std::vector<raw_setting> settings, const schema& s, const std::string& name) {
  std::map<std::string, entry> out;
  for (auto& r : settings) {
    const std::string& origin = r.origin.empty() ? name : r.origin;
    const key_spec* spec = s.find(r.key);
    if (!spec) {
      if (!s.allows_unknown()) fail(origin, r.line, r.key, "unknown key (not in the schema)");
    } else {
      if (r.is_text && r.val.which() == value::kind::string) r.val = from_text(r, spec->kind);
      if (spec->kind == value::kind::float64 && r.val.which() == value::kind::int64) {
        r.val = value(static_cast<double>(*r.val.get_if<std::int64_t>()));
      }
      if (r.val.which() != spec->kind)
        fail(origin, r.line, r.key, fmt::format("expected {}, found {}", kind_name(spec->kind), r.val.type_name()));
      if (spec->check) {
        if (auto why = spec->check(r.val); !why.empty()) fail(origin, r.line, r.key, why);
      }
    }
    entry e{r.key, std::move(r.val), true, r.line, origin};
    if (!out.emplace(r.key, std::move(e)).second) fail(origin, r.line, r.key, "set twice");
  }
  for (const auto& spec : s.keys()) {
    if (out.count(spec.name)) continue;
    if (spec.required) fail(name, 0, spec.name, "required, but not set");
    out.emplace(spec.name, entry{spec.name, spec.default_value, false, 0, {}});
  }
  document doc;
  doc.file = name;
  doc.entries.reserve(out.size());
  for (auto& [k, e] : out) doc.entries.push_back(std::move(e));
  return doc;
}

}  // namespace polymap::config
