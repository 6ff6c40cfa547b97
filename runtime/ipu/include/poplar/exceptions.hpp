// Errors the model raises, with the SDK's class names.
#ifndef POPLAR_EXCEPTIONS_HPP
#define POPLAR_EXCEPTIONS_HPP

#include <stdexcept>
#include <string>

namespace poplar {

struct poplar_error : std::runtime_error {
  explicit poplar_error(const std::string &m) : std::runtime_error(m) {}
};
struct graph_connection_error : poplar_error {
  explicit graph_connection_error(const std::string &m) : poplar_error(m) {}
};
struct invalid_tile_mapping : poplar_error {
  explicit invalid_tile_mapping(const std::string &m) : poplar_error(m) {}
};
struct graph_memory_allocation_error : poplar_error {
  explicit graph_memory_allocation_error(const std::string &m) : poplar_error(m) {}
};
struct stream_connection_error : poplar_error {
  explicit stream_connection_error(const std::string &m) : poplar_error(m) {}
};
// Two vertices of one compute set write the same elements, or one reads what another writes.
struct compute_set_race_error : poplar_error {
  explicit compute_set_race_error(const std::string &m) : poplar_error(m) {}
};

} // namespace poplar

#endif
