#include "net/listen_guard.h"

#include "net/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace regmeter {

namespace {

constexpr std::string_view kListenState = "0A";  // TCP_LISTEN in /proc/net/tcp's "st" column

bool all_zero(std::string_view hex) { return hex.find_first_not_of('0') == std::string_view::npos; }

// An address as /proc/net/tcp{,6} prints it: each 32-bit word of the
// network-order address read as a host integer, in %08X.
std::string address_hex(const sockaddr* address) {
  if (address->sa_family == AF_INET)
    return fmt::format("{:08X}", reinterpret_cast<const sockaddr_in*>(address)->sin_addr.s_addr);
  const auto* bytes = reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr.s6_addr;
  std::string out;
  for (int word = 0; word < 4; ++word) {
    std::uint32_t value = 0;
    std::copy(bytes + 4 * word, bytes + 4 * word + 4, reinterpret_cast<unsigned char*>(&value));
    out += fmt::format("{:08X}", value);
  }
  return out;
}

bool read_file(const char* path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream text;
  text << in.rdbuf();
  out = text.str();
  return true;
}

}  // namespace

int probe_bind(const sockaddr* address, socklen_t length) {
  int fd = ::socket(address->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int error = ::bind(fd, address, length) == 0 ? 0 : errno;
  ::close(fd);
  return error == EADDRINUSE ? error : 0;
}

std::size_t count_foreign_listeners(std::string_view table, std::string_view ours, std::uint16_t port,
                                    const std::vector<std::uint64_t>& our_inodes) {
  std::size_t count = 0;
  std::istringstream lines{std::string(table)};
  std::string line;
  std::getline(lines, line);  // the column titles
  while (std::getline(lines, line)) {
    // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
    std::istringstream fields(line);
    std::string slot, local, remote, state, queues, timer, retransmits, uid, timeout, inode_text;
    if (!(fields >> slot >> local >> remote >> state >> queues >> timer >> retransmits >> uid >> timeout >> inode_text))
      continue;
    if (state != kListenState) continue;
    auto colon = local.find(':');
    if (colon == std::string::npos) continue;
    unsigned local_port = 0;
    std::from_chars(local.data() + colon + 1, local.data() + local.size(), local_port, 16);
    if (local_port != port) continue;
    std::string_view theirs(local.data(), colon);
    if (!(theirs == ours || all_zero(theirs) || all_zero(ours))) continue;  // two distinct addresses
    std::uint64_t inode = 0;
    std::from_chars(inode_text.data(), inode_text.data() + inode_text.size(), inode);
    if (std::find(our_inodes.begin(), our_inodes.end(), inode) == our_inodes.end()) ++count;
  }
  return count;
}

int foreign_listeners(const sockaddr* ours, const std::vector<int>& our_fds) {
  std::vector<std::uint64_t> inodes;
  for (int fd : our_fds) {
    struct stat info {};
    if (::fstat(fd, &info) == 0) inodes.push_back(static_cast<std::uint64_t>(info.st_ino));
  }
  std::string hex = address_hex(ours);
  std::uint16_t port = port_of(ours);
  int found = -1;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::string table;
    if (!read_file(path, table)) continue;
    found = std::max(found, 0) + static_cast<int>(count_foreign_listeners(table, hex, port, inodes));
  }
  return found;
}

}  // namespace regmeter
