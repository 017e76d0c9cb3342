#include "net/upstream.h"

#include "net/tls.h"
#include "net/upstream_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include <event2/buffer.h>
#include <event2/event.h>
#include <fmt/format.h>

namespace regmeter {

namespace {
// Idle upstream connections older than this are closed: registries and load
// balancers drop idle connections on their own schedule, and a request sent
// on a connection they are closing fails.
constexpr auto kMaxIdleAge = std::chrono::seconds(30);
// An address whose connect failed is skipped this long (while other
// addresses are left): a blackholed replica must not cost every other new
// connection a connect timeout.
constexpr auto kDownFor = std::chrono::seconds(10);
}  // namespace

AddressList resolve_all(const HostPort& where, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  std::string port = std::to_string(where.port);
  int rc = getaddrinfo(where.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0 || !found)
    throw std::runtime_error(fmt::format("cannot resolve '{}': {}", where.host, gai_strerror(rc)));
  AddressList list;
  for (addrinfo* entry = found; entry; entry = entry->ai_next) {
    if (entry->ai_addrlen > sizeof(sockaddr_storage)) continue;
    UpstreamAddress address;
    std::memcpy(&address.storage, entry->ai_addr, entry->ai_addrlen);
    address.length = static_cast<int>(entry->ai_addrlen);
    address.description = where.to_string();
    bool seen = false;
    for (const auto& other : list) seen = seen || same_address(other, address);
    if (!seen) list.push_back(std::move(address));
  }
  freeaddrinfo(found);
  if (list.empty()) throw std::runtime_error(fmt::format("cannot resolve '{}': no usable address", where.host));
  return list;
}

UpstreamAddress resolve_address(const HostPort& where, bool passive) { return resolve_all(where, passive).front(); }

bool same_address(const UpstreamAddress& a, const UpstreamAddress& b) {
  return a.length == b.length && std::memcmp(&a.storage, &b.storage, static_cast<std::size_t>(a.length)) == 0;
}

UpstreamPool::UpstreamPool(event_base* base, UpstreamResolver& resolver, std::size_t max_idle, SSL_CTX* tls_context,
                           std::string server_name)
    : base_(base), resolver_(resolver), max_idle_(max_idle), tls_context_(tls_context),
      server_name_(std::move(server_name)) {
  sweep_timer_ = event_new(base_, -1, EV_PERSIST, &UpstreamPool::on_sweep, this);
  timeval every{5, 0};
  event_add(sweep_timer_, &every);
}

UpstreamPool::~UpstreamPool() {
  event_free(sweep_timer_);
}

void UpstreamPool::clear() { idle_.clear(); }

std::unique_ptr<UpstreamConnection> UpstreamPool::take_idle(StreamHandler* new_handler) {
  auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    std::unique_ptr<UpstreamConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    if (now - connection->idle_since > kMaxIdleAge) continue;
    // A close that arrived while idle is normally seen by the loop first
    // (reading stays on); the peek (one syscall) is for connections idle
    // long enough for the upstream's own idle timeout to have fired.
    bool recently_used = now - connection->idle_since < std::chrono::seconds(1);
    if (!recently_used && !connection->stream->idle_and_alive()) continue;
    if (connection->stream->peer_closed() || connection->stream->failed()) continue;
    connection->stream->set_handler(new_handler);
    return connection;
  }
  return nullptr;
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

std::unique_ptr<UpstreamConnection> UpstreamPool::connect(StreamHandler* handler, std::string& error) {
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
      tls_context_ ? TlsStream::connect_to(base_, target, address->length, tls_context_, server_name_, handler, error)
                   : SocketStream::connect_to(base_, target, address->length, handler, error);
  if (!stream) {
    mark_down(*address);
    resolver_.connect_failed();
    return nullptr;
  }
  auto connection = std::make_unique<UpstreamConnection>();
  connection->stream = std::move(stream);
  connection->connect_started = now;
  connection->address = *address;
  return connection;
}

void UpstreamPool::give_back(std::unique_ptr<UpstreamConnection> connection) {
  if (idle_.size() >= max_idle_) return;  // closes it
  Stream& stream = *connection->stream;
  if (evbuffer_get_length(stream.input()) > 0 || evbuffer_get_length(stream.output()) > 0 ||
      stream.peer_closed() || stream.failed())
    return;
  connection->requests_served++;
  connection->idle_since = std::chrono::steady_clock::now();
  stream.set_handler(this);
  stream.release_idle_buffers();
  stream.set_low_watermark(0);
  stream.set_reading(true);  // to notice the upstream closing it
  idle_.push_back(std::move(connection));
}

void UpstreamPool::drop(Stream& stream) {
  auto it = std::find_if(idle_.begin(), idle_.end(),
                         [&](const auto& connection) { return connection->stream.get() == &stream; });
  if (it != idle_.end()) idle_.erase(it);
}

void UpstreamPool::on_stream_readable(Stream& stream) { drop(stream); }
void UpstreamPool::on_stream_error(Stream& stream, const std::string&) { drop(stream); }

void UpstreamPool::on_sweep(int, short, void* arg) {
  auto* pool = static_cast<UpstreamPool*>(arg);
  auto now = std::chrono::steady_clock::now();
  std::erase_if(pool->idle_, [&](const auto& connection) { return now - connection->idle_since > kMaxIdleAge; });
}

}  // namespace regmeter
