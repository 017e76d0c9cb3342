#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "core/config.h"

namespace regmeter {

namespace {

// Far more than any set of options needs; keeps `--config /dev/zero` (or a
// log file named by mistake) from being read without end.
constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

// Reads the file ourselves rather than through YAML::LoadFile, whose stream
// throws std::ios_failure for a directory instead of saying what is wrong.
std::string read_config_text(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) throw ConfigFileError(0, fmt::format("cannot read: {}", std::strerror(errno)));
  std::string text;
  char chunk[8192];
  // Bounded: every round appends up to a chunk, and stops past the size cap.
  while (text.size() <= kMaxConfigBytes) {
    std::size_t n = std::fread(chunk, 1, sizeof chunk, file);
    if (n == 0) break;
    text.append(chunk, n);
  }
  int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) throw ConfigFileError(0, fmt::format("cannot read: {}", std::strerror(error)));
  if (text.size() > kMaxConfigBytes)
    throw ConfigFileError(0, fmt::format("larger than {} bytes: not a config file", kMaxConfigBytes));
  return text;
}

int line_of(const YAML::Mark& mark) { return mark.is_null() ? 0 : mark.line + 1; }

}  // namespace

std::vector<ConfigEntry> load_config_file(const std::string& path) {
  std::string text = read_config_text(path);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw ConfigFileError(line_of(e.mark), fmt::format("not valid YAML: {}", e.msg));
  }
  std::vector<ConfigEntry> entries;
  if (root.IsNull()) return entries;  // an empty file (or only comments) configures nothing
  if (!root.IsMap()) throw ConfigFileError(line_of(root.Mark()), "must be a mapping of option names to values");
  for (const auto& item : root) {
    int line = line_of(item.first.Mark());
    if (!item.first.IsScalar()) throw ConfigFileError(line, "a key must be a plain name");
    std::string key = item.first.as<std::string>();
    if (item.second.IsNull()) throw ConfigFileError(line, fmt::format("key '{}' has no value", key));
    if (!item.second.IsScalar())
      throw ConfigFileError(line, fmt::format("key '{}' needs a single value (not a list or mapping)", key));
    for (const auto& earlier : entries)
      if (earlier.key == key)
        throw ConfigFileError(line, fmt::format("key '{}' given twice (first on line {})", key, earlier.line));
    entries.push_back({key, item.second.as<std::string>(), line});
  }
  return entries;
}

}  // namespace regmeter
