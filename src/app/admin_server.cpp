// /metrics, /healthz and /dashboard on their own listener, served by evhttp
// on worker 0's event loop. A scrape renders on that loop, so the body is
// built in one go and compressed with the fastest zlib level to keep the
// pause short. /dashboard is a static page compiled into the binary (see
// src/app/dashboard/) that polls /metrics from the browser; / links them.
#include "app/admin_server.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "dashboard_html.h"
#include "core/ascii.h"
#include "core/exposition_format.h"
#include "core/metrics.h"
#include "net/socket_address.h"
#include "net/tls_context.h"

namespace regmeter {
namespace {

constexpr const char* kTextContentType = "text/plain; charset=utf-8";
constexpr const char* kHtmlContentType = "text/html; charset=utf-8";
constexpr const char* kLandingPageCsp = "default-src 'none'";
constexpr int kTimeoutSeconds = 10;
constexpr ev_ssize_t kMaxHeadersSize = 16 * 1024;
constexpr ev_ssize_t kMaxBodySize = 4 * 1024;  // requests here carry no body

// True when an Accept-Encoding value lists gzip with a non-zero q.
bool accepts_gzip(const char* header) {
  if (header == nullptr) return false;
  std::string_view rest(header);
  while (!rest.empty()) {
    auto comma = rest.find(',');
    auto element = ascii_trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);

    auto semicolon = element.find(';');
    auto coding = ascii_trim(element.substr(0, semicolon));
    if (!ascii_iequals(coding, "gzip") && !ascii_iequals(coding, "x-gzip")) continue;
    if (semicolon == std::string_view::npos) return true;
    auto params = ascii_trim(element.substr(semicolon + 1));
    if (params.size() < 2 || !ascii_iequals(params.substr(0, 2), "q=")) return true;
    // q=0, q=0.0, q=0.000 refuse; anything else is some preference.
    auto q = params.substr(2);
    return q.find_first_not_of("0.") != std::string_view::npos;
  }
  return false;
}

// The gzip format (windowBits 15 + 16), not raw zlib: that is what
// Content-Encoding: gzip means. nullopt if zlib fails; we then send plain.
std::optional<std::string> gzip(std::string_view input) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return std::nullopt;
  std::string out(deflateBound(&zs, static_cast<uLong>(input.size())), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(input.data()));
  zs.avail_in = static_cast<uInt>(input.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) return std::nullopt;
  return out;
}

// evhttp sends no Content-Length for HEAD, and we never give it a body to
// send, so HEAD gets the length GET would have.
void reply(evhttp_request* req, int code, const char* reason, const char* content_type, std::string_view body) {
  auto* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  evbuffer* buf = evbuffer_new();
  if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD)
    evhttp_add_header(headers, "Content-Length", std::to_string(body.size()).c_str());
  else
    evbuffer_add(buf, body.data(), body.size());
  evhttp_send_reply(req, code, reason, buf);
  evbuffer_free(buf);
}

std::string address_text(const std::string& host, std::uint16_t port) {
  return host.find(':') != std::string::npos ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

// "[::1]" as written in a URL or flag; getaddrinfo wants it bare.
std::string bare_host(const std::string& host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

// evhttp's own bind reports a resolver failure only as a log line, so
// resolve first to be able to say why.
void check_resolvable(const std::string& host, std::uint16_t port) {
  int rc = for_each_tcp_address(host, port, true, [](const sockaddr*, socklen_t) {});
  if (rc != 0) throw std::runtime_error(fmt::format("metrics-listen {}: {}", address_text(host, port), gai_strerror(rc)));
}

// `/`: where someone who found the port lands. Static, no script or style.
constexpr std::string_view kLandingPage = R"(<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>regmeter</title></head>
<body>
<h1>regmeter</h1>
<p>A reverse proxy that meters container-registry traffic. This is its metrics port.</p>
<ul>
<li><a href="dashboard">/dashboard</a>: live dashboard (the last hour, drawn in the browser)</li>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="healthz">/healthz</a>: health check (200 ok, 503 while draining)</li>
</ul>
</body>
</html>
)";

struct ExtraRoute {
  std::string content_type;
  std::function<std::string()> body;
};

}  // namespace

struct AdminServer::Impl {
  const Metrics& metrics;
  std::function<bool()> healthy;
  evhttp* http = nullptr;
  std::uint16_t port = 0;
  std::optional<std::string> dashboard_gzip;  // compressed on first use; only the loop thread touches it
  std::map<std::string, ExtraRoute, std::less<>> extra_routes;

  Impl(const Metrics& m, std::function<bool()> h) : metrics(m), healthy(std::move(h)) {}
  ~Impl() {
    if (http != nullptr) evhttp_free(http);
  }

