#include "net/upstream.h"

#include "net/socket_address.h"
#include "net/tls_stream.h"
#include "net/upstream_limit.h"
#include "net/upstream_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <fmt/format.h>
#include <prometheus/gauge.h>

namespace regmeter {

namespace {
// An address whose connect failed is skipped this long (while other
// addresses are left): a blackholed replica must not cost every other new
// connection a connect timeout.
constexpr auto kDownFor = std::chrono::seconds(10);
}  // namespace

AddressList resolve_all(const HostPort& where, bool passive) {
  AddressList list;
  int rc = for_each_tcp_address(where.host, where.port, passive, [&](const sockaddr* found, socklen_t length) {
    if (length > sizeof(sockaddr_storage)) return;
    UpstreamAddress address;
    std::memcpy(&address.storage, found, length);
    address.length = static_cast<int>(length);
    address.description = where.to_string();
    bool seen = false;
    for (const auto& other : list) seen = seen || same_address(other, address);
    if (!seen) list.push_back(std::move(address));
  });
  if (rc != 0) throw std::runtime_error(fmt::format("cannot resolve '{}': {}", where.host, gai_strerror(rc)));
  if (list.empty()) throw std::runtime_error(fmt::format("cannot resolve '{}': no usable address", where.host));
  return list;
}

UpstreamAddress resolve_address(const HostPort& where, bool passive) { return resolve_all(where, passive).front(); }

bool same_address(const UpstreamAddress& a, const UpstreamAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, static_cast<std::size_t>(a.length)) == 0;
}

UpstreamSlot::UpstreamSlot(UpstreamPool* pool) : pool_(pool) { ++pool_->open_; }

void UpstreamSlot::reset() {
  if (auto* pool = std::exchange(pool_, nullptr)) pool->slot_freed();
}

UpstreamPool::UpstreamPool(event_base* base, UpstreamResolver& resolver, UpstreamLimiter& limiter,
                           PoolOptions options, SSL_CTX* tls_context, std::string server_name)
    : base_(base), resolver_(resolver), limiter_(limiter), budget_(limiter.budget()), options_(options),
      tls_context_(tls_context), server_name_(std::move(server_name)) {
  // Every second: idle connections past --upstream-idle-timeout close
  // (within a second of it), and the gauges get this thread's counts.
  sweep_timer_ = event_new(base_, -1, EV_PERSIST, &UpstreamPool::on_sweep, this);
  timeval every{1, 0};
  event_add(sweep_timer_, &every);
  wake_event_ = event_new(base_, limiter_.wake_fd(options_.thread), EV_READ | EV_PERSIST, &UpstreamPool::on_wake, this);
  event_add(wake_event_, nullptr);
}

UpstreamPool::~UpstreamPool() {
  // Connections close while the pool (their slots' owner) is still whole.
  handed_over_.clear();
  idle_.clear();
  publish_gauges();
  event_free(wake_event_);
  event_free(sweep_timer_);
}

void UpstreamPool::clear() {
  idle_.clear();
  idle_changed();
}

void UpstreamPool::idle_changed() {
  if (budget_) limiter_.set_idle(options_.thread, idle_.size());
}

UpstreamSlot UpstreamPool::acquire_slot() {
  if (budget_ && !budget_->try_acquire()) return {};
  return UpstreamSlot(this);
}

void UpstreamPool::slot_freed() {
  --open_;
  if (budget_) budget_->release();
}

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(StreamHandler* new_handler) {
  auto now = std::chrono::steady_clock::now();
  std::unique_ptr<UpstreamConnection> found;
  while (!idle_.empty() && !found) {
    std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    if (now - connection->idle_since > options_.idle_timeout) continue;
    // A close that arrived while idle is normally seen by the loop first
    // (reading stays on); the peek (one syscall) is for connections idle
    // long enough for the upstream's own idle timeout to have fired.
    bool recently_used = now - connection->idle_since < std::chrono::seconds(1);
    if (!recently_used && !connection->stream->idle_and_alive()) continue;
    if (connection->stream->peer_closed() || connection->stream->failed()) continue;
    connection->stream->set_handler(new_handler);
    found = std::move(connection);
  }
  idle_changed();
  return found;
}

