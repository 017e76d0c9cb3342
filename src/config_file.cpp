#include <stdexcept>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "regmeter/config.h"

namespace regmeter {

std::vector<ConfigEntry> load_config_file(const std::string& path) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw std::invalid_argument("cannot read the file");
  } catch (const YAML::Exception& e) {
    throw std::invalid_argument(fmt::format("line {}: {}", e.mark.line + 1, e.msg));
  }
  std::vector<ConfigEntry> entries;
  if (root.IsNull()) return entries;  // an empty file configures nothing
  if (!root.IsMap()) throw std::invalid_argument("must be a mapping of option names to values");
  for (const auto& item : root) {
    auto line = item.first.Mark().line + 1;
    if (!item.first.IsScalar()) throw std::invalid_argument(fmt::format("line {}: a key must be a plain name", line));
    std::string key = item.first.as<std::string>();
    if (!item.second.IsScalar())
      throw std::invalid_argument(fmt::format("line {}: key '{}' needs a single value (not a list or mapping)", line, key));
    for (const auto& earlier : entries)
      if (earlier.key == key) throw std::invalid_argument(fmt::format("line {}: key '{}' given twice", line, key));
    entries.push_back({key, item.second.as<std::string>()});
  }
  return entries;
}

}  // namespace regmeter
