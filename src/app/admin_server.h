// The admin endpoints on --metrics-listen: /metrics, /healthz, /dashboard
// and the landing page /, served
// with evhttp (fine for small bodies; the data path does not use evhttp).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

struct event_base;
typedef struct ssl_ctx_st SSL_CTX;

namespace regmeter {

class Metrics;

class AdminServer {
 public:
  // Binds host:port on `base` (host may be an IPv6 literal, bracketed or
  // not). Throws std::runtime_error("metrics-listen HOST:PORT: <reason>")
  // when it cannot resolve or bind. Destroy it on the loop's thread, or
  // after the loop has stopped.
  AdminServer(event_base* base, const std::string& host, std::uint16_t port, const Metrics& metrics,
              std::function<bool()> healthy, SSL_CTX* tls_context = nullptr);
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  std::uint16_t port() const;  // the bound port (useful with port 0)

  // Serves GET and HEAD of `path` with what `body` returns, built per request
  // on the loop's thread, gzip when asked, never cached: for endpoints whose
  // logic lives elsewhere (/dashboard/history).
  void add_route(std::string path, std::string content_type, std::function<std::string()> body);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace regmeter