const std::string& UpstreamPool::description() const { return resolver_.description(); }

std::size_t UpstreamPool::address_count() const { return resolver_.addresses()->size(); }

void UpstreamPool::connect_failed(const UpstreamConnection& connection) {
  mark_down(connection.address);
  resolver_.connect_failed();
}

void UpstreamPool::mark_down(const UpstreamAddress& address) {
  auto until = std::chrono::steady_clock::now() + kDownFor;
  for (auto& down : down_)
    if (same_address(down.address, address)) {
      down.until = until;
      return;
    }
  down_.push_back({address, until});
}

bool UpstreamPool::is_down(const UpstreamAddress& address, std::chrono::steady_clock::time_point now) const {
  for (const auto& down : down_)
    if (down.until > now && same_address(down.address, address)) return true;
  return false;
}

UpstreamPool::Dialled UpstreamPool::connect(StreamHandler* handler, UpstreamWaiter* waiter, UpstreamSlot slot) {
  Dialled result;
  if (!slot) slot = acquire_slot();
  if (!slot) {
    // FIFO: behind everyone already waiting, on every thread.
    waiting_.push_back({budget_->enqueue(options_.thread), waiter});
    limiter_.ask_for_room(options_.thread);
    result.queued = true;
    return result;
  }
  std::string& error = result.error;
  // New connections take the addresses in turn: a name with several spreads
  // the load, and a retry after a failed connect tries the next one. Those
  // that failed recently are skipped unless nothing else is left.
  std::shared_ptr<const AddressList> addresses = resolver_.addresses();
  auto now = std::chrono::steady_clock::now();
  std::erase_if(down_, [&](const DownAddress& down) { return down.until <= now; });
  const UpstreamAddress* address = &(*addresses)[next_address_++ % addresses->size()];
  for (std::size_t tried = 1; tried < addresses->size() && is_down(*address, now); ++tried)
    address = &(*addresses)[next_address_++ % addresses->size()];
  const auto* target = reinterpret_cast<const sockaddr*>(&address->storage);
  std::unique_ptr<Stream> stream =
      tls_context_ ? TlsStream::connect_to(base_, target, address->length, tls_context_, server_name_, handler, error,
                                           &sessions_)
                   : SocketStream::connect_to(base_, target, address->length, handler, error);
  if (!stream) {
    mark_down(*address);
    resolver_.connect_failed();
    return result;  // the slot goes back with it
  }
  auto connection = std::make_unique<UpstreamConnection>();
  connection->slot = std::move(slot);
  connection->stream = std::move(stream);
  connection->connect_started = now;
  connection->address = *address;
  result.connection = std::move(connection);
  return result;
}

void UpstreamPool::cancel_wait(UpstreamWaiter* waiter) {
  auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](const Waiting& w) { return w.waiter == waiter; });
  if (it == waiting_.end()) return;
  UpstreamBudget::Ticket ticket = it->ticket;
  waiting_.erase(it);
  auto handed = std::find_if(handed_over_.begin(), handed_over_.end(),
                             [&](const auto& entry) { return entry.first == ticket; });
  if (handed != handed_over_.end()) {
    // A connection was on its way to it: the next in line may have it.
    std::unique_ptr<UpstreamConnection> connection = std::move(handed->second);
    handed_over_.erase(handed);
    give_back(std::move(connection));
    return;
  }
  budget_->cancel(options_.thread, ticket);
}

void UpstreamPool::give_back(std::unique_ptr<UpstreamConnection> connection) {
  Stream& stream = *connection->stream;
  if (evbuffer_get_length(stream.input()) > 0 || evbuffer_get_length(stream.output()) > 0 ||
      stream.peer_closed() || stream.failed())
    return;  // closes it
  if (budget_ && budget_->waiting() > 0) {
    // Requests wait for a slot. The oldest is here: it takes this
    // connection as it is. Elsewhere: this one closes and its slot moves
    // (a connection cannot change threads), so the queue stays in order.
    UpstreamBudget::Ticket ticket = budget_->take_local_waiter(options_.thread);
    if (ticket == 0) return;
    connection->requests_served++;
    stream.set_handler(this);
    stream.set_reading(true);
    handed_over_.emplace_back(ticket, std::move(connection));
    event_active(wake_event_, EV_READ, 0);
    return;
  }
  if (idle_.size() >= options_.max_idle) return;  // closes it
  connection->requests_served++;
  connection->idle_since = std::chrono::steady_clock::now();
  stream.set_handler(this);
  stream.release_idle_buffers();
  stream.set_low_watermark(0);
  stream.set_reading(true);  // to notice the upstream closing it
  idle_.push_back(std::move(connection));
  idle_changed();
}

