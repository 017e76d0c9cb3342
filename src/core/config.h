// Command-line configuration. Pure: parses argv into a Config or one error
// line naming the flag and the reason (the caller exits 2 on it).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace regmeter {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
  std::string to_string() const;  // "host:port", "[v6]:port"
};

struct UpstreamUrl {
  std::string scheme = "http";  // "http" or "https"
  HostPort address;
  std::string authority;        // exactly as written after "scheme://", e.g. "registry:5000"
};

struct Config {
  HostPort listen{"0.0.0.0", 5080};
  UpstreamUrl upstream{"http", {"127.0.0.1", 5000}, "127.0.0.1:5000"};
  HostPort metrics_listen{"127.0.0.1", 9180};
  unsigned threads = 0;                 // 0 until resolved: the number of cores
  double header_timeout_s = 30;         // first byte of a request head → whole head
  double idle_timeout_s = 60;           // keep-alive connection with no request
  double upstream_timeout_s = 120;      // request sent → response head
  double upstream_connect_timeout_s = 10;  // TCP connect + TLS handshake to one address
  double upstream_resolve_interval_s = 30;  // look the upstream name up again this often (0: never)
  double body_timeout_s = 60;           // a body transfer with no progress at all
  double shutdown_grace_s = 30;         // SIGTERM: how long in-flight requests may finish
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_header_fields = 100;  // fields in one request head (and its trailers); 431 beyond
  unsigned max_connections = 10000;
  double dashboard_history_interval_s = 5;   // /dashboard/history: one interval per sample
  double dashboard_history_window_s = 3600;  // ... kept this long; 0: no history
  double upstream_idle_timeout_s = 30;     // an idle pooled upstream connection is closed after this
  unsigned upstream_max_connections = 0;   // open upstream connections per process; 0: unlimited
  double upstream_queue_timeout_s = 10;    // longest wait for an upstream connection under the cap (then 503)
  double drain_delay_s = 0;             // SIGTERM: keep accepting (healthz 503) this long first
  bool trust_forwarded = false;         // keep client-sent X-Forwarded-Proto/-Host
  bool reuse_port = false;              // share --listen with another process (zero-downtime restart)
  std::size_t max_repositories = 200;   // repository label values; 0 drops the label
  double upload_session_timeout_s = 3600;  // no request for a session this long: abandoned
  double pull_session_idle_s = 10;      // an image pull with no request this long ends `partial`
  std::size_t max_pull_sessions = 10000;  // image pulls tracked at once; 0 turns pull tracking off

  // TLS toward clients (all empty: plain HTTP).
  std::string tls_cert_file;       // PEM, may hold the chain
  std::string tls_key_file;
  std::string tls_client_ca_file;  // set: clients must present a certificate it signed
  // TLS toward the upstream (when its URL is https://).
  std::string upstream_ca_file;    // empty: the system's CA store
  bool upstream_insecure = false;  // skip verification; loud, never the default
  // TLS on the metrics port.
  std::string metrics_tls_cert_file;
  std::string metrics_tls_key_file;

  std::string access_log = "stdout";  // "stdout", "off", or a file path
  std::string log_format = "text";    // "text" or "json"
  std::string config_file;            // --config / --check-config, when given

  bool client_tls() const { return !tls_cert_file.empty(); }
  bool upstream_tls() const { return upstream.scheme == "https"; }
};

struct CommandLine {
  enum class Action { run, help, version, check_config, error };
  Action action = Action::run;
  Config config;
  std::string error;  // one line, when action == error
};

// One `key: value` of a config file, the value as text.
struct ConfigEntry {
  std::string key;
  std::string value;
  int line = 0;  // where the key is, from 1
};
// Why a config file cannot be used, and where: `line` from 1, or 0 when it
// is about the whole file (unreadable, a directory).
struct ConfigFileError : std::invalid_argument {
  ConfigFileError(int line, const std::string& reason) : std::invalid_argument(reason), line(line) {}
  int line;
};
// Reads a YAML mapping of option names to scalars. Throws ConfigFileError.
std::vector<ConfigEntry> load_config_file(const std::string& path);

CommandLine parse_command_line(const std::vector<std::string>& args);  // args without argv[0]

// One option of the command line, as the parser and --help both read it.
struct Option {
  std::string_view name;        // without "--"; also its config file key
  std::string_view value_name;  // "HOST:PORT", "S", "FILE", ...; empty: a switch
  std::string_view help;        // its --help text, lines split by '\n'
  void (*apply)(Config&, const std::string&);  // null: command line only (--config, --help, ...)
  bool takes_value() const { return !value_name.empty(); }
};
// Every option in --help order.
std::span<const Option> options();
// --help, generated from options().
std::string usage_text();

// Parsers shared with the config-file code to come; each throws
// std::invalid_argument with a reason (not naming the flag).
HostPort parse_host_port(const std::string& text);
UpstreamUrl parse_upstream_url(const std::string& text);

}  // namespace regmeter
