// convnet_client health: the standard gRPC health check.
#include <cstdio>

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "client/commands.h"
#include "client/exit_codes.h"
#include "client/flags.h"
#include "client/health.h"
#include "client/json.h"

namespace convnet::client {

int RunHealth(Connection& connection, const Arguments& arguments) {
  if (arguments.size() > 1) return UsageError("health", "at most one argument (a service name)");
  const std::string service = arguments.empty() ? "" : arguments[0];
  auto context = connection.NewCallContext();
  ServingStatus serving;
  grpc::Status status = CheckHealth(connection.channel(), context.get(), service, &serving);
  if (!status.ok()) return connection.ReportError("health check", status);
  if (absl::GetFlag(FLAGS_json)) {
    JsonWriter json;
    json.BeginObject()
        .Key("address").String(connection.address())
        .Key("service").String(service)
        .Key("status").String(ServingStatusName(serving))
        .EndObject();
    absl::PrintF("%s\n", json.str());
  } else {
    absl::PrintF("%s: %s\n", connection.address(), ServingStatusName(serving));
  }
  return serving == ServingStatus::kServing ? kExitOk : kExitRefused;
}

}  // namespace convnet::client
