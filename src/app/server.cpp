#include "app/server.h"

#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>
#include <atomic>

#include <event2/event.h>
#include <fmt/format.h>

#include "app/admin_server.h"
#include "app/dashboard_history.h"
#include "net/listen_guard.h"
#include "core/log.h"
#include "core/metric_process_counters.h"
#include "core/metrics.h"
#include "net/tls_context.h"
#include "net/upstream.h"
#include "net/upstream_resolver.h"
#include "app/memory_trim.h"
#include "net/metering.h"
#include "net/socket_address.h"
#include "net/worker.h"

#include "regmeter_version.h"
#include "net/timeval.h"

namespace regmeter {

namespace {

struct SignalContext {
  std::vector<std::unique_ptr<Worker>>* workers;
  double drain_delay_s;
  event* drain_timer;
  std::atomic<bool>* stopping;
  ServerTlsContext* client_tls;
  AccessLogSink* access_log;
};

void on_reopen_signal(int, short, void* arg) {
  auto* context = static_cast<SignalContext*>(arg);
  if (context->access_log) context->access_log->request_reopen();
}

void on_reload_signal(int, short, void* arg) {
  reload_client_certificate(static_cast<SignalContext*>(arg)->client_tls);
}

void on_stop_signal(int signal, short, void* arg) {
  auto* context = static_cast<SignalContext*>(arg);
  if (context->stopping->exchange(true)) return;
  if (context->drain_delay_s > 0) {
    // /healthz now says 503; keep serving until balancers have noticed.
    log_info("signal {}: /healthz is 503; still accepting for {} s (--drain-delay)", signal, context->drain_delay_s);
    timeval delay = seconds_to_timeval(context->drain_delay_s);
    event_add(context->drain_timer, &delay);
    return;
  }
  log_info("signal {}: no longer accepting; finishing in-flight requests", signal);
  for (auto& worker : *context->workers) worker->request_stop();
}

void on_drain_delay_over(int, short, void* arg) {
  auto* context = static_cast<SignalContext*>(arg);
  log_info("drain delay over: no longer accepting; finishing in-flight requests");
  for (auto& worker : *context->workers) worker->request_stop();
}

// Prints one line naming the flag and returns false on failure.
bool load_tls_contexts(const Config& config, TlsContexts& out) {
  try {
    out = build_tls_contexts(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --%s\n", e.what());
    return false;
  }
  return true;
}

// The --listen port must not be shared by accident (listen_guard.h); these
// return the reason it is taken, or nothing. Before the workers bind:
std::string listen_port_taken(const Config& config) {
  if (config.reuse_port || config.listen.port == 0) return {};  // port 0: the kernel picks a free one
  UpstreamAddress address = resolve_address(config.listen, true);
  if (probe_bind(reinterpret_cast<const sockaddr*>(&address.storage), static_cast<socklen_t>(address.length)) == 0)
    return {};
  return "address already in use (another process listens on this port; --reuse-port shares it on purpose)";
}

// After they listen: a second instance that passed its probe in the same
// instant as ours.
std::string listen_port_shared(const Config& config, const std::vector<std::unique_ptr<Worker>>& workers) {
  if (config.reuse_port) return {};
  std::vector<int> fds;
  for (const auto& worker : workers) fds.push_back(worker->listener_fd());
  sockaddr_storage bound{};
  if (!bound_address(fds.front(), bound)) return {};
  if (foreign_listeners(reinterpret_cast<const sockaddr*>(&bound), fds) <= 0) return {};
  return "address already in use (another process started listening on this port at the same time; "
         "--reuse-port shares it on purpose)";
}

}  // namespace

int check_config(const Config& config) {
  TlsContexts contexts;
  if (!load_tls_contexts(config, contexts)) return 2;
  std::printf("%s: OK (listen %s, upstream %s://%s, metrics %s)\n", config.config_file.c_str(),
              config.listen.to_string().c_str(), config.upstream.scheme.c_str(), config.upstream.authority.c_str(),
              config.metrics_listen.to_string().c_str());
  return 0;
}

int run_server(const Config& config) {
  set_log_format(config.log_format == "json" ? LogFormat::json : LogFormat::text);
  std::signal(SIGPIPE, SIG_IGN);
  // Stream buffers are 512 KiB chains, allocated and freed per read. With
  // glibc's defaults (mmap above 128 KiB, trim at 128 KiB) each one was
  // mapped or trimmed and faulted in again: up to 9000 page faults per GiB
  // (tests/bench/profile.sh). Keep them on the heap, and let a heap keep up
  // to 4 MiB free at its top (a few chains: 100-2600 faults per GiB). 32 MiB
  // cut faults further but let each thread's heap keep its busiest moment:
  // RSS crept up over a soak, and malloc_trim cannot shrink the top of a
  // thread's heap. IdleMemoryTrimmer (below) returns the rest when idle.
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);
  // Two descriptors per proxied connection: ask for what the hard limit allows.
  if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  // No evthread_use_pthreads(): each event base is used by its own thread
  // only (Worker::request_stop crosses threads through an eventfd), so
  // libevent runs without locks.

  AddressList upstream_addresses;
  try {
    upstream_addresses = resolve_all(config.upstream.address);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --upstream: %s\n", e.what());
    return 2;
  }

  TlsContexts contexts;
  if (!load_tls_contexts(config, contexts)) return 2;
  std::unique_ptr<ServerTlsContext>& client_tls = contexts.client;
  SslContextPtr& upstream_tls = contexts.upstream;
  SslContextPtr& metrics_tls = contexts.metrics;
  if (config.upstream_insecure)
    log_warn("--upstream-insecure: the upstream's certificate is NOT verified; anyone on the path can impersonate it");

