#include "core/client_family.h"

#include <array>

#include "core/ascii.h"

namespace regmeter {

namespace {

struct ProductPrefix {
  std::string_view prefix;  // compared ASCII case-insensitively with the start of the User-Agent
  ClientFamily family;
};

// The first product token each client sends, from the clients' sources and
// captures (tests/unit/data/user_agents.tsv cites each). Order matters only
// where one prefix extends another; none does.
constexpr std::array<ProductPrefix, 17> kPrefixes = {{
    {"docker/", ClientFamily::docker},              // moby dockerversion/useragent.go
    {"buildkit/", ClientFamily::buildkit},          // moby/buildkit version/version.go UserAgent()
    {"containerd/", ClientFamily::containerd},      // containerd remotes/docker/resolver.go default
    {"containers/", ClientFamily::containers_image},  // containers/image defaultUserAgent (podman)
    {"skopeo/", ClientFamily::containers_image},
    {"buildah/", ClientFamily::containers_image},
    {"podman/", ClientFamily::containers_image},
    {"cri-o/", ClientFamily::containers_image},     // cri-o server/useragent
    {"go-containerregistry/", ClientFamily::go_containerregistry},  // ggcr's own default
    {"crane/", ClientFamily::go_containerregistry},
    {"gcrane/", ClientFamily::go_containerregistry},
    {"ko/", ClientFamily::go_containerregistry},
    {"kaniko/", ClientFamily::go_containerregistry},  // kaniko replaces ggcr's product with its own
    {"helm/", ClientFamily::helm},                  // helm internal/version GetUserAgent: "Helm/<v>"
    {"oras/", ClientFamily::oras},                  // oras CLI
    {"oras-", ClientFamily::oras},                  // oras-go's default "oras-go", oras-dotnet, ...
    {"curl/", ClientFamily::curl},
}};

constexpr std::array<std::string_view, kClientFamilyCount> kNames = {
    "docker", "buildkit", "containerd", "containers-image", "go-containerregistry", "helm", "oras", "curl", "other",
};

}  // namespace

std::string_view client_family_name(ClientFamily family) {
  auto index = static_cast<std::size_t>(family);
  return index < kNames.size() ? kNames[index] : "other";
}

ClientFamily classify_user_agent(std::string_view user_agent) {
  user_agent = ascii_trim(user_agent.substr(0, kMaxUserAgentScan));
  // dockerd names the CLI behind it in UpstreamClient(...) at the end; the
  // daemon is what talks to the registry, so that is docker whatever
  // products come first (moby insertUpstreamUserAgent).
  if (user_agent.find("UpstreamClient(") != std::string_view::npos) return ClientFamily::docker;
  for (const auto& known : kPrefixes)
    if (ascii_istarts_with(user_agent, known.prefix)) return known.family;
  // Programs built on go-containerregistry keep its product after their own
  // (crane, ko, cosign: "<tool>/<v> go-containerregistry/<v>").
  if (user_agent.find(" go-containerregistry/") != std::string_view::npos) return ClientFamily::go_containerregistry;
  return ClientFamily::other;
}

}  // namespace regmeter
