// The config parser on arbitrary bytes (issue 19): JSON, TOML and sniffed,
// against schema::any() and the demo schema. Anything but a document or a
// config_error (a crash, a stack overflow on deep nesting, another
// exception, a leak) is a failure.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "polymap/config/config_store.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace cfg = polymap::config;
  static const cfg::schema any = cfg::schema::any();
  static const cfg::schema demo = cfg::schema::demo();
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (auto fmt : {cfg::file_format::automatic, cfg::file_format::json, cfg::file_format::toml}) {
    for (const cfg::schema* s : {&any, &demo}) {
      try {
        (void)cfg::parse_document(text, fmt, "fuzz", *s);
      } catch (const cfg::config_error&) {
      }
    }
  }
  try {
    (void)cfg::schema::from_json(text, "fuzz-schema");
  } catch (const cfg::config_error&) {
  }
  return 0;
}
