// The real convnet_server binary in a child process, as the tests that run it
// as an operator would need it (the binary, crash-recovery and load tests):
// started with posix_spawn (stderr into a log file, environment variables
// added or removed), its port read from the start-up log, its resident memory
// read from /proc, stopped by a signal, and killed if a test forgets to.
#ifndef CONVNET_TESTS_SUPPORT_SERVER_PROCESS_H_
#define CONVNET_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace convnet::testing {

// Changes to the environment the child inherits from the test: each variable
// named is set to its value, or removed when the value is nullopt.
using EnvironmentChanges = std::map<std::string, std::optional<std::string>>;

class ServerProcess {
 public:
  // Starts `binary` with `flags` and the test's environment changed by
  // `environment`, its stderr (the server's log) going to `log_path`.
  // INTERNAL when posix_spawn fails.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(const std::string& binary,
                                                              const std::vector<std::string>& flags,
                                                              const std::string& log_path,
                                                              const EnvironmentChanges& environment = {});

  // Kills (SIGKILL) and reaps the process if it is still running, so that a
  // failing test never leaves a server behind.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Waits for the start-up line "listening on ... (port N)" and returns N.
  // FAILED_PRECONDITION when the process exits first (with the log's tail in
  // the message), DEADLINE_EXCEEDED after `timeout`.
  absl::StatusOr<int> WaitForPort(absl::Duration timeout);

  // Sends `signal_number`. FAILED_PRECONDITION when the process has already
  // exited, INTERNAL when kill() fails.
  absl::Status Signal(int signal_number);

  // Waits up to `timeout` for the process to exit and returns its raw wait
  // status (use WIFEXITED / WEXITSTATUS). DEADLINE_EXCEEDED when it is still
  // running after `timeout`; a zero `timeout` only looks.
  absl::StatusOr<int> WaitForExit(absl::Duration timeout);

  // VmRSS from /proc/<pid>/status, in bytes. NOT_FOUND once the process is
  // gone, INTERNAL when the line cannot be parsed.
  absl::StatusOr<int64_t> ResidentBytes() const;

  pid_t pid() const { return pid_; }
  // The whole log so far, and its last `lines` lines (for failure messages).
  std::string Log() const;
  std::string LogTail(int lines) const;

 private:
  ServerProcess(pid_t pid, std::string log_path) : pid_(pid), log_path_(std::move(log_path)) {}

  // Reaps the process without blocking; true once it has exited.
  bool Reap();

  pid_t pid_;
  std::string log_path_;
  bool exited_ = false;
  int wait_status_ = 0;
};

}  // namespace convnet::testing

#endif  // CONVNET_TESTS_SUPPORT_SERVER_PROCESS_H_
