// The subcommands of convnet_client. Each lives in its own commands_*.cc and
// is registered in AllCommands(); adding one (e.g. a load generator) means a
// new file and one line in commands.cc.
#ifndef CONVNET_CLIENT_COMMANDS_H_
#define CONVNET_CLIENT_COMMANDS_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/connection.h"

namespace convnet::client {

// The positional arguments after the subcommand's name (flags removed).
using Arguments = std::vector<std::string>;

struct Command {
  const char* name;
  // One line: the arguments and the flags that matter, e.g. "job ID [--json]".
  const char* synopsis;
  // What it does and prints, and its flags; shown by `convnet_client help NAME`.
  const char* help;
  // Runs the command against `connection`; returns the exit status
  // (client/exit_codes.h).
  int (*run)(Connection& connection, const Arguments& arguments);
};

// Every subcommand, in the order `convnet_client help` lists them.
absl::Span<const Command> AllCommands();

// The subcommands, defined in their own files.
int RunPredict(Connection& connection, const Arguments& arguments);
int RunTrain(Connection& connection, const Arguments& arguments);
int RunWatch(Connection& connection, const Arguments& arguments);
int RunJobs(Connection& connection, const Arguments& arguments);
int RunJob(Connection& connection, const Arguments& arguments);
int RunCancel(Connection& connection, const Arguments& arguments);
int RunGradients(Connection& connection, const Arguments& arguments);
int RunModels(Connection& connection, const Arguments& arguments);
int RunModel(Connection& connection, const Arguments& arguments);
int RunHealth(Connection& connection, const Arguments& arguments);
int RunStats(Connection& connection, const Arguments& arguments);
int RunBench(Connection& connection, const Arguments& arguments);

// Prints "error: <message>" and the command's synopsis to stderr; returns
// kExitUsage.
int UsageError(absl::string_view command, absl::string_view message);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_COMMANDS_H_
