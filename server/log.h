// A minimal line logger for the server (Abseil 20220623 ships no public
// logging library). Each call writes one complete line to stderr:
//   2024-05-01T12:00:00.123Z I server] listening on 0.0.0.0:50051
// Lines from concurrent threads never interleave.
#ifndef CONVNET_SERVER_LOG_H_
#define CONVNET_SERVER_LOG_H_

#include "absl/strings/string_view.h"

namespace convnet::server {

void LogInfo(absl::string_view message);
void LogWarning(absl::string_view message);
void LogError(absl::string_view message);

// Silences LogInfo (warnings and errors are always written). Tests use it to
// keep their output short; the server binary never calls it.
void SetInfoLoggingEnabled(bool enabled);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_LOG_H_
