// The client family of a User-Agent, for per-client metrics: a small closed
// set, so the label stays bounded whatever clients send. Pure, allocation-free,
// no regex: a few prefix comparisons on the first product token and two
// substring searches over a bounded prefix.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace regmeter {

enum class ClientFamily : std::uint8_t {
  docker,                // dockerd (its UA ends in UpstreamClient(<the CLI's UA>))
  buildkit,              // BuildKit, standalone or inside dockerd
  containerd,            // containerd, ctr, nerdctl, kubelet via containerd CRI, buildx imagetools
  containers_image,      // containers/image: podman, buildah, skopeo, CRI-O
  go_containerregistry,  // go-containerregistry: crane, ko, kaniko, cosign, ...
  helm,
  oras,                  // the oras CLI and the ORAS libraries' defaults
  curl,
  other,
};
inline constexpr std::size_t kClientFamilyCount = 9;

// The label value: "docker", "buildkit", "containerd", "containers-image",
// "go-containerregistry", "helm", "oras", "curl", "other".
std::string_view client_family_name(ClientFamily family);

// Only the first kMaxUserAgentScan bytes are looked at.
inline constexpr std::size_t kMaxUserAgentScan = 1024;
ClientFamily classify_user_agent(std::string_view user_agent);

}  // namespace regmeter
