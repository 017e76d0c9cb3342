#include "regmeter/server.h"

#include <csignal>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>
#include <atomic>

#include <event2/event.h>
#include <event2/thread.h>

#include "regmeter/admin_server.h"
#include "regmeter/log.h"
#include "regmeter/metrics.h"
#include "regmeter/upstream.h"
#include "regmeter/worker.h"

#include "regmeter_version.h"

namespace regmeter {

namespace {

struct SignalContext {
  std::vector<std::unique_ptr<Worker>>* workers;
  std::atomic<bool>* stopping;
};

void on_stop_signal(int signal, short, void* arg) {
  auto* context = static_cast<SignalContext*>(arg);
  if (context->stopping->exchange(true)) return;
  log_info("signal {}: no longer accepting; finishing in-flight requests", signal);
  for (auto& worker : *context->workers) worker->request_stop();
}

}  // namespace

int run_server(const Config& config) {
  std::signal(SIGPIPE, SIG_IGN);
  evthread_use_pthreads();  // lets the signal thread wake the other loops

  UpstreamAddress upstream;
  try {
    upstream = resolve_upstream(config.upstream);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --upstream: %s\n", e.what());
    return 2;
  }

  Metrics metrics(config.threads, MetricsOptions{config.max_repositories});
  OpenSessionTable sessions;
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t port = config.listen.port;
  try {
    for (unsigned i = 0; i < config.threads; ++i) {
      workers.push_back(std::make_unique<Worker>(config, i, metrics.shard(i), upstream, sessions));
      port = workers.back()->listen(port);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --listen: %s\n", e.what());
    return 2;
  }

  std::atomic<bool> stopping{false};
  std::unique_ptr<AdminServer> admin;
  try {
    admin = std::make_unique<AdminServer>(workers[0]->base(), config.metrics_listen.host, config.metrics_listen.port,
                                          metrics, [&stopping] { return !stopping.load(); });
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --%s\n", e.what());
    return 2;
  }

  SignalContext signal_context{&workers, &stopping};
  event* sigterm = evsignal_new(workers[0]->base(), SIGTERM, &on_stop_signal, &signal_context);
  event* sigint = evsignal_new(workers[0]->base(), SIGINT, &on_stop_signal, &signal_context);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);

  log_info("regmeter {} listening on {}:{}, upstream {}, metrics on {}, {} thread(s)", REGMETER_VERSION,
           config.listen.host, port, upstream.description, config.metrics_listen.to_string(), config.threads);

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) threads.emplace_back([&workers, i] { workers[i]->run(); });
  workers[0]->run();
  for (auto& thread : threads) thread.join();

  event_free(sigterm);
  event_free(sigint);
  admin.reset();
  workers.clear();
  log_info("stopped");
  return 0;
}

}  // namespace regmeter
