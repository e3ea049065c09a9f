// The ConvNet service registers its methods with raw request and response
// bytes (grpc::ByteBuffer), so that a request that does not parse reaches the
// service and is answered like any other bad request (INVALID_ARGUMENT with a
// message, counted in GetServerStats) instead of by gRPC itself (an empty
// INTERNAL or UNIMPLEMENTED that no statistic sees). These turn the bytes into
// messages and back, the way gRPC's generated code does.
#ifndef CONVNET_SERVER_RAW_MESSAGES_H_
#define CONVNET_SERVER_RAW_MESSAGES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"

namespace convnet::server {

// Parses `bytes` into `request` (which must be empty). INVALID_ARGUMENT
// naming `method`, the request's message type and the size, e.g. "Predict:
// the request is not a valid convnet.v1.PredictRequest (3 bytes)", when the
// bytes do not parse or the call carried no message.
absl::Status ParseRequest(absl::string_view method, const grpc::ByteBuffer& bytes,
                          google::protobuf::MessageLite* request);

// Serializes `message` into `bytes` (replacing what they held). INTERNAL when
// serialization fails (a message over 2 GiB).
absl::Status SerializeMessage(const google::protobuf::MessageLite& message, grpc::ByteBuffer* bytes);

}  // namespace convnet::server

#endif  // CONVNET_SERVER_RAW_MESSAGES_H_