void UpstreamPool::on_wake(int fd, short, void* arg) {
  std::uint64_t count;
  [[maybe_unused]] ssize_t got = read(fd, &count, sizeof count);  // EAGAIN when activated from here
  static_cast<UpstreamPool*>(arg)->serve_turns();
}

void UpstreamPool::serve_turns() {
  if (!budget_) return;
  auto take_waiter = [&](UpstreamBudget::Ticket ticket) -> UpstreamWaiter* {
    auto it = std::find_if(waiting_.begin(), waiting_.end(), [&](const Waiting& w) { return w.ticket == ticket; });
    if (it == waiting_.end()) return nullptr;
    UpstreamWaiter* waiter = it->waiter;
    waiting_.erase(it);
    return waiter;
  };
  // Each waiter's turn may run a whole exchange step (and queue or free
  // more): work on what was pending when we started.
  auto handed = std::move(handed_over_);
  handed_over_.clear();
  for (auto& [ticket, connection] : handed) {
    UpstreamWaiter* waiter = take_waiter(ticket);
    if (!waiter) continue;  // cancelled meanwhile (cancel_wait re-routed it)
    Stream& stream = *connection->stream;
    if (stream.peer_closed() || stream.failed() || evbuffer_get_length(stream.input()) > 0) {
      UpstreamSlot slot = std::move(connection->slot);
      connection.reset();
      waiter->upstream_turn(nullptr, std::move(slot));
    } else {
      waiter->upstream_turn(std::move(connection), {});
    }
  }
  for (UpstreamBudget::Ticket ticket : budget_->take_grants(options_.thread)) {
    // The budget already counts the slot; from here the UpstreamSlot owns it.
    UpstreamSlot slot(this);
    if (UpstreamWaiter* waiter = take_waiter(ticket)) waiter->upstream_turn(nullptr, std::move(slot));
  }
  // Requests wait while this thread keeps idle connections (each holding a
  // slot): close the oldest ones, one per waiting request.
  while (budget_->waiting() > 0 && !idle_.empty()) {
    idle_.erase(idle_.begin());
    idle_changed();
  }
}

void UpstreamPool::publish_gauges() {
  const UpstreamGauges& gauges = limiter_.gauges();
  auto idle = static_cast<double>(idle_.size());
  auto active = static_cast<double>(open_) - idle;
  if (gauges.active) gauges.active->Increment(active - published_active_);
  if (gauges.idle) gauges.idle->Increment(idle - published_idle_);
  published_active_ = active;
  published_idle_ = idle;
  if (options_.thread == 0 && gauges.queue_depth)
    gauges.queue_depth->Set(budget_ ? static_cast<double>(budget_->waiting()) : 0.0);
}

void UpstreamPool::drop(Stream& stream) {
  auto it = std::find_if(idle_.begin(), idle_.end(),
                         [&](const auto& connection) { return connection->stream.get() == &stream; });
  if (it != idle_.end()) idle_.erase(it);
  idle_changed();
}

void UpstreamPool::on_stream_readable(Stream& stream) { drop(stream); }
void UpstreamPool::on_stream_error(Stream& stream, const std::string&) { drop(stream); }

void UpstreamPool::on_sweep(int, short, void* arg) {
  auto* pool = static_cast<UpstreamPool*>(arg);
  auto now = std::chrono::steady_clock::now();
  std::erase_if(pool->idle_,
                [&](const auto& connection) { return now - connection->idle_since > pool->options_.idle_timeout; });
  pool->idle_changed();
  pool->publish_gauges();
}

}  // namespace regmeter
