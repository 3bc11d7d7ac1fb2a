// config_watch.hpp — internal to the library: reading config files safely,
// and the inotify watcher behind file_source and directory_source.
//
// WHAT IS WATCHED
//   Every (directory, name) pair the kernel consults to resolve each path,
//   symlinks followed: for a Kubernetes ConfigMap volume (app.json ->
//   ..data/app.json, ..data -> ..2026_12_03_10_00_00.123) that is the mount
//   directory for "app.json" and "..data", the timestamped directory for
//   "app.json", and each ancestor for the next component. The pairs are
//   recomputed after every relevant event (re-resolving symlinks, following a
//   directory replaced by mv or a file recreated). Only events naming a pair
//   (or any accepted name in a watched directory of a directory source) are
//   relevant: a busy neighbour file changes nothing.
//
// WHEN A CHANGE IS COMPLETE
//   A relevant event makes a change pending. It is announced when
//     - no writer that modified a watched file (IN_MODIFY, or IN_CREATE of a
//       regular file) still has it open (IN_CLOSE_WRITE not yet seen), and
//     - no relevant event came for `settle`, and the files' size, mtime and
//       inode held still across that time;
//   or, once `max_delay` has passed since the change became pending, as soon
//   as no writer has a file open (the cap on quiet-waiting; a file kept
//   open for writing is never read half-written, so it waits for the close).
//   Before announcing, the watcher reads the files itself and checks that no
//   relevant event arrived during the read and that each file's fstat did not
//   move: a writer that started again is caught, and the read is retried
//   later. The checked bytes are what the source's load_changed() returns.
#pragma once

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "polymap/config/config_store.hpp"

namespace polymap::config::detail {

// Reads a whole regular file (non-blocking open, so a FIFO cannot hang the
// reader; devices, FIFOs and directories are refused; at most max_bytes).
// `before` / `after` receive fstat of the open file around the read. Throws
// config_error naming the file.
std::string read_regular(const std::filesystem::path& file, struct stat* before = nullptr,
                         struct stat* after = nullptr);
inline constexpr std::size_t max_file_bytes = std::size_t{16} << 20;

// What a source follows: files whose content it is made of (in order), and
// directories in which any entry `accept` admits matters (conf.d).
struct watch_plan {
  std::vector<std::filesystem::path> files;
  std::vector<std::filesystem::path> dirs;
  std::string error;  // the plan itself failed (e.g. a directory cannot be listed)
};

// The files' content as read by the watcher once complete.
struct captured {
  std::chrono::steady_clock::time_point when;  // when the read started
  struct file {
    std::string path;
    std::string text;
    std::optional<config_error> error;  // the read failed
  };
  std::vector<file> files;
  std::string plan_error;
};

class fs_watcher {
 public:
  struct timing {
    std::chrono::milliseconds settle{20};
    std::chrono::milliseconds max_delay{2000};
  };
  // plan(): what to follow now; accept(name): whether an entry of a plan
  // directory matters; done(c): a complete change (called on the thread).
  fs_watcher(std::string what, std::function<watch_plan()> plan, std::function<bool(std::string_view)> accept, timing t,
             std::function<void(captured)> done);
  ~fs_watcher();
  fs_watcher(const fs_watcher&) = delete;
  fs_watcher& operator=(const fs_watcher&) = delete;
  void start();  // throws config_error (inotify or eventfd unavailable)
  void stop();   // joins; idempotent

  // Reads the plan's files now (what load_changed's capture holds).
  static captured read_plan(const watch_plan& p);

 private:
  struct dir_watch {
    std::string dir;                           // real path
    std::set<std::string, std::less<>> names;  // entries that matter
    bool any = false;                          // every entry accept_ admits matters
  };
  void run();
  void rearm();                                // recomputes the plan and the watches
  bool drain(std::set<std::string>& writers);  // reads pending events; true if one mattered

  // Written by start() before the thread exists, then by the thread only.
  std::map<int, dir_watch> watches_;
  watch_plan plan_now_;

  std::string what_;
  std::function<watch_plan()> plan_;
  std::function<bool(std::string_view)> accept_;
  timing timing_;
  std::function<void(captured)> done_;
  int inotify_fd_ = -1;
  int stop_fd_ = -1;
  std::thread thread_;
};

}  // namespace polymap::config::detail
