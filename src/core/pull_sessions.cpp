#include "core/pull_sessions.h"

#include <algorithm>

namespace regmeter {

namespace {


std::optional<std::uint64_t> fingerprint_of(std::string_view digest) {
  auto parsed = Digest::parse(digest);
  if (!parsed) return std::nullopt;
  return parsed->fingerprint();
}

bool is_redirect(int status) { return status == 302 || status == 303 || status == 307 || status == 308; }

double seconds_between(PullTime from, PullTime to) {
  return to > from ? std::chrono::duration<double>(to - from).count() : 0.0;
}

}  // namespace

std::string_view pull_outcome_name(PullOutcome outcome) {
  switch (outcome) {
    case PullOutcome::complete: return "complete";
    case PullOutcome::partial: return "partial";
    case PullOutcome::redirected: return "redirected";
  }
  return "partial";
}

PullSessions::PullSessions(PullSessionOptions options)
    : options_(options),
      max_items_(std::max(options.max_sessions * options.average_items_per_pull, kMaxItemsPerPull)) {}

void PullSessions::make_key(const PullKey& key) {
  // Length-prefixed parts, so no byte of one part can pass for a separator.
  auto append = [this](std::string_view part) {
    std::size_t length = std::min<std::size_t>(part.size(), 0xffff);
    key_.push_back(static_cast<char>(length >> 8));
    key_.push_back(static_cast<char>(length & 0xff));
    key_.append(part.substr(0, length));
  };
  key_.clear();
  append(key.client_address);
  append(key.user_agent.substr(0, kMaxUserAgentKeyBytes));
  append(key.repository);
}

std::optional<PullSessions::Match> PullSessions::find_item(std::uint64_t fingerprint, bool manifest) {
  // Two pulls of one key may list the same blob: the oldest one still
  // waiting for it gets it; failing that, the oldest that lists it.
  auto kind = manifest ? Item::Kind::manifest : Item::Kind::blob;
  std::optional<Match> pending, any;
  auto older = [](const std::optional<Match>& best, PullList::iterator candidate) {
    return !best || candidate->started < best->pull->started;
  };
  auto [first, last] = by_key_.equal_range(key_);
  for (auto entry = first; entry != last; ++entry) {
    const auto& items = entry->second->items;
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].fingerprint != fingerprint || items[i].kind != kind) continue;
      if (items[i].state == Item::State::pending && older(pending, entry->second)) pending = Match{entry->second, i};
      if (older(any, entry->second)) any = Match{entry->second, i};
      break;  // an item is listed once per pull
    }
  }
  return pending ? pending : any;
}

std::vector<EndedPull> PullSessions::on_manifest(const PullKey& key, std::string_view reference,
                                                 std::string_view content_digest, const Manifest& manifest,
                                                 PullTime start, PullTime end) {
  std::vector<EndedPull> ended;
  if (options_.max_sessions == 0) return ended;
  make_key(key);
  auto by_content = fingerprint_of(content_digest);
  auto by_reference = fingerprint_of(reference);

  // A manifest an active pull lists: an index's child, or the root again by digest.
  for (auto fingerprint : {by_content, by_reference}) {
    if (!fingerprint) continue;
    auto match = find_item(*fingerprint, true);
    if (!match) continue;
    touch(match->pull, end);
    match->pull->last_delivery = std::max(match->pull->last_delivery, end);
    Item& item = match->pull->items[match->item];
    if (item.state == Item::State::pending) {
      item.state = Item::State::fetched;
      add_listing(match->pull, manifest, ended);
    }
    return ended;
  }

  // A new pull: make room first.
  if (by_key_.count(key_) >= kMaxPullsPerKey) {
    auto [first, last] = by_key_.equal_range(key_);
    auto oldest = std::min_element(first, last, [](const auto& a, const auto& b) {
      return a.second->last_activity < b.second->last_activity;
    });
    ended.push_back(end_pull(oldest->second, PullOutcome::partial));
  } else if (pulls_.size() >= options_.max_sessions) {
    ended.push_back(end_pull(pulls_.begin(), PullOutcome::partial));
  }
  Pull& pull = pulls_.emplace_back();
  pull.key = key_;
  pull.started = start;
  pull.last_activity = end;
  pull.last_delivery = end;
  auto position = std::prev(pulls_.end());
  by_key_.emplace(std::string_view(pull.key), position);
  if (auto own = by_content ? by_content : by_reference) {
    Item root;
    root.fingerprint = *own;
    root.kind = Item::Kind::manifest;
    root.state = Item::State::fetched;
    add_item(position, root, ended);
  }
  add_listing(position, manifest, ended);
  return ended;
}