  Metrics metrics(config.threads, MetricsOptions{config.max_repositories});
  ProcessCounters counters(metrics.registry());
  std::unique_ptr<AccessLogSink> access_log;
  if (config.access_log != "off") {
    try {
      access_log = std::make_unique<AccessLogSink>(config.access_log);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "regmeter: --%s\n", e.what());
      return 2;
    }
  }
  TlsSetup tls;
  tls.access_log = access_log.get();
  tls.client_side = client_tls.get();
  tls.upstream_side = upstream_tls.get();
  tls.client_handshake_errors = &counters.client_handshake_errors;
  tls.upstream_handshake_errors = &counters.upstream_handshake_errors;
  OpenSessionTable sessions;
  SharedMetering metering(config, metrics.registry());
  UpstreamResolver upstream(config.upstream.address,
                            std::chrono::milliseconds(static_cast<long>(config.upstream_resolve_interval_s * 1000)),
                            std::move(upstream_addresses),
                            ResolverMetrics{&counters.resolutions_changed, &counters.resolutions_failed,
                                            &counters.upstream_addresses, &counters.connect_failures});
  UpstreamLimiter upstream_limiter(config.upstream_max_connections, config.threads,
                                   UpstreamGauges{&counters.active_connections, &counters.idle_connections,
                                                  &counters.queue_depth});
  std::vector<std::unique_ptr<Worker>> workers;
  std::uint16_t port = config.listen.port;
  try {
    if (std::string taken = listen_port_taken(config); !taken.empty())
      throw std::runtime_error(fmt::format("{}: {}", config.listen.to_string(), taken));
    for (unsigned i = 0; i < config.threads; ++i) {
      workers.push_back(std::make_unique<Worker>(config, i, metrics.shard(i), upstream, upstream_limiter,
                                                 sessions, tls, metering));
      port = workers.back()->listen(port);
    }
    if (std::string shared = listen_port_shared(config, workers); !shared.empty()) {
      HostPort bound = config.listen;
      bound.port = port;
      throw std::runtime_error(fmt::format("{}: {}", bound.to_string(), shared));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --listen %s\n", e.what());
    return 2;
  }

  std::atomic<bool> stopping{false};
  std::unique_ptr<AdminServer> admin;
  try {
    admin = std::make_unique<AdminServer>(workers[0]->base(), config.metrics_listen.host, config.metrics_listen.port,
                                          metrics, [&stopping] { return !stopping.load(); }, metrics_tls.get());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "regmeter: --%s\n", e.what());
    return 2;
  }
  std::unique_ptr<DashboardHistory> dashboard_history;
  if (config.dashboard_history_window_s > 0) {
    dashboard_history = std::make_unique<DashboardHistory>(workers[0]->base(), metrics,
                                                           config.dashboard_history_interval_s,
                                                           config.dashboard_history_window_s);
    admin->add_route("/dashboard/history", "application/json", [h = dashboard_history.get()] { return h->json(); });
  } else {
    admin->add_route("/dashboard/history", "application/json",
                     [off = DashboardHistory::off_json(config.dashboard_history_interval_s)] { return off; });
  }
  auto trimmer = std::make_unique<IdleMemoryTrimmer>(workers[0]->base(), metrics, std::chrono::seconds(1));

  SignalContext signal_context{&workers, config.drain_delay_s, nullptr, &stopping, client_tls.get(), access_log.get()};
  signal_context.drain_timer = evtimer_new(workers[0]->base(), &on_drain_delay_over, &signal_context);
  event* sigterm = evsignal_new(workers[0]->base(), SIGTERM, &on_stop_signal, &signal_context);
  event* sigint = evsignal_new(workers[0]->base(), SIGINT, &on_stop_signal, &signal_context);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  event* sighup = evsignal_new(workers[0]->base(), SIGHUP, &on_reload_signal, &signal_context);
  event_add(sighup, nullptr);
  event* sigusr1 = evsignal_new(workers[0]->base(), SIGUSR1, &on_reopen_signal, &signal_context);
  event_add(sigusr1, nullptr);
  // Counts of repeated warnings that stopped repeating (log_limit.h).
  event* log_summaries = event_new(workers[0]->base(), -1, EV_PERSIST, [](int, short, void*) {
    flush_repeated_log_lines();
  }, nullptr);
  timeval every_second{1, 0};
  event_add(log_summaries, &every_second);

  HostPort bound = config.listen;
  bound.port = port;
  HostPort metrics_bound = config.metrics_listen;  // the real port when :0 was given
  metrics_bound.port = admin->port();
  log_info("regmeter {} listening on {}://{}, upstream {}://{}, metrics on {}{}, {} thread(s)", REGMETER_VERSION,
           client_tls ? "https" : "http", bound.to_string(), config.upstream.scheme, upstream.description(),
           metrics_tls ? "https://" : "http://", metrics_bound.to_string(), config.threads);

  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < workers.size(); ++i) threads.emplace_back([&workers, i] { workers[i]->run(); });
  workers[0]->run();
  for (auto& thread : threads) thread.join();

  event_free(sigterm);
  event_free(sigint);
  event_free(sighup);
  event_free(sigusr1);
  event_free(log_summaries);
  event_free(signal_context.drain_timer);
  admin.reset();
  dashboard_history.reset();  // its timer too
  trimmer.reset();  // its timer lives in worker 0's event base, freed next
  workers.clear();  // each worker hands over its last access-log lines
  access_log.reset();
  flush_repeated_log_lines(true);
  log_info("stopped");
  return 0;
}

}  // namespace regmeter
