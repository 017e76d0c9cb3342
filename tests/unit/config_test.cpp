// Command-line parsing: defaults, every flag in both spellings, and every bad
// value giving exactly one line that names the flag and the reason.
#include "core/config.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <functional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace regmeter {
namespace {

using Args = std::vector<std::string>;
using Action = CommandLine::Action;

}  // namespace
// gtest prints the action by name instead of a byte dump.
inline void PrintTo(CommandLine::Action a, std::ostream* os) {
  switch (a) {
    case CommandLine::Action::run: *os << "run"; return;
    case CommandLine::Action::help: *os << "help"; return;
    case CommandLine::Action::version: *os << "version"; return;
    case CommandLine::Action::error: *os << "error"; return;
    case CommandLine::Action::check_config: *os << "check_config"; return;
  }
}
namespace {

std::string joined(const Args& args) {
  std::string out;
  for (const auto& a : args) {
    if (!out.empty()) out += ' ';
    out += '"' + a + '"';
  }
  return out;
}

// "'value'" as the error lines quote values (built without operator+ on a
// temporary, which trips a GCC 12 -Wrestrict false positive).
std::string quoted(const std::string& value) {
  std::string out = "'";
  out += value;
  out += '\'';
  return out;
}

// https:// upstreams arrive with the TLS work; until then they are refused.
// Which of the two is checked follows whether Config knows about upstream TLS.
template <class C>
constexpr bool kHasUpstreamTls = requires(const C& c) { c.upstream_tls(); };
constexpr bool kHttpsUpstream = kHasUpstreamTls<Config>;

unsigned cores() { return std::max(1u, std::thread::hardware_concurrency()); }

// ---------------------------------------------------------------- defaults

TEST(ConfigDefaults, NoArgumentsGivesDocumentedDefaults) {
  CommandLine cl = parse_command_line({});
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_EQ(cl.error, "");
  const Config& c = cl.config;
  EXPECT_EQ(c.listen.host, "0.0.0.0");
  EXPECT_EQ(c.listen.port, 5080);
  EXPECT_EQ(c.listen.to_string(), "0.0.0.0:5080");
  EXPECT_EQ(c.upstream.scheme, "http");
  EXPECT_EQ(c.upstream.address.host, "127.0.0.1");
  EXPECT_EQ(c.upstream.address.port, 5000);
  EXPECT_EQ(c.upstream.authority, "127.0.0.1:5000");
  EXPECT_EQ(c.metrics_listen.host, "127.0.0.1");
  EXPECT_EQ(c.metrics_listen.port, 9180);
  EXPECT_EQ(c.metrics_listen.to_string(), "127.0.0.1:9180");
  EXPECT_EQ(c.threads, cores());
  EXPECT_DOUBLE_EQ(c.header_timeout_s, 30);
  EXPECT_DOUBLE_EQ(c.idle_timeout_s, 60);
  EXPECT_DOUBLE_EQ(c.upstream_timeout_s, 120);
  EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 30);
  EXPECT_EQ(c.max_header_bytes, 64u * 1024);
  EXPECT_EQ(c.max_header_fields, 100u);
  EXPECT_EQ(c.max_repositories, 200u);
  EXPECT_DOUBLE_EQ(c.upload_session_timeout_s, 3600);
  EXPECT_FALSE(c.reuse_port) << "a busy --listen port is an error unless asked";
  EXPECT_DOUBLE_EQ(c.dashboard_history_interval_s, 5);
  EXPECT_DOUBLE_EQ(c.dashboard_history_window_s, 3600);
}

TEST(ConfigFlags, DashboardHistory) {
  CommandLine cl = parse_command_line({"--dashboard-history-interval", "2", "--dashboard-history-window=600"});
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_DOUBLE_EQ(cl.config.dashboard_history_interval_s, 2);
  EXPECT_DOUBLE_EQ(cl.config.dashboard_history_window_s, 600);
  cl = parse_command_line({"--dashboard-history-window", "0"});
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_DOUBLE_EQ(cl.config.dashboard_history_window_s, 0) << "0 turns the history off";
}

TEST(ConfigFlags, ReusePortTakesNoValue) {
  EXPECT_TRUE(parse_command_line({"--reuse-port"}).config.reuse_port);
  CommandLine cl = parse_command_line({"--reuse-port=yes"});
  EXPECT_EQ(cl.action, Action::error);
  EXPECT_EQ(cl.error, "regmeter: --reuse-port: takes no value");
}

TEST(ConfigDefaults, ThreadsResolvedToCoresWhenOtherFlagsGiven) {
  CommandLine cl = parse_command_line({"--listen", "127.0.0.1:1"});
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_EQ(cl.config.threads, cores());
  EXPECT_GE(cl.config.threads, 1u);
}

// ------------------------------------------------------- every good flag

