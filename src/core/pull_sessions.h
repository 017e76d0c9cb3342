// Whole image pulls as the registry sees them: a GET of a manifest or index
// answered 200 starts a pull, which covers the GETs of what it lists (for an
// index, the child manifest the client then fetches and that one's blobs)
// made by the same client (address and User-Agent) on the same repository.
// A pull ends `complete` when every listed blob was fetched, `redirected`
// when blob GETs were answered with a redirect to object storage (the bytes
// then never pass through here), or `partial` when nothing more of it is
// fetched for `idle` (the client had the rest cached) or the table needs its
// room. Pure: no I/O, no clock reads (every time is a parameter), not
// thread-safe (requests of one pull arrive on several connections, so on
// several event-loop threads: share one table behind a mutex; it is touched
// a few times per manifest and blob, not per byte).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/manifest.h"

namespace regmeter {

using PullClock = std::chrono::steady_clock;
using PullTime = PullClock::time_point;

// Who pulls what. The client address is the one metrics use for the client
// (the forwarded one with --trust-forwarded-headers), without the port:
// clients open several connections for one pull.
struct PullKey {
  std::string_view client_address;
  std::string_view user_agent;
  std::string_view repository;
};

enum class PullOutcome : std::uint8_t { complete, partial, redirected };
inline constexpr std::size_t kPullOutcomeCount = 3;
std::string_view pull_outcome_name(PullOutcome outcome);  // "complete", "partial", "redirected"

struct EndedPull {
  PullOutcome outcome = PullOutcome::partial;
  double seconds = 0;         // first manifest request's start → last blob byte delivered (or last answer)
  std::uint64_t bytes = 0;    // blob body bytes delivered through the proxy
  std::size_t blobs_listed = 0;
  std::size_t blobs_fetched = 0;     // delivered in full
  std::size_t blobs_redirected = 0;  // answered with a redirect
};

enum class BlobRequest : std::uint8_t { get, head };

struct PullSessionOptions {
  std::size_t max_sessions = 10000;  // --max-pull-sessions; 0 turns pull tracking off
  PullClock::duration idle = std::chrono::seconds(10);  // --pull-session-idle
  // Blobs and child manifests tracked over all pulls, on average this many
  // per pull allowed (a pull itself may list up to kMaxItemsPerPull): bounds
  // memory at about max_sessions × (this × 32 bytes + key) whatever clients send.
  std::size_t average_items_per_pull = 32;
};

class PullSessions {
 public:
  // The most blobs plus child manifests one pull tracks; a pull that lists
  // more is followed for the first ones and can only end `partial`.
  static constexpr std::size_t kMaxItemsPerPull = 256;
  // The most concurrent pulls of one key (say, two tags of one repository
  // pulled at once by one node); a further one ends the key's oldest.
  static constexpr std::size_t kMaxPullsPerKey = 8;
  // User-Agent bytes that count toward the key.
  static constexpr std::size_t kMaxUserAgentKeyBytes = 256;

  explicit PullSessions(PullSessionOptions options = {});
  PullSessions(const PullSessions&) = delete;
  PullSessions& operator=(const PullSessions&) = delete;

  // A manifest GET answered 200 whose body parsed. `reference` is the tag or
  // digest of the request URL, `content_digest` the answer's
  // Docker-Content-Digest (empty when it had none). A manifest an active pull
  // of this key lists (an index's child) joins that pull; any other starts a
  // new one. Returns the pulls it had to end to make room (as `partial`).
  std::vector<EndedPull> on_manifest(const PullKey& key, std::string_view reference,
                                     std::string_view content_digest, const Manifest& manifest, PullTime start,
                                     PullTime end);

  // A blob request answered. Counts toward the pull of this key that lists
  // the digest: 200 and 206 (Range GETs of one blob add up) deliver `bytes`;
  // 302/303/307/308 are redirects to storage. HEADs and other statuses are
  // ignored. Returns the pull this completed, if it did.
  std::optional<EndedPull> on_blob(const PullKey& key, std::string_view digest, BlobRequest request, int status,
                                   std::uint64_t bytes, PullTime start, PullTime end);

  // Ends the pulls with no activity for `idle` as of `now`.
  std::vector<EndedPull> expire(PullTime now);

  std::size_t size() const { return pulls_.size(); }
  std::size_t tracked_items() const { return items_; }

 private:
  static constexpr std::uint64_t kUnknownSize = ~std::uint64_t{0};

  // One blob or manifest a pull lists, by its digest's fingerprint.
  struct Item {
    enum class Kind : std::uint8_t { blob, manifest };
    enum class State : std::uint8_t { pending, fetched, redirected };
    std::uint64_t fingerprint = 0;
    std::uint64_t size = kUnknownSize;  // blobs: from the manifest's descriptor
    std::uint64_t delivered = 0;        // blobs: body bytes of 200/206 answers so far
    Kind kind = Kind::blob;
    State state = State::pending;  // manifests: `fetched` once its own listing was added
  };

  struct Pull {
    std::string key;
    PullTime started;        // the first manifest request's start
    PullTime last_activity;  // end of its latest request: what `idle` counts from
    PullTime last_delivery;  // end of its latest manifest answer or blob body
    std::uint64_t bytes = 0;
    std::vector<Item> items;
    std::size_t blobs_listed = 0;
    std::size_t blobs_fetched = 0;
    std::size_t blobs_redirected = 0;
    bool overflowed = false;  // listed more than it could track: never `complete`
  };
  using PullList = std::list<Pull>;
  struct Match {
    PullList::iterator pull;
    std::size_t item;  // index into pull->items
  };

  void make_key(const PullKey& key);  // into key_
  std::optional<Match> find_item(std::uint64_t fingerprint, bool manifest);  // among key_'s pulls
  void add_listing(PullList::iterator pull, const Manifest& manifest, std::vector<EndedPull>& ended);
  void add_item(PullList::iterator pull, const Item& item, std::vector<EndedPull>& ended);
  void touch(PullList::iterator pull, PullTime end);
  EndedPull end_pull(PullList::iterator pull, PullOutcome outcome);

  PullSessionOptions options_;
  std::size_t max_items_;
  std::size_t items_ = 0;
  PullList pulls_;  // least recently active first
  std::unordered_multimap<std::string_view, PullList::iterator> by_key_;  // views into Pull::key
  std::string key_;  // the current call's key, reused to save an allocation per call
};

}  // namespace regmeter
