// regmeter: a metering reverse proxy for container registries.
#include <cstdio>
#include <string>
#include <vector>

#include "core/config.h"
#include "app/server.h"
#include "regmeter_version.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  regmeter::CommandLine command = regmeter::parse_command_line(args);
  switch (command.action) {
    case regmeter::CommandLine::Action::help:
      std::fputs(regmeter::usage_text().c_str(), stdout);
      return 0;
    case regmeter::CommandLine::Action::version:
      std::printf("regmeter %s\n", REGMETER_VERSION);
      return 0;
    case regmeter::CommandLine::Action::error:
      std::fprintf(stderr, "%s\n", command.error.c_str());
      return 2;
    case regmeter::CommandLine::Action::check_config:
      return regmeter::check_config(command.config);
    case regmeter::CommandLine::Action::run:
      break;
  }
  return regmeter::run_server(command.config);
}