struct GoodCase {
  Args args;
  std::function<void(const Config&)> check;
  std::string what;
};
void PrintTo(const GoodCase& c, std::ostream* os) { *os << joined(c.args) << " (" << c.what << ")"; }

class ConfigGood : public ::testing::TestWithParam<GoodCase> {};

TEST_P(ConfigGood, Parses) {
  const GoodCase& c = GetParam();
  CommandLine cl = parse_command_line(c.args);
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_EQ(cl.error, "");
  c.check(cl.config);
}

std::vector<GoodCase> good_cases() {
  std::vector<GoodCase> cases;
  // Each flag in the separate-value and the --flag=value spelling.
  for (bool inline_form : {false, true}) {
    auto args = [inline_form](const std::string& flag, const std::string& value) -> Args {
      if (inline_form) return {flag + "=" + value};
      return {flag, value};
    };
    std::string form = inline_form ? " (--flag=value)" : " (--flag value)";
    cases.push_back({args("--listen", "10.1.2.3:6000"),
                     [](const Config& c) {
                       EXPECT_EQ(c.listen.host, "10.1.2.3");
                       EXPECT_EQ(c.listen.port, 6000);
                       EXPECT_EQ(c.listen.to_string(), "10.1.2.3:6000");
                     },
                     "listen" + form});
    cases.push_back({args("--listen", "proxy.example:80"),
                     [](const Config& c) {
                       EXPECT_EQ(c.listen.host, "proxy.example");
                       EXPECT_EQ(c.listen.port, 80);
                     },
                     "listen by name" + form});
    cases.push_back({args("--listen", "[::1]:5080"),
                     [](const Config& c) {
                       EXPECT_EQ(c.listen.host, "::1");
                       EXPECT_EQ(c.listen.port, 5080);
                       EXPECT_EQ(c.listen.to_string(), "[::1]:5080");
                     },
                     "listen IPv6" + form});
    cases.push_back({args("--listen", "[::]:65535"),
                     [](const Config& c) {
                       EXPECT_EQ(c.listen.host, "::");
                       EXPECT_EQ(c.listen.port, 65535);
                       EXPECT_EQ(c.listen.to_string(), "[::]:65535");
                     },
                     "listen IPv6 any, highest port" + form});
    cases.push_back({args("--metrics-listen", "0.0.0.0:9999"),
                     [](const Config& c) {
                       EXPECT_EQ(c.metrics_listen.host, "0.0.0.0");
                       EXPECT_EQ(c.metrics_listen.port, 9999);
                       EXPECT_EQ(c.listen.to_string(), "0.0.0.0:5080");  // untouched
                     },
                     "metrics-listen" + form});
    cases.push_back({args("--metrics-listen", "[fe80::1]:9180"),
                     [](const Config& c) {
                       EXPECT_EQ(c.metrics_listen.host, "fe80::1");
                       EXPECT_EQ(c.metrics_listen.port, 9180);
                       EXPECT_EQ(c.metrics_listen.to_string(), "[fe80::1]:9180");
                     },
                     "metrics-listen IPv6" + form});
    cases.push_back({args("--upstream", "http://registry:5000"),
                     [](const Config& c) {
                       EXPECT_EQ(c.upstream.scheme, "http");
                       EXPECT_EQ(c.upstream.address.host, "registry");
                       EXPECT_EQ(c.upstream.address.port, 5000);
                       EXPECT_EQ(c.upstream.authority, "registry:5000");
                     },
                     "upstream" + form});
    cases.push_back({args("--upstream", "http://registry:5000/"),
                     [](const Config& c) {
                       EXPECT_EQ(c.upstream.address.host, "registry");
                       EXPECT_EQ(c.upstream.address.port, 5000);
                       EXPECT_EQ(c.upstream.authority, "registry:5000");
                     },
                     "upstream with trailing slash" + form});
    cases.push_back({args("--upstream", "http://registry"),
                     [](const Config& c) {
                       EXPECT_EQ(c.upstream.address.host, "registry");
                       EXPECT_EQ(c.upstream.address.port, 80);
                       EXPECT_EQ(c.upstream.authority, "registry");
                     },
                     "upstream without port defaults to 80, authority as written" + form});
    cases.push_back({args("--upstream", "http://[::1]:5000"),
                     [](const Config& c) {
                       EXPECT_EQ(c.upstream.address.host, "::1");
                       EXPECT_EQ(c.upstream.address.port, 5000);
                       EXPECT_EQ(c.upstream.authority, "[::1]:5000");
                     },
                     "upstream IPv6" + form});
    cases.push_back({args("--upstream", "http://[::1]"),
                     [](const Config& c) {
                       EXPECT_EQ(c.upstream.address.host, "::1");
                       EXPECT_EQ(c.upstream.address.port, 80);
                       EXPECT_EQ(c.upstream.authority, "[::1]");
                     },
                     "upstream IPv6 without port" + form});
    cases.push_back({args("--threads", "1"), [](const Config& c) { EXPECT_EQ(c.threads, 1u); },
                     "threads lowest" + form});
    cases.push_back({args("--threads", "8"), [](const Config& c) { EXPECT_EQ(c.threads, 8u); },
                     "threads" + form});
    cases.push_back({args("--threads", "256"), [](const Config& c) { EXPECT_EQ(c.threads, 256u); },
                     "threads highest" + form});
    cases.push_back({args("--header-timeout", "2.5"),
                     [](const Config& c) {
                       EXPECT_DOUBLE_EQ(c.header_timeout_s, 2.5);
                       EXPECT_DOUBLE_EQ(c.idle_timeout_s, 60);
                     },
                     "header-timeout fractional" + form});
    cases.push_back({args("--idle-timeout", "5"),
                     [](const Config& c) {
                       EXPECT_DOUBLE_EQ(c.idle_timeout_s, 5);
                       EXPECT_DOUBLE_EQ(c.header_timeout_s, 30);
                     },
                     "idle-timeout" + form});
    cases.push_back({args("--upstream-timeout", "1e3"),
                     [](const Config& c) { EXPECT_DOUBLE_EQ(c.upstream_timeout_s, 1000); },
                     "upstream-timeout exponent" + form});
    cases.push_back({args("--shutdown-grace", "0.001"),
                     [](const Config& c) { EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 0.001); },
                     "shutdown-grace tiny" + form});
    cases.push_back({args("--shutdown-grace", "604800"),
                     [](const Config& c) { EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 604800); },
                     "shutdown-grace exactly a week" + form});
    cases.push_back({args("--max-repositories", "0"),
                     [](const Config& c) { EXPECT_EQ(c.max_repositories, 0u); },
                     "max-repositories 0 drops the label" + form});
    cases.push_back({args("--max-repositories", "100000"),
                     [](const Config& c) { EXPECT_EQ(c.max_repositories, 100000u); },
                     "max-repositories highest" + form});
    cases.push_back({args("--upload-session-timeout", "90.5"),
                     [](const Config& c) {
                       EXPECT_DOUBLE_EQ(c.upload_session_timeout_s, 90.5);
                       EXPECT_DOUBLE_EQ(c.upstream_timeout_s, 120);
                     },
                     "upload-session-timeout" + form});
    cases.push_back({args("--pull-session-idle", "2.5"),
                     [](const Config& c) {
                       EXPECT_DOUBLE_EQ(c.pull_session_idle_s, 2.5);
                       EXPECT_EQ(c.max_pull_sessions, 10000u);
                     },
                     "pull-session-idle" + form});
    cases.push_back({args("--max-pull-sessions", "0"),
                     [](const Config& c) {
                       EXPECT_EQ(c.max_pull_sessions, 0u);
                       EXPECT_DOUBLE_EQ(c.pull_session_idle_s, 10);
                     },
                     "max-pull-sessions 0 turns pull tracking off" + form});
    if (kHttpsUpstream) {
      cases.push_back({args("--upstream", "https://registry.example"),
                       [](const Config& c) {
                         EXPECT_EQ(c.upstream.scheme, "https");
                         EXPECT_EQ(c.upstream.address.host, "registry.example");
                         EXPECT_EQ(c.upstream.address.port, 443);
                         EXPECT_EQ(c.upstream.authority, "registry.example");
                       },
                       "https upstream defaults to 443" + form});
      cases.push_back({args("--upstream", "https://[::1]:5443/"),
                       [](const Config& c) {
                         EXPECT_EQ(c.upstream.scheme, "https");
                         EXPECT_EQ(c.upstream.address.host, "::1");
                         EXPECT_EQ(c.upstream.address.port, 5443);
                         EXPECT_EQ(c.upstream.authority, "[::1]:5443");
                       },
                       "https upstream IPv6" + form});
    }
    cases.push_back({args("--max-header-bytes", "1024"),
                     [](const Config& c) { EXPECT_EQ(c.max_header_bytes, 1024u); },
                     "max-header-bytes lowest" + form});
    cases.push_back({args("--max-header-bytes", "1048576"),
                     [](const Config& c) { EXPECT_EQ(c.max_header_bytes, 1048576u); },
                     "max-header-bytes highest" + form});
    cases.push_back({args("--max-header-fields", "1"),
                     [](const Config& c) { EXPECT_EQ(c.max_header_fields, 1u); },
                     "max-header-fields lowest" + form});
    cases.push_back({args("--max-header-fields", "10000"),
                     [](const Config& c) { EXPECT_EQ(c.max_header_fields, 10000u); },
                     "max-header-fields highest" + form});
  }
  cases.push_back({{"--listen=[::1]:5080", "--upstream", "http://10.0.0.2:5000", "--metrics-listen=127.0.0.1:9100",
                    "--threads", "3", "--header-timeout=7", "--idle-timeout", "8", "--upstream-timeout=9",
                    "--shutdown-grace", "10", "--max-header-bytes=2048"},
                   [](const Config& c) {
                     EXPECT_EQ(c.listen.to_string(), "[::1]:5080");
                     EXPECT_EQ(c.upstream.authority, "10.0.0.2:5000");
                     EXPECT_EQ(c.upstream.address.host, "10.0.0.2");
                     EXPECT_EQ(c.upstream.address.port, 5000);
                     EXPECT_EQ(c.metrics_listen.to_string(), "127.0.0.1:9100");
                     EXPECT_EQ(c.threads, 3u);
                     EXPECT_DOUBLE_EQ(c.header_timeout_s, 7);
                     EXPECT_DOUBLE_EQ(c.idle_timeout_s, 8);
                     EXPECT_DOUBLE_EQ(c.upstream_timeout_s, 9);
                     EXPECT_DOUBLE_EQ(c.shutdown_grace_s, 10);
                     EXPECT_EQ(c.max_header_bytes, 2048u);
                   },
                   "all flags, mixed spellings"});
  cases.push_back({{"--threads", "2", "--threads=5"}, [](const Config& c) { EXPECT_EQ(c.threads, 5u); },
                   "the last occurrence wins"});
  cases.push_back({{"--threads=4", "--listen", "[::1]:1"},
                   [](const Config& c) {
                     EXPECT_EQ(c.threads, 4u);
                     EXPECT_EQ(c.listen.to_string(), "[::1]:1");
                   },
                   "inline and separate values in one line"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Flags, ConfigGood, ::testing::ValuesIn(good_cases()));

// --------------------------------------------------------- help, version

TEST(ConfigActions, HelpAndVersion) {
  EXPECT_EQ(parse_command_line({"--help"}).action, Action::help);
  EXPECT_EQ(parse_command_line({"-h"}).action, Action::help);
  EXPECT_EQ(parse_command_line({"--version"}).action, Action::version);
  // The first of them wins over anything after it, even bad flags.
  EXPECT_EQ(parse_command_line({"--threads", "2", "--help", "--bogus"}).action, Action::help);
  EXPECT_EQ(parse_command_line({"--version", "--threads", "0"}).action, Action::version);
  EXPECT_EQ(parse_command_line({"--version", "--help"}).action, Action::version);
  EXPECT_EQ(parse_command_line({"--help", "--version"}).action, Action::help);
}

TEST(ConfigActions, UsageMentionsEveryFlag) {
  std::string usage = usage_text();
  for (const char* flag : {"--listen", "--upstream", "--metrics-listen", "--threads", "--header-timeout",
                           "--idle-timeout", "--upstream-timeout", "--shutdown-grace", "--max-header-bytes",
                           "--max-header-fields", "--max-repositories", "--upload-session-timeout", "--reuse-port",
                           "--upstream-idle-timeout", "--upstream-max-connections", "--upstream-queue-timeout",
                           "--help", "--version"})
    EXPECT_NE(usage.find(flag), std::string::npos) << flag;
  EXPECT_NE(usage.find("0.0.0.0:5080"), std::string::npos);
  EXPECT_NE(usage.find("127.0.0.1:9180"), std::string::npos);
  EXPECT_NE(usage.find("http://127.0.0.1:5000"), std::string::npos);
}

// --help is generated from the option table; these hold the three views of
// it (--help, the flags the parser takes, the config file's keys) together.
std::vector<std::string> help_lines() {
  std::vector<std::string> lines;
  std::string usage = usage_text();
  for (std::size_t start = 0, end; start < usage.size(); start = end + 1) {
    end = usage.find('\n', start);
    if (end == std::string::npos) end = usage.size();
    lines.push_back(usage.substr(start, end - start));
  }
  return lines;
}

bool in_table(const std::string& name) {
  for (const auto& option : options())
    if (option.name == name) return true;
  return false;
}

TEST(ConfigHelp, EveryOptionHasItsEntryInTableOrder) {
  auto lines = help_lines();
  std::size_t at = 0;
  for (const auto& option : options()) {
    std::string synopsis = "  --";
    synopsis += option.name;
    if (option.takes_value()) (synopsis += ' ') += option.value_name;
    auto found = std::find_if(lines.begin() + static_cast<std::ptrdiff_t>(at), lines.end(), [&](const std::string& l) {
      return l.rfind(synopsis, 0) == 0 && (l.size() == synopsis.size() || l[synopsis.size()] == ' ');
    });
    ASSERT_NE(found, lines.end()) << "no --help entry (or out of order): " << synopsis;
    at = static_cast<std::size_t>(found - lines.begin()) + 1;
  }
}

TEST(ConfigHelp, EveryFlagNamedInHelpIsInTheTable) {
  std::string usage = usage_text();
  std::size_t named = 0;
  for (std::size_t at = usage.find("--"); at != std::string::npos; at = usage.find("--", at + 2)) {
    std::size_t end = at + 2;
    while (end < usage.size() && (std::islower(static_cast<unsigned char>(usage[end])) || usage[end] == '-')) ++end;
    std::string name = usage.substr(at + 2, end - at - 2);
    if (name.empty()) continue;  // the `(without "--")` of --config's help
    EXPECT_TRUE(in_table(name)) << "--help names --" << name << ", which no option is";
    ++named;
  }
  EXPECT_GT(named, options().size());  // the entries, and the flags their help refers to
}

TEST(ConfigHelp, ParserTakesEveryFlagInTheTable) {
  for (const auto& option : options()) {
    std::string flag = "--";
    flag += option.name;
    CommandLine cl = option.takes_value() ? parse_command_line({flag, "x"}) : parse_command_line({flag});
    EXPECT_EQ(cl.error.find("unknown option"), std::string::npos) << flag << ": " << cl.error;
  }
  EXPECT_NE(parse_command_line({"--no-such-flag"}).error.find("unknown option"), std::string::npos);
}

TEST(ConfigHelp, ConfigFileKeysAreTheFlagsButTheCommandLineOnes) {
  char path[] = "/tmp/regmeter-config-keys-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  std::vector<std::string> command_line_only;
  for (const auto& option : options()) {
    std::string key(option.name);
    std::FILE* file = std::fopen(path, "w");
    ASSERT_NE(file, nullptr);
    std::fprintf(file, "%s: \"\"\n", key.c_str());  // no option takes an empty value
    std::fclose(file);
    CommandLine cl = parse_command_line({"--config", path});
    ASSERT_EQ(cl.action, Action::error) << key;
    if (cl.error.find(fmt::format("unknown key '{}'", key)) != std::string::npos) {
      command_line_only.push_back(key);
      EXPECT_EQ(option.apply, nullptr) << key;
    } else {
      EXPECT_NE(cl.error.find(fmt::format("key '{}': ", key)), std::string::npos) << cl.error;
      EXPECT_NE(option.apply, nullptr) << key;
    }
  }
  std::remove(path);
  EXPECT_EQ(command_line_only, (std::vector<std::string>{"config", "check-config", "help", "version"}));
}

// ------------------------------------------------------------ bad values

struct BadCase {
  Args args;
  std::string flag;    // the error line must name it
  std::string reason;  // and contain this
};
void PrintTo(const BadCase& c, std::ostream* os) { *os << joined(c.args) << " -> " << c.flag << ": " << c.reason; }

class ConfigBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(ConfigBad, OneLineNamingFlagAndReason) {
  const BadCase& c = GetParam();
  CommandLine cl = parse_command_line(c.args);
  ASSERT_EQ(cl.action, Action::error) << "accepted " << joined(c.args);
  EXPECT_FALSE(cl.error.empty());
  EXPECT_EQ(cl.error.find('\n'), std::string::npos) << cl.error;
  EXPECT_EQ(cl.error.find('\r'), std::string::npos) << cl.error;
  EXPECT_EQ(cl.error.rfind("regmeter: ", 0), 0u) << cl.error;
  EXPECT_NE(cl.error.find(c.flag), std::string::npos) << "flag not named: " << cl.error;
  EXPECT_NE(cl.error.find(c.reason), std::string::npos) << "reason missing: " << cl.error;
}

const char* const kHostPortFlags[] = {"--listen", "--metrics-listen"};
const char* const kSecondsFlags[] = {"--header-timeout", "--idle-timeout", "--upstream-timeout", "--shutdown-grace",
                                     "--upload-session-timeout", "--upstream-idle-timeout", "--upstream-queue-timeout",
                                     "--pull-session-idle"};
const char* const kValueFlags[] = {"--listen",           "--upstream",       "--metrics-listen",
                                   "--threads",          "--header-timeout", "--idle-timeout",
                                   "--upstream-timeout", "--shutdown-grace", "--max-header-bytes",
                                   "--max-repositories", "--upload-session-timeout",
                                   "--upstream-idle-timeout", "--upstream-max-connections",
                                   "--upstream-queue-timeout", "--pull-session-idle", "--max-pull-sessions"};

std::vector<BadCase> bad_cases() {
  std::vector<BadCase> cases;
  // Missing value, at the end of the line.
  for (const char* flag : kValueFlags) {
    cases.push_back({{flag}, flag, "needs a value"});
    cases.push_back({{"--threads", "2", flag}, flag, "needs a value"});
  }
  for (const char* flag : kHostPortFlags) {
    for (bool inline_form : {false, true}) {
      auto args = [&](const std::string& v) -> Args {
        if (inline_form) return {std::string(flag) + "=" + v};
        return {flag, v};
      };
      cases.push_back({args("host:70000"), flag, "'70000' is not a port number (0-65535)"});
      cases.push_back({args("host:65536"), flag, "'65536' is not a port number"});
      cases.push_back({args("host:99999999999999999999"), flag, "is not a port number"});
      cases.push_back({args("host:-1"), flag, "'-1' is not a port number"});
      cases.push_back({args("host:80x"), flag, "'80x' is not a port number"});
      cases.push_back({args("host: 80"), flag, "is not a port number"});
      cases.push_back({args("host:"), flag, "'' is not a port number"});
      cases.push_back({args("host"), flag, "'host' is not HOST:PORT"});
      cases.push_back({args("5080"), flag, "'5080' is not HOST:PORT"});
      cases.push_back({args(""), flag, "'' is not HOST:PORT"});
      cases.push_back({args(":5080"), flag, "':5080' has no host"});
      cases.push_back({args("::1:5080"), flag, "'::1:5080' is not HOST:PORT"});
      cases.push_back({args("[::1]"), flag, "'[::1]' is not HOST:PORT"});
      cases.push_back({args("[::1]:"), flag, "'' is not a port number"});
      cases.push_back({args("[::1]5080"), flag, "'[::1]5080' is not HOST:PORT"});
      cases.push_back({args("[::1:5080"), flag, "'[::1:5080' is not HOST:PORT"});
      cases.push_back({args("[]:5080"), flag, "has no host"});
      cases.push_back({args("[::1]:70000"), flag, "'70000' is not a port number"});
      cases.push_back({args("a:b:5080"), flag, "is not HOST:PORT"});
    }
  }
  for (const char* flag : kSecondsFlags) {
    const std::string reason = "is not a number of seconds (> 0, at most a week)";
    for (const char* value : {"0", "0.0", "-0", "-1", "-0.5", "nan", "NaN", "-nan", "inf", "infinity", "-inf",
                              "1e999", "604801", "1e6", "abc", "5s", "5 ", "", "1,5", "."}) {
      cases.push_back({{flag, value}, flag, quoted(value) + " " + reason});
      cases.push_back({{std::string(flag) + "=" + value}, flag, quoted(value) + " " + reason});
    }
  }
  for (const char* value : {"0", "-1", "257", "1000", "4.5", "abc", "", "4x", " 4", "+4", "99999999999"}) {
    cases.push_back({{"--threads", value}, "--threads", quoted(value) + " is not a whole number from 1 to 256"});
  }
  for (const char* value : {"1023", "0", "1048577", "64k", "-1", ""}) {
    cases.push_back({{"--max-header-bytes", value},
                     "--max-header-bytes",
                     quoted(value) + " is not a whole number from 1024 to 1048576"});
  }
  for (const char* value : {"0", "10001", "-1", "1e3", "100 ", ""}) {
    cases.push_back({{"--max-header-fields", value},
                     "--max-header-fields",
                     quoted(value) + " is not a whole number from 1 to 10000"});
  }
  for (const char* value : {"-1", "100001", "1.5", "many", ""}) {
    cases.push_back({{"--max-repositories", value},
                     "--max-repositories",
                     quoted(value) + " is not a whole number from 0 to 100000"});
  }
  for (const char* value : {"-1", "1000001", "1.5", "many", ""}) {
    cases.push_back({{"--max-pull-sessions", value},
                     "--max-pull-sessions",
                     quoted(value) + " is not a whole number from 0 to 1000000"});
  }
  // Upstream URLs.
  struct U {
    const char* url;
    const char* reason;
  };
  for (U u : {
           U{"registry:5000", "'registry:5000' is not a URL like http://HOST:PORT"},
           U{"registry", "'registry' is not a URL like http://HOST:PORT"},
           U{"", "is not a URL like http://HOST:PORT"},
           U{"//registry:5000", "is not a URL like http://HOST:PORT"},
           U{"://registry:5000", "scheme '' is not supported (use http://"},
           U{"ftp://registry:5000", "scheme 'ftp' is not supported (use http://"},
           U{"http://registry:5000/v2", "'http://registry:5000/v2' has a path; give only scheme://HOST:PORT"},
           U{"http://registry:5000/v2/", "has a path"},
           U{"http://registry:5000//", "has a path"},
           U{"http://registry:5000?x=1", "has a path"},
           U{"http://user:secret@registry:5000", "'http://user:secret@registry:5000' has credentials; they are not supported"},
           U{"http://user@registry:5000", "has credentials"},
           U{"http://user:secret@registry", "has credentials"},
           U{"http://registry:70000", "'70000' is not a port number"},
           U{"http://registry:", "'' is not a port number"},
           U{"http://registry:abc", "'abc' is not a port number"},
           U{"http://", "has no host"},
           U{"http://:5000", "has no host"},
           U{"http://::1:5000", "is not HOST:PORT"},
       }) {
    cases.push_back({{"--upstream", u.url}, "--upstream", u.reason});
    cases.push_back({{std::string("--upstream=") + u.url}, "--upstream", u.reason});
  }
  if (!kHttpsUpstream) {
    cases.push_back({{"--upstream", "https://registry:5000"}, "--upstream", "scheme 'https' is not supported"});
  } else {
    cases.push_back({{"--upstream", "https://user@registry"}, "--upstream", "has credentials"});
    cases.push_back({{"--upstream", "https://registry/v2"}, "--upstream", "has a path"});
    cases.push_back({{"--upstream", "https://registry:65536"}, "--upstream", "'65536' is not a port number"});
  }
  // Unknown flags and stray words.
  cases.push_back({{"--bogus"}, "'--bogus'", "unknown option '--bogus' (see --help)"});
  cases.push_back({{"--bogus=1"}, "'--bogus=1'", "unknown option"});
  cases.push_back({{"--threads", "2", "--listen-address", "x:1"}, "--listen-address", "unknown option"});
  cases.push_back({{"serve"}, "'serve'", "unknown option"});
  cases.push_back({{"-t", "4"}, "'-t'", "unknown option"});
  cases.push_back({{"--LISTEN", "a:1"}, "--LISTEN", "unknown option"});
  cases.push_back({{""}, "''", "unknown option"});
  // A value that looks like the next flag is still taken as the value.
  cases.push_back({{"--listen", "--threads", "4"}, "--listen", "'--threads' is not HOST:PORT"});
  // The first bad flag is the one reported.
  cases.push_back({{"--threads", "0", "--listen", "x"}, "--threads", "'0' is not a whole number"});
  // The dashboard history: at least a second per sample, a window of whole
  // intervals, and a bounded number of them.
  cases.push_back({{"--dashboard-history-interval", "0.5"}, "--dashboard-history-interval", "under 1 second"});
  cases.push_back({{"--dashboard-history-interval", "0"}, "--dashboard-history-interval", "is not a number of seconds"});
  cases.push_back({{"--dashboard-history-window", "-1"}, "--dashboard-history-window", "is not a number of seconds"});
  cases.push_back({{"--dashboard-history-interval", "10", "--dashboard-history-window", "5"},
                   "--dashboard-history-window", "shorter than --dashboard-history-interval"});
  cases.push_back({{"--dashboard-history-interval", "1", "--dashboard-history-window", "86400"},
                   "--dashboard-history-window", "more than 20000 intervals"});
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Values, ConfigBad, ::testing::ValuesIn(bad_cases()));

// Number spellings that std::stod accepts but nobody means as a duration.
// Rejected like the trailing-space form "5 " is.
TEST(ConfigBadSeconds, RejectsLeadingWhitespaceAndHex) {
  for (const char* value : {" 5", "\t5", "0x10", "0x1p4"}) {
    CommandLine cl = parse_command_line({"--header-timeout", value});
    EXPECT_EQ(cl.action, Action::error) << "'" << value << "' accepted as " << cl.config.header_timeout_s << " s";
    if (cl.action == Action::error) {
      EXPECT_NE(cl.error.find("--header-timeout"), std::string::npos) << cl.error;
    }
  }
}

// ------------------------------------------------- the shared parsers

TEST(ConfigParsers, HostPortThrowsInvalidArgumentWithoutFlag) {
  try {
    parse_host_port("nohost");
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "'nohost' is not HOST:PORT");
  }
  EXPECT_THROW(parse_host_port("h:65536"), std::invalid_argument);
  HostPort hp = parse_host_port("h:0");
  EXPECT_EQ(hp.host, "h");
  EXPECT_EQ(hp.port, 0);
  hp = parse_host_port("[2001:db8::5]:443");
  EXPECT_EQ(hp.host, "2001:db8::5");
  EXPECT_EQ(hp.port, 443);
  EXPECT_EQ(hp.to_string(), "[2001:db8::5]:443");
}

