#include "server/log.h"

#include <atomic>
#include <cstdio>
#include <string>

#include "absl/base/const_init.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace convnet::server {
namespace {

ABSL_CONST_INIT absl::Mutex log_mu(absl::kConstInit);
std::atomic<bool> info_enabled{true};

void Write(char severity, absl::string_view message) {
  const std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(), absl::UTCTimeZone()),
                   " ", std::string(1, severity), " convnet_server] ", message, "\n");
  absl::MutexLock lock(&log_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

void LogInfo(absl::string_view message) {
  if (info_enabled.load(std::memory_order_relaxed)) Write('I', message);
}
void LogWarning(absl::string_view message) { Write('W', message); }
void LogError(absl::string_view message) { Write('E', message); }

void SetInfoLoggingEnabled(bool enabled) { info_enabled.store(enabled, std::memory_order_relaxed); }

}  // namespace convnet::server
