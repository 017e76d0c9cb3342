// The bound on the `repository` label: a process-wide table of the first N
// names seen (each a stable slot; the rest share the `__other__` slot), and
// each shard's cache of the slots it has used, so the table's mutex is taken
// only the first time a shard meets a name, and never again once the table
// is full and the shard has copied it. Private to the metrics.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace regmeter {

inline constexpr std::string_view kOtherRepository = "__other__";
inline constexpr std::uint32_t kOtherSlot = 0;  // named repositories get slots 1..N

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
using SlotMap = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;

// Process-wide: the first `max` distinct names seen, in order, each with a
// stable slot. Names are never removed, so a slot, once handed out, means the
// same repository for the life of the process.
class RepositoryTable {
 public:
  explicit RepositoryTable(std::size_t max) : max_(max) {}

  bool labelled() const { return max_ != 0; }

  // The slot of `name`, assigned now if there is room. When the table is full
  // (after this call), copies every assignment into `cache` and sets
  // `complete`: the caller then never needs to ask again.
  std::uint32_t lookup(std::string_view name, SlotMap& cache, bool& complete) {
    std::lock_guard lock(mutex_);
    std::uint32_t slot = kOtherSlot;
    if (auto it = slots_.find(name); it != slots_.end()) {
      slot = it->second;
    } else if (names_.size() < max_) {
      names_.emplace_back(name);
      slot = static_cast<std::uint32_t>(names_.size());
      slots_.emplace(std::string(name), slot);
    }
    if (names_.size() >= max_) {
      cache.insert(slots_.begin(), slots_.end());
      complete = true;
    } else if (slot != kOtherSlot) {
      cache.emplace(std::string(name), slot);
    }
    return slot;
  }

  // Slot s > 0 is names()[s - 1].
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    return names_;
  }

 private:
  const std::size_t max_;
  mutable std::mutex mutex_;
  SlotMap slots_;
  std::vector<std::string> names_;
};

// Per shard, used only by its worker thread (under the shard's mutex): the
// slots this shard has already looked up. At most `max` entries: names that
// fall into `__other__` are not cached, and once the table is full the cache
// holds all of it, so a miss is `__other__` without asking.
struct RepositoryCache {
  explicit RepositoryCache(std::shared_ptr<RepositoryTable> t) : table(std::move(t)) {}

  std::shared_ptr<RepositoryTable> table;
  SlotMap known;
  bool complete = false;

  std::uint32_t slot_of(std::string_view name) {
    if (!table->labelled() || name.empty()) return kOtherSlot;
    if (auto it = known.find(name); it != known.end()) return it->second;
    if (complete) return kOtherSlot;
    return table->lookup(name, known, complete);
  }
};

// What a scrape needs to name repository slots.
struct RepositoryLabels {
  bool labelled = true;
  std::vector<std::string> names;  // slot s > 0 is names[s - 1]

  // Empty when the slot has no name yet (cannot happen when the names were
  // read after the shards were merged).
  std::optional<std::string_view> name_of(std::size_t slot) const {
    if (slot == kOtherSlot) return kOtherRepository;
    if (slot - 1 < names.size()) return names[slot - 1];
    return std::nullopt;
  }
};

}  // namespace regmeter