TEST(ConfigParsers, UpstreamUrlThrowsInvalidArgumentWithoutFlag) {
  try {
    parse_upstream_url("gopher://r:1");
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()).rfind("scheme 'gopher' is not supported (use http://", 0), 0u) << e.what();
  }
  UpstreamUrl u = parse_upstream_url("http://Registry.Example:5000");
  EXPECT_EQ(u.scheme, "http");
  EXPECT_EQ(u.authority, "Registry.Example:5000");  // exactly as written
  EXPECT_EQ(u.address.host, "Registry.Example");
  EXPECT_EQ(u.address.port, 5000);
  EXPECT_EQ(u.address.to_string(), "Registry.Example:5000");
}

TEST(ConfigErrors, ExactLines) {
  EXPECT_EQ(parse_command_line({"--listen", "host:70000"}).error,
            "regmeter: --listen: '70000' is not a port number (0-65535)");
  EXPECT_EQ(parse_command_line({"--threads"}).error, "regmeter: --threads: needs a value");
  EXPECT_EQ(parse_command_line({"--idle-timeout=nan"}).error,
            "regmeter: --idle-timeout: 'nan' is not a number of seconds (> 0, at most a week)");
  EXPECT_EQ(parse_command_line({"--nope"}).error, "regmeter: unknown option '--nope' (see --help)");
  EXPECT_EQ(parse_command_line({"--upstream", "http://r:5000/v2"}).error,
            "regmeter: --upstream: 'http://r:5000/v2' has a path; give only scheme://HOST:PORT");
  EXPECT_EQ(parse_command_line({"--metrics-listen", "nope"}).error,
            "regmeter: --metrics-listen: 'nope' is not HOST:PORT");
}

