// Reading a delimited protobuf exposition back in tests: split it into its
// MetricFamily messages and decode each with `protoc --decode` against
// tests/unit/data/metrics.proto (PROTOC and METRICS_PROTO_DIR, which
// tests/meson.build sets). A missing protoc fails the test.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "run_tool.h"

namespace regmeter::test {

// Splits a delimited stream into its messages; fails the test on a
// truncated length or message.
inline std::vector<std::string> split_delimited(const std::string& stream) {
  std::vector<std::string> messages;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    std::uint64_t length = 0;
    int shift = 0;
    while (true) {
      if (pos >= stream.size() || shift > 63) {
        ADD_FAILURE() << "truncated length varint at " << pos;
        return messages;
      }
      auto byte = static_cast<unsigned char>(stream[pos++]);
      length |= std::uint64_t{byte & 0x7fu} << shift;
      shift += 7;
      if ((byte & 0x80) == 0) break;
    }
    if (stream.size() - pos < length) {
      ADD_FAILURE() << "message of " << length << " bytes truncated at " << pos;
      return messages;
    }
    messages.push_back(stream.substr(pos, length));
    pos += length;
  }
  return messages;
}

inline std::string decode(const std::string& message) {
  std::string protoc = env("PROTOC");
  std::string proto_dir = env("METRICS_PROTO_DIR");
  if (protoc.empty() || proto_dir.empty()) {
    ADD_FAILURE() << "PROTOC and METRICS_PROTO_DIR must be set (tests/meson.build does)";
    return {};
  }
  auto result = run_tool(shell_quote(protoc) + " --decode=io.prometheus.client.MetricFamily" +
                                   " --proto_path=" + shell_quote(proto_dir) + " metrics.proto",
                               message);
  EXPECT_EQ(result.exit_code, 0) << "protoc (" << protoc << ") failed: " << result.err;
  return result.out;
}

}  // namespace regmeter::test
