#include "net/upstream_resolver.h"

#include <netdb.h>

#include <cstring>
#include <stdexcept>

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "core/log.h"

namespace regmeter {

namespace {

// After a connect failure, the next resolution waits at least this long
// since the previous one: a registry that is down (not moved) must not turn
// every failed request into a DNS query.
constexpr auto kMinGapAfterFailure = std::chrono::seconds(1);

bool same_set(const AddressList& a, const AddressList& b) {
  if (a.size() != b.size()) return false;
  for (const auto& address : a) {
    bool found = false;
    for (const auto& other : b) found = found || same_address(address, other);
    if (!found) return false;
  }
  return true;
}

std::string numeric(const UpstreamAddress& address) {
  char host[INET6_ADDRSTRLEN] = "?";
  char port[8] = "?";
  getnameinfo(reinterpret_cast<const sockaddr*>(&address.storage), static_cast<socklen_t>(address.length), host,
              sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
  return address.storage.ss_family == AF_INET6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

std::string numeric_list(const AddressList& list) {
  std::string out;
  for (const auto& address : list) {
    if (!out.empty()) out += ", ";
    out += numeric(address);
  }
  return out;
}

}  // namespace

UpstreamResolver::UpstreamResolver(HostPort where, std::chrono::milliseconds interval, AddressList initial,
                                   ResolverMetrics metrics)
    : where_(std::move(where)), description_(where_.to_string()), interval_(interval), metrics_(metrics),
      current_(std::make_shared<const AddressList>(std::move(initial))) {
  if (current_->empty()) throw std::invalid_argument("UpstreamResolver needs at least one address");
  if (metrics_.addresses) metrics_.addresses->Set(static_cast<double>(current_->size()));
  if (interval_.count() > 0 && !is_ip_literal(where_.host)) thread_ = std::thread([this] { run(); });
}

UpstreamResolver::~UpstreamResolver() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::shared_ptr<const AddressList> UpstreamResolver::addresses() const {
  std::lock_guard lock(mutex_);
  return current_;
}

void UpstreamResolver::connect_failed() {
  if (metrics_.connect_failures) metrics_.connect_failures->Increment();
  if (!thread_.joinable()) return;
  {
    std::lock_guard lock(mutex_);
    early_ = true;
  }
  wake_.notify_all();
}

void UpstreamResolver::run() {
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(mutex_);
  // Next lookup: at the interval, or a second after the last one once a
  // connect failed (connect_failed() sets early_ and wakes us to recompute).
  auto due = [&] {
    return last + (early_ ? std::min<std::chrono::milliseconds>(interval_, kMinGapAfterFailure) : interval_);
  };
  // Bounded: each round waits until the next lookup is due or we stop.
  while (!stopping_) {
    while (!stopping_ && std::chrono::steady_clock::now() < due()) wake_.wait_until(lock, due());
    if (stopping_) break;
    early_ = false;
    lock.unlock();
    refresh();  // blocking DNS, outside the lock
    last = std::chrono::steady_clock::now();
    lock.lock();
  }
}

bool UpstreamResolver::refresh() {
  AddressList fresh;
  try {
    fresh = resolve_all(where_);
  } catch (const std::exception& e) {
    if (metrics_.errors) metrics_.errors->Increment();
    if (!last_failed_) log_warn("upstream {}: {} (keeping {})", description_, e.what(), numeric_list(*addresses()));
    last_failed_ = true;
    return false;
  }
  if (last_failed_) log_info("upstream {}: resolves again", description_);
  last_failed_ = false;
  auto old = addresses();
  if (same_set(*old, fresh)) return false;
  log_info("upstream {} now resolves to {} (was {})", description_, numeric_list(fresh), numeric_list(*old));
  if (metrics_.changes) metrics_.changes->Increment();
  if (metrics_.addresses) metrics_.addresses->Set(static_cast<double>(fresh.size()));
  auto next = std::make_shared<const AddressList>(std::move(fresh));
  std::lock_guard lock(mutex_);
  current_ = std::move(next);
  return true;
}

}  // namespace regmeter
