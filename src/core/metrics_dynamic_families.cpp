// The families whose series are made as they are seen: merging shards and
// rendering as prometheus-cpp MetricFamily values, with the exemplars of each
// series beside them (metrics_exposition.h). Families with a fixed array of
// series render from their declarations (DeclaredFamily::render).
#include "core/metrics_dynamic_families.h"

#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace regmeter {

void CodeCounters::add(const CodeCounters& other) {
  for (const auto& row : other.rows_)
    for (std::size_t s = 0; s < row.counts.size(); ++s) {
      if (row.counts[s] == 0) continue;
      Row& mine = row_of(row.code);
      mine.counts[s] += row.counts[s];
      keep_latest(mine.exemplars[s], row.exemplars[s]);
    }
}

void RepositoryCounters::add(const RepositoryCounters& other) {
  pushes += other.pushes;
  pulls += other.pulls;
  redirects += other.redirects;
  keep_latest(push_exemplar, other.push_exemplar);
  keep_latest(pull_exemplar, other.pull_exemplar);
  for (std::size_t d = 0; d < kDirectionCount; ++d) {
    bytes[d] += other.bytes[d];
    keep_latest(byte_exemplars[d], other.byte_exemplars[d]);
  }
  seen |= other.seen;
}

void render_requests(const CodeCounters& requests, std::vector<CollectedFamily>& out) {
  const auto& d = families::kRequests;
  auto f = declared_family(d);
  for (const auto& row : requests.rows()) {
    auto code = std::to_string(row.code);
    for (std::size_t s = 0; s < row.counts.size(); ++s) {
      if (row.counts[s] == 0) continue;
      auto [handler, method] = HandlerMethodSpace::values(s);
      add_counter(f, labels_of(d, std::array<std::string_view, 3>{code, handler, method}),
                  static_cast<double>(row.counts[s]), &row.exemplars[s]);
    }
  }
  append_family(std::move(f), out);
}

void render_repositories(const std::vector<RepositoryCounters>& repositories, const RepositoryLabels& repository_labels,
                         std::vector<CollectedFamily>& out) {
  auto pushes = declared_family(families::kImagePushes);
  auto pulls = declared_family(families::kImagePulls);
  auto redirects = declared_family(families::kBlobRedirects);
  auto blob_bytes = declared_family(families::kBlobBytes);
  for (std::size_t slot = 0; slot < repositories.size(); ++slot) {
    const auto& repo = repositories[slot];
    if (repo.seen == 0) continue;
    std::vector<Label> repo_label;
    if (repository_labels.labelled) {
      auto name = repository_labels.name_of(slot);
      if (!name) continue;
      repo_label.push_back(label(families::kImagePushes.labels[0], *name));
    }
    auto counter = [&](CollectedFamily& f, std::vector<Label> labels, std::uint64_t value, const Exemplar* ex) {
      add_counter(f, std::move(labels), static_cast<double>(value), ex);
    };
    if (repo.seen & RepositoryCounters::kPush) counter(pushes, repo_label, repo.pushes, &repo.push_exemplar);
    if (repo.seen & RepositoryCounters::kPull) counter(pulls, repo_label, repo.pulls, &repo.pull_exemplar);
    if (repo.seen & RepositoryCounters::kRedirect) counter(redirects, repo_label, repo.redirects, nullptr);
    for (std::size_t d = 0; d < kDirectionCount; ++d) {
      auto bit = d == 0 ? RepositoryCounters::kUpload : RepositoryCounters::kDownload;
      if (!(repo.seen & bit)) continue;
      auto labels = repo_label;
      labels.insert(labels.begin(), label(families::kBlobBytes.labels[0], direction_name(d)));  // declared order
      counter(blob_bytes, std::move(labels), repo.bytes[d], &repo.byte_exemplars[d]);
    }
  }
  for (auto* f : {&pushes, &pulls, &redirects, &blob_bytes}) append_family(std::move(*f), out);
}


}  // namespace regmeter
