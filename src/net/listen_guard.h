// Refusing to share the --listen port by accident. Every worker thread binds
// its own SO_REUSEPORT listener, and Linux lets any process of the same user
// join such a group: a second regmeter on the port would start without a word
// and the kernel would hand it part of the clients. Unless --reuse-port asks
// for sharing (a zero-downtime restart), the server checks twice:
//
// - before the workers bind, a probe socket without SO_REUSEPORT binds the
//   address: the kernel refuses it (EADDRINUSE) when anything listens there,
//   with SO_REUSEPORT or without, so we never join another group at all;
// - after they listen, no listening socket on the port but ours may overlap
//   the address (/proc/net/tcp, tcp6): this catches a second instance that
//   passed its probe in the same instant as we did.
//
// SO_REUSEADDR on the probe, as on the listeners: connections of an earlier
// run (TIME_WAIT, or still draining) are no conflict.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace regmeter {

// 0, or the errno of a bind without SO_REUSEPORT to `address` (EADDRINUSE:
// something listens there). Errors that say nothing about other listeners
// (no socket for this family) are 0: the workers' own bind reports those.
int probe_bind(const sockaddr* address, socklen_t length);

// Listening sockets that overlap the bound address `ours` (IPv4 or IPv6,
// wildcard or not) on its port and are none of `our_fds`. -1 when the
// kernel's tables cannot be read (no /proc): nothing can be said.
int foreign_listeners(const sockaddr* ours, const std::vector<int>& our_fds);

// The counting itself, over the text of /proc/net/tcp or /proc/net/tcp6:
// `address_hex` is our address as those files print it (8 or 32 hex digits).
std::size_t count_foreign_listeners(std::string_view table, std::string_view address_hex, std::uint16_t port,
                                    const std::vector<std::uint64_t>& our_inodes);

}  // namespace regmeter