std::optional<EndedPull> PullSessions::on_blob(const PullKey& key, std::string_view digest, BlobRequest request,
                                               int status, std::uint64_t bytes, PullTime /*start*/, PullTime end) {
  // A HEAD only asks whether the blob exists; it never delivers one.
  if (request == BlobRequest::head || pulls_.empty()) return std::nullopt;
  bool delivery = status == 200 || status == 206;
  if (!delivery && !is_redirect(status)) return std::nullopt;
  auto fingerprint = fingerprint_of(digest);
  if (!fingerprint) return std::nullopt;
  make_key(key);
  auto match = find_item(*fingerprint, false);
  if (!match) return std::nullopt;
  Pull& pull = *match->pull;
  Item& item = pull.items[match->item];

  if (delivery) {
    item.delivered += bytes;
    pull.bytes += bytes;
    // Range GETs (206) of one blob add up to it; without a size from the
    // manifest (schema1) only a whole 200 answer can complete it.
    bool whole = item.size != kUnknownSize ? item.delivered >= item.size : status == 200;
    if (item.state == Item::State::pending && whole) {
      item.state = Item::State::fetched;
      ++pull.blobs_fetched;
    }
  } else if (item.state == Item::State::pending) {
    item.state = Item::State::redirected;
    ++pull.blobs_redirected;
  }
  pull.last_delivery = std::max(pull.last_delivery, end);
  touch(match->pull, end);

  bool all_done = pull.blobs_fetched + pull.blobs_redirected == pull.blobs_listed;
  if (pull.overflowed || pull.blobs_listed == 0 || !all_done) return std::nullopt;
  return end_pull(match->pull, pull.blobs_redirected > 0 ? PullOutcome::redirected : PullOutcome::complete);
}

std::vector<EndedPull> PullSessions::expire(PullTime now) {
  std::vector<EndedPull> ended;
  // Least recently active first, so the scan stops at the first live one.
  while (!pulls_.empty() && pulls_.front().last_activity + options_.idle <= now) {
    auto outcome = pulls_.front().blobs_redirected > 0 ? PullOutcome::redirected : PullOutcome::partial;
    ended.push_back(end_pull(pulls_.begin(), outcome));
  }
  return ended;
}

void PullSessions::add_listing(PullList::iterator pull, const Manifest& manifest, std::vector<EndedPull>& ended) {
  auto add_blob = [&](const BlobReference& blob) {
    Item item;
    item.fingerprint = blob.digest.fingerprint();
    item.size = blob.size.value_or(kUnknownSize);
    add_item(pull, item, ended);
  };
  if (manifest.config) add_blob(*manifest.config);
  for (const auto& layer : manifest.layers) add_blob(layer);
  for (const auto& child : manifest.manifests) {
    Item item;
    item.fingerprint = child.digest.fingerprint();
    item.kind = Item::Kind::manifest;
    add_item(pull, item, ended);
  }
}

void PullSessions::add_item(PullList::iterator pull, const Item& item, std::vector<EndedPull>& ended) {
  // schema1 lists the empty layer many times; a blob is fetched once.
  for (const Item& existing : pull->items)
    if (existing.fingerprint == item.fingerprint && existing.kind == item.kind) return;
  if (pull->items.size() >= kMaxItemsPerPull) {
    pull->overflowed = true;
    return;
  }
  // Over the budget for all pulls: the least recently active make room (never
  // this one: it has just been touched, so it is not first unless alone).
  while (items_ >= max_items_ && pulls_.begin() != pull) ended.push_back(end_pull(pulls_.begin(), PullOutcome::partial));
  if (items_ >= max_items_) {
    pull->overflowed = true;
    return;
  }
  pull->items.push_back(item);
  ++items_;
  if (item.kind == Item::Kind::blob) ++pull->blobs_listed;
}

void PullSessions::touch(PullList::iterator pull, PullTime end) {
  pull->last_activity = std::max(pull->last_activity, end);
  pulls_.splice(pulls_.end(), pulls_, pull);
}

EndedPull PullSessions::end_pull(PullList::iterator pull, PullOutcome outcome) {
  EndedPull summary;
  summary.outcome = outcome;
  summary.seconds = seconds_between(pull->started, pull->last_delivery);
  summary.bytes = pull->bytes;
  summary.blobs_listed = pull->blobs_listed;
  summary.blobs_fetched = pull->blobs_fetched;
  summary.blobs_redirected = pull->blobs_redirected;
  auto [first, last] = by_key_.equal_range(std::string_view(pull->key));
  for (auto entry = first; entry != last; ++entry) {
    if (entry->second == pull) {
      by_key_.erase(entry);
      break;
    }
  }
  items_ -= pull->items.size();
  pulls_.erase(pull);
  return summary;
}

}  // namespace regmeter
