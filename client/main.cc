// convnet_client: the command line client of convnet_server.
//   convnet_client COMMAND [ARGUMENTS] [--flags]
// main() checks the flags, picks the subcommand and hands it a connection;
// each subcommand lives in its own commands_*.cc.
#include <cctype>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/flags/parse.h"
#include "absl/flags/reflection.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "client/commands.h"
#include "client/connection.h"
#include "client/exit_codes.h"

namespace convnet::client {
namespace {

constexpr char kUsageHeader[] =
    "convnet_client: the command line client of convnet_server (gRPC).\n"
    "\n"
    "usage: convnet_client COMMAND [ARGUMENTS] [--flags]\n";

constexpr char kUsageFooter[] =
    "\n"
    "common flags:\n"
    "  --address=HOST:PORT  the server (default: $CONVNET_ADDRESS, else localhost:50051)\n"
    "  --timeout=DURATION   deadline of each call (default 30s)\n"
    "  --json               print the result as JSON\n"
    "\n"
    "security flags (docs/SECURITY.md):\n"
    "  --tls_ca=PEM         CA certificate(s) that verify the server; turns TLS on\n"
    "  --tls_cert=PEM --tls_key=PEM  client certificate and key for mutual TLS\n"
    "  --tls_server_name=NAME  name the server's certificate carries, if not --address's host\n"
    "  --auth_token_file=FILE  send \"authorization: Bearer <token>\" with every call\n"
    "\n"
    "exit status: 0 success; 1 the server refused the request (its gRPC code and message\n"
    "are printed) or is not SERVING; 2 usage error or unreadable input; 3 the server could\n"
    "not be reached or did not answer in time; 4 the training job failed or was cancelled.\n"
    "\n"
    "`convnet_client help COMMAND` explains a command; --helpfull lists every flag.\n";

void PrintUsage(FILE* out) {
  absl::FPrintF(out, "%s\ncommands:\n", kUsageHeader);
  for (const Command& command : AllCommands()) {
    absl::FPrintF(out, "  %s\n", command.synopsis);
  }
  absl::FPrintF(out, "%s", kUsageFooter);
}

// The flag names mentioned in a synopsis ("--name=..." or "--name"), in order.
std::vector<std::string> FlagsOf(absl::string_view synopsis) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (size_t at = synopsis.find("--"); at != absl::string_view::npos;
       at = synopsis.find("--", at + 2)) {
    size_t end = at + 2;
    while (end < synopsis.size() && (std::isalnum(static_cast<unsigned char>(synopsis[end])) ||
                                     synopsis[end] == '_')) {
      ++end;
    }
    std::string name(synopsis.substr(at + 2, end - at - 2));
    if (!name.empty() && seen.insert(name).second) names.push_back(name);
  }
  return names;
}

int PrintCommandHelp(absl::string_view name) {
  for (const Command& command : AllCommands()) {
    if (name != command.name) continue;
    absl::PrintF("usage: convnet_client %s\n\n%s\n", command.synopsis, command.help);
    std::vector<std::string> flags = FlagsOf(command.synopsis);
    if (!flags.empty()) absl::PrintF("\nflags:\n");
    for (const std::string& flag_name : flags) {
      const absl::CommandLineFlag* flag = absl::FindCommandLineFlag(flag_name);
      if (flag == nullptr) continue;
      absl::PrintF("  --%s (default \"%s\")\n      %s\n", flag_name, flag->DefaultValue(),
                   flag->Help());
    }
    absl::PrintF("%s", kUsageFooter);
    return kExitOk;
  }
  absl::FPrintF(stderr, "error: no command \"%s\"\n\n", name);
  PrintUsage(stderr);
  return kExitUsage;
}

// absl exits with status 1 on an unknown flag; checking first keeps usage
// errors at status 2 with a helpful message.
bool CheckFlagsExist(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    absl::string_view argument = argv[i];
    if (argument == "--") break;
    if (!absl::StartsWith(argument, "-") || argument == "-") continue;
    argument.remove_prefix(absl::StartsWith(argument, "--") ? 2 : 1);
    absl::string_view name = argument.substr(0, argument.find('='));
    if (absl::FindCommandLineFlag(name) != nullptr) continue;
    // Boolean flags may also be spelt --noNAME.
    if (absl::StartsWith(name, "no") && absl::FindCommandLineFlag(name.substr(2)) != nullptr) {
      continue;
    }
    absl::FPrintF(stderr, "error: unknown flag \"%s\" (`convnet_client help COMMAND` lists a "
                          "command's flags)\n", argv[i]);
    return false;
  }
  return true;
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "the command line client of convnet_server; `convnet_client help` lists the commands");
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      PrintUsage(stdout);
      return kExitOk;
    }
  }
  if (!CheckFlagsExist(argc, argv)) return kExitUsage;
  std::vector<char*> positional = absl::ParseCommandLine(argc, argv);
  if (positional.size() < 2) {
    PrintUsage(stderr);
    return kExitUsage;
  }
  const std::string name = positional[1];
  Arguments arguments(positional.begin() + 2, positional.end());
  if (name == "help") {
    if (arguments.empty()) {
      PrintUsage(stdout);
      return kExitOk;
    }
    return PrintCommandHelp(arguments[0]);
  }
  for (const Command& command : AllCommands()) {
    if (name != command.name) continue;
    absl::StatusOr<std::unique_ptr<Connection>> connection = Connection::Open(ConnectionOptionsFromFlags());
    if (!connection.ok()) {
      absl::FPrintF(stderr, "error: %s\n", connection.status().message());
      return kExitUsage;
    }
    return command.run(**connection, arguments);
  }
  absl::FPrintF(stderr, "error: no command \"%s\"\n\n", name);
  PrintUsage(stderr);
  return kExitUsage;
}

}  // namespace
}  // namespace convnet::client

int main(int argc, char** argv) { return convnet::client::Main(argc, argv); }