// The client and metrics ports on one address: named as the overlap, for
// equal hosts and for a wildcard on either side; :0 twice and different
// loopback hosts are no overlap.
TEST(ConfigErrors, MetricsListenOnTheListenAddress) {
  EXPECT_EQ(parse_command_line({"--listen", "127.0.0.1:7000", "--metrics-listen", "127.0.0.1:7000"}).error,
            "regmeter: --metrics-listen 127.0.0.1:7000: the same address as --listen 127.0.0.1:7000; "
            "give /metrics a port of its own");
  EXPECT_EQ(parse_command_line({"--metrics-listen", "127.0.0.1:5080"}).error,  // --listen defaults to 0.0.0.0:5080
            "regmeter: --metrics-listen 127.0.0.1:5080: the same address as --listen 0.0.0.0:5080; "
            "give /metrics a port of its own");
  EXPECT_EQ(parse_command_line({"--listen", "127.0.0.1:7000", "--metrics-listen", "[::]:7000"}).action,
            CommandLine::Action::error);
  EXPECT_EQ(parse_command_line({"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"}).action,
            CommandLine::Action::run);
  EXPECT_EQ(parse_command_line({"--listen", "127.0.0.1:7000", "--metrics-listen", "127.0.0.2:7000"}).action,
            CommandLine::Action::run);
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

// The config file goes through the same option table as the flags.
TEST(ConfigMaxHeaderFields, ConfigFileKey) {
  char name[] = "/tmp/regmeter-config-fields-XXXXXX";
  int fd = mkstemp(name);
  ASSERT_GE(fd, 0);
  const std::string text = "max-header-fields: 250\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  CommandLine cl = parse_command_line({"--config", name});
  EXPECT_EQ(cl.action, CommandLine::Action::run) << cl.error;
  EXPECT_EQ(cl.config.max_header_fields, 250u);
  cl = parse_command_line({"--config", name, "--max-header-fields", "7"});
  EXPECT_EQ(cl.config.max_header_fields, 7u) << "the flag overrides the file";
  std::remove(name);
}

}  // namespace
}  // namespace regmeter

