#include "server/crash_point.h"

#include <signal.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/log.h"

namespace convnet::server {
namespace {

struct ArmedPoint {
  std::string name;  // "" = no crash point (the normal case)
  int64_t hit = 1;   // crash at this hit of `name`
  std::atomic<int64_t> hits{0};
};

ArmedPoint* ReadArmedPoint() {
  auto* point = new ArmedPoint();
  const char* value = std::getenv(kCrashPointVariable);
  if (value == nullptr) return point;
  const std::string text = value;
  const size_t at = text.find('@');
  point->name = text.substr(0, at);
  if (at != std::string::npos && (!absl::SimpleAtoi(text.substr(at + 1), &point->hit) || point->hit < 1)) {
    LogWarning(absl::StrCat(kCrashPointVariable, "=", text, ": the count after '@' must be >= 1; using 1"));
    point->hit = 1;
  }
  return point;
}

}  // namespace

void CrashPoint(absl::string_view name) {
  static ArmedPoint* const armed = ReadArmedPoint();
  if (armed->name.empty() || armed->name != name) return;
  const int64_t hit = armed->hits.fetch_add(1) + 1;
  if (hit != armed->hit) return;
  LogWarning(absl::StrCat("test crash point ", name, " reached (hit ", hit, "): raising SIGKILL (",
                          kCrashPointVariable, ")"));
  raise(SIGKILL);
}

}  // namespace convnet::server
