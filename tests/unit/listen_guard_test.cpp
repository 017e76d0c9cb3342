// listen_guard: the probe bind sees any listener on the port (SO_REUSEPORT
// or not), and the /proc check finds listening sockets that are not ours.
#include "net/listen_guard.h"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace regmeter {
namespace {

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A listening socket on 127.0.0.1:port (0: any); its port in `port`.
int listener(std::uint16_t& port, bool reuse_port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuse_port) ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in a = loopback(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 8) != 0) {
    ADD_FAILURE() << "bind/listen: " << std::strerror(errno);
    ::close(fd);
    return -1;
  }
  socklen_t length = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length);
  port = ntohs(a.sin_port);
  return fd;
}

int probe(std::uint16_t port) {
  sockaddr_in a = loopback(port);
  return probe_bind(reinterpret_cast<sockaddr*>(&a), sizeof a);
}

TEST(ProbeBind, SeesListenersWithAndWithoutReusePort) {
  for (bool reuse_port : {true, false}) {
    std::uint16_t port = 0;
    int fd = listener(port, reuse_port);
    ASSERT_GE(fd, 0);
    EXPECT_EQ(probe(port), EADDRINUSE) << "SO_REUSEPORT " << reuse_port;
    ::close(fd);
    EXPECT_EQ(probe(port), 0) << "closed: free again";
  }
}

TEST(ProbeBind, ASecondSoReusePortListenerWouldHaveJoined) {
  // Why the probe exists: the kernel lets this one in without complaint.
  std::uint16_t port = 0;
  int first = listener(port, true);
  std::uint16_t same = port;
  int second = listener(same, true);
  EXPECT_GE(second, 0);
  EXPECT_EQ(same, port);
  ::close(second);
  ::close(first);
}

TEST(ForeignListeners, CountsListenersOnThePortThatAreNotOurs) {
  std::uint16_t port = 0;
  int ours = listener(port, true);
  ASSERT_GE(ours, 0);
  sockaddr_in bound = loopback(port);
  EXPECT_EQ(foreign_listeners(reinterpret_cast<sockaddr*>(&bound), {ours}), 0);
  std::uint16_t same = port;
  int theirs = listener(same, true);
  ASSERT_GE(theirs, 0);
  EXPECT_EQ(foreign_listeners(reinterpret_cast<sockaddr*>(&bound), {ours}), 1);
  EXPECT_EQ(foreign_listeners(reinterpret_cast<sockaddr*>(&bound), {ours, theirs}), 0) << "both ours";
  ::close(theirs);
  ::close(ours);
}

// The /proc/net/tcp text format, two listeners on port 0x13C4 (5060), one
// established connection on it, one listener on another port.
constexpr const char* kTable =
    "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
    "   0: 0100007F:13C4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1001 1 0 100 0 0 10 0\n"
    "   1: 00000000:13C4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1002 1 0 100 0 0 10 0\n"
    "   2: 0100007F:13C4 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 1003 1 0 20 4 30 10 -1\n"
    "   3: 0100007F:13C5 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1004 1 0 100 0 0 10 0\n"
    "   4: 0200007F:13C4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1005 1 0 100 0 0 10 0\n";

TEST(ForeignListeners, TableParsing) {
  // Ours is 127.0.0.1:5060 (inode 1001): the wildcard listener overlaps it,
  // 127.0.0.2 does not, the connection and the other port do not count.
  EXPECT_EQ(count_foreign_listeners(kTable, "0100007F", 0x13C4, {1001}), 1u);
  // Listening on the wildcard: every listener on the port overlaps.
  EXPECT_EQ(count_foreign_listeners(kTable, "00000000", 0x13C4, {1002}), 2u);
  EXPECT_EQ(count_foreign_listeners(kTable, "00000000", 0x13C4, {1001, 1002, 1005}), 0u);
  EXPECT_EQ(count_foreign_listeners(kTable, "0100007F", 0x13C6, {}), 0u) << "nothing on that port";
  // An IPv6 wildcard overlaps IPv4 listeners too (a dual-stack socket).
  EXPECT_EQ(count_foreign_listeners(kTable, std::string(32, '0'), 0x13C4, {}), 3u);
  EXPECT_EQ(count_foreign_listeners("", "0100007F", 0x13C4, {}), 0u);
  EXPECT_EQ(count_foreign_listeners("header\ngarbage line\n", "0100007F", 0x13C4, {}), 0u);
}

}  // namespace
}  // namespace regmeter
