#include "core/config.h"

#include <sched.h>

#include <cctype>
#include <cstdlib>
#include <cerrno>
#include <charconv>
#include <optional>
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

std::string parse_access_log(const std::string& value) {
  if (value.empty()) throw std::invalid_argument("needs 'stdout', 'off' or a file name");
  return value;
}

std::string parse_log_format(const std::string& value) {
  if (value != "text" && value != "json") throw std::invalid_argument(fmt::format("'{}' is not 'text' or 'json'", value));
  return value;
}

// Cores this process may use: the affinity mask, capped by a cgroup v2 CPU
// quota (containers), so a pod limited to 2 CPUs runs 2 loops, not 64.
unsigned available_cpus() {
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) cpus = std::max(1, CPU_COUNT(&set));
  if (std::FILE* file = std::fopen("/sys/fs/cgroup/cpu.max", "r")) {
    char quota[32] = {0};
    unsigned long period = 0;
    if (std::fscanf(file, "%31s %lu", quota, &period) == 2 && std::string_view(quota) != "max" && period > 0) {
      unsigned long limit = (std::strtoul(quota, nullptr, 10) + period - 1) / period;
      if (limit > 0 && limit < cpus) cpus = static_cast<unsigned>(limit);
    }
    std::fclose(file);
  }
  return cpus;
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

