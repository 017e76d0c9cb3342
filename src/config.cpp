#include "regmeter/config.h"

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace regmeter {

std::string HostPort::to_string() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

namespace {

std::uint16_t parse_port(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value > 65535)
    throw std::invalid_argument(fmt::format("'{}' is not a port number (0-65535)", text));
  return static_cast<std::uint16_t>(value);
}

double parse_seconds(const std::string& text) {
  // from_chars: decimal only (stod would take leading spaces and hex).
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, std::chars_format::general);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(value) || value <= 0 ||
      value > 86400 * 7)
    throw std::invalid_argument(fmt::format("'{}' is not a number of seconds (> 0, at most a week)", text));
  return value;
}

// A file named on the command line must exist and be readable now, so the
// mistake is reported at start and not at the first TLS handshake.
std::string take_readable_file(const std::string& path) {
  if (path.empty()) throw std::invalid_argument("needs a file name");
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw std::invalid_argument(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
  std::fclose(file);
  return path;
}

unsigned parse_count(const std::string& text, unsigned min, unsigned max) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    throw std::invalid_argument(fmt::format("'{}' is not a whole number from {} to {}", text, min, max));
  return value;
}

}  // namespace

HostPort parse_host_port(const std::string& text) {
  HostPort result;
  std::string_view port_text;
  if (!text.empty() && text.front() == '[') {  // [::1]:5080
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      throw std::invalid_argument(fmt::format("'{}' is not HOST:PORT", text));
    result.host = text.substr(1, close - 1);
    port_text = std::string_view(text).substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon)
      throw std::invalid_argument(fmt::format("'{}' is not HOST:PORT", text));
    result.host = text.substr(0, colon);
    port_text = std::string_view(text).substr(colon + 1);
  }
  if (result.host.empty()) throw std::invalid_argument(fmt::format("'{}' has no host", text));
  result.port = parse_port(port_text);
  return result;
}

UpstreamUrl parse_upstream_url(const std::string& text) {
  UpstreamUrl url;
  auto scheme_end = text.find("://");
  if (scheme_end == std::string::npos)
    throw std::invalid_argument(fmt::format("'{}' is not a URL like http://HOST:PORT", text));
  url.scheme = text.substr(0, scheme_end);
  for (char& c : url.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (url.scheme != "http" && url.scheme != "https")
    throw std::invalid_argument(fmt::format("scheme '{}' is not supported (use http:// or https://)", url.scheme));
  std::string rest = text.substr(scheme_end + 3);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos || rest.find('?') != std::string::npos)
    throw std::invalid_argument(fmt::format("'{}' has a path; give only scheme://HOST:PORT", text));
  if (rest.find('@') != std::string::npos)
    throw std::invalid_argument(fmt::format("'{}' has credentials; they are not supported", text));
  url.authority = rest;
  bool has_port = !rest.empty() && (rest.front() == '[' ? rest.find("]:") != std::string::npos
                                                          : rest.find(':') != std::string::npos);
  url.address = parse_host_port(has_port ? rest : rest + (url.scheme == "https" ? ":443" : ":80"));
  return url;
}

