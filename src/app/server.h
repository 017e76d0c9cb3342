// The process: worker threads, the admin endpoints, signals.
#pragma once

#include "core/config.h"

namespace regmeter {

// Runs until SIGINT/SIGTERM and the drain that follows. Returns the exit
// code: 0 after a clean stop, 2 when the configuration cannot be served
// (address in use, upstream not resolvable), with one line on stderr.
int run_server(const Config& config);

// --check-config: everything run_server checks before serving that needs no
// network (TLS files load, key matches certificate). 0, or 2 with one line.
int check_config(const Config& config);

}  // namespace regmeter