namespace {

// Every option, once, in the order --help lists them: the command line, the
// config file and --help all read this table, so none of them can drift.
const Option kOptions[] = {
    {"listen", "HOST:PORT",
     "where clients (docker, skopeo, containerd) connect\n"
       "(default 0.0.0.0:5080); a port another process\n"
       "listens on is an error (exit 2)",
     [](Config& c, const std::string& v) { c.listen = parse_host_port(v); }},
    {"reuse-port", "",
     "share --listen with another process on purpose: start\n"
       "the new regmeter with it while the old one drains\n"
       "(zero-downtime restart; default off)",
     [](Config& c, const std::string&) { c.reuse_port = true; }},
    {"upstream", "URL",
     "the registry to forward to, http://HOST:PORT or\n"
       "https://HOST:PORT (default http://127.0.0.1:5000)",
     [](Config& c, const std::string& v) { c.upstream = parse_upstream_url(v); }},
    {"metrics-listen", "HOST:PORT",
     "/metrics, /healthz and the /dashboard page\n"
       "(default 127.0.0.1:9180)",
     [](Config& c, const std::string& v) { c.metrics_listen = parse_host_port(v); }},
    {"threads", "N",
     "event-loop threads (default: the CPUs it may use:\n"
       "the affinity mask, capped by a cgroup v2 CPU quota)",
     [](Config& c, const std::string& v) { c.threads = parse_count(v, 1, 256); }},
    {"header-timeout", "S",
     "seconds to receive a whole request head (default 30)",
     [](Config& c, const std::string& v) { c.header_timeout_s = parse_seconds(v); }},
    {"idle-timeout", "S",
     "seconds a keep-alive connection may sit idle (default 60)",
     [](Config& c, const std::string& v) { c.idle_timeout_s = parse_seconds(v); }},
    {"upstream-timeout", "S",
     "seconds from the end of the request to the response\n"
       "head (default 120)",
     [](Config& c, const std::string& v) { c.upstream_timeout_s = parse_seconds(v); }},
    {"upstream-connect-timeout", "S",
     "seconds to connect (and finish the TLS handshake) to\n"
       "one upstream address; then the next address is tried,\n"
       "or the client gets 504 (default 10)",
     [](Config& c, const std::string& v) { c.upstream_connect_timeout_s = parse_seconds(v); }},
    {"upstream-resolve-interval", "S",
     "look the --upstream name up again every S seconds,\n"
       "and soon after a failed connect, so a registry that\n"
       "moves is followed (default 30; 0: only at start)",
     [](Config& c, const std::string& v) { c.upstream_resolve_interval_s = v == "0" ? 0 : parse_seconds(v); }},
    {"body-timeout", "S",
     "seconds a request or response body may make no\n"
       "progress at all (default 60); moving bodies are never cut",
     [](Config& c, const std::string& v) { c.body_timeout_s = parse_seconds(v); }},
    {"max-connections", "N",
     "client connections at once; beyond, new ones wait in\n"
       "the listen backlog (default 10000)",
     [](Config& c, const std::string& v) { c.max_connections = parse_count(v, 1, 1000000); }},
    {"upstream-idle-timeout", "S",
     "close an idle pooled upstream connection after S seconds\n"
       "(default 30)",
     [](Config& c, const std::string& v) { c.upstream_idle_timeout_s = parse_seconds(v); }},
    {"upstream-max-connections", "N",
     "at most N connections to the upstream per process;\n"
       "requests beyond wait in a FIFO queue (default 0: unlimited)",
     [](Config& c, const std::string& v) { c.upstream_max_connections = parse_count(v, 0, 1000000); }},
    {"upstream-queue-timeout", "S",
     "longest wait in that queue; then 503 TOOMANYREQUESTS with\n"
       "Retry-After (default 10)",
     [](Config& c, const std::string& v) { c.upstream_queue_timeout_s = parse_seconds(v); }},
    {"drain-delay", "S",
     "after SIGTERM, keep serving and accepting for S seconds\n"
       "while /healthz says 503, so load balancers stop sending\n"
       "first (default 0)",
     [](Config& c, const std::string& v) { c.drain_delay_s = v == "0" ? 0 : parse_seconds(v); }},
    {"trust-forwarded-headers", "",
     "keep X-Forwarded-Proto/-Host sent by a load balancer in\n"
       "front (default: replace them; regmeter is the edge)",
     [](Config& c, const std::string&) { c.trust_forwarded = true; }},
    {"shutdown-grace", "S",
     "seconds in-flight requests may take after SIGTERM (default 30)",
     [](Config& c, const std::string& v) { c.shutdown_grace_s = parse_seconds(v); }},
    {"max-header-bytes", "N",
     "largest request head accepted (default 65536)",
     [](Config& c, const std::string& v) { c.max_header_bytes = parse_count(v, 1024, 1024 * 1024); }},
    {"max-header-fields", "N",
     "most header fields in one request head; beyond, 431\n"
       "(default 100, at most 10000)",
     [](Config& c, const std::string& v) { c.max_header_fields = parse_count(v, 1, 10000); }},
    {"pull-session-idle", "S",
     "an image pull whose client fetches nothing more of it\n"
       "for S seconds ends \"partial\" (default 10)",
     [](Config& c, const std::string& v) { c.pull_session_idle_s = parse_seconds(v); }},
    {"max-pull-sessions", "N",
     "image pulls tracked at once; the least recently active\n"
       "end \"partial\" beyond; 0 turns pull tracking off (default 10000)",
     [](Config& c, const std::string& v) { c.max_pull_sessions = parse_count(v, 0, 1000000); }},
    {"max-repositories", "N",
     "repository label values kept; the rest count as\n"
       "\"__other__\"; 0 drops the label (default 200)",
     [](Config& c, const std::string& v) { c.max_repositories = parse_count(v, 0, 100000); }},
    {"upload-session-timeout", "S",
     "an upload session with no request for this long\n"
       "counts as abandoned (default 3600)",
     [](Config& c, const std::string& v) { c.upload_session_timeout_s = parse_seconds(v); }},
    {"dashboard-history-interval", "S",
     "/dashboard/history samples the dashboard's counters\n"
       "every S seconds (default 5, at least 1)",
     [](Config& c, const std::string& v) {
       c.dashboard_history_interval_s = parse_seconds(v);
       if (c.dashboard_history_interval_s < 1) throw std::invalid_argument(fmt::format("'{}' is under 1 second", v));
     }},
    {"dashboard-history-window", "S",
     "keep that history for S seconds, so /dashboard draws\n"
       "the last hour when opened (default 3600; 0: none)",
     [](Config& c, const std::string& v) { c.dashboard_history_window_s = v == "0" ? 0 : parse_seconds(v); }},
    {"tls-cert", "FILE",
     "serve TLS on --listen with this PEM certificate (chain)",
     [](Config& c, const std::string& v) { c.tls_cert_file = take_readable_file(v); }},
    {"tls-key", "FILE",
     "... and this PEM private key (SIGHUP reloads both)",
     [](Config& c, const std::string& v) { c.tls_key_file = take_readable_file(v); }},
    {"tls-client-ca", "FILE",
     "require client certificates signed by this CA (mTLS)",
     [](Config& c, const std::string& v) { c.tls_client_ca_file = take_readable_file(v); }},
    {"upstream-ca", "FILE",
     "trust this CA for an https:// upstream (default: system store)",
     [](Config& c, const std::string& v) { c.upstream_ca_file = take_readable_file(v); }},
    {"upstream-insecure", "",
     "do not verify the upstream's certificate (logged; never default)",
     [](Config& c, const std::string&) { c.upstream_insecure = true; }},
    {"metrics-tls-cert", "FILE",
     "serve the metrics port over TLS with this certificate",
     [](Config& c, const std::string& v) { c.metrics_tls_cert_file = take_readable_file(v); }},
    {"metrics-tls-key", "FILE",
     "... and this key",
     [](Config& c, const std::string& v) { c.metrics_tls_key_file = take_readable_file(v); }},
    {"access-log", "WHERE",
     "one JSON line per request: stdout (default), off, or a\n"
       "file (reopened on SIGUSR1)",
     [](Config& c, const std::string& v) { c.access_log = parse_access_log(v); }},
    {"log-format", "FORMAT",
     "operational logs on stderr: text (default) or json",
     [](Config& c, const std::string& v) { c.log_format = parse_log_format(v); }},
    // The command line's own: parse_command_line handles them by name, and
    // they are no config file keys (no apply).
    {"config", "FILE",
     "a YAML file with any of these options as keys\n"
       "(without \"--\"); flags given too override it",
     nullptr},
    {"check-config", "FILE",
     "validate FILE (and any flags) and exit",
     nullptr},
    {"help", "",
     "this text",
     nullptr},
    {"version", "",
     "the version",
     nullptr},
};

// A setting: an option the config file may give too. --config, --help and
// the like act on the command line only.
const Option* find_setting(std::string_view name) {
  for (const auto& option : kOptions)
    if (option.name == name && option.apply) return &option;
  return nullptr;
}

// Two listeners on one port collide when their hosts are the same or either
// is a wildcard; port 0 always gets a port of its own.
bool same_listen_address(const HostPort& a, const HostPort& b) {
  auto wildcard = [](const std::string& host) { return host.empty() || host == "0.0.0.0" || host == "::"; };
  return a.port != 0 && a.port == b.port && (a.host == b.host || wildcard(a.host) || wildcard(b.host));
}

// Rules that involve more than one option.
std::string cross_check(const Config& config) {
  // Blame the overlap itself, not "address already in use" from the second bind.
  if (same_listen_address(config.listen, config.metrics_listen))
    return fmt::format("--metrics-listen {}: the same address as --listen {}; give /metrics a port of its own",
                       config.metrics_listen.to_string(), config.listen.to_string());
  if (config.tls_cert_file.empty() != config.tls_key_file.empty())
    return config.tls_cert_file.empty() ? "--tls-key: needs --tls-cert too" : "--tls-cert: needs --tls-key too";
  if (!config.tls_client_ca_file.empty() && config.tls_cert_file.empty())
    return "--tls-client-ca: needs --tls-cert and --tls-key (client certificates need TLS)";
  if (config.metrics_tls_cert_file.empty() != config.metrics_tls_key_file.empty())
    return config.metrics_tls_cert_file.empty() ? "--metrics-tls-key: needs --metrics-tls-cert too"
                                                : "--metrics-tls-cert: needs --metrics-tls-key too";
  if (config.dashboard_history_window_s > 0 && config.dashboard_history_window_s < config.dashboard_history_interval_s)
    return "--dashboard-history-window: shorter than --dashboard-history-interval (0 turns the history off)";
  if (config.dashboard_history_window_s / config.dashboard_history_interval_s > 20000)  // bounds its memory
    return "--dashboard-history-window: more than 20000 intervals of --dashboard-history-interval";
  if (!config.upstream_tls() && (!config.upstream_ca_file.empty() || config.upstream_insecure))
    return config.upstream_insecure ? "--upstream-insecure: only applies to an https:// --upstream"
                                    : "--upstream-ca: only applies to an https:// --upstream";
  return {};
}

}  // namespace

