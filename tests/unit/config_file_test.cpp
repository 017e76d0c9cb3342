// --config FILE: a YAML mapping that mirrors the flags; flags override it.
#include "core/config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace regmeter {
namespace {

class ConfigFile : public ::testing::Test {
 protected:
  std::string write(const std::string& text) {
    char name[] = "/tmp/regmeter-config-XXXXXX";
    int fd = mkstemp(name);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::ofstream(name) << text;
    paths_.push_back(name);
    return name;
  }
  void TearDown() override {
    for (const auto& p : paths_) std::remove(p.c_str());
  }
  std::vector<std::string> paths_;
};

TEST_F(ConfigFile, MirrorsFlags) {
  auto path = write(
      "listen: 127.0.0.1:7000\nupstream: http://registry.internal:5000\nmetrics-listen: 127.0.0.1:7001\n"
      "threads: 3\nheader-timeout: 5\nidle-timeout: 7\nupstream-timeout: 9\nbody-timeout: 11\n"
      "max-connections: 100\nmax-repositories: 0\nupload-session-timeout: 60\naccess-log: off\nlog-format: json\n");
  auto cl = parse_command_line({"--config", path});
  ASSERT_EQ(cl.action, CommandLine::Action::run) << cl.error;
  EXPECT_EQ(cl.config.listen.to_string(), "127.0.0.1:7000");
  EXPECT_EQ(cl.config.upstream.authority, "registry.internal:5000");
  EXPECT_EQ(cl.config.metrics_listen.port, 7001);
  EXPECT_EQ(cl.config.threads, 3u);
  EXPECT_EQ(cl.config.header_timeout_s, 5);
  EXPECT_EQ(cl.config.idle_timeout_s, 7);
  EXPECT_EQ(cl.config.upstream_timeout_s, 9);
  EXPECT_EQ(cl.config.body_timeout_s, 11);
  EXPECT_EQ(cl.config.max_connections, 100u);
  EXPECT_EQ(cl.config.max_repositories, 0u);
  EXPECT_EQ(cl.config.upload_session_timeout_s, 60);
  EXPECT_EQ(cl.config.access_log, "off");
  EXPECT_EQ(cl.config.log_format, "json");
  EXPECT_EQ(cl.config.config_file, path);
}

TEST_F(ConfigFile, PullSessionKeys) {
  auto cl = parse_command_line({"--config", write("pull-session-idle: 2.5\nmax-pull-sessions: 0\n")});
  ASSERT_EQ(cl.action, CommandLine::Action::run) << cl.error;
  EXPECT_DOUBLE_EQ(cl.config.pull_session_idle_s, 2.5);
  EXPECT_EQ(cl.config.max_pull_sessions, 0u);
  auto bad = parse_command_line({"--config", write("max-pull-sessions: lots\n")});
  EXPECT_EQ(bad.action, CommandLine::Action::error);
  EXPECT_NE(bad.error.find("max-pull-sessions"), std::string::npos) << bad.error;
}

TEST_F(ConfigFile, ReusePortKey) {
  auto on = parse_command_line({"--config", write("reuse-port: true\n")});
  ASSERT_EQ(on.action, CommandLine::Action::run) << on.error;
  EXPECT_TRUE(on.config.reuse_port);
  auto off = parse_command_line({"--config", write("reuse-port: false\n")});
  ASSERT_EQ(off.action, CommandLine::Action::run) << off.error;
  EXPECT_FALSE(off.config.reuse_port);
}

TEST_F(ConfigFile, FlagsOverrideTheFileWhateverTheirPosition) {
  auto path = write("threads: 3\nlisten: 127.0.0.1:7000\n");
  auto cl = parse_command_line({"--threads", "5", "--config", path});
  ASSERT_EQ(cl.action, CommandLine::Action::run) << cl.error;
  EXPECT_EQ(cl.config.threads, 5u);
  EXPECT_EQ(cl.config.listen.port, 7000);
}

TEST_F(ConfigFile, CheckConfigIsItsOwnAction) {
  auto path = write("threads: 2\n");
  auto cl = parse_command_line({"--check-config", path});
  EXPECT_EQ(cl.action, CommandLine::Action::check_config) << cl.error;
}

TEST_F(ConfigFile, EmptyFileConfiguresNothing) {
  auto cl = parse_command_line({"--config", write("")});
  ASSERT_EQ(cl.action, CommandLine::Action::run) << cl.error;
  EXPECT_EQ(cl.config.listen.port, 5080);
}

TEST_F(ConfigFile, CommentsOnlyConfigureNothing) {
  auto cl = parse_command_line({"--check-config", write("# nothing set yet\n\n")});
  ASSERT_EQ(cl.action, CommandLine::Action::check_config) << cl.error;
  EXPECT_EQ(cl.config.threads, parse_command_line({}).config.threads);
}

struct BadFile {
  std::string text;
  std::string expected;  // the whole message after "regmeter: config FILE"
};

// Every mistake in a file is one line, `regmeter: config FILE:LINE: reason`,
// naming the line and the key where there is one.
TEST_F(ConfigFile, MistakesAreOneLineNamingTheLineAndTheKey) {
  const BadFile cases[] = {
      {"bogus: 1\n", ":1: unknown key 'bogus' (see --help)"},
      {"threads: 2\n\nlisten-on: x\n", ":3: unknown key 'listen-on' (see --help)"},
      {"threads: zero\n", ":1: key 'threads': 'zero' is not a whole number from 1 to 256"},
      {"# comment\nlisten: nope\n", ":2: key 'listen': 'nope' is not HOST:PORT"},
      {"upstream-insecure: maybe\n", ":1: key 'upstream-insecure': must be true or false"},
      {"tls-cert: /nonexistent.pem\n", ":1: key 'tls-cert': cannot read '/nonexistent.pem': No such file or directory"},
      {"log-format: xml\n", ":1: key 'log-format': 'xml' is not 'text' or 'json'"},
      // nested values
      {"threads: 2\nlisten: [a, b]\n", ":2: key 'listen' needs a single value (not a list or mapping)"},
      {"listen:\n  host: a\n", ":1: key 'listen' needs a single value (not a list or mapping)"},
      {"threads: 2\nlisten:\n", ":2: key 'listen' has no value"},
      {"threads: 2\nthreads: 3\n", ":2: key 'threads' given twice (first on line 1)"},
      {"? [a, b]\n: c\n", ":1: a key must be a plain name"},
      // not a mapping
      {"- a\n- b\n", ":1: must be a mapping of option names to values"},
      {"just text\n", ":1: must be a mapping of option names to values"},
      // YAML syntax errors
      {"a: b: c\n", ":1: not valid YAML: illegal map value"},
      {"threads: 2\nlisten: 127.0.0.1:7000\n  bad: x\nupstream: y\n", ":3: not valid YAML: illegal map value"},
      {"threads: 2\n\tlisten: x\n", ":2: not valid YAML: illegal tab when looking for indentation"},
      {"threads: 2\nlisten: x\n- y\n", ":3: not valid YAML: end of map not found"},
  };
  for (const auto& c : cases) {
    auto path = write(c.text);
    auto cl = parse_command_line({"--config", path});
    EXPECT_EQ(cl.action, CommandLine::Action::error) << c.text;
    EXPECT_EQ(cl.error, "regmeter: config " + path + c.expected) << c.text;
  }
}

TEST_F(ConfigFile, CrossChecksNameTheFileAndTheFlags) {
  auto path = write("upstream-insecure: true\n");
  auto cl = parse_command_line({"--config", path});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_EQ(cl.error, "regmeter: --upstream-insecure: only applies to an https:// --upstream (config file " + path +
                          " and flags combined)");
}

TEST_F(ConfigFile, MissingFileIsNamed) {
  auto cl = parse_command_line({"--config", "/nonexistent/regmeter.yml"});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_EQ(cl.error, "regmeter: config /nonexistent/regmeter.yml: cannot read: No such file or directory");
}

// It used to abort with an uncaught std::ios_failure (exit 134).
TEST_F(ConfigFile, DirectoryIsAnErrorNotACrash) {
  for (const char* flag : {"--config", "--check-config"}) {
    auto cl = parse_command_line({flag, "/tmp"});
    EXPECT_EQ(cl.action, CommandLine::Action::error) << flag;
    EXPECT_EQ(cl.error, "regmeter: config /tmp: cannot read: Is a directory") << flag;
  }
}

TEST_F(ConfigFile, EndlessFileIsRefused) {
  auto cl = parse_command_line({"--config", "/dev/zero"});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_EQ(cl.error, "regmeter: config /dev/zero: larger than 1048576 bytes: not a config file");
}

TEST_F(ConfigFile, EmptyNameIsAnError) {
  auto cl = parse_command_line({"--config", ""});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_EQ(cl.error, "regmeter: --config: needs a file name");
}

TEST_F(ConfigFile, OnlyOneFile) {
  auto a = write("threads: 2\n");
  auto cl = parse_command_line({"--config", a, "--config", a});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_NE(cl.error.find("only one config file"), std::string::npos) << cl.error;
}

}  // namespace
}  // namespace regmeter
