// Helpers of the config tests: a temporary directory, the two ways of
// writing a file, and a log of reload events to wait on.
#pragma once

#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "polymap/config/config_store.hpp"

namespace config_test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed afterwards.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "polymap-config-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(path_, ec);
  }
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Rewrites the file in place (open with O_TRUNC, write, close).
inline void write_in_place(const fs::path& p, const std::string& text) {
  std::ofstream f(p, std::ios::trunc);
  f << text;
  f.close();
  ASSERT_TRUE(f) << p;
}

// Replaces the file atomically: a sibling temp file renamed over it.
inline void replace_by_rename(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp";
  write_in_place(tmp, text);
  fs::rename(tmp, p);
}

// Every reload event of a store, to wait on. Attach it before changing
// anything; declare it before the store (the store's threads call it until
// the store is destroyed).
class reload_log {
 public:
  void attach(polymap::config::config_store& s) {
    s.on_reload([this](const polymap::config::reload_event& e) {
      {
        std::lock_guard g(m_);
        events_.push_back(e);
      }
      cv_.notify_all();
    });
  }
  // Waits until pred(events) holds; false after `limit`.
  template <class P>
  bool wait(P pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::unique_lock lk(m_);
    return cv_.wait_for(lk, limit, [&] { return pred(events_); });
  }
  // Waits for one more event than `seen` (an index into the log).
  bool wait_past(std::size_t seen, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return wait([&](const auto& ev) { return ev.size() > seen; }, limit);
  }
  std::vector<polymap::config::reload_event> events() {
    std::lock_guard g(m_);
    return events_;
  }
  std::size_t size() {
    std::lock_guard g(m_);
    return events_.size();
  }

 private:
  std::mutex m_;  // Protects: events_.
  std::condition_variable cv_;
  std::vector<polymap::config::reload_event> events_;
};

}  // namespace config_test
