// A first use of polymap: typed keys over a shared many-typed map.
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include <polymap/polymap.hpp>

inline const polymap::key<std::int64_t> timeout_ms{"http.timeout_ms"};
inline const polymap::key<std::string> region{"region"};

int main() {
  polymap::locked_map<> config;
  config.set(timeout_ms, 3000);
  config.set(region, "eu-west-1");

  // Many threads read and count at once; update() is an atomic read-modify-write.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        config.update("requests", [](const polymap::value* cur) {
          return polymap::value(cur ? *cur->get<std::int64_t>() + 1 : 1);
        });
      }
    });
  }
  for (auto& t : threads) t.join();

  auto wrong = config.get<double>("http.timeout_ms");  // a type error, not UB
  fmt::print("timeout={} region={} requests={}\n", *config.get(timeout_ms), *config.get(region),
             *config.get<std::int64_t>("requests"));
  fmt::print("wrong-type read: {}\n", wrong.error().message());
  return *config.get<std::int64_t>("requests") == 4000 ? 0 : 1;
}
