// absl::Status inside, grpc::Status at the edge. The canonical codes are the
// same on both sides, so the mapping is 1:1 and keeps the message.
#ifndef CONVNET_SERVER_STATUS_CONVERSION_H_
#define CONVNET_SERVER_STATUS_CONVERSION_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace convnet::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_STATUS_CONVERSION_H_