namespace regmeter {
namespace {

// ------------------------------------------------------------ upstream pool and queue

TEST(ConfigUpstreamQueue, DefaultsAreUnlimitedWithTenSecondQueue) {
  CommandLine cl = parse_command_line({});
  ASSERT_EQ(cl.action, Action::run);
  EXPECT_EQ(cl.config.upstream_max_connections, 0u);
  EXPECT_EQ(cl.config.upstream_queue_timeout_s, 10);
  EXPECT_EQ(cl.config.upstream_idle_timeout_s, 30);
}

TEST(ConfigUpstreamQueue, ValuesAreTaken) {
  CommandLine cl = parse_command_line(
      {"--upstream-max-connections", "4", "--upstream-queue-timeout=1.5", "--upstream-idle-timeout", "2"});
  ASSERT_EQ(cl.action, Action::run) << cl.error;
  EXPECT_EQ(cl.config.upstream_max_connections, 4u);
  EXPECT_EQ(cl.config.upstream_queue_timeout_s, 1.5);
  EXPECT_EQ(cl.config.upstream_idle_timeout_s, 2);
}

TEST(ConfigUpstreamQueue, BadCapIsOneLineNamingTheFlag) {
  for (const char* bad : {"-1", "many", "1000001", "4.5", ""}) {
    CommandLine cl = parse_command_line({"--upstream-max-connections", bad});
    ASSERT_EQ(cl.action, Action::error) << bad;
    EXPECT_EQ(cl.error, "regmeter: --upstream-max-connections: '" + std::string(bad) +
                            "' is not a whole number from 0 to 1000000");
  }
  CommandLine zero_timeout = parse_command_line({"--upstream-queue-timeout", "0"});
  ASSERT_EQ(zero_timeout.action, Action::error);
  EXPECT_NE(zero_timeout.error.find("--upstream-queue-timeout"), std::string::npos) << zero_timeout.error;
}

}  // namespace
}  // namespace regmeter
