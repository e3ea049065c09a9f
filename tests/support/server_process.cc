#include "tests/support/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

extern char** environ;

namespace convnet::testing {

namespace {

// The test's environment with `changes` applied, as "NAME=value" strings.
std::vector<std::string> ChildEnvironment(const EnvironmentChanges& changes) {
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const absl::string_view variable = *entry;
    if (!changes.contains(std::string(variable.substr(0, variable.find('='))))) environment.emplace_back(variable);
  }
  for (const auto& [name, value] : changes) {
    if (value.has_value()) environment.push_back(absl::StrCat(name, "=", *value));
  }
  return environment;
}

// The argv / envp form of `strings`: pointers into them, null-terminated.
std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  for (std::string& s : strings) pointers.push_back(s.data());
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(const std::string& binary,
                                                                    const std::vector<std::string>& flags,
                                                                    const std::string& log_path,
                                                                    const EnvironmentChanges& environment) {
  std::vector<std::string> args = {binary};
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv = NullTerminated(args);
  std::vector<std::string> variables = ChildEnvironment(environment);
  std::vector<char*> envp = NullTerminated(variables);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    return absl::InternalError(absl::StrCat("cannot start ", binary, ": ", std::strerror(rc)));
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, log_path));
}

ServerProcess::~ServerProcess() {
  if (!Reap()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, &wait_status_, 0);
  }
}

bool ServerProcess::Reap() {
  if (exited_) return true;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exited_ = true;
    wait_status_ = status;
  }
  return exited_;
}

absl::StatusOr<int> ServerProcess::WaitForPort(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string log = Log();
    const size_t at = log.find("(port ");
    if (at != std::string::npos) {
      const size_t end = log.find(')', at);
      int port = 0;
      if (end != std::string::npos && absl::SimpleAtoi(log.substr(at + 6, end - at - 6), &port) && port > 0) {
        return port;
      }
    }
    if (Reap()) {
      return absl::FailedPreconditionError(
          absl::StrCat("convnet_server (pid ", pid_, ") exited with wait status ", wait_status_,
                       " before logging its port; its log:\n", LogTail(20)));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError(absl::StrCat("convnet_server (pid ", pid_, ") did not log its port within ",
                                                  absl::FormatDuration(timeout), "; its log:\n", LogTail(20)));
}

absl::Status ServerProcess::Signal(int signal_number) {
  if (Reap()) return absl::FailedPreconditionError(absl::StrCat("pid ", pid_, " has already exited"));
  if (kill(pid_, signal_number) != 0) {
    return absl::InternalError(absl::StrCat("kill(", pid_, ", ", signal_number, "): ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ServerProcess::WaitForExit(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Reap()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("pid ", pid_, " still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return wait_status_;
}

absl::StatusOr<int64_t> ServerProcess::ResidentBytes() const {
  const std::string path = absl::StrCat("/proc/", pid_, "/status");
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    // "VmRSS:	   81234 kB"
    std::vector<std::string> fields = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    int64_t kib = 0;
    if (fields.size() == 3 && fields[2] == "kB" && absl::SimpleAtoi(fields[1], &kib)) return kib * 1024;
    return absl::InternalError(absl::StrCat("cannot parse '", line, "' in ", path));
  }
  // A zombie (exited, not yet reaped) has no VmRSS line.
  return absl::NotFoundError(absl::StrCat("no VmRSS line in ", path, " (the process has exited)"));
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string ServerProcess::LogTail(int lines) const {
  std::vector<std::string> all = absl::StrSplit(Log(), '\n');
  const size_t first = all.size() > static_cast<size_t>(lines) ? all.size() - lines : 0;
  return absl::StrJoin(all.begin() + first, all.end(), "\n");
}

}  // namespace convnet::testing
