// The Engine: checks the graph as Poplar's compiler would, then runs programs as BSP supersteps
// on the modelled tiles and counts cycles (docs/POPLAR.md, "Cycle model").
#ifndef POPLAR_ENGINE_HPP
#define POPLAR_ENGINE_HPP

#include <map>
#include <memory>
#include <ostream>
#include <string>

#include <poplar/Device.hpp>
#include <poplar/Graph.hpp>
#include <poplar/OptionFlags.hpp>
#include <poplar/Program.hpp>

namespace poplar {

namespace model {
struct EngineState;
} // namespace model

class Engine {
public:
  Engine(Graph &graph, const program::Program &prog, const OptionFlags &options = {});
  ~Engine();
  void load(Device &device);
  void connectStream(const std::string &handle, void *p);
  void run(unsigned prog = 0);
  void printProfileSummary(std::ostream &out, const OptionFlags &options = {}) const;

private:
  std::unique_ptr<model::EngineState> state_;
};

} // namespace poplar

#endif
