// Calls the standard health and reflection services over a channel, with the
// test-only wire messages of wire/standard_services.proto.
#ifndef CONVNET_TESTS_SERVER_STANDARD_SERVICES_CLIENT_H_
#define CONVNET_TESTS_SERVER_STANDARD_SERVICES_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"
#include "grpcpp/support/status.h"
#include "wire/standard_services.pb.h"

namespace convnet::server_testing {

namespace wire = ::convnet::testing::wire;

// grpc.health.v1.Health/Check for `service` ("" = the whole server).
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, const std::string& service,
                         wire::HealthCheckResponse* response);

// grpc.reflection.v1alpha.ServerReflection: one request, one response.
grpc::Status Reflect(const std::shared_ptr<grpc::Channel>& channel, const wire::ServerReflectionRequest& request,
                     wire::ServerReflectionResponse* response);

}  // namespace convnet::server_testing

#endif  // CONVNET_TESTS_SERVER_STANDARD_SERVICES_CLIENT_H_
