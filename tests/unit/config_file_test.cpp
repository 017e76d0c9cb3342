// --config FILE: a YAML mapping that mirrors the flags; flags override it.
#include "regmeter/config.h"

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

struct BadFile {
  std::string text;
  std::string expected;  // part of the one-line error
};

TEST_F(ConfigFile, MistakesAreOneLineNamingTheKey) {
  const BadFile cases[] = {
      {"bogus: 1\n", "unknown key 'bogus'"},
      {"threads: zero\n", "key 'threads': 'zero' is not a whole number"},
      {"listen: [a, b]\n", "key 'listen' needs a single value"},
      {"listen: nope\n", "key 'listen': 'nope' is not HOST:PORT"},
      {"upstream-insecure: maybe\n", "key 'upstream-insecure': must be true or false"},
      {"threads: 2\nthreads: 3\n", "key 'threads' given twice"},
      {"- a\n- b\n", "must be a mapping"},
      {"a: b: c\n", "line 1"},
      {"tls-cert: /nonexistent.pem\n", "key 'tls-cert': cannot read '/nonexistent.pem'"},
      {"log-format: xml\n", "key 'log-format': 'xml' is not 'text' or 'json'"},
      {"upstream-insecure: true\n", "--upstream-insecure: only applies to an https:// --upstream"},
  };
  for (const auto& c : cases) {
    auto path = write(c.text);
    auto cl = parse_command_line({"--config", path});
    EXPECT_EQ(cl.action, CommandLine::Action::error) << c.text;
    EXPECT_NE(cl.error.find(c.expected), std::string::npos) << c.text << " -> " << cl.error;
    EXPECT_EQ(cl.error.find('\n'), std::string::npos) << cl.error;
    EXPECT_EQ(cl.error.rfind("regmeter: ", 0), 0u) << cl.error;
  }
}

TEST_F(ConfigFile, MissingFileIsNamed) {
  auto cl = parse_command_line({"--config", "/nonexistent/regmeter.yml"});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_NE(cl.error.find("/nonexistent/regmeter.yml: cannot read the file"), std::string::npos) << cl.error;
}

TEST_F(ConfigFile, OnlyOneFile) {
  auto a = write("threads: 2\n");
  auto cl = parse_command_line({"--config", a, "--config", a});
  EXPECT_EQ(cl.action, CommandLine::Action::error);
  EXPECT_NE(cl.error.find("only one config file"), std::string::npos) << cl.error;
}

}  // namespace
}  // namespace regmeter