std::string usage_text() {
  return R"(regmeter - a metering reverse proxy for container registries

Usage: regmeter [options]

  --listen HOST:PORT           where clients (docker, skopeo, containerd) connect
                               (default 0.0.0.0:5080)
  --upstream URL               the registry to forward to, http://HOST:PORT or
                               https://HOST:PORT (default http://127.0.0.1:5000)
  --metrics-listen HOST:PORT   /metrics and /healthz (default 127.0.0.1:9180)
  --threads N                  event-loop threads (default: number of cores)
  --header-timeout S           seconds to receive a whole request head (default 30)
  --idle-timeout S             seconds a keep-alive connection may sit idle (default 60)
  --upstream-timeout S         seconds to connect upstream, and from the end of the
                               request to the response head (default 120)
  --body-timeout S             seconds a request or response body may make no
                               progress at all (default 60); moving bodies are never cut
  --max-connections N          client connections at once; beyond, new ones wait in
                               the listen backlog (default 10000)
  --shutdown-grace S           seconds in-flight requests may take after SIGTERM (default 30)
  --max-header-bytes N         largest request head accepted (default 65536)
  --max-repositories N         repository label values kept; the rest count as
                               "__other__"; 0 drops the label (default 200)
  --upload-session-timeout S   an upload session with no request for this long
                               counts as abandoned (default 3600)
  --tls-cert FILE              serve TLS on --listen with this PEM certificate (chain)
  --tls-key FILE               ... and this PEM private key (SIGHUP reloads both)
  --tls-client-ca FILE         require client certificates signed by this CA (mTLS)
  --upstream-ca FILE           trust this CA for an https:// upstream (default: system store)
  --upstream-insecure          do not verify the upstream's certificate (logged; never default)
  --metrics-tls-cert FILE      serve the metrics port over TLS with this certificate
  --metrics-tls-key FILE       ... and this key
  --help                       this text
  --version                    the version
)";
}

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine result;
  Config& config = result.config;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool inline_value = false;
    if (auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      result.action = CommandLine::Action::help;
      return result;
    }
    if (flag == "--version") {
      result.action = CommandLine::Action::version;
      return result;
    }
    auto take_value = [&]() -> const std::string& {
      if (!inline_value) {
        if (i + 1 >= args.size()) throw std::invalid_argument("needs a value");
        value = args[++i];
      }
      return value;
    };
    try {
      if (flag == "--listen") {
        config.listen = parse_host_port(take_value());
      } else if (flag == "--upstream") {
        config.upstream = parse_upstream_url(take_value());
      } else if (flag == "--metrics-listen") {
        config.metrics_listen = parse_host_port(take_value());
      } else if (flag == "--threads") {
        config.threads = parse_count(take_value(), 1, 256);
      } else if (flag == "--header-timeout") {
        config.header_timeout_s = parse_seconds(take_value());
      } else if (flag == "--idle-timeout") {
        config.idle_timeout_s = parse_seconds(take_value());
      } else if (flag == "--upstream-timeout") {
        config.upstream_timeout_s = parse_seconds(take_value());
      } else if (flag == "--body-timeout") {
        config.body_timeout_s = parse_seconds(take_value());
      } else if (flag == "--max-connections") {
        config.max_connections = parse_count(take_value(), 1, 1000000);
      } else if (flag == "--shutdown-grace") {
        config.shutdown_grace_s = parse_seconds(take_value());
      } else if (flag == "--max-repositories") {
        config.max_repositories = parse_count(take_value(), 0, 100000);
      } else if (flag == "--upload-session-timeout") {
        config.upload_session_timeout_s = parse_seconds(take_value());
      } else if (flag == "--tls-cert") {
        config.tls_cert_file = take_readable_file(take_value());
      } else if (flag == "--tls-key") {
        config.tls_key_file = take_readable_file(take_value());
      } else if (flag == "--tls-client-ca") {
        config.tls_client_ca_file = take_readable_file(take_value());
      } else if (flag == "--upstream-ca") {
        config.upstream_ca_file = take_readable_file(take_value());
      } else if (flag == "--upstream-insecure") {
        if (inline_value) throw std::invalid_argument("takes no value");
        config.upstream_insecure = true;
      } else if (flag == "--metrics-tls-cert") {
        config.metrics_tls_cert_file = take_readable_file(take_value());
      } else if (flag == "--metrics-tls-key") {
        config.metrics_tls_key_file = take_readable_file(take_value());
      } else if (flag == "--max-header-bytes") {
        config.max_header_bytes = parse_count(take_value(), 1024, 1024 * 1024);
      } else {
        result.action = CommandLine::Action::error;
        result.error = fmt::format("regmeter: unknown option '{}' (see --help)", args[i]);
        return result;
      }
    } catch (const std::invalid_argument& e) {
      result.action = CommandLine::Action::error;
      result.error = fmt::format("regmeter: {}: {}", flag, e.what());
      return result;
    }
  }
  auto fail = [&](std::string message) {
    result.action = CommandLine::Action::error;
    result.error = "regmeter: " + std::move(message);
    return result;
  };
  if (config.tls_cert_file.empty() != config.tls_key_file.empty())
    return fail(config.tls_cert_file.empty() ? "--tls-key: needs --tls-cert too" : "--tls-cert: needs --tls-key too");
  if (!config.tls_client_ca_file.empty() && config.tls_cert_file.empty())
    return fail("--tls-client-ca: needs --tls-cert and --tls-key (client certificates need TLS)");
  if (config.metrics_tls_cert_file.empty() != config.metrics_tls_key_file.empty())
    return fail(config.metrics_tls_cert_file.empty() ? "--metrics-tls-key: needs --metrics-tls-cert too"
                                                     : "--metrics-tls-cert: needs --metrics-tls-key too");
  if (!config.upstream_tls() && (!config.upstream_ca_file.empty() || config.upstream_insecure))
    return fail(config.upstream_insecure ? "--upstream-insecure: only applies to an https:// --upstream"
                                         : "--upstream-ca: only applies to an https:// --upstream");
  if (config.threads == 0) config.threads = std::max(1u, std::thread::hardware_concurrency());
  return result;
}

}  // namespace regmeter
