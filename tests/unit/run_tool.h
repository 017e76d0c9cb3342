// For the encoder tests: runs an independent decoder (protoc, a Python
// parser) on bytes and captures what it printed.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

namespace regmeter::test {

struct ToolResult {
  int exit_code = -1;  // -1: could not run or killed
  std::string out;
  std::string err;
};

// The value of an environment variable tests/meson.build sets; empty if unset.
inline std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value ? value : "";
}

inline std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// Runs `command` (a shell command line) with `input` on its stdin.
inline ToolResult run_tool(const std::string& command, std::string_view input) {
  static int counter = 0;
  auto base = std::filesystem::temp_directory_path() /
              ("regmeter-tool-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::string in_path = base.string() + ".in", err_path = base.string() + ".err";
  std::ofstream(in_path, std::ios::binary).write(input.data(), static_cast<std::streamsize>(input.size()));
  ToolResult result;
  std::string line = command + " < " + shell_quote(in_path) + " 2> " + shell_quote(err_path);
  if (FILE* pipe = ::popen(line.c_str(), "r")) {
    char buf[4096];
    while (auto n = std::fread(buf, 1, sizeof buf, pipe)) result.out.append(buf, n);
    int status = ::pclose(pipe);
    if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  }
  std::ifstream err(err_path, std::ios::binary);
  result.err.assign(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  std::filesystem::remove(in_path);
  std::filesystem::remove(err_path);
  return result;
}

}  // namespace regmeter::test
