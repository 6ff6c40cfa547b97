#ifndef POPLAR_OPTIONFLAGS_HPP
#define POPLAR_OPTIONFLAGS_HPP

#include <initializer_list>
#include <map>
#include <string>
#include <utility>

namespace poplar {

class OptionFlags {
public:
  OptionFlags() = default;
  OptionFlags(std::initializer_list<std::pair<const std::string, std::string>> l) : flags_(l) {}
  void set(const std::string &k, const std::string &v) { flags_[k] = v; }

private:
  std::map<std::string, std::string> flags_;
};

} // namespace poplar

#endif
