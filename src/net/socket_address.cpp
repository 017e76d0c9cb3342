#include "net/socket_address.h"

#include <netdb.h>
#include <netinet/in.h>

namespace regmeter {

int for_each_tcp_address(const std::string& host, std::uint16_t port, bool passive,
                         const std::function<void(const sockaddr* address, socklen_t length)>& visit) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* found = nullptr;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
  if (rc != 0) return rc;
  for (addrinfo* entry = found; entry; entry = entry->ai_next) visit(entry->ai_addr, entry->ai_addrlen);
  freeaddrinfo(found);
  return 0;
}

std::uint16_t port_of(const sockaddr* address) {
  if (address->sa_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(address)->sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in*>(address)->sin_port);
}

bool bound_address(int fd, sockaddr_storage& out) {
  out = {};
  socklen_t length = sizeof out;
  return getsockname(fd, reinterpret_cast<sockaddr*>(&out), &length) == 0;
}

}  // namespace regmeter
