// A service that exposes its maps' statistics to Prometheus.
//
//   metrics_server PORT [SECONDS]
//
// Serves GET /metrics on 127.0.0.1:PORT in the Prometheus text format while
// a worker thread keeps a polymap::locked_map busy; stops after SECONDS
// (default: runs until killed). Try:  curl -s localhost:PORT/metrics
// and point a Prometheus scrape job at it. Only POSIX sockets, no framework.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include <polymap/locked_map.hpp>
#include <polymap/metrics.hpp>

namespace {

std::string http_response(int status, const char* reason, const std::string& type, const std::string& body) {
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
}

void send_all(int fd, const std::string& s) {
  std::size_t sent = 0;
  while (sent < s.size()) {
    const ssize_t k = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (k <= 0) return;
    sent += static_cast<std::size_t>(k);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [SECONDS]\n", argv[0]);
    return 2;
  }
  const int port = std::atoi(argv[1]);
  const int seconds = argc > 2 ? std::atoi(argv[2]) : 0;
  if (port <= 0 || port > 65535) {
    std::fprintf(stderr, "metrics_server: bad port '%s'\n", argv[1]);
    return 2;
  }

  // The service's state: a session table another thread keeps writing.
  polymap::locked_map<> sessions;
  std::atomic<bool> stop{false};
  std::thread worker([&] {
    for (std::int64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
      sessions.insert_or_assign("session-" + std::to_string(i % 5000), i);
      if (i % 1000 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });

  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (listener < 0 || ::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener, 16) != 0) {
    std::perror("metrics_server: listen");
    stop = true;
    worker.join();
    return 1;
  }
  std::printf("serving http://127.0.0.1:%d/metrics%s\n", port, seconds ? "" : " (Ctrl-C to stop)");
  std::fflush(stdout);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (seconds == 0 || std::chrono::steady_clock::now() < deadline) {
    pollfd p{listener, POLLIN, 0};
    if (::poll(&p, 1, 200) <= 0) continue;
    const int client = ::accept(listener, nullptr, nullptr);
    if (client < 0) continue;
    char buf[2048];
    const ssize_t k = ::recv(client, buf, sizeof buf - 1, 0);
    const std::string request = k > 0 ? std::string(buf, static_cast<std::size_t>(k)) : std::string();
    if (request.rfind("GET /metrics", 0) == 0) {
      const std::string body = polymap::to_prometheus(sessions.stats(), "sessions");
      send_all(client, http_response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body));
    } else {
      send_all(client, http_response(404, "Not Found", "text/plain", "try /metrics\n"));
    }
    ::close(client);
  }
  ::close(listener);
  stop = true;
  worker.join();
  return 0;
}
