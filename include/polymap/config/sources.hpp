// polymap/config/sources.hpp — the config_source implementations that ship
// with config_store: a file, a directory of files (conf.d), environment
// variables with a prefix. (etcd: polymap/config/etcd_source.hpp.)
//
// CONTRACT
//   file_source(path): the settings of one JSON or TOML file (format from
//   the extension, else sniffed, unless given). Every setting's origin is
//   the file's path. A key set twice in the file is an error.
//
//   directory_source(dir): every entry of `dir` whose name ends in .json or
//   .toml and does not start with '.', merged in name order (byte order:
//   10-base.toml, then 20-site.toml): a later file overrides an earlier one
//   key by key; each setting's origin is its file. A missing or unreadable
//   directory, or a bad file in it, fails the whole source. An empty
//   directory sets nothing.
//
//   env_source(prefix): every variable PREFIX<NAME>; NAME lower-cased, "__"
//   separating levels: APP_HTTP__TIMEOUT_MS=250 sets http.timeout_ms, as
//   text that the schema's type parses ("250" -> int64 250; bools: true,
//   false, 1, 0). Origin "env:APP_HTTP__TIMEOUT_MS". Read at each load();
//   not watched (a process's environment does not change from outside).
//
//   Watching (file and directory sources): an inotify watcher follows every
//   directory and symlink the paths resolve through, re-resolved after each
//   change, so a Kubernetes ConfigMap volume (`..data` symlink swapped to a
//   new timestamped directory), a symlinked file or directory re-pointed, a
//   directory replaced by mv, and a file deleted and recreated are all
//   followed. Only events naming the watched entries count (a neighbour
//   rewritten every 5 ms changes nothing). A change is announced once it is
//   complete: no writer that modified a file still has it open, and nothing
//   moved (events, size, mtime, inode) for `settle`; after `max_delay` the
//   quiet wait is cut short, but a file still open for writing is still
//   waited for (it is never read half-written). The watcher reads the files
//   itself, checks that nothing moved during the read, and load_changed()
//   returns exactly that content. load() (reload(), the first load) reads
//   the files afresh. Writers should still replace files by rename: that is
//   atomic for every reader, watched or not.
//
//   Files are opened non-blocking, must be regular files (a FIFO or device
//   is refused, never waited on) and at most 16 MiB.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "polymap/config/config_store.hpp"
#include "polymap/config/source.hpp"

namespace polymap::config {

// How long a watched file must hold still, and the cap on that wait.
struct watch_timing {
  std::chrono::milliseconds settle{20};
  std::chrono::milliseconds max_delay{2000};
};

// The common part of file_source and directory_source.
class path_source : public config_source {
 public:
  ~path_source() override;
  std::string name() const override;
  std::vector<raw_setting> load() override;
  std::vector<raw_setting> load_changed() override;
  void watch(std::function<void()> changed) override;
  void stop() override;
  source_status status() const override;
  const std::filesystem::path& path() const noexcept;

 protected:
  struct impl;
  explicit path_source(std::unique_ptr<impl> p);

 private:
  std::unique_ptr<impl> impl_;
};

class file_source final : public path_source {
 public:
  explicit file_source(std::filesystem::path file, file_format fmt = file_format::automatic, watch_timing t = {});
};

class directory_source final : public path_source {
 public:
  explicit directory_source(std::filesystem::path dir, watch_timing t = {});
};

class env_source final : public config_source {
 public:
  // Reads the process environment at each load().
  explicit env_source(std::string prefix);
  // Uses these variables instead of the environment (tests, embedding).
  env_source(std::string prefix, std::vector<std::pair<std::string, std::string>> vars);
  std::string name() const override { return "env:" + prefix_; }
  std::vector<raw_setting> load() override;

 private:
  std::string prefix_;
  bool fixed_ = false;
  std::vector<std::pair<std::string, std::string>> vars_;
};

// A source for a path: a directory_source for a directory, else a file_source.
std::unique_ptr<config_source> make_path_source(const std::filesystem::path& p,
                                                file_format fmt = file_format::automatic, watch_timing t = {});

// Loads every source (load()), merges them in order (a later one overrides
// an earlier one key by key) and validates the result: what a config_store
// over these sources would publish. Throws config_error.
document load_sources(const std::vector<std::unique_ptr<config_source>>& sources, const schema& s);

// How errors about the whole stack name it: a lone file or directory by its
// path, else the sources' names joined by " + ".
std::string layers_name(const std::vector<const config_source*>& sources);

// Merges per-source settings in precedence order (last wins, key by key).
std::vector<raw_setting> merge_settings(std::vector<std::vector<raw_setting>> layers);

}  // namespace polymap::config
