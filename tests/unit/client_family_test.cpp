#include "core/client_family.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace regmeter {

void PrintTo(ClientFamily family, std::ostream* out) { *out << client_family_name(family); }

namespace {

struct Row {
  std::string family, client, source, user_agent;
  int line = 0;
};

// tests/unit/data/user_agents.tsv: family, client, where the string comes
// from, the exact header value (tab-separated; # comments).
std::vector<Row> read_user_agents() {
  std::ifstream file(REGMETER_USER_AGENTS_TSV);
  EXPECT_TRUE(file) << "cannot open " << REGMETER_USER_AGENTS_TSV;
  std::vector<Row> rows;
  std::string line;
  for (int number = 1; std::getline(file, line); ++number) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> columns;
    std::stringstream split(line);
    for (std::string column; std::getline(split, column, '\t');) columns.push_back(column);
    EXPECT_EQ(columns.size(), 4u) << "line " << number << ": " << line;
    if (columns.size() != 4) continue;
    rows.push_back({columns[0], columns[1], columns[2], columns[3], number});
  }
  return rows;
}

std::set<std::string_view> family_names() {
  std::set<std::string_view> names;
  for (std::size_t i = 0; i < kClientFamilyCount; ++i) names.insert(client_family_name(static_cast<ClientFamily>(i)));
  return names;
}

TEST(ClientFamily, NamesAreTheClosedSet) {
  EXPECT_EQ(family_names(), (std::set<std::string_view>{"docker", "buildkit", "containerd", "containers-image",
                                                        "go-containerregistry", "helm", "oras", "curl", "other"}));
}

TEST(ClientFamily, RealUserAgentsFromTheTable) {
  auto rows = read_user_agents();
  auto names = family_names();
  std::map<std::string, int> per_family;
  for (const auto& row : rows) {
    EXPECT_TRUE(names.count(row.family)) << "line " << row.line << ": unknown family " << row.family;
    EXPECT_EQ(client_family_name(classify_user_agent(row.user_agent)), row.family)
        << "line " << row.line << " (" << row.client << "): " << row.user_agent;
    ++per_family[row.family];
  }
  // Every family the issue names has at least one real string behind it.
  for (std::string_view family :
       {"docker", "buildkit", "containerd", "containers-image", "go-containerregistry", "helm", "oras", "curl"})
    EXPECT_GT(per_family[std::string(family)], 0) << family;
}

TEST(ClientFamily, EdgeCases) {
  struct Case {
    std::string_view user_agent;
    ClientFamily family;
  };
  for (const Case& c : std::vector<Case>{
           // docker before UpstreamClient() existed (moby before 1.10)
           {"docker/1.9.1 go/go1.4.2 git-commit/a34a1d5 kernel/4.2.0 os/linux arch/amd64", ClientFamily::docker},
           // containerd-client/ inside docker's string does not make it containerd
           {"docker/28.5.2 go/go1.24.9 containerd-client/2.1.4+unknown UpstreamClient(Docker-Client/28.5.2 \\(linux\\))",
            ClientFamily::docker},
           {"  skopeo/1.9.3  ", ClientFamily::containers_image},  // header whitespace
           {"BUILDAH/1.28.2", ClientFamily::containers_image},    // product names compared case-insensitively
           {"podman/5.2.0", ClientFamily::containers_image},
           // oras-go's default (oras-project/oras-go registry/remote/auth/client.go DefaultClient)
           {"oras-go", ClientFamily::oras},
           {"gcrane/0.20.2 go-containerregistry/v0.20.2", ClientFamily::go_containerregistry},
           {"kaniko/v1.24.0,github-actions", ClientFamily::go_containerregistry},
           {"mytool/1.0 go-containerregistry/v0.19.0", ClientFamily::go_containerregistry},
           {"Go-http-client/1.1", ClientFamily::other},
           {"python-requests/2.31.0", ClientFamily::other},
           {"Mozilla/5.0 (X11; Linux x86_64)", ClientFamily::other},
           {"", ClientFamily::other},
           {"docker", ClientFamily::other},           // no product version: not what docker sends
           {"dockerd/1.0", ClientFamily::other},
           {"curlish/1.0", ClientFamily::other},
           {"containerdx/1.0", ClientFamily::other},
           {"ko", ClientFamily::other},
           {"kong/3.0", ClientFamily::other},         // ko/ is a prefix of nothing but ko/
       })
    EXPECT_EQ(classify_user_agent(c.user_agent), c.family) << c.user_agent;
}

TEST(ClientFamily, LooksAtABoundedPrefixOnly) {
  std::string padded = "mytool/1.0 " + std::string(kMaxUserAgentScan, 'x') + " UpstreamClient(docker)";
  EXPECT_EQ(classify_user_agent(padded), ClientFamily::other);
  std::string early = "mytool/1.0 UpstreamClient(docker) " + std::string(4 * kMaxUserAgentScan, 'x');
  EXPECT_EQ(classify_user_agent(early), ClientFamily::docker);
}

TEST(ClientFamily, RandomUserAgentsStayInTheClosedSet) {
  std::mt19937_64 random(16);
  auto names = family_names();
  const std::vector<std::string> pieces = {"docker/", "curl/", "containerd/", "oras", "-", "go-containerregistry/",
                                           "UpstreamClient(", " ", "Helm/", "(", ")", "1.0"};
  for (int round = 0; round < 50000; ++round) {
    std::string ua;
    std::size_t parts = random() % 8;
    for (std::size_t i = 0; i < parts; ++i) {
      if (random() % 2) {
        ua += pieces[random() % pieces.size()];
      } else {
        ua.push_back(static_cast<char>(random() & 0xff));
      }
    }
    ASSERT_TRUE(names.count(client_family_name(classify_user_agent(ua)))) << ua;
  }
}

}  // namespace
}  // namespace regmeter
