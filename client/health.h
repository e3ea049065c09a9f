// The standard gRPC health check (grpc.health.v1.Health/Check) from the
// client side. Debian ships no generated client for it, and its two messages
// are one field each, so they are encoded by hand and sent through gRPC's
// generic stub.
#ifndef CONVNET_CLIENT_HEALTH_H_
#define CONVNET_CLIENT_HEALTH_H_

#include <memory>
#include <string>

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

namespace convnet::client {

// grpc.health.v1.HealthCheckResponse.ServingStatus.
enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN".
std::string ServingStatusName(ServingStatus status);

// Asks the health service about `service` ("" = the server as a whole).
// Returns the call's status; on OK, `*serving` holds the answer.
// INTERNAL when the response cannot be parsed.
grpc::Status CheckHealth(const std::shared_ptr<grpc::Channel>& channel,
                         grpc::ClientContext* context, const std::string& service,
                         ServingStatus* serving);

}  // namespace convnet::client

#endif  // CONVNET_CLIENT_HEALTH_H_
