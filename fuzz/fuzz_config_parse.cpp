// The config parser on arbitrary bytes (issue 19): JSON, TOML and sniffed,
// against schema::any() and the demo schema; the layered path (parse_settings,
// then validate_settings of those settings merged with environment-style text
// settings cut from the same bytes); and schema files. Anything but a
// document or a config_error (a crash, a stack overflow on deep nesting,
// another exception, a leak) is a failure.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "polymap/config/config_store.hpp"
#include "polymap/config/sources.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace cfg = polymap::config;
  static const cfg::schema any = cfg::schema::any();
  static const cfg::schema demo = cfg::schema::demo();
  // A duration key and a double key that allows inf/nan, for text settings.
  static const cfg::schema timed = [] {
    cfg::config_key<std::int64_t> wait{"http.wait", 1000, cfg::in_range(1, 60'000)};
    wait.as_duration();
    cfg::config_key<double> big{"limits.big", 1.0};
    big.allow_non_finite();
    cfg::config_key<bool> flag{"feature.flag", false};
    return cfg::schema(wait, big, flag);
  }();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto fmt : {cfg::file_format::automatic, cfg::file_format::json, cfg::file_format::toml}) {
    for (const cfg::schema* s : {&any, &demo}) {
      try {
        (void)cfg::parse_document(text, fmt, "fuzz", *s);
      } catch (const cfg::config_error&) {
      }
    }
  }
  // Text settings as an env_source gives them: each line "key=value".
  std::vector<cfg::raw_setting> text_settings;
  for (std::size_t at = 0; at < text.size() && text_settings.size() < 16;) {
    const auto nl = std::min(text.find('\n', at), text.size());
    const auto line = text.substr(at, nl - at);
    at = nl + 1;
    const auto eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    cfg::raw_setting r;
    r.key = std::string(line.substr(0, eq));
    r.val = polymap::value(std::string(line.substr(eq + 1)));
    r.is_text = true;
    r.origin = "env:FUZZ";
    text_settings.push_back(std::move(r));
  }
  std::vector<cfg::raw_setting> parsed;
  try {
    parsed = cfg::parse_settings(text, cfg::file_format::automatic, "fuzz");
  } catch (const cfg::config_error&) {
  }
  for (const cfg::schema* s : {&any, &demo, &timed}) {
    try {
      (void)cfg::validate_settings(cfg::merge_settings({parsed, text_settings}), *s, "fuzz-layers");
    } catch (const cfg::config_error&) {
    }
  }
  try {
    (void)cfg::schema::from_json(text, "fuzz-schema");
  } catch (const cfg::config_error&) {
  }
  return 0;
}