std::span<const Option> options() { return kOptions; }

// The flag and its value name in a 29-column field, then the help; a longer
// synopsis is set off by two spaces, and help lines after the first are
// indented to the same column.
std::string usage_text() {
  std::string text = "regmeter - a metering reverse proxy for container registries\n\nUsage: regmeter [options]\n\n";
  constexpr std::size_t kColumn = 29;
  const std::string indent(2 + kColumn, ' ');
  for (const auto& option : kOptions) {
    std::string synopsis = fmt::format("--{}", option.name);
    if (option.takes_value()) synopsis += fmt::format(" {}", option.value_name);
    text += synopsis.size() < kColumn ? fmt::format("  {:<{}}", synopsis, kColumn) : fmt::format("  {}  ", synopsis);
    std::string_view help = option.help;
    for (std::size_t line = 0; !help.empty(); ++line) {
      std::size_t end = help.find('\n');
      if (line > 0) text += indent;
      text += help.substr(0, end);
      text += '\n';
      help = end == std::string_view::npos ? std::string_view() : help.substr(end + 1);
    }
  }
  return text;
}

CommandLine parse_command_line(const std::vector<std::string>& args) {
  CommandLine result;
  auto fail = [&](std::string message) {
    result.action = CommandLine::Action::error;
    result.error = "regmeter: " + std::move(message);
    return result;
  };
  // Split "--flag=value", and find --config / --check-config first: the file
  // is applied before the other flags, which override it.
  struct Given {
    std::string flag;  // without "--"
    std::optional<std::string> value;
    std::string error;  // reported when its turn comes, so errors come in order
  };
  std::vector<Given> given;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--help" || arg == "-h") {
      result.action = CommandLine::Action::help;
      return result;
    }
    if (arg == "--version") {
      result.action = CommandLine::Action::version;
      return result;
    }
    if (arg.rfind("--", 0) != 0 || arg.size() == 2) {
      given.push_back({"", std::nullopt, fmt::format("unknown option '{}' (see --help)", arg)});
      continue;
    }
    Given item{arg.substr(2), std::nullopt, {}};
    if (auto eq = item.flag.find('='); eq != std::string::npos) {
      item.value = item.flag.substr(eq + 1);
      item.flag.resize(eq);
    }
    bool file_flag = item.flag == "config" || item.flag == "check-config";
    const Option* option = find_setting(item.flag);
    if (!option && !file_flag) {
      item.error = fmt::format("unknown option '{}' (see --help)", arg);
    } else if (file_flag || option->takes_value()) {
      if (!item.value) {
        if (i + 1 < args.size())
          item.value = args[++i];
        else
          item.error = fmt::format("--{}: needs a value", item.flag);
      }
    } else if (item.value) {
      item.error = fmt::format("--{}: takes no value", item.flag);
    }
    given.push_back(std::move(item));
  }

  Config& config = result.config;
  for (const auto& item : given) {
    if (item.flag != "config" && item.flag != "check-config") continue;
    if (!item.error.empty()) return fail(item.error);
    if (item.flag == "check-config") result.action = CommandLine::Action::check_config;
    if (!config.config_file.empty()) return fail(fmt::format("--{}: only one config file may be given", item.flag));
    if (item.value->empty()) return fail(fmt::format("--{}: needs a file name", item.flag));
    config.config_file = *item.value;
    // Every mistake in the file: `config FILE:LINE: reason` (no line when it
    // is about the whole file).
    auto file_error = [&](int line, std::string_view reason) {
      return fail(line > 0 ? fmt::format("config {}:{}: {}", config.config_file, line, reason)
                           : fmt::format("config {}: {}", config.config_file, reason));
    };
    std::vector<ConfigEntry> entries;
    try {
      entries = load_config_file(config.config_file);
    } catch (const ConfigFileError& e) {
      return file_error(e.line, e.what());
    }
    for (const auto& entry : entries) {
      const Option* option = find_setting(entry.key);
      if (!option) return file_error(entry.line, fmt::format("unknown key '{}' (see --help)", entry.key));
      try {
        if (!option->takes_value()) {
          if (entry.value != "true" && entry.value != "false") throw std::invalid_argument("must be true or false");
          if (entry.value == "true") option->apply(config, entry.value);
        } else {
          option->apply(config, entry.value);
        }
      } catch (const std::invalid_argument& e) {
        return file_error(entry.line, fmt::format("key '{}': {}", entry.key, e.what()));
      }
    }
  }
  for (const auto& item : given) {
    if (item.flag == "config" || item.flag == "check-config") continue;
    if (!item.error.empty()) return fail(item.error);
    try {
      find_setting(item.flag)->apply(config, item.value.value_or(""));
    } catch (const std::invalid_argument& e) {
      return fail(fmt::format("--{}: {}", item.flag, e.what()));
    }
  }
  if (std::string problem = cross_check(config); !problem.empty()) {
    if (!config.config_file.empty()) problem += fmt::format(" (config file {} and flags combined)", config.config_file);
    return fail(problem);
  }
  if (config.threads == 0) config.threads = available_cpus();
  return result;
}

}  // namespace regmeter
