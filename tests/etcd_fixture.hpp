// etcd_fixture.hpp — a real etcd for tests: one member on 127.0.0.1 with
// free ports and a temporary data directory, started, faulted (SIGKILL and
// restart on the same data, SIGSTOP/SIGCONT) and stopped by the test.
//
// ETCD_OR_SKIP() skips a test only when /usr/bin/etcd is absent, and fails it
// instead when POLYMAP_REQUIRE_ETCD=1 (CI sets it: scripts/test.sh), so CI
// cannot pass by skipping.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "polymap/config/etcd_source.hpp"

extern char** environ;

namespace polymap::test {

inline constexpr const char* etcd_binary = "/usr/bin/etcd";

inline bool etcd_required() {
  const char* v = std::getenv("POLYMAP_REQUIRE_ETCD");
  return v != nullptr && std::string(v) == "1";
}

#define ETCD_OR_SKIP()                                                                                \
  do {                                                                                                \
    if (::access(::polymap::test::etcd_binary, X_OK) != 0) {                                          \
      if (::polymap::test::etcd_required())                                                           \
        FAIL() << "etcd is required (POLYMAP_REQUIRE_ETCD=1) but /usr/bin/etcd is missing: "          \
                  "install etcd-server (scripts/setup.sh)";                                           \
      GTEST_SKIP() << "/usr/bin/etcd is not installed (Debian: etcd-server); skipping the etcd test"; \
    }                                                                                                 \
  } while (0)

// A free TCP port on 127.0.0.1 (bound to port 0, read back, released).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind/getsockname failed");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class etcd_server {
 public:
  etcd_server() {
    // tmpfs when there is one: etcd fsyncs every write.
    std::string base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path().string();
    std::string tmpl = base + "/polymap-etcd-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    // A port found free may be taken before etcd binds it (tests run in
    // parallel): then etcd exits at start, and it is tried on fresh ports.
    for (int attempt = 1;; ++attempt) {
      client_port_ = free_port();
      peer_port_ = free_port();
      try {
        start();
        return;
      } catch (...) {
        kill9();  // the destructor will not run
        std::error_code ec;
        if (attempt < 3 && pid_exited_at_start_) {
          std::filesystem::remove_all(dir_ + "/data", ec);
          continue;
        }
        std::filesystem::remove_all(dir_, ec);
        throw;
      }
    }
  }
  ~etcd_server() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  etcd_server(const etcd_server&) = delete;
  etcd_server& operator=(const etcd_server&) = delete;

  int port() const { return client_port_; }
  std::string url(const std::string& prefix) const {
    return fmt::format("etcd://127.0.0.1:{}{}", client_port_, prefix);
  }
  config::etcd_client client() const { return config::etcd_client("127.0.0.1", client_port_); }

  // Starts etcd on the data dir (on `client_port` if given, else the usual
  // one) and waits until it answers (bounded: 20 s).
  void start(int client_port = 0) {
    const int port = client_port != 0 ? client_port : client_port_;
    pid_exited_at_start_ = false;
    const std::string client = fmt::format("http://127.0.0.1:{}", port);
    const std::string peer = fmt::format("http://127.0.0.1:{}", peer_port_);
    std::vector<std::string> args = {etcd_binary,
                                     "--name",
                                     "polymap-test",
                                     "--data-dir",
                                     dir_ + "/data",
                                     "--listen-client-urls",
                                     client,
                                     "--advertise-client-urls",
                                     client,
                                     "--listen-peer-urls",
                                     peer,
                                     "--initial-advertise-peer-urls",
                                     peer,
                                     "--initial-cluster",
                                     "polymap-test=" + peer,
                                     "--log-level",
                                     "error"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    const std::string log = dir_ + "/etcd.log";
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    const int rc = ::posix_spawn(&pid_, etcd_binary, &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error(fmt::format("posix_spawn etcd: {}", rc));
    config::etcd_client c("127.0.0.1", port, std::chrono::milliseconds(500));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    for (;;) {
      try {
        c.revision();
        return;
      } catch (const config::etcd_error&) {
      }
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        pid_exited_at_start_ = true;
        throw std::runtime_error("etcd exited at start; see " + log);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        kill9();
        throw std::runtime_error("etcd did not answer in 20 s; see " + log);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling a bounded start, not a timing assumption
    }
  }

  // SIGTERM, then SIGKILL after 5 s; reaps.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);  // a paused etcd cannot take SIGTERM
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    int status = 0;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    pid_ = -1;
  }
  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
  // Kills etcd and deletes its data: the next start() is a new cluster.
  void wipe() {
    kill9();
    std::error_code ec;
    std::filesystem::remove_all(dir_ + "/data", ec);
  }
  void pause() { ::kill(pid_, SIGSTOP); }
  void resume() { ::kill(pid_, SIGCONT); }

 private:
  std::string dir_;
  int client_port_ = 0;
  int peer_port_ = 0;
  pid_t pid_ = -1;
  bool pid_exited_at_start_ = false;
};

// Waits (bounded) until pred() holds; false on timeout.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Puts 1..n into `key` one after another, retrying each value while etcd is
// down (killed, paused) for up to 30 s; the faults tests' writer. join()
// returns false if etcd never came back.
class counter_writer {
 public:
  counter_writer(int port, std::string key, int n)
      : thread_([this, port, key = std::move(key), n] {
          polymap::config::etcd_client c("127.0.0.1", port, std::chrono::seconds(2));
          for (int i = 1; i <= n; ++i) {
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
            for (;;) {
              try {
                c.put(key, std::to_string(i));
                break;
              } catch (const polymap::config::etcd_error&) {
                if (std::chrono::steady_clock::now() > deadline) {
                  failed_ = true;
                  return;
                }
                // etcd is down: retry the same value
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
              }
            }
          }
        }) {}
  ~counter_writer() {
    if (thread_.joinable()) thread_.join();
  }
  bool join() {
    thread_.join();
    return !failed_;
  }

 private:
  bool failed_ = false;  // written by the thread, read after join()
  std::thread thread_;
};

}  // namespace polymap::test
