// Socket addresses: name lookup for TCP and where a socket is bound. One
// copy each of what the upstream, the listeners, the admin port and the
// listen guard all need.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <string>

namespace regmeter {

// getaddrinfo(3) of TCP HOST:PORT (numeric port; `passive` for addresses to
// listen on), calling `visit` for each address in the resolver's order.
// Returns 0, or getaddrinfo's error code (gai_strerror() names it).
int for_each_tcp_address(const std::string& host, std::uint16_t port, bool passive,
                         const std::function<void(const sockaddr* address, socklen_t length)>& visit);

// The port of an IPv4 or IPv6 address.
std::uint16_t port_of(const sockaddr* address);

// Where socket `fd` is bound (the port the kernel picked for a port-0
// listen). False, with errno set, when getsockname fails.
bool bound_address(int fd, sockaddr_storage& out);

}  // namespace regmeter
