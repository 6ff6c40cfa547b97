// Control programs: Sequence, Execute (one compute set: a BSP superstep) and Copy.
#ifndef POPLAR_PROGRAM_HPP
#define POPLAR_PROGRAM_HPP

#include <initializer_list>
#include <memory>
#include <vector>

#include <poplar/DataStream.hpp>
#include <poplar/Graph.hpp>
#include <poplar/Tensor.hpp>

namespace poplar {
namespace program {

class Program;

// What a program does, for the Engine (model internals, not Poplar API).
struct Step {
  enum Kind { SEQUENCE, EXECUTE, COPY_TO_DEVICE, COPY_TO_HOST, COPY } kind = SEQUENCE;
  std::vector<Program> children;
  int computeSet = -1;
  DataStream stream;
  Tensor src, dst;
};

class Program {
public:
  Program() : step_(std::make_shared<Step>()) {}
  const Step &step() const { return *step_; }

protected:
  std::shared_ptr<Step> step_;
};

class Sequence : public Program {
public:
  Sequence() = default;
  Sequence(std::initializer_list<Program> programs) {
    for (const auto &p : programs) add(p);
  }
  void add(const Program &p) { step_->children.push_back(p); }
};

class Execute : public Program {
public:
  explicit Execute(ComputeSet cs) {
    step_->kind = Step::EXECUTE;
    step_->computeSet = cs.getId();
  }
};

class Copy : public Program {
public:
  Copy(const DataStream &stream, const Tensor &dst);
  Copy(const Tensor &src, const DataStream &stream);
  Copy(const Tensor &src, const Tensor &dst);
};

} // namespace program
} // namespace poplar

#endif