  // Text, OpenMetrics or protobuf as the scraper's Accept prefers
  // (exposition_format.h); then gzip when accepted, as before.
  void serve_metrics(evhttp_request* req) {
    const char* accept = evhttp_find_header(evhttp_request_get_input_headers(req), "Accept");
    ExpositionFormat format = accept ? negotiate_exposition(accept) : ExpositionFormat::text;
    auto body = metrics.render(format);
    const std::string content_type(content_type_of(format));
    auto* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Vary", "Accept, Accept-Encoding");
    if (accepts_gzip(evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding"))) {
      if (auto compressed = gzip(body)) {
        evhttp_add_header(headers, "Content-Encoding", "gzip");
        reply(req, 200, "OK", content_type.c_str(), *compressed);
        return;
      }
    }
    reply(req, 200, "OK", content_type.c_str(), body);
  }

  // The page never changes within a process, but no-store keeps a browser
  // from showing a stale page after an upgrade. The CSP admits only the
  // page's own inline script and style (by hash) and fetches to this origin.
  void serve_dashboard(evhttp_request* req) {
    auto* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_add_header(headers, "Content-Security-Policy", std::string(kDashboardContentSecurityPolicy).c_str());
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(headers, "Referrer-Policy", "no-referrer");
    evhttp_add_header(headers, "Vary", "Accept-Encoding");
    if (accepts_gzip(evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding"))) {
      if (!dashboard_gzip) dashboard_gzip = gzip(kDashboardHtml);
      if (dashboard_gzip) {
        evhttp_add_header(headers, "Content-Encoding", "gzip");
        reply(req, 200, "OK", kHtmlContentType, *dashboard_gzip);
        return;
      }
    }
    reply(req, 200, "OK", kHtmlContentType, kDashboardHtml);
  }

  void serve_landing(evhttp_request* req) {
    auto* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Content-Security-Policy", kLandingPageCsp);
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    reply(req, 200, "OK", kHtmlContentType, kLandingPage);
  }

  void serve_extra(evhttp_request* req, const ExtraRoute& route) {
    auto body = route.body();
    auto* headers = evhttp_request_get_output_headers(req);
    evhttp_add_header(headers, "Cache-Control", "no-store");
    evhttp_add_header(headers, "X-Content-Type-Options", "nosniff");
    evhttp_add_header(headers, "Vary", "Accept-Encoding");
    if (accepts_gzip(evhttp_find_header(evhttp_request_get_input_headers(req), "Accept-Encoding"))) {
      if (auto compressed = gzip(body)) {
        evhttp_add_header(headers, "Content-Encoding", "gzip");
        reply(req, 200, "OK", route.content_type.c_str(), *compressed);
        return;
      }
    }
    reply(req, 200, "OK", route.content_type.c_str(), body);
  }

  void serve_health(evhttp_request* req) {
    if (!healthy || healthy())
      reply(req, 200, "OK", kTextContentType, "ok\n");
    else
      reply(req, 503, "Service Unavailable", kTextContentType, "unhealthy\n");
  }

  // 404 for unknown paths first, then 405: a method is only "not allowed"
  // on a resource that exists.
  static void on_request(evhttp_request* req, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    const evhttp_uri* uri = evhttp_request_get_evhttp_uri(req);
    const char* raw_path = uri != nullptr ? evhttp_uri_get_path(uri) : nullptr;
    std::string_view path = raw_path != nullptr ? raw_path : "";

    bool is_metrics = path == "/metrics";
    bool is_dashboard = path == "/dashboard";
    bool is_landing = path == "/";
    auto extra = self->extra_routes.find(path);
    bool is_extra = extra != self->extra_routes.end();
    if (!is_metrics && !is_dashboard && !is_landing && !is_extra && path != "/healthz") {
      reply(req, 404, "Not Found", kTextContentType, "not found\n");
      return;
    }
    auto method = evhttp_request_get_command(req);
    if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
      evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
      reply(req, 405, "Method Not Allowed", kTextContentType, "method not allowed\n");
      return;
    }
    if (is_extra)
      self->serve_extra(req, extra->second);
    else if (is_landing)
      self->serve_landing(req);
    else if (is_metrics)
      self->serve_metrics(req);
    else if (is_dashboard)
      self->serve_dashboard(req);
    else
      self->serve_health(req);
  }
};

AdminServer::AdminServer(event_base* base, const std::string& listen_host, std::uint16_t port,
                         const Metrics& metrics, std::function<bool()> healthy, SSL_CTX* tls_context)
    : impl_(std::make_unique<Impl>(metrics, std::move(healthy))) {
  const std::string host = bare_host(listen_host);
  check_resolvable(host, port);
  impl_->http = evhttp_new(base);
  if (impl_->http == nullptr) throw std::runtime_error("metrics-listen: evhttp_new failed");
  evhttp* http = impl_->http;
  if (tls_context) serve_evhttp_over_tls(http, tls_context);
  evhttp_set_default_content_type(http, nullptr);  // or evhttp labels every reply text/html
  // evhttp answers a method outside this set with 501 before we see it; let
  // the common ones through so they get a proper 405 with Allow.
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                       EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
  evhttp_set_max_headers_size(http, kMaxHeadersSize);
  evhttp_set_max_body_size(http, kMaxBodySize);
  evhttp_set_timeout(http, kTimeoutSeconds);
  evhttp_set_gencb(http, &Impl::on_request, impl_.get());

  errno = 0;
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http, host.c_str(), port);
  if (bound == nullptr) {
    int err = errno;  // libevent restores bind()'s or listen()'s errno before returning
    throw std::runtime_error(fmt::format("metrics-listen {}: {}", address_text(host, port),
                                         err != 0 ? std::strerror(err) : "cannot bind"));
  }

  sockaddr_storage addr{};
  if (!bound_address(evhttp_bound_socket_get_fd(bound), addr))
    throw std::runtime_error(fmt::format("metrics-listen {}: getsockname: {}", address_text(host, port),
                                         std::strerror(errno)));
  impl_->port = port_of(reinterpret_cast<const sockaddr*>(&addr));
}

AdminServer::~AdminServer() = default;

std::uint16_t AdminServer::port() const { return impl_->port; }

void AdminServer::add_route(std::string path, std::string content_type, std::function<std::string()> body) {
  impl_->extra_routes[std::move(path)] = ExtraRoute{std::move(content_type), std::move(body)};
}

}  // namespace regmeter
