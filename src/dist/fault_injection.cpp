#include "dml/dist/fault_injection.h"

#include <chrono>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dml/util/error.h"
#include "dml/util/log.h"

namespace dml::fault_injection {
namespace {

struct Fault {
  std::string kind;
  int64_t rank = -1, step = -1;
  double seconds = 0;
};

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) parts.push_back(part);
  return parts;
}

std::vector<Fault> parse(const std::string& value) {
  std::vector<Fault> faults;
  for (const std::string& item : split(value, ';')) {
    if (item.empty()) continue;
    const std::vector<std::string> fields = split(item, ':');
    Fault f;
    f.kind = fields[0];
    check(f.kind == "sleep" || f.kind == "read_error" || f.kind == "nan_loss", "DML_FAULT_INJECT: unknown fault '",
          f.kind, "' in '", item, "'; use sleep, read_error or nan_loss");
    for (size_t i = 1; i < fields.size(); ++i) {
      const size_t eq = fields[i].find('=');
      check(eq != std::string::npos, "DML_FAULT_INJECT: '", fields[i], "' in '", item, "' is not key=value");
      const std::string key = fields[i].substr(0, eq), text = fields[i].substr(eq + 1);
      try {
        if (key == "rank") {
          f.rank = std::stoll(text);
        } else if (key == "step") {
          f.step = std::stoll(text);
        } else if (key == "seconds") {
          f.seconds = std::stod(text);
        } else {
          throw Error(str("DML_FAULT_INJECT: unknown key '", key, "' in '", item, "'; use rank, step, seconds"));
        }
      } catch (const std::logic_error&) {
        throw Error(str("DML_FAULT_INJECT: '", text, "' is not a number in '", item, "'"));
      }
    }
    check(f.rank >= 0 && f.step >= 0, "DML_FAULT_INJECT: '", item, "' needs rank=R and step=S");
    faults.push_back(f);
  }
  return faults;
}

const std::vector<Fault>& configured() {
  static const std::vector<Fault> faults = [] {
    const char* value = std::getenv("DML_FAULT_INJECT");
    return value ? parse(value) : std::vector<Fault>{};
  }();
  return faults;
}

}  // namespace

void before_train_read(int rank, uint64_t step) {
  for (const Fault& f : configured()) {
    if (f.rank != rank || f.step != static_cast<int64_t>(step) || f.kind == "nan_loss") continue;
    if (f.kind == "sleep") {
      log::warn("fault", str("DML_FAULT_INJECT: rank ", rank, " sleeps ", f.seconds, " s before step ", step));
      std::this_thread::sleep_for(std::chrono::duration<double>(f.seconds));
    } else {
      throw Error(str("train loader: reading the batch of step ", step, " failed: injected read error ",
                      "(DML_FAULT_INJECT, as a corrupt shard would)"));
    }
  }
}

bool nan_loss(int rank, uint64_t step) {
  for (const Fault& f : configured()) {
    if (f.kind == "nan_loss" && f.rank == rank && f.step == static_cast<int64_t>(step)) {
      log::warn("fault", str("DML_FAULT_INJECT: rank ", rank, "'s loss of step ", step + 1, " is NaN"));
      return true;
    }
  }
  return false;
}

}  // namespace dml::fault_injection
